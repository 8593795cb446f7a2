"""Network facts from ``ip -json``: links, addresses, routes, namespaces."""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from typing import Any

from ..shell import sh
from . import Fact, T
from .values import Link, Route


def _json(text: str, rc: int) -> list[Any] | None:
    """``ip -json`` output: a list of objects; None when ``ip`` failed or printed no JSON. A list holding
    anything but objects is a wrong shape (ValueError: the node's answer could not be read)."""
    if rc != 0:
        return None
    text = text.strip()
    if not text:
        return []
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, list) or not all(isinstance(x, dict) for x in data):
        raise ValueError("not a list of objects")
    return data


def _str(value: Any, what: str) -> str:
    """A name or word from ``ip -json``: a string without control characters."""
    if not isinstance(value, str) or not value.isprintable() or len(value) > 256:
        raise ValueError(f"{what} is not a plain string: {value!r:.60}")
    return value


def _maybe_str(value: Any, what: str) -> str | None:
    """:func:`_str`, or None where ``ip`` left the key out."""
    return None if value is None else _str(value, what)


def _int(value: Any, what: str, optional: bool = True) -> int | None:
    if value is None and optional:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2 ** 32:
        raise ValueError(f"{what} is not a number: {value!r:.60}")
    return value


def _address(value: Any, what: str) -> str:
    """An IP address as ``ip`` prints it (checked: a node cannot slip text into what modules compare and print)."""
    return str(ipaddress.ip_address(_str(value, what)))


def _destination(value: Any) -> str | None:
    if value is None:
        return None
    text = _str(value, "route dst")
    return text if text == "default" else str(ipaddress.ip_network(text, strict=False))


def parse_links(text: str, rc: int) -> dict[str, Link] | None:
    """``ip -json -d link show`` → ``{ifname: Link}`` (``peer``: a veth's other end, by ifindex, in whichever
    namespace it is)."""
    data = _json(text, rc)
    if data is None:
        return None
    out = {}
    for link in data:
        flags = link.get("flags", [])
        info = link.get("linkinfo") or {}
        if not isinstance(flags, list) or not isinstance(info, dict):
            raise ValueError("flags or linkinfo of the wrong type")
        out[_str(link.get("ifname"), "ifname")] = Link(
            kind=_maybe_str(info.get("info_kind"), "info_kind"),
            master=_maybe_str(link.get("master"), "master"),
            up="UP" in flags,
            mtu=_int(link.get("mtu"), "mtu"),
            mac=_maybe_str(link.get("address"), "address"),
            index=_int(link.get("ifindex"), "ifindex"),
            peer=_int(link.get("link_index"), "link_index"),
            hairpin=_hairpin(info),
        )
    return out


def _hairpin(info: dict[str, Any]) -> bool | None:
    if info.get("info_slave_kind") != "bridge":
        return None
    data = info.get("info_slave_data") or {}
    if not isinstance(data, dict) or not isinstance(data.get("hairpin", False), bool):
        raise ValueError("info_slave_data of the wrong type")
    return bool(data.get("hairpin", False))


def parse_addrs(text: str, rc: int) -> dict[str, list[str]] | None:
    """``ip -json addr show`` → ``{ifname: ["10.244.1.1/24", "fd00:10:244:1::1/64", ...]}``: IPv4, and IPv6
    of global scope (the link-local ``fe80::`` address every IPv6 link gets is nobody's to manage)."""
    data = _json(text, rc)
    if data is None:
        return None
    out = {}
    for a in data:
        infos = a.get("addr_info", [])
        if not isinstance(infos, list) or not all(isinstance(i, dict) for i in infos):
            raise ValueError("addr_info of the wrong type")
        out[_str(a.get("ifname"), "ifname")] = [
            f"{_address(i.get('local'), 'local')}/{_int(i.get('prefixlen'), 'prefixlen', optional=False)}"
            for i in infos if i.get("family") == "inet" or (i.get("family") == "inet6" and i.get("scope") == "global")]
    return out


def parse_routes(text: str, rc: int) -> list[Route] | None:
    """``ip -json route show`` → ``[Route]`` with ``default`` spelled out."""
    data = _json(text, rc)
    if data is None:
        return None
    return [
        Route(dst=_destination(r.get("dst")),
              via=None if r.get("gateway") is None else _address(r.get("gateway"), "gateway"),
              dev=_maybe_str(r.get("dev"), "dev"),
              protocol=str(_int(r["protocol"], "protocol") if isinstance(r.get("protocol"), int)
                           else _str(r.get("protocol", "boot"), "protocol")))
        for r in data
    ]


def parse_netns(text: str, rc: int) -> list[str] | None:
    data = _json(text, rc)
    if data is None:
        return None
    return [_str(n.get("name"), "netns name") for n in data]


@dataclass(frozen=True)
class _IPFact(Fact[T]):
    """``ip -json …`` in the node's own namespace, or (``netns``) in a named one."""

    netns: str | None = None
    ARGS = ""

    def command(self) -> str:
        where = sh("-n {} ", self.netns) if self.netns else ""
        return f"ip {where}-json {self.ARGS}"


@dataclass(frozen=True)
class Links(_IPFact[dict[str, Link] | None]):
    """``{ifname: {kind, master, up, mtu, mac, index, peer}}`` (from ``ip -d addr``, which Addrs reads too:
    the gather script runs it once for both)."""

    ARGS = "-d addr show"

    def process(self, stdout: str, rc: int) -> dict[str, Link] | None:
        return parse_links(stdout, rc)


@dataclass(frozen=True)
class Addrs(_IPFact[dict[str, list[str]] | None]):
    """``{ifname: ["10.244.1.1/24", "fd00:10:244:1::1/64", …]}`` (IPv4, and IPv6 of global scope)."""

    ARGS = "-d addr show"

    def process(self, stdout: str, rc: int) -> dict[str, list[str]] | None:
        return parse_addrs(stdout, rc)


@dataclass(frozen=True)
class Routes(_IPFact[list[Route] | None]):
    """The main table's routes, as :class:`~provisioner.facts.values.Route` values."""

    ARGS = "route show table main"

    def process(self, stdout: str, rc: int) -> list[Route] | None:
        return parse_routes(stdout, rc)


@dataclass(frozen=True)
class Routes6(_IPFact[list[Route] | None]):
    """The main table's IPv6 routes (``default`` is ``::/0``); None where the kernel has no IPv6."""

    ARGS = "-6 route show table main"

    def process(self, stdout: str, rc: int) -> list[Route] | None:
        routes = parse_routes(stdout, rc)
        return None if routes is None else [r if r.dst != "default" else Route("::/0", r.via, r.dev, r.protocol)
                                            for r in routes]


@dataclass(frozen=True)
class Netns(Fact[list[str] | None]):
    """Names of the node's network namespaces (``ip netns``)."""

    def command(self) -> str:
        return "ip -json netns list"

    def process(self, stdout: str, rc: int) -> list[str] | None:
        return parse_netns(stdout, rc)
