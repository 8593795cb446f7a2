"""``provision facts``: what each node looks like, from one SSH exec per node.

Node IP, the interface holding it and its MAC, the node network worked out like
ipcalc, listening TCP ports with their processes (what ``ss -ltnp`` shows), the
pod bridge and its addresses, the pod routes.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from .. import addressing
from ..facts import Fact, Facts
from ..facts.net import Addrs, Links, Routes
from ..facts.system import Listening
from ..inventory import Inventory, Node
from ..modules.routes import PROTO

def wanted() -> list[Fact[Any]]:
    return [Links(), Addrs(), Routes(), Listening()]


def summarize(inv: Inventory, node: Node, values: Facts) -> dict[str, Any]:
    links, addrs, routes = values[Links()] or {}, values[Addrs()] or {}, values[Routes()] or []
    listening = values[Listening()]
    holder = next(((ifname, a) for ifname, lst in addrs.items() for a in lst if a.split("/")[0] == str(node.ip)), None)
    ifname, cidr = holder if holder else (None, None)
    network = None
    if cidr:
        calc = addressing.ipcalc(cidr)
        network = {k: calc[k] for k in ("Network", "Netmask", "HostMin", "HostMax", "Broadcast", "Hosts/Net")}
    bridge = inv.cluster.bridge
    pod_routes = [r for r in routes if r.protocol == PROTO or r.dev == bridge]
    own, br = links.get(ifname) if ifname else None, links.get(bridge)
    return {
        "node": node.name, "ip": str(node.ip), "cidr": cidr, "interface": ifname,
        "interface_expected": node.interface, "mac": own.mac if own else None,
        "network": network,
        "listening": None if listening is None else [asdict(s) for s in listening],
        "bridge": {"name": bridge, "present": bridge in links, "up": br.up if br else False,
                   "addresses": addrs.get(bridge, [])},
        "pod_routes": [{"dst": r.dst, "via": r.via, "dev": r.dev, "protocol": r.protocol} for r in pod_routes],
    }


def table(results: dict[str, dict[str, Any]]) -> str:
    rows = [("NODE", "IP", "INTERFACE", "MAC", "NETWORK", "HOSTS", "BRIDGE", "LISTENING (tcp)")]
    notes = []
    for name, f in results.items():
        if "error" in f:
            rows.append((name, "-", "-", "-", "-", "-", "-", f["error"][:60]))
            continue
        n = f["network"] or {}
        hosts = f"{n.get('HostMin', '-')}-{n.get('HostMax', '-')}" if n else "-"
        br = f["bridge"]
        bridge = f"{br['name']} {','.join(br['addresses']) or '(no address)'}" + ("" if br["up"] else " DOWN") if br["present"] else "-"
        listen = ", ".join(f"{x['port']}:{'/'.join(p['name'] for p in x['processes']) or '?'}" for x in f["listening"] or [])
        rows.append((name, f["cidr"] or f"{f['ip']} (not found!)", f["interface"] or "-", f["mac"] or "-",
                     f"{n.get('Network', '-')} ({n.get('Netmask', '-')})" if n else "-", hosts, bridge, listen))
        if f["interface"] and f["interface"] != f["interface_expected"]:
            notes.append(f"{name}: the node IP is on {f['interface']}, the inventory says {f['interface_expected']}")
        routes = ", ".join(f"{r['dst']} via {r['via'] or r['dev']}" for r in f["pod_routes"])
        notes.append(f"{name} pod routes: {routes or 'none'}")
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    return "\n".join(lines + [""] + notes)
