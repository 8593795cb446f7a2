"""``bridge``: the node's pod bridge, holding the gateway address of its pod subnet.

The manual steps it replaces::

    ip link add v-net-0 type bridge
    ip addr add 10.244.1.1/24 dev v-net-0
    ip link set v-net-0 up
    ip link set v-net-0 mtu 1500      # cni.mtu

and on a dual-stack or IPv6 cluster the IPv6 gateway too, without duplicate
address detection (a new address waits about 2 s for it, and routes through it
fail meanwhile)::

    ip addr add fd00:10:244:1::1/64 dev v-net-0 nodad

A wrong address of a family the bridge is given is removed (the CNI bridge
plugin would refuse a bridge whose address differs from its gateway); addresses
of the other family are not this task's.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from ..facts import Fact, Facts, value
from ..facts.files import Created
from ..facts.net import Links, Addrs
from ..steps import Cmd
from .base import NET, IFNAME, Module, ip_family, listed, per_family, ModuleError, Outcome, Part, created_by_apply, schema


def _old_mtu(name: str, facts: Facts) -> int | None:
    """The MTU a bridge apply did not make had before apply changed it (recorded as ``mtu NAME OLD``)."""
    for kind, entry in sorted(facts.get(Created()) or ()):
        bridge, _, old = entry.partition(" ")
        if kind == "mtu" and bridge == name and old.isascii() and old.isdigit():
            return int(old)
    return None


class BridgeModule(Module):
    name = "bridge"
    needs_commands = ("ip",)
    args = schema({"name": IFNAME, "address": per_family(NET),
                   "mtu": {"type": "integer", "minimum": 68}}, ["name", "address"])

    def facts(self, args: dict[str, Any]) -> list[Fact[Any]]:
        return [Links(), Addrs(), Created()]

    def plan(self, args: dict[str, Any], facts: Facts) -> Outcome:
        name, wanted = args["name"], bridge_addresses(args["address"])
        address = ", ".join(wanted)
        families = {ip_family(a) for a in wanted}
        link = (value(facts, Links()) or {}).get(name)
        have = [a for a in (facts[Addrs()] or {}).get(name, []) if ip_family(a) in families]
        steps = []
        parts = []
        if link is None:
            steps.append(Cmd(("ip", "link", "add", name, "type", "bridge"), creates=("link", name)))
            parts.append(Part("bridge", name, f"bridge {name} missing"))
        elif link.kind != "bridge":
            raise ModuleError(f"{name} exists but is a {link.kind or 'plain'} link, not a bridge; remove it or pick another cluster.bridge")
        elif sorted(have) != sorted(wanted):
            parts.append(Part("bridge", name, f"bridge {name} has {', '.join(have) or 'no address'}, not {address}"))
        for other in have:
            if other not in wanted:
                steps.append(Cmd(("ip", "addr", "del", other, "dev", name)))
        for a in wanted:
            if a not in have:
                # on a bridge of someone else's, reset takes away only this address
                mine = link is None or created_by_apply("link", name, facts)
                steps.append(Cmd(("ip", "addr", "add", a, "dev", name) + (("nodad",) if ip_family(a) == 6 else ()),
                                 creates=None if mine else ("addr", f"{name} {a}")))
        if "mtu" in args and link is not None and link.mtu != args["mtu"]:
            parts.append(Part("bridge", name, f"bridge {name} has MTU {link.mtu}, not {args['mtu']}"))
        if "mtu" in args and (link is None or link.mtu != args["mtu"]):
            # on a bridge of someone else's, the MTU it had is written down for reset to give back
            old = None if link is None or created_by_apply("link", name, facts) or _old_mtu(name, facts) else link.mtu
            steps.append(Cmd(("ip", "link", "set", name, "mtu", str(args["mtu"])),
                             creates=None if old is None else ("mtu", f"{name} {old}")))
        if link is None or not link.up:
            steps.append(Cmd(("ip", "link", "set", name, "up")))
            if link is not None:
                parts.append(Part("bridge", name, f"bridge {name} is down"))
        if not steps:
            return Outcome(reason=f"bridge {name} already up with {address}")
        return Outcome(steps, f"bridge {name}: " + ("create" if link is None else "repair") + f" with {address}",
                       parts=parts)

    def reverse(self, args: dict[str, Any], facts: Facts) -> Outcome:
        name = args["name"]
        link = (value(facts, Links()) or {}).get(name)
        if link is None:
            return Outcome(reason=f"bridge {name} is already absent")
        if link.kind != "bridge":
            return Outcome(reason=f"{name} is not a bridge; left alone")
        if created_by_apply("link", name, facts):
            return Outcome([Cmd(("ip", "link", "del", name))], f"delete bridge {name}")
        added = [a for a in (facts[Addrs()] or {}).get(name, []) if created_by_apply("addr", f"{name} {a}", facts)]
        old = _old_mtu(name, facts)
        undo_mtu = old is not None and link.mtu != old
        steps = [Cmd(("ip", "addr", "del", a, "dev", name)) for a in added]
        if undo_mtu:
            steps.append(Cmd(("ip", "link", "set", name, "mtu", str(old))))
        if steps:
            what = added + ([f"the MTU change (back to {old})"] if undo_mtu else [])
            return Outcome(steps, f"bridge {name} existed before apply: remove only {', '.join(what)}")
        return Outcome(reason=f"bridge {name} existed before apply (not recorded as made by provisioner): left in place")


def bridge_addresses(given: str | list[str]) -> list[str]:
    """The bridge's addresses as ``ip addr`` shows them (``fd00:10:244:1::1/64``, compressed), one per family."""
    try:
        out = [str(ipaddress.ip_interface(a)) for a in listed(given)]
    except ValueError as exc:
        raise ModuleError(f"bridge address: {exc}") from None
    if len({ip_family(a) for a in out}) != len(out):
        raise ModuleError(f"bridge address: one per family, not {', '.join(out)}")
    return out
