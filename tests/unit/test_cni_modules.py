"""CNI modules and plugin sources: facts in, commands out; tarballs and pins."""

import hashlib
import io
import json
import tarfile

import pytest

from provisioner.facts.values import BinaryState, FileState, Link
from provisioner.template_vars import cni_conflist
from provisioner.facts.files import File, Binary, Listing, Exists, Created
from provisioner.facts.net import Links, Addrs, Netns
from provisioner import uploads
from provisioner.uploads import Artifact
from tests.bound_modules import MODULES
from provisioner.steps import Cmd, Upload


def test_collect_from_a_release_tarball_with_pins(tmp_path):
    tgz = tmp_path / "cni-plugins-linux-amd64-v1.4.0.tgz"
    with tarfile.open(tgz, "w:gz") as tar:
        for name, data in (("./bridge", b"BRIDGE"), ("./host-local", b"HOSTLOCAL")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    digest = hashlib.sha256(tgz.read_bytes()).hexdigest()
    got = uploads.collect(tgz, ["bridge", "host-local"], {"bridge": hashlib.sha256(b"BRIDGE").hexdigest()}, digest)
    assert {a.name: a.size for a in got} == {"bridge": 6, "host-local": 9}
    assert {a.name: a.data for a in got}["host-local"] == b"HOSTLOCAL"  # the bytes travel with the artifact
    with pytest.raises(uploads.ArtifactError, match="does not match tarball_sha256"):
        uploads.collect(tgz, ["bridge"], {}, "0" * 64)
    with pytest.raises(uploads.ArtifactError, match="plugin vlan not found"):
        uploads.collect(tgz, ["vlan"], {}, None)


ARGS = {"source": "/x", "dest": "/etc/cni/bin", "plugins": ["bridge", "loopback"],
        "files": [Artifact("bridge", "a" * 64, b"B"), Artifact("loopback", "b" * 64, b"L")]}
BRIDGE, LOOPBACK = ARGS["files"]


def test_plugins_upload_only_what_differs():
    facts = {Binary("/etc/cni/bin/bridge"): BinaryState("0755", "a" * 64),
             Binary("/etc/cni/bin/loopback"): BinaryState("0755", "c" * 64)}
    o = MODULES["cni_plugins"].plan(ARGS, {**facts, Created(): {("file", "/etc/cni/bin/loopback")}})
    assert o.steps == [Upload("/etc/cni/bin/loopback", LOOPBACK, "0755")]
    # a plugin someone else put there is kept aside first; a missing one is written down as made by apply
    o = MODULES["cni_plugins"].plan(ARGS, {**facts, Binary("/etc/cni/bin/bridge"): None})
    assert o.steps == [Upload("/etc/cni/bin/bridge", BRIDGE, "0755", creates=("file", "/etc/cni/bin/bridge")),
                       Cmd(("cp", "-p", "/etc/cni/bin/loopback", "/etc/cni/bin/loopback.provisioner-orig")),
                       Upload("/etc/cni/bin/loopback", LOOPBACK, "0755")]


def test_plugins_reset_restores_or_removes_only_what_apply_installed():
    facts = {Binary("/etc/cni/bin/bridge"): BinaryState("0755", "a" * 64),
             Binary("/etc/cni/bin/loopback"): BinaryState("0755", "b" * 64),
             Exists("/etc/cni/bin/loopback.provisioner-orig"): True}
    o = MODULES["cni_plugins"].reverse(ARGS, facts)
    assert [s.shell() for s in o.steps] == ["mv -f /etc/cni/bin/loopback.provisioner-orig /etc/cni/bin/loopback"]
    o = MODULES["cni_plugins"].reverse(ARGS, {**facts, Created(): {("file", "/etc/cni/bin/bridge")}})
    assert [s.shell() for s in o.steps] == ["rm -f /etc/cni/bin/bridge",
                                            "mv -f /etc/cni/bin/loopback.provisioner-orig /etc/cni/bin/loopback"]


def test_plugins_noop_and_mode_repair():
    facts = {Binary("/etc/cni/bin/bridge"): BinaryState("0755", "a" * 64),
             Binary("/etc/cni/bin/loopback"): BinaryState("0644", "b" * 64)}
    assert [s.shell() for s in MODULES["cni_plugins"].plan(ARGS, facts).steps] == ["chmod 0755 /etc/cni/bin/loopback"]
    facts[Binary("/etc/cni/bin/loopback")] = BinaryState("0755", "b" * 64)
    o = MODULES["cni_plugins"].plan(ARGS, facts)
    assert not o.changed and o.reason == "2 plugin(s) already in /etc/cni/bin with matching sha256: bridge, loopback"


CONF = {"cniVersion": "1.0.0", "name": "lab", "plugins": [{"type": "bridge", "bridge": "v-net-0", "ipam": {"type": "host-local"}}]}
CARGS = {"conf_dir": "/etc/cni/net.d", "file": "10-lab.conflist", "config": CONF, "data_dir": "/var/lib/cni/networks"}


def test_config_written_with_loopback_and_first_files_warned():
    o = MODULES["cni_config"].plan(CARGS, {File("/etc/cni/net.d/10-lab.conflist"): None,
                                           File("/etc/cni/net.d/99-loopback.conf"): None,
                                           Listing("/etc/cni/net.d"): ["05-flannel.conflist", "README"],
                                           Exists("/var/lib/cni/networks/lab"): False})
    assert o.steps[0].shell() == "provisioner_mkdir /var/lib/cni/networks/lab"  # recorded, so reset may empty it
    written = {s.path: json.loads(s.content) for s in o.steps[1:]}
    assert written["/etc/cni/net.d/10-lab.conflist"] == CONF
    assert written["/etc/cni/net.d/99-loopback.conf"]["type"] == "loopback"
    assert o.warnings == ["/etc/cni/net.d/05-flannel.conflist sorts before 10-lab.conflist: runtimes load only the first network config"]


LEASES = ("find /var/lib/cni/networks/lab -maxdepth 1 -type f '(' -name '[0-9]*.[0-9]*.[0-9]*.[0-9]*' -o -name "
          "'last_reserved_ip.*' -o -name lock ')' -delete")


def test_config_reverse_removes_leases_once():
    m = MODULES["cni_config"]
    facts = {File("/etc/cni/net.d/10-lab.conflist"): FileState("0644", "root", "root", b""), File("/etc/cni/net.d/99-loopback.conf"): None,
             Listing("/etc/cni/net.d"): [], Exists("/var/lib/cni/networks/lab"): True,
             Created(): {("file", "/etc/cni/net.d/10-lab.conflist")},
             File("/var/lib/provisioner/created-dirs"): FileState("0644", "root", "root", b"/var/lib/cni\n/var/lib/cni/networks/lab\n")}
    assert [s.shell() for s in m.reverse(CARGS, facts).steps] == ["rm -f /etc/cni/net.d/10-lab.conflist", LEASES]
    facts = {File("/etc/cni/net.d/10-lab.conflist"): None, File("/etc/cni/net.d/99-loopback.conf"): None,
             Exists("/var/lib/cni/networks/lab"): False}
    assert not m.reverse(CARGS, facts).changed


def test_config_reverse_never_touches_a_lease_dir_that_was_there_before():
    """cni.data_dir: /var/lib with cluster name kubernetes points at /var/lib/kubernetes: reset leaves it alone."""
    args = {**CARGS, "config": {**CONF, "name": "kubernetes"}, "data_dir": "/var/lib"}
    facts = {File("/etc/cni/net.d/10-lab.conflist"): None, File("/etc/cni/net.d/99-loopback.conf"): None,
             Exists("/var/lib/kubernetes"): True, File("/var/lib/provisioner/created-dirs"): FileState("0644", "root", "root", b"/etc/cni\n")}
    o = MODULES["cni_config"].reverse(args, facts)
    assert not o.changed and "/var/lib/kubernetes existed before apply: left as it was" in o.reason
    assert not MODULES["cni_config"].plan(args, {**facts, Listing("/etc/cni/net.d"): [],
                                                 **{File(p): None for p in ("/etc/cni/net.d/10-lab.conflist",)}}
                                          ).steps[0].shell().startswith("provisioner_mkdir")


def test_a_lease_dir_apply_recorded_may_be_gone_after_a_boot():
    """podman's tmpfiles.d empties /var/lib/cni/networks at boot; host-local makes the dir again at its next ADD,
    so plan has nothing to do for it once apply has recorded it as its own (and makes it when it has not)."""
    m = MODULES["cni_config"]
    conflist = m.plan(CARGS, {File("/etc/cni/net.d/10-lab.conflist"): None, File("/etc/cni/net.d/99-loopback.conf"): None,
                              Listing("/etc/cni/net.d"): [], Exists("/var/lib/cni/networks/lab"): False,
                              File("/var/lib/provisioner/created-dirs"): None})
    assert conflist.steps[0].shell() == "provisioner_mkdir /var/lib/cni/networks/lab"
    written = {s.path: FileState(s.mode, "root", "root", s.content)
               for s in conflist.steps if hasattr(s, "content")}
    rebooted = {**{File(p): c for p, c in written.items()}, Listing("/etc/cni/net.d"): [],
                Exists("/var/lib/cni/networks/lab"): False, Created(): {("file", p) for p in written},
                File("/var/lib/provisioner/created-dirs"): FileState("0644", "root", "root", b"/var/lib/cni/networks/lab\n")}
    assert not m.plan(CARGS, rebooted).changed


def test_cni_pods_call_the_plugin_like_a_runtime():
    args = {"bin_dir": "/etc/cni/bin", "config": CONF, "pods": [{"name": "db", "via": "cni"}, {"name": "web", "via": "manual"}]}
    o = MODULES["cni_pods"].plan(args, {Netns(): ["web"]})
    assert [s.show() for s in o.steps] == [
        "ip netns add db", "ip -n db link set lo up",
        "CNI ADD through bridge (CNI_CONTAINERID=db CNI_NETNS=/run/netns/db CNI_IFNAME=eth0 CNI_PATH=/etc/cni/bin)"]
    assert o.steps[0].shell() == "provisioner_created netns db\nip netns add db"
    done = MODULES["cni_pods"].plan(args, {Netns(): ["db"], Addrs("db"): {"eth0": ["10.244.1.10/24"]}})
    assert not done.changed and done.reason == "pods already attached through CNI: db"
    rev = MODULES["cni_pods"].reverse(args, {Netns(): ["db"], Created(): {("netns", "db")}}).steps
    assert rev[0].show().startswith("CNI DEL through bridge") and rev[1].shell() == "ip netns del db"
    assert not MODULES["cni_pods"].reverse(args, {Netns(): ["db"], Created(): set()}).changed  # not ours: left alone


def test_a_cni_pod_whose_namespace_is_gone_is_detached_before_it_is_attached_again():
    """A runtime's repair: DEL (releases the old lease), then ADD; otherwise host-local refuses a second lease."""
    args = {"bin_dir": "/etc/cni/bin", "config": CONF, "pods": [{"name": "db", "via": "cni"}]}
    cache = "/var/lib/provisioner/cni-results/lab-db-eth0"
    o = MODULES["cni_pods"].plan(args, {Netns(): [], Exists(cache): True})
    assert [s.show().split(" (")[0] for s in o.steps] == ["CNI DEL through bridge", "ip netns add db",
                                                          "ip -n db link set lo up", "CNI ADD through bridge"]
    o = MODULES["cni_pods"].plan(args, {Netns(): ["db"], Addrs("db"): {"eth0": []}})  # address lost
    assert [s.show().split(" (")[0] for s in o.steps] == ["CNI DEL through bridge", "ip -n db link set lo up",
                                                          "CNI ADD through bridge"]


def test_a_conflist_runs_as_a_chain_with_prev_result_through_a_real_shell(tmp_path):
    """ADD in order, each plugin given the result before it; DEL in reverse with the cached result."""
    import subprocess

    from provisioner.steps import MKDIR_FUNCTION

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("first", "second", "third"):
        script = bin_dir / name
        script.write_text(f"""#!/bin/sh
cat > {tmp_path}/{name}.$CNI_COMMAND.in
printf '{{"cniVersion":"1.0.0","ips":[{{"address":"10.0.0.2/24"}}],"by":"{name}"}}'
""")
        script.chmod(0o755)
    conf = {"cniVersion": "1.0.0", "name": "lab", "plugins": [{"type": "first", "x": "it's \"quoted\" $(id)"},
                                                              {"type": "second"}, {"type": "third"}]}
    args = {"bin_dir": str(bin_dir), "config": conf, "pods": [{"name": "db", "via": "cni"}]}
    add = MODULES["cni_pods"].plan(args, {Netns(): ["db"], Addrs("db"): {}}).steps[-1]
    state = tmp_path / "state"
    prelude = MKDIR_FUNCTION.replace("/var/lib/provisioner", str(state)) + "\nset -e\n"
    run = lambda step: subprocess.run(["sh", "-c", prelude + step.shell().replace("/var/lib/provisioner", str(state))],
                                      capture_output=True, text=True)
    r = run(add)
    assert r.returncode == 0, r.stderr
    first = json.loads((tmp_path / "first.ADD.in").read_text())
    assert first == {"cniVersion": "1.0.0", "name": "lab", "type": "first", "x": "it's \"quoted\" $(id)"}
    assert json.loads((tmp_path / "second.ADD.in").read_text())["prevResult"]["by"] == "first"
    assert json.loads((tmp_path / "third.ADD.in").read_text())["prevResult"]["by"] == "second"
    cache = state / "cni-results" / "lab-db-eth0"
    assert json.loads(cache.read_text())["by"] == "third"
    delete = MODULES["cni_pods"].reverse(args, {Netns(): ["db"], Created(): {("netns", "db")}}).steps[0]
    r = run(delete)
    assert r.returncode == 0, r.stderr
    order = sorted((p.stat().st_mtime_ns, p.name) for p in tmp_path.glob("*.DEL.in"))
    assert [n for _, n in order] == ["third.DEL.in", "second.DEL.in", "first.DEL.in"]
    assert all(json.loads(p.read_text())["prevResult"]["by"] == "third" for p in tmp_path.glob("*.DEL.in"))
    assert not cache.exists()


def test_inventory_cni_checks(write):
    from provisioner.errors import InventoryError
    from provisioner.inventory import load_inventory

    from ..conftest import BASE
    with pytest.raises(InventoryError, match="differs from cluster.bridge v-net-0"):
        load_inventory(write(BASE + "cni:\n  bridge: cni0\n"))
    with pytest.raises(InventoryError, match="gets its address from IPAM"):
        load_inventory(write(BASE.replace("pods: [web]", "pods: [{name: web, via: cni, ip: 10.244.2.20}]")))
    inv = load_inventory(write(BASE + "cni:\n  type: provisioner-bridge\n  range_offset: 100\n"))
    conf = cni_conflist(inv, inv.nodes[1])
    assert conf["plugins"][0]["type"] == "provisioner-bridge"
    assert conf["plugins"][0]["ipam"]["ranges"] == [[{"subnet": "10.244.2.0/24", "rangeStart": "10.244.2.100",
                                                     "rangeEnd": "10.244.2.254", "gateway": "10.244.2.1"}]]


def test_upload_travels_in_the_script_into_a_private_dir_through_a_real_shell(tmp_path):
    """The bytes arrive whole and checked; no fixed /tmp name is used, a planted symlink is never written through."""
    import subprocess

    from provisioner import steps as ops

    data = bytes(range(256)) * 300
    artifact = Artifact("bridge", hashlib.sha256(data).hexdigest(), data)
    target = tmp_path / "bin" / "bridge"
    victim = tmp_path / "victim"
    victim.write_text("root only\n")
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / ".bridge.provisioner-tmp").symlink_to(victim)  # the old predictable temp name
    script = ops.render([(0, [Upload(str(target), artifact, "0755")])]).replace("/var/lib/provisioner", str(tmp_path / "state"))
    r = subprocess.run(["sh", "-s"], input=script, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert target.read_bytes() == data and oct(target.stat().st_mode & 0o777) == "0o755"
    assert victim.read_text() == "root only\n"
    assert sorted(p.name for p in (tmp_path / "bin").iterdir()) == [".bridge.provisioner-tmp", "bridge"]
    assert "/tmp/.provisioner-upload" not in script and ops.RUN_PREFIX in script
    run_dirs = subprocess.run(["sh", "-c", "ls -d /tmp/.provisioner-run.* 2>/dev/null || true"], capture_output=True, text=True)
    assert run_dirs.stdout == ""  # removed on exit


def test_a_script_cut_off_in_transit_runs_nothing(tmp_path):
    import subprocess

    from provisioner import steps as ops
    from provisioner.steps import Cmd

    marker = tmp_path / "ran"
    script = ops.render([(0, [Cmd(("touch", str(marker))), Cmd(("true",))])])
    for cut in (len(script) // 2, len(script) - 2):
        subprocess.run(["sh", "-s"], input=script[:cut], capture_output=True, text=True)
        assert not marker.exists(), cut


def test_a_cni_pod_cut_off_its_bridge_is_attached_again():
    """The bridge deleted and made again by hand: the pod keeps its address but its veth is on no bridge."""
    args = {"bin_dir": "/etc/cni/bin", "config": CONF, "pods": [{"name": "db", "via": "cni"}]}
    pod = {Netns(): ["db"], Addrs("db"): {"eth0": ["10.244.1.10/24"]},
           Links("db"): {"eth0": Link(kind="veth", index=2, peer=7)}}
    on = {Links(): {"veth1234": Link(index=7, master="v-net-0"), "v-net-0": Link(index=5)}}
    assert not MODULES["cni_pods"].plan(args, {**pod, **on}).changed
    off = {Links(): {"veth1234": Link(index=7), "v-net-0": Link(index=9)}}
    o = MODULES["cni_pods"].plan(args, {**pod, **off})
    assert [s.show().split(" (")[0] for s in o.steps] == ["CNI DEL through bridge", "ip -n db link set lo up",
                                                          "CNI ADD through bridge"]
