"""verify by default pings linearly (each node one pod of every other node) and still names a single missing route;
--full pings every pod from every pod; a pod that answers nobody is named by both."""

from __future__ import annotations


def test_default_verify_names_one_missing_route_and_full_pings_the_mesh(make_lab):
    lab = make_lab(4)
    lab.provision("apply", check=True)
    ok = lab.provision("verify")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    full = lab.provision("verify", "--full")
    assert full.returncode == 0, full.stdout + full.stderr

    node4 = lab.data()["nodes"][3]["address"]
    lab.node_sh("node2", "ip route del 10.244.4.0/24")
    p = lab.provision("verify")
    assert p.returncode == 1, p.stdout
    assert f"node2: no route to 10.244.4.0/24 via {node4}" in p.stdout
    # node2's ping to node4's pod goes nowhere, and node4's ping to node2's pod gets no answer back (node2 cannot
    # route the reply): both named with the pod and the address
    assert "from node2, no answer: " in p.stdout and "-> 10.244.4." in p.stdout
    assert "from node4, no answer: " in p.stdout and "-> 10.244.2." in p.stdout
    failed = sorted(line.split("::")[1].split(" ")[0] for line in p.stdout.splitlines() if line.startswith("FAILED"))
    assert failed == ["test_every_pod_reaches_every_pod_on_other_nodes[node2]",
                      "test_every_pod_reaches_every_pod_on_other_nodes[node4]", "test_routes_to_every_peer[node2]"], p.stdout

    lab.node_sh("node2", f"ip route add 10.244.4.0/24 via {node4} proto 147")
    lab.node_sh("node3", "ip -n api link set eth0 down")  # a pod cut off (not the no-NAT check's): mesh pings to it go silent
    p = lab.provision("verify", "--full")
    assert p.returncode == 1
    for other in ("node1", "node2", "node4"):
        assert f"from {other}, no answer: " in p.stdout and "-> 10.244.3.3" in p.stdout
