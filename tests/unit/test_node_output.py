"""What a node sends back is data: terminal escapes in it never reach the operator's terminal raw (task reasons,
errors, warnings, diffs, the facts table, graph drift, the CLI's error line)."""

from __future__ import annotations

import io
import shlex

import pytest

from provisioner.facts.values import Link
from provisioner import cli, engine
from provisioner.cli.report import Reporter
from provisioner.engine.runner import HostResult, TaskResult
from provisioner.facts.net import Addrs, Links, Routes
from provisioner.engine.runner import run_facts
from provisioner.errors import HostError
from provisioner.graph import drift, live_facts
from provisioner.inventory import load_inventory

from ..conftest import BASE
from ..shell_node import ShellNode

EVIL = "\x1b]0;owned\x07\x1b[2J\r"  # set the window title, clear the screen, return to column 0


def test_the_report_escapes_what_nodes_said():
    out = io.StringIO()
    rep = Reporter("plan", stream=out, verbose=True)
    t = TaskResult("node1", 0, "play", "task", "file", "changed", reason=f"bridge {EVIL}", commands=[f"echo {EVIL}"],
                   diff=f"--- a\n+++ b\n+{EVIL}\n", warnings=[f"warn {EVIL}"])
    rep("task", t)
    rep("host_failed", HostResult("node1", error=f"another provision run holds the lock ({EVIL})"))
    rep("host_done", HostResult("node1", warnings=[EVIL]))
    text = out.getvalue()
    assert "\x1b" not in text and "\x07" not in text and "\r" not in text
    assert "\n    +\\x1b]0;owned\\x07" in text and "$ echo \\x1b" in text  # shown escaped; a diff keeps its lines


def test_facts_table_and_cli_errors_are_escaped(monkeypatch, capsys, write):
    inv = write(BASE)
    facts = {"node1": {"ip": "192.168.56.11", "cidr": "192.168.56.11/24", "interface": "eth0",
                       "interface_expected": "eth0", "mac": "aa:bb", "network": {}, "bridge": {"present": False},
                       "listening": [{"port": 22, "processes": [{"name": f"sshd{EVIL}"}]}], "pod_routes": []},
             "node2": {"error": f"node2: no answer {EVIL}"}}
    monkeypatch.setattr(engine, "run", lambda request, emit=None: engine.Result("facts", facts=facts))
    cli.main(["facts", str(inv)])
    out = capsys.readouterr().out
    assert "\x1b" not in out and "sshd\\x1b]0;owned" in out

    def refuse(request, emit=None):
        raise cli.ProvisionerError(f"lock held by {EVIL}")
    monkeypatch.setattr(engine, "run", refuse)
    cli.main(["facts", str(inv)])
    err = capsys.readouterr().err
    assert "\x1b" not in err and "lock held by \\x1b" in err


def test_graph_drift_from_hostile_addresses_is_escaped(write):
    inv = load_inventory(write(BASE))
    node = inv.node("node1")
    values = {Links(): {"v-net-0": Link(kind="bridge", up=True, mtu=1500)},
              Addrs(): {"v-net-0": [f"10.244.1.1/24{EVIL}"]}, Routes(): [],
              **{Addrs(p.name): {} for p in node.pods}}
    items = drift(inv, node, values)
    assert items and all("\x1b" not in d["what"] for d in items), items


class GarbageNode(ShellNode):
    """A node whose `ip` answers with JSON of the wrong shape (a list of strings, a number for a name)."""

    def __init__(self, root, answer: str):
        super().__init__(root)
        self.garbage = answer

    def _prelude(self) -> str:
        return super()._prelude() + f"ip() {{ printf '%s\\n' {shlex.quote(self.garbage)}; }}\n"


@pytest.mark.parametrize("answer", ['["x", 1]', '[{"ifname": 5, "addr_info": "no"}]', '{"not": json', "\x1b[2J"])
def test_a_malformed_answer_is_that_nodes_error_never_a_traceback(tmp_path, write, answer):
    inv = load_inventory(write(BASE))
    node = inv.node("node2")
    try:
        values = run_facts(GarbageNode(tmp_path, answer), live_facts(node), 10)
    except HostError as exc:
        assert "could not be read" in str(exc)
        return
    # parsed as absent: the graph and the facts summary then take it without a traceback
    drift(inv, node, values)
    from provisioner.engine import _readable
    from provisioner.engine.node_summary import summarize
    out = _readable("node2", lambda why: {"error": why}, summarize, inv, node, values)
    assert isinstance(out, dict)
