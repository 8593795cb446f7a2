"""Pure address maths for IPv4 and IPv6: pod subnets per node, gateways, overlaps, ipcalc.

Everything here takes and returns :mod:`ipaddress` objects; nothing touches a host.

>>> str(dns_ip_for(ipaddress.ip_network("10.96.0.0/12")))
'10.96.0.10'
>>> [str(s) for s in allocate_subnets(ipaddress.ip_network("10.244.0.0/16"), 24, [None, None])]
['10.244.1.0/24', '10.244.2.0/24']
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterator, Sequence
from typing import Any

Net = ipaddress.IPv4Network | ipaddress.IPv6Network
Addr = ipaddress.IPv4Address | ipaddress.IPv6Address


def overlaps(a: Net, b: Net) -> bool:
    """True when the two ranges share any address, whichever contains the other (never across families)."""
    return a.version == b.version and a.overlaps(b)


def inside(a: Net, b: Net) -> bool:
    """``a`` is ``b`` or a part of it (never across families)."""
    return a.version == b.version and a.subnet_of(b)  # type: ignore[arg-type]


def family(version: int) -> str:
    return f"IPv{version}"


def nth(net: Net, n: int) -> Addr:
    """The address ``n`` positions after the network address (0 is the network itself)."""
    if not 0 <= n < net.num_addresses:
        raise ValueError(f"{net} has no address #{n}")
    return net.network_address + n


def dns_ip_for(service_cidr: Net) -> Addr:
    """Cluster DNS by convention: the 10th address of the service range (10.96.0.10, fd00:10:96::a)."""
    return nth(service_cidr, 10)


def api_ip_for(service_cidr: Net) -> Addr:
    """The ``kubernetes`` API service takes the first address of the service range."""
    return nth(service_cidr, 1)


def service_ip(service_cidr: Net, key: str, taken: set[Addr]) -> Addr:
    """A service's cluster IP when none is given: the same for the same ``namespace/name`` on every run and
    whatever other services the inventory lists (a hash of the name picks the start; the next free address
    after it when taken), never the network, first, broadcast or a taken address.

    >>> str(service_ip(ipaddress.ip_network("10.96.0.0/12"), "default/web", set()))
    '10.108.209.100'
    """
    size = service_cidr.num_addresses
    usable = size - (2 if service_cidr.version == 4 and size > 2 else 1)
    if usable <= len(taken) + 1:
        raise ValueError(f"{service_cidr} has no free address left for it")
    start = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") % min(size, 1 << 64)
    for k in range(size):
        candidate = service_cidr.network_address + (start + k) % size
        if (candidate not in taken and candidate != service_cidr.network_address
                and candidate != api_ip_for(service_cidr)
                and not (service_cidr.version == 4 and candidate == service_cidr.broadcast_address)):
            return candidate
    raise ValueError(f"{service_cidr} has no free address left for it")


def gateway_for(subnet: Net) -> Addr:
    """A node's bridge (pod gateway) takes the first host of its pod subnet."""
    return nth(subnet, 1)


def allocate_subnets(pod_cidr: Net, prefix: int, explicit: Sequence[Net | None]) -> list[Net]:
    """Give every node a pod subnet of size ``/prefix`` inside ``pod_cidr``.

    ``explicit`` holds, per node in inventory order, its configured subnet or
    ``None``. Unset nodes take, in order, the lowest free subnet starting at
    index 1 (``10.244.1.0/24`` for the first), skipping every subnet that any
    configured node holds. Appending a node therefore never renumbers the
    others. Raises ValueError when the range is too small.
    """
    taken = [s for s in explicit if s is not None]
    every: Iterator[Net] = pod_cidr.subnets(new_prefix=prefix)
    candidates = (s for i, s in enumerate(every) if i > 0 or pod_cidr.prefixlen == prefix)
    out: list[Net] = []
    for want in explicit:
        if want is not None:
            out.append(want)
            continue
        for cand in candidates:
            if not any(overlaps(cand, t) for t in taken):
                out.append(cand)
                break
        else:
            raise ValueError(f"{pod_cidr} has no free /{prefix} left for another node")
    return out


def usable_host(subnet: Net, addr: Addr) -> bool:
    """An address a pod may hold: inside, not the network, broadcast or gateway."""
    return (addr in subnet and addr != subnet.network_address
            and addr != subnet.broadcast_address and addr != gateway_for(subnet))


def ipcalc(spec: str) -> dict[str, str | int | None]:
    """The numbers Debian's ``ipcalc`` prints for ``ADDRESS/PREFIX``; for IPv6 its three (Address, Netmask as
    the prefix length, Prefix) and the first and last address.

    >>> ipcalc("10.49.70.3/24")["HostMax"]
    '10.49.70.254'
    >>> ipcalc("fd00:10:244::5/64")["Prefix"]
    'fd00:10:244::/64'
    """
    if ":" in spec:
        v6 = ipaddress.IPv6Interface(spec)
        return {"Address": str(v6.ip), "Netmask": v6.network.prefixlen, "Prefix": str(v6.network),
                "HostMin": str(v6.network.network_address), "HostMax": str(v6.network.broadcast_address),
                "Hosts/Net": v6.network.num_addresses}
    iface = ipaddress.IPv4Interface(spec)
    net = iface.network
    p = net.prefixlen
    if p == 32:
        host_min = host_max = net.network_address
        broadcast = None
        hosts = 1
    elif p == 31:
        host_min, host_max, broadcast, hosts = net.network_address, net.broadcast_address, None, 2
    else:
        host_min, host_max = net.network_address + 1, net.broadcast_address - 1
        broadcast, hosts = net.broadcast_address, net.num_addresses - 2
    return {
        "Address": str(iface.ip),
        "Netmask": f"{net.netmask} = {p}",
        "Wildcard": str(net.hostmask),
        "Network": f"{net}",
        "HostMin": str(host_min),
        "HostMax": str(host_max),
        "Broadcast": None if broadcast is None else str(broadcast),
        "Hosts/Net": hosts,
    }


def format_ipcalc(fields: dict[str, Any]) -> str:
    """Human layout close to Debian's ipcalc (without the binary columns)."""
    order = ["Address", "Netmask", "Wildcard", "Prefix", "=>", "Network", "HostMin", "HostMax", "Broadcast", "Hosts/Net"]
    lines = []
    for key in order:
        if key == "=>" and "Prefix" not in fields:  # IPv6 has no second block
            lines.append("=>")
        elif key != "=>" and fields.get(key) is not None:
            lines.append(f"{key + ':':<11}{fields[key]}")
    return "\n".join(lines)
