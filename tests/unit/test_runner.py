"""The runner with a fake transport: one exec for facts, one for apply, failures reported precisely."""

import re

from provisioner import facts as factlib
from provisioner.playbook import bind, load_playbook
from provisioner.report import to_json
from provisioner.runner import Options, run_all
from provisioner.transport import Result
from provisioner.transport.fake import FakeTransport

from ..conftest import ROOT

FRESH = {  # a node with nothing on it yet
    "links": '[{"ifname":"eth0","flags":["UP"],"mtu":1500}]',
    "addrs": '[{"ifname":"eth0","addr_info":[{"family":"inet","local":"192.168.56.12","prefixlen":24}]}]',
    "routes": '[{"dst":"192.168.56.0/24","dev":"eth0","protocol":"kernel"}]',
    "netns": "",
    "sysctl:net.ipv4.ip_forward": "0",  # no br_netfilter yet: its keys and /proc/sys/net/bridge are absent
}


def _fact(key: str) -> factlib.Fact:
    """The fact a test value is for, rebuilt from its key (the script names facts by position only)."""
    from provisioner.facts import files, net

    kind, _, arg = key.partition(":")
    if arg:
        return {"sysctl": files.sysctl, "file": files.file, "exists": files.exists}[kind](arg)
    what, _, netns = key.partition("@")
    return net.netns_list() if what == "netns" else getattr(net, what)(netns or None)


def answer_with(values: dict, apply: Result | None = None):
    """Fake node: answers the gather script from ``values`` (missing → exit 1), and apply with ``apply``."""
    by_command = {_fact(k).command: v for k, v in values.items()}

    def answer(script: str) -> Result:
        m = re.search(r"echo '@@PROVISIONER-FACT(\w*) ", script)
        if m is None:
            return apply or Result("@@PROVISIONER done\n", "", 0)
        nonce, out = m.group(1), []
        for pos, command in re.findall(rf"echo '@@PROVISIONER-FACT{nonce} (\d+)'\n\( (.*)\n\) ", script):
            rc = 0 if command in by_command else 1
            out.append(f"@@PROVISIONER-FACT{nonce} {pos}\n{by_command.get(command, '')}\n@@PROVISIONER-END{nonce} {rc}")
        return Result("\n".join(out) + "\n", "", 0)
    return answer


def run(inv, mode, transports):
    hosts = bind(load_playbook(ROOT / "playbooks/pod-network.yaml"), inv, list(transports))
    events = []
    results = run_all(hosts, lambda h: transports[h], mode, Options(forks=4), emit=lambda k, o: events.append((k, o)))
    return results, events


def test_apply_fresh_node_is_two_execs(base_inventory):
    t = FakeTransport("node2", answer_with(FRESH))
    (res,), events = run(base_inventory, "apply", {"node2": t})
    assert len(t.scripts) == 2
    assert res.recap()["changed"] == 4 and not res.failed
    apply_script = t.scripts[1]
    assert apply_script.startswith("set -e\n")
    assert "ip route replace 10.244.1.0/24 via 192.168.56.11 proto 147" in apply_script
    assert apply_script.index("modprobe br_netfilter") < apply_script.index("bridge-nf-call-iptables")
    assert [k for k, _ in events].count("task") == 4


def test_plan_never_runs_the_apply_script(base_inventory):
    t = FakeTransport("node2", answer_with(FRESH))
    (res,), _ = run(base_inventory, "plan", {"node2": t})
    assert len(t.scripts) == 1 and res.count("changed") == 4
    assert any("ip link add v-net-0 type bridge" in c for task in res.tasks for c in task.commands)


def test_failed_step_names_command_exit_code_and_stderr(base_inventory):
    def apply(script):
        # pretend the bridge task's second step failed
        return Result("@@PROVISIONER step 0 0\n@@PROVISIONER step 1 0\n@@PROVISIONER step 1 1\n",
                      "RTNETLINK answers: File exists\n", 2)
    t = FakeTransport("node2", lambda s: apply(s) if s.startswith("set -e") else answer_with(FRESH)(s))
    (res,), _ = run(base_inventory, "apply", {"node2": t})
    status = [x.status for x in res.tasks]
    assert status == ["changed", "failed", "skipped", "skipped"]
    err = res.tasks[1].error
    assert "`ip addr add 10.244.2.1/24 dev v-net-0` exited 2" in err and "File exists" in err
    assert res.failed


def test_plan_error_applies_nothing_on_that_host(base_inventory):
    values = dict(FRESH, routes='[{"dst":"10.244.1.0/24","gateway":"192.168.56.1","dev":"eth0","protocol":"static"}]')
    t = FakeTransport("node2", answer_with(values))
    (res,), _ = run(base_inventory, "apply", {"node2": t})
    assert len(t.scripts) == 1  # facts only: nothing was applied
    assert [x.status for x in res.tasks] == ["skipped", "skipped", "skipped", "failed"]
    assert "not made by provisioner" in res.tasks[3].error


def test_unreachable_host_does_not_stop_others(base_inventory):
    ok = FakeTransport("node1", answer_with(FRESH))
    down = FakeTransport("node2", unreachable=True)
    results, events = run(base_inventory, "apply", {"node1": ok, "node2": down})
    by = {r.host: r for r in results}
    assert by["node2"].unreachable and "Connection refused" in by["node2"].error
    assert not by["node1"].failed and by["node1"].count("changed") == 4
    doc = to_json("apply", results)
    assert doc["recap"]["node2"]["unreachable"] is True and doc["ok"] is False
    assert doc["recap"]["node1"] | {"seconds": 0} == {"ok": 0, "changed": 4, "failed": 0, "skipped": 0,
                                                      "unreachable": False, "seconds": 0}
    assert ("unreachable", by["node2"]) in events


def test_noop_run_is_one_exec(base_inventory):
    done = dict(FRESH,
                links='[{"ifname":"v-net-0","flags":["UP"],"mtu":1500,"linkinfo":{"info_kind":"bridge"}},'
                      '{"ifname":"veth-web","flags":["UP"],"master":"v-net-0","linkinfo":{"info_kind":"veth"}}]',
                addrs='[{"ifname":"v-net-0","addr_info":[{"family":"inet","local":"10.244.2.1","prefixlen":24}]}]',
                routes='[{"dst":"10.244.1.0/24","gateway":"192.168.56.11","protocol":"147"},'
                       '{"dst":"10.244.3.0/24","gateway":"192.168.56.13","protocol":"147"}]',
                netns='[{"name":"web"}]',
                **{"sysctl:net.ipv4.ip_forward": "1", "exists:/proc/sys/net/bridge": "",
                   "sysctl:net.bridge.bridge-nf-call-iptables": "1",
                   "file:/etc/sysctl.d/90-provisioner.conf": "644 root root\n" + _b64(
                       "# managed by provisioner\n# before: net.ipv4.ip_forward = 0\n"
                       "# before: net.bridge.bridge-nf-call-iptables = (absent)\n"
                       "net.ipv4.ip_forward = 1\nnet.bridge.bridge-nf-call-iptables = 1\n"),
                   "file:/etc/modules-load.d/provisioner.conf": "644 root root\n" + _b64("# managed by provisioner\nbr_netfilter\n"),
                   "links@web": '[{"ifname":"eth0","flags":["UP"]},{"ifname":"lo","flags":["UP"]}]',
                   "addrs@web": '[{"ifname":"eth0","addr_info":[{"family":"inet","local":"10.244.2.2","prefixlen":24}]}]',
                   "routes@web": '[{"dst":"default","gateway":"10.244.2.1"}]'})
    t = FakeTransport("node2", answer_with(done))
    (res,), _ = run(base_inventory, "apply", {"node2": t})
    assert len(t.scripts) == 1, [x.reason for x in res.tasks]
    assert res.count("ok") == 4


def _b64(text):
    import base64
    return base64.b64encode(text.encode()).decode()


def test_gather_script_runs_each_fact_once(base_inventory):
    t = FakeTransport("node1", answer_with(FRESH))
    run(base_inventory, "plan", {"node1": t})
    commands = re.findall(r"echo '@@PROVISIONER-FACT\w* \d+'\n\( (.*)\n\) ", t.scripts[0])
    assert len(commands) == len(set(commands))
    assert _fact("links").command in commands and _fact("routes").command in commands


def test_reset_runs_backwards_with_handlers_last(base_inventory):
    hosts = bind(load_playbook(ROOT / "playbooks/site.yaml"), base_inventory, ["node1"])
    t = FakeTransport("node1", answer_with(FRESH))
    (res,) = run_all(hosts, lambda h: t, "reset")
    modules = [x.module for x in res.tasks]
    assert modules[0] == "resolv_conf" and modules[-4] == "created_dirs" and modules[-3:] == ["service"] * 3
