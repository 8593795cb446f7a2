#!/usr/bin/env python3
"""provisioner-bridge: a CNI 1.0.0 plugin for a bridge network, Python standard library only.

The manual "net-script" done properly. A container runtime runs it with the
CNI_* environment and the network config on stdin:

    CNI_COMMAND=ADD CNI_CONTAINERID=abc CNI_NETNS=/run/netns/abc CNI_IFNAME=eth0 \\
    CNI_PATH=/etc/cni/bin provisioner-bridge < net.json

ADD   ensure the bridge (and its gateway address when isGateway), create a veth
      pair with one end as CNI_IFNAME in CNI_NETNS, get an address from the IPAM
      plugin named in ipam.type (same environment, same config on stdin), set
      address and routes, print the result. A failed ADD releases its lease and
      removes its veth.
DEL   release the lease, remove the veth; succeeds when repeated or when the
      namespace is already gone.
CHECK the interface, address, routes and bridge port still match prevResult.
VERSION the versions it speaks.

Errors are the spec's error JSON on stdout with its codes, and a non-zero exit.
On the node it needs python3, iproute2 and util-linux (nsenter).
"""

from __future__ import annotations

import fcntl
import hashlib
import ipaddress
import json
import os
import subprocess
import sys

VERSION = "1.0.0"
SUPPORTED = ["0.3.0", "0.3.1", "0.4.0", "1.0.0"]

# error codes from the CNI spec
INCOMPATIBLE, UNSUPPORTED_FIELD, UNKNOWN_CONTAINER, BAD_ENV, IO_FAILURE, DECODE, INVALID_CONFIG, TRY_AGAIN = 1, 2, 3, 4, 5, 6, 7, 11
GENERIC = 100  # plugin-specific: an operation on the node failed


class CNIError(Exception):
    def __init__(self, code: int, msg: str, details: str = ""):
        super().__init__(msg)
        self.code, self.msg, self.details = code, msg, details

    def to_json(self, version: str = VERSION) -> dict:
        out = {"cniVersion": version, "code": self.code, "msg": self.msg}
        if self.details:
            out["details"] = self.details
        return out


# -- helpers ------------------------------------------------------------------
def ip(*args: str, netns: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    argv = ["ip", *args]
    if netns:
        argv = ["nsenter", f"--net={netns}", "--", *argv]
    p = subprocess.run(argv, capture_output=True, text=True)
    if check and p.returncode != 0:
        raise CNIError(GENERIC, f"`{' '.join(argv)}` failed", p.stderr.strip())
    return p


def ip_json(*args: str, netns: str | None = None) -> list:
    p = ip("-json", *args, netns=netns, check=False)
    if p.returncode != 0 or not p.stdout.strip():
        return []
    return json.loads(p.stdout)


def host_veth_name(container_id: str, ifname: str) -> str:
    """Stable per (container, interface), 15 characters at most: ``veth`` + 8 hex."""
    return "veth" + hashlib.sha256(f"{container_id}/{ifname}".encode()).hexdigest()[:8]


def env() -> dict[str, str]:
    e = {k: os.environ.get(k, "") for k in ("CNI_COMMAND", "CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH")}
    if not e["CNI_COMMAND"]:
        raise CNIError(BAD_ENV, "CNI_COMMAND is not set")
    need = {"ADD": ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"],
            "DEL": ["CNI_CONTAINERID", "CNI_IFNAME", "CNI_PATH"],
            "CHECK": ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"]}.get(e["CNI_COMMAND"], [])
    missing = [k for k in need if not e[k]]
    if missing:
        raise CNIError(BAD_ENV, f"missing environment: {', '.join(missing)}")
    return e


def load_config(raw: bytes) -> dict:
    try:
        conf = json.loads(raw)
    except ValueError as exc:
        raise CNIError(DECODE, "cannot decode the network configuration", str(exc)) from None
    if not isinstance(conf, dict):
        raise CNIError(DECODE, "the network configuration is not a JSON object")
    for key in ("cniVersion", "name", "type"):
        if not isinstance(conf.get(key), str) or not conf[key]:
            raise CNIError(INVALID_CONFIG, f"config: '{key}' is required")
    if conf["cniVersion"] not in SUPPORTED:
        raise CNIError(INCOMPATIBLE, f"cniVersion {conf['cniVersion']} is not supported", f"supported: {SUPPORTED}")
    bridge = conf.get("bridge", "cni0")
    if not isinstance(bridge, str) or not 0 < len(bridge) <= 15 or "/" in bridge or " " in bridge:
        raise CNIError(INVALID_CONFIG, f"config: bridge {bridge!r} is not a valid interface name")
    ipam = conf.get("ipam")
    if not isinstance(ipam, dict) or not isinstance(ipam.get("type"), str) or not ipam["type"]:
        raise CNIError(INVALID_CONFIG, "config: ipam.type is required")
    if "/" in ipam["type"]:
        raise CNIError(INVALID_CONFIG, "config: ipam.type must be a plugin name, not a path")
    mtu = conf.get("mtu")
    if mtu is not None and (not isinstance(mtu, int) or not 68 <= mtu <= 65535):
        raise CNIError(INVALID_CONFIG, f"config: mtu {mtu!r} is not between 68 and 65535")
    return conf


def find_plugin(name: str, path: str) -> str:
    for d in path.split(":"):
        candidate = os.path.join(d, name)
        if d and os.access(candidate, os.X_OK):
            return candidate
    raise CNIError(INVALID_CONFIG, f"IPAM plugin {name!r} not found in CNI_PATH {path}")


def ipam(command: str, conf: dict, raw: bytes, e: dict) -> dict | None:
    """Run the IPAM plugin with our environment (CNI_COMMAND=command) and the same config."""
    plugin = find_plugin(conf["ipam"]["type"], e["CNI_PATH"])
    p = subprocess.run([plugin], input=raw, capture_output=True, env=dict(os.environ, CNI_COMMAND=command))
    if p.returncode != 0:
        try:
            err = json.loads(p.stdout)
            raise CNIError(int(err.get("code", GENERIC)), f"IPAM {conf['ipam']['type']}: {err.get('msg', '')}",
                           err.get("details", ""))
        except (ValueError, AttributeError):
            raise CNIError(GENERIC, f"IPAM {conf['ipam']['type']} {command} failed",
                           (p.stderr or p.stdout).decode(errors="replace").strip()) from None
    if command != "ADD":
        return None
    try:
        result = json.loads(p.stdout)
    except ValueError:
        raise CNIError(DECODE, f"IPAM {conf['ipam']['type']} returned no JSON result") from None
    if not result.get("ips"):
        raise CNIError(GENERIC, f"IPAM {conf['ipam']['type']} returned no address")
    return result


class lock:
    """One flock per network: bridge creation and hairpin races between parallel ADDs."""

    def __init__(self, name: str):
        d = os.environ.get("PROVISIONER_CNI_RUNDIR", "/run/provisioner-cni")
        os.makedirs(d, exist_ok=True)
        self.fh = open(os.path.join(d, f"{name}.lock"), "w")

    def __enter__(self):
        fcntl.flock(self.fh, fcntl.LOCK_EX)

    def __exit__(self, *exc):
        fcntl.flock(self.fh, fcntl.LOCK_UN)
        self.fh.close()


# -- ADD ----------------------------------------------------------------------
def ensure_bridge(name: str, gateway: str | None, mtu: int | None) -> dict:
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
    if gateway:
        have = [f"{a['local']}/{a['prefixlen']}" for x in ip_json("addr", "show", "dev", name)
                for a in x.get("addr_info", []) if a.get("family") == "inet"]
        if gateway not in have:
            want = ipaddress.IPv4Interface(gateway)
            clash = [h for h in have if ipaddress.IPv4Interface(h).network.overlaps(want.network)]
            if clash:
                raise CNIError(GENERIC, f"bridge {name} already has {', '.join(clash)}, not the gateway {gateway}")
            p = ip("addr", "add", gateway, "dev", name, check=False)
            if p.returncode != 0 and "File exists" not in p.stderr:
                raise CNIError(GENERIC, f"cannot set {gateway} on {name}", p.stderr.strip())
    ip("link", "set", name, "up")
    return ip_json("link", "show", "dev", name)[0]


def cmd_add(conf: dict, raw: bytes, e: dict) -> dict:
    if not os.path.exists(e["CNI_NETNS"]):
        raise CNIError(UNKNOWN_CONTAINER, f"network namespace {e['CNI_NETNS']} does not exist")
    bridge, ifname, netns = conf.get("bridge", "cni0"), e["CNI_IFNAME"], e["CNI_NETNS"]
    if ip_json("link", "show", "dev", ifname, netns=netns):
        raise CNIError(GENERIC, f"{ifname} already exists in {netns}")
    veth = host_veth_name(e["CNI_CONTAINERID"], ifname)
    result = ipam("ADD", conf, raw, e)
    try:
        return _wire(conf, e, result, bridge, ifname, netns, veth)
    except BaseException:
        ip("link", "del", veth, check=False)
        try:
            ipam("DEL", conf, raw, e)
        except CNIError:
            pass
        raise


def _wire(conf, e, result, bridge, ifname, netns, veth) -> dict:
    ipconf = next((x for x in result["ips"] if ipaddress.ip_interface(x["address"]).version == 4), result["ips"][0])
    address = ipaddress.IPv4Interface(ipconf["address"])
    gw = ipconf.get("gateway") or str(address.network.network_address + 1)
    mtu = conf.get("mtu")
    with lock(conf["name"]):
        br = ensure_bridge(bridge, f"{gw}/{address.network.prefixlen}" if conf.get("isGateway") else None, mtu)
    extra = ["mtu", str(mtu)] if mtu else []
    ip("link", "add", ifname, *extra, "type", "veth", "peer", "name", veth, *extra, "netns", str(os.getpid()), netns=netns)
    ip("link", "set", veth, "master", bridge)
    if conf.get("hairpinMode"):
        ip("link", "set", veth, "type", "bridge_slave", "hairpin", "on")
    ip("link", "set", veth, "up")
    ip("addr", "add", str(address), "dev", ifname, netns=netns)
    ip("link", "set", ifname, "up", netns=netns)
    routes = result.get("routes") or []
    for r in routes:
        via = r.get("gw") or gw
        ip("route", "replace", r["dst"], "via", via, "dev", ifname, netns=netns)
    if conf.get("ipMasq"):
        masq("-A", address, conf["name"], e["CNI_CONTAINERID"])
    host = ip_json("link", "show", "dev", veth)[0]
    cont = ip_json("link", "show", "dev", ifname, netns=netns)[0]
    return {
        "cniVersion": conf["cniVersion"],
        "interfaces": [{"name": bridge, "mac": br.get("address", "")},
                       {"name": veth, "mac": host.get("address", "")},
                       {"name": ifname, "mac": cont.get("address", ""), "sandbox": netns}],
        "ips": [{"address": str(address), "gateway": gw, "interface": 2}],
        "routes": routes,
        "dns": result.get("dns") or conf.get("dns") or {},
    }


def masq(action: str, address, network: str, container: str) -> None:
    tag = f"provisioner-bridge {network} {container}"[:250]
    rule = ["-t", "nat", action, "POSTROUTING", "-s", f"{address.ip}/32", "!", "-d", str(address.network),
            "-j", "MASQUERADE", "-m", "comment", "--comment", tag]
    p = subprocess.run(["iptables", "-w", *rule], capture_output=True, text=True)
    if p.returncode != 0 and action == "-A":
        raise CNIError(GENERIC, "cannot add the masquerade rule", p.stderr.strip())


# -- DEL ----------------------------------------------------------------------
def cmd_del(conf: dict, raw: bytes, e: dict) -> None:
    ipam("DEL", conf, raw, e)  # host-local: releasing an unknown lease succeeds
    ifname, netns = e["CNI_IFNAME"], e["CNI_NETNS"]
    if netns and os.path.exists(netns):
        addrs = [a for x in ip_json("addr", "show", "dev", ifname, netns=netns)
                 for a in x.get("addr_info", []) if a.get("family") == "inet"]
        if conf.get("ipMasq"):
            for a in addrs:
                masq("-D", ipaddress.IPv4Interface(f"{a['local']}/{a['prefixlen']}"), conf["name"], e["CNI_CONTAINERID"])
        ip("link", "del", ifname, netns=netns, check=False)
    ip("link", "del", host_veth_name(e["CNI_CONTAINERID"], ifname), check=False)


# -- CHECK --------------------------------------------------------------------
def cmd_check(conf: dict, raw: bytes, e: dict) -> None:
    prev = conf.get("prevResult")
    if not isinstance(prev, dict):
        raise CNIError(INVALID_CONFIG, "CHECK needs prevResult in the config")
    netns, ifname, bridge = e["CNI_NETNS"], e["CNI_IFNAME"], conf.get("bridge", "cni0")
    if not os.path.exists(netns):
        raise CNIError(UNKNOWN_CONTAINER, f"network namespace {netns} does not exist")
    ipam("CHECK", conf, raw, e)
    cont = ip_json("addr", "show", "dev", ifname, netns=netns)
    if not cont:
        raise CNIError(GENERIC, f"{ifname} is missing in {netns}")
    have = {f"{a['local']}/{a['prefixlen']}" for a in cont[0].get("addr_info", [])}
    for x in prev.get("ips", []):
        if x["address"] not in have:
            raise CNIError(GENERIC, f"{ifname} in {netns} does not hold {x['address']}")
    veth = host_veth_name(e["CNI_CONTAINERID"], ifname)
    host = ip_json("link", "show", "dev", veth)
    if not host:
        raise CNIError(GENERIC, f"host end {veth} of {ifname} is missing")
    if host[0].get("master") != bridge:
        raise CNIError(GENERIC, f"{veth} is not a port of {bridge}")
    routes = {r.get("dst") for r in ip_json("route", "show", netns=netns)}
    for r in prev.get("routes", []):
        dst = "default" if r["dst"] in ("0.0.0.0/0", "default") else str(ipaddress.ip_network(r["dst"]))
        if dst not in routes:
            raise CNIError(GENERIC, f"route to {r['dst']} is missing in {netns}")


# -- main ---------------------------------------------------------------------
def main() -> int:
    version = VERSION
    try:
        e = env()
        if e["CNI_COMMAND"] == "VERSION":
            print(json.dumps({"cniVersion": VERSION, "supportedVersions": SUPPORTED}))
            return 0
        raw = sys.stdin.buffer.read()
        conf = load_config(raw)
        version = conf["cniVersion"]
        if e["CNI_COMMAND"] == "ADD":
            print(json.dumps(cmd_add(conf, raw, e)))
        elif e["CNI_COMMAND"] == "DEL":
            cmd_del(conf, raw, e)
        elif e["CNI_COMMAND"] == "CHECK":
            cmd_check(conf, raw, e)
        else:
            raise CNIError(BAD_ENV, f"unknown CNI_COMMAND {e['CNI_COMMAND']!r}")
        return 0
    except CNIError as err:
        print(json.dumps(err.to_json(version)))
        return 1
    except OSError as exc:
        print(json.dumps(CNIError(IO_FAILURE, "I/O failure", str(exc)).to_json(version)))
        return 1


if __name__ == "__main__":
    sys.exit(main())
