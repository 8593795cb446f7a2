"""The pod network as the Kubernetes model asks: every pod has an IP, reaches every
pod on its node and on every other node, without NAT.

Each test reads the survey (``conftest.survey``: three execs per node, all nodes at
once) and checks one rule on one node.
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any

import pytest

from provisioner.inventory import Inventory, Node
from provisioner.routing import pod_routes

Survey = dict[str, dict[str, Any]]  # conftest.survey: what each node showed, by node name


def test_bridge_up_with_gateway(node: Node, inventory: Inventory, survey: Survey) -> None:
    br = inventory.cluster.bridge
    addrs = (survey[node.name]["bridge"] or {})
    assert br in addrs, f"bridge {br} missing on {node.name}"
    for gateway, subnet in zip(node.pod_gateways, node.pod_subnets):
        assert f"{gateway}/{subnet.prefixlen}" in addrs[br], \
            f"bridge {br} on {node.name} has {addrs[br]}, not the gateway {gateway}/{subnet.prefixlen}"


def test_routes_to_every_peer(node: Node, inventory: Inventory, survey: Survey) -> None:
    have = {r.dst: r.via for r in (survey[node.name]["routes"] or []) + (survey[node.name].get("routes6") or [])}
    for want in pod_routes(inventory, node):
        assert have.get(want["dst"]) == want["via"], f"{node.name}: no route to {want['dst']} via {want['via']}"


def test_sysctl(node: Node, survey: Survey, sysctl_key: str) -> None:
    key = sysctl_key
    assert survey[node.name][f"sysctl {key}"] == "1", f"{key} is {survey[node.name][f'sysctl {key}']} on {node.name}"


def test_pods_have_their_ip(node: Node, inventory: Inventory, survey: Survey, family: int) -> None:
    k = inventory.cluster.families.index(family)
    subnet = node.pod_subnets[k]
    for spec in node.pods:
        ip = survey[node.name]["pods_by_family"][family][spec.name]
        assert ip is not None, f"pod {spec.name} on {node.name} has no IPv{family} address on eth0"
        assert ipaddress.ip_address(ip) in subnet, f"pod {spec.name} has {ip}, outside {subnet}"
        if spec.via == "manual":
            assert ip == str(spec.ips[k]), f"pod {spec.name} on {node.name} has {ip}, inventory says {spec.ips[k]}"


def _ips(survey: Survey, node: str) -> list[str]:
    """The node's pods' addresses, of every family."""
    return [ip for pods in survey[node]["pods_by_family"].values() for ip in pods.values() if ip]


def _silent(survey: Survey, node: Node, local: bool) -> list[str]:
    mine = set(_ips(survey, node.name))
    return [f"{src} -> {ip}" for src, ip in survey[node.name]["silent"] if (ip in mine) == local]


def test_every_pod_reaches_every_pod_on_its_node(node: Node, survey: Survey) -> None:
    if len([ip for ip in survey[node.name]["pods"].values() if ip]) < 2:
        pytest.skip(f"{node.name} has fewer than two pods with an address")
    silent = _silent(survey, node, local=True)
    assert not silent, f"on {node.name}, no answer: {', '.join(silent)}"


def test_every_pod_reaches_every_pod_on_other_nodes(node: Node, inventory: Inventory, survey: Survey) -> None:
    others = [ip for n in inventory.nodes if n.name != node.name for ip in _ips(survey, n.name)]
    if not any(survey[node.name]["pods"].values()) or not others:
        pytest.skip("needs pods on at least two nodes")
    silent = _silent(survey, node, local=False)
    assert not silent, f"from {node.name}, no answer: {', '.join(silent[:20])}" + (" …" if len(silent) > 20 else "")


def test_no_nat_across_nodes(node: Node, survey: Survey, family: int) -> None:
    """A pod receiving a TCP connection from a pod on another node sees that pod's own IP (of each family)."""
    nat = survey[node.name]["nat"][family]
    if "connect" not in nat:
        pytest.skip("needs pods on at least two nodes with python3 (the TCP check runs python3 on the nodes)")
    (src_pod, src_ip), (dst_pod, dst_ip), peer = nat["from"], nat["connect"], nat["peer"]
    assert family not in survey[node.name]["connect_failed"], \
        f"{src_pod}@{node.name} could not connect to {dst_ip} port {survey[node.name]['port']}"
    seen = survey[peer]["heard"].get(family, "")
    assert seen == src_ip, (f"{dst_pod}@{peer} saw the connection from {seen or 'nothing'}, not from {src_ip}: "
                            "NAT on the path")


def test_cni_config_agrees_with_the_bridge(node: Node, inventory: Inventory, survey: Survey) -> None:
    """The CNI config names the hand-made bridge, its gateway and the node's pod subnet."""
    c = inventory.cni
    f = survey[node.name]["conf"]
    assert f is not None, f"{c.conf_dir}/{c.config_name} is missing on {node.name}"
    plugin = json.loads(f.content)["plugins"][0]
    assert plugin["type"] == c.type and plugin["bridge"] == inventory.cluster.bridge
    if c.ipam == "host-local":
        got = [(r[0]["subnet"], r[0]["gateway"]) for r in plugin["ipam"]["ranges"]]
        assert got == [(str(s), str(g)) for s, g in zip(node.pod_subnets, node.pod_gateways)], \
            f"{c.config_name} on {node.name} has ranges {got}"


def test_cni_plugins_installed_executable(node: Node, survey: Survey) -> None:
    for key, value in survey[node.name].items():
        if key.startswith("plugin "):
            assert value is not None and value.mode == "0755", f"{key[7:]} missing or not mode 0755 on {node.name}"
