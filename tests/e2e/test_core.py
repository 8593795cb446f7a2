"""The core promise on a real 3-node namespace lab, over real SSH."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from provisioner.lab import namespace

SNAPSHOT = """
ip -json -d link show; echo; ip -json addr show; echo; ip -json route show table all; echo
ip -json netns list; echo; for n in $(ip netns list | cut -d' ' -f1); do ip -n $n -json addr; done; echo
cat /proc/sys/net/ipv4/ip_forward /proc/sys/net/bridge/bridge-nf-call-iptables
for d in /etc/sysctl.d /etc/modules-load.d /etc/cni /var/lib/cni; do
  [ -d $d ] && find $d -type f -exec sha256sum {} + | sort
done; echo end
"""


def snapshot(lab, nodes=("node1", "node2", "node3")) -> dict:
    return {n: lab.node_sh(n, SNAPSHOT) for n in nodes}


def test_apply_verify_then_nothing_to_do(lab3):
    rc, first = lab3.json("apply")
    assert rc == 0, json.dumps(first, indent=1)
    assert all(r["changed"] > 0 and r["failed"] == 0 for r in first["recap"].values()), first["recap"]

    v = lab3.provision("verify")
    assert v.returncode == 0, v.stdout + v.stderr
    assert " passed" in v.stdout and "failed" not in v.stdout

    rc, second = lab3.json("apply")
    assert rc == 0
    assert {h: r["changed"] for h, r in second["recap"].items()} == {"node1": 0, "node2": 0, "node3": 0}
    reasons = [t["reason"] for t in second["hosts"]["node1"]["tasks"]]
    assert "bridge v-net-0 already up with 10.244.1.1/24" in reasons

    rc, plan = lab3.json("plan")
    assert rc == 0 and all(r["changed"] == 0 for r in plan["recap"].values())
    human = lab3.provision("plan")
    assert "plan: nothing to do." in human.stdout


def test_plan_on_fresh_lab_changes_nothing(lab3):
    before = snapshot(lab3)
    rc, plan = lab3.json("plan")
    assert rc == 0
    assert all(r["changed"] > 0 for r in plan["recap"].values()), plan["recap"]
    cmds = [c for t in plan["hosts"]["node2"]["tasks"] for c in t["commands"]]
    assert "ip route replace 10.244.1.0/24 via %s proto 147" % lab3.data()["nodes"][0]["address"] in cmds
    assert snapshot(lab3) == before


def test_verify_fails_on_a_fresh_lab_and_when_nat_hides_the_pod(lab3):
    assert lab3.provision("verify").returncode != 0  # nothing applied yet: the suite must fail
    assert lab3.provision("apply").returncode == 0
    lab3.node_sh("node1", "command -v iptables >/dev/null || exit 0; "
                 "iptables -t nat -A POSTROUTING -s 10.244.1.0/24 ! -d 10.244.1.0/24 -j MASQUERADE")
    if "MASQUERADE" not in lab3.node_sh("node1", "iptables -t nat -S 2>/dev/null || true"):
        pytest.skip("iptables is not usable here")
    v = lab3.provision("verify", "--", "-k", "no_nat")
    assert v.returncode != 0 and "NAT on the path" in v.stdout, v.stdout


def test_a_broken_node_is_repaired(lab3):
    assert lab3.provision("apply").returncode == 0
    lab3.node_sh("node2", "ip addr flush dev v-net-0; ip route del 10.244.3.0/24; ip netns del api")
    rc, doc = lab3.json("apply")
    assert rc == 0
    assert doc["recap"]["node2"]["changed"] == 3 and doc["recap"]["node1"]["changed"] == 0
    assert lab3.provision("verify").returncode == 0


def test_unreachable_node_does_not_stop_the_others(make_lab, tmp_path):
    lab = make_lab(2)
    data = lab.data()
    ghost_ip = data["nodes"][1]["address"].rsplit(".", 1)[0] + ".99"
    data["nodes"].append({"name": "ghost", "address": ghost_ip, "pods": ["web"]})
    data["ssh"]["connect_timeout"] = 3
    inv = tmp_path / "with-ghost.yaml"
    import yaml
    inv.write_text(yaml.safe_dump(data))
    rc, doc = lab.json("apply", inventory=inv)
    assert rc == 1
    assert doc["recap"]["ghost"]["unreachable"] is True
    assert doc["recap"]["node1"]["failed"] == 0 and doc["recap"]["node1"]["changed"] > 0
    human = lab.provision("apply", inventory=inv)
    assert "[ghost] unreachable" in human.stdout and human.returncode == 1


def test_unknown_host_key_is_refused(make_lab, tmp_path):
    lab = make_lab(1, pods=())
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    inv = tmp_path / "strict.yaml"
    inv.write_text(lab.inventory.read_text().replace(str(namespace.ROOT / lab.name / "known_hosts"), str(empty)))
    p = lab.provision("plan", inventory=inv)
    assert p.returncode == 1 and "is not in" in p.stdout and "known_hosts" in p.stdout


def test_lab_down_leaves_nothing(make_lab):
    lab = make_lab(3)
    assert lab.provision("apply").returncode == 0
    removed = namespace.down(lab.name)
    assert any(r.startswith("netns ") for r in removed)
    assert namespace.running(lab.name) == {"netns": [], "links": [], "pids": [], "state": False}
    mounts = open("/proc/self/mountinfo").read()
    assert str(namespace.ROOT / lab.name) not in mounts
    assert not lab.inventory.exists()
    assert namespace.down(lab.name) == []  # twice is fine


def test_lab_down_after_a_crash_finds_leftovers_by_name(make_lab):
    lab = make_lab(2)
    import shutil
    shutil.rmtree(namespace.ROOT / lab.name)  # state lost, as after a crash
    namespace.down(lab.name)
    assert namespace.running(lab.name) == {"netns": [], "links": [], "pids": [], "state": False}


def test_a_non_root_user_with_sudo(make_lab, tmp_path):
    import yaml
    lab = make_lab(2)
    for node in ("node1", "node2"):  # node-local users: /etc is the node's own overlay
        lab.node_sh(node, "useradd -m -s /bin/sh -p '*' ops && echo 'ops ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/ops "
                          "&& chmod 0440 /etc/sudoers.d/ops")
    data = lab.data()
    data["ssh"].update(user="ops", sudo=True)
    inv = tmp_path / "ops.yaml"
    inv.write_text(yaml.safe_dump(data))
    rc, doc = lab.json("apply", inventory=inv)
    assert rc == 0, json.dumps(doc, indent=1)[:3000]
    assert lab.node_sh("node2", "stat -c %U /etc/cni/bin/bridge; ip -br addr show dev v-net-0").split()[:2] == ["root", "v-net-0"]
    v = lab.provision("verify", inventory=inv)
    assert v.returncode == 0, v.stdout
    data["ssh"]["sudo"] = False  # without sudo the same user cannot do it, and says so
    inv.write_text(yaml.safe_dump(data))
    rc, doc = lab.json("apply", inventory=inv)
    assert rc == 1


def test_lab_nodes_are_clean_machines(make_lab):
    """A node sees none of this machine's node-level state (podman's /etc/cni, containerd, kubelet…)."""
    from provisioner.lab.namespace import HIDDEN

    probe_dir = Path("/etc/kubernetes")
    made_dir = not probe_dir.exists()
    probe = probe_dir / "provisioner-lab-probe"
    probe_dir.mkdir(exist_ok=True)
    try:
        probe.write_text("the host's own file\n")
        lab = make_lab(1, pods=())
        seen = lab.node_sh("node1", "for p in %s; do [ ! -e $p ] || echo $p; done" % " ".join(HIDDEN))
        assert seen == "", f"the node sees the host's {seen.split()}"
        assert lab.node_sh("node1", "ip -json addr show | grep -c tentative || true").strip() == "0"
    finally:
        probe.unlink(missing_ok=True)
        if made_dir:
            probe_dir.rmdir()
