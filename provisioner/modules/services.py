"""``services``: ClusterIP services by hand, as kube-proxy's iptables mode makes them (see
:mod:`provisioner.service_rules` for the rules' shape).

All of our chains are written in one ``iptables-restore --noflush`` per run (each table one commit, so a
packet never meets half of them), and entered from the built-in chains by one jump each::

    iptables-restore --noflush <<EOF … EOF        # PROV-SERVICES, PROV-SVC-…, PROV-SEP-…, PROV-POSTROUTING
    iptables -t nat -I PREROUTING 1 -m comment --comment "provisioner services" -j PROV-SERVICES

Our chains are named ``PROV-…`` (as our routes are proto 147): reset removes those and the jumps to them,
and nothing of a real kube-proxy's. On a node where kube-proxy is installed this does nothing and says so.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from typing import Any

from ..facts import Fact, Facts, value
from ..facts.files import Created, Exists, Sysctl, sysctl_path
from ..facts.net import Addrs, Links
from ..facts.system import Commands, IptablesRules, IpvsRules, SystemdUnit
from ..inventory.model import Endpoint, Service, ServicePort
from ..service_rules import (IPVS_LINK, JUMPS, POSTROUTING, PREFIX, filter_rules, ipvs_key, ipvs_nat_rules,
                             ipvs_services, ipvs_vip, nat_rules, restore_of)
from ..steps import Cmd
from .base import IP, Module, ModuleError, Outcome, Part, created_by_apply, schema

JUMP_COMMENT = "provisioner services"
IPVS_COMMANDS = ("ipvsadm",)
# ipvsadm -R, never Debian's ipvsadm-restore: that script runs `ipvsadm -C` first, clearing every virtual service
# on the node (anyone's: keepalived's, a real kube-proxy's) before restoring ours (found on the VM lab)
IPVS_RESTORE = ("ipvsadm", "-R")
VS_CONNTRACK = "net.ipv4.vs.conntrack"  # IPVS connections seen by conntrack, so that iptables can masquerade them
_PORT = {"type": "object", "additionalProperties": False, "required": ["port", "target_port", "protocol"],
         "properties": {"name": {"anyOf": [{"type": "string", "pattern": r"\A[a-z0-9-]{1,63}\Z"}, {"type": "null"}]},
                        "port": {"type": "integer", "minimum": 1, "maximum": 65535},
                        "target_port": {"type": "integer", "minimum": 1, "maximum": 65535},
                        "protocol": {"enum": ["TCP", "UDP"]}}}
_LABEL = {"type": "string", "pattern": r"\A[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\Z"}


def services_of(args: dict[str, Any]) -> list[Service]:
    """The module's ``services`` argument (plain values, from the inventory) as :class:`Service` values."""
    try:
        return [Service(s["name"], s["namespace"], ipaddress.ip_address(s["cluster_ip"]),
                        tuple(ServicePort(p.get("name"), p["port"], p["target_port"], p["protocol"]) for p in s["ports"]),
                        tuple(Endpoint(e["node"], e["pod"], ipaddress.ip_address(e["ip"])) for e in s["endpoints"]))
                for s in args["services"]]
    except ValueError as exc:
        raise ModuleError(f"services: {exc}") from None


def _same(lines: list[str]) -> list[str]:
    """Rules compared as iptables keeps them: it stores a probability as a fraction of 2^31 and prints it back
    with eleven decimals (0.33333333349 for 1/3)."""
    return sorted(re.sub(r"--probability ([0-9.]+)", lambda m: f"--probability {float(m.group(1)):.6f}", x)
                  for x in lines)


def _of(rules: list[str], service: Service) -> list[str]:
    """The rules of one service: each carries ``namespace/name:port`` in its comment."""
    return [x for x in rules if f'--comment "{service.key}:' in x]


def jump_rule(table: str, builtin: str, ours: str) -> str:
    return f'-A {builtin} -m comment --comment "{JUMP_COMMENT}" -j {ours}'


class ServicesModule(Module):
    name = "services"
    needs_commands = ("iptables", "iptables-restore")
    args = schema({
        "mode": {"enum": ["iptables", "ipvs", "nftables", "userspace"], "default": "iptables"},
        "services": {"type": "array", "items": {
            "type": "object", "additionalProperties": False,
            "required": ["name", "namespace", "cluster_ip", "ports", "endpoints"],
            "properties": {"name": _LABEL, "namespace": _LABEL, "cluster_ip": IP,
                           "ports": {"type": "array", "minItems": 1, "items": _PORT},
                           "endpoints": {"type": "array", "items": {
                               "type": "object", "additionalProperties": False, "required": ["node", "pod", "ip"],
                               "properties": {"node": _LABEL, "pod": _LABEL, "ip": IP}}}}}},
    }, ["services"])

    def facts(self, args: dict[str, Any]) -> list[Fact[Any]]:
        facts: list[Fact[Any]] = [SystemdUnit("kube-proxy"), IptablesRules("nat"), IptablesRules("filter"), IpvsRules(),
                                  Links(), Addrs(), Created()]
        if args["mode"] == "ipvs":
            facts += [Commands(IPVS_COMMANDS), Exists("/proc/net/ip_vs"), Sysctl(VS_CONNTRACK)]
        return facts

    def reverse_facts(self, args: dict[str, Any]) -> list[Fact[Any]]:
        return [IptablesRules("nat"), IptablesRules("filter"), IpvsRules(), Links(), Addrs(), Created()]

    def plan(self, args: dict[str, Any], facts: Facts) -> Outcome:
        if facts[SystemdUnit("kube-proxy")]:
            return Outcome(reason="kube-proxy is installed on this node: it makes the services, so these are not "
                                  "made by hand here (remove kube-proxy, or leave services to it)")
        mode = args["mode"]
        if mode not in ("iptables", "ipvs"):
            raise ModuleError(f"services by hand in kube-proxy mode {mode}: not built; use iptables or ipvs")
        services = services_of(args)
        if any(v is None for v in (facts[IptablesRules("nat")], facts[IptablesRules("filter")])):
            raise ModuleError("iptables-save could not read the tables (is iptables installed and usable here?)")
        steps: list[Cmd] = []
        parts: list[Part] = []
        if mode == "ipvs":
            steps += self._ipvs(services, facts, parts)
            wanted = {"nat": ipvs_nat_rules(services), "filter": ([], [])}
            jumps: dict[str, tuple[tuple[str, str], ...]] = {"nat": (("POSTROUTING", POSTROUTING),)}
        else:
            steps += _ipvs_gone(facts)  # what ipvs mode made, when the cluster went back to iptables
            wanted = {"nat": nat_rules(services), "filter": filter_rules(services)}
            jumps = dict(JUMPS)
        steps += _tables(wanted, jumps, services, facts, parts)
        listed = ", ".join(f"{s.key} {s.cluster_ip}" for s in services) or "none"
        if not steps:
            return Outcome(reason=f"service rules ({mode} mode) already in place: {listed}")
        return Outcome(steps, f"service rules ({mode} mode) for {listed}", parts=parts)

    def _ipvs(self, services: list[Service], facts: Facts, parts: list[Part]) -> list[Cmd]:
        """kube-proxy's ipvs mode by hand: the cluster IPs on a dummy link of ours, a virtual service per
        service port with its pods as real servers, and IPVS connections visible to conntrack (for the
        hairpin masquerade)."""
        missing = facts[Commands(IPVS_COMMANDS)]
        if missing:
            raise ModuleError(f"ipvs mode needs {', '.join(sorted(missing))} on the node (Debian: apt install ipvsadm)")
        steps: list[Cmd] = []
        if not facts[Exists("/proc/net/ip_vs")]:
            steps.append(Cmd(("modprobe", "ip_vs")))
        if facts[Sysctl(VS_CONNTRACK)] != "1":
            steps.append(Cmd(("printf", "%s\\n", "1"), stdout=sysctl_path(VS_CONNTRACK)))
        link = (value(facts, Links()) or {}).get(IPVS_LINK)
        if link is None:
            steps.append(Cmd(("ip", "link", "add", IPVS_LINK, "type", "dummy"), creates=("link", IPVS_LINK)))
        elif link.kind != "dummy":
            raise ModuleError(f"{IPVS_LINK} exists on the node but is not a dummy link")
        have_addrs = (value(facts, Addrs()) or {}).get(IPVS_LINK, [])
        want_addrs = [f"{s.cluster_ip}/{s.cluster_ip.max_prefixlen}" for s in services]
        steps += [Cmd(("ip", "addr", "add", a, "dev", IPVS_LINK)) for a in want_addrs if a not in have_addrs]
        steps += [Cmd(("ip", "addr", "del", a, "dev", IPVS_LINK)) for a in have_addrs if a not in want_addrs]
        ours = {a.split("/")[0] for a in have_addrs + want_addrs}
        have: dict[str, list[str]] = {}
        for line in facts[IpvsRules()] or []:
            key = ipvs_key(line)
            if key is not None and ipvs_vip(key) in ours:
                have.setdefault(key, []).append(line)
        want = ipvs_services(services)
        lines: list[str] = []
        for key in sorted(set(have) | set(want)):
            if sorted(have.get(key, [])) != sorted(want.get(key, [])):
                lines += ([f"-D {key}"] if key in have else []) + want.get(key, [])
                s = next((s for s in services if str(s.cluster_ip) == ipvs_vip(key)), None)
                if s is not None and all(p.name != s.key for p in parts):
                    parts.append(Part("service", s.key, f"{s.key}: its IPVS virtual service is missing or differs here"))
        if lines:
            steps.append(Cmd(IPVS_RESTORE, stdin="\n".join(lines) + "\n"))
        return steps

    def reverse(self, args: dict[str, Any], facts: Facts) -> Outcome:
        # none of our chains wanted and no jumps: every PROV chain goes, after the jumps into it
        steps = _ipvs_gone(facts) + _tables({t: ([], []) for t in JUMPS}, {}, [], facts, [])
        return Outcome(steps, "remove the service rules (our PROV-… chains and the jumps to them, our IPVS services "
                              f"and {IPVS_LINK})") if steps else Outcome(reason="no service rules of ours left")


def _ipvs_gone(facts: Facts) -> list[Cmd]:
    """Remove what ipvs mode made: the virtual services of the cluster IPs on our dummy link, and the link (when
    apply recorded that it made it)."""
    addrs = facts.get(Addrs())
    vips = {a.split("/")[0] for a in (addrs or {}).get(IPVS_LINK, [])}
    found = facts.get(IpvsRules())
    rules = found or []
    keys = sorted({k for k in map(ipvs_key, rules) if k is not None and ipvs_vip(k) in vips})
    steps = [Cmd(IPVS_RESTORE, stdin="".join(f"-D {k}\n" for k in keys))] if keys else []
    links = facts.get(Links())
    if IPVS_LINK in (links or {}) and created_by_apply("link", IPVS_LINK, facts):
        steps.append(Cmd(("ip", "link", "del", IPVS_LINK)))
    return steps


def _tables(wanted: dict[str, tuple[list[str], list[str]]], jumps: dict[str, tuple[tuple[str, str], ...]],
            services: list[Service], facts: Facts, parts: list[Part]) -> list[Cmd]:
    """Our chains made exactly ``wanted`` (one ``iptables-restore --noflush``, stale chains of ours deleted after
    the jumps to them), and the ``jumps`` into them from the built-in chains."""
    steps: list[Cmd] = []
    stale: dict[str, list[str]] = {}
    differs = False
    for table, (chains, rules) in wanted.items():
        have = facts[IptablesRules(table)] or []
        have_chains = [x[1:].split()[0] for x in have if x.startswith(":")]
        have_rules = [x for x in have if x.startswith(f"-A {PREFIX}")]
        stale[table] = [c for c in have_chains if c not in chains]
        for x in have:  # a jump into a chain about to go goes first
            if x.startswith("-A ") and not x.startswith(f"-A {PREFIX}") and any(x.endswith(f"-j {c}") for c in stale[table]):
                steps.append(Cmd(("iptables", "-t", table, "-D", *shlex.split(x[3:]))))
        if sorted(have_chains) != sorted(chains) or _same(have_rules) != _same(rules):
            differs = True
            for sv in services:  # which services' rules are off (graph --live puts it on them)
                if _same(_of(have_rules, sv)) != _same(_of(rules, sv)) and all(x.name != sv.key for x in parts):
                    parts.append(Part("service", sv.key, f"{sv.key}: its {table} rules are missing or differ here"))
    if differs:
        steps.append(Cmd(("iptables-restore", "--noflush"), stdin=restore_of(wanted, stale)))
    jumped = False
    for table, pairs in jumps.items():
        for builtin, ours in pairs:
            if jump_rule(table, builtin, ours) not in (facts[IptablesRules(table)] or []):
                jumped = True
                steps.append(Cmd(("iptables", "-t", table, "-I", builtin, "1", "-m", "comment", "--comment",
                                  JUMP_COMMENT, "-j", ours)))
    if jumped:
        parts.append(Part("services", "jumps", "the jumps into the PROV chains are missing here"))
    return steps
