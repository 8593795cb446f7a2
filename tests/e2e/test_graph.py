"""provision graph --live on a lab: no drift after apply; what was changed by hand is exactly what plan would
change, drawn in red on the piece it mends (a route, a pod) or on the node with its task (a sysctl, the conflist),
exit 1."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from provisioner.graph import RED


def test_graph_live_shows_exactly_the_drift_made_by_hand(make_lab, tmp_path):
    lab = make_lab(3)
    lab.provision("apply", check=True)
    svg = tmp_path / "lab.svg"
    p = lab.provision("graph", "--live", "-o", str(svg))
    assert p.returncode == 0 and "0 difference(s)" in p.stdout, (p.stdout, p.stderr)
    assert RED not in svg.read_text()

    lab.node_sh("node2", "ip route del 10.244.3.0/24")
    lab.node_sh("node3", "ip -n web addr flush dev eth0")
    lab.node_sh("node1", "echo 0 > /proc/sys/net/ipv4/ip_forward; f=$(ls /etc/cni/net.d/*.conflist | head -1); "
                         "sed -i 's/\"isGateway\": true/\"isGateway\": false/' \"$f\"")
    rc, data = lab.json("graph", "--live")
    assert rc == 1
    drift = sorted((d["node"], d["id"], d["what"].split(":")[0]) for d in data["drift"])
    assert drift == [
        ("node1", "node:node1", "CNI network config agrees with the hand-made bridge"),
        ("node1", "node:node1", "Kernel forwards and filters pod traffic"),
        ("node2", "route:node2:10.244.3.0/24", f"route 10.244.3.0/24 via {lab.data()['nodes'][2]['address']} missing"),
        ("node3", "pod:node3:web", "pod web has no IP, not 10.244.3.2")], data["drift"]
    # the same as plan: the tasks plan would change are the ones drawn
    rc, plan = lab.json("plan")
    changed = sorted((host, t["name"]) for host, h in plan["hosts"].items() for t in h["tasks"] if t["status"] == "changed")
    assert changed == [("node1", "CNI network config agrees with the hand-made bridge"),
                       ("node1", "Kernel forwards and filters pod traffic"),
                       ("node2", "Routes to the other nodes' pod subnets"),
                       ("node3", "Lab pods wired to the bridge by hand")], changed
    p = lab.provision("graph", "--live", "-o", str(svg))
    assert p.returncode == 1 and "4 difference(s)" in p.stdout
    root = ET.parse(svg).getroot()  # valid XML
    red_text = " ".join(t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text") if t.get("fill") == RED)
    assert "route 10.244.3.0/24" in red_text and "pod web has no IP" in red_text and "Kernel forwards" in red_text
