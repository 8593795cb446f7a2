"""``routes``: a route to every other node's pod subnet via that node's IP.

Routes are added with ``ip route replace … proto 147``: the protocol number
marks them as ours, so a stale route the tool made is removed and a route it
did not make is never touched (a foreign route to the same destination is an
error, not an overwrite).

    ip route replace 10.244.2.0/24 via 192.168.56.12 proto 147
    ip route replace fd00:10:244:2::/64 via fd00:56::12 proto 147     # dual-stack: each family via its own

IPv6 routes are read from ``ip -6 route`` (its own table); reset removes ours of both families.

Past BATCH routes (a mesh of many nodes: N-1 routes on each) they go in one ``ip -batch -``, the same
commands without the leading ``ip``, one per line: one process on the node instead of one per route,
and one step (one marker line back to the controller) instead of N-1::

    ip -batch - <<'PROVISIONER_EOF'
    route replace 10.244.2.0/24 via 192.168.56.12 proto 147
    …
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Any

from ..facts import Fact, Facts, value
from ..facts.net import Routes, Routes6
from ..facts.values import Route
from ..steps import Cmd
from .base import IP, NET, Module, ModuleError, Outcome, Part, schema

PROTO = "147"
BATCH = 8  # up to this many route commands are shown and run one by one, as the manual steps write them


def route_steps(commands: Sequence[tuple[str, ...]]) -> list[Cmd]:
    """``ip ARGS…`` for each of ``commands`` (the arguments after ``ip``), or past BATCH of them one
    ``ip -batch -`` fed them as lines. Every argument is a keyword, a number or an address that ipaddress
    wrote, so a line splits back into exactly these words (checked, never trusted)."""
    if len(commands) <= BATCH:
        return [Cmd(("ip", *argv)) for argv in commands]
    for argv in commands:
        if any(not word or not all(c.isalnum() or c in ".:/" for c in word) for word in argv):
            raise ModuleError(f"routes: {' '.join(argv)!r} cannot go through ip -batch")
    return [Cmd(("ip", "-batch", "-"), stdin="".join(" ".join(argv) + "\n" for argv in commands))]


class RoutesModule(Module):
    name = "routes"
    needs_commands = ("ip",)
    args = schema({
        "routes": {"type": "array", "items": {
            "type": "object", "additionalProperties": False, "required": ["dst", "via"],
            "properties": {"dst": NET, "via": IP}}},
        "proto": {"type": "integer", "minimum": 5, "maximum": 254, "default": int(PROTO)},
    }, ["routes"])

    def facts(self, args: dict[str, Any]) -> list[Fact[Any]]:
        return [Routes()] + ([Routes6()] if any(":" in r["dst"] for r in args["routes"]) else [])

    def reverse_facts(self, args: dict[str, Any]) -> list[Fact[Any]]:
        return [Routes(), Routes6()]  # ours of both families, whatever the inventory says now

    def plan(self, args: dict[str, Any], facts: Facts) -> Outcome:
        proto = str(args["proto"])
        try:
            want = {_net(r["dst"]): str(ipaddress.ip_address(r["via"])) for r in args["routes"]}
        except ValueError as exc:
            raise ModuleError(f"routes: {exc}") from None
        current = (value(facts, Routes()) or []) + _v6(facts)
        ours = {_net(r.dst): r for r in current if r.protocol == proto}
        commands: list[tuple[str, ...]] = []
        notes, parts = [], []
        for r in current:
            dst = _net(r.dst)
            if dst in want and r.protocol != proto:
                raise ModuleError(f"route to {dst} exists (proto {r.protocol}, via {r.via or r.dev}) and was not made by provisioner; remove it first")
        for dst, via in want.items():
            have = ours.get(dst)
            if have is None or have.via != via:
                commands.append(("route", "replace", dst, "via", via, "proto", proto))
                notes.append(f"{dst} via {via}")
                parts.append(Part("route", dst, f"route {dst} via {via} missing" if have is None
                                  else f"route {dst} goes via {have.via or have.dev}, not {via}"))
        for dst, r in ours.items():
            if dst not in want:
                commands.append(("route", "del", dst, "proto", proto))
                notes.append(f"remove stale {dst} via {r.via}")
                parts.append(Part("routes", dst, f"stale route {dst} via {r.via} (made by provisioner, no longer wanted)"))
        if not commands:
            listed = ", ".join(f"{d} via {v}" for d, v in want.items()) or "none wanted"
            return Outcome(reason=f"routes already in place: {listed}")
        return Outcome(route_steps(commands), "; ".join(notes), parts=parts)

    def reverse(self, args: dict[str, Any], facts: Facts) -> Outcome:
        proto = str(args["proto"])
        gone = [("route", "del", _net(r.dst), "proto", proto)
                for r in (value(facts, Routes()) or []) + _v6(facts) if r.protocol == proto]
        return Outcome(route_steps(gone), f"remove {len(gone)} provisioner route(s)") if gone \
            else Outcome(reason="no provisioner routes left")


def _v6(facts: Facts) -> list[Route]:
    """The IPv6 routes, when they were asked for and the node has IPv6."""
    six = facts.get(Routes6())
    return six or []


def _net(dst: str | None) -> str:
    if dst in (None, "default"):
        return "0.0.0.0/0"
    return str(ipaddress.ip_network(dst, strict=False))
