"""provision graph --live on a lab: no drift after apply; a route and a pod address removed by hand are
exactly the two differences, drawn in red, exit 1."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from provisioner.graph import RED


def test_graph_live_shows_exactly_the_drift_made_by_hand(make_lab, tmp_path):
    lab = make_lab(3)
    lab.provision("apply", check=True)
    svg = tmp_path / "lab.svg"
    p = lab.provision("graph", "--live", "-o", str(svg))
    pods = {n: lab.node_sh(n, "for p in web api; do ip -n $p -4 -o addr; done") for n in ("node1", "node2", "node3")}
    assert p.returncode == 0 and "0 difference(s)" in p.stdout, (p.stdout, p.stderr, pods)
    assert RED not in svg.read_text()

    lab.node_sh("node2", "ip route del 10.244.3.0/24")
    lab.node_sh("node3", "ip -n web addr flush dev eth0")
    rc, data = lab.json("graph", "--live")
    assert rc == 1
    assert sorted((d["node"], d["what"]) for d in data["drift"]) == [
        ("node2", f"route 10.244.3.0/24 via {lab.data()['nodes'][2]['address']} missing"),
        ("node3", "pod web has no IP, not 10.244.3.2")]
    p = lab.provision("graph", "--live", "-o", str(svg))
    assert p.returncode == 1 and "2 difference(s)" in p.stdout
    root = ET.parse(svg).getroot()  # valid XML
    red_text = " ".join(t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text") if t.get("fill") == RED)
    assert "route 10.244.3.0/24" in red_text and "pod web has no IP" in red_text
