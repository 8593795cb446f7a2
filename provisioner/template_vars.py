"""What ``{{ }}`` in a playbook sees on a node: the inventory as plain dicts and strings.

The model (:mod:`provisioner.inventory.model`) holds what the inventory says and
the decisions made at load; this module turns it into template values and
derives the node's CNI network config; its pod routes come from
:mod:`provisioner.routing`.
"""

from __future__ import annotations

from typing import Any

from .inventory.model import CNI, Cluster, Inventory, Node, Service
from .routing import pod_routes


def template_vars(inv: Inventory, node: Node, shared: dict[str, Any] | None = None) -> dict[str, Any]:
    """``node``, ``cluster``, ``peers`` (every other node), ``nodes``, ``groups``, ``pod_routes``, ``cni``,
    ``cni_conflist``, ``kubernetes``, ``dns``.

    ``shared`` (from :func:`shared_vars`, once per inventory) holds what every node sees alike: the nodes
    and the groups. Made once instead of once per node, binding stays linear in the fleet (200 nodes each
    listing 200 nodes was most of a 200-node bind). Templates cannot change it (the sandbox is immutable)
    and modules copy what they fill in.
    """
    shared = shared if shared is not None else shared_vars(inv)
    return {
        "node": node_vars(node),
        "cluster": cluster_vars(inv.cluster),
        "peers": [v for v in shared["nodes"] if v["name"] != node.name],
        "nodes": shared["nodes"],
        "groups": shared["groups"],
        "pod_routes": pod_routes(inv, node),
        "cni": cni_vars(inv.cni),
        "cni_conflist": cni_conflist(inv, node),
        "kubernetes": inv.kubernetes,
        "dns": inv.dns,
        "services": shared["services"],
    }


def shared_vars(inv: Inventory) -> dict[str, Any]:
    """What every node's templates see alike: ``nodes`` and ``groups``."""
    return {"nodes": [node_vars(n) for n in inv.nodes], "groups": inv.groups(),
            "services": [service_vars(s) for s in inv.services]}


def service_vars(s: Service) -> dict[str, Any]:
    """A service as templates (and the ``services`` module) see it: plain values."""
    return {"name": s.name, "namespace": s.namespace, "cluster_ip": str(s.cluster_ip),
            "ports": [{"name": p.name, "port": p.port, "target_port": p.target_port, "protocol": p.protocol}
                      for p in s.ports],
            "endpoints": [{"node": e.node, "pod": e.pod, "ip": str(e.ip)} for e in s.endpoints]}


def cni_conflist(inv: Inventory, node: Node) -> dict[str, Any]:
    """The node's CNI network config (a conflist, CNI 1.0.0): same bridge and gateway as the hand-made one.

    host-local hands out addresses from ``range_offset`` up, so hand-made lab
    pods (.2, .3, …) and CNI pods never collide; on a dual-stack node it has a range
    set of each family, so every pod gets an address of each.
    """
    c = inv.cni
    if c.ipam == "host-local":
        # one range set per family (host-local then gives each pod an address of each), the primary first
        ipam: dict[str, Any] = {
            "type": "host-local",
            "ranges": [[{"subnet": str(sub), "rangeStart": str(sub.network_address + c.range_offset),
                         "rangeEnd": str(sub.broadcast_address - 1), "gateway": str(gw)}]
                       for sub, gw in zip(node.pod_subnets, node.pod_gateways)],
            "routes": [{"dst": "0.0.0.0/0" if sub.version == 4 else "::/0"} for sub in node.pod_subnets],
            "dataDir": c.data_dir,
        }
    else:
        ipam = {"type": "dhcp"}
    plugin = {"type": c.type, "bridge": inv.cluster.bridge, "isGateway": c.is_gateway, "ipMasq": c.ip_masq,
              "hairpinMode": c.hairpin_mode, "mtu": c.mtu, "ipam": ipam}
    return {"cniVersion": "1.0.0", "name": inv.cluster.name, "plugins": [plugin]}


def cni_vars(c: CNI) -> dict[str, Any]:
    return {
        "type": c.type, "bin_dir": c.bin_dir, "conf_dir": c.conf_dir, "config_name": c.config_name,
        "source": str(c.source), "plugins": list(c.plugins), "own_plugin": c.own_plugin,
        "sha256": dict(c.sha256), "tarball_sha256": c.tarball_sha256, "data_dir": c.data_dir, "mtu": c.mtu,
    }


def node_vars(n: Node) -> dict[str, Any]:
    return {
        "name": n.name, "address": n.address, "ip": str(n.ip), "interface": n.interface,
        "groups": list(n.groups), "pod_subnet": str(n.pod_subnet),
        "pod_prefix": n.pod_subnet.prefixlen, "pod_gateway": str(n.pod_gateway),
        "pods": [{"name": p.name, "ip": str(p.ip), "ips": [str(a) for a in p.ips], "via": p.via} for p in n.pods],
        # one per family, in the cluster's order (the primary first); the singular names are the primary's
        "ips": [str(a) for a in n.ips], "pod_subnets": [str(s) for s in n.pod_subnets],
        "pod_gateways": [str(g) for g in n.pod_gateways], "pod_prefixes": [s.prefixlen for s in n.pod_subnets],
        "bridge_addresses": [f"{g}/{s.prefixlen}" for g, s in zip(n.pod_gateways, n.pod_subnets)],
    }


def cluster_vars(c: Cluster) -> dict[str, Any]:
    return {
        "name": c.name, "domain": c.domain, "node_cidr": str(c.node_cidr),
        "pod_cidr": str(c.pod_cidr), "node_prefix": c.node_prefix,
        "service_cidr": str(c.service_cidr), "dns_ip": str(c.dns_ip), "bridge": c.bridge,
        "routing": c.routing, "router": None if c.router is None else str(c.router),
        "families": list(c.families), "ipv4": 4 in c.families, "ipv6": 6 in c.families,
        "node_cidrs": [str(n) for n in c.node_cidrs], "pod_cidrs": [str(n) for n in c.pod_cidrs],
        "service_cidrs": [str(n) for n in c.service_cidrs], "routers": [str(r) for r in c.routers],
        "node_prefixes": list(c.node_prefixes),
    }
