"""Every module's reverse, facts in and commands out: it undoes what apply recorded, and nothing else.

The file-writing modules share one rule (``restore_steps``): a backup is put
back, a file apply created is removed, a file someone else made stays. Each is
checked here with the arguments the default playbook gives it.
"""

import pytest

from provisioner.facts.values import BinaryState, FileState
from provisioner.facts.files import Binary, Created, Exists, File
from provisioner.facts.system import KernelModule
from provisioner.inventory import load_inventory
from provisioner.playbook import bind, load_playbook, resolve_path
from provisioner.uploads import Artifact
from tests.bound_modules import MODULES

from ..conftest import BASE


def shells(outcome) -> list[str]:
    return [s.shell() for s in outcome.steps]


def present(text: bytes = b"x\n") -> dict:
    return FileState("0644", "root", "root", text)


@pytest.fixture
def site_args(write):
    """Each module's arguments on node1 (a control-plane node) as the default playbook binds them."""
    text = BASE.replace("    address: 192.168.56.11\n", "    address: 192.168.56.11\n    groups: [control_plane]\n")
    inv = load_inventory(write(text + "kubernetes:\n  kube_proxy: {mode: ipvs}\n"))
    return {t.module: t.args for t in bind(load_playbook(resolve_path(None)), inv)["node1"]}


@pytest.mark.parametrize("name", ["kubelet", "kube_proxy", "coredns", "control_plane_flags"])
def test_file_modules_remove_what_apply_created(site_args, name):
    args = site_args[name]
    paths = [f.path for f in MODULES[name].reverse_facts(args) if isinstance(f, File)]
    assert paths, name
    made = {File(p): present() for p in paths} | {Exists(f"{p}.provisioner-orig"): False for p in paths}
    assert shells(MODULES[name].reverse(args, {**made, Created(): {("file", p) for p in paths}})) == [
        f"rm -f {p}" for p in paths]


@pytest.mark.parametrize("name", ["kubelet", "kube_proxy", "coredns", "control_plane_flags"])
def test_file_modules_put_back_what_was_there_and_leave_foreign_files(site_args, name):
    args = site_args[name]
    paths = [f.path for f in MODULES[name].reverse_facts(args) if isinstance(f, File)]
    first, rest = paths[0], paths[1:]
    facts = {File(p): present() for p in paths} | {Exists(f"{p}.provisioner-orig"): p == first for p in paths}
    facts[Created()] = frozenset()  # nothing recorded: apply made none of these
    o = MODULES[name].reverse(args, facts)
    assert shells(o) == [f"mv -f {first}.provisioner-orig {first}"]  # only the one with a backup is touched
    assert not MODULES[name].reverse(args, {**facts, Exists(f"{first}.provisioner-orig"): False}).changed
    # with a backup of every file, every one is put back, each from its own backup
    every = MODULES[name].reverse(args, {**facts, **{Exists(f"{p}.provisioner-orig"): True for p in paths}})
    assert shells(every) == [f"mv -f {p}.provisioner-orig {p}" for p in [first, *rest]]


def test_kube_proxy_reverse_leaves_kernel_modules_loaded(site_args):
    """ipvs modules apply loaded are not unloaded on reset (other users may need them): only the file goes."""
    args = site_args["kube_proxy"]
    assert args["mode"] == "ipvs"
    facts = {File(args["config_file"]): present(), Exists(args["config_file"] + ".provisioner-orig"): False,
             Created(): {("file", args["config_file"])}, **{KernelModule(m): True for m in ("ip_vs", "nf_conntrack")}}
    assert shells(MODULES["kube_proxy"].reverse(args, facts)) == [f"rm -f {args['config_file']}"]


def test_file_reverse():
    m, args = MODULES["file"], {"path": "/etc/x.conf", "content": "a\n"}
    mine = {File("/etc/x.conf"): present(b"a\n"), Created(): {("file", "/etc/x.conf")}}
    assert shells(m.reverse(args, mine)) == ["rm -f /etc/x.conf"]
    theirs = {File("/etc/x.conf"): present(b"a\n"), Exists("/etc/x.conf.provisioner-orig"): True}
    assert shells(m.reverse(args, theirs)) == ["mv -f /etc/x.conf.provisioner-orig /etc/x.conf"]
    o = m.reverse(args, {File("/etc/x.conf"): present(b"a\n")})  # not ours, no backup: stays
    assert not o.changed and o.reason == "/etc/x.conf is absent or was not made by provisioner"
    o = m.reverse({**args, "state": "absent"}, mine)
    assert not o.changed and o.reason == "/etc/x.conf: state absent has nothing to undo"
    assert not m.reverse(args, {File("/etc/x.conf"): None}).changed  # twice: already gone


def test_cni_plugins_reverse_twice_is_a_noop():
    args = {"source": "/x", "dest": "/etc/cni/bin", "plugins": ["bridge"], "files": [Artifact("bridge", "a" * 64, b"B")]}
    made = {Binary("/etc/cni/bin/bridge"): BinaryState("0755", "a" * 64), Created(): {("file", "/etc/cni/bin/bridge")}}
    assert shells(MODULES["cni_plugins"].reverse(args, made)) == ["rm -f /etc/cni/bin/bridge"]
    o = MODULES["cni_plugins"].reverse(args, {Binary("/etc/cni/bin/bridge"): None, Created(): set()})
    assert not o.changed and o.reason == "no plugins installed by provisioner left in /etc/cni/bin"


def test_every_module_with_state_has_a_reverse():
    from provisioner.modules import MODULES as REAL
    from provisioner.modules.base import Module

    handlers_only = {"service"}  # restarts: nothing to undo
    for name, module in REAL.items():
        if name not in handlers_only:
            assert type(module).reverse is not Module.reverse, name
