"""Frozen dataclasses for a validated inventory.

Every field is set by the loader (:mod:`.load`): defaults come from the schema,
derived decisions (who logs in and whether through sudo, which plugin files a
CNI type needs, whether kubelet still takes CNI flags) are made there once and
stored here. What templates see is :mod:`provisioner.template_vars`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..addressing import Addr, Net, gateway_for


@dataclass(frozen=True)
class Pod:
    """A lab pod: a network namespace wired to the node's bridge, with an address of each cluster family."""

    name: str
    ips: tuple[Addr, ...]  # one per family, in the cluster's order (the primary first)
    via: str  # "manual": veth by hand; "cni": the installed CNI plugin

    @property
    def ip(self) -> Addr:
        """The address of the primary family."""
        return self.ips[0]


@dataclass(frozen=True)
class Jump:
    """A jump host (a bastion): nodes are reached through it, as ssh's ProxyJump does."""

    user: str
    address: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{self.user}@{host}:{self.port}"


@dataclass(frozen=True)
class Node:
    name: str
    address: str
    port: int
    ips: tuple[Addr, ...]          # the node's address of each family, in the cluster's order
    interface: str
    groups: tuple[str, ...]
    pod_subnets: tuple[Net, ...]   # its pod subnet of each family, in the cluster's order
    pods: tuple[Pod, ...]
    user: str                   # the node's own user, else ssh.user
    identity_file: Path | None  # the node's own key (each Vagrant VM has one), else ssh.identity_file
    sudo: bool                  # commands run through `sudo -n` (ssh.sudo and the user is not root)
    jump: Jump | None = None    # the node's own jump host, else ssh.jump (``jump: none``: reached directly)

    @property
    def ip(self) -> Addr:
        """The node's address of the primary family."""
        return self.ips[0]

    @property
    def pod_subnet(self) -> Net:
        """The node's pod subnet of the primary family."""
        return self.pod_subnets[0]

    @property
    def pod_gateway(self) -> Addr:
        return gateway_for(self.pod_subnet)

    @property
    def pod_gateways(self) -> tuple[Addr, ...]:
        return tuple(gateway_for(s) for s in self.pod_subnets)


@dataclass(frozen=True)
class SSHSettings:
    user: str
    port: int
    identity_file: Path | None
    known_hosts: Path | None
    host_key_policy: str
    sudo: bool
    connect_timeout: float
    jump: Jump | None = None


@dataclass(frozen=True)
class Cluster:
    """The cluster's ranges, one per address family (IPv4, IPv6 or both), in the same order everywhere: the
    first is the primary family (as in Kubernetes' ``--cluster-cidr=10.244.0.0/16,fd00:10:244::/56``)."""

    name: str
    domain: str
    node_cidrs: tuple[Net, ...]
    pod_cidrs: tuple[Net, ...]
    node_prefixes: tuple[int, ...]  # the size of a node's pod subnet, per family
    service_cidrs: tuple[Net, ...]
    dns_ip: Addr
    bridge: str
    routing: str
    routers: tuple[Addr, ...]  # routing: router, one per family; else empty

    @property
    def families(self) -> tuple[int, ...]:
        """``(4,)``, ``(6,)``, ``(4, 6)`` or ``(6, 4)``."""
        return tuple(n.version for n in self.pod_cidrs)

    @property
    def node_cidr(self) -> Net:
        return self.node_cidrs[0]

    @property
    def pod_cidr(self) -> Net:
        return self.pod_cidrs[0]

    @property
    def service_cidr(self) -> Net:
        return self.service_cidrs[0]

    @property
    def node_prefix(self) -> int:
        return self.node_prefixes[0]

    @property
    def router(self) -> Addr | None:
        return self.routers[0] if self.routers else None


@dataclass(frozen=True)
class CNI:
    """The node's CNI network: plugin binaries, their config, and the IPAM range."""

    type: str
    bin_dir: str
    conf_dir: str
    config_name: str
    source: Path
    plugins: tuple[str, ...]  # the files to install: as listed, or what type and ipam need
    sha256: tuple[tuple[str, str], ...]
    tarball_sha256: str | None
    is_gateway: bool
    ip_masq: bool
    hairpin_mode: bool
    mtu: int
    ipam: str
    range_offset: int
    data_dir: str
    weave_ipalloc_range: str

    @property
    def own_plugin(self) -> bool:
        """Is ``type`` the project's own plugin (installed from this package, not from ``source``)?"""
        from ..node_plugin import PLUGIN_NAME

        return self.type == PLUGIN_NAME


@dataclass(frozen=True)
class ServicePort:
    name: str | None
    port: int
    target_port: int
    protocol: str  # TCP or UDP


@dataclass(frozen=True)
class Endpoint:
    """A lab pod behind a service: where it runs and the address traffic is sent to."""

    node: str
    pod: str
    ip: Addr


@dataclass(frozen=True)
class Service:
    """A ClusterIP service made by hand (``services:``): a virtual IP of the service range forwarded to pods."""

    name: str
    namespace: str
    cluster_ip: Addr
    ports: tuple[ServicePort, ...]
    endpoints: tuple[Endpoint, ...]

    @property
    def key(self) -> str:
        """``namespace/name``, as kube-proxy's rule comments and ``kubectl`` name it."""
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class Inventory:
    path: Path
    cluster: Cluster
    ssh: SSHSettings
    nodes: tuple[Node, ...]
    cni: CNI
    kubernetes: dict[str, Any] = field(compare=False)  # schema defaults filled in; cni_flags decided at load
    dns: dict[str, Any] = field(compare=False)
    warnings: tuple[str, ...] = ()
    services: tuple[Service, ...] = ()

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
