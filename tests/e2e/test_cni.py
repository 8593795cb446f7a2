"""CNI on the lab: binaries installed once with their sha256, config written, pods attached through CNI."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

STAT = "for f in /etc/cni/bin/*; do printf '%s %s %s ' $f $(stat -c '%a %i' $f); sha256sum $f | cut -d' ' -f1; done"


def installed(lab, node):
    out = {}
    for line in lab.node_sh(node, STAT).splitlines():
        path, mode, inode, digest = line.split()
        out[Path(path).name] = (mode, inode, digest)
    return out


@pytest.mark.parametrize("cni_type", ["bridge", "provisioner-bridge"])
def test_cni_install_once_and_pods_via_cni_pass_verify(make_lab, cni_type):
    lab = make_lab(3, pods=(), cni_pods=("db", "cache"), cni_type=cni_type)  # only CNI pods: verify's no-NAT check uses them
    rc, doc = lab.json("apply")
    assert rc == 0, doc
    first = installed(lab, "node2")
    want = ["host-local", "loopback"] + (["bridge"] if cni_type == "bridge" else ["provisioner-bridge"])
    assert sorted(first) == sorted(want)
    for name, (mode, _, digest) in first.items():
        src = Path("/usr/lib/cni", name) if name != "provisioner-bridge" else Path("provisioner/node_plugin/plugin.py")
        assert mode == "755" and digest == hashlib.sha256(src.read_bytes()).hexdigest(), name
    assert lab.node_sh("node2", "ls -A /tmp /etc/cni/bin | grep -E '^[.]' || true") == ""  # no staged or temp file left

    conf = lab.node_sh("node2", "cat /etc/cni/net.d/10-%s.conflist" % lab.name)
    assert '"bridge": "v-net-0"' in conf and '"subnet": "10.244.2.0/24"' in conf and '"gateway": "10.244.2.1"' in conf

    rc, again = lab.json("apply")
    assert rc == 0 and all(r["changed"] == 0 for r in again["recap"].values()), again["recap"]
    task = next(t for t in again["hosts"]["node2"]["tasks"] if t["module"] == "cni_plugins")
    assert task["status"] == "ok" and task["commands"] == [] and "matching sha256" in task["reason"]
    assert installed(lab, "node2") == first  # same inodes: nothing was uploaded or rewritten

    ips = lab.node_sh("node3", "for p in db cache; do ip -n $p -4 -o addr show dev eth0; done")
    assert "10.244.3.10/24" in ips and "10.244.3.11/24" in ips  # host-local, from range_offset up
    v = lab.provision("verify")
    assert v.returncode == 0, v.stdout + v.stderr


def test_a_conf_file_that_sorts_first_is_reported(make_lab):
    lab = make_lab(1, pods=())
    lab.node_sh("node1", "mkdir -p /etc/cni/net.d && echo '{}' > /etc/cni/net.d/05-other.conflist")
    p = lab.provision("plan")
    assert "05-other.conflist sorts before 10-%s.conflist" % lab.name in p.stdout
