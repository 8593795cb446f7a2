"""provision graph: the planned network as data, drift from recorded facts, and the SVG."""

import json
import shutil
import xml.etree.ElementTree as ET

import pytest

from provisioner.facts.values import Link, Route
from provisioner import cli, graph
from provisioner.facts.net import Addrs, Links, Routes
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


def healthy(inv, name):
    """Facts of a node exactly as the inventory wants it."""
    from provisioner.template_vars import pod_routes

    n = inv.node(name)
    values = {Links(): {"v-net-0": Link(kind="bridge", up=True)}, Addrs(): {"v-net-0": [f"{n.pod_gateway}/24"]},
              Routes(): [Route(r["dst"], r["via"], "eth0", "147") for r in pod_routes(inv, n)]
              + [Route("default", "10.0.2.2", "eth0", "boot")]}
    for p in n.pods:
        values[Addrs(p.name)] = {"eth0": [f"{p.ip}/24"]}
    return values


def test_drift_from_recorded_facts(write):
    inv = load_inventory(write(BASE))
    node = inv.node("node2")
    assert graph.drift(inv, node, healthy(inv, "node2")) == []
    v = healthy(inv, "node2")
    v[Routes()] = [r for r in v[Routes()] if r.dst != "10.244.3.0/24"] + [
        Route("10.244.9.0/24", "192.168.56.99", "eth0", "static")]
    v[Addrs()] = {"v-net-0": ["10.244.7.1/24"]}
    found = graph.drift(inv, node, v)
    assert [d["what"] for d in found] == ["bridge v-net-0 has 10.244.7.1/24, not 10.244.2.1/24",
                                          "route 10.244.3.0/24 via 192.168.56.13 missing",
                                          "foreign route 10.244.9.0/24 via 192.168.56.99"]
    assert graph.drift(inv, node, None, "ssh: Connection refused") == [
        {"id": "node:node2", "what": "unreachable: ssh: Connection refused"}]
    pods = healthy(inv, "node2")
    pods[Addrs("web")] = {"eth0": []}
    assert [d["what"] for d in graph.drift(inv, node, pods)] == ["pod web has no IP, not 10.244.2.2"]


def test_drift_is_drawn_in_red_with_its_text(write):
    inv = load_inventory(write(BASE))
    v = healthy(inv, "node2")
    v[Routes()] = []
    g = graph.mark(graph.plan_graph(inv), {"node2": graph.drift(inv, inv.node("node2"), v), "node3": []})
    assert len(g["drift"]) == 2 and all(d["node"] == "node2" for d in g["drift"])
    red = [e for e in g["edges"] + g["nodes"] if e.get("drift")]
    assert {e["id"] for e in red} == {"routes:node2", "route:node2:10.244.1.0/24", "route:node2:10.244.3.0/24"}
    source = graph.to_dot(g, "t").source
    assert source.count(graph.RED) == 2 * len(red)  # color and fontcolor of each red element, nothing else


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
