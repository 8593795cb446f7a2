"""The node lock is a fence: the lock script and the apply script run through a real ``sh`` (their /run paths
moved into a temp dir), so these tests see the lease lapse, the token go, and an apply script refuse to start;
and a stop kills only the process group a script file names with the right identity."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from provisioner import steps
from provisioner.steps import Cmd

from ..conftest import wait_until
from ..shell_node import ShellNode


def moved(script: str, root: Path) -> str:
    return script.replace("/run/", f"{root}/run/")


class LockSession:
    """The lock channel: ``sh -c LOCK_SCRIPT`` whose stdin is the client's renewals."""

    def __init__(self, root: Path, token: str, grace: float = 600):
        script = moved(steps.lock_script(token, 5, "test pid 1", ":", grace=grace), root)
        self.p = subprocess.Popen(["sh", "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        lines = []
        while True:
            line = self.p.stdout.readline()
            assert line, f"lock script ended: {lines}"
            lines.append(line)
            if line.strip() == f"{token} LOCKED":
                break

    def send(self, byte: str) -> None:
        self.p.stdin.write(byte)
        self.p.stdin.flush()

    def close(self) -> int:
        self.p.stdin.close()
        return self.p.wait(30)


def node(tmp_path) -> ShellNode:
    n = ShellNode(tmp_path)
    (tmp_path / "run").mkdir(exist_ok=True)
    return n


BRIDGE = [(0, [Cmd(("ip", "link", "add", "v-net-0", "type", "bridge"))])]


def test_a_lapsed_lease_fences_its_apply_script_off(tmp_path):
    n = node(tmp_path)
    lease = LockSession(tmp_path, "aaaa1111")
    token = tmp_path / "run/provisioner.lock.token"
    assert token.read_text() == "aaaa1111\n"
    # the client is paused: no renewals; the node lets go after LEASE seconds and takes the token away
    assert wait_until(lambda: not token.exists(), steps.LEASE + 10)
    assert lease.p.wait(10) == 0
    r = n.run(steps.render(BRIDGE, "aaaa1111"))
    assert r.rc == steps.FENCED_RC and steps.fenced(r.stdout)
    assert "nothing was changed" in r.stderr and "v-net-0" not in n.network()["ns"][""]["links"]
    assert not list((tmp_path / "run").glob("provisioner.lock.script.*"))


def test_another_leases_token_fences_it_off_too(tmp_path):
    n = node(tmp_path)
    second = LockSession(tmp_path, "bbbb2222")  # a second run took the lock after the first lapsed
    try:
        r = n.run(steps.render(BRIDGE, "aaaa1111"))
        assert r.rc == steps.FENCED_RC and "v-net-0" not in n.network()["ns"][""]["links"]
        ok = n.run(steps.render(BRIDGE, "bbbb2222"))
        assert ok.rc == 0 and steps.finished(ok.stdout) and "v-net-0" in n.network()["ns"][""]["links"]
    finally:
        assert second.close() == 0
    assert not (tmp_path / "run/provisioner.lock.token").exists()
    assert not list((tmp_path / "run").glob("provisioner.lock.script.*"))


def test_an_upload_on_its_way_keeps_the_lease(tmp_path):
    """``U`` (sent before the script's bytes) holds the lease past LEASE without renewals: a slow upload
    queued in front of the renewals cannot let it lapse."""
    n = node(tmp_path)
    lease = LockSession(tmp_path, "cccc3333", grace=60)
    lease.send("U")
    time.sleep(steps.LEASE + 2)  # longer than a lease: only the grace keeps it (what must NOT happen needs time)
    assert (tmp_path / "run/provisioner.lock.token").read_text() == "cccc3333\n"
    assert n.run(steps.render(BRIDGE, "cccc3333")).rc == 0
    assert lease.close() == 0 and not (tmp_path / "run/provisioner.lock.owner").exists()


def test_the_lock_waits_for_its_running_script_and_only_for_it(tmp_path):
    n = node(tmp_path)
    lease = LockSession(tmp_path, "dddd4444")
    stale = tmp_path / "run/provisioner.lock.script.ffff0000"
    stale.write_text("1 1 1\n")  # a file of an older lease (a killed script): never waited for
    slow = subprocess.Popen(["sh", "-s"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    slow.stdin.write(n._prelude() + moved(steps.render([(0, [Cmd(("sleep", "3"))])], "dddd4444"), tmp_path))
    slow.stdin.close()
    mine = tmp_path / "run/provisioner.lock.script.dddd4444"
    assert wait_until(mine.exists, 10)
    lease.p.stdin.close()  # renewals end while the script runs: the lock must wait for it
    assert wait_until(lambda: not (tmp_path / "run/provisioner.lock.token").exists(), 10)
    assert lease.p.poll() is None  # still holding: its script runs
    assert slow.wait(30) == 0 and lease.p.wait(10) == 0
    assert not mine.exists()


def run_stop(tmp_path, token: str) -> str:
    return ShellNode(tmp_path).run(steps.stop_script(token)).stdout


def proc_id(pid: int) -> tuple[str, str]:
    rest = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
    return rest[2], rest[19]


def test_stop_kills_the_scripts_whole_group_hung_children_included(tmp_path):
    (tmp_path / "run").mkdir()
    p = subprocess.Popen(["sh", "-c", "sleep 300 & sleep 300; wait"], start_new_session=True)
    try:
        pgid, start = proc_id(p.pid)
        group = lambda: subprocess.run(["pgrep", "-g", pgid], capture_output=True, text=True).stdout.split()
        assert wait_until(lambda: len(group()) == 3, 10)  # the shell and its two sleeps
        (tmp_path / "run/provisioner.lock.script.eeee5555").write_text(f"{p.pid} {pgid} {start}\n")
        assert run_stop(tmp_path, "eeee5555").strip() == "stopped"
        assert p.wait(10) != 0
        assert wait_until(lambda: group() == [], 10)  # the hung children went with it
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)


@pytest.mark.parametrize("content", ["{pid} {pgid} 12345\n", "1 1 {start1}\n", "-1 -1 1\n", "{pid} 0 {start}\n",
                                     "x y z\n", "", "{pid} {pgid}\n"])
def test_stop_never_kills_what_a_stale_or_forged_file_names(tmp_path, content):
    (tmp_path / "run").mkdir()
    p = subprocess.Popen(["sleep", "300"], start_new_session=True)
    try:
        pgid, start = proc_id(p.pid)
        text = content.format(pid=p.pid, pgid=pgid, start=start, start1=proc_id(1)[1])
        (tmp_path / "run/provisioner.lock.script.eeee5555").write_text(text)
        assert run_stop(tmp_path, "eeee5555") == ""
        assert p.poll() is None  # still alive
    finally:
        p.kill()
        p.wait()


def test_after_its_announced_script_ended_a_silent_client_keeps_the_lock_no_longer_than_a_lease(tmp_path):
    n = node(tmp_path)
    lease = LockSession(tmp_path, "abab1212", grace=600)
    lease.send("U")
    assert n.run(steps.render(BRIDGE, "abab1212")).rc == 0  # the script ran and ended ("done" in its file)
    t0 = time.monotonic()
    assert wait_until(lambda: lease.p.poll() is not None, steps.LEASE + 10)  # no byte since: it lets go
    assert time.monotonic() - t0 < steps.LEASE + 3 and not (tmp_path / "run/provisioner.lock.token").exists()
    lease.p.stdin.close()


def test_a_step_that_prints_a_marker_cannot_pass_for_the_script(tmp_path):
    """The markers carry the run's nonce: a step printing "@@PROVISIONER done" (or a step marker) and then
    failing is a failure at that step, not a finished script."""
    n = ShellNode(tmp_path)
    forged = [(0, [Cmd(("echo", f"{steps.MARK} done")), Cmd(("echo", f"{steps.MARK} step 0 5")), Cmd(("false",))])]
    r = n.run(steps.render(forged, None, "0a1b2c"))
    assert r.rc != 0 and not steps.finished(r.stdout, "0a1b2c")
    assert steps.last_step(r.stdout, "0a1b2c") == (0, 2)  # the real marker of the step that failed
