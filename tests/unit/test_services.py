"""Services by hand: the inventory's services (cluster IPs, ports, endpoints) and the rules kube-proxy's iptables
mode would make for them, checked by iptables-restore itself where it is installed."""

from __future__ import annotations

import ipaddress
import os
import shlex
import shutil
import subprocess
import uuid

import pytest

from provisioner import addressing as ad
from provisioner import service_rules as rules
from provisioner.inventory import load_inventory

from ..conftest import BASE
from .test_inventory import one

SERVICES = BASE + """\
services:
  - name: web
    ports: [{name: http, port: 80, target_port: 8080}, {name: dns, port: 53, protocol: UDP}]
    pods: [web]
  - name: api
    namespace: shop
    cluster_ip: 10.96.0.50
    ports: [{port: 443}]
    pods: [node1/api]
  - name: empty
    ports: [{port: 80}]
"""


def test_services_get_their_cluster_ip_ports_and_endpoints(write):
    inv = load_inventory(write(SERVICES))
    web, api, empty = inv.services
    assert web.key == "default/web" and api.key == "shop/api"
    assert str(api.cluster_ip) == "10.96.0.50"
    assert web.cluster_ip == ad.service_ip(inv.cluster.service_cidr, "default/web", {api.cluster_ip, inv.cluster.dns_ip})
    assert [(p.name, p.port, p.target_port, p.protocol) for p in web.ports] == [("http", 80, 8080, "TCP"), ("dns", 53, 53, "UDP")]
    assert [(e.node, e.pod, str(e.ip)) for e in web.endpoints] == [("node1", "web", "10.244.1.2"), ("node2", "web", "10.244.2.2")]
    assert [(e.node, e.pod) for e in api.endpoints] == [("node1", "api")] and empty.endpoints == ()
    # the same name gets the same address whatever else the inventory lists
    alone = load_inventory(write(BASE + "services:\n  - {name: web, ports: [{port: 80}], pods: [web]}\n", "alone.yaml"))
    assert alone.services[0].cluster_ip == web.cluster_ip


@pytest.mark.parametrize("change, pattern", [
    (("cluster_ip: 10.96.0.50", "cluster_ip: 10.200.0.50"), r"services\[1\]\.cluster_ip: 10.200.0.50 is outside cluster\.service_cidr"),
    (("cluster_ip: 10.96.0.50", "cluster_ip: 10.96.0.10"), r"10.96.0.10 is the cluster DNS address of 10.96.0.0/12"),
    (("cluster_ip: 10.96.0.50", "cluster_ip: 10.96.0.1"), r"10.96.0.1 is the kubernetes API service's of"),
    (("cluster_ip: 10.96.0.50", "cluster_ip: 10.96.0.0"), r"is the network address of"),
    (("pods: [node1/api]", "pods: [node3/api]"), r"services\[1\]\.pods\[0\]: service shop/api: no lab pod node3/api"),
    (("pods: [node1/api]", "pods: [db]"), r"no lab pod db on any node"),
    (("{name: dns, port: 53, protocol: UDP}", "{port: 53, protocol: UDP}"), r"services\[0\]\.ports: .*each needs a name"),
    (("name: api\n    namespace: shop", "name: web\n    namespace: default"), r"services\[1\]\.name: duplicate service default/web"),
    (("{name: dns, port: 53, protocol: UDP}", "{name: dns, port: 80}"), r"port 80/TCP twice"),
    (("ports: [{port: 443}]", "ports: [{port: 0}]"), r"services\[1\]\.ports\[0\]\.port"),
    (("name: api\n", "name: Api\n"), r"services\[1\]\.name"),
])
def test_service_problems_are_named_at_their_line(write, change, pattern):
    old, new = change
    assert old in SERVICES
    one(write, SERVICES.replace(old, new, 1), pattern)


def test_a_service_cannot_name_a_pod_whose_address_is_ipams(write):
    text = BASE.replace("    pods: [web]\n", "    pods: [web, {name: db, via: cni}]\n", 1)
    one(write, text + "services:\n  - {name: db, ports: [{port: 5432}], pods: [db]}\n", r"node2/db gets its address from IPAM")


def test_rules_have_kube_proxys_shape_with_our_own_chains_and_comments(write):
    inv = load_inventory(write(SERVICES))
    web = inv.services[0]
    chains, nat = rules.nat_rules(inv.services)
    svc = rules.chain("SVC", "default/web:http", "TCP")
    assert svc.startswith("PROV-SVC-") and len(svc) <= 28 and svc in chains
    assert f'-A PROV-SERVICES -d {web.cluster_ip}/32 -p tcp -m comment --comment "default/web:http cluster IP" -m tcp --dport 80 -j {svc}' in nat
    spread = [r for r in nat if r.startswith(f"-A {svc} ")]
    assert "--probability 0.5000000000" in spread[0] and "statistic" not in spread[1]  # two endpoints, even odds
    assert '-m comment --comment "default/web:http -> 10.244.1.2:8080"' in spread[0]
    sep = spread[0].split(" -j ")[-1]
    assert f'-A {sep} -s 10.244.1.2/32 -m comment --comment "default/web:http" -j PROV-MARK-MASQ' in nat  # hairpin
    assert f'-A {sep} -p tcp -m comment --comment "default/web:http" -m tcp -j DNAT --to-destination 10.244.1.2:8080' in nat
    assert not any("KUBE-" in r for r in nat) and "--set-xmark 0x10000/0x10000" in " ".join(nat)
    assert not any("default/empty" in r for r in nat)
    _, refused = rules.filter_rules(inv.services)
    assert refused == [f'-A PROV-SERVICES -d {inv.services[2].cluster_ip}/32 -p tcp -m comment --comment '
                       '"default/empty:80 has no endpoints" -m tcp --dport 80 -j REJECT --reject-with icmp-port-unreachable']


def test_three_endpoints_spread_evenly():
    from provisioner.inventory.model import Endpoint, Service, ServicePort

    eps = tuple(Endpoint(f"node{i}", "web", ipaddress.ip_address(f"10.244.{i}.2")) for i in (1, 2, 3))
    s = Service("web", "default", ipaddress.ip_address("10.96.0.20"), (ServicePort(None, 80, 80, "TCP"),), eps)
    probabilities = [r.split("--probability ")[1].split()[0] for r in rules.nat_rules([s])[1] if "--probability" in r]
    assert probabilities == ["0.3333333333", "0.5000000000"]  # then the last takes what is left


def test_restore_text_is_what_iptables_restore_accepts(write):
    """iptables-restore --test reads the text (in a network namespace of its own: nothing here changes)."""
    if os.geteuid() != 0 or not shutil.which("iptables-restore") or not shutil.which("ip"):
        pytest.skip("needs root and iptables")
    inv = load_inventory(write(SERVICES))
    text = rules.restore_text(inv.services, stale={"nat": ["PROV-SVC-GONEGONEGONEGONE"]})
    assert "-X PROV-SVC-GONEGONEGONEGONE" in text
    ns = "svct" + uuid.uuid4().hex[:6]
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        enter = ["ip", "netns", "exec", ns]
        done = subprocess.run(enter + ["iptables-restore", "--noflush"], input=rules.restore_text(inv.services),
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        subprocess.run(enter + ["iptables", "-t", "nat", "-N", "PROV-SVC-GONEGONEGONEGONE"], check=True)
        again = subprocess.run(enter + ["iptables-restore", "--noflush"], input=text, capture_output=True, text=True)
        assert again.returncode == 0, again.stderr  # the same again, and a stale chain of ours emptied and deleted
        assert "GONE" not in subprocess.run(enter + ["iptables", "-t", "nat", "-S"], capture_output=True, text=True).stdout
        listed = subprocess.run(enter + ["iptables", "-t", "nat", "-L", "-n"], capture_output=True, text=True).stdout
        assert "default/web:http" in listed and "shop/api:443" in listed
    finally:
        subprocess.run(["ip", "netns", "del", ns])


def test_only_dns_labels_reach_a_rule():
    from provisioner.inventory.model import Service, ServicePort

    bad = Service('we"b', "default", ipaddress.ip_address("10.96.0.20"), (ServicePort(None, 80, 80, "TCP"),), ())
    with pytest.raises(ValueError, match="DNS labels"):
        rules.filter_rules([bad])


def module_args(inv) -> dict:
    return {"mode": "iptables", "services": [
        {"name": s.name, "namespace": s.namespace, "cluster_ip": str(s.cluster_ip),
         "ports": [{"name": p.name, "port": p.port, "target_port": p.target_port, "protocol": p.protocol} for p in s.ports],
         "endpoints": [{"node": e.node, "pod": e.pod, "ip": str(e.ip)} for e in s.endpoints]} for s in inv.services]}


def test_the_module_applies_once_changes_nothing_after_and_reset_leaves_no_rule(write):
    """The module's steps run in a network namespace of their own, with the facts read back from it: apply,
    nothing to do the second time, a deleted rule put back, reset removes every PROV chain and jump."""
    if os.geteuid() != 0 or not shutil.which("iptables-restore"):
        pytest.skip("needs root and iptables")
    from provisioner.facts.system import IptablesRules, SystemdUnit
    from provisioner.modules import MODULES

    m, args = MODULES["services"], module_args(load_inventory(write(SERVICES)))
    ns = "svcm" + uuid.uuid4().hex[:6]
    subprocess.run(["ip", "netns", "add", ns], check=True)
    enter = ["ip", "netns", "exec", ns]

    def facts():
        out = {SystemdUnit("kube-proxy"): False}
        for table in ("nat", "filter"):
            f = IptablesRules(table)
            p = subprocess.run(enter + ["sh", "-c", f.command()], capture_output=True, text=True)
            out[f] = f.process(p.stdout, p.returncode)
        return out

    def run(outcome):
        for step in outcome.steps:
            p = subprocess.run(enter + ["sh", "-c", step.shell()], capture_output=True, text=True)
            assert p.returncode == 0, (step.show(), p.stderr)

    try:
        first = m.plan(args, facts())
        assert first.changed and len(first.steps) == 1 + 5  # one restore, five jumps
        run(first)
        again = m.plan(args, facts())
        assert not again.changed, [s.show() for s in again.steps]
        saved = subprocess.run(enter + ["iptables-save", "-t", "nat"], capture_output=True, text=True).stdout
        assert "default/web:http cluster IP" in saved and "shop/api:443" in saved
        victim = next(x for x in saved.splitlines() if x.startswith("-A PROV-SEP-") and "DNAT" in x)
        subprocess.run(enter + ["iptables", "-t", "nat", "-D", *shlex.split(victim[3:])], check=True)
        mend = m.plan(args, facts())
        assert [s.argv[0] for s in mend.steps] == ["iptables-restore"]
        assert [(p.kind, p.name) for p in mend.parts] == [("service", victim.split('"')[1].split(":")[0])]  # graph --live
        run(mend)
        assert not m.plan(args, facts()).changed
        fewer = {**args, "services": args["services"][:1]}  # a service left out: its chains go
        run(m.plan(fewer, facts()))
        assert "shop/api" not in subprocess.run(enter + ["iptables-save"], capture_output=True, text=True).stdout
        assert not m.plan(fewer, facts()).changed
        run(m.reverse(fewer, facts()))
        assert "PROV-" not in subprocess.run(enter + ["iptables-save"], capture_output=True, text=True).stdout
        assert not m.reverse(fewer, facts()).changed
    finally:
        subprocess.run(["ip", "netns", "del", ns])


def test_a_node_with_kube_proxy_is_left_to_it(write):
    from provisioner.facts.system import SystemdUnit
    from provisioner.modules import MODULES

    o = MODULES["services"].plan(module_args(load_inventory(write(SERVICES))), {SystemdUnit("kube-proxy"): True})
    assert not o.changed and "kube-proxy is installed on this node" in o.reason


def test_graph_draws_each_service_once_with_an_edge_to_each_endpoint(write):
    from provisioner import graph
    inv = load_inventory(write(SERVICES))
    g = graph.plan_graph(inv)
    web = next(n for n in g["nodes"] if n["id"] == "service:default/web")
    assert web["kind"] == "service" and "80/TCP→8080" in web["label"] and "53/UDP" in web["label"]
    ends = {e["to"] for e in g["edges"] if e["kind"] == "endpoint" and e["from"] == "service:default/web"}
    assert ends == {f"pod:{n.name}:web" for n in inv.nodes if any(p.name == "web" for p in n.pods)}
    empty = next(n for n in g["nodes"] if n["id"] == "service:default/empty")
    assert "no endpoints: refused" in empty["label"]
    one_node = graph.plan_graph(inv, [inv.nodes[0].name])  # --limit: no edge to a pod not drawn
    assert all(e["to"].startswith(f"pod:{inv.nodes[0].name}:") for e in one_node["edges"] if e["kind"] == "endpoint")
    graph.to_dot(g, "t").source  # every kind has a shape


# -- ipvs mode ------------------------------------------------------------------
def ipvs_facts(nat=None, filt=None, ipvs=None, links=None, addrs=None, created=(), missing=(), loaded=False, ct=None):
    from provisioner.facts.files import Created, Exists, Sysctl
    from provisioner.facts.net import Addrs, Links
    from provisioner.facts.system import Commands, IptablesRules, IpvsRules, SystemdUnit
    return {SystemdUnit("kube-proxy"): False, IptablesRules("nat"): nat or [], IptablesRules("filter"): filt or [],
            IpvsRules(): ipvs if ipvs is not None else [], Links(): links or {}, Addrs(): addrs or {},
            Created(): frozenset(created), Commands(("ipvsadm",)): frozenset(missing),
            Exists("/proc/net/ip_vs"): loaded, Sysctl("net.ipv4.vs.conntrack"): ct}


def test_ipvs_mode_makes_a_dummy_link_virtual_services_and_the_hairpin_masquerade(write):
    from provisioner.modules import MODULES
    inv = load_inventory(write(SERVICES))
    args = {**module_args(inv), "mode": "ipvs"}
    o = MODULES["services"].plan(args, ipvs_facts())
    shown = [s.show() for s in o.steps]
    assert shown[:3] == ["modprobe ip_vs", "printf '%s\\n' 1 > /proc/sys/net/ipv4/vs/conntrack",
                         "ip link add prov-ipvs0 type dummy"]
    assert o.steps[2].creates == ("link", "prov-ipvs0")  # reset takes away only a link apply made
    web, api, empty = inv.services
    assert f"ip addr add {empty.cluster_ip}/32 dev prov-ipvs0" in shown  # no endpoints: refused by the node itself
    (ipvs,) = [s for s in o.steps if s.argv == ("ipvsadm", "-R")]  # never ipvsadm-restore: it clears all first
    assert not any(s.argv[0] == "ipvsadm-restore" for s in o.steps)
    lines = ipvs.stdin.splitlines()
    assert f"-A -t {web.cluster_ip}:80 -s rr" in lines and f"-A -u {web.cluster_ip}:53 -s rr" in lines
    assert [x for x in lines if x.startswith(f"-a -t {web.cluster_ip}:80 ")] == [
        f"-a -t {web.cluster_ip}:80 -r {e.ip}:8080 -m -w 1" for e in web.endpoints]
    assert not any(str(empty.cluster_ip) in x for x in lines)
    (restore,) = [s for s in o.steps if s.argv[0] == "iptables-restore"]
    assert "MASQUERADE" in restore.stdin and "PROV-SERVICES" not in restore.stdin and "DNAT" not in restore.stdin
    assert shown[-1] == "iptables -t nat -I POSTROUTING 1 -m comment --comment 'provisioner services' -j PROV-POSTROUTING"
    assert "PROV-SERVICES" not in " ".join(shown)


def test_ipvs_mode_settles_mends_one_service_and_reset_removes_only_ours(write):
    from provisioner.facts.values import Link
    from provisioner.modules import MODULES
    from provisioner import service_rules as sr
    inv = load_inventory(write(SERVICES))
    args = {**module_args(inv), "mode": "ipvs"}
    web, api, empty = inv.services
    lines = [x for block in sr.ipvs_services(inv.services).values() for x in block]
    chains, nat = sr.ipvs_nat_rules(inv.services)
    have_nat = [f":{c} - [0:0]" for c in chains] + nat + [
        '-A POSTROUTING -m comment --comment "provisioner services" -j PROV-POSTROUTING']
    foreign = ["-A -t 10.0.0.1:80 -s wlc", "-a -t 10.0.0.1:80 -r 10.0.0.9:80 -g -w 1"]  # someone else's IPVS
    settled = dict(nat=have_nat, ipvs=list(reversed(lines)) + foreign, loaded=True, ct="1",
                   links={"prov-ipvs0": Link(kind="dummy")}, created=[("link", "prov-ipvs0")],
                   addrs={"prov-ipvs0": [f"{s.cluster_ip}/32" for s in inv.services]})
    again = MODULES["services"].plan(args, ipvs_facts(**settled))
    assert not again.changed, [s.show() for s in again.steps]
    lost = dict(settled, ipvs=[x for x in settled["ipvs"] if not x.startswith(f"-a -t {api.cluster_ip}:443")])
    mend = MODULES["services"].plan(args, ipvs_facts(**lost))
    (step,) = mend.steps
    assert step.stdin.splitlines() == [f"-D -t {api.cluster_ip}:443", f"-A -t {api.cluster_ip}:443 -s rr",
                                       f"-a -t {api.cluster_ip}:443 -r {api.endpoints[0].ip}:443 -m -w 1"]
    assert [(p.kind, p.name) for p in mend.parts] == [("service", "shop/api")]
    gone = MODULES["services"].reverse(args, ipvs_facts(**settled))
    shown = [s.show() for s in gone.steps]
    assert shown[0].startswith("ipvsadm -R") and "10.0.0.1" not in gone.steps[0].stdin
    assert sorted(gone.steps[0].stdin.splitlines()) == sorted(f"-D {k}" for k in sr.ipvs_services(inv.services))
    assert "ip link del prov-ipvs0" in shown
    not_ours = MODULES["services"].reverse(args, ipvs_facts(**dict(settled, created=[])))
    assert "ip link del prov-ipvs0" not in [s.show() for s in not_ours.steps]  # a link apply did not record making


def test_from_iptables_mode_to_ipvs_the_old_chains_go_after_their_jumps(write):
    from provisioner.modules import MODULES
    from provisioner import service_rules as sr
    inv = load_inventory(write(SERVICES))
    nat_chains, nat = sr.nat_rules(inv.services)
    f_chains, filt = sr.filter_rules(inv.services)
    jumps = {t: [f'-A {b} -m comment --comment "provisioner services" -j {c}' for b, c in sr.JUMPS[t]] for t in sr.JUMPS}
    facts = ipvs_facts(nat=[f":{c} - [0:0]" for c in nat_chains] + nat + jumps["nat"],
                       filt=[f":{c} - [0:0]" for c in f_chains] + filt + jumps["filter"], loaded=True, ct="1")
    o = MODULES["services"].plan({**module_args(inv), "mode": "ipvs"}, facts)
    shown = [s.show() for s in o.steps]
    first_restore = next(i for i, s in enumerate(o.steps) if s.argv[0] == "iptables-restore")
    deletes = [i for i, x in enumerate(shown) if x.startswith("iptables -t") and " -D " in x]
    assert len(deletes) == 4 and max(deletes) < first_restore  # PREROUTING, OUTPUT (nat); FORWARD, OUTPUT (filter)
    assert "-X PROV-SERVICES" in o.steps[first_restore].stdin
    back = MODULES["services"].plan(module_args(inv), ipvs_facts(
        ipvs=[x for b in sr.ipvs_services(inv.services).values() for x in b], created=[("link", "prov-ipvs0")],
        links={"prov-ipvs0": __import__("provisioner.facts.values", fromlist=["Link"]).Link(kind="dummy")},
        addrs={"prov-ipvs0": [f"{s.cluster_ip}/32" for s in inv.services]}))
    assert [s.argv[:2] for s in back.steps[:2]] == [("ipvsadm", "-R"), ("ip", "link")]  # ipvs mode's leftovers go first


def test_ipvs_mode_without_ipvsadm_says_what_to_install(write):
    from provisioner.modules import MODULES
    with pytest.raises(Exception, match=r"ipvs mode needs ipvsadm on the node \(Debian: apt install ipvsadm\)"):
        MODULES["services"].plan({**module_args(load_inventory(write(SERVICES))), "mode": "ipvs"},
                                 ipvs_facts(missing=("ipvsadm",)))


def test_the_ipvs_fact_never_loads_ipvs_by_looking():
    from provisioner.facts.system import IpvsRules
    f = IpvsRules()
    assert f.command().startswith("if [ -e /proc/net/ip_vs ]")
    assert f.process("no-ipvs\n", 0) == [] and f.process("", 127) is None
    assert f.process("-A -t 10.96.0.5:80 -s rr\n-a -t 10.96.0.5:80 -r 10.244.1.2:80 -m -w 1\n", 0) == [
        "-A -t 10.96.0.5:80 -s rr", "-a -t 10.96.0.5:80 -r 10.244.1.2:80 -m -w 1"]
