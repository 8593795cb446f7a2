"""``provision graph``: the pod network as a picture, planned (from the inventory) or live (with drift).

:func:`plan_graph` builds the graph as data from the inventory alone: the node
network, each node with its interface, its bridge holding the pod gateway, its
pods, its pod routes (one per peer, or one via the router), the service range and
the cluster DNS IP. :func:`drift` turns what ``plan`` would change on a node (the
modules' own plans over the node's facts) into differences on graph elements;
:func:`mark` puts them on the graph. :func:`to_dot`
draws it with Graphviz (the ``graphviz`` package writes DOT without Graphviz
installed; SVG and PNG need Debian's ``graphviz`` for ``dot``).

Every label is data passed to the graphviz package, which quotes it: no
inventory text is pasted into DOT by hand.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any

from .addressing import inside
from .errors import printable
from .facts.values import Route
from .inventory.model import Inventory, Node
from .modules.base import Outcome, Part
from .modules.routes import PROTO
from .routing import pod_routes

if TYPE_CHECKING:
    import graphviz

RED = "#d62728"


def plan_graph(inv: Inventory, hosts: list[str] | None = None) -> dict[str, Any]:
    """``{"nodes": [...], "edges": [...], "drift": []}``: what the inventory says, as graph elements with ids."""
    c = inv.cluster
    chosen = [n for n in inv.nodes if hosts is None or n.name in hosts]
    names = {n.name for n in chosen}
    nodes: list[dict[str, Any]] = [
        {"id": "net", "kind": "network", "label": "node network\n" + "\n".join(map(str, c.node_cidrs))},
        {"id": "svc", "kind": "services", "label": f"services {', '.join(map(str, c.service_cidrs))}\ncluster DNS {c.dns_ip}\n"
                                                   f"pods {', '.join(map(str, c.pod_cidrs))}"},
    ]
    edges: list[dict[str, Any]] = []
    for n in chosen:
        router = c.routing == "router" and n.ip == c.router
        nodes.append({"id": f"node:{n.name}", "kind": "router" if router else "node", "node": n.name,
                      "label": f"{n.name}{' (router)' if router else ''}\n{', '.join(map(str, n.ips))} on {n.interface}"})
        nodes.append({"id": f"bridge:{n.name}", "kind": "bridge", "node": n.name,
                      "label": f"{c.bridge}\n" + "\n".join(f"{g}/{s.prefixlen}" for g, s in zip(n.pod_gateways, n.pod_subnets))
                      + "\npods " + ", ".join(map(str, n.pod_subnets))})
        edges.append({"id": f"uplink:{n.name}", "kind": "uplink", "from": f"node:{n.name}", "to": "net", "label": n.interface})
        edges.append({"id": f"hosts:{n.name}", "kind": "bridge", "from": f"bridge:{n.name}", "to": f"node:{n.name}", "label": ""})
        for p in n.pods:
            ip = "\n".join(map(str, p.ips)) if p.via == "manual" else f"from {', '.join(map(str, n.pod_subnets))} (CNI)"
            nodes.append({"id": f"pod:{n.name}:{p.name}", "kind": "pod", "node": n.name, "label": f"{p.name}\n{ip}"})
            edges.append({"id": f"veth:{n.name}:{p.name}", "kind": "veth", "from": f"pod:{n.name}:{p.name}",
                          "to": f"bridge:{n.name}", "label": "eth0"})
        table = pod_routes(inv, n)
        nodes.append({"id": f"routes:{n.name}", "kind": "routes", "node": n.name,
                      "label": "pod routes\n" + "\n".join(f"{r['dst']} via {r['via']}" for r in table)})
        edges.append({"id": f"table:{n.name}", "kind": "table", "from": f"node:{n.name}", "to": f"routes:{n.name}",
                      "label": ""})
        for r in table:
            target = _node_by_ip(inv, r["via"])  # a node left out by --limit: the route goes to the node network
            edges.append({"id": f"route:{n.name}:{r['dst']}", "kind": "route", "from": f"node:{n.name}",
                          "to": f"node:{target}" if target in names else "net", "label": f"{r['dst']} via {r['via']}",
                          "dst": r["dst"], "via": r["via"]})
    for sv in inv.services:  # drawn once for the cluster: every node forwards its cluster IP alike
        ports = ", ".join(f"{p.port}/{p.protocol}" + (f"→{p.target_port}" if p.target_port != p.port else "")
                          for p in sv.ports)
        nodes.append({"id": f"service:{sv.key}", "kind": "service",
                      "label": f"{sv.key}\n{sv.cluster_ip}\n{ports}" + ("" if sv.endpoints else "\nno endpoints: refused")})
        for e in sv.endpoints:
            if e.node in names:
                edges.append({"id": f"endpoint:{sv.key}:{e.node}:{e.pod}", "kind": "endpoint", "from": f"service:{sv.key}",
                              "to": f"pod:{e.node}:{e.pod}", "label": ""})
    return {"nodes": nodes, "edges": edges, "drift": [], "notes": []}


def _node_by_ip(inv: Inventory, ip: str) -> str | None:
    return next((n.name for n in inv.nodes if ip in map(str, n.ips)), None)


def drift(inv: Inventory, node: Node, planned: list[tuple[Any, Outcome | str]] | None,
          routes: list[Route] | None = None, error: str | None = None) -> list[dict[str, Any]]:
    """What ``plan`` would change on the node, as ``[{"id": graph element, "what": text}]`` (empty: no drift).

    ``planned`` holds each task and its plan over the node's facts (the same plan ``provision plan``
    makes: one source of truth), or the text of why it cannot be planned; ``None`` with ``error``: the
    node could not be read. A plan's parts go on the piece they mend (bridge, pod, route); a change
    without parts (binaries, the conflist, resolv.conf, sysctls, kubelet…) goes on the node with its task
    name. Routes in the pod range that no task would touch (``routes``) are listed as ``notes``, not drift.
    """
    if planned is None:
        return [{"id": f"node:{node.name}", "what": printable(f"unreachable: {error or 'no answer'}")}]
    out: list[dict[str, Any]] = []
    for task, outcome in planned:
        if isinstance(outcome, str):
            out.append({"id": f"node:{node.name}", "what": f"{task.name}: cannot be planned: {outcome}"})
        elif outcome.changed and outcome.parts:
            out += [{"id": _element(node, part), "what": part.what} for part in outcome.parts]
        elif outcome.changed:
            out.append({"id": f"node:{node.name}", "what": f"{task.name}: {outcome.reason}"})
    out += [{**note, "note": True} for note in _foreign(inv, node, routes or [])]
    return [{**d, "what": printable(d["what"])} for d in out]  # addresses and names read from the node: data


def _element(node: Node, part: Part) -> str:
    if part.kind == "route":
        return f"route:{node.name}:{part.name}"
    if part.kind == "pod":
        return f"pod:{node.name}:{part.name}"
    if part.kind in ("bridge", "routes"):
        return f"{part.kind}:{node.name}"
    if part.kind == "service":
        return f"service:{part.name}"
    return f"node:{node.name}"


def _foreign(inv: Inventory, node: Node, routes: list[Route]) -> list[dict[str, Any]]:
    """Routes into the pod range that the inventory does not ask for and provisioner did not make: not drift
    (plan never touches a route it did not make), but worth seeing."""
    expected = {r["dst"] for r in pod_routes(inv, node)}
    out = []
    for r in routes:
        net = _network(r.dst) if r.dst and r.dst != "default" else None
        if (r.via and net is not None and any(inside(net, c) for c in inv.cluster.pod_cidrs) and r.dst not in expected
                and net not in node.pod_subnets and r.protocol != PROTO):
            out.append({"id": f"routes:{node.name}", "what": f"foreign route {r.dst} via {r.via}"})
    return out


def _network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None


def mark(graph: dict[str, Any], found: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """The graph with each node's drift put on it: the element turns red with the text (a route's text goes on
    the node's routes box too); notes (foreign routes) are added in grey and are not drift."""
    by_id = {e["id"]: e for e in graph["nodes"] + graph["edges"]}
    graph.setdefault("notes", [])
    for node, items in found.items():
        for item in items:
            note = item.get("note", False)
            graph["notes" if note else "drift"].append({"node": node, "id": item["id"], "what": item["what"]})
            targets = [by_id.get(item["id"])]
            if item["id"].startswith("route:"):
                targets.append(by_id.get(f"routes:{node}"))
            for target in targets:
                if target is not None:
                    target.setdefault("notes" if note else "drift", []).append(item["what"])
    return graph


SHAPES = {"network": ("ellipse", "#e8f0fe"), "services": ("note", "#fff7e0"), "node": ("box3d", "#eeeeee"),
          "router": ("doubleoctagon", "#ffe0e0"), "bridge": ("box", "#e0f5e0"), "pod": ("component", "#ffffff"),
          "routes": ("note", "#f4f8ff"), "service": ("hexagon", "#fdebd0")}


def to_dot(graph: dict[str, Any], title: str) -> graphviz.Graph:
    """A ``graphviz.Graph``: one cluster per node; routes between nodes; drift in red with its text."""
    import graphviz

    g = graphviz.Graph("pod-network", graph_attr={"label": title, "labelloc": "t", "fontname": "Helvetica",
                                                  "rankdir": "TB", "splines": "true", "nodesep": "0.4"},
                       node_attr={"fontname": "Helvetica", "fontsize": "10", "style": "filled"},
                       edge_attr={"fontname": "Helvetica", "fontsize": "9"})
    ids = {n["id"]: f"n{i}" for i, n in enumerate(graph["nodes"])}  # DOT reads "a:b" as node a, port b
    by_node: dict[str, list[dict[str, Any]]] = {}
    for n in graph["nodes"]:
        by_node.setdefault(n.get("node", ""), []).append(n)
    for n in by_node.pop("", []):
        _add_node(g, ids[n["id"]], n)
    for k, (name, members) in enumerate(by_node.items()):
        with g.subgraph(name=f"cluster_{k}") as sub:
            sub.attr(label=name, style="rounded", color="#999999")
            for n in members:
                _add_node(sub, ids[n["id"]], n)
    for e in graph["edges"]:
        text = "\n".join([e["label"], *e.get("drift", []), *e.get("notes", [])])
        attrs = {"label": text, "id": e["id"]}
        if e["kind"] == "route":  # the next hop; the route's text is in the node's "pod routes" box
            attrs = {"id": e["id"], "style": "dashed", "color": "#1f77b4", "dir": "forward", "constraint": "false",
                     "arrowsize": "0.6", "tooltip": text}
        elif e["kind"] == "table":
            attrs = {"id": e["id"], "style": "dotted", "arrowhead": "none"}
        elif e["kind"] == "endpoint":  # a service's traffic goes to this pod
            attrs = {"id": e["id"], "style": "dashed", "color": "#d35400", "dir": "forward", "constraint": "false",
                     "arrowsize": "0.6"}
        if e.get("drift"):
            attrs.update(color=RED, fontcolor=RED, penwidth="2")
        g.edge(ids[e["from"]], ids[e["to"]], **attrs)
    return g


def _add_node(g: graphviz.Graph, dot_id: str, n: dict[str, Any]) -> None:
    shape, fill = SHAPES[n["kind"]]
    attrs = {"label": n["label"], "shape": shape, "fillcolor": fill, "id": n["id"]}
    if n.get("drift") or n.get("notes"):
        attrs["label"] = "\n".join([n["label"], *n.get("drift", []), *n.get("notes", [])])
    if n.get("drift"):
        attrs.update(color=RED, fontcolor=RED, penwidth="2")
    g.node(dot_id, **attrs)
