"""What a node sends back is data: terminal escapes in it never reach the operator's terminal raw (task reasons,
errors, warnings, diffs, the facts table, graph drift, the CLI's error line)."""

from __future__ import annotations

import io

from provisioner import cli, engine
from provisioner.cli.report import Reporter
from provisioner.engine.runner import HostResult, TaskResult
from provisioner.facts.net import Addrs, Links, Routes
from provisioner.graph import drift
from provisioner.inventory import load_inventory

from ..conftest import BASE

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
    values = {Links(): {"v-net-0": {"kind": "bridge", "up": True, "mtu": 1500, "master": None}},
              Addrs(): {"v-net-0": [f"10.244.1.1/24{EVIL}"]}, Routes(): [],
              **{Addrs(p.name): {} for p in node.pods}}
    items = drift(inv, node, values)
    assert items and all("\x1b" not in d["what"] for d in items), items
