"""What a node sends back is data: terminal escapes in it never reach the operator's terminal raw (task reasons,
errors, warnings, diffs, the facts table, graph drift, the CLI's error line)."""

from __future__ import annotations

import io
import shlex

import pytest

from provisioner import cli, engine
from provisioner.cli.report import Reporter
from provisioner.engine.runner import HostResult, TaskResult
from provisioner.facts.net import Addrs, Links, Routes
from provisioner.engine.runner import run_facts
from provisioner.errors import HostError
from provisioner.inventory import load_inventory

from ..conftest import BASE, ROOT
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


def live_graph(inv, monkeypatch, node) -> dict:
    monkeypatch.setattr(engine, "_connect", lambda inv, opts: lambda host: node)
    return engine.run(engine.Request("graph", inv, limit=node.host, live=True,
                                     playbook=str(ROOT / "playbooks/pod-network.yaml"))).graph


def test_graph_drift_from_hostile_addresses_is_escaped(write, tmp_path, monkeypatch):
    inv = load_inventory(write(BASE))
    node = ShellNode(tmp_path)
    node.edit_network(lambda net: net["ns"][""]["links"].update(
        {"v-net-0": {"kind": "bridge", "up": True, "master": None, "index": 7, "peer": None,
                     "addrs": [f"10.244.2.1/24{EVIL}"]}}))
    g = live_graph(inv, monkeypatch, node)
    bridge = [d["what"] for d in g["drift"] if d["id"] == "bridge:node2"]
    assert bridge and all("\x1b" not in d["what"] for d in g["drift"] + g["notes"]), g["drift"]


class GarbageNode(ShellNode):
    """A node whose `ip` answers with JSON of the wrong shape (a list of strings, a number for a name)."""

    def __init__(self, root, answer: str):
        super().__init__(root)
        self.garbage = answer

    def _prelude(self) -> str:
        return super()._prelude() + f"ip() {{ printf '%s\\n' {shlex.quote(self.garbage)}; }}\n"


@pytest.mark.parametrize("answer", ['["x", 1]', '[{"ifname": 5, "addr_info": "no"}]', '{"not": json', "\x1b[2J"])
def test_a_malformed_answer_is_that_nodes_error_never_a_traceback(tmp_path, write, answer, monkeypatch):
    inv = load_inventory(write(BASE))
    node = inv.node("node2")
    g = live_graph(inv, monkeypatch, GarbageNode(tmp_path, answer))  # the node's drift, whatever it answered
    assert g["drift"] and all("\x1b" not in d["what"] for d in g["drift"]), g["drift"]
    try:
        values = run_facts(GarbageNode(tmp_path, answer), [Links(), Addrs(), Routes()], 10)
    except HostError as exc:
        assert "could not be read" in str(exc)
        return
    # parsed as absent: the facts summary then takes it without a traceback
    from provisioner.engine import _readable
    from provisioner.engine.node_summary import summarize
    out = _readable("node2", lambda why: {"error": why}, summarize, inv, node, values)
    assert isinstance(out, dict)
