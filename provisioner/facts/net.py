"""Network facts from ``ip -json``: links, addresses, routes, namespaces."""

from __future__ import annotations

import json
import shlex
from typing import Any

from . import Fact


def _json(text: str, rc: int) -> Any:
    if rc != 0:
        return None
    text = text.strip()
    if not text:
        return []
    try:
        return json.loads(text)
    except ValueError:
        return None


def parse_links(text: str, rc: int) -> dict[str, dict] | None:
    """``ip -json -d link show`` → ``{ifname: {kind, master, up, mtu, mac, index, peer}}`` (``peer``: a veth's
    other end, by ifindex, in whichever namespace it is)."""
    data = _json(text, rc)
    if data is None:
        return None
    out = {}
    for link in data:
        flags = link.get("flags", [])
        out[link["ifname"]] = {
            "kind": (link.get("linkinfo") or {}).get("info_kind"),
            "master": link.get("master"),
            "up": "UP" in flags,
            "mtu": link.get("mtu"),
            "mac": link.get("address"),
            "index": link.get("ifindex"),
            "peer": link.get("link_index"),
        }
    return out


def parse_addrs(text: str, rc: int) -> dict[str, list[str]] | None:
    """``ip -json addr show`` → ``{ifname: ["10.244.1.1/24", ...]}`` (IPv4 only)."""
    data = _json(text, rc)
    if data is None:
        return None
    return {
        a["ifname"]: [f"{i['local']}/{i['prefixlen']}" for i in a.get("addr_info", []) if i.get("family") == "inet"]
        for a in data
    }


def parse_routes(text: str, rc: int) -> list[dict] | None:
    """``ip -json route show`` → ``[{dst, via, dev, protocol}]`` with ``default`` spelled out."""
    data = _json(text, rc)
    if data is None:
        return None
    return [
        {"dst": r.get("dst"), "via": r.get("gateway"), "dev": r.get("dev"), "protocol": str(r.get("protocol", "boot"))}
        for r in data
    ]


def parse_netns(text: str, rc: int) -> list[str] | None:
    data = _json(text, rc)
    if data is None:
        return None
    return [n["name"] for n in data]


def links(netns: str | None = None) -> Fact:
    return Fact(_key("links", netns), _ip(netns, "-d link show"), parse_links)


def addrs(netns: str | None = None) -> Fact:
    return Fact(_key("addrs", netns), _ip(netns, "addr show"), parse_addrs)


def routes(netns: str | None = None) -> Fact:
    return Fact(_key("routes", netns), _ip(netns, "route show table main"), parse_routes)


def netns_list() -> Fact:
    return Fact("netns", "ip -json netns list", parse_netns)


def _key(what: str, netns: str | None) -> str:
    return f"{what}@{netns}" if netns else what


def _ip(netns: str | None, args: str) -> str:
    where = f"-n {shlex.quote(netns)} " if netns else ""
    return f"ip {where}-json {args}"
