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

from ..facts import Fact, Facts
from ..facts.system import IptablesRules, SystemdUnit
from ..inventory.model import Endpoint, Service, ServicePort
from ..service_rules import JUMPS, PREFIX, filter_rules, nat_rules, restore_text
from ..steps import Cmd
from .base import IP, Module, ModuleError, Outcome, Part, schema

JUMP_COMMENT = "provisioner services"
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
        return [SystemdUnit("kube-proxy"), IptablesRules("nat"), IptablesRules("filter")]

    def reverse_facts(self, args: dict[str, Any]) -> list[Fact[Any]]:
        return [IptablesRules("nat"), IptablesRules("filter")]

    def plan(self, args: dict[str, Any], facts: Facts) -> Outcome:
        if facts[SystemdUnit("kube-proxy")]:
            return Outcome(reason="kube-proxy is installed on this node: it makes the services, so these are not "
                                  "made by hand here (remove kube-proxy, or leave services to it)")
        if args["mode"] != "iptables":
            raise ModuleError(f"services by hand in kube-proxy mode {args['mode']} are not built yet: use iptables")
        services = services_of(args)
        steps: list[Cmd] = []
        wanted = {"nat": nat_rules(services), "filter": filter_rules(services)}
        current = {t: facts[IptablesRules(t)] for t in wanted}
        if any(v is None for v in current.values()):
            raise ModuleError("iptables-save could not read the tables (is iptables installed and usable here?)")
        stale: dict[str, list[str]] = {}
        differs = False
        parts: list[Part] = []
        for table, (chains, rules) in wanted.items():
            have = current[table] or []
            have_chains = [x[1:].split()[0] for x in have if x.startswith(":")]
            have_rules = [x for x in have if x.startswith(f"-A {PREFIX}")]
            stale[table] = [c for c in have_chains if c not in chains]
            if sorted(have_chains) != sorted(chains) or _same(have_rules) != _same(rules):
                differs = True
                for sv in services:  # which services' rules are off (graph --live puts it on them)
                    if _same(_of(have_rules, sv)) != _same(_of(rules, sv)) and all(x.name != sv.key for x in parts):
                        parts.append(Part("service", sv.key, f"{sv.key}: its {table} rules are missing or differ here"))
        if differs:
            steps.append(Cmd(("iptables-restore", "--noflush"), stdin=restore_text(services, stale)))
        for table, jumps in JUMPS.items():
            for builtin, ours in jumps:
                if jump_rule(table, builtin, ours) not in (current[table] or []):
                    steps.append(Cmd(("iptables", "-t", table, "-I", builtin, "1", "-m", "comment", "--comment",
                                      JUMP_COMMENT, "-j", ours)))
        listed = ", ".join(f"{s.key} {s.cluster_ip}" for s in services) or "none"
        if not steps:
            return Outcome(reason=f"service rules already in place: {listed}")
        if len(steps) > int(differs):
            parts.append(Part("services", "jumps", "the jumps into the PROV chains are missing here"))
        return Outcome(steps, f"service rules for {listed}", parts=parts)

    def reverse(self, args: dict[str, Any], facts: Facts) -> Outcome:
        steps: list[Cmd] = []
        lines: list[str] = []
        for table in JUMPS:
            have = facts[IptablesRules(table)] or []
            for x in have:  # the jumps first: a chain something jumps to cannot be deleted
                if x.startswith("-A ") and not x.startswith(f"-A {PREFIX}") and f"-j {PREFIX}" in x:
                    steps.append(Cmd(("iptables", "-t", table, "-D", *shlex.split(x[3:]))))
            chains = [x[1:].split()[0] for x in have if x.startswith(":")]
            if chains:
                lines += [f"*{table}"] + [f":{c} - [0:0]" for c in chains] + [f"-X {c}" for c in chains] + ["COMMIT"]
        if lines:
            steps.append(Cmd(("iptables-restore", "--noflush"), stdin="\n".join(lines) + "\n"))
        return Outcome(steps, "remove the service rules (our PROV-… chains and the jumps to them)") if steps \
            else Outcome(reason="no service rules of ours left")
