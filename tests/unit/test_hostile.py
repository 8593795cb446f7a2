"""No inventory value ever runs as code or adds to a file: hostile strings in every string field.

For each string field the inventory schema has (map keys included), hypothesis puts
a hostile string there: quotes, ``$(…)``, backticks, ``;``, newlines, NUL, around a
call of ``pwned`` (an executable that leaves a marker when run). The inventory is
then either refused with ``file:line`` (exit 2, never a traceback), or accepted,
and then the facts, apply and reset scripts of the default playbooks are run by a
real ``sh`` in a throw-away directory (commands stubbed, see tests/sandbox.py):
the payload never runs, and every file apply would write parses with its own
format's parser to the intended keys only.
"""

from __future__ import annotations

import configparser
import copy
import json
import shlex
import tomllib

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provisioner.engine import runner
from provisioner.errors import InputError
from provisioner.inventory import load_inventory
from provisioner.inventory.load import schema
from provisioner.modules import MODULES
from provisioner.steps import WriteFile
from provisioner.playbook import bind, load_playbook, packaged

from ..sandbox import SandboxTransport

pytestmark = pytest.mark.slow

FULL = {  # every key of the schema, with a valid value
    "cluster": {"name": "demo", "domain": "cluster.local", "node_cidr": "192.168.56.0/24", "pod_cidr": "10.244.0.0/16",
                "node_prefix": 24, "node_prefix6": 64, "service_cidr": "10.96.0.0/12", "dns_ip": "10.96.0.10", "bridge": "v-net-0",
                "routing": "peers", "router": "192.168.56.11"},
    "ssh": {"user": "root", "port": 22, "identity_file": "keys/id", "known_hosts": "known_hosts",
            "host_key_policy": "strict", "sudo": False, "connect_timeout": 5, "jump": "ops@192.168.56.10:2222"},
    "nodes": [{"name": "node1", "address": "192.168.56.11", "port": 22, "ip": "192.168.56.11", "interface": "eth0",
               "groups": ["control_plane"], "pod_subnet": "10.244.1.0/24", "user": "root", "identity_file": "keys/n1",
               "jump": "bastion.example",
               "pods": ["web", {"name": "db", "via": "cni"}, {"name": "api", "ip": "10.244.1.3"}]},
              {"name": "node2", "address": "192.168.56.12", "pods": ["web"]}],
    "services": [{"name": "web", "namespace": "shop", "cluster_ip": "10.96.0.50",
                  "ports": [{"name": "http", "port": 80, "target_port": 8080, "protocol": "TCP"}], "pods": ["node1/web"]}],
    "cni": {"type": "bridge", "bin_dir": "/etc/cni/bin", "conf_dir": "/etc/cni/net.d", "config_name": "10-demo.conflist",
            "source": "/usr/lib/cni", "plugins": ["bridge", "host-local", "loopback"],
            "sha256": {"bridge": "a" * 64}, "tarball_sha256": "b" * 64, "bridge": "v-net-0", "is_gateway": True,
            "ip_masq": False, "hairpin_mode": True, "mtu": 1500, "ipam": "host-local", "range_offset": 10,
            "data_dir": "/var/lib/cni/networks", "weave_ipalloc_range": "10.244.0.0/16"},
    "kubernetes": {"version": "1.30", "kubelet": {"config_file": "/var/lib/kubelet/config.yaml", "env_file": "/etc/default/kubelet",
                                                  "dropin": "/etc/systemd/system/kubelet.service.d/20-provisioner.conf",
                                                  "extra_args": ["--max-pods=50"]},
                   "containerd": {"config_file": "/etc/containerd/config.toml", "major": 1},
                   "kube_proxy": {"mode": "iptables", "config_file": "/var/lib/kube-proxy/config.yaml",
                                  "kubeconfig": "/var/lib/kube-proxy/kubeconfig"},
                   "control_plane_file": "/etc/kubernetes/provisioner/control-plane.env"},
    "dns": {"manage_resolv_conf": True, "resolv_conf": "/etc/resolv.conf", "upstream_file": "/etc/provisioner/resolv.conf.upstream",
            "upstream": ["192.0.2.53"], "namespace": "default", "search": ["default.svc.cluster.local"],
            "options": ["ndots:5"],
            "coredns": {"pods": "insecure", "ttl": 30, "cache": 30, "corefile": "/etc/coredns/Corefile",
                        "manifest": "/etc/provisioner/coredns.yaml", "image": "registry.k8s.io/coredns/coredns:v1.11.3"}},
    "vagrant": {"box": "debian/bookworm64", "provider": "virtualbox", "cpus": 2, "memory": 2048,
                "libvirt_driver": "auto", "isolated": False, "management_network": "192.168.121.0/24"},
}


def _resolve(node: dict, root: dict) -> dict:
    while "$ref" in node:
        node = {**root["$defs"][node["$ref"].split("/")[-1]], **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def string_fields(node: dict | None = None, path: tuple = (), root: dict | None = None) -> list[tuple]:
    """Every place in the schema a string goes, as a path into FULL (list items at 0; ``("<key>", …)`` a map key)."""
    root = root or schema()
    node = _resolve(node or root, root)
    if "anyOf" in node:  # a jump host, or "none": a string either way
        return [path]
    if "oneOf" in node:  # a pod: a bare name, or an object
        return [path] + string_fields(node["oneOf"][1], path, root)
    if node.get("type") == "string" or "pattern" in node:
        return [path]
    out = []
    for key, sub in node.get("properties", {}).items():
        out += string_fields(sub, path + (key,), root)
    if isinstance(node.get("additionalProperties"), dict):
        out += [path + ("<key>",)] + string_fields(node["additionalProperties"], path + ("<value>",), root)
    if node.get("type") == "array":
        out += string_fields(node["items"], path + (0,), root)
    return out


FIELDS = string_fields()
POD_PATHS = {("nodes", 0, "pods", 0): 0, ("nodes", 0, "pods", 0, "name"): 1, ("nodes", 0, "pods", 0, "ip"): 2}


def put(doc: dict, path: tuple, value: str) -> dict:
    """A copy of ``doc`` with ``value`` at ``path`` (a pod path picks the pod of the right form)."""
    doc = copy.deepcopy(doc)
    if path in POD_PATHS:
        pods = doc["nodes"][0]["pods"]
        if POD_PATHS[path]:
            pods[POD_PATHS[path]][path[-1]] = value
        else:
            pods[0] = value
        return doc
    *parents, last = path
    if last in ("<key>", "<value>"):
        target = doc
        for p in parents:
            target = target[p]
        old_key = next(iter(target))
        if last == "<key>":
            target[value] = target.pop(old_key)
        else:
            target[old_key] = value
        return doc
    target = doc
    for p in parents:
        target = target[p]
    target[last] = value
    return doc


def current(path: tuple) -> str:
    """The valid value FULL has at ``path`` (the prefix a hostile value builds on)."""
    if path in POD_PATHS:
        pod = FULL["nodes"][0]["pods"][POD_PATHS[path]]
        return pod if isinstance(pod, str) else pod[path[-1]]
    target = FULL
    for p in path:
        if p in ("<key>", "<value>"):
            key = next(iter(target))
            return key if p == "<key>" else target[key]
        target = target[p]
    return target


PAYLOADS = ["$(pwned)", "`pwned`", "';pwned;'", '";pwned;"', "\npwned\n", ";pwned", "|pwned", "&&pwned", "\x00pwned",
            "' \"$(pwned)\" '", "\n[evil]\npwned = 1\n", "\nkey: pwned\n", "}\npwned {\n", "%h$(pwned)", "\\\"$(pwned)",
            "\r\npwned", "${IFS}pwned", "\n--pwned", " -o ProxyCommand=pwned"]


def test_the_field_list_covers_the_schema():
    assert len(FIELDS) >= 50
    for path in FIELDS:
        assert isinstance(current(path), str), path  # FULL has a string everywhere the schema takes one


def check_files(steps) -> None:
    """Every file apply writes parses with its format's parser to the intended keys only."""
    for s in steps:
        if not isinstance(s, WriteFile):
            continue
        text = s.content.decode()
        name = s.path.rsplit("/", 1)[-1]
        if name.endswith(".toml"):
            doc = tomllib.loads(text)
            assert set(doc) == {"version", "plugins"} and len(doc["plugins"]) == 1, doc
            cni = next(iter(doc["plugins"].values()))["cni"]
            assert set(cni) in ({"bin_dir", "conf_dir"}, {"bin_dirs", "conf_dir"}), cni
        elif name.endswith((".conflist", ".conf")) and "/cni/" in s.path or name.endswith(".conflist"):
            assert set(json.loads(text)) in ({"cniVersion", "name", "plugins"}, {"cniVersion", "name", "type"})
        elif name == "config.yaml" and "kubelet" in s.path:
            assert set(yaml.safe_load(text)) == {"apiVersion", "kind", "clusterDomain", "clusterDNS", "resolvConf", "podCIDR"}
        elif name == "config.yaml":
            assert set(yaml.safe_load(text)) == {"apiVersion", "kind", "mode", "clusterCIDR", "clientConnection"}
        elif name == "coredns.yaml":
            assert [d["kind"] for d in yaml.safe_load_all(text)] == [
                "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "ConfigMap", "Deployment", "Service"]
        elif name.endswith(".conf") and "/systemd/" in s.path:
            unit = configparser.ConfigParser(interpolation=None)
            unit.read_string(text)
            assert unit.sections() == ["Service"] and list(unit["Service"]) == ["environment"]
        elif s.path.startswith("/etc/default/") or name.endswith(".env"):
            for line in text.splitlines():
                if line and not line.startswith("#"):
                    words = shlex.split(line)
                    assert len(words) == 1 and words[0].split("=", 1)[0] in (
                        "KUBELET_EXTRA_ARGS", "KUBE_APISERVER_ARGS", "KUBE_CONTROLLER_MANAGER_ARGS"), line
        elif name == "Corefile":
            assert text.count("{") == text.count("}") and "pwned" not in text
        else:
            assert "pwned" not in text, (s.path, text)


def check_ssh_config(inv, root) -> None:
    """OpenSSH reads the generated ssh_config (``verify``, ``ssh``) as the settings meant, nothing more."""
    import subprocess

    from provisioner.verify import ssh_config

    try:
        text = ssh_config(inv)
    except InputError:
        return  # refused, never written
    cfg = root / "ssh_config"
    cfg.write_text(text)
    p = subprocess.run(["ssh", "-G", "-F", str(cfg), "node1"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    got = dict(line.split(" ", 1) for line in p.stdout.splitlines() if " " in line)
    assert "proxycommand" not in got and "localcommand" not in got and "pwned" not in got.get("hostname", "")
    assert got["identityfile"] == str(inv.nodes[0].identity_file)


def run_everything(inv, root) -> None:
    """Facts, plan and apply of site.yaml, then reset.yaml, each script through the sandbox's real sh."""
    check_ssh_config(inv, root)
    for mode, playbook in (("apply", packaged("site.yaml")), ("reset", packaged("reset.yaml"))):
        hosts = bind(load_playbook(playbook), inv)
        for host, tasks in hosts.items():
            t = SandboxTransport(root / mode / host, host)
            (res,) = runner.run_all({host: tasks}, lambda h: t, mode)
            assert not t.pwned, (mode, host, (t.root / "PWNED").read_text())
            assert res.error is None, res.error
            order = [(i, task) for i, task in enumerate(tasks)]
            values = runner.run_facts(t, runner.wanted_facts(order, mode), None)
            if mode == "apply":
                for _, task in order:
                    try:
                        check_files(MODULES[task.module].plan(task.args, values).steps)
                    except runner.ModuleError as exc:  # the run reported it as that task's failure
                        failed = [t for t in res.tasks if t.name == task.name and t.status == "failed"]
                        assert failed and str(exc) in (failed[0].error or ""), (task.module, str(exc))
                run_node_scripts(t, tasks)


def run_node_scripts(t, tasks) -> None:
    """The scripts apply leaves on a node to run later (the boot replay, the dhclient hook) run through the
    sandbox's sh too, whatever the node's facts: no value in them may run as code either."""
    from provisioner.modules.boot import boot_script
    from provisioner.modules.dns import dhcp_hook
    for task in tasks:
        if task.module == "pod_network_boot":
            t.run(boot_script(task.args))
        elif task.module == "resolv_conf":
            t.run("reason=BOUND\n" + dhcp_hook(task.args))  # dhclient-script sources it with $reason set
        assert not t.pwned, (task.module, (t.root / "PWNED").read_text())


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(path=st.sampled_from(FIELDS), payload=st.sampled_from(PAYLOADS), where=st.sampled_from(["end", "start", "alone"]))
def test_hostile_value_is_refused_or_inert(tmp_path_factory, path, payload, where):
    base = current(path)
    value = {"end": base + payload, "start": payload + base, "alone": payload}[where]
    root = tmp_path_factory.mktemp("hostile")
    for rel in ("keys/id", "keys/n1", "known_hosts"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("")
    doc = put(FULL, path, value)
    doc["cni"]["sha256"] = {k: v for k, v in doc["cni"]["sha256"].items() if v != "a" * 64}  # no pin to mismatch
    inv_file = root / "inv.yaml"
    inv_file.write_text(yaml.safe_dump(doc, allow_unicode=False))
    try:
        inv = load_inventory(inv_file)
    except InputError as exc:
        assert all(p.file == str(inv_file) and (p.line or p.path) for p in exc.problems), exc.problems
        return
    try:
        run_everything(inv, root)
    except InputError as exc:  # refused while binding (a plugin name that is not a file, say): fine, cleanly
        assert exc.problems


@pytest.mark.parametrize("path", [p for p in FIELDS if p[-1] in ("bin_dir", "conf_dir", "data_dir", "config_file",
                                                                  "env_file", "dropin", "control_plane_file",
                                                                  "resolv_conf", "upstream_file", "corefile", "manifest")])
def test_the_keys_that_once_ran_code_are_refused(write, path):
    """The 13 path keys from the security review, with the review's payload: a validation error now."""
    doc = put(FULL, path, "/tmp/x'; touch /tmp/pwned; echo '")
    with pytest.raises(InputError, match="absolute, normalised path"):
        load_inventory(write(yaml.safe_dump(doc)))


def test_hostile_file_task_in_a_playbook_is_refused_or_inert(tmp_path, base_inventory):
    for path, content, owner in (("/etc/x'$(pwned)'", "a", "root"), ("/etc/x", "$(pwned)\n`pwned`\n", "root"),
                                 ("/etc/x\n", "a", "root"), ("/etc/x", "a", "root;pwned")):
        book = tmp_path / "book.yaml"
        book.write_text(yaml.safe_dump([{"name": "p", "hosts": "all", "tasks": [
            {"name": "f", "file": {"path": path, "content": content, "owner": owner}}]}]))
        try:
            hosts = bind(load_playbook(book), base_inventory, ["node1"])
        except InputError:
            continue
        t = SandboxTransport(tmp_path / "node", "node1")
        runner.run_all(hosts, lambda h: t, "apply")
        assert not t.pwned and len(t.scripts) == 2


HOSTILE = "x'\"$(pwned)`pwned`;pwned\npwned\n"


def hostile_args(value, payload=HOSTILE):
    """Every string inside ``value`` (bound module args) with the payload appended: past any schema."""
    if isinstance(value, str):
        return value + payload
    if isinstance(value, dict):
        return {k: hostile_args(v, payload) for k, v in value.items()}
    if isinstance(value, list):
        return [hostile_args(v, payload) for v in value]
    return value


def test_modules_quote_everything_even_past_validation(tmp_path, write):
    """Defence in depth: module args that no schema checked still reach the shell only as quoted words."""
    doc = copy.deepcopy(FULL)
    doc["ssh"] = {}
    doc["nodes"][0].pop("identity_file")
    doc["cni"]["sha256"], doc["cni"]["tarball_sha256"] = {}, None
    doc["cni"].pop("tarball_sha256")
    inv = load_inventory(write(yaml.safe_dump(doc)))
    tasks = bind(load_playbook(packaged("site.yaml")), inv, ["node1"])["node1"]
    for mode in ("apply", "reset"):
        for i, task in enumerate(tasks):
            args = hostile_args(task.args)
            if task.module == "cni_plugins":  # bytes to upload are looked up by sha256: keep those real
                args["files"] = task.args["files"]
            module = MODULES[task.module]
            t = SandboxTransport(tmp_path / mode / str(i))
            try:
                backwards = mode == "reset" and not task.handler  # handlers plan, as in the runner
                wanted = module.reverse_facts(args) if backwards else module.facts(args)
                values = runner.run_facts(t, wanted, None)
                outcome = module.reverse(args, values) if backwards else module.plan(args, values)
            except (runner.ModuleError, ValueError):
                continue  # refused: fine
            if outcome.steps:
                t.run(runner.steps.render([(0, outcome.steps)]))
            assert not t.pwned, (mode, task.module, (t.root / "PWNED").read_text())
