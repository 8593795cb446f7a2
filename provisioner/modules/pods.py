"""``pods``: lab pods wired by hand, one network namespace and veth pair each.

The manual steps for pod ``web`` with 10.244.1.2 on bridge v-net-0::

    ip netns add web
    ip link add veth-web mtu 1500 type veth peer name eth0 mtu 1500 netns web   # cni.mtu
    ip link set veth-web master v-net-0 up
    ip link set veth-web type bridge_slave hairpin on      # a pod reaching itself through a service
    ip -n web addr add 10.244.1.2/24 dev eth0
    ip -n web link set eth0 up ; ip -n web link set lo up
    ip -n web route replace default via 10.244.1.1

and on a dual-stack or IPv6 cluster, the pod's IPv6 address (without duplicate
address detection, which would hold it back for about 2 s) and its default route::

    ip -n web addr add fd00:10:244:1::2/64 dev eth0 nodad
    ip -n web route replace default via fd00:10:244:1::1

Each part is checked on its own, so a half-made pod is repaired, not duplicated.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from ..facts import Fact, Facts, value
from ..facts.files import Created
from ..facts.net import Links, Addrs, Routes, Routes6, Netns
from ..steps import Cmd
from .base import IFNAME, IP, PODNAME, Module, ip_family, listed, per_family, ModuleError, Outcome, Part, created_by_apply, schema

POD_IF = "eth0"


def host_veth(pod: str) -> str:
    """The host end of a hand-made pod's veth pair (the pod end is ``eth0`` in the pod's namespace)."""
    return f"veth-{pod}"


class PodsModule(Module):
    name = "pods"
    needs_commands = ("ip",)
    args = schema({
        "bridge": IFNAME,
        "gateway": per_family(IP),
        "prefix": per_family({"type": "integer", "minimum": 1, "maximum": 128}),  # as gateway: one per family
        "mtu": {"type": "integer", "minimum": 68, "maximum": 65535},
        "pods": {"type": "array", "items": {
            "type": "object", "required": ["name", "ip"],
            "properties": {"name": PODNAME, "ip": IP, "ips": {"type": "array", "items": IP, "minItems": 1, "maxItems": 2},
                           "via": {"enum": ["manual", "cni"], "default": "manual"}}}},
    }, ["bridge", "gateway", "prefix", "pods"])

    def _pods(self, args: dict[str, Any]) -> list[dict[str, Any]]:
        return [p for p in args["pods"] if p["via"] == "manual"]

    def facts(self, args: dict[str, Any]) -> list[Fact[Any]]:
        out: list[Fact[Any]] = [Netns(), Links(), Created()]
        families = families_of(args)
        for p in self._pods(args):
            out += [Links(p["name"]), Addrs(p["name"])]
            out += ([Routes(p["name"])] if 4 in families else []) + ([Routes6(p["name"])] if 6 in families else [])
        return out

    def plan(self, args: dict[str, Any], facts: Facts) -> Outcome:
        steps: list[Cmd] = []
        made: list[str] = []
        fixed: list[str] = []
        parts: list[Part] = []
        for pod in self._pods(args):
            pod_steps = self._pod(pod, args, facts)
            steps += pod_steps
            if pod_steps:
                (made if pod["name"] not in (facts[Netns()] or []) else fixed).append(pod["name"])
                parts.append(Part("pod", pod["name"], self._what(pod, args, facts, pod_steps)))
        if not steps:
            names = ", ".join(f"{p['name']} ({', '.join(a.split('/')[0] for a in pod_addresses(p, args))})"
                              for p in self._pods(args)) or "none"
            return Outcome(reason=f"pods already wired to {args['bridge']}: {names}")
        text = "; ".join(x for x in (f"create {', '.join(made)}" if made else "",
                                      f"repair {', '.join(fixed)}" if fixed else "") if x)
        return Outcome(steps, text, parts=parts)

    @staticmethod
    def _what(pod: dict[str, Any], args: dict[str, Any], facts: Facts, steps: list[Cmd]) -> str:
        """What is wrong with a pod that needs ``steps``, in words (graph --live)."""
        name = pod["name"]
        if name not in (facts[Netns()] or []):
            return f"pod {name} missing"
        want = pod_addresses(pod, args)
        have = [a for a in (facts.get(Addrs(name)) or {}).get(POD_IF, []) if ip_family(a) in families_of(args)]
        if sorted(have) != sorted(want):
            return (f"pod {name} has {', '.join(a.split('/')[0] for a in have) or 'no IP'}, "
                    f"not {', '.join(a.split('/')[0] for a in want)}")
        return f"pod {name}: " + "; ".join(s.show() for s in steps[:2]) + (f" (+{len(steps) - 2})" if len(steps) > 2 else "")

    def _pod(self, pod: dict[str, Any], args: dict[str, Any], facts: Facts) -> list[Cmd]:
        name, bridge = pod["name"], args["bridge"]
        veth, wanted = host_veth(name), pod_addresses(pod, args)
        in_pod = ("ip", "-n", name)
        exists = name in (facts[Netns()] or [])
        host = (value(facts, Links()) or {}).get(veth)
        if host is not None and host.kind != "veth":
            raise ModuleError(f"{veth} exists on the node but is not a veth")
        inside = facts.get(Links(name)) if exists else None
        pod_links = inside or {}
        steps: list[Cmd] = []
        if not exists:
            steps.append(Cmd(("ip", "netns", "add", name), creates=("netns", name)))
        if POD_IF not in pod_links:
            if host is not None:  # the peer is gone or elsewhere: start the pair again
                steps.append(Cmd(("ip", "link", "del", veth)))
            mtu = ("mtu", str(args["mtu"])) if "mtu" in args else ()
            steps.append(Cmd(("ip", "link", "add", veth, *mtu, "type", "veth", "peer", "name", POD_IF, *mtu,
                              "netns", name), creates=("link", veth)))
            host = None
        if host is None or host.master != bridge:
            steps.append(Cmd(("ip", "link", "set", veth, "master", bridge)))
            if host is not None and POD_IF in pod_links:
                # back on a bridge made anew (a new MAC): the pod must not keep sending to the old gateway MAC
                steps.append(Cmd(in_pod + ("neigh", "flush", "dev", POD_IF)))
        if "mtu" in args and host is not None and host.mtu != args["mtu"]:
            steps.append(Cmd(("ip", "link", "set", veth, "mtu", str(args["mtu"]))))
        if "mtu" in args and POD_IF in pod_links and pod_links[POD_IF].mtu != args["mtu"]:
            steps.append(Cmd(in_pod + ("link", "set", POD_IF, "mtu", str(args["mtu"]))))
        if host is None or not host.up:
            steps.append(Cmd(("ip", "link", "set", veth, "up")))
        if host is None or host.master != bridge or not host.hairpin:
            # a pod that reaches itself through a service: its packet, DNATed back to it, must leave by the
            # bridge port it came in on (kubelet's hairpin-veth does the same)
            steps.append(Cmd(("ip", "link", "set", veth, "type", "bridge_slave", "hairpin", "on")))
        families = families_of(args)
        have = [a for a in (facts.get(Addrs(name)) or {}).get(POD_IF, []) if ip_family(a) in families] if exists else []
        steps += [Cmd(in_pod + ("addr", "del", a, "dev", POD_IF)) for a in have if a not in wanted]
        for address in wanted:
            if address not in have:
                steps.append(Cmd(in_pod + ("addr", "add", address, "dev", POD_IF) + (("nodad",) if ip_family(address) == 6 else ())))
        for ifname in (POD_IF, "lo"):
            link = pod_links.get(ifname)
            if link is None or not link.up:
                steps.append(Cmd(in_pod + ("link", "set", ifname, "up")))
        for gateway in gateways(args):
            fact = Routes(name) if ip_family(gateway) == 4 else Routes6(name)
            routes = (facts.get(fact) if exists else None) or []
            if not any(r.dst in ("default", "::/0") and r.via == gateway for r in routes):
                steps.append(Cmd(in_pod + ("route", "replace", "default", "via", gateway)))
        return steps

    def reverse(self, args: dict[str, Any], facts: Facts) -> Outcome:
        """Removes the namespaces and veths apply recorded as made; one that was there before stays."""
        steps, kept = [], []
        for pod in self._pods(args):
            name, veth = pod["name"], host_veth(pod["name"])
            if name in (facts[Netns()] or []) and created_by_apply("netns", name, facts):
                # deleting the namespace destroys the pair, host end included
                steps.append(Cmd(("ip", "netns", "del", name)))
            elif veth in (value(facts, Links()) or {}) and created_by_apply("link", veth, facts):
                steps.append(Cmd(("ip", "link", "del", veth)))
            elif name in (facts[Netns()] or []) or veth in (value(facts, Links()) or {}):
                kept.append(name)
        note = f"; {', '.join(kept)} existed before apply: left in place" if kept else ""
        return Outcome(steps, (f"remove {len(steps)} pod namespace(s)/veth(s)" if steps else "no lab pods left") + note)


def gateways(args: dict[str, Any]) -> list[str]:
    """The bridge's gateway of each family, as ``ip route`` shows them (compressed)."""
    try:
        return [str(ipaddress.ip_address(g)) for g in listed(args["gateway"])]
    except ValueError as exc:
        raise ModuleError(f"pods: gateway: {exc}") from None


def families_of(args: dict[str, Any]) -> list[int]:
    return [ip_family(g) for g in gateways(args)]


def pod_addresses(pod: dict[str, Any], args: dict[str, Any]) -> list[str]:
    """The pod's ``eth0`` addresses, one per family, with the prefix of the family's subnet."""
    prefixes = dict(zip(families_of(args), listed(args["prefix"])))
    if len(prefixes) != len(listed(args["prefix"])) or len(prefixes) != len(listed(args["gateway"])):
        raise ModuleError("pods: gateway and prefix give one value per family, in the same order")
    try:
        ips = [ipaddress.ip_address(a) for a in pod.get("ips") or [pod["ip"]]]
    except ValueError as exc:
        raise ModuleError(f"pods: pod {pod['name']}: {exc}") from None
    if sorted(a.version for a in ips) != sorted(prefixes):
        raise ModuleError(f"pods: pod {pod['name']} has {', '.join(map(str, ips))}: one address of each family the "
                          f"gateways have ({', '.join(gateways(args))})")
    return [str(ipaddress.ip_interface(f"{a}/{prefixes[a.version]}")) for a in ips]
