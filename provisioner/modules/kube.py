"""Kubernetes node settings: kubelet, the runtime's CNI dirs, kube-proxy, control-plane flags, restarts.

The facts people get wrong are encoded here:
- kubelet's ``--network-plugin``/``--cni-conf-dir``/``--cni-bin-dir`` exist only before 1.24;
  from 1.24 the CNI dirs are the container runtime's (containerd config).
- kube-proxy takes the POD range (``clusterCIDR``); the SERVICE range belongs to
  kube-apiserver and kube-controller-manager (``--service-cluster-ip-range``).
- dual-stack: every range and the node IP are one per family, comma-separated, the primary
  first (``--node-ip=192.168.56.11,fd00:56::11``, ``clusterCIDR: 10.244.0.0/16,fd00:10:244::/56``);
  kube-controller-manager then takes ``--node-cidr-mask-size-ipv4``/``-ipv6`` instead of one size.
"""

from __future__ import annotations

from typing import Any

from ..facts import Fact, Facts, value
from ..facts.files import Exists, File
from ..facts.system import KernelModule, SystemdUnit
from ..steps import Cmd, Step
from .base import (ABS, DOMAIN, IP, NET, KUBELET_ARGS, VERSION, FilesModule, Module, ModuleError, Outcome, backup_of,
                   ip_family, listed, per_family,
                   file_facts, plan_files, remove_files, schema, text_of, write_steps)
from ..formats import MergeError, env_value, env_var, load_mapping, set_env_var, set_yaml_keys, to_yaml, unit_value

HEADER = "# managed by provisioner: changes here are overwritten by `provision apply`\n"


# -- renderers (pure) ------------------------------------------------------------
KUBELET_KIND = {"apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration"}


def csv(value: str | int | list[Any]) -> str:
    """One value per family, as Kubernetes takes them: comma-separated, the primary first."""
    return ",".join(map(str, listed(value)))


def kubelet_settings(a: dict[str, Any]) -> dict[str, Any]:
    """The keys of kubelet's config.yaml that are ours; every other key in the file is the user's."""
    return {"clusterDomain": a["cluster_domain"], "clusterDNS": [a["cluster_dns"]], "resolvConf": a["resolv_conf"],
            "podCIDR": csv(a["pod_cidr"])}


def kubelet_config(a: dict[str, Any], current: str | None = None) -> str:
    """A new config.yaml, or ``current`` with our keys set in place (comments and other keys kept)."""
    if current is None:
        return HEADER + to_yaml({**KUBELET_KIND, **kubelet_settings(a)})
    doc = load_mapping(current)
    if doc.get("kind", "KubeletConfiguration") != "KubeletConfiguration":
        raise MergeError(f"is a {doc['kind']!r}, not a KubeletConfiguration")
    missing = {k: v for k, v in KUBELET_KIND.items() if k not in doc}
    return set_yaml_keys(current, {**missing, **kubelet_settings(a)}, to_yaml)


def kubelet_args(a: dict[str, Any]) -> list[str]:
    args = [f"--config={a['config_file']}", f"--node-ip={csv(a['node_ip'])}"]
    if a["cni_flags"]:
        args += ["--network-plugin=cni", f"--cni-conf-dir={a['cni_conf_dir']}", f"--cni-bin-dir={a['cni_bin_dir']}"]
    return args + list(a["extra_args"])


def kubelet_env(a: dict[str, Any], current: str | None = None, original: str | None = None) -> str:
    """A new env file, or ``current`` with only ``KUBELET_EXTRA_ARGS`` changed: our flags, then the flags the
    ``original`` file (before provisioner's first change) had that ours do not set."""
    flags = kubelet_args(a)
    if current is None:
        return HEADER + f'KUBELET_EXTRA_ARGS={env_value(" ".join(flags))}\n'
    names = {f.split("=", 1)[0] for f in flags}
    theirs = (env_var(original if original is not None else current, "KUBELET_EXTRA_ARGS") or "").split()
    flags += [f for f in theirs if f.split("=", 1)[0] not in names]
    return set_env_var(current, "KUBELET_EXTRA_ARGS", f'KUBELET_EXTRA_ARGS={env_value(" ".join(flags))}\n')


def kubelet_dropin(a: dict[str, Any]) -> str:
    return HEADER + "[Service]\n" + f'Environment={unit_value("KUBELET_EXTRA_ARGS=" + " ".join(kubelet_args(a)))}\n'


def kube_proxy_config(a: dict[str, Any]) -> str:
    return HEADER + to_yaml({
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "mode": a["mode"],
        "clusterCIDR": csv(a["cluster_cidr"]),
        "clientConnection": {"kubeconfig": a["kubeconfig"]},
    })


def control_plane_env(a: dict[str, Any]) -> str:
    svc, pod, sizes = csv(a["service_cidr"]), csv(a["pod_cidr"]), a["node_prefix"]
    if isinstance(sizes, list) and len(sizes) == 2:  # dual-stack: one mask size per family, by name
        by_family = dict(zip((ip_family(p) for p in a["pod_cidr"]), sizes))
        mask = f"--node-cidr-mask-size-ipv4={by_family[4]} --node-cidr-mask-size-ipv6={by_family[6]}"
    else:
        mask = f"--node-cidr-mask-size={csv(sizes)}"
    return HEADER + (
        "# kube-apiserver: the service range (ClusterIPs; the DNS service is "
        f"{a['dns_ip']})\n"
        f'KUBE_APISERVER_ARGS={env_value(f"--service-cluster-ip-range={svc}")}\n'
        "# kube-controller-manager: same service range, the pod range, and no automatic node CIDRs:\n"
        "# each node's pod subnet comes from the inventory (kubelet podCIDR), so they always agree.\n"
        "KUBE_CONTROLLER_MANAGER_ARGS=" + env_value(f"--service-cluster-ip-range={svc} --cluster-cidr={pod} "
                                                    f"--allocate-node-cidrs=false {mask}")
        + "\n"
    )


IPVS_MODULES = ("ip_vs", "ip_vs_rr", "ip_vs_wrr", "ip_vs_sh", "nf_conntrack")


# -- modules ------------------------------------------------------------------------
class KubeletModule(Module):
    """kubelet's config.yaml and flags; files it already has are edited (our keys only), never replaced."""

    name = "kubelet"
    args = schema({
        "version": VERSION, "cni_flags": {"type": "boolean", "description": "kubelet before 1.24: CNI dirs as flags"},
        "node_ip": per_family(IP), "cluster_dns": IP,
        "cluster_domain": DOMAIN, "resolv_conf": ABS, "pod_cidr": per_family(NET),
        "cni_bin_dir": ABS, "cni_conf_dir": ABS, "config_file": ABS, "env_file": ABS,
        "dropin": {"anyOf": [ABS, {"type": "null"}]}, "extra_args": KUBELET_ARGS,
    }, ["version", "cni_flags", "node_ip", "cluster_dns", "cluster_domain", "resolv_conf", "pod_cidr", "cni_bin_dir",
        "cni_conf_dir", "config_file", "env_file"])

    def paths(self, a: dict[str, Any]) -> list[str]:
        return [a["config_file"], a["env_file"]] + ([a["dropin"]] if a.get("dropin") else [])

    def facts(self, a: dict[str, Any]) -> list[Fact[Any]]:
        return file_facts(self.paths(a)) + [File(backup_of(a["env_file"]))]  # the flags the file had before us

    def reverse_facts(self, a: dict[str, Any]) -> list[Fact[Any]]:
        return file_facts(self.paths(a))

    def wanted(self, a: dict[str, Any], facts: Facts) -> dict[str, str]:
        """Each file's wanted text: new files whole, existing ones with only our keys changed."""
        cfg, env, backup = (value(facts, File(a["config_file"])), value(facts, File(a["env_file"])),
                            facts.get(File(backup_of(a["env_file"]))))
        path = a["config_file"]
        try:
            out = {path: kubelet_config(a, text_of(path, cfg) if cfg is not None else None)}
            path = a["env_file"]
            out[path] = kubelet_env(a, text_of(path, env) if env is not None else None,
                                    text_of(backup_of(path), backup) if backup is not None else None)
        except MergeError as exc:
            raise ModuleError(f"{path} {exc}; fix it, or move it away to let apply write a new one") from None
        if a.get("dropin"):
            out[a["dropin"]] = kubelet_dropin(a)
        return out

    def plan(self, a: dict[str, Any], facts: Facts) -> Outcome:
        flags = "with" if a["cni_flags"] else "no"
        return plan_files(self.wanted(a, facts), facts, f"kubelet files already as wanted ({flags} CNI flags for {a['version']})")

    def reverse(self, a: dict[str, Any], facts: Facts) -> Outcome:
        return remove_files({p: "" for p in self.paths(a)}, facts)


class KubeProxyModule(Module):
    name = "kube_proxy"
    args = schema({"mode": {"enum": ["iptables", "ipvs", "nftables", "userspace"]}, "cluster_cidr": per_family(NET),
                   "config_file": ABS, "kubeconfig": ABS}, ["mode", "cluster_cidr", "config_file", "kubeconfig"])

    def facts(self, a: dict[str, Any]) -> list[Fact[Any]]:
        out = file_facts([a["config_file"]])
        if a["mode"] == "ipvs":
            out += [KernelModule(m) for m in IPVS_MODULES]
        return out

    def plan(self, a: dict[str, Any], facts: Facts) -> Outcome:
        steps: list[Step] = []
        if a["mode"] == "ipvs":  # ipvs needs its kernel modules before kube-proxy starts
            steps += [Cmd(("modprobe", m)) for m in IPVS_MODULES if not facts[KernelModule(m)]]
        fsteps, diff = write_steps(a["config_file"], kube_proxy_config(a).encode(), facts)
        steps += fsteps
        if not steps:
            return Outcome(reason=f"kube-proxy already in {a['mode']} mode with clusterCIDR {csv(a['cluster_cidr'])}")
        return Outcome(steps, f"kube-proxy: mode {a['mode']}, clusterCIDR {csv(a['cluster_cidr'])} (the pod range)", diff)

    def reverse(self, a: dict[str, Any], facts: Facts) -> Outcome:
        return remove_files({a["config_file"]: ""}, facts)


class ControlPlaneFlagsModule(FilesModule):
    """The service range where it belongs: kube-apiserver and kube-controller-manager flags."""

    name = "control_plane_flags"
    args = schema({"path": ABS, "service_cidr": per_family(NET), "pod_cidr": per_family(NET),
                   "node_prefix": per_family({"type": "integer", "minimum": 1, "maximum": 128}), "dns_ip": IP},
                  ["path", "service_cidr", "pod_cidr", "node_prefix", "dns_ip"])

    def files(self, a: dict[str, Any]) -> dict[str, str]:
        return {a["path"]: control_plane_env(a)}

    def noop(self, a: dict[str, Any]) -> str:
        return f"{a['path']} already holds the control-plane ranges"


class ServiceModule(Module):
    """A systemd service restart (a handler): skipped, with a warning, where the unit does not exist."""

    name = "service"
    args = schema({"name": {"type": "string", "pattern": r"\A[A-Za-z0-9@._-]+\Z"},
                   "action": {"enum": ["restart", "reload"], "default": "restart"},
                   "daemon_reload": {"type": "boolean", "default": True}}, ["name"])

    def facts(self, a: dict[str, Any]) -> list[Fact[Any]]:
        return [Exists("/run/systemd/system"),
                SystemdUnit(a['name'])]

    def plan(self, a: dict[str, Any], facts: Facts) -> Outcome:
        if not facts[Exists("/run/systemd/system")] or not facts[SystemdUnit(a['name'])]:
            note = f"{a['name']} is not installed (no systemd unit {a['name']}.service): not restarted"
            return Outcome(reason=note, warnings=[note])
        steps = [Cmd(("systemctl", "daemon-reload"))] if a["daemon_reload"] else []
        steps.append(Cmd(("systemctl", a["action"], a["name"] + ".service")))
        return Outcome(steps, f"{a['action']} {a['name']}")
