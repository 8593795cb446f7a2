"""The node lock is a fence on a real lab: a client paused past its lease applies nothing (another run took the
lock and applied), and a slow upload queued in front of the renewals does not let the lease lapse."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from provisioner import engine
from provisioner.engine import runner
from provisioner.inventory import load_inventory
from provisioner.transport.ssh import SSHTransport

from ..conftest import wait_until


def created_lines(lab, node: str) -> list[str]:
    return lab.node_sh(node, "cat /var/lib/provisioner/created 2>/dev/null || true").splitlines()


def test_a_paused_client_applies_nothing_once_its_lease_lapsed(make_lab, monkeypatch):
    lab = make_lab(1, pods=("web",))
    token = lambda: lab.node_sh("node1", "cat /run/provisioner.lock.token 2>/dev/null || true").strip()
    second: dict = {}
    real_plan = runner._plan

    def paused_after_planning(*args, **kwargs):
        out = real_plan(*args, **kwargs)
        # the client stops here (no renewals, see below): the node lets go, and another run takes the lock
        assert wait_until(lambda: token() == "", 30), "the lease never lapsed"
        p = subprocess.run([sys.executable, "-m", "provisioner.cli", "apply", str(lab.inventory), "--json"],
                           capture_output=True, text=True, timeout=300)
        second["rc"], second["doc"] = p.returncode, json.loads(p.stdout)
        return out

    monkeypatch.setattr(SSHTransport, "_heartbeat", lambda self, chan, stop: None)  # a paused client renews nothing
    monkeypatch.setattr(runner, "_plan", paused_after_planning)
    result = engine.run(engine.Request("apply", load_inventory(lab.inventory)))
    (host,) = result.hosts
    assert second["rc"] == 0 and second["doc"]["recap"]["node1"]["changed"] > 0  # the other run applied
    assert host.error and "lock was lost before apply" in host.error and "nothing was changed" in host.error
    assert host.count("changed") == 0 and host.count("failed") == 1, [(t.name, t.status) for t in host.tasks]
    lines = created_lines(lab, "node1")
    assert len(lines) == len(set(lines)), lines  # one run's bookkeeping only
    monkeypatch.undo()
    assert lab.provision("verify").returncode == 0


def test_a_slow_upload_keeps_the_lease_and_a_second_run_waits_for_it(make_lab):
    """1 Mbit/s towards the node with a 10 s queue: the renewals wait behind the upload (plugins inside the apply
    script), yet the lease holds; a second run started meanwhile waits, then finds nothing to do."""
    lab = make_lab(1, pods=("web",))
    veth = f"{lab.name}-node1"
    subprocess.run(["tc", "qdisc", "add", "dev", veth, "root", "tbf", "rate", "1mbit", "burst", "32kbit",
                    "latency", "10s"], check=True)
    try:
        first = subprocess.Popen([sys.executable, "-m", "provisioner.cli", "apply", str(lab.inventory), "--json"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # the first run holds the lock and its script is on its way
        assert wait_until(lambda: lab.node_sh("node1", "cat /run/provisioner.lock.owner 2>/dev/null || true"), 60)
        time.sleep(2 * 6)  # two leases' time into the upload: without the fix, the lease has lapsed by now
        second = subprocess.run([sys.executable, "-m", "provisioner.cli", "apply", str(lab.inventory), "--json",
                                 "--lock-timeout", "240"], capture_output=True, text=True, timeout=400)
        out, err = first.communicate(timeout=400)
        doc1, doc2 = json.loads(out), json.loads(second.stdout)
        assert first.returncode == 0, doc1["hosts"]["node1"]
        assert second.returncode == 0 and doc2["recap"]["node1"]["changed"] == 0, doc2["hosts"]["node1"]
    finally:
        subprocess.run(["tc", "qdisc", "del", "dev", veth, "root"], capture_output=True)
    lines = created_lines(lab, "node1")
    assert len(lines) == len(set(lines)), lines


def test_a_script_that_hangs_is_stopped_with_its_hung_step_and_the_lock_frees(make_lab):
    """--timeout ends the run; the stop kills the script's whole process group (the hung `ip` included), so
    the lock is free again within a lease and the next apply runs at once."""
    from .test_faults import unwrap_ip, wrap_ip
    lab = make_lab(1, pods=("web",))
    wrap_ip(lab, "node1", "route replace", "sleep 300")  # a step that never returns
    p = subprocess.run([sys.executable, "-m", "provisioner.cli", "apply", str(lab.inventory), "--json", "--timeout", "8"],
                       capture_output=True, text=True, timeout=120)
    doc = json.loads(p.stdout)
    assert p.returncode == 1 and "the script was stopped on the node" in doc["hosts"]["node1"]["error"], doc["hosts"]
    assert wait_until(lambda: "sleep 300" not in lab.node_sh("node1", "ps -eo args"), 10)  # the hung child is gone
    assert wait_until(lambda: lab.node_sh("node1", "cat /run/provisioner.lock.owner 2>/dev/null || true") == "", 15)
    unwrap_ip(lab, "node1")
    rc, again = lab.json("apply", "--lock-timeout", "0")
    assert rc == 0, again["hosts"]["node1"]
