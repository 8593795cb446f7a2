"""Every module: facts in, commands out, and the reason when there is nothing to do."""

import pytest

from provisioner.facts.values import FileState, Link, Route
from provisioner.facts.files import File, Exists, Created, Sysctl
from provisioner.facts.net import Links, Addrs, Routes, Netns
from provisioner.modules import ModuleError
from tests.bound_modules import MODULES
from provisioner.steps import Cmd, WriteFile


def cmds(outcome):
    return [s.shell() if isinstance(s, Cmd) else s.show() for s in outcome.steps]


def link(kind=None, master=None, up=True, mtu=1500, hairpin=None):
    """A link as apply leaves it: a bridge port in hairpin mode (unless ``hairpin`` says otherwise)."""
    return Link(kind=kind, master=master, up=up, mtu=mtu, mac="aa:bb:cc:dd:ee:ff",
                hairpin=(master is not None) if hairpin is None else hairpin)


# -- bridge -----------------------------------------------------------------
BR = {"name": "v-net-0", "address": "10.244.1.1/24"}


def test_bridge_created_from_nothing():
    o = MODULES["bridge"].plan(BR, {Links(): {"eth0": link()}, Addrs(): {"eth0": ["10.0.0.5/24"]}})
    assert cmds(o) == ["provisioner_created link v-net-0\nip link add v-net-0 type bridge",  # written down first, for reset
                       "ip addr add 10.244.1.1/24 dev v-net-0", "ip link set v-net-0 up"]


def test_bridge_noop_has_reason():
    o = MODULES["bridge"].plan(BR, {Links(): {"v-net-0": link("bridge")}, Addrs(): {"v-net-0": ["10.244.1.1/24"]}})
    assert not o.changed and o.reason == "bridge v-net-0 already up with 10.244.1.1/24"


def test_bridge_wrong_address_is_repaired_and_down_bridge_raised():
    o = MODULES["bridge"].plan(BR, {Links(): {"v-net-0": link("bridge", up=False)}, Addrs(): {"v-net-0": ["10.244.9.1/24"]}})
    # a bridge apply did not make: the address it adds is written down, so that reset takes away only that
    assert cmds(o) == ["ip addr del 10.244.9.1/24 dev v-net-0",
                       "provisioner_created addr 'v-net-0 10.244.1.1/24'\nip addr add 10.244.1.1/24 dev v-net-0",
                       "ip link set v-net-0 up"]


def test_bridge_name_taken_by_other_kind_fails():
    with pytest.raises(ModuleError, match="is a veth link, not a bridge"):
        MODULES["bridge"].plan(BR, {Links(): {"v-net-0": link("veth")}, Addrs(): {}})


def test_bridge_reverse_twice():
    m = MODULES["bridge"]
    made = {Links(): {"v-net-0": link("bridge")}, Addrs(): {"v-net-0": ["10.244.1.1/24"]}, Created(): {("link", "v-net-0")}}
    assert cmds(m.reverse(BR, made)) == ["ip link del v-net-0"]
    assert not m.reverse(BR, {Links(): {}, Addrs(): {}, Created(): set()}).changed


def test_bridge_reset_keeps_a_bridge_apply_did_not_make():
    m = MODULES["bridge"]
    theirs = {Links(): {"v-net-0": link("bridge")}, Addrs(): {"v-net-0": ["10.244.1.1/24", "192.168.9.1/24"]}}
    o = m.reverse(BR, {**theirs, Created(): set()})
    assert not o.changed and "existed before apply" in o.reason
    o = m.reverse(BR, {**theirs, Created(): {("addr", "v-net-0 10.244.1.1/24")}})
    assert cmds(o) == ["ip addr del 10.244.1.1/24 dev v-net-0"]


def test_bridge_mtu_is_cni_mtu_and_a_foreign_bridges_own_comes_back_at_reset():
    m, args = MODULES["bridge"], {**BR, "mtu": 1450}
    o = m.plan(args, {Links(): {}, Addrs(): {}})
    assert "ip link set v-net-0 mtu 1450" in cmds(o)  # a bridge it makes: nothing to record
    ours = {Links(): {"v-net-0": link("bridge", mtu=1400)}, Addrs(): {"v-net-0": ["10.244.1.1/24"]},
            Created(): {("link", "v-net-0")}}
    assert cmds(m.plan(args, ours)) == ["ip link set v-net-0 mtu 1450"]
    theirs = {**ours, Created(): set()}
    assert cmds(m.plan(args, theirs)) == ["provisioner_created mtu 'v-net-0 1400'\nip link set v-net-0 mtu 1450"]
    again = {**ours, Links(): {"v-net-0": link("bridge", mtu=1300)}, Created(): {("mtu", "v-net-0 1400")}}
    assert cmds(m.plan(args, again)) == ["ip link set v-net-0 mtu 1450"]  # the first MTU stays the one recorded
    now = {**ours, Links(): {"v-net-0": link("bridge", mtu=1450)}, Created(): {("mtu", "v-net-0 1400")}}
    o = m.reverse(args, now)
    assert cmds(o) == ["ip link set v-net-0 mtu 1400"] and "the MTU change (back to 1400)" in o.reason


def test_pods_get_cni_mtu_on_both_ends():
    args = {**PODS, "mtu": 1450}
    c = cmds(MODULES["pods"].plan(args, {Netns(): [], Links(): {"v-net-0": link("bridge")}}))
    assert "provisioner_created link veth-web\nip link add veth-web mtu 1450 type veth peer name eth0 mtu 1450 netns web" in c
    assert cmds(MODULES["pods"].plan(args, done_pod_facts())) == ["ip link set veth-web mtu 1450",
                                                                  "ip -n web link set eth0 mtu 1450"]


# -- sysctl -----------------------------------------------------------------
SYS = {"settings": {"net.ipv4.ip_forward": 1, "net.bridge.bridge-nf-call-iptables": 1}}
CONF = ("# managed by provisioner\n# before: net.ipv4.ip_forward = 0\n# before: net.bridge.bridge-nf-call-iptables = (absent)\n"
        "net.ipv4.ip_forward = 1\nnet.bridge.bridge-nf-call-iptables = 1\n")
MODS = "# managed by provisioner\nbr_netfilter\n"


def sysfacts(fwd="0", brnf=None, bridge_dir=False, conf=None, mods=None):
    f = lambda c: None if c is None else FileState("0644", "root", "root", c.encode())
    return {Sysctl("net.ipv4.ip_forward"): fwd, Sysctl("net.bridge.bridge-nf-call-iptables"): brnf,
            Exists("/proc/sys/net/bridge"): bridge_dir, File("/etc/sysctl.d/90-provisioner.conf"): f(conf),
            File("/etc/modules-load.d/provisioner.conf"): f(mods)}


def test_sysctl_loads_br_netfilter_before_bridge_keys():
    o = MODULES["sysctl"].plan(SYS, sysfacts())
    c = cmds(o)
    assert c[0].startswith("write /etc/sysctl.d/90-provisioner.conf")  # the originals are on disk before any change
    assert c[1] == "modprobe br_netfilter"
    assert c[2] == "printf '%s\\n' 1 > /proc/sys/net/ipv4/ip_forward"
    assert c[3] == "printf '%s\\n' 1 > /proc/sys/net/bridge/bridge-nf-call-iptables"
    assert "+net.ipv4.ip_forward = 1" in o.diff and "+# before: net.bridge.bridge-nf-call-iptables = (absent)" in o.diff


def test_sysctl_builtin_br_netfilter_is_not_modprobed():
    o = MODULES["sysctl"].plan(SYS, sysfacts(brnf="0", bridge_dir=True, conf=CONF, mods=MODS))
    assert "modprobe br_netfilter" not in cmds(o) and cmds(o) == ["printf '%s\\n' 1 > /proc/sys/net/ipv4/ip_forward",
                                                                 "printf '%s\\n' 1 > /proc/sys/net/bridge/bridge-nf-call-iptables"]


def test_sysctl_noop():
    o = MODULES["sysctl"].plan(SYS, sysfacts(fwd="1", brnf="1", bridge_dir=True, conf=CONF, mods=MODS))
    assert not o.changed
    assert o.reason == "sysctls already set: net.ipv4.ip_forward=1, net.bridge.bridge-nf-call-iptables=1"


def test_sysctl_records_old_values_and_reset_restores_them():
    o = MODULES["sysctl"].plan(SYS, sysfacts(fwd="0", brnf="0", bridge_dir=True))
    conf = next(s.content.decode() for s in o.steps if getattr(s, "path", "") == "/etc/sysctl.d/90-provisioner.conf")
    assert "# before: net.ipv4.ip_forward = 0\n# before: net.bridge.bridge-nf-call-iptables = 0\n" in conf
    applied = sysfacts(fwd="1", brnf="1", bridge_dir=True, conf=conf, mods=MODS)
    assert not MODULES["sysctl"].plan(SYS, applied).changed  # the recorded values stay as they were
    cut_off = sysfacts(fwd="1", brnf="1", bridge_dir=True, conf=conf)  # a later run after a cut-off apply
    again = MODULES["sysctl"].plan(SYS, cut_off)
    assert all("# before:" not in line for line in again.diff.splitlines() if line.startswith(("+", "-")))
    back = [s.shell() for s in MODULES["sysctl"].reverse(SYS, applied).steps]
    assert back == ["printf '%s\\n' 0 > /proc/sys/net/ipv4/ip_forward",
                    "printf '%s\\n' 0 > /proc/sys/net/bridge/bridge-nf-call-iptables",
                    "rm -f /etc/sysctl.d/90-provisioner.conf", "rm -f /etc/modules-load.d/provisioner.conf"]


def test_sysctl_unknown_key_fails():
    with pytest.raises(ModuleError, match="net.ipv4.nope does not exist"):
        MODULES["sysctl"].plan({"settings": {"net.ipv4.nope": 1}, "persist": None},
                               {Sysctl("net.ipv4.nope"): None, Exists("/proc/sys/net/bridge"): True})


# -- routes -----------------------------------------------------------------
RT = {"routes": [{"dst": "10.244.2.0/24", "via": "192.168.56.12"}, {"dst": "10.244.3.0/24", "via": "192.168.56.13"}]}


def route(dst, via, proto="147", dev="eth0"):
    return Route(dst, via, dev, proto)


def test_routes_added_with_our_protocol():
    o = MODULES["routes"].plan(RT, {Routes(): [route("192.168.56.0/24", None, "kernel")]})
    assert cmds(o) == ["ip route replace 10.244.2.0/24 via 192.168.56.12 proto 147",
                       "ip route replace 10.244.3.0/24 via 192.168.56.13 proto 147"]


def test_routes_noop_reason():
    o = MODULES["routes"].plan(RT, {Routes(): [route("10.244.2.0/24", "192.168.56.12"), route("10.244.3.0/24", "192.168.56.13")]})
    assert not o.changed
    assert o.reason == "routes already in place: 10.244.2.0/24 via 192.168.56.12, 10.244.3.0/24 via 192.168.56.13"


def test_routes_stale_ours_removed_wrong_gateway_replaced():
    facts = {Routes(): [route("10.244.2.0/24", "192.168.56.99"), route("10.244.3.0/24", "192.168.56.13"),
                        route("10.244.4.0/24", "192.168.56.14")]}
    assert cmds(MODULES["routes"].plan(RT, facts)) == [
        "ip route replace 10.244.2.0/24 via 192.168.56.12 proto 147", "ip route del 10.244.4.0/24 proto 147"]


def test_routes_never_touch_foreign_routes():
    facts = {Routes(): [route("10.244.2.0/24", "192.168.56.12", "static"), route("10.50.0.0/16", "192.168.56.1", "boot")]}
    with pytest.raises(ModuleError, match="route to 10.244.2.0/24 exists .*not made by provisioner"):
        MODULES["routes"].plan(RT, facts)
    o = MODULES["routes"].plan({"routes": []}, {Routes(): [route("10.50.0.0/16", "192.168.56.1", "boot")]})
    assert not o.changed


def test_routes_reverse_only_ours():
    facts = {Routes(): [route("10.244.2.0/24", "192.168.56.12"), route("10.50.0.0/16", "192.168.56.1", "boot")]}
    assert cmds(MODULES["routes"].reverse(RT, facts)) == ["ip route del 10.244.2.0/24 proto 147"]


def test_many_routes_go_in_one_ip_batch_and_reset_removes_them_the_same_way():
    """A mesh of many nodes: one `ip -batch -` (one process, one step) instead of a command per route."""
    many = {"routes": [{"dst": f"10.244.{i}.0/24", "via": f"192.168.56.{10 + i}"} for i in range(2, 12)]}
    o = MODULES["routes"].plan(many, {Routes(): [route("10.244.99.0/24", "192.168.56.99")]})
    (step,) = o.steps
    assert step.argv == ("ip", "-batch", "-")
    assert step.stdin.splitlines() == [f"route replace 10.244.{i}.0/24 via 192.168.56.{10 + i} proto 147"
                                       for i in range(2, 12)] + ["route del 10.244.99.0/24 proto 147"]
    assert len(o.parts) == 11  # graph --live still sees each route
    have = [route(f"10.244.{i}.0/24", f"192.168.56.{10 + i}") for i in range(2, 12)] + [route("10.50.0.0/16", "192.168.56.1", "boot")]
    (gone,) = MODULES["routes"].reverse(many, {Routes(): have}).steps
    assert gone.stdin.splitlines() == [f"route del 10.244.{i}.0/24 proto 147" for i in range(2, 12)]
    few = MODULES["routes"].plan({"routes": many["routes"][:8]}, {Routes(): []})
    assert [s.argv[:3] for s in few.steps] == [("ip", "route", "replace")] * 8  # as the manual steps write them


def test_ip_batch_takes_only_words_that_split_back_the_same():
    from provisioner.modules.routes import route_steps
    assert route_steps([("route", "del", "10.0.0.0/8")] * 9)[0].stdin.count("\n") == 9
    with pytest.raises(ModuleError, match="cannot go through ip -batch"):
        route_steps([("route", "del", "10.0.0.0/8 dev x")] * 9)
    with pytest.raises(ModuleError, match="cannot go through ip -batch"):
        route_steps([("route", "del", "10.0.0.0/8\nlink del eth0")] * 9)


# -- pods -------------------------------------------------------------------
PODS = {"bridge": "v-net-0", "gateway": "10.244.1.1", "prefix": 24,
        "pods": [{"name": "web", "ip": "10.244.1.2"}, {"name": "cnipod", "ip": "10.244.1.3", "via": "cni"}]}


def test_pod_made_from_nothing():
    o = MODULES["pods"].plan(PODS, {Netns(): [], Links(): {"v-net-0": link("bridge")}})
    assert cmds(o) == [
        "provisioner_created netns web\nip netns add web",
        "provisioner_created link veth-web\nip link add veth-web type veth peer name eth0 netns web",
        "ip link set veth-web master v-net-0",
        "ip link set veth-web up",
        "ip link set veth-web type bridge_slave hairpin on",
        "ip -n web addr add 10.244.1.2/24 dev eth0",
        "ip -n web link set eth0 up",
        "ip -n web link set lo up",
        "ip -n web route replace default via 10.244.1.1",
    ]
    assert o.reason == "create web"


def done_pod_facts():
    return {Netns(): ["web"], Links(): {"v-net-0": link("bridge"), "veth-web": link("veth", "v-net-0")},
            Links("web"): {"eth0": link("veth"), "lo": link()}, Addrs("web"): {"eth0": ["10.244.1.2/24"], "lo": []},
            Routes("web"): [route("default", "10.244.1.1", "boot")]}


def test_pod_noop_reason():
    o = MODULES["pods"].plan(PODS, done_pod_facts())
    assert not o.changed and o.reason == "pods already wired to v-net-0: web (10.244.1.2)"


def test_a_pod_port_out_of_hairpin_mode_is_put_back_alone():
    """A pod reaching itself through a service needs its bridge port in hairpin mode (the DNATed packet goes
    back out of the port it came in on)."""
    f = done_pod_facts()
    f[Links()]["veth-web"] = link("veth", "v-net-0", hairpin=False)
    assert cmds(MODULES["pods"].plan(PODS, f)) == ["ip link set veth-web type bridge_slave hairpin on"]


def test_pod_half_made_is_repaired_not_duplicated():
    f = done_pod_facts()
    f[Links("web")] = {"lo": link(up=False)}  # the pod lost its eth0
    f[Addrs("web")] = {"lo": []}
    f[Routes("web")] = []
    o = MODULES["pods"].plan(PODS, f)
    c = cmds(o)
    assert not any("ip netns add web" in x for x in c)
    assert c[:2] == ["ip link del veth-web", "provisioner_created link veth-web\nip link add veth-web type veth peer name eth0 netns web"]
    assert "ip -n web link set lo up" in c and o.reason == "repair web"


def test_pod_wrong_address_replaced():
    f = done_pod_facts()
    f[Addrs("web")] = {"eth0": ["10.244.1.9/24"]}
    assert cmds(MODULES["pods"].plan(PODS, f)) == ["ip -n web addr del 10.244.1.9/24 dev eth0",
                                                  "ip -n web addr add 10.244.1.2/24 dev eth0"]


def test_pods_reverse_twice():
    m = MODULES["pods"]
    made = {("netns", "web"), ("link", "veth-web")}
    assert cmds(m.reverse(PODS, {**done_pod_facts(), Created(): made})) == ["ip netns del web"]
    assert cmds(m.reverse(PODS, {Netns(): [], Links(): {"veth-web": link("veth")}, Created(): made})) == ["ip link del veth-web"]
    assert not m.reverse(PODS, {Netns(): [], Links(): {}, Created(): made}).changed


def test_pods_reset_keeps_a_namespace_apply_did_not_make():
    o = MODULES["pods"].reverse(PODS, {**done_pod_facts(), Created(): set()})
    assert not o.changed and "web existed before apply: left in place" in o.reason


# -- file -------------------------------------------------------------------
def fact(content, mode="0644", owner="root", group="root"):
    return FileState(mode, owner, group, content)


def test_file_created_atomically_with_diff():
    o = MODULES["file"].plan({"path": "/etc/x.conf", "content": "a\n"}, {File("/etc/x.conf"): None})
    step = o.steps[0]
    assert isinstance(step, WriteFile) and step.content == b"a\n"
    sh = step.shell()
    assert "t=$(mktemp /etc/.x.conf.provisioner-XXXXXXXX)" in sh and 'mv -f "$t" /etc/x.conf' in sh and "chmod 0644" in sh
    assert "+a" in o.diff


def test_created_dirs_are_removed_deepest_first_on_reset():
    m = MODULES["created_dirs"]
    assert not m.plan({}, {File("/var/lib/provisioner/created-dirs"): None}).changed
    record = FileState("0644", "root", "root", b"/etc/cni\n/etc/cni/bin\n/etc/provisioner\n/etc/cni/bin\n")
    paths = {"paths": ["/etc/cni/bin", "/etc/provisioner/resolv.conf.upstream"]}
    shell = [s.shell() for s in m.reverse(paths, {File("/var/lib/provisioner/created-dirs"): record}).steps]
    assert shell == ["[ ! -d /etc/cni/bin ] || rmdir --ignore-fail-on-non-empty /etc/cni/bin",
                     "[ ! -d /etc/cni ] || rmdir --ignore-fail-on-non-empty /etc/cni",
                     "[ ! -d /etc/provisioner ] || rmdir --ignore-fail-on-non-empty /etc/provisioner",
                     "rm -f /var/lib/provisioner/created-dirs /var/lib/provisioner/created",
                     "[ ! -d /var/lib/provisioner ] || rmdir --ignore-fail-on-non-empty /var/lib/provisioner"]
    assert not m.reverse({}, {File("/var/lib/provisioner/created-dirs"): None}).changed


def test_reset_removes_only_recorded_directories_that_the_playbook_names():
    """The record lives on the node: a line someone added (/srv) is not a licence to remove /srv."""
    m = MODULES["created_dirs"]
    record = FileState("0644", "root", "root", b"/srv\n/etc/cni/bin\n/var/lib/cni/networks/lab\n/\n/home/user\n/var/lib/provisioner/cni-results\n")
    args = {"paths": ["/etc/cni/bin", "/var/lib/cni/networks", "/etc/provisioner/pod-network.sh"]}
    o = m.reverse(args, {File("/var/lib/provisioner/created-dirs"): record})
    removed = [s.path for s in o.steps if hasattr(s, "path")]
    assert removed == ["/var/lib/cni/networks/lab", "/var/lib/provisioner/cni-results", "/etc/cni/bin",
                       "/var/lib/provisioner"]  # the tool's own state dir is always its own
    assert "left alone, as no task names them: /, /home/user, /srv" in o.reason and o.warnings


def test_binding_hands_created_dirs_every_path_the_hosts_tasks_name(base_inventory):
    from provisioner.playbook import bind, load_playbook, resolve_path
    tasks = bind(load_playbook(resolve_path(None)), base_inventory)["node1"]
    paths = next(t.args["paths"] for t in tasks if t.module == "created_dirs")
    for p in ("/etc/cni/bin", "/etc/cni/net.d", "/etc/containerd/config.toml", "/etc/provisioner/pod-network.sh",
              "/var/lib/kubelet/config.yaml", "/etc/systemd/system"):
        assert p in paths, p
    assert all(p.startswith("/") for p in paths)


def test_mkdir_records_each_directory_it_makes(tmp_path):
    import subprocess

    from provisioner.steps import MKDIR_FUNCTION
    state = tmp_path / "state"
    script = MKDIR_FUNCTION.replace("/var/lib/provisioner", str(state)) + f"\nprovisioner_mkdir {tmp_path}/a/b/c\nprovisioner_mkdir {tmp_path}/a/b\n"
    subprocess.run(["sh", "-c", script], check=True)
    assert (state / "created-dirs").read_text().split() == [f"{tmp_path}/a", f"{tmp_path}/a/b", f"{tmp_path}/a/b/c"]


def test_file_noop_and_mode_fix():
    args = {"path": "/etc/x.conf", "content": "a\n", "mode": "0600"}
    assert MODULES["file"].plan(args, {File("/etc/x.conf"): fact(b"a\n", "0600")}).reason.endswith("wanted content, mode and owner")
    made = {Created(): {("file", "/etc/x.conf")}}
    assert cmds(MODULES["file"].plan(args, {File("/etc/x.conf"): fact(b"a\n", "0644"), **made})) == ["chmod 0600 /etc/x.conf"]
    # a file apply did not make is kept aside first, so that reset can put it back as it was
    assert cmds(MODULES["file"].plan(args, {File("/etc/x.conf"): fact(b"a\n", "0644")})) == [
        "cp -p /etc/x.conf /etc/x.conf.provisioner-orig", "chmod 0600 /etc/x.conf"]


def test_file_content_changed_shows_diff():
    o = MODULES["file"].plan({"path": "/etc/x", "content": "new\n"}, {File("/etc/x"): fact(b"old\n")})
    assert "-old" in o.diff and "+new" in o.diff


def test_commands_quote_hostile_values():
    o = MODULES["file"].plan({"path": "/etc/a b;rm -rf /", "content": "$(reboot)\n"}, {File("/etc/a b;rm -rf /"): fact(b"x", "0600")})
    sh = o.steps[0].shell()
    assert "'/etc/a b;rm -rf /'" in sh and "$(reboot)" not in sh  # content travels base64-encoded


def test_pod_put_back_on_a_new_bridge_forgets_the_old_gateway_mac():
    f = done_pod_facts()
    f[Links()]["veth-web"] = link("veth", None)  # the bridge was deleted: the port is free
    assert cmds(MODULES["pods"].plan(PODS, f)) == ["ip link set veth-web master v-net-0", "ip -n web neigh flush dev eth0",
                                                   "ip link set veth-web type bridge_slave hairpin on"]
