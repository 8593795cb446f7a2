"""Dual-stack and IPv6-only inventories: ranges, node addresses, pod subnets and pods per family, every problem
at its file:line."""

from __future__ import annotations

import ipaddress

import pytest

from provisioner import addressing as ad
from provisioner import cluster_dns
from provisioner.inventory import load_inventory

from .test_inventory import errors, one

DUAL = """\
cluster:
  node_cidr: [192.168.56.0/24, "fd00:56::/64"]
  pod_cidr: [10.244.0.0/16, "fd00:10:244::/56"]
  service_cidr: [10.96.0.0/12, "fd00:10:96::/112"]
nodes:
  - name: node1
    address: 192.168.56.11
    ip: [192.168.56.11, "fd00:56::11"]
    pods: [web, {name: api, ip: 10.244.1.7}, {name: db, ip: "fd00:10:244:1::9"}]
  - name: node2
    address: 192.168.56.12
    ip: ["fd00:56::12", 192.168.56.12]
    pod_subnet: ["fd00:10:244:7::/64"]
    pods: [web]
"""

V6 = """\
cluster:
  node_cidr: "fd00:56::/64"
  pod_cidr: "fd00:10:244::/56"
  service_cidr: "fd00:10:96::/112"
nodes:
  - name: node1
    address: "fd00:56::11"
    pods: [web]
  - name: node2
    address: "fd00:56::12"
"""


def test_a_dual_stack_inventory_has_every_range_address_and_subnet_per_family(write):
    inv = load_inventory(write(DUAL))
    c = inv.cluster
    assert c.families == (4, 6) and c.node_prefixes == (24, 64)
    assert [str(n) for n in c.service_cidrs] == ["10.96.0.0/12", "fd00:10:96::/112"]
    assert str(c.dns_ip) == "10.96.0.10"  # the primary family's
    n1, n2 = inv.nodes
    assert [str(a) for a in n1.ips] == ["192.168.56.11", "fd00:56::11"]
    assert [str(a) for a in n2.ips] == ["192.168.56.12", "fd00:56::12"]  # put in the cluster's order
    assert [str(s) for s in n1.pod_subnets] == ["10.244.1.0/24", "fd00:10:244:1::/64"]
    assert [str(s) for s in n2.pod_subnets] == ["10.244.2.0/24", "fd00:10:244:7::/64"]  # IPv6 given, IPv4 allocated
    assert [str(g) for g in n1.pod_gateways] == ["10.244.1.1", "fd00:10:244:1::1"]
    pods = {p.name: [str(a) for a in p.ips] for p in n1.pods}
    # the same host number in both families, unless one is given; a given number is never handed out again
    assert pods == {"web": ["10.244.1.2", "fd00:10:244:1::2"], "api": ["10.244.1.7", "fd00:10:244:1::7"],
                    "db": ["10.244.1.9", "fd00:10:244:1::9"]}
    assert n1.ip == n1.ips[0] and n1.pod_subnet == n1.pod_subnets[0] and c.pod_cidr == c.pod_cidrs[0]


def test_an_ipv6_only_inventory(write):
    inv = load_inventory(write(V6))
    assert inv.cluster.families == (6,)
    assert str(inv.cluster.dns_ip) == "fd00:10:96::a"
    assert [str(n.pod_subnet) for n in inv.nodes] == ["fd00:10:244:1::/64", "fd00:10:244:2::/64"]
    assert [str(p.ip) for p in inv.nodes[0].pods] == ["fd00:10:244:1::2"]
    assert str(inv.nodes[0].ip) == "fd00:56::11"


@pytest.mark.parametrize("change, pattern, line", [
    (("  service_cidr: [10.96.0.0/12, \"fd00:10:96::/112\"]", "  service_cidr: 10.96.0.0/12"),
     r"cluster\.service_cidr gives IPv4 only, cluster\.pod_cidr IPv4 and IPv6 \(dual-stack\)", 4),
    (("  service_cidr: [10.96.0.0/12, \"fd00:10:96::/112\"]", "  service_cidr: [\"fd00:10:96::/112\", 10.96.0.0/12]"),
     r"same families in the same order", 4),
    (("    ip: [192.168.56.11, \"fd00:56::11\"]", "    ip: 192.168.56.11"),
     r"nodes\[0\]\.ip: the cluster is IPv4 and IPv6 \(dual-stack\): node node1 needs an IPv6 address too", 8),
    (("    ip: [192.168.56.11, \"fd00:56::11\"]\n", ""),
     r"nodes\[0\]\.address: .*needs an IPv6 address too, e\.g\. ip: \[192\.168\.56\.11, fd00:56::11\]", 7),
    (("    ip: [192.168.56.11, \"fd00:56::11\"]", "    ip: [192.168.56.11, 192.168.56.13]"),
     r"nodes\[0\]\.ip\[1\]: two IPv4 addresss? \(192\.168\.56\.11 and 192\.168\.56\.13\)", 8),
    (("\"fd00:56::11\"]", "\"fd00:57::11\"]"), r"nodes\[0\]\.ip\[1\]: fd00:57::11 is outside cluster\.node_cidr fd00:56::/64", 8),
    (("\"fd00:56::11\"]", "\"fd00:56::\"]"), r"fd00:56:: is the network address of fd00:56::/64", 8),
    (("\"fd00:10:96::/112\"]", "\"fd00:56::/112\"]"), r"cluster\.service_cidr\[1\]: fd00:56::/112 overlaps cluster\.node_cidr fd00:56::/64", 4),
    (("cluster:\n", "cluster:\n  node_prefix6: 48\n"), r"cluster\.node_prefix6: /48 is larger than cluster\.pod_cidr fd00:10:244::/56", 2),
    (("[\"fd00:10:244:7::/64\"]", "[\"fd00:10:244:7::/80\"]"), r"nodes\[1\]\.pod_subnet\[0\]: .*cluster\.node_prefix6 says /64", 13),
    (("    pods: [web, {", "    pod_subnet: [\"fd00:10:244:7::/64\"]\n    pods: [web, {"),
     r"nodes\[1\]\.pod_subnet\[0\]: fd00:10:244:7::/64 overlaps nodes\[0\]\.pod_subnet fd00:10:244:7::/64", 14),
    (("{name: db, ip: \"fd00:10:244:1::9\"}", "{name: db, ip: \"fd00:10:244:2::9\"}"),
     r"nodes\[0\]\.pods\[2\]\.ip: fd00:10:244:2::9 is not a pod address of fd00:10:244:1::/64", 9),
    (("{name: api, ip: 10.244.1.7}", "{name: api, ip: \"fd00:10:244:1::9\"}"), r"nodes\[0\]\.pods\[2\]\.ip: duplicate pod ip fd00:10:244:1::9", 9),
    (("cluster:\n", "cluster:\n  dns_ip: \"fd00:10:97::a\"\n"), r"cluster\.dns_ip: fd00:10:97::a is outside cluster\.service_cidr fd00:10:96::/112", 2),
    (("cluster:\n", "cluster:\n  dns_ip: \"fd00:10:96::1\"\n"), r"first address of fd00:10:96::/112, taken by the kubernetes API service", 2),
    (("cluster:\n", "cluster:\n  routing: router\n  router: 192.168.56.11\n"),
     r"cluster\.router: the cluster is IPv4 and IPv6 \(dual-stack\): cluster\.router needs an IPv6 address too", 3),
    (("nodes:\n", "cni:\n  type: weave\nnodes:\n"), r"cni\.type: weave is IPv4 only", 6),
    (("  pod_cidr: [10.244.0.0/16, \"fd00:10:244::/56\"]", "  pod_cidr: [10.244.0.0/16, \"fd00:10:244::1/56\"]"),
     r"cluster\.pod_cidr\[1\]: fd00:10:244::1/56 is not a network: .*did you mean fd00:10:244::/56", 3),
    (("  pod_cidr: [10.244.0.0/16, \"fd00:10:244::/56\"]", "  pod_cidr: [10.244.0.0/16, \"fd00:10:244::/56\", 10.245.0.0/16]"),
     r"cluster\.pod_cidr: .*(too long|is not)", 3),
])
def test_dual_stack_problems_are_named_at_their_line(write, change, pattern, line):
    old, new = change
    assert old in DUAL
    one(write, DUAL.replace(old, new, 1), pattern, line=line)


def test_ipv6_values_in_an_ipv4_cluster_are_refused(write):
    from ..conftest import BASE
    text = BASE.replace("    pods: [web]\n", "    pods: [{name: web, ip: \"fd00::5\"}]\n", 1)
    one(write, text, r"nodes\[1\]\.pods\[0\]\.ip: fd00::5 is IPv6, but the cluster has no IPv6 pod range", line=12)
    text = BASE.replace("    address: 192.168.56.12\n", "    address: 192.168.56.12\n    ip: [192.168.56.12, \"fd00::12\"]\n", 1)
    one(write, text, r"nodes\[1\]\.ip\[1\]: fd00::12 is IPv6, but the cluster has no IPv6 pod range", line=12)


def test_all_problems_at_once(write):
    bad = DUAL.replace("\"fd00:56::11\"]", "\"fd00:57::11\"]").replace("[\"fd00:10:244:7::/64\"]", "[\"fd00:10:244:7::/80\"]")
    assert len(errors(write, bad)) >= 2


def test_ipcalc_and_dns_names_take_ipv6():
    f = ad.ipcalc("fd00:10:244::5/64")
    assert f["Prefix"] == "fd00:10:244::/64" and f["Netmask"] == 64 and f["HostMax"] == "fd00:10:244:0:ffff:ffff:ffff:ffff"
    assert "=>" not in ad.format_ipcalc(f) and "Prefix:    fd00:10:244::/64" in ad.format_ipcalc(f)
    assert cluster_dns.pod_a_record("fd00:10:244:1::5", "default", "cluster.local") == "fd00-10-244-1--5.default.pod.cluster.local"
    assert cluster_dns.pod_a_record("10.244.1.5", "default", "cluster.local") == "10-244-1-5.default.pod.cluster.local"
    assert str(ad.dns_ip_for(ipaddress.ip_network("fd00:10:96::/112"))) == "fd00:10:96::a"
    assert not ad.overlaps(ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("fd00::/8"))


# -- node steps per family ------------------------------------------------------

def test_bridge_holds_a_gateway_of_each_family_without_dad_and_leaves_other_families_alone():
    from provisioner.facts.net import Addrs, Links
    from provisioner.facts.values import Link
    from provisioner.modules import MODULES

    def bridge(up=True):
        return Link(kind="bridge", master=None, up=up, mtu=1500, mac=None, index=5, peer=None)

    args = {"name": "v-net-0", "address": ["10.244.1.1/24", "fd00:10:244:1:0::1/64"]}
    fresh = MODULES["bridge"].plan(args, {Links(): {}, Addrs(): {}})
    assert [s.argv for s in fresh.steps if hasattr(s, "argv") and "addr" in s.argv] == [
        ("ip", "addr", "add", "10.244.1.1/24", "dev", "v-net-0"),
        ("ip", "addr", "add", "fd00:10:244:1::1/64", "dev", "v-net-0", "nodad")]
    done = MODULES["bridge"].plan(args, {Links(): {"v-net-0": bridge()},
                                         Addrs(): {"v-net-0": ["fd00:10:244:1::1/64", "10.244.1.1/24"]}})
    assert not done.changed
    # IPv4 only: a global IPv6 address someone gave the bridge is not this task's
    v4 = MODULES["bridge"].plan({"name": "v-net-0", "address": "10.244.1.1/24"},
                                {Links(): {"v-net-0": bridge()}, Addrs(): {"v-net-0": ["10.244.1.1/24", "2001:db8::1/64"]}})
    assert not v4.changed
    wrong = MODULES["bridge"].plan(args, {Links(): {"v-net-0": bridge()},
                                          Addrs(): {"v-net-0": ["10.244.1.1/24", "fd00:10:244:9::1/64"]}})
    assert [s.argv for s in wrong.steps] == [("ip", "addr", "del", "fd00:10:244:9::1/64", "dev", "v-net-0"),
                                             ("ip", "addr", "add", "fd00:10:244:1::1/64", "dev", "v-net-0", "nodad")]


def test_addrs_fact_reads_global_ipv6_but_not_link_local():
    from provisioner.facts.net import parse_addrs
    text = ('[{"ifname": "v-net-0", "addr_info": [{"family": "inet", "local": "10.244.1.1", "prefixlen": 24},'
            '{"family": "inet6", "local": "fd00:10:244:1::1", "prefixlen": 64, "scope": "global"},'
            '{"family": "inet6", "local": "fe80::1", "prefixlen": 64, "scope": "link"}]}]')
    assert parse_addrs(text, 0) == {"v-net-0": ["10.244.1.1/24", "fd00:10:244:1::1/64"]}


def test_routes6_fact_spells_the_default_route_as_a_network():
    from provisioner.facts.net import Routes6
    text = '[{"dst": "default", "gateway": "fd00:56::1", "dev": "eth0", "protocol": "static"}, {"dst": "fd00:10:244:2::/64", "gateway": "fd00:56::12", "dev": "eth0", "protocol": 147}]'
    got = Routes6().process(text, 0)
    assert [(r.dst, r.via, r.protocol) for r in got] == [("::/0", "fd00:56::1", "static"), ("fd00:10:244:2::/64", "fd00:56::12", "147")]
    assert Routes6().process("", 1) is None  # a kernel without IPv6
    assert Routes6().command() == "ip -json -6 route show table main"


def test_routes_of_each_family_and_reset_removes_ours_of_both():
    from provisioner.facts.net import Routes, Routes6
    from provisioner.facts.values import Route
    from provisioner.modules import MODULES

    m = MODULES["routes"]
    args = {"routes": [{"dst": "10.244.2.0/24", "via": "192.168.56.12"},
                       {"dst": "fd00:10:244:2::/64", "via": "fd00:56:0::12"}], "proto": 147}
    assert m.facts(args) == [Routes(), Routes6()]
    assert m.facts({"routes": args["routes"][:1], "proto": 147}) == [Routes()]  # IPv4 only: no ip -6
    fresh = m.plan(args, {Routes(): [], Routes6(): [Route("fe80::/64", None, "eth0", "kernel")]})
    assert [s.argv for s in fresh.steps] == [
        ("ip", "route", "replace", "10.244.2.0/24", "via", "192.168.56.12", "proto", "147"),
        ("ip", "route", "replace", "fd00:10:244:2::/64", "via", "fd00:56::12", "proto", "147")]
    made = {Routes(): [Route("10.244.2.0/24", "192.168.56.12", "eth0", "147")],
            Routes6(): [Route("fd00:10:244:2::/64", "fd00:56::12", "eth0", "147"), Route("::/0", "fd00:56::1", "eth0", "static")]}
    assert not m.plan(args, made).changed
    assert m.reverse_facts({"routes": [], "proto": 147}) == [Routes(), Routes6()]
    assert [s.argv for s in m.reverse({"routes": [], "proto": 147}, made).steps] == [
        ("ip", "route", "del", "10.244.2.0/24", "proto", "147"), ("ip", "route", "del", "fd00:10:244:2::/64", "proto", "147")]
    foreign = {**made, Routes6(): [Route("fd00:10:244:2::/64", "fd00:56::99", "eth0", "static")]}
    with pytest.raises(Exception, match="fd00:10:244:2::/64 exists .* not made by provisioner"):
        m.plan(args, foreign)
    # a node whose kernel has no IPv6 (the fact is None) resets its IPv4 routes all the same
    assert len(m.reverse({"routes": [], "proto": 147}, {**made, Routes6(): None}).steps) == 1


def test_a_lab_pod_gets_an_address_and_a_default_route_of_each_family():
    from provisioner.facts.files import Created
    from provisioner.facts.net import Addrs, Links, Netns, Routes, Routes6
    from provisioner.facts.values import Link, Route
    from provisioner.modules import MODULES

    m = MODULES["pods"]
    args = {"bridge": "v-net-0", "gateway": ["10.244.1.1", "fd00:10:244:1::1"], "prefix": [24, 64],
            "pods": [{"name": "web", "ip": "10.244.1.2", "ips": ["10.244.1.2", "fd00:10:244:1::2"], "via": "manual"}]}
    assert Routes6("web") in m.facts(args) and Routes("web") in m.facts(args)
    fresh = [s.argv for s in m.plan(args, {Netns(): [], Links(): {"v-net-0": Link("bridge", None, True, 1500, None, 5, None)},
                                            Created(): set()}).steps]
    assert ("ip", "-n", "web", "addr", "add", "10.244.1.2/24", "dev", "eth0") in fresh
    assert ("ip", "-n", "web", "addr", "add", "fd00:10:244:1::2/64", "dev", "eth0", "nodad") in fresh
    assert ("ip", "-n", "web", "route", "replace", "default", "via", "10.244.1.1") in fresh
    assert ("ip", "-n", "web", "route", "replace", "default", "via", "fd00:10:244:1::1") in fresh
    up = Link("veth", None, True, 1500, None, 7, None)
    done = {Netns(): ["web"], Links(): {"v-net-0": Link("bridge", None, True, 1500, None, 5, None),
                                        "veth-web": Link("veth", "v-net-0", True, 1500, None, 8, None, True)},
            Links("web"): {"eth0": up, "lo": up}, Addrs("web"): {"eth0": ["10.244.1.2/24", "fd00:10:244:1::2/64"]},
            Routes("web"): [Route("default", "10.244.1.1", "eth0", "boot")],
            Routes6("web"): [Route("::/0", "fd00:10:244:1::1", "eth0", "boot")], Created(): set()}
    assert not m.plan(args, done).changed, [s.show() for s in m.plan(args, done).steps]
    moved = {**done, Addrs("web"): {"eth0": ["10.244.1.2/24", "fd00:10:244:1::9/64"]}}
    o = m.plan(args, moved)
    assert [s.argv for s in o.steps] == [("ip", "-n", "web", "addr", "del", "fd00:10:244:1::9/64", "dev", "eth0"),
                                         ("ip", "-n", "web", "addr", "add", "fd00:10:244:1::2/64", "dev", "eth0", "nodad")]
    assert o.parts[0].what == "pod web has 10.244.1.2, fd00:10:244:1::9, not 10.244.1.2, fd00:10:244:1::2"
    with pytest.raises(Exception, match="one address of each family"):
        m.plan({**args, "pods": [{"name": "web", "ip": "10.244.1.2", "via": "manual"}]}, done)


def test_a_dual_stack_node_binds_both_families_into_every_network_step(write):
    from provisioner.playbook import bind, load_playbook, resolve_path

    inv = load_inventory(write(DUAL))
    tasks = {t.name: t for t in bind(load_playbook(resolve_path(None)), inv)["node1"]}
    names = set(tasks)
    assert {"Kernel forwards and filters pod traffic", "Kernel forwards and filters IPv6 pod traffic (dual-stack and IPv6 clusters)"} <= names
    assert tasks["Pod bridge holds the gateway of the node's pod subnet"].args["address"] == ["10.244.1.1/24", "fd00:10:244:1::1/64"]
    assert tasks["Routes to the other nodes' pod subnets"].args["routes"] == [
        {"dst": "10.244.2.0/24", "via": "192.168.56.12"}, {"dst": "fd00:10:244:7::/64", "via": "fd00:56::12"}]
    boot = tasks["The pod network comes back after a reboot (a systemd unit replays the steps above at boot)"]
    from provisioner.modules.boot import boot_script
    script = boot_script(boot.args)
    for line in ("ip addr replace fd00:10:244:1::1/64 dev v-net-0 nodad", "ip addr replace 10.244.1.1/24 dev v-net-0",
                 "ip -n web addr replace fd00:10:244:1::2/64 dev eth0 nodad", "ip -n web route replace default via fd00:10:244:1::1",
                 "ip route replace fd00:10:244:7::/64 via fd00:56::12 proto 147"):
        assert line in script.splitlines(), line


def test_kubernetes_files_and_the_conflist_carry_both_families(write):
    from provisioner.modules import kube
    from provisioner.playbook import bind, load_playbook, resolve_path
    from provisioner.template_vars import cni_conflist

    inv = load_inventory(write(DUAL.replace("  - name: node1\n", "  - name: node1\n    groups: [control_plane]\n")))
    tasks = {t.module: t for t in bind(load_playbook(resolve_path(None)), inv)["node1"]}
    kubelet = tasks["kubelet"].args
    assert "--node-ip=192.168.56.11,fd00:56::11" in kube.kubelet_args(kubelet)
    assert kube.kubelet_settings(kubelet)["podCIDR"] == "10.244.1.0/24,fd00:10:244:1::/64"
    assert "clusterCIDR: 10.244.0.0/16,fd00:10:244::/56" in kube.kube_proxy_config(tasks["kube_proxy"].args)
    env = kube.control_plane_env(tasks["control_plane_flags"].args)
    assert "--service-cluster-ip-range=10.96.0.0/12,fd00:10:96::/112 --cluster-cidr=10.244.0.0/16,fd00:10:244::/56" in env
    assert "--node-cidr-mask-size-ipv4=24 --node-cidr-mask-size-ipv6=64" in env and "--node-cidr-mask-size=" not in env
    ipam = cni_conflist(inv, inv.nodes[0])["plugins"][0]["ipam"]
    assert ipam["ranges"] == [
        [{"subnet": "10.244.1.0/24", "rangeStart": "10.244.1.10", "rangeEnd": "10.244.1.254", "gateway": "10.244.1.1"}],
        [{"subnet": "fd00:10:244:1::/64", "rangeStart": "fd00:10:244:1::a", "rangeEnd": "fd00:10:244:1:ffff:ffff:ffff:fffe",
          "gateway": "fd00:10:244:1::1"}]]
    assert ipam["routes"] == [{"dst": "0.0.0.0/0"}, {"dst": "::/0"}]


def test_an_ipv6_only_node_binds_every_task(write):
    from provisioner.modules import kube
    from provisioner.playbook import bind, load_playbook, resolve_path

    inv = load_inventory(write(V6.replace("  - name: node1\n", "  - name: node1\n    groups: [control_plane]\n")))
    tasks = {t.name: t for t in bind(load_playbook(resolve_path(None)), inv)["node1"]}
    assert "Kernel forwards and filters pod traffic" not in tasks  # no IPv4 to forward
    assert "Kernel forwards and filters IPv6 pod traffic (dual-stack and IPv6 clusters)" in tasks
    by_module = {t.module: t for t in tasks.values()}
    assert "--node-ip=fd00:56::11" in kube.kubelet_args(by_module["kubelet"].args)
    assert by_module["resolv_conf"].args["nameserver"] == "fd00:10:96::a"
    assert "--node-cidr-mask-size=64" in kube.control_plane_env(by_module["control_plane_flags"].args)


def test_graph_draws_both_families(write):
    from provisioner import graph

    g = graph.plan_graph(load_inventory(write(DUAL)))
    labels = {n["id"]: n["label"] for n in g["nodes"]}
    assert "10.244.1.1/24\nfd00:10:244:1::1/64" in labels["bridge:node1"]
    assert labels["pod:node1:web"] == "web\n10.244.1.2\nfd00:10:244:1::2"
    assert "192.168.56.11, fd00:56::11 on eth0" in labels["node:node1"]
    v6 = [e for e in g["edges"] if e["kind"] == "route" and e["from"] == "node:node1" and ":" in e["dst"]]
    assert [(e["dst"], e["to"]) for e in v6] == [("fd00:10:244:7::/64", "node:node2")]  # reached over node2's IPv6


@pytest.mark.parametrize("name, families", [("dual-stack", (4, 6)), ("ipv6-only", (6,))])
def test_the_example_inventories_load(name, families):
    from ..conftest import ROOT

    inv = load_inventory(ROOT / "inventories" / f"{name}.yaml")
    assert inv.cluster.families == families and len(inv.nodes) == 2


PER_FAMILY = [("cluster", "node_cidr"), ("cluster", "pod_cidr"), ("cluster", "service_cidr"), ("nodes", 0, "ip"),
              ("nodes", 1, "pod_subnet"), ("nodes", 0, "pods", 2, "ip")]


@pytest.mark.parametrize("path", PER_FAMILY, ids=lambda p: ".".join(map(str, p)))
def test_hostile_values_in_a_per_family_list_get_clean_errors(write, path):
    """Every key that takes one value per family, with a payload as its second item: a problem at file:line,
    never a traceback, never the payload unescaped in the message."""
    import yaml as yamllib

    from provisioner.errors import InventoryError
    from .test_hostile import PAYLOADS

    for payload in PAYLOADS:
        doc = yamllib.safe_load(DUAL)
        target = doc
        for key in path[:-1]:
            target = target[key]
        value = target[path[-1]]
        target[path[-1]] = [value[0] if isinstance(value, list) else value, payload]
        with pytest.raises(InventoryError) as exc:
            load_inventory(write(yamllib.safe_dump(doc)))
        text = "\n".join(str(p) for p in exc.value.problems)
        assert "inv.yaml:" in text and "pwned\n" not in text, text
