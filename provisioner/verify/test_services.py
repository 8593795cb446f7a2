"""The inventory's services, as a pod sees them: each answers on its cluster IP and by name from every pod,
spreads over all of its endpoints, keeps the client's address (no NAT but for a pod reaching itself), and a
service with no endpoints is refused at once.

Each test reads ``services_survey`` (three execs per node: listeners in the endpoint pods, the asks, the
listeners stopped).
"""

from __future__ import annotations

from typing import Any

import pytest

from provisioner.inventory import Inventory, Node

Survey = dict[str, Any]


def _asks(ss: Survey, node: Node, kind: str) -> list[tuple[str, Any]]:
    """``(pod, Ask)`` of this kind that the node's pods asked."""
    return [(pod, a) for pod, mine in ss["asks"].get(node.name, {}).items() for a in mine if a.kind == kind]


def _ready(ss: Survey, node: Node) -> None:
    if not ss["services"]:
        why = "; ".join(f"{k}: {w}" for k, w in ss["left"].items())
        pytest.skip("no services in the inventory" + (f" checked here ({why})" if why else ""))
    if not ss["python"].get(node.name):
        pytest.skip(f"{node.name} has no python3 (the service checks run python3 on the nodes)")
    broken = [x for n, lines in ss["not_ready"].items() for x in lines]
    assert not broken, "endpoint listeners did not start: " + "; ".join(broken)
    failed = ss["failed"].get(node.name)
    assert not failed, f"python3 failed in pod(s) {', '.join(failed)} on {node.name}"


def _who(answer: str) -> tuple[str, str]:
    who, _, peer = answer.partition(" ")
    return who, peer


def _endpoints(ss: Survey, key: str) -> dict[str, str]:
    """``{node/pod: ip}`` of the service's endpoints."""
    s = next(s for s in ss["services"] if s.key == key)
    return {f"{e.node}/{e.pod}": str(e.ip) for e in s.endpoints}


def test_every_pod_reaches_every_service_by_its_cluster_ip(node: Node, services_survey: Survey) -> None:
    ss = services_survey
    _ready(ss, node)
    bad = [f"{pod} -> {a.service} {a.host}:{a.port}/{a.protocol}: {', '.join(sorted(set(a.answers))) or 'no answer'}"
           for pod, a in _asks(ss, node, "ip") + _asks(ss, node, "spread")
           if len(a.answers) != a.times or any(_who(x)[0] not in _endpoints(ss, a.service) for x in a.answers)]
    assert not bad, f"on {node.name}: " + "; ".join(bad[:10])


def test_service_traffic_keeps_the_client_address(node: Node, inventory: Inventory, services_survey: Survey,
                                                  survey: dict[str, dict[str, Any]]) -> None:
    """The endpoint sees the asking pod's own address: only a pod that reaches itself through the service is
    masqueraded (kube-proxy's hairpin rule), so that its answer can come back."""
    ss = services_survey
    _ready(ss, node)
    pods = survey[node.name]["pods"]
    bad = []
    for pod, a in _asks(ss, node, "ip") + _asks(ss, node, "spread"):
        for answer in a.answers:
            who, peer = _who(answer)
            if who in _endpoints(ss, a.service) and who != f"{node.name}/{pod}" and peer != pods.get(pod):
                bad.append(f"{pod} ({pods.get(pod)}) -> {a.service}: {who} saw {peer}")
    assert not bad, f"NAT on the way to a service from {node.name}: " + "; ".join(bad[:10])


def test_each_service_spreads_over_all_of_its_endpoints(inventory: Inventory, services_survey: Survey) -> None:
    ss = services_survey
    if not ss["services"]:
        pytest.skip("no services in the inventory checked here")
    seen: dict[str, set[str]] = {}
    for node in inventory.nodes:
        for _, a in _asks(ss, node, "spread"):
            seen.setdefault(a.service, set()).update(_who(x)[0] for x in a.answers)
    bad = []
    for s in ss["services"]:
        if s.endpoints and s.key in seen:
            missing = sorted(set(_endpoints(ss, s.key)) - seen[s.key])
            if missing:
                bad.append(f"{s.key}: never answered by {', '.join(missing)} (answers came from "
                           f"{', '.join(sorted(seen[s.key])) or 'nothing'})")
    assert not bad, "; ".join(bad)


def test_a_service_without_endpoints_is_refused_not_left_hanging(node: Node, services_survey: Survey) -> None:
    ss = services_survey
    _ready(ss, node)
    asked = _asks(ss, node, "refused")
    if not asked:
        pytest.skip("no service without endpoints")
    bad = [f"{pod} -> {a.service} {a.host}:{a.port}/{a.protocol}: {', '.join(a.answers) or 'no answer'}"
           for pod, a in asked if a.answers != ["refused"]]
    assert not bad, f"on {node.name}, not refused: " + "; ".join(bad)


def _dns(ss: Survey, node: Node, inventory: Inventory) -> None:
    """Skip the name checks where no cluster DNS answers for kube-dns.kube-system (the lab runs one; on other
    clusters CoreDNS, which must then know these services too)."""
    probe = [a for _, a in _asks(ss, node, "dns-probe")]
    if not probe or probe[0].answers != [probe[0].want]:
        got = ", ".join(probe[0].answers) if probe else "not asked"
        pytest.skip(f"no cluster DNS at {inventory.cluster.dns_ip} from {node.name}: {probe[0].host if probe else ''} "
                    f"is {got}, not {inventory.cluster.dns_ip}")


def test_every_service_resolves_and_answers_by_name(node: Node, inventory: Inventory, services_survey: Survey) -> None:
    ss = services_survey
    _ready(ss, node)
    _dns(ss, node, inventory)
    bad = [f"{a.host} is {', '.join(a.answers)}, not {a.want}" for _, a in _asks(ss, node, "resolve")
           if a.answers != [a.want]]
    bad += [f"{pod} -> {a.host}:{a.port}/{a.protocol} (the search path of resolv.conf): "
            f"{', '.join(a.answers) or 'no answer'}" for pod, a in _asks(ss, node, "name")
            if len(a.answers) != 1 or _who(a.answers[0])[0] not in _endpoints(ss, a.service)]
    assert not bad, f"on {node.name}: " + "; ".join(bad)


def test_pod_names_resolve_to_their_pod(node: Node, inventory: Inventory, services_survey: Survey) -> None:
    ss = services_survey
    _ready(ss, node)
    _dns(ss, node, inventory)
    asked = _asks(ss, node, "pod-name")
    if not asked:
        pytest.skip("needs a pod on another node")
    bad = [f"{a.host} is {', '.join(a.answers)}, not {a.want}" for _, a in asked if a.answers != [a.want]]
    assert not bad, f"on {node.name}: " + "; ".join(bad)
