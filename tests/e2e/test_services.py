"""Services by hand on the lab (kube-proxy's iptables mode): apply, re-apply unchanged, verify by IP and by
name, a lost rule named by verify and mended by apply, reset leaving no chain or jump."""

from __future__ import annotations

import yaml

SERVICES = [
    {"name": "web", "namespace": "default",
     "ports": [{"name": "http", "port": 80, "target_port": 8080, "protocol": "TCP"},
               {"name": "echo", "port": 7, "target_port": 7007, "protocol": "UDP"}],
     "pods": ["web"]},
    {"name": "api", "namespace": "shop", "cluster_ip": "10.96.7.7", "ports": [{"port": 8443, "protocol": "TCP"}],
     "pods": ["node2/api"]},
    {"name": "nothing", "namespace": "default", "ports": [{"port": 80, "protocol": "TCP"}], "pods": []},
]


def with_services(lab) -> None:
    data = lab.data()
    data["services"] = SERVICES
    lab.inventory.write_text(yaml.safe_dump(data, sort_keys=False))


def rules(lab, node: str) -> str:
    return lab.node_sh(node, "iptables-save | grep -e PROV -e 'provisioner services' || true")


def test_services_by_hand_answer_by_ip_and_by_name_and_reset_leaves_no_rule(make_lab):
    lab = make_lab(3)
    with_services(lab)
    p = lab.provision("apply", check=True)
    assert "service rules (iptables mode) for default/web" in p.stdout, p.stdout
    listed = lab.node_sh("node1", "iptables -t nat -L -n | grep default/web")  # the manual procedure's look
    assert "default/web:http cluster IP" in listed and "statistic mode random probability 0.33333333349" in listed
    assert "shop/api" in lab.node_sh("node3", "iptables -t nat -L -n")
    assert "default/nothing:80 has no endpoints" in lab.node_sh("node3", "iptables -L -n")

    rc, again = lab.json("apply")
    assert rc == 0 and all(r["changed"] == 0 for r in again["recap"].values()), again["recap"]

    v = lab.provision("verify", "--", "-rA")
    assert v.returncode == 0, v.stdout[-3000:]
    passed = [ln for ln in v.stdout.splitlines() if ln.startswith("PASSED") and "test_services.py" in ln]
    assert len(passed) == 3 * 5 + 1, v.stdout[-3000:]  # five checks per node and the spread, none skipped
    web_ip = lab.node_sh("node2", "ip netns exec api getent hosts web").split()[0]  # a pod, the search path
    assert lab.node_sh("node1", "getent hosts web.default.svc.cluster.local").split()[0] == web_ip
    assert lab.node_sh("node3", "ip netns exec web getent hosts api.shop").split()[0] == "10.96.7.7"

    # a rule lost on node2 (its DNAT to web's endpoints): verify names the service, apply puts it back
    chain = next(ln.split()[-1] for ln in rules(lab, "node2").splitlines() if "default/web:http cluster IP" in ln)
    lab.node_sh("node2", f"iptables -t nat -F {chain}")
    v = lab.provision("verify")
    assert v.returncode != 0 and "default/web" in v.stdout and "on node2" in v.stdout, v.stdout[-3000:]
    rc, drawn = lab.json("graph", "--live")
    assert [(d["node"], d["id"]) for d in drawn["drift"]] == [("node2", "service:default/web")], drawn["drift"]
    rc, mended = lab.json("apply")
    assert rc == 0 and mended["recap"]["node2"]["changed"] == 1 and mended["recap"]["node1"]["changed"] == 0
    assert lab.provision("verify").returncode == 0

    rc, doc = lab.json("reset")
    assert rc == 0, doc
    for node in ("node1", "node2", "node3"):
        assert rules(lab, node) == "", node


def test_names_resolve_from_a_node_and_from_a_pod_through_the_labs_dns(make_lab):
    lab = make_lab(3)
    data = lab.data()
    data["services"] = [{"name": "web", "namespace": "default", "cluster_ip": "10.96.0.50",
                         "ports": [{"port": 80, "protocol": "TCP"}], "pods": ["web"]}]
    lab.inventory.write_text(yaml.safe_dump(data, sort_keys=False))
    assert lab.provision("apply").returncode == 0
    for node in ("node1", "node2"):
        assert lab.node_sh(node, "getent hosts web.default.svc.cluster.local").split()[0] == "10.96.0.50"
        assert lab.node_sh(node, "getent hosts web").split()[0] == "10.96.0.50"          # the search path
        assert lab.node_sh(node, "ip netns exec api getent hosts web").split()[0] == "10.96.0.50"  # from a pod
    pod = lab.node_sh("node3", "ip netns exec web ip -4 -o addr show dev eth0").split()[3].split("/")[0]
    name = pod.replace(".", "-") + ".default.pod.cluster.local"
    assert lab.node_sh("node1", f"ip netns exec web getent hosts {name}").split()[0] == pod
    assert lab.node_sh("node1", "getent hosts nope.default.svc.cluster.local || echo none").strip() == "none"
