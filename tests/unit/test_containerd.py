"""containerd_cni edits the config.toml that is there (tomlkit): only bin_dir/conf_dir change, reset gives the
original back byte for byte, and containerd itself loads every result."""

import difflib
import shutil
import subprocess
import tomllib

import pytest

from provisioner.facts.values import FileState
from provisioner.facts.files import Created, Exists, File
from provisioner.modules import ModuleError
from provisioner.modules.containerd import TABLES
from tests.bound_modules import MODULES

from ..conftest import ROOT

DATA = ROOT / "tests/data/containerd"
PATH = "/etc/containerd/config.toml"
BACKUP = PATH + ".provisioner-orig"
ARGS = {"config_file": PATH, "major": 1, "bin_dir": "/etc/cni/bin", "conf_dir": "/etc/cni/net.d"}
M = MODULES["containerd_cni"]
# (fixture, config version it is, the keys of its CNI table before)
FIXTURES = [("debian-12.toml", 2), ("containerd-1.6-default.toml", 2), ("containerd-2-default.toml", 3),
            ("hand-edited.toml", 2), ("version-1.toml", 1)]
needs_containerd = pytest.mark.skipif(shutil.which("containerd") is None,
                                      reason="containerd is not installed (scripts/bootstrap.sh installs it)")


def node(content: bytes | None, backup: bytes | None = None, created=()) -> dict:
    facts = {File(PATH): content and FileState("0644", "root", "root", content),
             Exists(BACKUP): backup is not None, Created(): frozenset(created),
             File(BACKUP): backup and FileState("0644", "root", "root", backup)}
    return facts


def written(outcome) -> bytes:
    (content,) = [s.content for s in outcome.steps if hasattr(s, "content")]
    return content


def cni_table(text: str, version: int) -> dict:
    doc = tomllib.loads(text)
    for key in TABLES[version]:
        doc = doc[key]
    return doc


def applied(original: bytes, args=ARGS) -> bytes:
    return written(M.plan(args, node(original)))


@pytest.mark.parametrize("name,version", FIXTURES)
def test_only_the_cni_dirs_change_and_every_other_byte_stays(name, version):
    original = (DATA / name).read_bytes()
    o = M.plan(ARGS, node(original))
    assert o.steps[0].shell() == f"cp -p {PATH} {BACKUP}"  # the original is kept before the first change
    new = written(o).decode()
    table = cni_table(new, version)
    assert table["conf_dir"] == "/etc/cni/net.d"
    assert table.get("bin_dir", "/etc/cni/bin") == "/etc/cni/bin"
    assert table.get("bin_dirs", ["/etc/cni/bin"]) == ["/etc/cni/bin"]
    before = tomllib.loads(original.decode())
    after = tomllib.loads(new)
    for key in TABLES[version]:  # the same document but for the CNI table's dirs
        before, after = before.setdefault(key, {}), after[key]
    assert {k: v for k, v in after.items() if k not in ("bin_dir", "bin_dirs", "conf_dir")} == \
           {k: v for k, v in before.items() if k not in ("bin_dir", "bin_dirs", "conf_dir")}
    removed = [line for line in difflib.ndiff(original.decode().splitlines(), new.splitlines()) if line.startswith("- ")]
    assert all(("bin_dir" in line or "conf_dir" in line) for line in removed), removed  # comments, order, layout kept
    assert not M.plan(ARGS, node(new.encode())).changed  # idempotent


def test_debian_and_kubeadm_tables_are_edited_in_place_not_added_twice():
    for name, old in (("debian-12.toml", "/usr/lib/cni"), ("containerd-1.6-default.toml", "/opt/cni/bin")):
        new = applied((DATA / name).read_bytes()).decode()
        assert new.count('[plugins."io.containerd.grpc.v1.cri".cni]') == 1 and old not in new.split("[plugins.\"io.containerd.grpc.v1.cri\".cni]")[1][:200]


def test_a_version_3_table_keeps_its_key_form():
    v3 = (DATA / "containerd-2-default.toml").read_text()
    assert "bin_dirs = ['/etc/cni/bin']" in applied(v3.encode()).decode() or 'bin_dirs = ["/etc/cni/bin"]' in applied(v3.encode()).decode()
    v20 = v3.replace("bin_dirs = ['/opt/cni/bin']", "bin_dir = '/opt/cni/bin'")  # containerd 2.0 wrote bin_dir
    table = cni_table(applied(v20.encode()).decode(), 3)
    assert table["bin_dir"] == "/etc/cni/bin" and "bin_dirs" not in table


def test_a_file_version_wins_over_the_inventory_with_a_warning():
    o = M.plan(ARGS, node((DATA / "containerd-2-default.toml").read_bytes()))
    assert o.warnings and "version 3 config (containerd 2.x)" in o.warnings[0] and "major is 1" in o.warnings[0]
    assert not M.plan(ARGS, node((DATA / "debian-12.toml").read_bytes())).warnings


@pytest.mark.parametrize("major,version", [(1, 2), (2, 3)])
def test_a_new_file_is_ours_and_0600(major, version):
    o = M.plan({**ARGS, "major": major}, node(None))
    step = next(s for s in o.steps if hasattr(s, "content"))
    assert step.mode == "0600" and step.creates == ("file", PATH)
    text = step.content.decode()
    assert text.startswith("# managed by provisioner") and tomllib.loads(text)["version"] == version
    assert cni_table(text, version)["conf_dir"] == "/etc/cni/net.d"
    back = M.reverse(ARGS, node(step.content, created=[("file", PATH)]))
    assert [s.shell() for s in back.steps] == [f"rm -f {PATH}"]


@pytest.mark.parametrize("name,version", FIXTURES)
def test_reset_puts_the_original_back_byte_for_byte(name, version):
    original = (DATA / name).read_bytes()
    back = M.reverse(ARGS, node(applied(original), backup=original))
    assert [s.shell() for s in back.steps] == [f"mv -f {BACKUP} {PATH}"]
    assert not M.reverse(ARGS, node(original)).changed  # twice: nothing left to do


def test_reset_after_someone_edited_the_file_keeps_their_edit_and_restores_our_keys():
    original = (DATA / "debian-12.toml").read_bytes()
    edited = applied(original).decode().replace('path = "/var/lib/containerd/opt"', 'path = "/srv/opt"')
    back = M.reverse(ARGS, node(edited.encode(), backup=original))
    new = written(back).decode()
    assert 'path = "/srv/opt"' in new and cni_table(new, 2) == {"bin_dir": "/usr/lib/cni", "conf_dir": "/etc/cni/net.d"}
    assert back.steps[-1].shell() == f"rm -f {BACKUP}"
    # a table apply added to someone's file goes again when it is only ours
    user = b'version = 2\n[plugins."io.containerd.grpc.v1.cri"]\n  sandbox_image = "pause:3.9"\n'
    mine = "oom_score = 5\n" + applied(user).decode()
    new = written(M.reverse(ARGS, node(mine.encode(), backup=user))).decode()
    assert new.rstrip("\n") == "oom_score = 5\n" + user.decode().rstrip("\n")


def test_invalid_toml_is_the_tasks_error_naming_the_file():
    with pytest.raises(ModuleError, match=r"/etc/containerd/config.toml is not valid TOML"):
        M.plan(ARGS, node(b'version = 2\n[plugins\n'))
    with pytest.raises(ModuleError, match=r"config version 7"):
        M.plan(ARGS, node(b'version = 7\n'))


@needs_containerd
@pytest.mark.parametrize("name,version", [f for f in FIXTURES if f[1] < 3] + [("(new)", 2)])
def test_containerd_loads_the_result_and_uses_our_dirs(tmp_path, name, version):
    original = None if name == "(new)" else (DATA / name).read_bytes()
    path = tmp_path / "config.toml"
    path.write_bytes(written(M.plan(ARGS, node(original))))
    r = subprocess.run(["containerd", "-c", str(path), "config", "dump"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    dumped = cni_table(r.stdout, 2)
    assert dumped["bin_dir"] == "/etc/cni/bin" and dumped["conf_dir"] == "/etc/cni/net.d"


@needs_containerd
def test_the_installed_containerds_own_default_config(tmp_path):
    default = subprocess.run(["containerd", "config", "default"], capture_output=True, check=True, timeout=60).stdout
    path = tmp_path / "config.toml"
    path.write_bytes(applied(default))
    r = subprocess.run(["containerd", "-c", str(path), "config", "dump"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and cni_table(r.stdout, 2)["bin_dir"] == "/etc/cni/bin", r.stderr
