"""Kubelet, containerd, kube-proxy, control-plane flags, resolv.conf and CoreDNS: rendered files pinned."""

import json
import subprocess

import pytest

from provisioner.facts.values import FileState
from provisioner.facts.files import Created, Exists, File
from provisioner.facts.system import KernelModule, SystemdUnit
from provisioner import cluster_dns as dns
from provisioner.errors import InventoryError
from provisioner.inventory import load_inventory
from provisioner.modules import ModuleError
from tests.bound_modules import MODULES
from provisioner.formats import drop_block, set_block
from provisioner.playbook import bind, load_playbook, resolve_path

from ..conftest import BASE, ROOT


def written(outcome) -> dict[str, str]:
    return {s.path: s.content.decode() for s in outcome.steps if hasattr(s, "content")}


def absent(*paths):
    out = {}
    for p in paths:
        out[File(p)] = None
        out[Exists(f"{p}.provisioner-orig")] = False
    return out


def bound(write, extra="", node="node1"):
    inv = load_inventory(write(BASE.replace("    address: 192.168.56.11\n", "    address: 192.168.56.11\n    groups: [control_plane]\n") + extra))
    return {t.module: t.args for t in bind(load_playbook(resolve_path(None)), inv)[node]}


KUBELET_FILES = ("/var/lib/kubelet/config.yaml", "/etc/default/kubelet")


def test_kubelet_new_version_has_no_cni_flags(write):
    args = bound(write, "kubernetes:\n  version: '1.30'\n")["kubelet"]
    files = written(MODULES["kubelet"].plan(args, absent(*KUBELET_FILES)))
    assert files["/etc/default/kubelet"] == (
        "# managed by provisioner: changes here are overwritten by `provision apply`\n"
        'KUBELET_EXTRA_ARGS="--config=/var/lib/kubelet/config.yaml --node-ip=192.168.56.11"\n')
    assert files["/var/lib/kubelet/config.yaml"] == (
        "# managed by provisioner: changes here are overwritten by `provision apply`\n"
        "apiVersion: kubelet.config.k8s.io/v1beta1\n"
        "kind: KubeletConfiguration\n"
        "clusterDomain: cluster.local\n"
        "clusterDNS:\n"
        "  - 10.96.0.10\n"
        "resolvConf: /etc/provisioner/resolv.conf.upstream\n"
        "podCIDR: 10.244.1.0/24\n")


def test_kubelet_old_version_gets_cni_flags_and_no_containerd_block(write):
    tasks = bound(write, "kubernetes:\n  version: v1.23.17\n  kubelet: {dropin: /etc/systemd/system/kubelet.service.d/20-provisioner.conf}\n")
    assert "containerd_cni" not in tasks  # before 1.24 the kubelet owns the CNI dirs
    files = written(MODULES["kubelet"].plan(tasks["kubelet"], absent(*KUBELET_FILES, "/etc/systemd/system/kubelet.service.d/20-provisioner.conf")))
    flags = ("--config=/var/lib/kubelet/config.yaml --node-ip=192.168.56.11 --network-plugin=cni "
             "--cni-conf-dir=/etc/cni/net.d --cni-bin-dir=/etc/cni/bin")
    assert files["/etc/default/kubelet"].endswith(f'KUBELET_EXTRA_ARGS="{flags}"\n')
    assert files["/etc/systemd/system/kubelet.service.d/20-provisioner.conf"].endswith(
        f'[Service]\nEnvironment="KUBELET_EXTRA_ARGS={flags}"\n')


@pytest.mark.parametrize("flag,version,gone", [("--network-plugin=cni", "1.24", "1.24"), ("--cni-bin-dir=/opt/cni/bin", "1.29", "1.24"),
                                               ("--container-runtime=remote", "1.27.3", "1.27")])
def test_removed_kubelet_flag_is_an_error_naming_the_version(write, flag, version, gone):
    with pytest.raises(InventoryError, match=rf"kubelet\.extra_args\[0\]: {flag.split('=')[0]} was removed from kubelet in Kubernetes {gone}"):
        load_inventory(write(BASE + f"kubernetes:\n  version: '{version}'\n  kubelet:\n    extra_args: ['{flag}']\n"))
    load_inventory(write(BASE + f"kubernetes:\n  version: '1.23'\n  kubelet:\n    extra_args: ['{flag}']\n"))  # fine before


def test_kube_proxy_gets_the_pod_range(write):
    args = bound(write)["kube_proxy"]
    o = MODULES["kube_proxy"].plan(args, absent("/var/lib/kube-proxy/config.yaml"))
    assert written(o)["/var/lib/kube-proxy/config.yaml"] == (
        "# managed by provisioner: changes here are overwritten by `provision apply`\n"
        "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: iptables\n"
        "clusterCIDR: 10.244.0.0/16\nclientConnection:\n  kubeconfig: /var/lib/kube-proxy/kubeconfig\n")
    assert "service-cluster-ip-range" not in str(args)


def test_kube_proxy_ipvs_loads_modules_first(write):
    args = bound(write, "kubernetes:\n  kube_proxy: {mode: ipvs}\n")["kube_proxy"]
    facts = absent("/var/lib/kube-proxy/config.yaml") | {KernelModule(m): m == "nf_conntrack" for m in
                                                         ("ip_vs", "ip_vs_rr", "ip_vs_wrr", "ip_vs_sh", "nf_conntrack")}
    shell = [s.shell() for s in MODULES["kube_proxy"].plan(args, facts).steps]
    assert shell[:4] == ["modprobe ip_vs", "modprobe ip_vs_rr", "modprobe ip_vs_wrr", "modprobe ip_vs_sh"]


def test_kube_proxy_mode_errors(write):
    with pytest.raises(InventoryError, match="userspace was removed in Kubernetes 1.26"):
        load_inventory(write(BASE + "kubernetes:\n  kube_proxy: {mode: userspace}\n"))
    with pytest.raises(InventoryError, match="nftables needs Kubernetes 1.29"):
        load_inventory(write(BASE + "kubernetes:\n  version: '1.28'\n  kube_proxy: {mode: nftables}\n"))


def test_control_plane_flags_only_on_the_control_plane(write):
    tasks = bound(write)
    text = written(MODULES["control_plane_flags"].plan(tasks["control_plane_flags"], absent("/etc/kubernetes/provisioner/control-plane.env")))
    env = text["/etc/kubernetes/provisioner/control-plane.env"]
    assert 'KUBE_APISERVER_ARGS="--service-cluster-ip-range=10.96.0.0/12"' in env
    assert ('KUBE_CONTROLLER_MANAGER_ARGS="--service-cluster-ip-range=10.96.0.0/12 --cluster-cidr=10.244.0.0/16 '
            '--allocate-node-cidrs=false --node-cidr-mask-size=24"') in env
    assert "control_plane_flags" not in bound(write, node="node2")


def test_existing_user_file_is_backed_up_then_restored():
    args = {"path": "/etc/x.env", "service_cidr": "10.96.0.0/12", "pod_cidr": "10.244.0.0/16", "node_prefix": 24, "dns_ip": "10.96.0.10"}
    user = FileState("0644", "root", "root", b"MINE=1\n")
    o = MODULES["control_plane_flags"].plan(args, {File("/etc/x.env"): user, Exists("/etc/x.env.provisioner-orig"): False})
    assert o.steps[0].shell() == "cp -p /etc/x.env /etc/x.env.provisioner-orig"
    back = MODULES["control_plane_flags"].reverse(args, {File("/etc/x.env"): FileState("0644", "root", "root", b"# managed by provisioner..."),
                                                         Exists("/etc/x.env.provisioner-orig"): True})
    assert [s.shell() for s in back.steps] == ["mv -f /etc/x.env.provisioner-orig /etc/x.env"]


# -- resolv.conf --------------------------------------------------------------
RC = {"path": "/etc/resolv.conf", "nameserver": "10.96.0.10", "search": ["default.svc.cluster.local", "svc.cluster.local", "cluster.local"],
      "options": ["ndots:5"], "upstream_file": "/etc/provisioner/up",
      "dhcp_hook": "/etc/dhcp/dhclient-exit-hooks.d/provisioner-resolv-conf"}


def rfacts(text, resolved=None, upstream=None, backup=None, dhcp=False, hook=None):
    f = lambda t: None if t is None else FileState("0644", "root", "root", t.encode())
    return {File("/etc/resolv.conf"): f(text), File("/run/systemd/resolve/resolv.conf"): f(resolved),
            File("/etc/provisioner/up"): f(upstream), File("/etc/resolv.conf.provisioner-orig"): f(backup),
            Exists("/etc/dhcp/dhclient-exit-hooks.d"): dhcp, File(RC["dhcp_hook"]): f(hook),
            Exists(RC["dhcp_hook"] + ".provisioner-orig"): False, Created(): frozenset()}


@pytest.mark.parametrize("dhclient_wrote", [ORIGINAL_DHCP := "domain lab\nsearch lab\nnameserver 192.168.121.1\n",
                                            "nameserver 192.0.2.53", ""])
def test_a_dhcp_client_rewriting_resolv_conf_gets_the_blocks_back_from_its_hook(tmp_path, dhclient_wrote):
    """dhclient rewrites resolv.conf at boot and every renewal; its exit hook (ours) must put back exactly
    what plan writes, so that plan after a reboot has nothing to do."""
    args = {**RC, "upstream": ["192.0.2.1"]}  # an empty resolv.conf names none
    o = MODULES["resolv_conf"].plan(args, rfacts(dhclient_wrote, dhcp=True))
    files = written(o)
    hook = files[RC["dhcp_hook"]]
    resolv = tmp_path / "resolv.conf"
    resolv.write_text(dhclient_wrote)
    resolv.chmod(0o755)  # dhclient-script leaves it as it finds it; the hook keeps that
    script = hook.replace("/etc/resolv.conf", str(resolv))
    for reason in ("BOUND", "RENEW"):  # twice: the second finds the blocks and changes nothing
        r = subprocess.run(["sh", "-c", f"reason={reason}\n. /dev/stdin\necho sourced-ok"], input=script,
                           capture_output=True, text=True)
        assert r.returncode == 0 and r.stdout == "sourced-ok\n", r.stderr  # sourced: it must never exit the caller
        assert resolv.read_text() == files["/etc/resolv.conf"]
    assert resolv.stat().st_mode & 0o777 == 0o755
    settled = rfacts(resolv.read_text(), upstream=files["/etc/provisioner/up"], backup=dhclient_wrote, dhcp=True, hook=hook)
    assert not MODULES["resolv_conf"].plan(args, settled).changed
    back = MODULES["resolv_conf"].reverse(args, {**settled, Created(): frozenset({("file", RC["dhcp_hook"])})})
    assert f"rm -f {RC['dhcp_hook']}" in [s.shell() for s in back.steps]


def test_no_dhcp_hook_where_no_dhcp_client_is():
    assert RC["dhcp_hook"] not in written(MODULES["resolv_conf"].plan(RC, rfacts("nameserver 192.0.2.53\n")))


ORIGINAL = "# from DHCP\nsearch corp.example\nnameserver 192.0.2.53\nnameserver 192.0.2.54\noptions edns0"  # no final newline


def test_resolv_block_everything_else_kept_byte_for_byte():
    o = MODULES["resolv_conf"].plan(RC, rfacts(ORIGINAL))
    files = written(o)
    new = files["/etc/resolv.conf"]
    assert new == ("# BEGIN provisioner: cluster DNS first\nnameserver 10.96.0.10\n# END provisioner: cluster DNS first\n"
                   + ORIGINAL + "\n# BEGIN provisioner: cluster search path (the last search line wins)"
                   " (newline added before this block)\n"
                   "search default.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n"
                   "# END provisioner: cluster search path\n")
    assert files["/etc/provisioner/up"].endswith("nameserver 192.0.2.53\nnameserver 192.0.2.54\n")
    assert o.steps[0].shell() == "cp -P -p /etc/resolv.conf /etc/resolv.conf.provisioner-orig"
    again = MODULES["resolv_conf"].plan(RC, rfacts(new, upstream=files["/etc/provisioner/up"], backup=ORIGINAL))
    assert not again.changed and "already asks 10.96.0.10 first" in again.reason
    back = MODULES["resolv_conf"].reverse(RC, rfacts(new, upstream=files["/etc/provisioner/up"], backup=ORIGINAL))
    assert [s.shell() for s in back.steps] == ["mv -f /etc/resolv.conf.provisioner-orig /etc/resolv.conf", "rm -f /etc/provisioner/up"]


def test_resolv_reverse_keeps_later_user_edits():
    new = written(MODULES["resolv_conf"].plan(RC, rfacts("nameserver 192.0.2.53\n")))["/etc/resolv.conf"]
    edited = new + "options rotate\n"
    back = MODULES["resolv_conf"].reverse(RC, rfacts(edited, backup="nameserver 192.0.2.53\n"))
    assert written(back) == {"/etc/resolv.conf": "nameserver 192.0.2.53\noptions rotate\n"}


def test_systemd_resolved_stub_is_replaced_by_real_upstreams():
    o = MODULES["resolv_conf"].plan(RC, rfacts("nameserver 127.0.0.53\noptions edns0 trust-ad\n",
                                               resolved="nameserver 203.0.113.1\nnameserver 203.0.113.2\n"))
    up = written(o)["/etc/provisioner/up"]
    assert "127.0.0.53" not in up and "nameserver 203.0.113.1\nnameserver 203.0.113.2\n" in up


def test_no_upstream_left_is_an_error_not_a_loop(write):
    with pytest.raises(ModuleError, match="no upstream resolver"):
        MODULES["resolv_conf"].plan(RC, rfacts("nameserver 127.0.0.53\n"))
    with pytest.raises(InventoryError, match="makes a DNS loop"):
        load_inventory(write(BASE + "dns:\n  upstream: [10.96.0.10]\n"))


def test_blocks_roundtrip_exactly():
    for text in ("", "a\n", "no final newline", "nameserver 1.1.1.1\nsearch x\n"):
        s = set_block(set_block(text, "#B1", "#E1", "x\n", True), "#B2", "#E2", "y\n", False)
        assert drop_block(drop_block(s, "#B1", "#E1"), "#B2", "#E2") == text


# -- CoreDNS ------------------------------------------------------------------
def test_corefile_pinned():
    assert dns.corefile("cluster.local", "/etc/provisioner/resolv.conf.upstream", "verified", 5, 60) == (
        ".:53 {\n    errors\n    health {\n        lameduck 5s\n    }\n    ready\n"
        "    kubernetes cluster.local in-addr.arpa ip6.arpa {\n        pods verified\n"
        "        fallthrough in-addr.arpa ip6.arpa\n        ttl 5\n    }\n    prometheus :9153\n"
        "    forward . /etc/provisioner/resolv.conf.upstream {\n        max_concurrent 1000\n    }\n"
        "    cache 60\n    loop\n    reload\n    loadbalance\n}\n")


def test_manifests_have_the_service_at_dns_ip():
    import yaml
    docs = [d for d in yaml.safe_load_all(dns.manifests("k8s.lab", "10.32.0.10")) if d]
    kinds = {d["kind"]: d for d in docs}
    assert kinds["Service"]["spec"]["clusterIP"] == "10.32.0.10"
    assert "kubernetes k8s.lab in-addr.arpa" in kinds["ConfigMap"]["data"]["Corefile"]
    assert "forward . /etc/resolv.conf" in kinds["ConfigMap"]["data"]["Corefile"]
    assert kinds["Deployment"]["spec"]["template"]["spec"]["dnsPolicy"] == "Default"


def test_dns_names():
    assert dns.service_fqdn("web", "shop", "k8s.lab") == "web.shop.svc.k8s.lab"
    assert dns.pod_a_record("10.244.2.5", "default", "cluster.local") == "10-244-2-5.default.pod.cluster.local"


def test_weave_range_checks(write):
    with pytest.raises(InventoryError, match="IPALLOC_RANGE 10.96.0.0/16 overlaps cluster.service_cidr"):
        load_inventory(write(BASE + "cni:\n  type: weave\n  weave_ipalloc_range: 10.96.0.0/16\n"))
    with pytest.raises(InventoryError, match="outside cluster.pod_cidr"):
        load_inventory(write(BASE + "cni:\n  type: weave\n  weave_ipalloc_range: 10.32.0.0/12\n"))
    inv = load_inventory(write(BASE + "cni:\n  type: weave\n"))
    assert inv.cni.weave_ipalloc_range == "10.244.0.0/16"


def test_weave_cli(write, capsys):
    from provisioner import cli
    assert cli.main(["weave", str(write(BASE + "cni:\n  type: weave\n"))]) == 0
    out = capsys.readouterr().out
    assert "set env daemonset/weave-net -c weave IPALLOC_RANGE=10.244.0.0/16" in out
    assert "weave-daemonset-k8s.yaml" in out and "kubectl apply -f https://cloud" not in out


def test_handlers_run_only_when_notified(base_inventory):
    from provisioner.engine.runner import _plan, HostResult
    hosts = bind(load_playbook(ROOT / "playbooks/kubernetes.yaml"), base_inventory)
    order = list(enumerate(hosts["node2"]))
    facts = {}
    for _, t in order:
        for f in MODULES[t.module].facts(t.args):
            facts[f] = None if isinstance(f, File) else isinstance(f, SystemdUnit) or f == Exists("/run/systemd/system")
    res = HostResult("node2")
    outcomes = _plan("node2", order, facts, "plan", res, lambda *a: None)
    by_name = {t.name: outcomes[i] for i, t in order}
    assert [s.shell() for s in by_name["restart kubelet"].steps] == ["systemctl daemon-reload", "systemctl restart kubelet.service"]
    done = dict(facts)
    for i, t in order:
        for s in outcomes[i].steps:
            if hasattr(s, "content"):
                done[File(s.path)] = FileState("0644", "root", "root", s.content)
    outcomes = _plan("node2", order, done, "plan", HostResult("node2"), lambda *a: None)
    assert not any(o.changed for o in outcomes.values())


def settled(module, args):
    """Plan on empty facts, pretend the files were written, plan again."""
    facts = {f: (False if isinstance(f, (Exists, KernelModule)) else None) for f in module.facts(args)}
    for s in module.plan(args, facts).steps:
        if hasattr(s, "content"):
            facts[File(s.path)] = FileState(s.mode, "root", "root", s.content)
    return module.plan(args, facts)


def test_every_file_module_says_why_it_has_nothing_to_do(write):
    tasks = bound(write, "kubernetes:\n  kube_proxy: {mode: iptables}\n")
    for name in ("kubelet", "kube_proxy", "control_plane_flags", "coredns", "containerd_cni"):
        again = settled(MODULES[name], tasks[name])
        assert not again.changed and again.reason, name
    expected = {"kubelet": "kubelet files already as wanted (no CNI flags for 1.30)",
                "kube_proxy": "kube-proxy already in iptables mode with clusterCIDR 10.244.0.0/16",
                "control_plane_flags": "/etc/kubernetes/provisioner/control-plane.env already holds the control-plane ranges",
                "coredns": "Corefile and manifests already as wanted (service IP 10.96.0.10)",
                "containerd_cni": '[plugins."io.containerd.grpc.v1.cri".cni] of /etc/containerd/config.toml already points at '
                                  "/etc/cni/bin and /etc/cni/net.d"}
    for name, reason in expected.items():
        assert settled(MODULES[name], tasks[name]).reason == reason


def test_service_handler_reasons():
    m = MODULES["service"]
    o = m.plan({"name": "kubelet"}, {Exists("/run/systemd/system"): False, SystemdUnit("kubelet"): False})
    assert not o.changed and o.reason == "kubelet is not installed (no systemd unit kubelet.service): not restarted"
    o = m.plan({"name": "kubelet"}, {Exists("/run/systemd/system"): True, SystemdUnit("kubelet"): True})
    assert [s.shell() for s in o.steps] == ["systemctl daemon-reload", "systemctl restart kubelet.service"]


def test_containerd_config_keeps_its_mode_and_secrets_stay_out_of_diffs():
    args = {"config_file": "/etc/containerd/config.toml", "major": 1, "bin_dir": "/etc/cni/bin", "conf_dir": "/etc/cni/net.d"}
    user = ('version = 2\n[plugins."io.containerd.grpc.v1.cri".registry.configs."r.example".auth]\n'
            '  username = "me"\n  password = "hunter2"\n  identitytoken = "tok-123"\n')
    f = {File("/etc/containerd/config.toml"): FileState("0600", "root", "root", user.encode())}
    o = MODULES["containerd_cni"].plan(args, f)
    step = next(s for s in o.steps if hasattr(s, "content"))
    assert step.mode == "0600"  # a 0600 file holding a password stays 0600
    assert o.steps[0].shell() == "cp -p /etc/containerd/config.toml /etc/containerd/config.toml.provisioner-orig"
    new = MODULES["containerd_cni"].plan(args, {File("/etc/containerd/config.toml"): None})
    assert next(s for s in new.steps if hasattr(s, "content")).mode == "0600"  # a new one gets the least that works
    changed = user.replace("hunter2", "hunter3").replace("tok-123", "tok-456")
    f2 = {File("/etc/containerd/config.toml"): FileState("0600", "root", "root", changed.encode())}
    diff = MODULES["file"].plan({"path": "/etc/containerd/config.toml", "content": user}, f2).diff
    assert "hunter" not in diff and "tok-" not in diff and "password = <redacted>" in diff, diff
    assert '   username = "me"' in diff  # only the values of secret-looking keys are hidden


@pytest.mark.parametrize("value", ["/etc/cni/bin\n", "/etc/cni/bin\"\n[x]", "/etc/cni/bin/", "/etc/../cni", "etc/cni",
                                   "/etc//cni", "/etc/cni bin", "/etc/$(id)", "/etc/`id`", "/etc/c;ni"])
def test_paths_are_absolute_normalised_and_plain(write, value):
    with pytest.raises(InventoryError, match=r"cni\.bin_dir: .*absolute, normalised path"):
        load_inventory(write(BASE + f"cni:\n  bin_dir: {json.dumps(value)}\n"))


@pytest.mark.parametrize("key,value", [("cluster.name", "demo\n"), ("cluster.bridge", "br0\n"), ("nodes[0].interface", "eth0\n"),
                                       ("ssh.user", "root\n"), ("kubernetes.kubelet.extra_args[0]", "--v=2\n--x"),
                                       ("kubernetes.kubelet.extra_args[0]", '--node-labels="a b"'),
                                       ("dns.search[0]", "cluster.local\n"), ("dns.coredns.image", "img:1\nkey: x")])
def test_a_trailing_newline_or_quote_never_passes(write, key, value):
    import yaml as _yaml

    from ..unit.test_hostile import FULL, put

    parts = tuple(int(p) if p.isdigit() else p for p in key.replace("[", ".").replace("]", "").split("."))
    doc = put(FULL, parts, value)
    doc["cni"]["sha256"], doc["ssh"] = {}, {"user": doc["ssh"]["user"]}
    doc["nodes"][0].pop("identity_file")
    with pytest.raises(InventoryError) as exc:
        load_inventory(write(_yaml.safe_dump(doc)))
    assert key in str(exc.value)


@pytest.mark.parametrize("version", ["1.23", "1.30"])
def test_coredns_manifests_are_objects_the_cluster_accepts(write, version):
    """Every object in the rendered manifest validates (strict: no unknown field) against the Kubernetes
    API schema of the inventory's version, offline (kubernetes-validate ships the schemas)."""
    import kubernetes_validate
    import yaml as _yaml

    args = bound(write, f"kubernetes:\n  version: '{version}'\n")["coredns"]
    files = written(MODULES["coredns"].plan(args, absent(args["corefile"], args["manifest"])))
    docs = [d for d in _yaml.safe_load_all(files[args["manifest"]]) if d]
    assert [d["kind"] for d in docs] == ["ServiceAccount", "ClusterRole", "ClusterRoleBinding", "ConfigMap",
                                         "Deployment", "Service"]
    for doc in docs:
        kubernetes_validate.validate(doc, f"{version}.0", strict=True)
    broken = dict(docs[4], spec={**docs[4]["spec"], "replica": 2})  # a misspelt field must fail
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, f"{version}.0", strict=True)
