"""verify's service checks, pure: who listens where, what each pod asks, how answers are read back."""

from __future__ import annotations

import ipaddress
import json
import subprocess
import sys
from dataclasses import replace

import pytest

from provisioner.inventory.model import Endpoint, Service, ServicePort
from provisioner.verify import service_checks as sc


def services(inv):
    n1, n2 = inv.nodes[0], inv.nodes[1]
    web = Service("web", "default", ipaddress.ip_address("10.96.3.4"),
                  (ServicePort("http", 80, 8080, "TCP"), ServicePort("dns", 53, 5353, "UDP")),
                  (Endpoint(n1.name, n1.pods[0].name, n1.pods[0].ip), Endpoint(n2.name, n2.pods[0].name, n2.pods[0].ip)))
    empty = Service("none", "default", ipaddress.ip_address("10.96.3.5"), (ServicePort(None, 80, 80, "TCP"),), ())
    return [web, empty]


def test_listeners_once_per_pod_port_and_protocol(base_inventory):
    web, empty = services(base_inventory)
    n1 = base_inventory.nodes[0]
    got = sc.listeners([web, empty, replace(web, name="web2")], n1)
    assert [(x.pod, x.port, x.protocol, x.who) for x in got] == [
        (n1.pods[0].name, 8080, "TCP", f"{n1.name}/{n1.pods[0].name}"), (n1.pods[0].name, 5353, "UDP", f"{n1.name}/{n1.pods[0].name}")]


def test_services_with_an_endpoint_outside_the_run_are_left_out_with_why(base_inventory):
    web, empty = services(replace(base_inventory))
    inv = replace(base_inventory, services=(web, empty))
    keep, left = sc.checked(inv, [base_inventory.nodes[0].name])
    assert keep == [empty] and "not checked in this run" in left["default/web"]


def test_the_first_pod_asks_more_and_every_pod_asks_each_port(base_inventory):
    web, empty = services(base_inventory)
    n1 = base_inventory.nodes[0]
    pods = {p.name: str(p.ip) for p in n1.pods}
    by_pod = sc.asks(base_inventory, [web, empty], n1, pods, askers=3, peer_pod="10.244.9.9")
    first, *rest = [p.name for p in n1.pods]
    kinds = [(a.kind, a.host, a.port) for a in by_pod[first]]
    assert ("refused", "10.96.3.5", 80) in kinds and ("ip", "10.96.3.4", 80) in kinds and ("ip", "10.96.3.4", 53) in kinds
    assert ("name", "web.default", 80) in kinds and ("resolve", "web.default.svc.cluster.local", 0) in kinds
    assert ("pod-name", "10-244-9-9.default.pod.cluster.local", 0) in kinds
    assert ("dns-probe", "kube-dns.kube-system.svc.cluster.local", 0) in kinds
    for other in rest:
        assert [a.kind for a in by_pod[other]] == ["ip", "ip", "dns-probe", "name"]  # names after the probe


def test_spread_asks_enough_that_a_missed_endpoint_is_a_real_fault():
    for endpoints, askers in ((2, 1), (2, 20), (200, 200), (3, 50)):
        k = sc.spread_times(endpoints, askers)
        assert (1 - 1 / endpoints) ** (k * askers) * endpoints < 1e-6
    assert sc.spread_times(1, 10) == 1


def test_answers_are_read_back_by_pod_and_order(base_inventory):
    by_pod = {"web": [sc.Ask("ip", "default/web", "10.96.3.4", 80), sc.Ask("spread", "default/web", "10.96.3.4", 80, times=2)],
              "api": [sc.Ask("ip", "default/web", "10.96.3.4", 80)]}
    out = ("pod web\nanswer 0 node1/web 10.244.1.2\nanswer 1 node2/web 10.244.1.2\nanswer 1 refused\n"
           "pod api\nanswer 0 timeout\nanswer 7 x\nnoise\nfailed api\n")
    assert sc.read_answers(out, by_pod) == ["api"]
    assert by_pod["web"][1].answers == ["node2/web 10.244.1.2", "refused"] and by_pod["api"][0].answers == ["timeout"]


def test_hostile_names_reach_the_node_only_quoted(base_inventory):
    evil = "web'; touch /tmp/pwned; '"
    script = sc.ask_script({evil: [sc.Ask("ip", "default/web", "10.96.3.4", 80)]})
    assert "ip netns exec 'web'\"'\"'; touch /tmp/pwned; '\"'\"''" in script
    x = sc.Listener(evil, "10.244.1.2", 80, "TCP", "node1/x")
    assert "'web'\"'\"'; touch" in sc.serve_script([x])
    with pytest.raises(ValueError):
        sc.stop_script("/tmp/x; rm -rf /")


def test_the_python_of_the_asks_and_the_listener_run(tmp_path):
    """The two python3 programs as the node runs them, on this machine's loopback."""
    ready = tmp_path / "ready"
    port = 38000 + (abs(hash(str(tmp_path))) % 1000)
    srv = subprocess.Popen([sys.executable, "-c", sc.SERVE, "127.0.0.1", str(port), "TCP", "node1/web", "20", str(ready)])
    try:
        for _ in range(100):
            if ready.exists() and ready.read_text():
                break
            import time
            time.sleep(0.05)
        specs = [sc.Ask("ip", "k", "127.0.0.1", port).spec(), sc.Ask("refused", "k", "127.0.0.1", 1).spec(),
                 sc.Ask("resolve", "k", "localhost").spec(), {**sc.Ask("ip", "k", "127.0.0.1", port).spec(), "times": 2}]
        out = subprocess.run([sys.executable, "-c", sc.ASK, json.dumps(specs)], capture_output=True, text=True, timeout=30).stdout
        lines = out.splitlines()
        assert lines[0] == "answer 0 node1/web 127.0.0.1" and lines[1] == "answer 1 refused"
        assert lines[2].startswith("answer 2 ") and "127.0.0.1" in lines[2]
        assert lines[3:] == ["answer 3 node1/web 127.0.0.1"] * 2
        # no cluster DNS (the probe's answer is not the one wanted): the names after it are not waited for
        specs = [sc.Ask("dns-probe", "k", "localhost", want="192.0.2.1").spec(), sc.Ask("resolve", "k", "localhost").spec(),
                 sc.Ask("name", "k", "localhost", port).spec(), sc.Ask("ip", "k", "127.0.0.1", port).spec()]
        out = subprocess.run([sys.executable, "-c", sc.ASK, json.dumps(specs)], capture_output=True, text=True, timeout=30).stdout
        assert out.splitlines()[1:] == ["answer 1 no-dns", "answer 2 no-dns", "answer 3 node1/web 127.0.0.1"]
    finally:
        srv.kill()
