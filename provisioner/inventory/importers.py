"""Start from what you have: an inventory from ``kubectl get nodes -o json`` or from an Ansible inventory.

Both return inventory data (a dict, the YAML a person would write) that the
caller validates with the normal loader; anything that cannot be mapped is an
:class:`~provisioner.errors.InputError` naming the node or host.

Ansible inventories are parsed here (INI and YAML forms: hosts, groups,
``children``, ``vars``) so that ansible-core is not needed; with ansible-core
installed, its own parser is used instead and gives the same hosts and groups.
"""

from __future__ import annotations

import ipaddress
import json
import re
import shlex
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from ..errors import InputError
from ..yaml_lines import MAX_VALUES, read_text

CONTROL_PLANE_LABELS = ("node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/master")
NAME = re.compile(r"\A[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\Z")
GROUP = re.compile(r"\A[a-z][a-z0-9_-]{0,62}\Z")


def _net(text: str, what: str) -> ipaddress.IPv4Network:
    try:
        return ipaddress.IPv4Network(text, strict=True)
    except ValueError as exc:
        raise InputError(f"{what} {text}: {exc}") from None


def smallest_network(nets: list[ipaddress.IPv4Network], at_most: int = 32) -> ipaddress.IPv4Network:
    """The smallest network holding all of ``nets`` (prefix no longer than ``at_most``).

    >>> smallest_network([ipaddress.IPv4Network("10.244.1.0/24"), ipaddress.IPv4Network("10.244.3.0/24")])
    IPv4Network('10.244.0.0/22')
    """
    prefix = min(min(n.prefixlen for n in nets), at_most)
    while prefix > 0:
        candidate = ipaddress.IPv4Network((nets[0].network_address, prefix), strict=False)
        if all(n.subnet_of(candidate) for n in nets):
            return candidate
        prefix -= 1
    return ipaddress.IPv4Network("0.0.0.0/0")


def _cluster(service_cidr: str, pod_cidr: ipaddress.IPv4Network, node_ips: list[ipaddress.IPv4Address],
             node_cidr: str | None, node_prefix: int | None = None) -> dict[str, Any]:
    nodes_net = _net(node_cidr, "--node-cidr") if node_cidr else smallest_network(
        [ipaddress.IPv4Network(ip) for ip in node_ips], at_most=24)
    cluster: dict[str, Any] = {"node_cidr": str(nodes_net), "pod_cidr": str(pod_cidr),
                               "service_cidr": str(_net(service_cidr, "--service-cidr"))}
    if node_prefix is not None and node_prefix != 24:
        cluster["node_prefix"] = node_prefix
    return cluster


# -- kubectl ------------------------------------------------------------------------
def node_list(text: str) -> list:
    """The Nodes in ``kubectl get nodes`` output: JSON or YAML, a List (``items``) or one Node."""
    try:
        doc = json.loads(text)
    except ValueError:
        try:
            doc = yaml.load(text, Loader=_LOADER)
        except yaml.YAMLError as exc:
            raise InputError(f"neither JSON nor YAML from `kubectl get nodes -o json` (or -o yaml): {exc}") from None
    if isinstance(doc, dict) and doc.get("kind") == "Node":
        return [doc]
    items = doc.get("items") if isinstance(doc, dict) else None
    if not isinstance(items, list) or not items:
        raise InputError("no nodes in the input (expected `kubectl get nodes -o json` or `-o yaml`: a List, or one Node)")
    return items


def kubeadm_ranges(text: str) -> dict[str, str]:
    """podSubnet, serviceSubnet and dnsDomain from kubeadm's ClusterConfiguration, given as the ConfigMap
    (``kubectl -n kube-system get cm kubeadm-config -o yaml``) or as the ClusterConfiguration itself."""
    try:
        doc = yaml.load(text, Loader=_LOADER)
        if isinstance(doc, dict) and isinstance(doc.get("data"), dict):
            doc = yaml.load(str(doc["data"].get("ClusterConfiguration", "")), Loader=_LOADER)
    except yaml.YAMLError as exc:
        raise InputError(f"kubeadm-config: not YAML: {exc}") from None
    net = doc.get("networking") if isinstance(doc, dict) else None
    if not isinstance(net, dict):
        raise InputError("kubeadm-config: no ClusterConfiguration with a networking section in it")
    return {k: str(net[k]) for k in ("podSubnet", "serviceSubnet", "dnsDomain") if net.get(k)}


def from_kubectl(text: str, service_cidr: str | None, pod_cidr: str | None = None, node_cidr: str | None = None,
                 kubeadm: dict[str, str] | None = None, warnings: list[str] | None = None) -> dict:
    """Inventory data from ``kubectl get nodes``: names, InternalIP, pod CIDRs, control-plane group.

    The cluster's ranges come from ``--pod-cidr``/``--service-cidr`` or kubeadm's ClusterConfiguration
    (``kubeadm``); a node list alone does not know them, and they are never guessed. What cannot be used
    yet (IPv6 pod CIDRs and addresses) is said in ``warnings``.
    """
    kubeadm = kubeadm or {}
    warnings = warnings if warnings is not None else []
    nodes, subnets, ips = [], {}, []
    for i, item in enumerate(node_list(text)):
        meta = item.get("metadata") or {}
        name = meta.get("name") or f"items[{i}]"
        if not isinstance(name, str) or not NAME.match(name):
            raise InputError(f"node {name}: the name is not a DNS label provision can use")
        addrs = [a.get("address", "") for a in (item.get("status") or {}).get("addresses", []) if a.get("type") == "InternalIP"]
        v4 = [a for a in addrs if _is_v4(a)]
        if not v4:
            raise InputError(f"node {name}: no IPv4 InternalIP" + (f" (only {', '.join(addrs)}: IPv6-only nodes are "
                                                                     "not supported)" if addrs else ""))
        spec = item.get("spec") or {}
        every = [c for c in [spec.get("podCIDR")] + list(spec.get("podCIDRs") or []) if c]
        cidrs = [c for c in every if _is_v4(c.split("/")[0])]
        left_out = sorted({c for c in every if c not in cidrs} | {a for a in addrs if a not in v4})
        if left_out:
            warnings.append(f"node {name}: {', '.join(left_out)} left out (IPv6: dual-stack is not supported yet)")
        node: dict[str, Any] = {"name": name, "address": v4[0]}
        if cidrs:
            subnets[name] = _net(cidrs[0], f"node {name}: podCIDR")
            node["pod_subnet"] = str(subnets[name])
        labels = meta.get("labels") or {}
        node["groups"] = ["control_plane"] if any(k in labels for k in CONTROL_PLANE_LABELS) else ["workers"]
        nodes.append(node)
        ips.append(ipaddress.IPv4Address(v4[0]))
    _no_overlaps(subnets)
    pod_cidr = pod_cidr or kubeadm.get("podSubnet")
    service_cidr = service_cidr or kubeadm.get("serviceSubnet")
    if not pod_cidr:
        raise InputError("the cluster's pod range is not in a node list: give --pod-cidr (kubeadm's podSubnet, "
                         "kube-controller-manager's --cluster-cidr) or --kubeadm-config")
    if not service_cidr:
        raise InputError("the cluster's service range is not in a node list: give --service-cidr (kubeadm's "
                         "serviceSubnet, kube-apiserver's --service-cluster-ip-range) or --kubeadm-config")
    v4_pods = [c for c in pod_cidr.split(",") if _is_v4(c.split("/")[0])]
    if not v4_pods:
        raise InputError(f"pod range {pod_cidr}: no IPv4 range in it (IPv6-only clusters are not supported yet)")
    if len(v4_pods) < len(pod_cidr.split(",")):
        warnings.append(f"pod range {pod_cidr}: only {v4_pods[0]} is used (dual-stack is not supported yet)")
    pods = _net(v4_pods[0], "--pod-cidr")
    service_cidr = next((c for c in service_cidr.split(",") if _is_v4(c.split("/")[0])), service_cidr)
    outside = [n for n, s in subnets.items() if not s.subnet_of(pods)]
    if outside:
        raise InputError(f"node {outside[0]}: podCIDR {subnets[outside[0]]} is outside the pod range {pods}")
    prefixes = {s.prefixlen for s in subnets.values()}
    prefix = prefixes.pop() if len(prefixes) == 1 else None
    out = {"cluster": _cluster(service_cidr, pods, ips, node_cidr, prefix), "nodes": nodes}
    if kubeadm.get("dnsDomain") and kubeadm["dnsDomain"] != "cluster.local":
        out["cluster"]["domain"] = kubeadm["dnsDomain"]
    return out


def _is_v4(text: str) -> bool:
    try:
        ipaddress.IPv4Address(text)
        return True
    except ValueError:
        return False


def _no_overlaps(subnets: dict[str, ipaddress.IPv4Network]) -> None:
    names = list(subnets)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            if subnets[a].overlaps(subnets[b]):
                raise InputError(f"node {b}: podCIDR {subnets[b]} overlaps node {a}'s {subnets[a]}")


# -- Ansible ------------------------------------------------------------------------
def parse_ansible(path: Path) -> tuple[dict[str, dict[str, Any]], dict[str, list[str]]]:
    """``({host: vars}, {group: [hosts]})`` from an Ansible inventory in INI or YAML form.

    Group vars are applied to their hosts (host vars win); ``children`` make a
    group's hosts members of the parent too.
    """
    text = read_text(path)
    try:
        data = yaml.load(text, Loader=_LOADER)
    except yaml.YAMLError:
        data = None
    if isinstance(data, dict):
        return _ansible_yaml(data)
    return _ansible_ini(text, path)


def _ansible_yaml(data: dict) -> tuple[dict, dict]:
    hosts: dict[str, dict] = {}
    groups: dict[str, list[str]] = {}
    group_vars: dict[str, dict] = {}
    children: dict[str, list[str]] = {}

    def walk(name: str, body: Any) -> None:
        body = body or {}
        groups.setdefault(name, [])
        for host, hvars in (body.get("hosts") or {}).items():
            hosts.setdefault(str(host), {}).update(hvars or {})
            groups[name].append(str(host))
        group_vars.setdefault(name, {}).update(body.get("vars") or {})
        for child, cbody in (body.get("children") or {}).items():
            children.setdefault(name, []).append(str(child))
            walk(str(child), cbody)

    for name, body in data.items():
        walk(str(name), body)
    return _resolve(hosts, groups, group_vars, children)


def _ansible_ini(text: str, path: Path) -> tuple[dict, dict]:
    hosts: dict[str, dict] = {}
    groups: dict[str, list[str]] = {"ungrouped": []}
    group_vars: dict[str, dict] = {}
    children: dict[str, list[str]] = {}
    section, kind = "ungrouped", "hosts"
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            if not line.endswith("]"):
                raise InputError(f"{path}:{n}: a section header must end with ]")
            section, _, kind = line[1:-1].partition(":")
            kind = kind or "hosts"
            if kind not in ("hosts", "children", "vars"):
                raise InputError(f"{path}:{n}: unknown section kind :{kind}")
            groups.setdefault(section, [])
            continue
        try:
            words = shlex.split(line, comments=True)
        except ValueError as exc:
            raise InputError(f"{path}:{n}: {exc}") from None
        if kind == "children":
            children.setdefault(section, []).append(words[0])
            groups.setdefault(words[0], [])
        elif kind == "vars":
            key, _, value = line.partition("=")
            group_vars.setdefault(section, {})[key.strip()] = _value(value.strip())
        else:
            if "[" in words[0]:
                raise InputError(f"{path}:{n}: host ranges like {words[0]} are not supported; list the hosts")
            hvars = {}
            for w in words[1:]:
                if "=" not in w:
                    raise InputError(f"{path}:{n}: {w!r} is not key=value")
                k, _, v = w.partition("=")
                hvars[k] = _value(v)
            hosts.setdefault(words[0], {}).update(hvars)
            groups[section].append(words[0])
    return _resolve(hosts, groups, group_vars, children)


def _value(text: str) -> Any:
    low = text.lower()
    if low in ("true", "yes"):
        return True
    if low in ("false", "no"):
        return False
    return int(text) if text.isascii() and text.isdigit() else text  # "٣٣" is not 33


def _resolve(hosts, groups, group_vars, children) -> tuple[dict, dict]:
    def members(group: str, seen: tuple = ()) -> list[str]:
        out = list(groups.get(group, []))
        have = set(out)
        for child in children.get(group, []):
            if child not in seen:
                more = [h for h in members(child, seen + (group,)) if h not in have]
                out += more
                have.update(more)
        return out

    every = {g: members(g) for g in groups}
    sets = {g: set(hs) for g, hs in every.items()}  # membership tests stay cheap with tens of thousands of hosts
    resolved = {}
    for host, hvars in hosts.items():
        merged: dict = {}
        for g in ("all", *[g for g in every if g != "all"]):  # all's vars first, then each group's; the host's win
            if g == "all" or host in sets.get(g, ()):
                merged.update(group_vars.get(g, {}))
        merged.update(hvars)
        resolved[host] = merged
    return resolved, {g: hs for g, hs in every.items() if g not in ("all", "ungrouped")}


def from_ansible(path: Path, pod_cidr: str, service_cidr: str, node_cidr: str | None = None) -> dict:
    """Inventory data from an Ansible inventory: one node per host, its groups, how to reach it."""
    hosts, groups = _ansible_hosts(path)
    if not hosts:
        raise InputError(f"{path}: no hosts")
    nodes, ips, sudo = [], [], False
    members = {g: set(hs) for g, hs in groups.items()}  # membership tests stay cheap with tens of thousands of hosts
    for host, v in hosts.items():
        name = host.split(".")[0]
        name = name.lower() if name.isascii() else name  # "K" (Kelvin sign) must not become "k"
        if not NAME.match(name):
            raise InputError(f"host {host}: {name!r} is not a node name provision can use (a DNS label)")
        address = str(v.get("ansible_host", host))
        node: dict[str, Any] = {"name": name, "address": address}
        if _is_v4(address):
            ips.append(ipaddress.IPv4Address(address))
        elif "ip" in v and _is_v4(str(v["ip"])):
            node["ip"] = str(v["ip"])
            ips.append(ipaddress.IPv4Address(node["ip"]))
        else:
            raise InputError(f"host {host}: ansible_host {address} is a name, not an IPv4 address: "
                             "set ip=<node IP> on the host")
        if "ansible_port" in v:
            if not re.fullmatch(r"[0-9]{1,5}", str(v["ansible_port"])) or not 0 < int(v["ansible_port"]) < 65536:
                raise InputError(f"host {host}: ansible_port {v['ansible_port']!r} is not a port number")
            node["port"] = int(v["ansible_port"])
        if "ansible_user" in v:
            node["user"] = str(v["ansible_user"])
        if "ansible_ssh_private_key_file" in v:
            node["identity_file"] = str(v["ansible_ssh_private_key_file"])
        member = sorted(g.lower() for g, hs in members.items() if host in hs and g.isascii() and GROUP.match(g.lower()))
        if member:
            node["groups"] = member
        become = str(v.get("ansible_become", False)).lower() in ("true", "yes", "1")
        sudo = sudo or (become and str(v.get("ansible_user", "root")) != "root")
        nodes.append(node)
    counts = Counter(n["name"] for n in nodes)
    dup = next((name for name, count in counts.items() if count > 1), None)
    if dup:
        raise InputError(f"two hosts become node {dup}: rename one in the Ansible inventory")
    out = {"cluster": _cluster(service_cidr, _net(pod_cidr, "--pod-cidr"), ips, node_cidr), "nodes": nodes}
    if sudo:
        out["ssh"] = {"sudo": True}
    return out


def _ansible_hosts(path: Path) -> tuple[dict, dict]:
    """ansible-core's own parser when it is installed; else ours (INI and YAML)."""
    try:
        from ansible.inventory.manager import InventoryManager
        from ansible.parsing.dataloader import DataLoader
    except ImportError:
        return parse_ansible(path)
    read_text(path)  # a regular file of reasonable size for ansible-core too (never a FIFO)
    from ansible.vars.manager import VariableManager

    loader = DataLoader()
    manager = InventoryManager(loader=loader, sources=[str(path)])
    variables = VariableManager(loader=loader, inventory=manager)
    hosts = {h.name: dict(variables.get_vars(host=h, include_hostvars=False)) for h in manager.get_hosts()}
    groups = {g: [h.name for h in manager.groups[g].get_hosts()] for g in manager.groups if g not in ("all", "ungrouped")}
    return hosts, groups


_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml where PyYAML has it: big inventories stay quick


def _values(data: Any) -> int:
    if isinstance(data, dict):
        return 1 + sum(_values(v) for v in data.values())  # as the loader counts: each value, keys not
    if isinstance(data, list):
        return 1 + sum(_values(v) for v in data)
    return 1


def check_size(data: dict, source: str) -> None:
    """An inventory made from ``source`` that provision could not load (more than MAX_VALUES values) is
    refused at once, naming its size, instead of being written and read back slowly to the same end."""
    n = _values(data)
    if n > MAX_VALUES:
        raise InputError(f"{source}: {len(data.get('nodes', []))} hosts make an inventory of {n} values, more than "
                         f"provision reads in one file ({MAX_VALUES}); split it (one inventory per cluster)")


class _PlainDumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    """No anchors and aliases: nodes sharing one groups list get it written out each (as a person writes it)."""

    def ignore_aliases(self, data):
        return True


def to_yaml(data: dict, source: str) -> str:
    return f"# written by `provision inventory` from {source}; check it, then: provision validate THIS_FILE\n" + \
        yaml.dump(data, Dumper=_PlainDumper, sort_keys=False)
