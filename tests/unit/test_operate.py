"""Operating pieces without a lab: state file, ss parsing, max-fail, locking, progress, timeouts."""

import io
import time

from provisioner.engine import retry_record as state
from provisioner.facts.system import parse_ss
from provisioner.facts.values import Process, Socket
from provisioner.playbook import bind, load_playbook
from provisioner.cli.report import Reporter
from provisioner.engine.runner import HostResult, Options, TaskResult, run_all
from provisioner.transport import Result
from provisioner.transport.fake import FakeTransport

from ..conftest import ROOT


def test_state_file_records_failures_and_keeps_other_hosts(tmp_path):
    inv = tmp_path / "lab.yaml"
    assert state.failed_hosts(inv) is None
    state.record(inv, "apply", [HostResult("node1"), HostResult("node2", unreachable=True, error="refused")])
    assert state.path_for(inv) == tmp_path / ".lab.yaml.provision-state.json"
    assert state.failed_hosts(inv) == ["node2"]
    state.record(inv, "apply", [HostResult("node2")])  # a --retry-failed run that worked
    assert state.failed_hosts(inv) == []


def test_parse_ss():
    text = ('LISTEN 0      128      10.213.0.11:22        0.0.0.0:*    users:(("sshd",pid=1,fd=3))\n'
            'LISTEN 0      4096     [::]:9153             [::]:*       users:(("coredns",pid=77,fd=7),("coredns",pid=78,fd=7))\n'
            'LISTEN 0      5        127.0.0.1:53          0.0.0.0:*\n')
    got = parse_ss(text, 0)
    assert got[0] == Socket("10.213.0.11", 22, (Process("sshd", 1),))
    assert got[1] == Socket("127.0.0.1", 53, ())
    assert got[2].address == "::" and [p.pid for p in got[2].processes] == [77, 78]
    assert parse_ss("", 1) is None


def _hosts(inv):
    return bind(load_playbook(ROOT / "playbooks/pod-network.yaml"), inv)


def test_max_fail_percent_with_fakes(base_inventory):
    ts = {"node1": FakeTransport("node1", unreachable=True), "node2": FakeTransport("node2"), "node3": FakeTransport("node3")}
    res = {r.host: r for r in run_all(_hosts(base_inventory), lambda h: ts[h], "apply", Options(forks=1, max_fail_percent=30))}
    assert res["node1"].unreachable
    assert res["node2"].error.startswith("not started") and ts["node2"].scripts == []
    assert res["node3"].error.startswith("not started") and res["node3"].failed


def test_apply_and_reset_lock_the_node_plan_does_not(base_inventory):
    for mode, locked in (("plan", []), ("apply", ["/run/provisioner.lock"]), ("reset", ["/run/provisioner.lock"])):
        t = FakeTransport("node2", lambda s: Result("", "", 0))
        run_all({"node2": _hosts(base_inventory)["node2"]}, lambda h: t, mode)
        assert t.locks == locked, mode


def test_host_timeout_stops_a_slow_host(base_inventory, tmp_path):
    from ..shell_node import ShellNode
    node = ShellNode(tmp_path)

    def slow(script):
        time.sleep(0.3)
        return node.run(script)
    t = FakeTransport("node2", slow)
    (res,) = run_all({"node2": _hosts(base_inventory)["node2"]}, lambda h: t, "apply", Options(host_timeout=0.2))
    assert res.failed and "--host-timeout of 0.2s reached" in res.error


class Tty(io.StringIO):
    def isatty(self):
        return True


def test_progress_on_a_terminal_and_plain_lines_elsewhere():
    task = TaskResult("node1", 0, "p", "Pod bridge", "bridge", "changed", "bridge v-net-0: create")
    tty, pipe = Tty(), io.StringIO()
    for out in (tty, pipe):
        r = Reporter("apply", stream=out)
        r("phase", ("node1", "gathering facts"))
        r("phase", ("node2", "applying Pod bridge"))
        r("task", task)
        r("host_done", HostResult("node1"))
        r.finish([HostResult("node1", [task], seconds=1.5), HostResult("node2")])
    shown = tty.getvalue()
    assert "working: node1 (gathering facts); node2 (applying Pod bridge)" in shown and "\r\033[K" in shown
    assert "working:" not in pipe.getvalue() and "\033" not in pipe.getvalue()
    assert "[node1] changed  Pod bridge (bridge): bridge v-net-0: create" in pipe.getvalue()
    assert "node1  ok=0   changed=1" in pipe.getvalue() and "1.50s" in pipe.getvalue()


def test_retry_failed_without_a_record_is_bad_input(write, capsys):
    from provisioner import cli

    from ..conftest import BASE
    assert cli.main(["apply", str(write(BASE)), "--retry-failed"]) == 2
    assert "no previous run recorded" in capsys.readouterr().err


def test_connection_refused_is_retried_with_backoff_then_unreachable(write):
    import socket

    import pytest

    from provisioner.errors import TransportError
    from provisioner.inventory import load_inventory
    from provisioner.transport.ssh import SSHTransport

    with socket.socket() as s:  # a loopback port with nobody listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    inv = load_inventory(write(f"""\
        cluster: {{node_cidr: 127.0.0.0/8, pod_cidr: 10.244.0.0/16, service_cidr: 10.96.0.0/12}}
        ssh: {{port: {port}, connect_timeout: 2}}
        nodes: [{{name: local, address: 127.0.0.1}}]
        """))
    t = SSHTransport(inv, inv.nodes[0], retries=2, backoff=0.05)
    start = time.monotonic()
    with pytest.raises(TransportError, match=r"local: ssh to 127.0.0.1:\d+: .*(after 3 attempts)"):
        t.run("true")
    assert time.monotonic() - start >= 0.05 + 0.1  # backoff 0.05 then 0.1


def test_state_file_never_writes_through_a_planted_symlink(tmp_path):
    inv = tmp_path / "lab.yaml"
    victim = tmp_path / "victim"
    victim.write_text("keep\n")
    (tmp_path / ".lab.yaml.provision-state.tmp").symlink_to(victim)  # the old fixed temp name
    state.record(inv, "apply", [HostResult("node1", unreachable=True, error="x")])
    assert victim.read_text() == "keep\n" and state.failed_hosts(inv) == ["node1"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".lab.yaml.provision-state.json", ".lab.yaml.provision-state.tmp",
                                                          "victim"]


def test_a_run_killed_half_way_leaves_a_record_for_retry_failed(tmp_path):
    inv = tmp_path / "lab.yaml"
    state.start(inv, "apply", ["node1", "node2"])
    state.record(inv, "apply", [HostResult("node1")])  # node1 finished, then the run was killed
    assert state.failed_hosts(inv) == ["node2"]
