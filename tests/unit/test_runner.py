"""The runner against a node in a temp dir: the rendered facts and apply scripts run through a real ``sh``.

``tests/shell_node.py`` keeps the node's files under a temp dir and fakes ``ip``
with a small stateful script, so these tests see what the scripts really do:
one exec for facts, one for apply, a converged node answering the next run
with one exec, and failures reported at the step where they happened.
"""

import ipaddress
import json
import re

from provisioner.cli.report import to_json
from provisioner.engine.runner import Options, run_all
from provisioner.facts.net import Links, Routes
from provisioner.playbook import bind, load_playbook
from provisioner.transport.fake import FakeTransport

from ..conftest import ROOT
from ..shell_node import ShellNode


def run(inv, mode, transports, playbook="playbooks/pod-network.yaml"):
    hosts = bind(load_playbook(ROOT / playbook), inv, list(transports))
    events = []
    results = run_all(hosts, lambda h: transports[h], mode, Options(forks=4), emit=lambda k, o: events.append((k, o)))
    return results, events


def test_apply_fresh_node_is_two_execs_and_converges(base_inventory, tmp_path):
    node = ShellNode(tmp_path)
    (res,), events = run(base_inventory, "apply", {"node2": node})
    assert len(node.scripts) == 2 and not res.failed, [t.error for t in res.tasks]
    assert res.recap()["changed"] == 5 and [k for k, _ in events].count("task") == 5
    # the status line follows the script: each node's phase names the task its script is on
    phases = [text for k, (host, text) in ((k, o) for k, o in events if k == "phase")]
    assert phases[:2] == ["connecting", "gathering facts"]
    steps = [p for p in phases[2:] if p.startswith("task ")]
    assert steps[0] == "task 1/5: Kernel forwards and filters pod traffic" and steps[-1].startswith("task 5/5: ")
    assert [int(p.split()[1].split("/")[0]) for p in steps] == sorted(int(p.split()[1].split("/")[0]) for p in steps)
    apply_script = node.scripts[1]
    assert apply_script.index("modprobe br_netfilter") < apply_script.index("bridge-nf-call-iptables")
    net = node.network()
    host, pod = net["ns"][""], net["ns"]["web"]
    assert host["links"]["v-net-0"]["up"] and host["links"]["v-net-0"]["addrs"] == ["10.244.2.1/24"]
    assert host["links"]["veth-web"]["master"] == "v-net-0" and pod["links"]["eth0"]["addrs"] == ["10.244.2.2/24"]
    assert {r["dst"]: r["gateway"] for r in host["routes"] if r["protocol"] == "147"} == {
        "10.244.1.0/24": "192.168.56.11", "10.244.3.0/24": "192.168.56.13"}
    assert (tmp_path / "proc/sys/net/ipv4/ip_forward").read_text() == "1\n"
    assert "net.ipv4.ip_forward = 1" in (tmp_path / "etc/sysctl.d/90-provisioner.conf").read_text()
    # the next run finds everything in place: one exec, every task ok with its reason
    again = ShellNode.__new__(ShellNode)
    again.__dict__.update(node.__dict__, scripts=[], locks=[])
    (res,), _ = run(base_inventory, "apply", {"node2": again})
    assert len(again.scripts) == 1 and res.count("ok") == 5, [(t.name, t.reason, t.error) for t in res.tasks]
    assert again.locks == ["/run/provisioner.lock"]  # the facts ran inside the lock's exec


def test_a_mesh_of_many_nodes_gets_its_routes_in_one_ip_batch_and_reset_takes_them_away(base_inventory, tmp_path):
    from dataclasses import replace
    extra = [replace(base_inventory.nodes[0], name=f"node{i}", address=f"192.168.56.{10 + i}",
                     ips=(ipaddress.ip_address(f"192.168.56.{10 + i}"),),
                     pod_subnets=(ipaddress.ip_network(f"10.244.{i}.0/24"),))
             for i in range(4, 14)]
    inv = replace(base_inventory, nodes=base_inventory.nodes + tuple(extra))
    node = ShellNode(tmp_path)
    (res,), _ = run(inv, "apply", {"node2": node})
    assert not res.failed, [t.error for t in res.tasks]
    assert node.scripts[1].count("ip -batch -") == 1 and "ip route replace" not in node.scripts[1]
    routes = {r["dst"] for r in node.network()["ns"][""]["routes"] if r["protocol"] == "147"}
    assert routes == {"10.244.1.0/24", "10.244.3.0/24"} | {f"10.244.{i}.0/24" for i in range(4, 14)}
    again = ShellNode.__new__(ShellNode)
    again.__dict__.update(node.__dict__, scripts=[], locks=[])
    (res,), _ = run(inv, "reset", {"node2": again})
    assert not res.failed and not [r for r in again.network()["ns"][""]["routes"] if r["protocol"] == "147"]


def test_the_boot_unit_makes_again_what_apply_made_after_a_reboot(base_inventory, tmp_path):
    """Apply, then a "reboot" (the kernel's network state is gone, files stay), then the boot script alone:
    the next plan finds nothing to do, so replay and apply agree step for step."""
    node = ShellNode(tmp_path)
    fresh = node.network()
    run(base_inventory, "apply", {"node2": node})
    unit = (tmp_path / "etc/systemd/system/provisioner-pod-network.service").read_text()
    assert "ExecStart=/bin/sh /etc/provisioner/pod-network.sh" in unit and "After=network-online.target" in unit
    wants = tmp_path / "etc/systemd/system/multi-user.target.wants/provisioner-pod-network.service"
    assert wants.is_symlink() and wants.resolve() == tmp_path / "etc/systemd/system/provisioner-pod-network.service"
    applied = node.network()
    node.state.write_text(json.dumps(fresh))  # the reboot
    boot = node.run((tmp_path / "etc/provisioner/pod-network.sh").read_text())
    assert boot.rc == 0, boot.stderr
    assert node.network()["ns"][""]["routes"] == applied["ns"][""]["routes"]
    again = ShellNode.__new__(ShellNode)
    again.__dict__.update(node.__dict__, scripts=[], locks=[])
    (res,), _ = run(base_inventory, "plan", {"node2": again})
    assert res.count("ok") == 5, [(t.name, t.reason) for t in res.tasks if t.status != "ok"]


def test_plan_never_runs_the_apply_script(base_inventory, tmp_path):
    node = ShellNode(tmp_path)
    before = node.network()
    (res,), _ = run(base_inventory, "plan", {"node2": node})
    assert len(node.scripts) == 1 and res.count("changed") == 5
    assert any("ip link add v-net-0 type bridge" in c for task in res.tasks for c in task.commands)
    assert node.network() == before and (tmp_path / "proc/sys/net/ipv4/ip_forward").read_text() == "0\n"


def test_failed_step_names_command_exit_code_and_stderr(base_inventory, tmp_path):
    node = ShellNode(tmp_path, fail="addr add 10.244.2.1/24 dev v-net-0")
    (res,), _ = run(base_inventory, "apply", {"node2": node})
    assert [x.status for x in res.tasks] == ["changed", "failed", "skipped", "skipped", "skipped"]
    err = res.tasks[1].error
    assert "`ip addr add 10.244.2.1/24 dev v-net-0` exited 2" in err and "File exists" in err
    assert res.failed and "web" not in node.network()["netns"]  # set -e: nothing after the failed step ran


def test_plan_error_applies_nothing_on_that_host(base_inventory, tmp_path):
    node = ShellNode(tmp_path)
    node.edit_network(lambda s: s["ns"][""]["routes"].append(
        {"dst": "10.244.1.0/24", "gateway": "192.168.56.1", "dev": "eth0", "protocol": "static"}))
    (res,), _ = run(base_inventory, "apply", {"node2": node})
    assert len(node.scripts) == 1  # facts only: nothing was applied
    assert [x.status for x in res.tasks] == ["skipped", "skipped", "skipped", "failed", "skipped"]
    assert "not made by provisioner" in res.tasks[3].error
    assert "v-net-0" not in node.network()["ns"][""]["links"]


def test_unreachable_host_does_not_stop_others(base_inventory, tmp_path):
    ok = ShellNode(tmp_path, host="node1", ip="192.168.56.11/24")
    down = FakeTransport("node2", unreachable=True)
    results, events = run(base_inventory, "apply", {"node1": ok, "node2": down})
    by = {r.host: r for r in results}
    assert by["node2"].unreachable and "Connection refused" in by["node2"].error
    assert not by["node1"].failed and by["node1"].count("changed") == 5
    doc = to_json("apply", results)
    assert doc["recap"]["node2"]["unreachable"] is True and doc["ok"] is False
    assert doc["recap"]["node1"] | {"seconds": 0} == {"ok": 0, "changed": 5, "failed": 0, "skipped": 0,
                                                      "unreachable": False, "seconds": 0}
    assert ("unreachable", by["node2"]) in events


def test_gather_script_runs_each_fact_once(base_inventory, tmp_path):
    node = ShellNode(tmp_path, host="node1", ip="192.168.56.11/24")
    run(base_inventory, "plan", {"node1": node})
    commands = re.findall(r"echo '@@PROVISIONER-FACT\w* \d+'\n\( (.*)\n\) ", node.scripts[0])
    assert len(commands) == len(set(commands))
    assert Links().command() in commands and Routes().command() in commands


def test_reset_runs_backwards_with_handlers_last_and_undoes_apply(base_inventory, tmp_path):
    node = ShellNode(tmp_path, host="node1", ip="192.168.56.11/24")
    run(base_inventory, "apply", {"node1": node})
    (res,), _ = run(base_inventory, "reset", {"node1": node}, "playbooks/site.yaml")
    modules = [x.module for x in res.tasks]
    assert modules[0] == "resolv_conf" and modules[-4] == "created_dirs" and modules[-3:] == ["service"] * 3
    assert not res.failed, [(t.name, t.error) for t in res.tasks if t.error]
    net = node.network()
    assert net["netns"] == [] and set(net["ns"][""]["links"]) == {"lo", "eth0"}
    assert [r["protocol"] for r in net["ns"][""]["routes"]] == ["kernel"]
    assert (tmp_path / "proc/sys/net/ipv4/ip_forward").read_text() == "0\n"  # the value found before apply
    left = [str(p.relative_to(tmp_path)) for p in (tmp_path / "etc").rglob("*") if not p.is_dir() or p.is_symlink()]
    assert left == [] and not (tmp_path / "var/lib/provisioner").exists()  # nothing for the next boot to find


def test_a_directory_where_a_file_must_go_is_that_tasks_error(base_inventory, tmp_path):
    node = ShellNode(tmp_path)
    (tmp_path / "etc/sysctl.d/90-provisioner.conf").mkdir(parents=True)
    (res,), _ = run(base_inventory, "apply", {"node2": node})
    failed = [t for t in res.tasks if t.status == "failed"]
    assert [t.module for t in failed] == ["sysctl"] and "90-provisioner.conf is a directory, not a file" in failed[0].error
    assert list((tmp_path / "etc/sysctl.d/90-provisioner.conf").iterdir()) == []  # nothing moved into it


def test_reset_check_shows_what_reset_would_undo_and_changes_nothing(base_inventory, tmp_path):
    node = ShellNode(tmp_path, host="node1", ip="192.168.56.11/24")
    run(base_inventory, "apply", {"node1": node})
    applied = node.network()
    scripts = len(node.scripts)
    hosts = bind(load_playbook(ROOT / "playbooks/site.yaml"), base_inventory, ["node1"])
    (res,) = run_all(hosts, lambda h: node, "reset", Options(forks=1, check=True), emit=lambda k, o: None)
    assert len(node.scripts) == scripts + 1 and node.network() == applied  # the facts only: nothing ran
    bridge = next(t for t in res.tasks if t.module == "bridge")
    assert bridge.status == "changed" and bridge.commands == ["ip link del v-net-0"]
