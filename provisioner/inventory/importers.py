"""Start from what you have: an inventory from ``kubectl get nodes -o json`` or from an Ansible inventory.

Both return inventory data (a dict, the YAML a person would write) that the
caller validates with the normal loader; anything that cannot be mapped is an
:class:`~provisioner.errors.InputError` naming the node or host.

Ansible inventories are read by :mod:`.ansible_inventory` (as ansible-core reads
them, without it: the same result whether or not it is installed) and mapped
with kubespray's meaning (:func:`from_parsed`).
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from ..errors import InputError, printable
from ..yaml_lines import MAX_VALUES, SAFE_LOADER, write_local
from . import ansible_inventory

CONTROL_PLANE_LABELS = ("node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/master")
NAME = re.compile(r"\A[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\Z")
GROUP = re.compile(r"\A[a-z][a-z0-9_-]{0,62}\Z")


Net = ipaddress.IPv4Network | ipaddress.IPv6Network


def _net(text: str, what: str) -> Net:
    try:
        return ipaddress.ip_network(text.strip(), strict=True)
    except ValueError as exc:
        raise InputError(f"{what} {text}: {exc}") from None


def _nets(text: str, what: str) -> list[Net]:
    """``10.244.0.0/16,fd00:10:244::/56`` (Kubernetes' dual-stack spelling) → one network per family."""
    nets = [_net(part, what) for part in text.split(",") if part.strip()]
    if not nets or len({n.version for n in nets}) != len(nets) or len(nets) > 2:
        raise InputError(f"{what} {text}: one range, or one per family separated by a comma")
    return nets


def smallest_network(nets: list[Net], at_most: int = 32) -> Net:
    """The smallest network holding all of ``nets`` (prefix no longer than ``at_most``), of their one family.

    >>> smallest_network([ipaddress.IPv4Network("10.244.1.0/24"), ipaddress.IPv4Network("10.244.3.0/24")])
    IPv4Network('10.244.0.0/22')
    """
    prefix = min(min(n.prefixlen for n in nets), at_most)
    while prefix > 0:
        candidate = ipaddress.ip_network((nets[0].network_address, prefix), strict=False)
        if all(n.version == candidate.version and n.subnet_of(candidate) for n in nets):  # type: ignore[arg-type]
            return candidate
        prefix -= 1
    return ipaddress.ip_network("::/0" if nets[0].version == 6 else "0.0.0.0/0")


def _one_or_list(values: list[str]) -> str | list[str]:
    """A value per family as the inventory writes it: alone when there is one family."""
    return values[0] if len(values) == 1 else values


def _cluster(service_cidr: str, pods: list[Net], node_ips: list[list[Any]], node_cidr: str | None,
             node_prefixes: dict[int, int | None] | None = None) -> dict[str, Any]:
    """The cluster section: every range per family, in the pod range's order (the primary first)."""
    families = [p.version for p in pods]
    services = {n.version: n for n in _nets(service_cidr, "--service-cidr")}
    if sorted(services) != sorted(families):
        raise InputError(f"service range {service_cidr} and pod range {','.join(map(str, pods))}: the same families, "
                         "one range each")
    if node_cidr:
        given = {n.version: n for n in _nets(node_cidr, "--node-cidr")}
        if sorted(given) != sorted(families):
            raise InputError(f"--node-cidr {node_cidr}: one range per family of the pod range")
        node_nets = [given[f] for f in families]
    else:
        node_nets = [smallest_network([ipaddress.ip_network(ips[k]) for ips in node_ips], at_most=24 if f == 4 else 64)
                     for k, f in enumerate(families)]
    cluster: dict[str, Any] = {"node_cidr": _one_or_list([str(n) for n in node_nets]),
                               "pod_cidr": _one_or_list([str(p) for p in pods]),
                               "service_cidr": _one_or_list([str(services[f]) for f in families])}
    for f, key, default in ((4, "node_prefix", 24), (6, "node_prefix6", 64)):
        prefix = (node_prefixes or {}).get(f)
        if f in families and prefix is not None and prefix != default:
            cluster[key] = prefix
    return cluster


# -- kubectl ------------------------------------------------------------------------
def node_list(text: str) -> list[Any]:
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
                 kubeadm: dict[str, str] | None = None, warnings: list[str] | None = None) -> dict[str, Any]:
    """Inventory data from ``kubectl get nodes``: names, InternalIPs, pod CIDRs, control-plane group; each of
    the cluster's families (its pod range's: ``--pod-cidr=10.244.0.0/16,fd00:10:244::/56`` is dual-stack).

    The cluster's ranges come from ``--pod-cidr``/``--service-cidr`` or kubeadm's ClusterConfiguration
    (``kubeadm``); a node list alone does not know them, and they are never guessed. What the cluster's
    families do not use (an IPv6 address on the nodes of an IPv4 cluster) is said in ``warnings``.
    """
    kubeadm = kubeadm or {}
    warnings = warnings if warnings is not None else []
    pod_cidr = pod_cidr or kubeadm.get("podSubnet")
    service_cidr = service_cidr or kubeadm.get("serviceSubnet")
    if not pod_cidr:
        raise InputError("the cluster's pod range is not in a node list: give --pod-cidr (kubeadm's podSubnet, "
                         "kube-controller-manager's --cluster-cidr) or --kubeadm-config")
    if not service_cidr:
        raise InputError("the cluster's service range is not in a node list: give --service-cidr (kubeadm's "
                         "serviceSubnet, kube-apiserver's --service-cluster-ip-range) or --kubeadm-config")
    pods = _nets(pod_cidr, "--pod-cidr")
    families = [p.version for p in pods]
    if sorted(n.version for n in _nets(service_cidr, "--service-cidr")) != sorted(families):
        raise InputError(f"service range {service_cidr} and pod range {pod_cidr}: the same families, one range each")
    nodes, ips = [], []
    subnets: dict[int, dict[str, Net]] = {f: {} for f in families}
    for i, item in enumerate(node_list(text)):
        meta = item.get("metadata") or {}
        name = meta.get("name") or f"items[{i}]"
        if not isinstance(name, str) or not NAME.match(name):
            raise InputError(f"node {name}: the name is not a DNS label provision can use")
        addrs = [a.get("address", "") for a in (item.get("status") or {}).get("addresses", []) if a.get("type") == "InternalIP"]
        by_family = {}
        for a in addrs:
            version = _version(a)
            if version is not None and version not in by_family:
                by_family[version] = a
        missing = [f for f in families if f not in by_family]
        if missing:
            raise InputError(f"node {name}: no IPv{missing[0]} InternalIP" + (f" (only {', '.join(addrs)})" if addrs else "")
                             + f"; the pod range {pod_cidr} makes the cluster "
                             + ("dual-stack" if len(families) > 1 else f"IPv{families[0]}"))
        spec = item.get("spec") or {}
        every = list(dict.fromkeys(c for c in [spec.get("podCIDR")] + list(spec.get("podCIDRs") or []) if c))
        mine: dict[int, Net] = {}
        other: set[str] = {a for a in addrs if _version(a) not in families}  # of a family the cluster has not
        for c in every:
            net = _net(c, f"node {name}: podCIDR")
            if net.version not in families:
                other.add(c)
            elif net.version not in mine:
                mine[net.version] = net
        left_out = sorted(other)
        if left_out:
            warnings.append(f"node {name}: {', '.join(left_out)} left out (the pod range {pod_cidr} has no range "
                            "of their family)")
        node: dict[str, Any] = {"name": name, "address": by_family[families[0]]}
        if len(families) > 1:
            node["ip"] = [by_family[f] for f in families]
        if mine:
            for f, net in mine.items():
                subnets[f][name] = net
            node["pod_subnet"] = _one_or_list([str(mine[f]) for f in families if f in mine])
        labels = meta.get("labels") or {}
        node["groups"] = ["control_plane"] if any(k in labels for k in CONTROL_PLANE_LABELS) else ["workers"]
        nodes.append(node)
        ips.append([ipaddress.ip_address(by_family[f]) for f in families])
    prefixes: dict[int, int | None] = {}
    for f, pod in zip(families, pods):
        _no_overlaps(subnets[f])
        outside = [n for n, s in subnets[f].items() if not s.subnet_of(pod)]  # type: ignore[arg-type]
        if outside:
            raise InputError(f"node {outside[0]}: podCIDR {subnets[f][outside[0]]} is outside the pod range {pod}")
        sizes = {s.prefixlen for s in subnets[f].values()}
        prefixes[f] = sizes.pop() if len(sizes) == 1 else None
    cluster = _cluster(service_cidr, pods, ips, node_cidr, prefixes)
    if kubeadm.get("dnsDomain") and kubeadm["dnsDomain"] != "cluster.local":
        cluster["domain"] = kubeadm["dnsDomain"]
    return {"cluster": cluster, "nodes": nodes}


def _version(text: str) -> int | None:
    try:
        return ipaddress.ip_address(text).version
    except ValueError:
        return None


def _is_v4(text: str) -> bool:
    return _version(text) == 4


def _no_overlaps(subnets: dict[str, Net]) -> None:
    names = list(subnets)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            if subnets[a].overlaps(subnets[b]):
                raise InputError(f"node {b}: podCIDR {subnets[b]} overlaps node {a}'s {subnets[a]}")


# -- Ansible ------------------------------------------------------------------------
# kubespray's groups and what they are here; its older dashed names too
KUBESPRAY_GROUPS = {"kube_control_plane": "control_plane", "kube-master": "control_plane", "kube_node": "workers",
                    "kube-node": "workers"}
CLUSTER_GROUPS = ("k8s_cluster", "k8s-cluster")
CONNECTIONS = ("ssh", "smart", "paramiko", "paramiko_ssh", "ansible.builtin.ssh", "ansible.builtin.paramiko_ssh")


def from_ansible(path: Path, pod_cidr: str | None = None, service_cidr: str | None = None,
                 node_cidr: str | None = None, warnings: list[str] | None = None, cwd: Path | None = None) -> dict[str, Any]:
    """Inventory data from an Ansible inventory (kubespray's included): one node per Kubernetes host."""
    return from_parsed(ansible_inventory.read(path), str(path), pod_cidr, service_cidr, node_cidr, warnings, cwd)


def from_parsed(parsed: ansible_inventory.Parsed, source: str, pod_cidr: str | None = None,
                service_cidr: str | None = None, node_cidr: str | None = None, warnings: list[str] | None = None,
                cwd: Path | None = None) -> dict[str, Any]:
    """Inventory data from an Ansible inventory as Ansible reads it, with kubespray's meaning:

    - the nodes are the hosts of ``k8s_cluster`` where it exists (else of kube_control_plane and kube_node,
      else every host but a bastion): etcd-only, calico_rr-only and bastion hosts are left out, each named
      in ``warnings``;
    - ``ip`` (else ``access_ip``) is the node IP, ``ansible_host``/``ansible_ssh_host`` the SSH address;
    - ``kube_control_plane`` is the control_plane group, ``kube_node`` workers;
    - a host of ``bastion`` is the SSH jump host (``ssh.jump``);
    - ``kube_pods_subnet``, ``kube_service_addresses`` and ``kube_network_node_prefix`` are the cluster's
      ranges unless ``--pod-cidr``/``--service-cidr`` say otherwise; the cluster DNS IP is the third address
      of the service range, as kubespray's;
    - a relative key file is resolved as ssh resolves it under ansible-playbook (from the directory it runs
      in: ``cwd``) and written absolute.
    """
    warnings = warnings if warnings is not None else []
    cwd = cwd or Path.cwd()
    hosts, groups = parsed.hosts, parsed.groups
    if not hosts:
        raise InputError(f"{source}: no hosts")
    members = {g: set(hs) for g, hs in groups.items()}  # membership tests stay cheap with tens of thousands of hosts
    kubespray = any(g in groups for g in (*KUBESPRAY_GROUPS, *CLUSTER_GROUPS))
    bastions = groups.get("bastion", [])
    cluster_group = next((g for g in CLUSTER_GROUPS if groups.get(g)), None)
    if cluster_group:
        chosen = set(groups[cluster_group])
    elif kubespray:
        chosen = {h for g in KUBESPRAY_GROUPS for h in groups.get(g, [])}
    else:
        chosen = set(hosts) - set(bastions)
    for host in hosts:
        if host not in chosen and host not in bastions:
            member = ", ".join(sorted(g for g, hs in members.items() if host in hs)) or "no group"
            warnings.append(f"host {host} ({member}) is not a node: it is not in "
                            + (cluster_group or "kube_control_plane or kube_node"))
    if not chosen:
        raise InputError(f"{source}: no Kubernetes hosts (kubespray's k8s_cluster, kube_control_plane and kube_node "
                         "are empty)")
    out: dict[str, Any] = {}
    nodes, ips, sudo = [], [], False
    for host, v in hosts.items():
        if host not in chosen:
            continue
        node = _ansible_node(host, v, cwd)
        ips.append(ipaddress.IPv4Address(node.get("ip", node["address"])))
        mapped = {KUBESPRAY_GROUPS.get(g, g).lower() for g, hs in members.items()
                  if host in hs and g.isascii() and GROUP.match(KUBESPRAY_GROUPS.get(g, g).lower())}
        if mapped:
            node["groups"] = sorted(mapped)
        become = str(v.get("ansible_become", False)).lower() in ("true", "yes", "1")
        sudo = sudo or (become and node.get("user", "root") != "root")
        nodes.append(node)
    counts = Counter(n["name"] for n in nodes)
    dup = next((name for name, count in counts.items() if count > 1), None)
    if dup:
        raise InputError(f"two hosts become node {dup}: rename one in the Ansible inventory")
    if kubespray and not any("control_plane" in n.get("groups", ()) for n in nodes):
        warnings.append("no host in kube_control_plane: no node gets the control-plane flags and CoreDNS")
    ranges = _cluster_vars([hosts[h] for h in hosts if h in chosen], source, warnings)
    pods = pod_cidr or ranges.get("kube_pods_subnet")
    services = service_cidr or ranges.get("kube_service_addresses")
    for given, var in ((pod_cidr, "kube_pods_subnet"), (service_cidr, "kube_service_addresses")):
        if given and ranges.get(var) and ranges[var] != given:
            warnings.append(f"{var} {ranges[var]} in the inventory's vars is overridden by the command line: {given}")
    if not pods:
        raise InputError(f"{source}: the pod range is not in the inventory's vars (kube_pods_subnet): give --pod-cidr")
    if not services:
        raise InputError(f"{source}: the service range is not in the inventory's vars (kube_service_addresses): "
                         "give --service-cidr")
    prefix = ranges.get("kube_network_node_prefix")
    if prefix is not None and not re.fullmatch(r"[0-9]{1,2}", prefix):
        raise InputError(f"{source}: kube_network_node_prefix {prefix!r} is not a prefix length")
    out["cluster"] = _cluster(services, [_net(pods, "pod range")], [[ip] for ip in ips], node_cidr,
                              {4: int(prefix) if prefix else None})
    if kubespray:
        out["cluster"]["dns_ip"] = str(_net(services, "service range")[3])  # kubespray's skydns_server
    if ranges.get("dns_domain") and ranges["dns_domain"] != "cluster.local":
        out["cluster"]["domain"] = ranges["dns_domain"]
    out["nodes"] = nodes
    ssh: dict[str, Any] = {}
    if sudo:
        ssh["sudo"] = True
    if len(bastions) > 1:
        raise InputError(f"{source}: {len(bastions)} hosts in group bastion ({', '.join(bastions[:3])}): "
                         "provision goes through one jump host")
    if bastions:
        ssh["jump"] = _jump(bastions[0], hosts[bastions[0]])
    if ssh:
        out["ssh"] = ssh
    return out


def _first_key(v: dict[str, Any], *keys: str) -> str | None:
    """The first of ``keys`` (a variable and its aliases) that ``v`` sets to something."""
    return next((k for k in keys if v.get(k) not in (None, "")), None)


def _first(v: dict[str, Any], *keys: str) -> Any:
    key = _first_key(v, *keys)
    return None if key is None else v[key]


def _literal(value: Any, host: str, key: str) -> Any:
    """A variable provision uses, refused where Ansible would have to compute it."""
    if isinstance(value, ansible_inventory.Vaulted):
        raise InputError(f"host {host}: {key} is vault-encrypted; provision has no vault password: import "
                         "`ansible-inventory -i INVENTORY --list` (run with your vault password) instead")
    if isinstance(value, str) and ("{{" in value or "{%" in value):
        raise InputError(f"host {host}: {key} is a template ({value}); provision does not run templates: "
                         "set it to a plain value, or import `ansible-inventory -i INVENTORY --list`")
    return value


def _ansible_node(host: str, v: dict[str, Any], cwd: Path) -> dict[str, Any]:
    name = host.split(".")[0]
    name = name.lower() if name.isascii() else name  # "K" (Kelvin sign) must not become "k"
    if not NAME.match(name):
        raise InputError(f"host {host}: {name!r} is not a node name provision can use (a DNS label)")
    connection = str(_literal(v.get("ansible_connection", "ssh"), host, "ansible_connection"))
    address_key = _first_key(v, "ansible_host", "ansible_ssh_host")
    address = str(_literal(v[address_key], host, address_key)) if address_key else host
    if connection == "local":
        address = str(v[address_key]) if address_key else "127.0.0.1"
    elif connection not in CONNECTIONS:
        raise InputError(f"host {host}: ansible_connection={connection}: provision reaches nodes over SSH only")
    node: dict[str, Any] = {"name": name, "address": address}
    ip_key = _first_key(v, "ip", "access_ip")
    if ip_key:
        ip = str(_literal(v[ip_key], host, ip_key))
        if not _is_v4(ip):
            raise InputError(f"host {host}: {ip_key} {ip} is not an IPv4 address")
        node["ip"] = ip
    elif not _is_v4(address) or connection == "local":
        why = ("ansible_connection=local: Ansible runs it on the controller without SSH; provision still connects "
               f"over SSH (to {address}) and needs the node IP" if connection == "local" else
               f"{address_key or 'its name'} {address} is not an IPv4 address")
        raise InputError(f"host {host}: {why}: set ip=<node IP> on the host")
    port = _first(v, "ansible_port", "ansible_ssh_port")
    if port is not None:
        port = _literal(port, host, "ansible_port")
        if not re.fullmatch(r"[0-9]{1,5}", str(port)) or not 0 < int(port) < 65536:
            raise InputError(f"host {host}: ansible_port {port!r} is not a port number")
        node["port"] = int(port)
    user = _first(v, "ansible_user", "ansible_ssh_user")
    if user is not None:
        node["user"] = str(_literal(user, host, "ansible_user"))
    key = _first(v, "ansible_ssh_private_key_file", "ansible_private_key_file")
    if key is not None:
        key_path = Path(str(_literal(key, host, "ansible_ssh_private_key_file"))).expanduser()
        node["identity_file"] = str(key_path if key_path.is_absolute() else cwd / key_path)
    return node


def _jump(host: str, v: dict[str, Any]) -> str:
    """The bastion as ``ssh.jump``: ``[user@]address[:port]``, as ProxyJump writes it."""
    address = str(_literal(_first(v, "ansible_host", "ansible_ssh_host") or host, host, "ansible_host"))
    user = _first(v, "ansible_user", "ansible_ssh_user")
    port = _first(v, "ansible_port", "ansible_ssh_port")
    if ":" in address:
        address = f"[{address}]"
    return (f"{_literal(user, host, 'ansible_user')}@" if user else "") + address + (
        f":{_literal(port, host, 'ansible_port')}" if port else "")


def _cluster_vars(nodes: list[dict[str, Any]], source: str, warnings: list[str]) -> dict[str, str]:
    """kubespray's cluster-wide variables as the node hosts have them; one ``{{ name }}`` reference to a plain
    variable is followed (kubespray's ``dns_domain: "{{ cluster_name }}"``), nothing else is templated."""
    out: dict[str, str] = {}
    for key in ("kube_pods_subnet", "kube_service_addresses", "kube_network_node_prefix", "dns_domain"):
        values, vaulted = set(), False
        for v in nodes:
            value = v.get(key)
            ref = re.fullmatch(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}", value) if isinstance(value, str) else None
            if ref and isinstance(v.get(ref.group(1)), (str, int)) and "{" not in str(v[ref.group(1)]):
                value = v[ref.group(1)]
            vaulted = vaulted or isinstance(value, ansible_inventory.Vaulted)  # seen before str() makes it plain
            if value is not None:
                values.add(str(value))
        if vaulted:
            warnings.append(f"{key} is vault-encrypted and is not used: give the value on the command line")
            continue
        if len(values) > 1:
            raise InputError(f"{source}: the node hosts disagree on {key} ({', '.join(sorted(values))})")
        if values:
            value = values.pop()
            if "{{" in value or "{%" in value:
                warnings.append(f"{key} is a template ({value}) and is not used: give the value on the command line")
                continue
            out[key] = value
    return out


_LOADER = SAFE_LOADER  # libyaml where PyYAML has it: big inventories stay quick


def _values(data: Any) -> int:
    if isinstance(data, dict):
        return 1 + sum(_values(v) for v in data.values())  # as the loader counts: each value, keys not
    if isinstance(data, list):
        return 1 + sum(_values(v) for v in data)
    return 1


def check_size(data: dict[str, Any], source: str) -> None:
    """An inventory made from ``source`` that provision could not load (more than MAX_VALUES values) is
    refused at once, naming its size, instead of being written and read back slowly to the same end."""
    n = _values(data)
    if n > MAX_VALUES:
        raise InputError(f"{source}: {len(data.get('nodes', []))} hosts make an inventory of {n} values, more than "
                         f"provision reads in one file ({MAX_VALUES}); split it (one inventory per cluster)")


class _PlainDumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    """No anchors and aliases: nodes sharing one groups list get it written out each (as a person writes it)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def to_yaml(data: dict[str, Any], source: str) -> str:
    return f"# written by `provision inventory` from {source}; check it, then: provision validate THIS_FILE\n" + \
        yaml.dump(data, Dumper=_PlainDumper, sort_keys=False)


# -- what the CLI calls: any input ends in data or an InputError, and what is written validates ----------------
_SHAPE_ERRORS = (TypeError, AttributeError, KeyError, IndexError, ValueError, RecursionError)


def _readable(source: str, what: str, make: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    try:
        return make()
    except _SHAPE_ERRORS as exc:
        raise InputError(f"{source}: not {what} that can be read: a value has the wrong type or shape "
                         f"({type(exc).__name__}: {printable(str(exc))[:200]})") from None


def import_kubectl(text: str, source: str, service_cidr: str | None, pod_cidr: str | None, node_cidr: str | None,
                      kubeadm_text: str | None, warnings: list[str]) -> dict[str, Any]:
    """:func:`from_kubectl` over what a user gives (``kubectl get nodes`` output, kubeadm's ConfigMap)."""
    def make() -> dict[str, Any]:
        kubeadm = kubeadm_ranges(kubeadm_text) if kubeadm_text is not None else {}
        return from_kubectl(text, service_cidr, pod_cidr, node_cidr, kubeadm, warnings)

    return _readable(source, "a node list (kubectl get nodes -o json)", make)


def import_ansible(path: Path, pod_cidr: str | None, service_cidr: str | None, node_cidr: str | None,
                      warnings: list[str]) -> dict[str, Any]:
    """:func:`from_ansible` over a user's file."""
    return _readable(str(path), "an Ansible inventory",
                     lambda: from_ansible(path, pod_cidr, service_cidr, node_cidr, warnings))


def write(data: dict[str, Any], source: str, target: Path | None) -> str:
    """The inventory's YAML, validated by the loader in a file of its own before it takes ``target``'s name
    (never written through a link); without ``target`` it is only checked. Returns the text."""
    import tempfile

    from .load import load_inventory

    check_size(data, source)  # before writing and re-reading a file too large to load
    text = to_yaml(data, source)

    def validates(written: Path) -> None:
        try:
            load_inventory(written)
        except InputError as exc:
            raise InputError("the inventory made from " + source + " does not validate: "
                             + "; ".join(str(p).replace(str(written), "(it)") for p in exc.problems)) from None

    with tempfile.TemporaryDirectory() as d:  # printed rather than written: checked in a place of its own
        write_local(target or Path(d) / "inventory.yaml", text, check=validates)
    return text
