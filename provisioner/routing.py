"""The routes the inventory implies: one source for the playbook (``pod_routes``), graph and the verify suite."""

from __future__ import annotations

import threading

from .inventory.model import Inventory, Node

_LAST: tuple[Inventory, dict[str, list[dict[str, str]]]] | None = None
_LOCK = threading.Lock()


def _route_to(inv: Inventory) -> dict[str, list[dict[str, str]]]:
    """Node name → the routes to that node's pod subnets (one per family, via its address of the family), made
    once per inventory: every node's mesh shares these (N lists of N-1 routes were N² dicts and strings, most
    of what a 200-node run held)."""
    global _LAST
    with _LOCK:
        if _LAST is None or _LAST[0] is not inv:
            _LAST = (inv, {n.name: [{"dst": str(s), "via": str(ip)} for s, ip in zip(n.pod_subnets, n.ips)]
                           for n in inv.nodes})
        return _LAST[1]


def pod_routes(inv: Inventory, node: Node) -> list[dict[str, str]]:
    """Routes ``node`` needs to reach other nodes' pods: one per peer and family, or one per family via the
    router. The route values are shared between nodes: read them, never change them."""
    c = inv.cluster
    if c.routing == "router" and node.ip != c.router:
        return [{"dst": str(net), "via": str(router)} for net, router in zip(c.pod_cidrs, c.routers)]
    to = _route_to(inv)
    return [r for n in inv.nodes if n.name != node.name for r in to[n.name]]
