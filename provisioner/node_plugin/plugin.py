#!/usr/bin/env python3
"""provisioner-bridge: a CNI plugin for a bridge network (spec 0.3.0 to 1.1.0), Python standard library only.

The manual "net-script" done properly. A container runtime runs it with the
CNI_* environment and the network config on stdin:

    CNI_COMMAND=ADD CNI_CONTAINERID=abc CNI_NETNS=/run/netns/abc CNI_IFNAME=eth0 \\
    CNI_PATH=/etc/cni/bin provisioner-bridge < net.json

ADD     ensure the bridge (and its gateway address when isGateway), create a veth
        pair with one end as CNI_IFNAME in CNI_NETNS, get an address from the IPAM
        plugin named in ipam.type, set address and routes, print the result in the
        config's cniVersion. A failed ADD undoes all it did (veth, lease, NAT rule).
DEL     remove the interface, then release the lease, then the NAT rule (as the
        reference bridge plugin does); succeeds when repeated or when the
        namespace is gone.
CHECK   (0.4.0 and later) the interface, addresses, routes and bridge port still
        match prevResult.
GC      (1.1.0) release leases and NAT rules of attachments not in
        cni.dev/valid-attachments.
STATUS  (1.1.0) ready when ip works and the IPAM plugin is there (and says so).
VERSION the versions it speaks, in the cniVersion asked for.

One lock per network covers each ADD, DEL and GC from start to end. Every error
is the spec's error JSON on stdout with its code, and a non-zero exit: whatever
happens, a runtime never sees a traceback. On the node it needs python3,
iproute2 and util-linux (nsenter); iptables only with ipMasq.
"""

from __future__ import annotations

import fcntl
import hashlib
import ipaddress
import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Callable
from typing import Any

LATEST = "1.1.0"
SUPPORTED = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]
MAX_STDIN = 1 << 20

# error codes from the CNI spec
INCOMPATIBLE, UNSUPPORTED_FIELD, UNKNOWN_CONTAINER, BAD_ENV, IO_FAILURE, DECODE, INVALID_CONFIG, TRY_AGAIN = 1, 2, 3, 4, 5, 6, 7, 11
NOT_AVAILABLE = 50  # STATUS: cannot service ADD
GENERIC = 100       # plugin-specific: an operation on the node failed
NAME_RE = re.compile(r"\A[a-zA-Z0-9][a-zA-Z0-9_.\-]*\Z")  # network names and container IDs (the spec's rule)


class CNIError(Exception):
    def __init__(self, code: int, msg: str, details: str = ""):
        super().__init__(msg)
        self.code, self.msg, self.details = code, msg, details

    def to_json(self, version: str = LATEST) -> dict[str, Any]:
        out = {"cniVersion": version, "code": self.code, "msg": self.msg}
        if self.details:
            out["details"] = self.details
        return out


def vtuple(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in v.split("."))


# -- helpers ------------------------------------------------------------------
def ip(*args: str, netns: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    argv = ["ip", *args]
    if netns:
        argv = ["nsenter", f"--net={netns}", "--", *argv]
    p = subprocess.run(argv, capture_output=True, text=True)
    if check and p.returncode != 0:
        raise CNIError(GENERIC, f"`{' '.join(argv)}` failed", p.stderr.strip())
    return p


def ip_json(*args: str, netns: str | None = None) -> list[Any]:
    p = ip("-json", *args, netns=netns, check=False)
    if p.returncode != 0 or not p.stdout.strip():
        return []
    out = json.loads(p.stdout)
    return out if isinstance(out, list) else []


def host_veth_name(container_id: str, ifname: str) -> str:
    """Stable per (container, interface), 15 characters at most: ``veth`` + 8 hex."""
    return "veth" + hashlib.sha256(f"{container_id}/{ifname}".encode()).hexdigest()[:8]


def valid_ifname(name: str) -> bool:
    """The spec's interface name rule: 1-15 bytes, not . or .., no / : or white space."""
    return (0 < len(name.encode()) <= 15 and name not in (".", "..")
            and not any(c in "/:" or c.isspace() for c in name) and name.isprintable())


def env() -> dict[str, str]:
    e = {k: os.environ.get(k, "") for k in ("CNI_COMMAND", "CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH")}
    cmd = e["CNI_COMMAND"]
    if not cmd:
        raise CNIError(BAD_ENV, "CNI_COMMAND is not set")
    need = {"ADD": ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"],
            "DEL": ["CNI_CONTAINERID", "CNI_IFNAME", "CNI_PATH"],
            "CHECK": ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"],
            "GC": ["CNI_PATH"], "STATUS": []}.get(cmd, [])
    missing = [k for k in need if not e[k]]
    if missing:
        raise CNIError(UNKNOWN_CONTAINER if missing == ["CNI_CONTAINERID"] else BAD_ENV,
                       f"missing environment: {', '.join(missing)}")
    if "CNI_CONTAINERID" in need and not NAME_RE.match(e["CNI_CONTAINERID"]):
        raise CNIError(BAD_ENV, "invalid characters in CNI_CONTAINERID", repr(e["CNI_CONTAINERID"])[:200])
    if "CNI_IFNAME" in need and not valid_ifname(e["CNI_IFNAME"]):
        raise CNIError(BAD_ENV, "CNI_IFNAME is not a valid interface name", repr(e["CNI_IFNAME"])[:200])
    return e


def load_config(raw: bytes) -> dict[str, Any]:
    try:
        conf = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise CNIError(DECODE, "cannot decode the network configuration", str(exc)[:200]) from None
    if not isinstance(conf, dict):
        raise CNIError(DECODE, "the network configuration is not a JSON object")
    for key in ("cniVersion", "name", "type"):
        if not isinstance(conf.get(key), str) or not conf[key]:
            raise CNIError(INVALID_CONFIG, f"config: '{key}' is required")
    if conf["cniVersion"] not in SUPPORTED:
        raise CNIError(INCOMPATIBLE, f"cniVersion {conf['cniVersion']!r} is not supported", f"supported: {SUPPORTED}")
    if not NAME_RE.match(conf["name"]):
        raise CNIError(INVALID_CONFIG, "invalid characters found in network name", repr(conf["name"])[:200])
    bridge = conf.get("bridge", "cni0")
    if not isinstance(bridge, str) or not valid_ifname(bridge):
        raise CNIError(INVALID_CONFIG, f"config: bridge {bridge!r} is not a valid interface name")
    ipam_conf = conf.get("ipam")
    if not isinstance(ipam_conf, dict) or not isinstance(ipam_conf.get("type"), str) or not ipam_conf["type"]:
        raise CNIError(INVALID_CONFIG, "config: ipam.type is required")
    if not NAME_RE.match(ipam_conf["type"]):
        raise CNIError(INVALID_CONFIG, "config: ipam.type must be a plugin name, not a path")
    mtu = conf.get("mtu")
    if mtu is not None and (type(mtu) is not int or not 68 <= mtu <= 65535):
        raise CNIError(INVALID_CONFIG, f"config: mtu {mtu!r} is not between 68 and 65535")
    prev = conf.get("prevResult")
    if prev is not None:
        conf["prevResult"] = parse_result(prev, "prevResult")
    return conf


def parse_result(result: Any, what: str) -> dict[str, Any]:
    """A result (from IPAM, or prevResult) checked and made 1.x-shaped; CNIError(DECODE) when malformed."""
    def bad(why: str) -> CNIError:
        return CNIError(DECODE, f"{what} is malformed: {why}")
    if not isinstance(result, dict):
        raise bad("not a JSON object")
    ips, routes, ifaces = result.get("ips") or [], result.get("routes") or [], result.get("interfaces") or []
    if not all(isinstance(x, list) for x in (ips, routes, ifaces)):
        raise bad("ips, routes and interfaces must be lists")
    out_ips = []
    for x in ips:
        if not isinstance(x, dict) or not isinstance(x.get("address"), str):
            raise bad("every ips[] entry needs an address")
        try:
            address = ipaddress.ip_interface(x["address"])
            gateway = str(ipaddress.ip_address(x["gateway"])) if x.get("gateway") is not None else None
        except (ValueError, TypeError) as exc:
            raise bad(str(exc)) from None
        entry = {"address": str(address)}
        if gateway:
            entry["gateway"] = gateway
        if isinstance(x.get("interface"), int) and x["interface"] >= 0:
            entry["interface"] = x["interface"]
        out_ips.append(entry)
    out_routes = []
    for r in routes:
        if not isinstance(r, dict) or not isinstance(r.get("dst"), str):
            raise bad("every routes[] entry needs a dst")
        try:
            route = {"dst": str(ipaddress.ip_network(r["dst"], strict=False))}
            if r.get("gw") is not None:
                route["gw"] = str(ipaddress.ip_address(r["gw"]))
        except (ValueError, TypeError) as exc:
            raise bad(str(exc)) from None
        out_routes.append(route)
    if not all(isinstance(i, dict) and isinstance(i.get("name"), str) for i in ifaces):
        raise bad("every interfaces[] entry needs a name")
    dns = result.get("dns") if isinstance(result.get("dns"), dict) else {}
    return {"interfaces": ifaces, "ips": out_ips, "routes": out_routes, "dns": dns}


def render(result: dict[str, Any], version: str) -> dict[str, Any]:
    """The result in the shape of ``version``: 0.3.x/0.4.0 name each IP's version; 1.x does not."""
    ips = [dict(x) for x in result["ips"]]
    if vtuple(version) < (1, 0, 0):
        for x in ips:
            x["version"] = str(ipaddress.ip_interface(x["address"]).version)
    return {"cniVersion": version, "interfaces": result["interfaces"], "ips": ips, "routes": result["routes"],
            "dns": result["dns"]}


def find_plugin(name: str, path: str) -> str:
    for d in path.split(":"):
        candidate = os.path.join(d, name)
        if d and os.access(candidate, os.X_OK):
            return candidate
    raise CNIError(INVALID_CONFIG, f"IPAM plugin {name!r} not found in CNI_PATH {path}")


def exec_plugin(plugin: str, command: str, stdin: bytes) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([plugin], input=stdin, capture_output=True, env=dict(os.environ, CNI_COMMAND=command))


def ipam(command: str, conf: dict[str, Any], raw: bytes, e: dict[str, Any]) -> bytes:
    """Run the IPAM plugin with our environment (CNI_COMMAND=command) and the same config; its stdout.

    When the config's version is newer than the IPAM plugin speaks (1.1.0 against
    a 1.0.0 host-local), it is asked in its own newest version at or below ours.
    """
    name = conf["ipam"]["type"]
    plugin = find_plugin(name, e["CNI_PATH"])
    version = ipam_version(plugin, conf["cniVersion"])
    stdin = raw if version == conf["cniVersion"] else json.dumps({**json.loads(raw), "cniVersion": version}).encode()
    p = exec_plugin(plugin, command, stdin)
    if p.returncode != 0:
        try:
            err = json.loads(p.stdout)
            code = err.get("code") if isinstance(err.get("code"), int) else GENERIC
            msg, details = str(err.get("msg", "")), str(err.get("details", ""))
        except (ValueError, AttributeError, RecursionError):
            code, msg, details = GENERIC, f"{command} failed", (p.stderr or p.stdout).decode(errors="replace").strip()
        raise CNIError(code, f"IPAM {name}: {msg}", details)
    return p.stdout


def ipam_add(conf: dict[str, Any], raw: bytes, e: dict[str, Any]) -> dict[str, Any]:
    """The IPAM plugin's ADD result, checked: an address at least, and at most one of each family (host-local
    with a range set per family gives a dual-stack pod one of each)."""
    name = conf["ipam"]["type"]
    out = ipam("ADD", conf, raw, e)
    try:
        result = parse_result(json.loads(out), f"IPAM {name} result")
    except (ValueError, RecursionError):
        raise CNIError(DECODE, f"IPAM {name} returned no JSON result") from None
    versions = [ipaddress.ip_interface(x["address"]).version for x in result["ips"]]
    if not versions:
        raise CNIError(GENERIC, f"IPAM {name} returned no address")
    if len(set(versions)) != len(versions):
        raise CNIError(GENERIC, f"IPAM {name} returned two addresses of one family: one range set per family")
    return result


def ipam_version(plugin: str, wanted: str) -> str:
    if vtuple(wanted) <= (1, 0, 0):
        return wanted
    p = exec_plugin(plugin, "VERSION", json.dumps({"cniVersion": wanted}).encode())
    try:
        theirs = [v for v in json.loads(p.stdout)["supportedVersions"] if v in SUPPORTED]
        return str(max((v for v in theirs if vtuple(v) <= vtuple(wanted)), key=vtuple))
    except (ValueError, KeyError, TypeError):
        return wanted


class lock:
    """One flock per network around each ADD, DEL and GC, start to end."""

    def __init__(self, name: str):
        d = os.environ.get("PROVISIONER_CNI_RUNDIR", "/run/provisioner-cni")
        os.makedirs(d, mode=0o700, exist_ok=True)
        self.fh = open(os.path.join(d, f"{name}.lock"), "w")  # name checked against NAME_RE: no / or ..

    def __enter__(self) -> None:
        fcntl.flock(self.fh, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self.fh, fcntl.LOCK_UN)
        self.fh.close()


# -- ADD ----------------------------------------------------------------------
def ensure_bridge(name: str, gateways: list[str], mtu: int | None) -> dict[str, Any]:
    links = ip_json("-d", "link", "show", "dev", name)
    if not links:
        p = ip("link", "add", name, "type", "bridge", check=False)
        if p.returncode != 0 and "File exists" not in p.stderr:
            raise CNIError(GENERIC, f"cannot create bridge {name}", p.stderr.strip())
        links = ip_json("-d", "link", "show", "dev", name)
    kind = ((links[0].get("linkinfo") or {}).get("info_kind")) if links else None
    if kind != "bridge":
        raise CNIError(GENERIC, f"{name} exists and is not a bridge")
    if mtu:
        ip("link", "set", name, "mtu", str(mtu))
    have = [f"{a['local']}/{a['prefixlen']}" for x in (ip_json("addr", "show", "dev", name) if gateways else [])
            for a in x.get("addr_info", []) if a.get("family") == "inet"
            or (a.get("family") == "inet6" and a.get("scope") == "global")]
    for gateway in gateways:
        want = ipaddress.ip_interface(gateway)
        if str(want) in have:
            continue
        clash = [h for h in have if ipaddress.ip_interface(h).version == want.version
                 and ipaddress.ip_interface(h).network.overlaps(want.network)]
        if clash:
            raise CNIError(GENERIC, f"bridge {name} already has {', '.join(clash)}, not the gateway {gateway}")
        p = ip("addr", "add", str(want), "dev", name, *(["nodad"] if want.version == 6 else []), check=False)
        if p.returncode != 0 and "File exists" not in p.stderr:
            raise CNIError(GENERIC, f"cannot set {gateway} on {name}", p.stderr.strip())
    ip("link", "set", name, "up")
    link: dict[str, Any] = ip_json("link", "show", "dev", name)[0]
    return link


def cmd_add(conf: dict[str, Any], raw: bytes, e: dict[str, Any]) -> dict[str, Any]:
    if not os.path.exists(e["CNI_NETNS"]):
        raise CNIError(UNKNOWN_CONTAINER, f"network namespace {e['CNI_NETNS']} does not exist")
    bridge, ifname, netns = conf.get("bridge", "cni0"), e["CNI_IFNAME"], e["CNI_NETNS"]
    if ip_json("link", "show", "dev", ifname, netns=netns):
        raise CNIError(GENERIC, f"{ifname} already exists in {netns}")
    veth = host_veth_name(e["CNI_CONTAINERID"], ifname)
    result = ipam_add(conf, raw, e)
    try:
        ours = _wire(conf, e, result, bridge, ifname, netns, veth)
    except BaseException:  # undo everything this ADD did, then report the first error
        ip("link", "del", veth, check=False)
        masq_teardown(conf["name"], e["CNI_CONTAINERID"], ifname)
        try:
            ipam("DEL", conf, raw, e)
        except CNIError:
            pass
        raise
    prev = conf.get("prevResult")
    if prev:  # a plugin earlier in the chain: its interfaces, addresses and routes come first
        shift = len(prev["interfaces"])
        ours["ips"] = [{**x, "interface": x["interface"] + shift} for x in ours["ips"]]
        ours = {"interfaces": prev["interfaces"] + ours["interfaces"], "ips": prev["ips"] + ours["ips"],
                "routes": prev["routes"] + ours["routes"], "dns": ours["dns"] or prev["dns"]}
    return render(ours, conf["cniVersion"])


def _wire(conf: dict[str, Any], e: dict[str, Any], result: dict[str, Any], bridge: str, ifname: str, netns: str,
          veth: str) -> dict[str, Any]:
    """The veth pair, the container's address of each family the IPAM gave (IPv6 without DAD), its routes
    (each via the gateway of its family) and, with ipMasq, a NAT rule per address."""
    addresses = [ipaddress.ip_interface(x["address"]) for x in result["ips"]]
    gws = {a.version: x.get("gateway") or str(a.network.network_address + 1) for a, x in zip(addresses, result["ips"])}
    mtu = conf.get("mtu")
    br = ensure_bridge(bridge, [f"{gws[a.version]}/{a.network.prefixlen}" for a in addresses] if conf.get("isGateway") else [],
                       mtu)
    extra = ["mtu", str(mtu)] if mtu else []
    ip("link", "add", ifname, *extra, "type", "veth", "peer", "name", veth, *extra, "netns", str(os.getpid()), netns=netns)
    ip("link", "set", veth, "master", bridge)
    if conf.get("hairpinMode"):
        ip("link", "set", veth, "type", "bridge_slave", "hairpin", "on")
    ip("link", "set", veth, "up")
    for address in addresses:
        ip("addr", "add", str(address), "dev", ifname, *(["nodad"] if address.version == 6 else []), netns=netns)
    ip("link", "set", ifname, "up", netns=netns)
    routes = result["routes"]
    for r in routes:
        version = ipaddress.ip_network(r["dst"]).version
        via = r.get("gw") or gws.get(version)
        if via is None:
            raise CNIError(GENERIC, f"route to {r['dst']}: no IPv{version} address to reach it from")
        ip("route", "replace", r["dst"], "via", via, "dev", ifname, netns=netns)
    if conf.get("ipMasq"):
        for address in addresses:
            masq_setup(address, conf["name"], e["CNI_CONTAINERID"], ifname)
    host = ip_json("link", "show", "dev", veth)[0]
    cont = ip_json("link", "show", "dev", ifname, netns=netns)[0]
    return {
        "interfaces": [{"name": bridge, "mac": br.get("address", "")},
                       {"name": veth, "mac": host.get("address", "")},
                       {"name": ifname, "mac": cont.get("address", ""), "sandbox": netns}],
        "ips": [{"address": str(a), "gateway": gws[a.version], "interface": 2} for a in addresses],
        "routes": routes,
        "dns": result["dns"] or (conf.get("dns") if isinstance(conf.get("dns"), dict) else {}),
    }


def masq_tag(network: str, container: str, ifname: str) -> str:
    return f"provisioner-bridge {network} {container} {ifname}"[:250]


TABLES = {4: "iptables", 6: "ip6tables"}


def masq_setup(address: ipaddress.IPv4Interface | ipaddress.IPv6Interface, network: str, container: str,
               ifname: str) -> None:
    rule = ["-t", "nat", "-A", "POSTROUTING", "-s", f"{address.ip}/{address.max_prefixlen}", "!", "-d",
            str(address.network), "-j", "MASQUERADE", "-m", "comment", "--comment", masq_tag(network, container, ifname)]
    p = subprocess.run([TABLES[address.version], "-w", *rule], capture_output=True, text=True)
    if p.returncode != 0:
        raise CNIError(GENERIC, f"cannot add the IPv{address.version} masquerade rule", p.stderr.strip())


def masq_rules(network: str, keep: Callable[[str, str], bool] = lambda container, ifname: False) -> list[list[str]]:
    """Our NAT rules of ``network`` (found by their comment) in both families' tables, as ``[command, -D
    arguments…]``, except those kept."""
    out = []
    for table in TABLES.values():
        try:
            p = subprocess.run([table, "-w", "-t", "nat", "-S", "POSTROUTING"], capture_output=True, text=True)
        except FileNotFoundError:  # no ip6tables on the node: it has no IPv6 rules of ours either
            continue
        for line in p.stdout.splitlines() if p.returncode == 0 else []:
            m = re.search(r'--comment "?provisioner-bridge (\S+) (\S+) (\S+?)"?(\s|\Z)', line)
            if m and m.group(1) == network and not keep(m.group(2), m.group(3)) and line.startswith("-A "):
                out.append([table, "-w", "-t", "nat", "-D", *shlex.split(line[3:])])
    return out


def masq_teardown(network: str, container: str, ifname: str) -> None:
    """Remove this attachment's NAT rules by their comment: no address needed, so nothing leaks when the netns is gone."""
    for rule in masq_rules(network, keep=lambda c, i: (c, i) != (container, ifname)):
        subprocess.run(rule, capture_output=True)


# -- DEL ----------------------------------------------------------------------
def cmd_del(conf: dict[str, Any], raw: bytes, e: dict[str, Any]) -> None:
    ifname, netns = e["CNI_IFNAME"], e["CNI_NETNS"]
    if netns and os.path.exists(netns):  # the interface first, as the reference plugin does
        ip("link", "del", ifname, netns=netns, check=False)
    ip("link", "del", host_veth_name(e["CNI_CONTAINERID"], ifname), check=False)
    ipam("DEL", conf, raw, e)  # host-local: releasing an unknown lease succeeds
    if conf.get("ipMasq"):
        masq_teardown(conf["name"], e["CNI_CONTAINERID"], ifname)


# -- CHECK --------------------------------------------------------------------
def cmd_check(conf: dict[str, Any], raw: bytes, e: dict[str, Any]) -> None:
    prev = conf.get("prevResult")
    if not prev:
        raise CNIError(INVALID_CONFIG, "CHECK needs prevResult in the config")
    netns, ifname, bridge = e["CNI_NETNS"], e["CNI_IFNAME"], conf.get("bridge", "cni0")
    if not os.path.exists(netns):
        raise CNIError(UNKNOWN_CONTAINER, f"network namespace {netns} does not exist")
    ipam("CHECK", conf, raw, e)
    cont = ip_json("addr", "show", "dev", ifname, netns=netns)
    if not cont:
        raise CNIError(GENERIC, f"{ifname} is missing in {netns}")
    have = {f"{a['local']}/{a['prefixlen']}" for a in cont[0].get("addr_info", [])}
    mine = {i for i, x in enumerate(prev["interfaces"]) if x.get("name") == ifname and x.get("sandbox")}
    for x in prev["ips"]:
        if (not mine or x.get("interface") in mine) and x["address"] not in have:
            raise CNIError(GENERIC, f"{ifname} in {netns} does not hold {x['address']}")
    veth = host_veth_name(e["CNI_CONTAINERID"], ifname)
    host = ip_json("link", "show", "dev", veth)
    if not host:
        raise CNIError(GENERIC, f"host end {veth} of {ifname} is missing")
    if host[0].get("master") != bridge:
        raise CNIError(GENERIC, f"{veth} is not a port of {bridge}")
    routes = {r.get("dst") for r in ip_json("route", "show", netns=netns) + ip_json("-6", "route", "show", netns=netns)}
    for r in prev["routes"]:
        dst = "default" if r["dst"] in ("0.0.0.0/0", "::/0") else r["dst"]
        if dst not in routes:
            raise CNIError(GENERIC, f"route to {r['dst']} is missing in {netns}")


# -- GC and STATUS (1.1.0) ----------------------------------------------------------
def cmd_gc(conf: dict[str, Any], raw: bytes, e: dict[str, Any]) -> None:
    """Forget every attachment not in cni.dev/valid-attachments: its NAT rule and its lease.

    The IPAM plugin gets the GC first; one that does not speak 1.1.0 (Debian's
    host-local 1.1) has its stale host-local lease files removed here instead.
    """
    valid = conf.get("cni.dev/valid-attachments", [])
    if not isinstance(valid, list) or not all(isinstance(a, dict) for a in valid):
        raise CNIError(INVALID_CONFIG, "cni.dev/valid-attachments must be a list of objects")
    keep = {(str(a.get("containerID")), str(a.get("ifname"))) for a in valid}
    for rule in masq_rules(conf["name"], keep=lambda c, i: (c, i) in keep):
        subprocess.run(rule, capture_output=True)
    plugin = find_plugin(conf["ipam"]["type"], e["CNI_PATH"])
    if ipam_version(plugin, conf["cniVersion"]) == conf["cniVersion"]:
        ipam("GC", conf, raw, e)
    elif conf["ipam"]["type"] == "host-local":
        gc_host_local(conf, keep)


def gc_host_local(conf: dict[str, Any], keep: set[Any]) -> None:
    """host-local keeps one file per address, holding "containerID\\nifname": remove those no longer valid."""
    data_dir = conf["ipam"].get("dataDir") or "/var/lib/cni/networks"
    d = os.path.join(str(data_dir), conf["name"])
    for entry in os.listdir(d) if os.path.isdir(d) else []:
        try:
            ipaddress.ip_address(entry)
        except ValueError:
            continue  # lock, last_reserved_ip.*
        path = os.path.join(d, entry)
        with open(path, errors="replace") as fh:
            owner = (fh.read().split("\n") + [""])[:2]
        if (owner[0].strip(), owner[1].strip()) not in keep:
            os.unlink(path)


def cmd_status(conf: dict[str, Any], raw: bytes, e: dict[str, Any]) -> None:
    if ip("-json", "link", "show", check=False).returncode != 0:
        raise CNIError(NOT_AVAILABLE, "`ip` does not work on this node")
    try:
        plugin = find_plugin(conf["ipam"]["type"], e["CNI_PATH"] or os.environ.get("PATH", ""))
    except CNIError as err:
        raise CNIError(NOT_AVAILABLE, err.msg) from None
    if ipam_version(plugin, conf["cniVersion"]) == conf["cniVersion"]:
        try:
            ipam("STATUS", conf, raw, e)
        except CNIError as err:
            raise CNIError(NOT_AVAILABLE, err.msg, err.details) from None


# -- main ---------------------------------------------------------------------
SINCE = {"CHECK": "0.4.0", "GC": "1.1.0", "STATUS": "1.1.0"}


def read_stdin() -> bytes:
    raw = sys.stdin.buffer.read(MAX_STDIN + 1)
    if len(raw) > MAX_STDIN:
        raise CNIError(DECODE, f"the network configuration is larger than {MAX_STDIN} bytes")
    return raw


def version_info() -> dict[str, Any]:
    """VERSION: answered in the cniVersion of the input (the newest when there is none)."""
    try:
        asked = json.loads(read_stdin() or b"{}").get("cniVersion")
    except (ValueError, AttributeError, RecursionError, CNIError):
        asked = None
    return {"cniVersion": asked if asked in SUPPORTED else LATEST, "supportedVersions": SUPPORTED}


def run(cmd: str, e: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any] | None:
    raw = read_stdin()
    conf = load_config(raw)
    answer["version"] = conf["cniVersion"]  # errors from here on are in the config's version
    if cmd in SINCE and vtuple(conf["cniVersion"]) < vtuple(SINCE[cmd]):
        raise CNIError(INCOMPATIBLE, f"config version {conf['cniVersion']} does not allow {cmd} (needs {SINCE[cmd]})")
    if cmd == "STATUS":
        cmd_status(conf, raw, e)  # an error is raised; nothing is printed on success
        return None
    if cmd == "CHECK":
        cmd_check(conf, raw, e)
        return None
    with lock(conf["name"]):
        return {"ADD": cmd_add, "DEL": cmd_del, "GC": cmd_gc}[cmd](conf, raw, e)


def main() -> int:
    answer = {"version": LATEST}
    try:
        e = env()
        cmd = e["CNI_COMMAND"]
        if cmd == "VERSION":
            print(json.dumps(version_info()))
            return 0
        if cmd not in ("ADD", "DEL", "CHECK", "GC", "STATUS"):
            raise CNIError(BAD_ENV, f"unknown CNI_COMMAND {cmd!r}")
        out = run(cmd, e, answer)
        if out is not None:
            print(json.dumps(out))
        return 0
    except CNIError as err:
        print(json.dumps(err.to_json(answer["version"])))
    except OSError as exc:
        print(json.dumps(CNIError(IO_FAILURE, "I/O failure", str(exc)).to_json(answer["version"])))
    except BaseException as exc:  # noqa: BLE001 - a runtime gets error JSON, never a traceback
        print(json.dumps(CNIError(GENERIC, "internal error", f"{type(exc).__name__}: {exc}"[:500]).to_json(answer["version"])))
    return 1


if __name__ == "__main__":
    sys.exit(main())
