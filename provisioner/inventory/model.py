"""Frozen dataclasses for a validated inventory, and its view for templates."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..addressing import gateway_for

Net = ipaddress.IPv4Network
Addr = ipaddress.IPv4Address


@dataclass(frozen=True)
class Pod:
    """A lab pod: a network namespace wired to the node's bridge."""

    name: str
    ip: Addr
    via: str = "manual"  # "manual": veth by hand; "cni": the installed CNI plugin

    @property
    def host_veth(self) -> str:
        return f"veth-{self.name}"


@dataclass(frozen=True)
class Node:
    name: str
    address: str
    port: int
    ip: Addr
    interface: str
    groups: tuple[str, ...]
    pod_subnet: Net
    pods: tuple[Pod, ...] = ()
    user: str | None = None             # overrides ssh.user for this node
    identity_file: Path | None = None   # overrides ssh.identity_file (each Vagrant VM has its own key)

    @property
    def pod_gateway(self) -> Addr:
        return gateway_for(self.pod_subnet)


@dataclass(frozen=True)
class SSHSettings:
    user: str = "root"
    port: int = 22
    identity_file: Path | None = None
    known_hosts: Path | None = None
    host_key_policy: str = "strict"
    sudo: bool = False
    connect_timeout: float = 10.0


@dataclass(frozen=True)
class Cluster:
    name: str
    domain: str
    node_cidr: Net
    pod_cidr: Net
    node_prefix: int
    service_cidr: Net
    dns_ip: Addr
    bridge: str
    routing: str = "peers"
    router: Addr | None = None


@dataclass(frozen=True)
class CNI:
    """The node's CNI network: plugin binaries, their config, and the IPAM range."""

    type: str = "bridge"
    bin_dir: str = "/etc/cni/bin"
    conf_dir: str = "/etc/cni/net.d"
    config_name: str = ""
    source: Path = Path("/usr/lib/cni")
    plugins: tuple[str, ...] = ()
    sha256: tuple[tuple[str, str], ...] = ()
    tarball_sha256: str | None = None
    is_gateway: bool = True
    ip_masq: bool = False
    hairpin_mode: bool = True
    mtu: int = 1500
    ipam: str = "host-local"
    range_offset: int = 10
    data_dir: str = "/var/lib/cni/networks"
    weave_ipalloc_range: str = ""


@dataclass(frozen=True)
class Inventory:
    path: Path
    cluster: Cluster
    ssh: SSHSettings
    nodes: tuple[Node, ...]
    cni: CNI = field(default_factory=CNI)
    kubernetes: dict[str, Any] = field(default_factory=dict, compare=False)  # schema defaults filled in
    dns: dict[str, Any] = field(default_factory=dict, compare=False)
    warnings: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def groups(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {"all": [n.name for n in self.nodes]}
        for n in self.nodes:
            for g in n.groups:
                out.setdefault(g, []).append(n.name)
        return out

    def template_vars(self, node: Node) -> dict[str, Any]:
        """What ``{{ }}`` in a playbook sees on ``node``: plain dicts and strings.

        ``node``, ``cluster``, ``peers`` (every other node), ``nodes``, ``groups``.
        """
        return {
            "node": node_vars(node),
            "cluster": cluster_vars(self.cluster),
            "peers": [node_vars(n) for n in self.nodes if n.name != node.name],
            "nodes": [node_vars(n) for n in self.nodes],
            "groups": self.groups(),
            "pod_routes": self.pod_routes(node),
            "cni": cni_vars(self.cni),
            "cni_conflist": self.cni_conflist(node),
            "kubernetes": self.kubernetes,
            "dns": self.dns,
            **self.extra,
        }


    def pod_routes(self, node: Node) -> list[dict[str, str]]:
        """Routes ``node`` needs to reach other nodes' pods: one per peer, or one via the router."""
        c = self.cluster
        if c.routing == "router" and node.ip != c.router:
            return [{"dst": str(c.pod_cidr), "via": str(c.router)}]
        return [{"dst": str(n.pod_subnet), "via": str(n.ip)} for n in self.nodes if n.name != node.name]


    def cni_conflist(self, node: Node) -> dict[str, Any]:
        """The node's CNI network config (a conflist, CNI 1.0.0): same bridge and gateway as the hand-made one.

        host-local hands out addresses from ``range_offset`` up, so hand-made lab
        pods (.2, .3, …) and CNI pods never collide.
        """
        c, sub = self.cni, node.pod_subnet
        if c.ipam == "host-local":
            ipam: dict[str, Any] = {
                "type": "host-local",
                "ranges": [[{"subnet": str(sub), "rangeStart": str(sub.network_address + c.range_offset),
                             "rangeEnd": str(sub.broadcast_address - 1), "gateway": str(node.pod_gateway)}]],
                "routes": [{"dst": "0.0.0.0/0"}],
                "dataDir": c.data_dir,
            }
        else:
            ipam = {"type": "dhcp"}
        plugin = {"type": c.type, "bridge": self.cluster.bridge, "isGateway": c.is_gateway, "ipMasq": c.ip_masq,
                  "hairpinMode": c.hairpin_mode, "mtu": c.mtu, "ipam": ipam}
        return {"cniVersion": "1.0.0", "name": self.cluster.name, "plugins": [plugin]}


def cni_vars(c: CNI) -> dict[str, Any]:
    from ..cni import PLUGIN_NAME

    plugins = list(c.plugins) or ([c.type] if c.type != PLUGIN_NAME else []) + (
        ["host-local"] if c.ipam == "host-local" else ["dhcp"]) + ["loopback"]
    return {
        "type": c.type, "bin_dir": c.bin_dir, "conf_dir": c.conf_dir, "config_name": c.config_name,
        "source": str(c.source), "plugins": plugins, "own_plugin": c.type == PLUGIN_NAME,
        "sha256": dict(c.sha256), "tarball_sha256": c.tarball_sha256, "data_dir": c.data_dir,
    }


def node_vars(n: Node) -> dict[str, Any]:
    return {
        "name": n.name, "address": n.address, "ip": str(n.ip), "interface": n.interface,
        "groups": list(n.groups), "pod_subnet": str(n.pod_subnet),
        "pod_prefix": n.pod_subnet.prefixlen, "pod_gateway": str(n.pod_gateway),
        "pods": [{"name": p.name, "ip": str(p.ip), "via": p.via} for p in n.pods],
    }


def cluster_vars(c: Cluster) -> dict[str, Any]:
    return {
        "name": c.name, "domain": c.domain, "node_cidr": str(c.node_cidr),
        "pod_cidr": str(c.pod_cidr), "node_prefix": c.node_prefix,
        "service_cidr": str(c.service_cidr), "dns_ip": str(c.dns_ip), "bridge": c.bridge,
        "routing": c.routing, "router": None if c.router is None else str(c.router),
    }
