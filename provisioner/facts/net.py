"""Network facts from ``ip -json``: links, addresses, routes, namespaces."""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
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


@dataclass(frozen=True)
class _IPFact(Fact):
    """``ip -json …`` in the node's own namespace, or (``netns``) in a named one."""

    netns: str | None = None
    ARGS = ""

    def command(self) -> str:
        where = f"-n {shlex.quote(self.netns)} " if self.netns else ""
        return f"ip {where}-json {self.ARGS}"


@dataclass(frozen=True)
class Links(_IPFact):
    """``{ifname: {kind, master, up, mtu, mac, index, peer}}`` (from ``ip -d addr``, which Addrs reads too:
    the gather script runs it once for both)."""

    ARGS = "-d addr show"

    def process(self, stdout: str, rc: int):
        return parse_links(stdout, rc)


@dataclass(frozen=True)
class Addrs(_IPFact):
    """``{ifname: ["10.244.1.1/24", …]}`` (IPv4)."""

    ARGS = "-d addr show"

    def process(self, stdout: str, rc: int):
        return parse_addrs(stdout, rc)


@dataclass(frozen=True)
class Routes(_IPFact):
    """``[{dst, via, dev, protocol}]`` of the main table."""

    ARGS = "route show table main"

    def process(self, stdout: str, rc: int):
        return parse_routes(stdout, rc)


@dataclass(frozen=True)
class Netns(Fact):
    """Names of the node's network namespaces (``ip netns``)."""

    def command(self) -> str:
        return "ip -json netns list"

    def process(self, stdout: str, rc: int):
        return parse_netns(stdout, rc)
