"""An operator's bad day on a lab, each fault bounded: links cut, sshd killed, clients killed, drift by hand.

Faults are made with the lab's own links (the host end of a node's veth, or the
node's eth0 from inside it) and, for "in the middle of a step", a wrapper around
`ip` in one node's own overlay that cuts or stalls at a chosen command.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

from provisioner.lab import namespace

from ..conftest import wait_until

BOUND = 5  # seconds a run may take past --host-timeout


REACHED, PASSED = "/run/provision-test-reached", "/run/provision-test-passed"


def wrap_ip(lab, node: str, match: str, action: str) -> None:
    """On ``node`` only, `ip` runs ``action`` first when its arguments contain ``match``; it marks the moment it
    gets there (REACHED) and the moment the action is over (PASSED), for tests to wait on instead of sleeping."""
    lab.node_sh(node, f"""rm -f {REACHED} {PASSED}; cat > /usr/local/sbin/ip <<'EOF'
#!/bin/sh
case "$*" in *"{match}"*) : > {REACHED}; {action}; : > {PASSED} ;; esac
exec /sbin/ip "$@"
EOF
chmod 755 /usr/local/sbin/ip""")


def wait_mark(lab, node: str, mark: str, limit: float = 30) -> None:
    """Wait until the wrapped `ip` on ``node`` has set ``mark``."""
    assert wait_until(lambda: lab.node_sh(node, f"test -e {mark} && echo yes || true").strip() == "yes", limit), \
        f"{node} never reached {mark}"


def lock_waiters(lab, node: str) -> int:
    """How many processes on ``node`` hold or wait for the node lock (flock on /run/provisioner.lock)."""
    # [p]: the grep and the shell around it do not count themselves
    return int(lab.node_sh(node, "grep -l '[p]rovisioner[.]lock' /proc/[0-9]*/cmdline 2>/dev/null | wc -l").strip() or 0)


def unwrap_ip(lab, node: str) -> None:
    lab.node_sh(node, "rm -f /usr/local/sbin/ip")


def link(lab, node: str, state: str) -> None:
    subprocess.run(["ip", "link", "set", f"{lab.name}-{node}", state], check=True)


def start(lab, *args: str) -> subprocess.Popen:
    argv = [sys.executable, "-m", "provisioner.cli", args[0], str(lab.inventory), "--json", *args[1:]]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(p: subprocess.Popen, limit: float) -> tuple[int, dict, float]:
    t0 = time.monotonic()
    out, err = p.communicate(timeout=limit + 30)
    try:
        return p.returncode, json.loads(out), time.monotonic() - t0
    except ValueError:
        raise AssertionError(f"not JSON (exit {p.returncode}):\n{out}\n{err}") from None


def sent(dev: str) -> int:
    """Bytes the tc qdisc on ``dev`` has sent (toward the node)."""
    out = subprocess.run(["tc", "-s", "qdisc", "show", "dev", dev], capture_output=True, text=True).stdout
    words = out.split()
    return int(words[words.index("Sent") + 1]) if "Sent" in words else 0


def retry_record(lab) -> dict:
    return json.loads((lab.inventory.parent / f".{lab.inventory.name}.provision-state.json").read_text())["hosts"]


def test_cut_links_end_the_run_in_time_and_retry_repairs_only_that_node(make_lab):
    lab = make_lab(3, pods=("web",))
    # 1. cut before facts: the node never answers
    link(lab, "node2", "down")
    t0 = time.monotonic()
    rc, doc, _ = finish(start(lab, "apply", "--timeout", "5", "--host-timeout", "8", "--retries", "1"), 60)
    assert time.monotonic() - t0 < 8 + BOUND + 3, time.monotonic() - t0  # + interpreter start-up
    assert rc == 1 and doc["recap"]["node2"]["unreachable"] and doc["recap"]["node1"]["failed"] == 0
    assert retry_record(lab)["node2"]["failed"] and not retry_record(lab)["node1"]["failed"]
    link(lab, "node2", "up")
    # 2. cut in the middle of the apply script (node2 takes its own eth0 down at its first route)
    lab.node_sh("node2", "ip link del v-net-0 2>/dev/null; true")
    wrap_ip(lab, "node2", "route replace", "/sbin/ip link set eth0 down")
    p = start(lab, "apply", "--retry-failed", "--timeout", "5", "--host-timeout", "10")
    rc, doc, took = finish(p, 60)
    assert took < 10 + BOUND + 3 and rc == 1, (took, doc["hosts"]["node2"])
    err = doc["hosts"]["node2"]["error"] or ""
    assert ("connection to node2 lost during apply" in err or "did not finish within" in err), json.dumps(
        [(t["module"], t["status"], t.get("error")) for t in doc["hosts"]["node2"]["tasks"]])
    assert list(doc["recap"]) == ["node2"]
    lab.node_sh("node2", "ip link set eth0 up")
    unwrap_ip(lab, "node2")
    # 3. healed: --retry-failed repairs node2 alone, and does not wait on a stale lock
    t0 = time.monotonic()
    rc, doc, _ = finish(start(lab, "apply", "--retry-failed", "--lock-timeout", "30"), 90)
    assert rc == 0 and list(doc["recap"]) == ["node2"], doc["recap"]
    assert time.monotonic() - t0 < 20
    assert lab.provision("verify").returncode == 0


def test_link_down_during_the_upload_and_while_waiting_for_the_lock(make_lab):
    lab = make_lab(2, pods=())
    veth = f"{lab.name}-node2"
    subprocess.run(["tc", "qdisc", "add", "dev", veth, "root", "tbf", "rate", "1mbit", "burst", "32kbit",
                    "latency", "400ms"], check=True)
    try:
        p = start(lab, "apply", "--timeout", "6", "--host-timeout", "9")
        # the apply script (plugins inside it) is on its way at 1 Mbit/s once more than the facts have gone out
        assert wait_until(lambda: sent(veth) > 64 * 1024, 30)
        link(lab, "node2", "down")
        rc, doc, _ = finish(p, 60)
        assert rc == 1 and doc["recap"]["node1"]["failed"] == 0 and doc["recap"]["node1"]["changed"] > 0
        assert doc["hosts"]["node2"]["error"], doc["hosts"]["node2"]
    finally:
        subprocess.run(["tc", "qdisc", "del", "dev", veth, "root"], capture_output=True)
        link(lab, "node2", "up")
    holder = subprocess.Popen(["nsenter", "-t", str(namespace.node_pid(lab.name, "node2")), "-n", "-m", "-u", "-p",
                               "-r", "-w", "--", "flock", "/run/provisioner.lock", "sleep", "60"])
    try:
        assert wait_until(lambda: lock_waiters(lab, "node2") >= 1)  # the holder has it
        t0 = time.monotonic()
        p = start(lab, "apply", "--lock-timeout", "0", "--host-timeout", "6", "--limit", "node2")
        assert wait_until(lambda: lock_waiters(lab, "node2") >= 2)  # the run is waiting for it
        link(lab, "node2", "down")  # cut while it waits for the lock
        rc, doc, _ = finish(p, 60)
        assert rc == 1 and time.monotonic() - t0 < 6 + BOUND + 3, time.monotonic() - t0
        assert doc["recap"]["node2"]["failed"] or doc["recap"]["node2"]["unreachable"], doc["recap"]
    finally:
        holder.kill()
        holder.wait()
        link(lab, "node2", "up")


def test_sshd_killed_mid_run_is_said_plainly(make_lab):
    lab = make_lab(2, pods=())
    wrap_ip(lab, "node2", "route replace", "sleep 4")
    p = start(lab, "apply", "--timeout", "20", "--retries", "0")
    wait_mark(lab, "node2", REACHED)  # the apply script is inside its route step
    namespace.stop_node(lab.name, "node2")
    rc, doc, _ = finish(p, 60)
    err = doc["hosts"]["node2"]["error"] or ""
    assert rc == 1 and err.startswith("node2: connection to node2 lost during apply (at step "), json.dumps(
        [(t["module"], t["status"], t.get("error")) for t in doc["hosts"]["node2"]["tasks"]])
    assert "exit -1" not in err and "EOF during negotiation" not in err
    assert doc["recap"]["node1"]["failed"] == 0


def test_drift_by_hand_is_repaired(make_lab):
    lab = make_lab(2, pods=("web",), cni_pods=("db",))
    assert lab.provision("apply").returncode == 0
    lab.node_sh("node2", "ip netns del db")  # a CNI pod's sandbox gone, its lease still taken
    rc, doc = lab.json("apply")
    assert rc == 0, doc["hosts"]["node2"]
    assert lab.provision("verify").returncode == 0
    lab.node_sh("node1", "ip link del v-net-0")  # the bridge deleted by hand: every port is gone with it
    rc, plan = lab.json("plan")
    drifted = {t["module"] for t in plan["hosts"]["node1"]["tasks"] if t["status"] == "changed"}
    assert {"bridge", "pods", "cni_pods"} <= drifted, drifted  # every drifted task at once
    rc, doc = lab.json("apply")
    assert rc == 0, doc["hosts"]["node1"]
    v = lab.provision("verify")
    assert v.returncode == 0, v.stdout
    rc, plan = lab.json("plan")
    assert all(r["changed"] == 0 for r in plan["recap"].values()), plan["recap"]


def test_locks_cover_the_work_and_expire(make_lab):
    lab = make_lab(2, pods=("web",))
    lab.node_sh("node1", "echo 'echo Welcome to node1' >> /root/.bashrc")  # start-up output on every exec
    wrap_ip(lab, "node1", "route replace", "sleep 5")
    first = start(lab, "apply")
    wait_mark(lab, "node1", REACHED)
    first.send_signal(signal.SIGKILL)  # the client dies; its script goes on on node1
    first.wait()
    t0 = time.monotonic()
    rc, doc, _ = finish(start(lab, "apply", "--lock-timeout", "60"), 90)
    assert rc == 0, doc["hosts"]["node1"]  # no "Address already assigned": it waited for the script
    assert time.monotonic() - t0 > 1.0
    unwrap_ip(lab, "node1")
    rc, doc = lab.json("reset")
    assert rc == 0, doc["hosts"]["node1"]
    # a holder whose host vanished (cut off, then killed): the lock is free within seconds once the link heals
    wrap_ip(lab, "node2", "addr add", "sleep 3")
    p = start(lab, "apply", "--limit", "node2")
    wait_mark(lab, "node2", REACHED)
    link(lab, "node2", "down")
    p.send_signal(signal.SIGKILL)
    p.wait()
    time.sleep(1)  # the holder stays away for a while (not a wait for an event: time passing is the fault)
    link(lab, "node2", "up")
    t0 = time.monotonic()
    rc, doc, _ = finish(start(lab, "apply", "--limit", "node2", "--lock-timeout", "30"), 60)
    assert rc == 0 and time.monotonic() - t0 < 15, (time.monotonic() - t0, doc["hosts"]["node2"])
    assert lab.node_sh("node2", "cat /run/provisioner.lock.owner 2>/dev/null || true") == ""


def test_reset_after_a_cut_off_apply_restores_the_fresh_values(make_lab):
    lab = make_lab(1, pods=())
    fresh = lab.node_sh("node1", "cat /proc/sys/net/ipv4/ip_forward").strip()
    wrap_ip(lab, "node1", "link add v-net-0", "sleep 5")
    p = start(lab, "apply")
    wait_mark(lab, "node1", REACHED)  # past the sysctl task, inside the bridge task
    p.send_signal(signal.SIGKILL)
    p.wait()
    wait_mark(lab, "node1", PASSED)  # the script goes on by itself on the node
    assert wait_until(lambda: lock_waiters(lab, "node1") == 0)  # and ends
    unwrap_ip(lab, "node1")
    assert lab.node_sh("node1", "cat /proc/sys/net/ipv4/ip_forward").strip() == "1"
    assert lab.provision("apply").returncode == 0
    rc, doc = lab.json("reset")
    assert rc == 0, doc["hosts"]["node1"]
    assert lab.node_sh("node1", "cat /proc/sys/net/ipv4/ip_forward").strip() == fresh
    assert lab.node_sh("node1", "ls -A /tmp | grep -c provisioner || true").strip() == "0"
