"""The routes the inventory implies: one source for the playbook (``pod_routes``), graph and the verify suite."""

from __future__ import annotations

from .inventory.model import Inventory, Node


def pod_routes(inv: Inventory, node: Node) -> list[dict[str, str]]:
    """Routes ``node`` needs to reach other nodes' pods: one per peer, or one via the router."""
    c = inv.cluster
    if c.routing == "router" and node.ip != c.router:
        return [{"dst": str(c.pod_cidr), "via": str(c.router)}]
    return [{"dst": str(n.pod_subnet), "via": str(n.ip)} for n in inv.nodes if n.name != node.name]
