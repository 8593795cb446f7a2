"""What kube-proxy's iptables mode makes for ClusterIP services, rendered for ``iptables-restore --noflush``.

The same shape as kube-proxy's (``KUBE-SERVICES`` → ``KUBE-SVC-…`` per service port → one ``KUBE-SEP-…``
per endpoint, picked with ``statistic`` probabilities for an even spread, hairpin traffic marked for
masquerade), in chains of our own (``PROV-…``) and with a mark bit of our own, so that a real kube-proxy's
``KUBE-*`` chains and marks are never touched. Every rule carries ``namespace/name:port`` in a comment, so
``iptables -t nat -L | grep web`` shows them as it shows kube-proxy's.

Pure: services in, restore text out; :mod:`provisioner.modules.services` applies it.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Sequence

from .inventory.model import Endpoint, Service, ServicePort

PREFIX = "PROV"
SERVICES, MARK_MASQ, POSTROUTING = f"{PREFIX}-SERVICES", f"{PREFIX}-MARK-MASQ", f"{PREFIX}-POSTROUTING"
MASQ_MARK = "0x10000"  # kube-proxy uses 0x4000 (masquerade) and 0x8000 (drop): a bit of our own
# where our chains are entered from, per table: (built-in chain, our chain)
JUMPS = {"nat": (("PREROUTING", SERVICES), ("OUTPUT", SERVICES), ("POSTROUTING", POSTROUTING)),
         "filter": (("FORWARD", SERVICES), ("OUTPUT", SERVICES))}


def chain(kind: str, *parts: str) -> str:
    """``PROV-SVC-…``/``PROV-SEP-…``: 16 base32 characters of a hash, as kube-proxy names its chains (a chain
    name holds at most 28 characters)."""
    digest = hashlib.sha256("/".join(parts).encode()).digest()
    return f"{PREFIX}-{kind}-{base64.b32encode(digest).decode()[:16]}"


def port_key(service: Service, port: ServicePort) -> str:
    """``default/web:http``: the service port as kube-proxy names it (the port number when it has no name).
    The names are DNS labels (the inventory's schema): a comment can hold them between double quotes, and
    anything else is refused here rather than written into the rules."""
    key = f"{service.key}:{port.name or port.port}"
    if not re.fullmatch(r"[a-z0-9-]{1,63}/[a-z0-9-]{1,63}:[a-z0-9-]{1,63}", key):
        raise ValueError(f"service port {key!r} is not namespace/name:port of DNS labels")
    return key


def _ip(address: object, version: int) -> str:
    return f"{address}/{32 if version == 4 else 128}"


def nat_rules(services: Sequence[Service]) -> tuple[list[str], list[str]]:
    """``(chains, rules)`` of the nat table: every chain we own (declared, so ``--noflush`` empties it first)
    and their rules, in kube-proxy's order."""
    chains = [SERVICES, MARK_MASQ, POSTROUTING]
    # the marks as iptables-save prints them (--or-mark and --xor-mark are read as these), so that the rules on a
    # node can be compared with these line for line
    rules = [f"-A {MARK_MASQ} -j MARK --set-xmark {MASQ_MARK}/{MASQ_MARK}",
             f"-A {POSTROUTING} -m mark ! --mark {MASQ_MARK}/{MASQ_MARK} -j RETURN",
             f"-A {POSTROUTING} -j MARK --set-xmark {MASQ_MARK}/0x0",
             f'-A {POSTROUTING} -m comment --comment "provisioner service traffic requiring SNAT" -j MASQUERADE']
    for s in services:
        for p in s.ports:
            if not s.endpoints:
                continue  # the filter table rejects it
            key, proto = port_key(s, p), p.protocol.lower()
            svc = chain("SVC", key, p.protocol)
            chains.append(svc)
            rules.append(f'-A {SERVICES} -d {_ip(s.cluster_ip, s.cluster_ip.version)} -p {proto} -m comment '
                         f'--comment "{key} cluster IP" -m {proto} --dport {p.port} -j {svc}')
            n = len(s.endpoints)
            for k, e in enumerate(s.endpoints):
                sep = chain("SEP", key, p.protocol, str(e.ip))
                chains.append(sep)
                to = f"[{e.ip}]:{p.target_port}" if e.ip.version == 6 else f"{e.ip}:{p.target_port}"
                spread = f" -m statistic --mode random --probability {1 / (n - k):.10f}" if k < n - 1 else ""
                rules.append(f'-A {svc} -m comment --comment "{key} -> {to}"{spread} -j {sep}')
                rules += [f'-A {sep} -s {_ip(e.ip, e.ip.version)} -m comment --comment "{key}" -j {MARK_MASQ}',
                          f'-A {sep} -p {proto} -m comment --comment "{key}" -m {proto} -j DNAT --to-destination {to}']
    return chains, rules


def filter_rules(services: Sequence[Service]) -> tuple[list[str], list[str]]:
    """``(chains, rules)`` of the filter table: a service port with no endpoints is refused at once
    (icmp port unreachable, as kube-proxy does), never left to time out."""
    rules = []
    for s in services:
        for p in s.ports:
            if s.endpoints:
                continue
            key, proto = port_key(s, p), p.protocol.lower()
            unreachable = "icmp-port-unreachable" if s.cluster_ip.version == 4 else "icmp6-port-unreachable"
            rules.append(f'-A {SERVICES} -d {_ip(s.cluster_ip, s.cluster_ip.version)} -p {proto} -m comment '
                         f'--comment "{key} has no endpoints" -m {proto} --dport {p.port} '
                         f'-j REJECT --reject-with {unreachable}')
    return [SERVICES], rules


def restore_text(services: Sequence[Service], stale: dict[str, list[str]] | None = None) -> str:
    """The input of ``iptables-restore --noflush``: each table's chains declared (emptied) and filled again,
    and ``stale`` chains of ours ({table: [chain]}) no longer wanted, emptied and deleted, in one commit per
    table: a reader never sees half of it."""
    return restore_of({"nat": nat_rules(services), "filter": filter_rules(services)}, stale)


def restore_of(wanted: dict[str, tuple[list[str], list[str]]], stale: dict[str, list[str]] | None = None) -> str:
    """:func:`restore_text` of any ``{table: (chains, rules)}``."""
    out = []
    for table, (chains, rules) in wanted.items():
        gone = [c for c in (stale or {}).get(table, []) if c not in chains]
        out.append(f"*{table}")
        out += [f":{c} - [0:0]" for c in chains + gone]
        out += rules
        out += [f"-X {c}" for c in gone]
        out.append("COMMIT")
    return "\n".join(out) + "\n"


# -- ipvs mode -------------------------------------------------------------------
IPVS_LINK = "prov-ipvs0"  # the dummy link holding the cluster IPs (kube-proxy's is kube-ipvs0)


def _hostport(address: object, port: int) -> str:
    return f"[{address}]:{port}" if ":" in str(address) else f"{address}:{port}"


def ipvs_services(services: Sequence[Service]) -> dict[str, list[str]]:
    """``{"-t VIP:PORT": [lines]}``: each virtual service (round robin) and its real servers (masquerading,
    weight 1), as ``ipvsadm-save -n`` prints them. A service without endpoints has none: its cluster IP is
    still on IPVS_LINK, so a connection to it is refused by the node itself."""
    out: dict[str, list[str]] = {}
    for s in services:
        if not s.endpoints:
            continue
        for p in s.ports:
            key = f"{'-t' if p.protocol == 'TCP' else '-u'} {_hostport(s.cluster_ip, p.port)}"
            out[key] = [f"-A {key} -s rr"] + [f"-a {key} -r {_hostport(e.ip, p.target_port)} -m -w 1" for e in s.endpoints]
    return out


def ipvs_key(line: str) -> str | None:
    """The virtual service a ``ipvsadm-save -n`` line belongs to (``-t VIP:PORT``), or None."""
    words = line.split()
    return f"{words[1]} {words[2]}" if len(words) >= 3 and words[0] in ("-A", "-a") and words[1] in ("-t", "-u") else None


def ipvs_vip(key: str) -> str:
    """``-t 10.96.0.5:80`` → ``10.96.0.5``; ``-u [fd00::5]:53`` → ``fd00::5``."""
    where = key.split()[1]
    return where[1:where.index("]")] if where.startswith("[") else where.rsplit(":", 1)[0]


def ipvs_nat_rules(services: Sequence[Service]) -> tuple[list[str], list[str]]:
    """The nat table in ipvs mode: a pod that reaches itself through a service is masqueraded (its answer must come
    back through IPVS), as kube-proxy's KUBE-LOOP-BACK set does; nothing else is NATed."""
    rules, seen = [], set()
    for s in services:
        for e in s.endpoints:
            if e.ip not in seen:
                seen.add(e.ip)
                rules.append(f"-A {POSTROUTING} -s {_ip(e.ip, e.ip.version)} -d {_ip(e.ip, e.ip.version)} -m comment "
                             f'--comment "{port_key(s, s.ports[0])} hairpin" -j MASQUERADE')
    return [POSTROUTING], rules


def endpoint_text(e: Endpoint) -> str:
    return f"{e.node}/{e.pod} ({e.ip})"
