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
class Inventory:
    path: Path
    cluster: Cluster
    ssh: SSHSettings
    nodes: tuple[Node, ...]
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
            **self.extra,
        }


    def pod_routes(self, node: Node) -> list[dict[str, str]]:
        """Routes ``node`` needs to reach other nodes' pods: one per peer, or one via the router."""
        c = self.cluster
        if c.routing == "router" and node.ip != c.router:
            return [{"dst": str(c.pod_cidr), "via": str(c.router)}]
        return [{"dst": str(n.pod_subnet), "via": str(n.ip)} for n in self.nodes if n.name != node.name]


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
