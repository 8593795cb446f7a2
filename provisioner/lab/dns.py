"""The lab's cluster DNS: a small authoritative server at the cluster DNS address that answers what CoreDNS's
kubernetes plugin would for the inventory's services and pods, and nothing else (no forwarding: no query
leaves the lab).

    web.default.svc.cluster.local.          A     10.96.120.7     (services[]: its cluster IP)
    10-244-2-5.default.pod.cluster.local.   A     10.244.2.5      (a pod of the inventory, in any namespace)
    kube-dns.kube-system.svc.cluster.local. A     10.96.0.10      (the cluster DNS address itself)

A name of the cluster domain that is not there is NXDOMAIN (so a resolver goes on down its search path);
a name there without an address of the asked type is an empty answer; a name outside the domain is
REFUSED. ``provision lab up`` runs it in the first node's network namespace, holding the cluster DNS address,
and reads the lab's inventory again whenever the file changes (a broken edit keeps the last good names).

Pure parts (:func:`records`, :func:`answer`) are unit-tested; :func:`serve` is the loop.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import struct
import sys
from collections.abc import Callable, Collection
from pathlib import Path

from ..cluster_dns import pod_a_record, service_fqdn
from ..inventory import Inventory, load_inventory

A, AAAA, ANY = 1, 28, 255
NOERROR, FORMERR, NXDOMAIN, NOTIMP, REFUSED = 0, 1, 3, 4, 5
TTL = 5
Records = dict[str, list[ipaddress.IPv4Address | ipaddress.IPv6Address]]


def records(inv: Inventory) -> Records:
    """Every name the lab answers, lower case without the final dot, with its addresses."""
    domain = inv.cluster.domain
    out: Records = {service_fqdn("kube-dns", "kube-system", domain): [inv.cluster.dns_ip]}
    for s in inv.services:
        out[service_fqdn(s.name, s.namespace, domain)] = [s.cluster_ip]
    return {k.lower(): v for k, v in out.items()}


def pod_addresses(inv: Inventory) -> set[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """The hand-made pods' addresses (a pod name is answered only for these, as CoreDNS's ``pods verified``)."""
    return {ip for n in inv.nodes for p in n.pods if p.via != "cni" for ip in p.ips}


def _pod_name(labels: list[str], domain: list[str], pods: Collection[ipaddress.IPv4Address | ipaddress.IPv6Address]) \
        -> list[ipaddress.IPv4Address | ipaddress.IPv6Address] | None:
    """``a-b-c-d.NAMESPACE.pod.DOMAIN``: the pod's address when it is one of ``pods``, else None."""
    if len(labels) != len(domain) + 3 or labels[2] != "pod" or labels[3:] != domain:
        return None
    for text in (labels[0].replace("-", "."), labels[0].replace("-", ":")):
        try:
            ip = ipaddress.ip_address(text)
        except ValueError:
            continue
        if ip in pods and pod_a_record(str(ip), labels[1], ".".join(domain)).split(".")[0] == labels[0]:
            return [ip]
    return None


def _question(query: bytes) -> tuple[list[str], int, int, int] | None:
    """(labels, qtype, qclass, end offset) of the first question; None when it cannot be read. No compression
    pointers are followed (a query's first name never needs them)."""
    at, labels = 12, []
    while True:
        if at >= len(query):
            return None
        n = query[at]
        at += 1
        if n == 0:
            break
        if n > 63 or at + n > len(query):
            return None
        try:
            labels.append(query[at:at + n].decode("ascii").lower())
        except UnicodeDecodeError:
            return None
        at += n
        if len(labels) > 127:
            return None
    if at + 4 > len(query):
        return None
    qtype, qclass = struct.unpack("!HH", query[at:at + 4])
    return labels, qtype, qclass, at + 4


def answer(query: bytes, names: Records, domain: str,
           pods: Collection[ipaddress.IPv4Address | ipaddress.IPv6Address] = ()) -> bytes | None:
    """The response to one query (UDP payload), or None for something that is not a query at all."""
    if len(query) < 12:
        return None
    ident, flags, qdcount = struct.unpack("!HHH", query[:6])
    if flags & 0x8000:  # a response: never answer one (no loops between servers)
        return None
    rd = flags & 0x0100

    def reply(rcode: int, question: bytes = b"", answers: list[bytes] | None = None, aa: bool = True) -> bytes:
        head = struct.pack("!HHHHHH", ident, 0x8000 | (0x0400 if aa else 0) | rd | rcode,
                           1 if question else 0, len(answers or []), 0, 0)
        return head + question + b"".join(answers or [])

    if (flags >> 11) & 0xF != 0:  # not a standard query
        return reply(NOTIMP, aa=False)
    q = _question(query) if qdcount == 1 else None
    if q is None:
        return reply(FORMERR, aa=False)
    labels, qtype, qclass, end = q
    question = query[12:end]
    zone = domain.lower().split(".")
    if qclass != 1 or len(labels) < len(zone) or labels[len(labels) - len(zone):] != zone:
        return reply(REFUSED, question, aa=False)
    name = ".".join(labels)
    found = names.get(name)
    if found is None:
        found = _pod_name(labels, zone, pods)
    if found is None:
        return reply(NXDOMAIN, question)
    rrs = []
    for ip in found:
        kind = A if ip.version == 4 else AAAA
        if qtype in (kind, ANY):
            rrs.append(struct.pack("!HHHIH", 0xC00C, kind, 1, TTL, len(ip.packed)) + ip.packed)
    return reply(NOERROR, question, rrs)


class _Table:
    """The inventory's names, read again when the file changes; the last good ones stay on a broken edit."""

    def __init__(self, path: Path, log: Callable[[str], None]):
        self.path, self.log = path, log
        self.stamp: tuple[int, int] | None = None
        self.names: Records = {}
        self.domain = "cluster.local"
        self.pods: set[ipaddress.IPv4Address | ipaddress.IPv6Address] = set()

    def fresh(self) -> None:
        try:
            st = self.path.stat()
        except OSError:
            return
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp == self.stamp:
            return
        self.stamp = stamp
        try:
            inv = load_inventory(self.path)
        except Exception as exc:  # noqa: BLE001 - a broken edit: keep answering what was there
            self.log(f"{self.path}: not read again ({exc}); the names stay as they were")
            return
        self.names, self.domain, self.pods = records(inv), inv.cluster.domain, pod_addresses(inv)
        self.log(f"{len(self.names)} service name(s), {len(self.pods)} pod address(es) in {self.domain}")


def serve(inventory: Path, address: str) -> None:
    """Answer on UDP port 53 of ``address`` until killed (``provision lab down``)."""
    ip = ipaddress.ip_address(address)
    table = _Table(inventory, lambda text: print(text, file=sys.stderr, flush=True))
    table.fresh()
    sock = socket.socket(socket.AF_INET if ip.version == 4 else socket.AF_INET6, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((address, 53))
    print(f"lab DNS answering on {address} port 53", file=sys.stderr, flush=True)
    while True:
        query, peer = sock.recvfrom(4096)
        table.fresh()
        try:
            out = answer(query, table.names, table.domain, table.pods)
        except Exception as exc:  # noqa: BLE001 - one odd packet never stops the server
            print(f"query from {peer[0]} not answered: {exc}", file=sys.stderr, flush=True)
            continue
        if out is not None:
            sock.sendto(out, peer)


if __name__ == "__main__":
    # LOG: only to name the lab's state dir on the command line, where `lab down` finds it after a crash
    if len(sys.argv) != 4:
        sys.exit("usage: python -m provisioner.lab.dns INVENTORY ADDRESS LOG")
    os.umask(0o077)
    serve(Path(sys.argv[1]), sys.argv[2])
