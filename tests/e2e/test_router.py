"""Routing mode ``router``: each node carries one route to the pod range, via the router node, which
carries a route to every node's pod subnet. Proven on a 3-node lab with node1 as the router."""

from __future__ import annotations

import pytest
import yaml


def forwarded(lab, node: str) -> int:
    """The node's IP ForwDatagrams counter (/proc/net/snmp of its network namespace)."""
    lines = [line.split() for line in lab.node_sh(node, "cat /proc/net/snmp").splitlines() if line.startswith("Ip:")]
    return int(dict(zip(lines[0][1:], lines[1][1:]))["ForwDatagrams"])


@pytest.mark.parametrize("family", ["ipv4", "dual"])
def test_router_mode_carries_cross_node_traffic_through_the_router(make_lab, family):
    lab = make_lab(3, family=family)
    data = lab.data()
    router = data["nodes"][0]["address"]
    data["cluster"].update(routing="router", router=data["nodes"][0].get("ip", router))  # one per family
    lab.inventory.write_text(yaml.safe_dump(data, sort_keys=False))
    lab.provision("apply", check=True)
    if family == "dual":  # the IPv6 half: one route to the IPv6 pod range via the router's IPv6 address
        router6 = data["nodes"][0]["ip"][1]
        six = {n: lab.node_sh(n, "ip -6 route show proto 147") for n in ("node1", "node2", "node3")}
        assert six["node2"].startswith(f"fd00:10:244::/56 via {router6} ") and six["node2"].count("\n") == 1, six
        assert six["node1"].count("\n") == 2, six  # the router knows both peers' IPv6 subnets

    routes = {n: lab.node_sh(n, "ip route show proto 147") for n in ("node1", "node2", "node3")}
    assert routes["node2"].split("\n")[0].startswith(f"10.244.0.0/16 via {router} ") and routes["node2"].count("\n") == 1
    assert routes["node3"].count("\n") == 1 and routes["node1"].count("\n") == 2  # the router knows both peers

    v = lab.provision("verify")  # every pod reaches every pod, and the no-NAT check sees the source pod's own IP
    assert v.returncode == 0 and "failed" not in v.stdout, v.stdout + v.stderr

    web3 = lab.node_sh("node3", "ip -n web -4 -o addr show dev eth0").split()[3].split("/")[0]
    before = forwarded(lab, "node1")
    lab.node_sh("node2", f"ip netns exec web ping -c 20 -i 0.05 -W 2 {web3} >/dev/null")
    through = forwarded(lab, "node1") - before
    assert through >= 40, f"node1 forwarded {through} datagrams for 20 pings node2 → node3 and back"
    assert lab.node_sh("node2", f"ip route get {web3}").split()[2] == router  # the next hop is the router
