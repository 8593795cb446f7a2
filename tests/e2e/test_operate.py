"""Operating it for real: reset, unreachable nodes and --retry-failed, concurrent runs, facts."""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

from provisioner.lab import namespace

from ..conftest import wait_until

# IPv6 link-local routes appear on their own once DAD ends after the lab starts: left out.
STATE = r"""
ip -json -d link show | python3 -c 'import json,sys; print(sorted((l["ifname"], (l.get("linkinfo") or {}).get("info_kind"), l.get("master"), "UP" in l["flags"]) for l in json.load(sys.stdin)))'
ip -json addr show | python3 -c 'import json,sys; print(sorted((l["ifname"], a["local"], a["prefixlen"]) for l in json.load(sys.stdin) for a in l["addr_info"] if a["family"] == "inet"))'
ip -json route show table all | python3 -c 'import json,sys; print(sorted(str(sorted(r.items())) for r in json.load(sys.stdin) if not r["dst"].startswith("fe80:")))'
ip netns list
cat /proc/sys/net/ipv4/ip_forward /proc/sys/net/bridge/bridge-nf-call-iptables
for d in /etc/cni /etc/sysctl.d /etc/modules-load.d /etc/kubernetes /etc/default /etc/containerd /var/lib/kubelet \
         /var/lib/kube-proxy /etc/provisioner /etc/coredns /var/lib/cni /etc/resolv.conf; do
  [ -e $d ] && find $d -type f -exec sha256sum {} + | sort
done
find /etc/cni /etc/kubernetes /etc/containerd /var/lib/kubelet /var/lib/kube-proxy /etc/provisioner /etc/coredns \
     /var/lib/cni /var/lib/provisioner /etc/systemd/system/kubelet.service.d 2>/dev/null | sort; echo end
"""


def state(lab, node="node1"):
    return lab.node_sh(node, STATE)


def test_reset_leaves_the_nodes_as_before_apply(make_lab):
    lab = make_lab(3, pods=("web", "api"), cni_pods=("db",))
    before = {n: state(lab, n) for n in ("node1", "node2", "node3")}
    assert lab.provision("apply").returncode == 0
    assert state(lab, "node2") != before["node2"]
    assert lab.node_sh("node2", "ls /var/lib/cni/networks/%s | wc -l" % lab.name).strip() != "0"  # a lease exists
    for _ in range(2):
        rc, doc = lab.json("reset")
        assert rc == 0, json.dumps(doc["recap"])
    after = {n: state(lab, n) for n in ("node1", "node2", "node3")}
    assert after == before
    rc, doc = lab.json("reset")
    assert rc == 0 and all(r["changed"] == 0 for r in doc["recap"].values())
    assert lab.provision("apply").returncode == 0
    v = lab.provision("verify")
    assert v.returncode == 0, v.stdout


def test_unreachable_node_then_retry_failed_touches_only_it(make_lab):
    lab = make_lab(3)
    node3 = lab.data()["nodes"][2]["address"]
    namespace.stop_node(lab.name, "node3")
    rc, doc = lab.json("apply", "--retries", "1")
    assert rc == 1
    assert doc["recap"]["node3"]["unreachable"] is True and "node3" in doc["hosts"]["node3"]["error"]
    assert doc["recap"]["node1"]["failed"] == 0 and doc["recap"]["node2"]["failed"] == 0
    v = lab.provision("verify", "--limit", "node1,node2")
    assert v.returncode == 0, v.stdout

    namespace.start_node(lab.name, "node3", node3)
    rc, doc = lab.json("apply", "--retry-failed")
    assert rc == 0, doc
    assert list(doc["recap"]) == ["node3"] and doc["recap"]["node3"]["changed"] > 0
    v = lab.provision("verify")
    assert v.returncode == 0, v.stdout
    p = lab.provision("apply", "--retry-failed")
    assert p.returncode == 0 and "nothing to do" in p.stdout


def test_max_fail_percent_stops_starting_hosts(make_lab):
    lab = make_lab(3, pods=())
    namespace.stop_node(lab.name, "node1")
    rc, doc = lab.json("apply", "--forks", "1", "--retries", "0", "--max-fail-percent", "30")
    assert rc == 1
    assert doc["recap"]["node1"]["unreachable"]
    for n in ("node2", "node3"):  # 1 of 3 failed is over 30%: the rest never started
        assert "not started: more than 30% of hosts failed" in doc["hosts"][n]["error"]
        assert lab.node_sh(n, "ls /etc/cni 2>/dev/null || true") == ""
    rc, doc = lab.json("apply", "--forks", "1", "--retries", "0", "--max-fail-percent", "50")
    assert rc == 1 and doc["recap"]["node2"]["changed"] > 0 and doc["recap"]["node3"]["changed"] > 0


def test_two_concurrent_applies_never_interleave(make_lab):
    lab = make_lab(3)
    argv = [sys.executable, "-m", "provisioner.cli", "apply", str(lab.inventory), "--json", "--lock-timeout", "60"]
    with ThreadPoolExecutor(2) as pool:
        runs = list(pool.map(lambda _: subprocess.run(argv, capture_output=True, text=True, timeout=300), range(2)))
    for r in runs:
        assert r.returncode == 0 or "another provision run holds" in r.stdout, r.stdout + r.stderr
    docs = [json.loads(r.stdout) for r in runs if r.returncode == 0]
    assert docs
    if len(docs) == 2:  # on each node, whichever run came second found everything done
        for node in ("node1", "node2", "node3"):
            assert sorted(d["recap"][node]["changed"] for d in docs)[0] == 0, [d["recap"] for d in docs]
    assert lab.provision("verify").returncode == 0
    for node in ("node1", "node2", "node3"):
        addrs = lab.node_sh(node, "ip -4 -o addr show dev v-net-0 | wc -l; ip route show proto 147 | wc -l; "
                                  "ip -o link show type veth | grep -c ' veth-'; ip -n web -4 -o addr show dev eth0 | wc -l")
        assert addrs.split() == ["1", "2", "2", "1"], (node, addrs)


def test_a_held_lock_makes_apply_fail_clearly(make_lab):
    lab = make_lab(1, pods=())
    holder = subprocess.Popen(["nsenter", "-t", str(namespace.node_pid(lab.name, "node1")), "-n", "-m", "-u", "-p", "-r",
                               "-w", "--", "flock", "/run/provisioner.lock", "sleep", "30"])
    try:
        assert wait_until(lambda: lab.node_sh("node1", "flock -n /run/provisioner.lock true || echo held").strip() == "held")
        p = lab.provision("apply", "--lock-timeout", "1")
        assert p.returncode == 1 and "another provision run holds /run/provisioner.lock" in p.stdout
    finally:
        holder.kill()
        holder.wait()


def test_facts_match_ip_json_and_show_sshd(lab3):
    rc, doc = lab3.json("facts")
    assert rc == 0
    for n in lab3.data()["nodes"]:
        f = doc[n["name"]]
        real = json.loads(lab3.node_sh(n["name"], "ip -json addr show dev eth0"))[0]
        assert f["interface"] == "eth0" and f["mac"] == real["address"]
        assert f["cidr"] == f"{n['address']}/24" and f["network"]["Network"] == n["address"].rsplit(".", 1)[0] + ".0/24"
        assert any(x["port"] == 22 and any(p["name"] == "sshd" for p in x["processes"]) for x in f["listening"])
    table = lab3.provision("facts").stdout
    assert "NODE" in table and "22:sshd" in table


def test_provision_ssh_runs_a_command_on_the_node(make_lab):
    lab = make_lab(2, pods=())
    p = lab.provision("ssh", "node2", "hostname")
    assert p.returncode == 0 and p.stdout.strip() == "node2"
    assert lab.provision("ssh", "nodeX", "true").returncode == 2


def test_a_command_that_hangs_is_cut_by_the_timeout(make_lab):
    lab = make_lab(2, pods=())
    # on node1 only (its own overlay), an `ip` that hangs: gathering facts never ends there
    lab.node_sh("node1", "printf '#!/bin/sh\\nexec sleep 60\\n' > /usr/local/sbin/ip && chmod 755 /usr/local/sbin/ip")
    rc, doc = lab.json("apply", "--timeout", "2")
    assert rc == 1
    assert "node1 did not answer within 2s while gathering facts" in doc["hosts"]["node1"]["error"], doc["hosts"]["node1"]
    assert doc["recap"]["node2"]["failed"] == 0 and doc["recap"]["node2"]["changed"] > 0
    assert doc["recap"]["node1"]["seconds"] < 20


def test_a_node_file_that_is_not_text_fails_only_that_node(make_lab):
    lab = make_lab(2, pods=())
    lab.node_sh("node1", "mkdir -p /etc/containerd && printf 'version = 2\\n\\377\\376 binary\\n' > /etc/containerd/config.toml")
    p = lab.provision("apply")
    assert p.returncode == 1 and "Traceback" not in p.stderr, p.stderr
    assert "/etc/containerd/config.toml is not UTF-8 text (byte 12" in p.stdout, p.stdout
    assert "RECAP" in p.stdout and "INCOMPLETE: 1 of 2 host(s)" in p.stdout
    rc, doc = lab.json("plan")
    assert rc == 1 and doc["recap"]["node2"]["failed"] == 0 and doc["recap"]["node1"]["failed"] == 1
    assert "\nversion = 2\n" in lab.node_sh("node2", "cat /etc/containerd/config.toml")  # a new one, of ours
