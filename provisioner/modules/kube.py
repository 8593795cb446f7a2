"""Kubernetes node settings: kubelet, the runtime's CNI dirs, kube-proxy, control-plane flags, restarts.

The facts people get wrong are encoded here:
- kubelet's ``--network-plugin``/``--cni-conf-dir``/``--cni-bin-dir`` exist only before 1.24;
  from 1.24 the CNI dirs are the container runtime's (containerd config).
- kube-proxy takes the POD range (``clusterCIDR``); the SERVICE range belongs to
  kube-apiserver and kube-controller-manager (``--service-cluster-ip-range``).
"""

from __future__ import annotations


import yaml

from ..facts.files import File, Exists
from ..facts.system import KernelModule, SystemdUnit
from ..steps import Cmd
from .base import (ABS, CIDR, DOMAIN, IPV4, KUBELET_ARGS, VERSION, FilesModule, Module, ModuleError, Outcome, drop_block,
                   file_facts, ours, remove_files, schema, set_block, text_of, write_steps)

HEADER = "# managed by provisioner: changes here are overwritten by `provision apply`\n"


# -- serializers: every value goes into a file through its format's own quoting ----------
class _Dumper(yaml.SafeDumper):
    """PyYAML's safe dumper, with list items indented under their key (as kubeadm writes them)."""

    def increase_indent(self, flow=False, indentless=False):
        return super().increase_indent(flow, False)


def to_yaml(doc: dict) -> str:
    return yaml.dump(doc, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=False)


def toml_string(value: str) -> str:
    """A TOML basic string: quotes, backslashes and control characters escaped."""
    out = []
    for ch in value:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def env_value(value: str) -> str:
    """A double-quoted value for an EnvironmentFile (and a shell): \\ " $ ` escaped, no line breaks."""
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        raise ValueError(f"control character in {value!r}")
    return '"' + "".join("\\" + ch if ch in '\\"$`' else ch for ch in value) + '"'


def unit_value(value: str) -> str:
    """A double-quoted systemd unit setting: \\ and " escaped, % doubled (specifiers), no line breaks."""
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        raise ValueError(f"control character in {value!r}")
    return '"' + "".join("\\" + ch if ch in '\\"' else "%%" if ch == "%" else ch for ch in value) + '"'


# -- renderers (pure) ------------------------------------------------------------
def kubelet_config(a: dict) -> str:
    return HEADER + to_yaml({
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "clusterDomain": a["cluster_domain"],
        "clusterDNS": [a["cluster_dns"]],
        "resolvConf": a["resolv_conf"],
        "podCIDR": a["pod_cidr"],
    })


def kubelet_args(a: dict) -> list[str]:
    args = [f"--config={a['config_file']}", f"--node-ip={a['node_ip']}"]
    if a["cni_flags"]:
        args += ["--network-plugin=cni", f"--cni-conf-dir={a['cni_conf_dir']}", f"--cni-bin-dir={a['cni_bin_dir']}"]
    return args + list(a["extra_args"])


def kubelet_env(a: dict) -> str:
    return HEADER + f'KUBELET_EXTRA_ARGS={env_value(" ".join(kubelet_args(a)))}\n'


def kubelet_dropin(a: dict) -> str:
    return HEADER + "[Service]\n" + f'Environment={unit_value("KUBELET_EXTRA_ARGS=" + " ".join(kubelet_args(a)))}\n'


def containerd_block(major: int, bin_dir: str, conf_dir: str) -> str:
    if major == 1:  # containerd 1.x, config version 2
        return (f'[plugins."io.containerd.grpc.v1.cri".cni]\n  bin_dir = {toml_string(bin_dir)}\n'
                f"  conf_dir = {toml_string(conf_dir)}\n")
    # containerd 2.x, config version 3
    return (f"[plugins.'io.containerd.cri.v1.runtime'.cni]\n  bin_dirs = [{toml_string(bin_dir)}]\n"
            f"  conf_dir = {toml_string(conf_dir)}\n")


def kube_proxy_config(a: dict) -> str:
    return HEADER + to_yaml({
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "mode": a["mode"],
        "clusterCIDR": a["cluster_cidr"],
        "clientConnection": {"kubeconfig": a["kubeconfig"]},
    })


def control_plane_env(a: dict) -> str:
    svc, pod = a["service_cidr"], a["pod_cidr"]
    return HEADER + (
        "# kube-apiserver: the service range (ClusterIPs; the DNS service is "
        f"{a['dns_ip']})\n"
        f'KUBE_APISERVER_ARGS={env_value(f"--service-cluster-ip-range={svc}")}\n'
        "# kube-controller-manager: same service range, the pod range, and no automatic node CIDRs:\n"
        "# each node's pod subnet comes from the inventory (kubelet podCIDR), so they always agree.\n"
        "KUBE_CONTROLLER_MANAGER_ARGS=" + env_value(f"--service-cluster-ip-range={svc} --cluster-cidr={pod} "
                                                    f"--allocate-node-cidrs=false --node-cidr-mask-size={a['node_prefix']}")
        + "\n"
    )


IPVS_MODULES = ("ip_vs", "ip_vs_rr", "ip_vs_wrr", "ip_vs_sh", "nf_conntrack")


# -- modules ------------------------------------------------------------------------
class KubeletModule(FilesModule):
    name = "kubelet"
    args = schema({
        "version": VERSION, "cni_flags": {"type": "boolean", "description": "kubelet before 1.24: CNI dirs as flags"},
        "node_ip": IPV4, "cluster_dns": IPV4,
        "cluster_domain": DOMAIN, "resolv_conf": ABS, "pod_cidr": CIDR,
        "cni_bin_dir": ABS, "cni_conf_dir": ABS, "config_file": ABS, "env_file": ABS,
        "dropin": {"anyOf": [ABS, {"type": "null"}]}, "extra_args": KUBELET_ARGS,
    }, ["version", "cni_flags", "node_ip", "cluster_dns", "cluster_domain", "resolv_conf", "pod_cidr", "cni_bin_dir",
        "cni_conf_dir", "config_file", "env_file"])

    def files(self, a) -> dict[str, str]:
        out = {a["config_file"]: kubelet_config(a), a["env_file"]: kubelet_env(a)}
        if a.get("dropin"):
            out[a["dropin"]] = kubelet_dropin(a)
        return out

    def noop(self, a) -> str:
        flags = "with" if a["cni_flags"] else "no"
        return f"kubelet files already as wanted ({flags} CNI flags for {a['version']})"


class ContainerdCNIModule(Module):
    """Points containerd's CRI plugin at the CNI dirs: a marked block in its config, the rest kept."""

    name = "containerd_cni"
    args = schema({"config_file": ABS, "major": {"enum": [1, 2]}, "bin_dir": ABS, "conf_dir": ABS},
                  ["config_file", "major", "bin_dir", "conf_dir"])
    BEGIN, END = "# BEGIN provisioner: CNI dirs", "# END provisioner: CNI dirs"

    def facts(self, a):
        return file_facts([a["config_file"]])

    def plan(self, a, facts):
        path, current = a["config_file"], facts[File(a['config_file'])]
        body = containerd_block(a["major"], a["bin_dir"], a["conf_dir"])
        if current is None:
            text = f"version = {a['major'] + 1}\n\n" + set_block("", self.BEGIN, self.END, body, top=False)
        else:
            old = text_of(path, current)
            table = body.splitlines()[0]
            if table in drop_block(old, self.BEGIN, self.END):
                raise ModuleError(f"{path} already has a {table} table of its own; set bin_dir/conf_dir there "
                                  f"or remove it (two tables of that name are invalid TOML)")
            text = set_block(old, self.BEGIN, self.END, body, top=False)
        # a new config gets 0600 (it may come to hold registry credentials); an existing one keeps its mode
        steps, diff = write_steps(path, text.encode(), facts, mode=None if current else "0600")
        if not steps:
            return Outcome(reason=f"containerd {a['major']}.x already uses {a['bin_dir']} and {a['conf_dir']}")
        return Outcome(steps, f"point containerd {a['major']}.x at {a['bin_dir']} and {a['conf_dir']}", diff)

    def reverse(self, a, facts):
        current = facts[File(a['config_file'])]
        if current is None:
            return Outcome(reason=f"{a['config_file']} is absent")
        old = text_of(a["config_file"], current)
        new = drop_block(old, self.BEGIN, self.END)
        if new == old:
            return Outcome(reason=f"no provisioner block in {a['config_file']}")
        if new.strip() == f"version = {a['major'] + 1}" and ours(a["config_file"], facts):  # apply created it
            return Outcome([Cmd(("rm", "-f", a["config_file"]))], f"remove {a['config_file']}")
        steps, diff = write_steps(a["config_file"], new.encode(), facts)
        return Outcome(steps, f"remove the CNI block from {a['config_file']}", diff)


class KubeProxyModule(Module):
    name = "kube_proxy"
    args = schema({"mode": {"enum": ["iptables", "ipvs", "nftables", "userspace"]}, "cluster_cidr": CIDR,
                   "config_file": ABS, "kubeconfig": ABS}, ["mode", "cluster_cidr", "config_file", "kubeconfig"])

    def facts(self, a):
        out = file_facts([a["config_file"]])
        if a["mode"] == "ipvs":
            out += [KernelModule(m) for m in IPVS_MODULES]
        return out

    def plan(self, a, facts):
        steps = []
        if a["mode"] == "ipvs":  # ipvs needs its kernel modules before kube-proxy starts
            steps += [Cmd(("modprobe", m)) for m in IPVS_MODULES if not facts[KernelModule(m)]]
        fsteps, diff = write_steps(a["config_file"], kube_proxy_config(a).encode(), facts)
        steps += fsteps
        if not steps:
            return Outcome(reason=f"kube-proxy already in {a['mode']} mode with clusterCIDR {a['cluster_cidr']}")
        return Outcome(steps, f"kube-proxy: mode {a['mode']}, clusterCIDR {a['cluster_cidr']} (the pod range)", diff)

    def reverse(self, a, facts):
        return remove_files({a["config_file"]: ""}, facts)


class ControlPlaneFlagsModule(FilesModule):
    """The service range where it belongs: kube-apiserver and kube-controller-manager flags."""

    name = "control_plane_flags"
    args = schema({"path": ABS, "service_cidr": CIDR, "pod_cidr": CIDR,
                   "node_prefix": {"type": "integer", "minimum": 1, "maximum": 32}, "dns_ip": IPV4},
                  ["path", "service_cidr", "pod_cidr", "node_prefix", "dns_ip"])

    def files(self, a) -> dict[str, str]:
        return {a["path"]: control_plane_env(a)}

    def noop(self, a) -> str:
        return f"{a['path']} already holds the control-plane ranges"


class ServiceModule(Module):
    """A systemd service restart (a handler): skipped, with a warning, where the unit does not exist."""

    name = "service"
    args = schema({"name": {"type": "string", "pattern": r"\A[A-Za-z0-9@._-]+\Z"},
                   "action": {"enum": ["restart", "reload"], "default": "restart"},
                   "daemon_reload": {"type": "boolean", "default": True}}, ["name"])

    def facts(self, a):
        return [Exists("/run/systemd/system"),
                SystemdUnit(a['name'])]

    def plan(self, a, facts):
        if not facts[Exists("/run/systemd/system")] or not facts[SystemdUnit(a['name'])]:
            note = f"{a['name']} is not installed (no systemd unit {a['name']}.service): not restarted"
            return Outcome(reason=note, warnings=[note])
        steps = [Cmd(("systemctl", "daemon-reload"))] if a["daemon_reload"] else []
        steps.append(Cmd(("systemctl", a["action"], a["name"] + ".service")))
        return Outcome(steps, f"{a['action']} {a['name']}")
