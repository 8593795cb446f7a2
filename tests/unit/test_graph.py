"""provision graph: the planned network as data, drift from recorded facts, and the SVG."""

import json
import shutil
import xml.etree.ElementTree as ET

import pytest

from provisioner.facts.values import Route
from provisioner import cli, graph
from provisioner.inventory import load_inventory

from ..conftest import BASE, ROOT

ROUTER = BASE.replace("  service_cidr: 10.96.0.0/12\n", "  service_cidr: 10.96.0.0/12\n  routing: router\n  router: 192.168.56.11\n")


def edges(g, kind):
    return {e["id"]: e for e in g["edges"] if e["kind"] == kind}


def test_mesh_graph_from_the_inventory(write):
    inv = load_inventory(write(BASE))
    g = graph.plan_graph(inv)
    kinds = [n["kind"] for n in g["nodes"]]
    assert kinds.count("node") == 3 and kinds.count("bridge") == 3 and "router" not in kinds
    routes = edges(g, "route")
    assert len(routes) == 6  # every node to every peer
    assert routes["route:node2:10.244.1.0/24"]["to"] == "node:node1" and routes["route:node2:10.244.1.0/24"]["via"] == "192.168.56.11"
    bridge = next(n for n in g["nodes"] if n["id"] == "bridge:node2")
    assert "10.244.2.1/24" in bridge["label"] and "10.244.2.0/24" in bridge["label"]
    svc = next(n for n in g["nodes"] if n["id"] == "svc")
    assert "10.96.0.0/12" in svc["label"] and "10.96.0.10" in svc["label"]
    assert g["drift"] == []


def test_a_limited_graph_draws_routes_to_nodes_left_out_as_going_to_the_node_network(write, tmp_path, capsys):
    inv = write(BASE)
    assert cli.main(["graph", str(inv), "-l", "node2", "--format", "dot", "-o", str(tmp_path / "g.dot")]) == 0
    g = graph.plan_graph(load_inventory(inv), ["node2"])
    ids = {n["id"] for n in g["nodes"]}
    assert all(e["from"] in ids and e["to"] in ids for e in g["edges"])
    assert edges(g, "route")["route:node2:10.244.1.0/24"]["to"] == "net"


def test_router_graph_has_one_route_per_node_and_the_router_knows_all(write):
    g = graph.plan_graph(load_inventory(write(ROUTER)))
    assert [n["id"] for n in g["nodes"] if n["kind"] == "router"] == ["node:node1"]
    routes = edges(g, "route")
    assert {k for k in routes if k.startswith("route:node2")} == {"route:node2:10.244.0.0/16"}
    assert routes["route:node2:10.244.0.0/16"]["to"] == "node:node1"
    assert {k for k in routes if k.startswith("route:node1")} == {"route:node1:10.244.2.0/24", "route:node1:10.244.3.0/24"}


def live(inv, monkeypatch, nodes, playbook="playbooks/pod-network.yaml"):
    """graph --live over ShellNodes (nodes in temp dirs): the graph, and plan's own result over the same nodes."""
    from provisioner import engine

    monkeypatch.setattr(engine, "_connect", lambda inv, opts: lambda host: nodes[host])
    g = engine.run(engine.Request("graph", inv, playbook=str(ROOT / playbook), limit=",".join(nodes), live=True)).graph
    plan = engine.run(engine.Request("plan", inv, playbook=str(ROOT / playbook), limit=",".join(nodes)))
    return g, plan


def test_live_drift_is_what_plan_would_change_on_the_piece_it_mends(base_inventory, tmp_path, monkeypatch):
    from ..shell_node import ShellNode

    node = ShellNode(tmp_path)
    g, plan = live(base_inventory, monkeypatch, {"node2": node})  # a fresh node: everything is drift
    (host,) = plan.hosts
    changed = {t.name for t in host.tasks if t.status == "changed"}
    assert len(changed) == 5
    on_node = {d["what"].split(":")[0] for d in g["drift"] if d["id"] == "node:node2"}
    assert on_node == {"Kernel forwards and filters pod traffic",
                       "The pod network comes back after a reboot (a systemd unit replays the steps above at boot)"}
    assert {(d["id"], d["what"]) for d in g["drift"] if d["id"] != "node:node2"} == {
        ("bridge:node2", "bridge v-net-0 missing"), ("pod:node2:web", "pod web missing"),
        ("route:node2:10.244.1.0/24", "route 10.244.1.0/24 via 192.168.56.11 missing"),
        ("route:node2:10.244.3.0/24", "route 10.244.3.0/24 via 192.168.56.13 missing")}

    engine_apply(base_inventory, node)
    g, plan = live(base_inventory, monkeypatch, {"node2": node})
    assert g["drift"] == [] and g["notes"] == [] and not any(t.status == "changed" for t in plan.hosts[0].tasks)

    def by_hand(net):  # what someone might do on the node
        host = net["ns"][""]
        host["routes"] = [r for r in host["routes"] if r["dst"] not in ("10.244.3.0/24", "10.244.1.0/24")] + [
            {"dst": "10.244.9.0/24", "gateway": "192.168.56.99", "dev": "eth0", "protocol": "static"},
            {"dst": "10.244.1.0/24", "gateway": "192.168.56.77", "dev": "eth0", "protocol": "147"}]
        host["links"]["v-net-0"]["up"] = False
        net["ns"]["web"]["links"]["eth0"]["addrs"] = []
    node.edit_network(by_hand)
    (tmp_path / "proc/sys/net/ipv4/ip_forward").write_text("0\n")
    g, plan = live(base_inventory, monkeypatch, {"node2": node})
    assert sorted((d["id"], d["what"]) for d in g["drift"]) == [
        ("bridge:node2", "bridge v-net-0 is down"),
        ("node:node2", "Kernel forwards and filters pod traffic: " + next(
            t.reason for t in plan.hosts[0].tasks if t.name.startswith("Kernel"))),
        ("pod:node2:web", "pod web has no IP, not 10.244.2.2"),
        ("route:node2:10.244.1.0/24", "route 10.244.1.0/24 goes via 192.168.56.77, not 192.168.56.11"),
        ("route:node2:10.244.3.0/24", "route 10.244.3.0/24 via 192.168.56.13 missing")]
    assert g["notes"] == [{"node": "node2", "id": "routes:node2", "what": "foreign route 10.244.9.0/24 via 192.168.56.99"}]
    # one source of truth: every task plan would change has its drift, and no other task has any
    changed = {t.name for t in plan.hosts[0].tasks if t.status == "changed"}
    assert changed == {"Kernel forwards and filters pod traffic", "Pod bridge holds the gateway of the node's pod subnet",
                       "Lab pods wired to the bridge by hand", "Routes to the other nodes' pod subnets"}
    routes_box = next(n for n in g["nodes"] if n["id"] == "routes:node2")
    assert routes_box["drift"] == ["route 10.244.1.0/24 goes via 192.168.56.77, not 192.168.56.11",
                                   "route 10.244.3.0/24 via 192.168.56.13 missing"]
    assert routes_box["notes"] == ["foreign route 10.244.9.0/24 via 192.168.56.99"]


def engine_apply(inv, node):
    from provisioner.engine.runner import Options, run_all
    from provisioner.playbook import bind, load_playbook

    hosts = bind(load_playbook(ROOT / "playbooks/pod-network.yaml"), inv, [node.host])
    (res,) = run_all(hosts, lambda h: node, "apply", Options())
    assert not res.failed, [(t.name, t.error) for t in res.tasks]


def test_a_task_that_cannot_be_planned_or_a_node_that_cannot_be_read_is_drift_on_the_node(base_inventory, tmp_path,
                                                                                            monkeypatch):
    from provisioner.transport.fake import FakeTransport
    from ..shell_node import ShellNode

    node = ShellNode(tmp_path)
    node.edit_network(lambda net: net["ns"][""]["routes"].append(
        {"dst": "10.244.3.0/24", "gateway": "192.168.56.50", "dev": "eth0", "protocol": "static"}))
    g, _ = live(base_inventory, monkeypatch, {"node2": node, "node3": FakeTransport("node3", unreachable=True)})
    on_node = {d["node"]: d["what"] for d in g["drift"] if d["id"].startswith("node:")
               and not d["what"].startswith(("Kernel", "The pod network comes back"))}
    assert on_node["node2"].startswith("Routes to the other nodes' pod subnets: cannot be planned: route to "
                                       "10.244.3.0/24 exists (proto static")
    assert on_node["node3"].startswith("unreachable: ")


def test_drift_is_drawn_in_red_with_its_text(write):
    from provisioner.modules.base import Outcome, Part
    from provisioner.playbook import BoundTask
    from provisioner.steps import Cmd

    inv = load_inventory(write(BASE))
    step = Cmd(("true",))
    routes = Outcome([step], "x", parts=[Part("route", "10.244.1.0/24", "route 10.244.1.0/24 via 192.168.56.11 missing"),
                                         Part("route", "10.244.3.0/24", "route 10.244.3.0/24 via 192.168.56.13 missing")])
    task = BoundTask(play="p", name="Routes", module="routes", args={}, where="site.yaml:1")
    found = graph.drift(inv, inv.node("node2"), [(task, routes), (task, Outcome(reason="in place"))],
                        [Route("10.244.9.0/24", "192.168.56.99", "eth0", "static")])
    g = graph.mark(graph.plan_graph(inv), {"node2": found, "node3": []})
    assert len(g["drift"]) == 2 and all(d["node"] == "node2" for d in g["drift"]) and len(g["notes"]) == 1
    red = [e for e in g["edges"] + g["nodes"] if e.get("drift")]
    assert {e["id"] for e in red} == {"routes:node2", "route:node2:10.244.1.0/24", "route:node2:10.244.3.0/24"}
    source = graph.to_dot(g, "t").source
    assert source.count(graph.RED) == 2 * len(red)  # color and fontcolor of each red element, nothing else
    assert "foreign route 10.244.9.0/24" in source


@pytest.mark.skipif(shutil.which("dot") is None, reason="needs Graphviz's dot (Debian: graphviz)")
def test_svg_of_the_default_lab_is_valid_and_names_everything(tmp_path, capsys):
    out = tmp_path / "lab.svg"
    assert cli.main(["graph", str(ROOT / "inventories/lab.yaml"), "-o", str(out)]) == 0
    assert f"wrote {out}: 3 node(s)" in capsys.readouterr().out
    text = " ".join(t.strip() for t in ET.parse(out).getroot().itertext())  # parses: valid XML
    inv = load_inventory(ROOT / "inventories/lab.yaml")
    for n in inv.nodes:
        assert n.name in text and str(n.ip) in text and str(n.pod_subnet) in text
        for p in n.pods:
            assert p.name in text
    for want in ("10.244.2.0/24 via 10.213.0.12", "10.213.0.0/24", "10.96.0.10", "v-net-0"):
        assert want in text


def test_dot_and_json_without_graphviz(write, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")  # no dot binary: DOT and JSON still work
    inv = write(BASE)
    assert cli.main(["graph", str(inv), "-o", str(tmp_path / "g.dot")]) == 0
    assert (tmp_path / "g.dot").read_text().startswith("graph ")
    capsys.readouterr()
    assert cli.main(["graph", str(inv), "--json", "-l", "node1"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [n["id"] for n in data["nodes"] if n["kind"] == "node"] == ["node:node1"] and data["drift"] == []
    assert cli.main(["graph", str(inv), "-o", str(tmp_path / "g.svg")]) == 2
    assert "apt install graphviz" in capsys.readouterr().err


def test_outputs_replace_a_planted_symlink_instead_of_writing_through_it(write, tmp_path, capsys):
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    out = tmp_path / "net.dot"
    out.symlink_to(victim)
    assert cli.main(["graph", str(write(BASE)), "--format", "dot", "-o", str(out)]) == 0
    assert victim.read_text() == "precious\n" and not out.is_symlink() and out.read_text().startswith("graph ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["inv.yaml", "net.dot", "victim"]  # no temp file left
