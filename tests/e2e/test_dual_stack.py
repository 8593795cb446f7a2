"""Dual-stack and IPv6-only labs: apply, re-apply with nothing to do, verify of each family (and a missing IPv6
route named by it), reset leaving nothing of either family."""

from __future__ import annotations

import json

import pytest


def leftovers(lab, node: str) -> str:
    """What of the pod network is on ``node``: our routes of both families, the bridge, pod namespaces, files."""
    return lab.node_sh(node, "ip route show proto 147; ip -6 route show proto 147; ip -br link show v-net-0 2>/dev/null; "
                             "ip netns list; ls /etc/sysctl.d/90-provisioner* /etc/provisioner 2>/dev/null; true")


@pytest.mark.parametrize("family", ["dual", "ipv6"])
def test_apply_verify_reset_of_each_family(make_lab, family):
    lab = make_lab(2, family=family)
    six = lab.data()["cluster"]["pod_cidr"]
    assert (isinstance(six, list) and len(six) == 2) if family == "dual" else six == "fd00:10:244::/56"
    before = leftovers(lab, "node1")

    rc, first = lab.json("apply")
    assert rc == 0, json.dumps(first["recap"])
    rc, second = lab.json("apply")
    assert rc == 0 and {h: r["changed"] for h, r in second["recap"].items()} == {"node1": 0, "node2": 0}

    v = lab.provision("verify")
    assert v.returncode == 0 and "failed" not in v.stdout, v.stdout + v.stderr
    # the per-family checks ran for IPv6: each pod's address and the no-NAT check, on both nodes
    assert "4 passed" in lab.provision("verify", "--", "-k", "IPv6 and (no_nat or pods_have)").stdout
    addrs = lab.node_sh("node1", "ip netns exec web ip -o addr show dev eth0")
    assert "fd00:10:244:1::2/64" in addrs and (("10.244.1.2/24" in addrs) == (family == "dual"))

    lab.node_sh("node1", "ip -6 route del fd00:10:244:2::/64")
    broken = lab.provision("verify")
    assert broken.returncode == 1 and "node1: no route to fd00:10:244:2::/64 via" in broken.stdout, broken.stdout
    rc, fixed = lab.json("apply")
    assert rc == 0 and fixed["recap"]["node1"]["changed"] == 1
    assert lab.provision("verify").returncode == 0

    assert lab.provision("reset").returncode == 0
    assert leftovers(lab, "node1") == before
