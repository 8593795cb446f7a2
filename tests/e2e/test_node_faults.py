"""Nodes that are not as expected say so plainly, before anything changes: a shell start-up file that exits,
a node without `ip`, and a lock held by someone else past the host's own deadline."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from provisioner.lab import namespace

from ..conftest import wait_until


def in_node(lab, node: str, *argv: str) -> subprocess.Popen:
    return subprocess.Popen(["nsenter", "-t", str(namespace.node_pid(lab.name, node)), "-n", "-m", "-u", "-p", "-r",
                             "-w", "--", *argv])


def test_a_start_up_file_that_exits_is_named_not_mistaken_for_a_lock(make_lab):
    lab = make_lab(1, pods=())
    lab.node_sh("node1", "echo 'exit 0' >> /root/.bashrc")  # every exec of the SSH user ends before its command
    t0 = time.monotonic()
    p = lab.provision("apply")
    assert p.returncode == 1 and time.monotonic() - t0 < 30, p.stdout
    assert "shell ended (exit 0) before the lock script ran" in p.stdout and "~/.bashrc" in p.stdout, p.stdout
    assert "another provision run holds" not in p.stdout
    plan = lab.provision("plan")
    assert plan.returncode == 1 and "did not run the facts script" in plan.stdout, plan.stdout
    assert "failed " not in plan.stdout.replace("failed=", "")  # no task errors invented from missing facts
    facts = lab.provision("facts")
    assert facts.returncode == 1 and "did not run the facts script" in facts.stdout, facts.stdout


def test_a_node_without_ip_fails_before_any_change(make_lab):
    lab = make_lab(2, pods=("web",))
    lab.node_sh("node1", "for f in /usr/bin/ip /usr/sbin/ip /bin/ip /sbin/ip; do "
                         "[ -e $f ] && mount --bind /dev/null $f; done; ! command -v ip >/dev/null")
    before = lab.node_sh("node1", "cat /proc/sys/net/ipv4/ip_forward")
    rc, doc = lab.json("apply")
    assert rc == 1 and doc["recap"]["node2"]["failed"] == 0
    err = doc["hosts"]["node1"]["error"]
    assert "ip not found on the node" in err and "nothing was changed" in err, err
    assert lab.node_sh("node1", "cat /proc/sys/net/ipv4/ip_forward") == before  # the sysctls were not touched
    assert lab.node_sh("node1", "ls /etc/sysctl.d/90-provisioner.conf /var/lib/provisioner 2>/dev/null; true") == ""


def test_the_wait_for_a_held_lock_ends_within_the_host_timeout(make_lab):
    lab = make_lab(1, pods=())
    holder = in_node(lab, "node1", "flock", "/run/provisioner.lock", "sleep", "120")
    try:
        assert wait_until(lambda: "provisioner.lock" in lab.node_sh("node1", "ls /run"), 10)
        t0 = time.monotonic()
        p = subprocess.run([sys.executable, "-m", "provisioner.cli", "apply", str(lab.inventory), "--json",
                            "--host-timeout", "12", "--lock-timeout", "60"], capture_output=True, text=True, timeout=120)
        took = time.monotonic() - t0
        doc = json.loads(p.stdout)
        assert p.returncode == 1 and took < 12 + 5, took
        err = doc["hosts"]["node1"]["error"]
        assert "another provision run holds" in err and "--host-timeout" in err, err
    finally:
        holder.kill()
        holder.wait()
