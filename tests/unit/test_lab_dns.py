"""The lab's DNS server: answers for the inventory's services and pods, NXDOMAIN in the cluster domain,
REFUSED outside it, and never a crash on a hostile packet."""

from __future__ import annotations

import ipaddress
import struct

from hypothesis import given, settings, strategies as st

from provisioner.lab import dns

NAMES = {"web.default.svc.cluster.local": [ipaddress.ip_address("10.96.120.7")],
         "kube-dns.kube-system.svc.cluster.local": [ipaddress.ip_address("10.96.0.10")]}
PODS = {ipaddress.ip_address("10.244.2.5"), ipaddress.ip_address("fd00:10:244:2::5")}


def query(name: str, qtype: int = dns.A, ident: int = 0x1234, flags: int = 0x0100) -> bytes:
    q = b"".join(bytes([len(label)]) + label.encode() for label in name.split(".")) + b"\0"
    return struct.pack("!HHHHHH", ident, flags, 1, 0, 0, 0) + q + struct.pack("!HH", qtype, 1)


def parse(reply: bytes) -> tuple[int, int, list[str]]:
    """(id, rcode, addresses in the answers)."""
    ident, flags, qd, an = struct.unpack("!HHHH", reply[:8])
    at = 12
    for _ in range(qd):
        while reply[at]:
            at += reply[at] + 1
        at += 5
    out = []
    for _ in range(an):
        assert reply[at:at + 2] == b"\xc0\x0c"
        kind, _, _, length = struct.unpack("!HHIH", reply[at + 2:at + 12])
        out.append(str(ipaddress.ip_address(reply[at + 12:at + 12 + length])))
        at += 12 + length
    assert flags & 0x8000 and at == len(reply)
    return ident, flags & 0xF, out


def ask(name: str, qtype: int = dns.A) -> tuple[int, int, list[str]]:
    reply = dns.answer(query(name, qtype), NAMES, "cluster.local", PODS)
    assert reply is not None
    return parse(reply)


def test_a_service_name_is_its_cluster_ip_whatever_the_case():
    assert ask("web.default.svc.cluster.local") == (0x1234, dns.NOERROR, ["10.96.120.7"])
    assert ask("WEB.Default.svc.cluster.local")[2] == ["10.96.120.7"]
    assert ask("kube-dns.kube-system.svc.cluster.local")[2] == ["10.96.0.10"]


def test_a_name_without_an_address_of_the_type_is_an_empty_answer_not_nxdomain():
    assert ask("web.default.svc.cluster.local", dns.AAAA) == (0x1234, dns.NOERROR, [])


def test_unknown_names_of_the_domain_are_nxdomain_so_the_search_path_goes_on():
    assert ask("web.default.default.svc.cluster.local")[1] == dns.NXDOMAIN
    assert ask("nope.default.svc.cluster.local")[1] == dns.NXDOMAIN


def test_names_outside_the_cluster_domain_are_refused_nothing_is_forwarded():
    assert ask("example.com")[1] == dns.REFUSED
    assert ask("local")[1] == dns.REFUSED


def test_pod_names_answer_for_the_inventorys_pods_only():
    assert ask("10-244-2-5.default.pod.cluster.local")[2] == ["10.244.2.5"]
    assert ask("10-244-2-5.other.pod.cluster.local")[2] == ["10.244.2.5"]
    assert ask("fd00-10-244-2--5.default.pod.cluster.local", dns.AAAA)[2] == ["fd00:10:244:2::5"]
    assert ask("10-244-9-9.default.pod.cluster.local")[1] == dns.NXDOMAIN
    assert ask("010-244-2-5.default.pod.cluster.local")[1] == dns.NXDOMAIN  # not how CoreDNS spells it


def test_responses_and_odd_packets_are_never_answered_as_queries():
    assert dns.answer(query("web.default.svc.cluster.local", flags=0x8100), NAMES, "cluster.local") is None
    assert dns.answer(b"\x00\x01", NAMES, "cluster.local") is None
    assert parse(dns.answer(query("x", flags=0x2800) , NAMES, "cluster.local") or b"")[1] == dns.NOTIMP
    truncated = query("web.default.svc.cluster.local")[:-3]
    assert parse(dns.answer(truncated, NAMES, "cluster.local") or b"")[1] == dns.FORMERR


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_any_packet_gets_a_well_formed_reply_or_none(data):
    out = dns.answer(data, NAMES, "cluster.local", PODS)
    if out is not None:
        parse(out)


def test_records_of_an_inventory(base_inventory):
    from dataclasses import replace
    from provisioner.inventory.model import Service, ServicePort
    svc = Service("web", "default", ipaddress.ip_address("10.96.3.4"), (ServicePort(None, 80, 8080, "TCP"),), ())
    inv = replace(base_inventory, services=(svc,))
    names = dns.records(inv)
    assert names["web.default.svc.cluster.local"] == [ipaddress.ip_address("10.96.3.4")]
    assert names["kube-dns.kube-system.svc.cluster.local"] == [inv.cluster.dns_ip]
    assert dns.pod_addresses(inv) == {ip for n in inv.nodes for p in n.pods if p.via != "cni" for ip in p.ips}
