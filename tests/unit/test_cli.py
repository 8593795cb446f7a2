"""The CLI: exit codes, messages without tracebacks, nothing contacted on bad input."""

import io
import json
import subprocess
import sys

import pytest

from provisioner import cli
from provisioner.transport import ssh

from ..conftest import BASE


@pytest.fixture
def no_ssh(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("a connection was attempted")
    monkeypatch.setattr(ssh, "SSHTransport", refuse)


@pytest.mark.parametrize("command", ["validate", "plan", "apply", "verify"])
def test_bad_inventory_exits_2_without_contacting_nodes(write, capsys, no_ssh, command):
    path = write(BASE.replace("pod_cidr: 10.244.0.0/16", "pod_cidr: 10.96.0.0/16"))
    assert cli.main([command, str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:4 cluster.pod_cidr" in err or f"{path}:5 cluster.service_cidr" in err
    assert "Traceback" not in err


def test_bad_playbook_exits_2(write, capsys, no_ssh):
    inv = write(BASE)
    pb = write("- name: p\n  hosts: all\n  tasks:\n    - name: t\n      bridge: {name: '{{ nope }}', address: x}\n", "pb.yaml")
    assert cli.main(["apply", str(inv), "-p", str(pb)]) == 2
    assert "pb.yaml:5" in capsys.readouterr().err


def test_missing_file_exits_2(capsys, tmp_path):
    assert cli.main(["validate", str(tmp_path / "nope.yaml")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_validate_ok_and_json(write, capsys):
    path = write(BASE)
    assert cli.main(["validate", str(path)]) == 0
    assert "ok (3 nodes)" in capsys.readouterr().out
    assert cli.main(["validate", str(path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["nodes"]["node2"] == {"ip": "192.168.56.12", "pod_subnet": "10.244.2.0/24", "gateway": "10.244.2.1"}


def test_limit_unknown_node_is_bad_input(write, capsys, no_ssh):
    assert cli.main(["plan", str(write(BASE)), "--limit", "nodeX"]) == 2
    assert "--limit nodeX: 'nodeX' matches no node" in capsys.readouterr().err


def test_ipcalc(capsys):
    assert cli.main(["ipcalc", "10.49.70.3/24", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["HostMax"] == "10.49.70.254"
    assert cli.main(["ipcalc", "10.49.70.3/33"]) == 2


def test_ssh_config(write, capsys):
    assert cli.main(["ssh-config", str(write(BASE))]) == 0
    out = capsys.readouterr().out
    assert "Host node2\n  HostName 192.168.56.12\n  Port 22" in out and "StrictHostKeyChecking yes" in out


def test_entry_point_runs():
    r = subprocess.run([sys.executable, "-m", "provisioner.cli", "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and "provision" in r.stdout


def test_lab_needs_root_message(monkeypatch, capsys):
    import os
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert cli.main(["lab", "up", "--nodes", "1", "--out", "/tmp/x.yaml"]) == 1
    assert "needs root" in capsys.readouterr().err


def test_sha256_pin_mismatch_fails_before_any_connection(write, capsys, no_ssh):
    inv = write(BASE + "cni:\n  sha256: {bridge: '" + "0" * 64 + "'}\n")
    assert cli.main(["apply", str(inv)]) == 2
    err = capsys.readouterr().err
    assert "plugin bridge: sha256" in err and "does not match the pinned" in err


def test_missing_cni_source_is_bad_input(write, capsys, no_ssh, tmp_path):
    inv = write(BASE + f"cni:\n  source: {tmp_path}/nothing-here\n")
    assert cli.main(["plan", str(inv)]) == 2
    assert "neither a directory nor a cni-plugins .tgz" in capsys.readouterr().err


def test_a_corrupt_plugin_tarball_is_a_located_error(write, capsys, tmp_path, no_ssh):
    tgz = tmp_path / "cni-plugins-linux-amd64-v1.4.0.tgz"
    tgz.write_bytes(b"\x1f\x8b\x08\x00not really gzip")
    path = write(BASE + f"cni:\n  source: {tgz}\n")
    assert cli.main(["plan", str(path)]) == 2
    err = capsys.readouterr().err
    assert "cni.yaml:" in err and "cni_plugins" in err and "Traceback" not in err, err


def test_plan_with_every_node_unreachable_never_says_nothing_to_do(write, capsys, monkeypatch):
    from provisioner.transport.fake import FakeTransport

    monkeypatch.setattr(ssh, "SSHTransport", lambda inv, node, **kw: FakeTransport(node.name, unreachable=True))
    assert cli.main(["plan", str(write(BASE))]) == 1
    out = capsys.readouterr().out
    assert "nothing to do" not in out and "INCOMPLETE: 3 of 3 host(s) did not finish" in out and "RECAP" in out


@pytest.fixture
def requests(monkeypatch):
    """What the CLI asks of the engine (the engine itself is not run)."""
    from provisioner import engine

    seen = []

    def fake_run(request, emit=None):
        seen.append(request)
        return engine.Result(request.mode)
    monkeypatch.setattr(engine, "run", fake_run)
    return seen


def test_ansible_habits_work(write, requests, capsys):
    inv = str(write(BASE))
    assert cli.main(["apply", "-i", inv, "-l", "workers:&node[12]", "-f", "7", "--check", "--diff"]) == 0
    assert cli.main(["plan", inv, "--limit", "node1"]) == 0
    assert cli.main(["reset", "-i", inv, "-l", "node3"]) == 0
    check, plan, reset = requests
    assert (check.mode, check.limit, check.options.forks) == ("plan", "workers:&node[12]", 7)  # --check is a plan
    assert (plan.mode, plan.limit, plan.options.forks) == ("plan", "node1", cli.FORKS)
    assert reset.mode == "reset" and str(check.inventory.path) == inv
    assert cli.main(["verify", "-i", inv, "-l", "node2"]) == 0 and requests[-1].limit == "node2"
    assert cli.main(["reset", inv, "--check"]) == 0  # a dry reset: what reset would undo
    assert requests[-1].mode == "reset" and requests[-1].options.check


def test_inventory_given_twice_or_not_at_all_is_a_usage_error(write, capsys):
    inv = str(write(BASE))
    for argv, says in ((["plan"], "an inventory is needed"), (["plan", inv, "-i", inv + ".other"], "two inventories")):
        with pytest.raises(SystemExit) as exc:
            cli.main(argv)
        assert exc.value.code == 2 and says in capsys.readouterr().err
    assert cli.main(["plan", inv, "-i", inv, "--limit", "nodeX"]) == 2  # the same file twice is one inventory


def test_diff_shows_file_diffs_without_commands():
    from provisioner.cli.report import Reporter
    from provisioner.engine.runner import TaskResult

    t = TaskResult("node1", 0, "p", "conf", "file", "changed", "update /etc/x", commands=["mv -f t /etc/x"],
                   diff="--- /etc/x\n+++ /etc/x\n-a\n+b\n")
    for diff, shown in ((True, True), (False, False)):
        out = io.StringIO()
        Reporter("apply", stream=out, diff=diff)("task", t)
        assert ("+b" in out.getvalue()) is shown and "mv -f" not in out.getvalue()


def test_forks_must_be_one_or_more(write, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["plan", str(write(BASE)), "-f", "0"])
    assert exc.value.code == 2 and "0 is not 1 or more" in capsys.readouterr().err


def test_errors_under_json_are_json(write, capsys):
    assert cli.main(["plan", str(write("cluster: {}\n")), "--json"]) == 2
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is False and doc["problems"]


def test_validate_binds_the_default_playbook(write, capsys):
    bad = write(BASE + "cni:\n  source: /nonexistent/plugins\n")
    assert cli.main(["validate", str(bad)]) == 2
    assert "/nonexistent/plugins" in capsys.readouterr().err


def test_no_color(monkeypatch):
    import io
    from provisioner.cli.report import Reporter

    class Tty(io.StringIO):
        def isatty(self):
            return True
    assert "\x1b[" in Reporter("apply", stream=Tty()).paint("changed")
    monkeypatch.setenv("NO_COLOR", "1")
    assert Reporter("apply", stream=Tty()).paint("changed") == "changed"


def test_a_lab_whose_pods_would_overflow_the_machines_arp_table_is_warned_about(tmp_path, monkeypatch):
    from provisioner.lab import namespace

    thresh = tmp_path / "gc_thresh3"
    thresh.write_text("1024\n")
    monkeypatch.setattr(namespace, "GC_THRESH3", thresh)
    assert namespace.arp_need(200, 2) == 1200 and namespace.arp_need(200, 1) == 400
    assert namespace.arp_warning(200, 1) is None and namespace.arp_warning(50, 2) is None
    warning = namespace.arp_warning(200, 2)
    assert warning and "1200 ARP entries" in warning and "gc_thresh3" in warning and "--pods web" in warning
    assert "at most 136 nodes" in warning  # 136 * 6 = 816 <= 80% of 1024
    thresh.write_text("4096\n")
    assert namespace.arp_warning(200, 2) is None
    thresh.unlink()  # not readable: no advice rather than a wrong one
    assert namespace.arp_warning(200, 2) is None
