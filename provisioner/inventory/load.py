"""YAML → validated :class:`Inventory`, or every problem at once with ``file:line``.

Two passes: the JSON Schema (types, unknown keys, name patterns), then the
semantic checks that need address maths (overlaps, sizes, duplicates). Both
collect all problems before raising one :class:`InventoryError`.
"""

from __future__ import annotations

import copy
import ipaddress
import json
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from .. import addressing as ad
from ..errors import InputError, InventoryError, Problem
from ..yaml_lines import Document, load_file, schema_problems
from ..node_plugin import PLUGIN_NAME
from .model import CNI, Cluster, Inventory, Jump, Node, Pod, SSHSettings


@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(resources.files(__package__).joinpath("schema.json").read_text())
    return schema


REMOVED_KUBELET_FLAGS = {
    "--network-plugin": (1, 24), "--cni-bin-dir": (1, 24), "--cni-conf-dir": (1, 24), "--cni-cache-dir": (1, 24),
    "--network-plugin-mtu": (1, 24), "--experimental-dockershim": (1, 24), "--docker-endpoint": (1, 24),
    "--container-runtime": (1, 27),
}


def parse_version(text: str) -> tuple[int, int]:
    """``v1.23.17`` → ``(1, 23)``."""
    major, minor = str(text).lstrip("v").split(".")[:2]
    return int(major), int(minor)


def with_defaults(part: dict[str, Any], value: Any, root: dict[str, Any] | None = None) -> Any:
    """``value`` with every schema ``default`` filled in: the ONE place defaults come from.

    Follows objects (a missing object with properties becomes ``{}`` and gets its
    defaults too), arrays, ``$ref`` into ``root``'s ``$defs`` and the object branch
    of a ``oneOf``. Applied once at load (inventory) and once at bind (module args).

    >>> with_defaults({"properties": {"a": {"default": 1}, "b": {"type": "object", "properties": {"c": {"default": 2}}}}}, {})
    {'a': 1, 'b': {'c': 2}}
    """
    root = part if root is None else root
    part = _deref(part, root)
    if isinstance(value, dict):
        for branch in part.get("oneOf", []):
            if _deref(branch, root).get("type") == "object":
                part = _deref(branch, root)
        out = dict(value)
        for key, sub in part.get("properties", {}).items():
            sub = _deref(sub, root)
            if key not in out and "default" in sub:
                out[key] = copy.deepcopy(sub["default"])
            elif key not in out and sub.get("type") == "object" and "properties" in sub:
                out[key] = {}
            if key in out:
                out[key] = with_defaults(sub, out[key], root)
        return out
    if isinstance(value, list) and isinstance(part.get("items"), dict):
        if not _fills(part["items"], root):  # a mesh's N-1 routes on every node: nothing in them to fill
            return list(value)
        return [with_defaults(part["items"], v, root) for v in value]
    return value


def _fills(part: dict[str, Any], root: dict[str, Any], depth: int = 0) -> bool:
    """Whether :func:`with_defaults` could add anything to a value of schema ``part`` (a default, or an object
    it would create); a schema nested deeper than any of ours is assumed to."""
    if depth > 16:
        return True
    part = _deref(part, root)
    for branch in [part] + [_deref(b, root) for b in part.get("oneOf", [])]:
        for sub in map(lambda s: _deref(s, root), branch.get("properties", {}).values()):
            if "default" in sub or (sub.get("type") == "object" and "properties" in sub) or _fills(sub, root, depth + 1):
                return True
        if isinstance(branch.get("items"), dict) and _fills(branch["items"], root, depth + 1):
            return True
    return False


def _deref(part: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    """``part`` with its ``$ref`` (into ``root``'s ``$defs``) merged in; keys beside the ``$ref`` win."""
    ref = part.get("$ref", "")
    if ref.startswith("#/$defs/") and ref[len("#/$defs/"):] in root.get("$defs", {}):
        return {**_deref(root["$defs"][ref[len("#/$defs/"):]], root), **{k: v for k, v in part.items() if k != "$ref"}}
    return part


POD = next(b for b in schema()["$defs"]["pod"]["oneOf"] if b.get("type") == "object")


def load_inventory(path: str | Path) -> Inventory:
    """Load, check and build the inventory at ``path``; raises :class:`InventoryError`."""
    try:
        doc = load_file(path)
    except InputError as exc:
        raise InventoryError(exc.problems) from None
    return build(doc)


def build(doc: Document) -> Inventory:
    if not isinstance(doc.data, dict):
        raise InventoryError([Problem(doc.file, 1, "", "an inventory is a mapping with 'cluster' and 'nodes'")])
    problems = schema_problems(doc, schema())
    if problems:
        raise InventoryError(problems)
    checker = _Checker(doc, with_defaults(schema(), doc.data))
    inv = checker.run()
    if checker.problems or inv is None:
        raise InventoryError(checker.problems)
    return inv


class _Checker:
    """Semantic checks; records problems and keeps going so all are reported."""

    def __init__(self, doc: Document, data: dict[str, Any]):
        self.doc, self.data = doc, data  # data: the document with the schema's defaults filled in
        self.problems: list[Problem] = []
        self.warnings: list[str] = []

    def bad(self, path: tuple[Any, ...], message: str) -> None:
        self.problems.append(self.doc.problem(path, message))

    def net(self, path: tuple[Any, ...], value: str) -> ipaddress.IPv4Network | None:
        try:
            return ipaddress.IPv4Network(value)
        except ValueError as exc:
            hint = ""
            try:
                hint = f" (did you mean {ipaddress.IPv4Network(value, strict=False)}?)"
            except ValueError:
                pass
            self.bad(path, f"{value} is not a network: {exc}{hint}")
            return None

    def addr(self, path: tuple[Any, ...], value: str) -> ipaddress.IPv4Address | None:
        try:
            return ipaddress.IPv4Address(value)
        except ValueError as exc:
            self.bad(path, f"{value} is not an IPv4 address: {exc}")
            return None

    def run(self) -> Inventory | None:
        data = self.data
        cluster = self.cluster(data["cluster"])
        ssh = self.ssh(data["ssh"])
        nodes = self.nodes(data["nodes"], cluster, ssh) if cluster else None
        cni = self.cni(data["cni"], cluster, nodes) if cluster and nodes else None
        kube = self.kubernetes(data["kubernetes"])
        dns = self.dns(data["dns"], cluster) if cluster else None
        if self.problems or cluster is None or nodes is None or cni is None or dns is None:
            return None
        return Inventory(Path(self.doc.file), cluster, ssh, tuple(nodes), cni, kube, dns, tuple(self.warnings))

    # -- kubernetes and dns --------------------------------------------------
    def kubernetes(self, k: dict[str, Any]) -> dict[str, Any]:
        base = ("kubernetes",)
        version = parse_version(k["version"])
        k["cni_flags"] = version < (1, 24)
        for i, arg in enumerate(k["kubelet"].get("extra_args", [])):
            flag = arg.split("=", 1)[0]
            if flag in REMOVED_KUBELET_FLAGS and version >= REMOVED_KUBELET_FLAGS[flag]:
                gone = ".".join(map(str, REMOVED_KUBELET_FLAGS[flag]))
                self.bad(base + ("kubelet", "extra_args", i),
                         f"{flag} was removed from kubelet in Kubernetes {gone}; this inventory says {k['version']}"
                         + (" (the CNI dirs now belong to the container runtime)" if flag.startswith(("--cni", "--network-plugin")) else ""))
        mode = k["kube_proxy"]["mode"]
        if mode == "userspace" and version >= (1, 26):
            self.bad(base + ("kube_proxy", "mode"), f"kube-proxy mode userspace was removed in Kubernetes 1.26; "
                                                    f"this inventory says {k['version']}: use iptables, ipvs or nftables")
        if mode == "nftables" and version < (1, 29):
            self.bad(base + ("kube_proxy", "mode"), f"kube-proxy mode nftables needs Kubernetes 1.29 or newer, not {k['version']}")
        return k

    def dns(self, d: dict[str, Any], cluster: Cluster) -> dict[str, Any]:
        for i, ip in enumerate(d.get("upstream", [])):
            if ip == str(cluster.dns_ip) or ip.startswith("127."):
                self.bad(("dns", "upstream", i), f"{ip} as upstream makes a DNS loop (cluster DNS forwarding to itself); "
                                                 "name the real resolvers")
        if "search" not in d:
            dom = cluster.domain
            d["search"] = [f"{d['namespace']}.svc.{dom}", f"svc.{dom}", dom]
        return d

    # -- cni ---------------------------------------------------------------
    def cni(self, c: dict[str, Any], cluster: Cluster, nodes: list[Node]) -> CNI:
        base = ("cni",)
        if "bridge" in c and c["bridge"] != cluster.bridge:
            self.bad(base + ("bridge",), f"{c['bridge']} differs from cluster.bridge {cluster.bridge}: the CNI "
                                         "bridge and the hand-made bridge must be the same")
        offset = c["range_offset"]
        ipam = c["ipam"]
        for i, n in enumerate(nodes):
            if ipam == "host-local" and offset >= n.pod_subnet.num_addresses - 2:
                self.bad(base + ("range_offset",), f"{offset} leaves no CNI addresses in {n.pod_subnet}")
                break
            for j, p in enumerate(n.pods):
                spec = self.doc.data["nodes"][i]["pods"][j]  # as written: was ip given?
                if p.via == "cni" and isinstance(spec, dict) and "ip" in spec:
                    self.bad(("nodes", i, "pods", j, "ip"), "a pod with via: cni gets its address from IPAM; remove ip")
                elif p.via == "manual" and ipam == "host-local" and p.ip >= n.pod_subnet.network_address + offset:
                    self.bad(("nodes", i, "pods", j),
                             f"pod {p.name} has {p.ip}, inside the CNI range (from {n.pod_subnet.network_address + offset}); "
                             "give it a lower address or raise cni.range_offset")
        if c["type"] == "weave":
            alloc = self.net(base + ("weave_ipalloc_range",), c.get("weave_ipalloc_range", str(cluster.pod_cidr)))
            for other in ("node_cidr", "service_cidr"):
                if alloc and ad.overlaps(alloc, getattr(cluster, other)):
                    self.bad(base + ("weave_ipalloc_range",), f"IPALLOC_RANGE {alloc} overlaps cluster.{other} {getattr(cluster, other)}")
            if alloc and not alloc.subnet_of(cluster.pod_cidr):
                self.bad(base + ("weave_ipalloc_range",), f"IPALLOC_RANGE {alloc} is outside cluster.pod_cidr {cluster.pod_cidr}: "
                                                          "pod addresses would not match the inventory")
        src = self.path(c["source"])
        return CNI(
            type=c["type"], bin_dir=c["bin_dir"],
            conf_dir=c["conf_dir"], config_name=c.get("config_name", f"10-{cluster.name}.conflist"),  # derived default
            source=src,
            plugins=self.plugins(c), sha256=tuple(sorted(c.get("sha256", {}).items())),
            tarball_sha256=c.get("tarball_sha256"), is_gateway=c["is_gateway"], ip_masq=c["ip_masq"],
            hairpin_mode=c["hairpin_mode"], mtu=c["mtu"], ipam=ipam, range_offset=offset,
            data_dir=c["data_dir"],
            weave_ipalloc_range=c.get("weave_ipalloc_range", str(cluster.pod_cidr)),  # derived default
        )

    # -- cluster -----------------------------------------------------------
    def cluster(self, c: dict[str, Any]) -> Cluster | None:
        base = ("cluster",)
        ranges = {k: self.net(base + (k,), c[k]) for k in ("node_cidr", "pod_cidr", "service_cidr")}
        names = list(ranges)
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                ra, rb = ranges[a], ranges[b]
                if ra is not None and rb is not None and ad.overlaps(ra, rb):
                    self.bad(base + (b,), f"{ranges[b]} overlaps cluster.{a} {ranges[a]}")
        pod, svc = ranges["pod_cidr"], ranges["service_cidr"]
        prefix = c["node_prefix"]
        if pod and prefix < pod.prefixlen:
            self.bad(base + ("node_prefix",), f"/{prefix} is larger than cluster.pod_cidr {pod}")
        dns = None
        if svc:
            if "dns_ip" in c:
                dns = self.addr(base + ("dns_ip",), c["dns_ip"])
                if dns and dns not in svc:
                    self.bad(base + ("dns_ip",), f"{dns} is outside cluster.service_cidr {svc}")
                elif dns and dns == svc.network_address:
                    self.bad(base + ("dns_ip",), f"{dns} is the network address of {svc}")
                elif dns and svc.num_addresses > 2 and dns == svc.broadcast_address:
                    self.bad(base + ("dns_ip",), f"{dns} is the broadcast address of {svc}")
                elif dns and svc.num_addresses > 1 and dns == ad.api_ip_for(svc):
                    self.bad(base + ("dns_ip",), f"{dns} is the first address of {svc}, taken by the kubernetes API service")
            elif svc.num_addresses > 10:
                dns = ad.dns_ip_for(svc)
            else:
                self.bad(base + ("service_cidr",), f"{svc} is too small for a cluster DNS address")
        router = None
        routing = c["routing"]
        if routing == "router":
            if "router" not in c:
                self.bad(base + ("routing",), "routing: router needs cluster.router (the router's node-network IP)")
            else:
                router = self.addr(base + ("router",), c["router"])
                if router and ranges["node_cidr"] and router not in ranges["node_cidr"]:
                    self.bad(base + ("router",), f"{router} is outside cluster.node_cidr {ranges['node_cidr']}")
                elif router and ranges["node_cidr"]:
                    self.not_a_host(base + ("router",), router, ranges["node_cidr"])
        nodes = ranges["node_cidr"]
        if nodes is None or pod is None or svc is None or dns is None:
            return None
        return Cluster(
            name=c["name"], domain=c["domain"],
            node_cidr=nodes, pod_cidr=pod, node_prefix=prefix,
            service_cidr=svc, dns_ip=dns, bridge=c["bridge"],
            routing=routing, router=router,
        )

    # -- ssh ---------------------------------------------------------------
    def path(self, value: str) -> Path:
        """A path from the inventory: ``~`` expanded, relative ones against the inventory's folder."""
        p = Path(value).expanduser()
        return p if p.is_absolute() else Path(self.doc.file).parent / p

    def ssh(self, s: dict[str, Any]) -> SSHSettings:
        def rel(key: str) -> Path | None:
            return self.path(s[key]) if key in s else None

        if s["host_key_policy"] == "insecure":
            self.warnings.append(str(self.doc.problem(("ssh", "host_key_policy"), (
                "insecure: host keys are not checked, so anyone on the path can pose as a node and receive "
                "root commands; use it only on throw-away labs (no known_hosts file is written)"))))

        return SSHSettings(
            user=s["user"], port=s["port"], identity_file=rel("identity_file"),
            known_hosts=rel("known_hosts"), host_key_policy=s["host_key_policy"],
            sudo=s["sudo"], connect_timeout=float(s["connect_timeout"]),
            jump=self.jump(("ssh", "jump"), s["jump"], s["user"], s["port"]) if "jump" in s else None,
        )

    def jump(self, where: tuple[Any, ...], text: str, user: str, port: int) -> Jump | None:
        """``[user@]host[:port]`` (the schema checked its shape); the user and port default to the ssh section's."""
        if text == "none":
            return None
        login, _, rest = text.rpartition("@")
        host, port_text = rest, None
        if rest.startswith("["):
            host, _, tail = rest[1:].partition("]")
            port_text = tail[1:] if tail.startswith(":") else None
            try:
                ipaddress.IPv6Address(host)
            except ValueError:
                self.bad(where, f"{host} in [] is not an IPv6 address")
                return None
        elif ":" in rest:
            host, _, port_text = rest.partition(":")
        if port_text is not None and not 0 < int(port_text) < 65536:
            self.bad(where, f"port {port_text} is not 1-65535")
            return None
        return Jump(user=login or user, address=host, port=int(port_text) if port_text else port)

    # -- nodes -------------------------------------------------------------
    def nodes(self, items: list[dict[str, Any]], cluster: Cluster, ssh: SSHSettings) -> list[Node] | None:
        port = ssh.port
        ips, explicit = [], []
        for i, n in enumerate(items):
            ips.append(self.node_ip(i, n, cluster))
            explicit.append(self.node_subnet(i, n, cluster))
        self.duplicates("name", [n["name"] for n in items])
        self.duplicates("address", [f"{n['address']}:{n.get('port', port)}" for n in items])
        self.duplicates("ip", [None if ip is None else str(ip) for ip in ips])
        try:
            subnets = ad.allocate_subnets(cluster.pod_cidr, cluster.node_prefix, [e for e in explicit])
        except ValueError as exc:
            self.bad(("cluster", "pod_cidr"), str(exc))
            return None
        out = []
        for i, n in enumerate(items):
            pods = self.pods(i, n["pods"], subnets[i])
            ip = ips[i]
            if ip is None:
                continue
            out.append(Node(
                name=n["name"], address=n["address"], port=n.get("port", port), ip=ip,
                interface=n["interface"], groups=tuple(n["groups"]), pod_subnet=subnets[i], pods=tuple(pods),
                **self.login(i, n, ssh),
            ))
        return out

    def login(self, i: int, n: dict[str, Any], ssh: SSHSettings) -> dict[str, Any]:
        """Who the node is reached as, decided once: the node's own user/key or the ssh section's, and
        whether commands go through ``sudo -n`` (asked for, and the user is not root)."""
        user = n.get("user", ssh.user)
        identity = self.path(n["identity_file"]) if "identity_file" in n else ssh.identity_file
        jump = ssh.jump
        if "jump" in n:
            jump = self.jump(("nodes", i, "jump"), n["jump"], ssh.user, ssh.port)
        return {"user": user, "identity_file": identity, "sudo": ssh.sudo and user != "root", "jump": jump}

    def plugins(self, c: dict[str, Any]) -> tuple[str, ...]:
        """The plugin files to install: the list given, or what ``type`` and ``ipam`` need (decided here, once)."""
        if c.get("plugins"):
            return tuple(c["plugins"])
        own = [] if c["type"] == PLUGIN_NAME else [c["type"]]
        return tuple(own + (["host-local"] if c["ipam"] == "host-local" else ["dhcp"]) + ["loopback"])

    def node_ip(self, i: int, n: dict[str, Any], cluster: Cluster) -> ipaddress.IPv4Address | None:
        path = ("nodes", i, "ip")
        if "ip" in n:
            ip = self.addr(path, n["ip"])
        else:
            try:
                ip = ipaddress.IPv4Address(n["address"])
            except ValueError:
                self.bad(("nodes", i), f"node {n['name']}: 'ip' is required when address is a host name")
                return None
        where = path if "ip" in n else ("nodes", i, "address")  # the line the IP came from
        if ip and ip not in cluster.node_cidr:
            self.bad(where, f"{ip} is outside cluster.node_cidr {cluster.node_cidr}")
        elif ip:
            self.not_a_host(where, ip, cluster.node_cidr)
        if n["interface"] == cluster.bridge:
            self.bad(("nodes", i, "interface"), f"{cluster.bridge} is cluster.bridge, the pod bridge apply makes: "
                                                "the node's own interface needs another name")
        if ip and str(ip) == "10.0.2.15":
            self.warnings.append(str(self.doc.problem(where, "10.0.2.15 is the NAT address every VirtualBox VM has: "
                                                            "the node IP should be its private network address")))
        return ip

    def node_subnet(self, i: int, n: dict[str, Any], cluster: Cluster) -> ipaddress.IPv4Network | None:
        if "pod_subnet" not in n:
            return None
        path = ("nodes", i, "pod_subnet")
        sub = self.net(path, n["pod_subnet"])
        if sub is None:
            return None
        if not sub.subnet_of(cluster.pod_cidr):
            self.bad(path, f"{sub} is outside cluster.pod_cidr {cluster.pod_cidr}")
        if sub.prefixlen != cluster.node_prefix:
            self.bad(path, f"{sub} is a /{sub.prefixlen}; cluster.node_prefix says /{cluster.node_prefix}")
        for j in range(i):
            other = self.doc.data["nodes"][j].get("pod_subnet")
            try:
                if other and ad.overlaps(sub, ipaddress.IPv4Network(other)):
                    self.bad(path, f"{sub} overlaps nodes[{j}].pod_subnet {other}")
            except ValueError:
                pass
        return sub

    def not_a_host(self, path: tuple[Any, ...], ip: ipaddress.IPv4Address, net: ipaddress.IPv4Network) -> None:
        """The network and broadcast addresses of ``net`` are not addresses a host can have."""
        if net.num_addresses > 2 and ip in (net.network_address, net.broadcast_address):
            which = "network" if ip == net.network_address else "broadcast"
            self.bad(path, f"{ip} is the {which} address of {net}, not a host address")

    def duplicates(self, what: str, keys: list[str | None]) -> None:
        seen: dict[str, int] = {}
        for i, k in enumerate(keys):
            if k is None:
                continue
            if k in seen:
                self.bad(("nodes", i, what), f"duplicate {what} {k} (also nodes[{seen[k]}])")
            else:
                seen[k] = i

    def pods(self, i: int, items: list[Any], subnet: ipaddress.IPv4Network) -> list[Pod]:
        specs = [with_defaults(POD, {"name": p}) if isinstance(p, str) else p for p in items]
        fixed = set()
        for j, p in enumerate(specs):
            if "ip" in p:
                ip = self.addr(("nodes", i, "pods", j, "ip"), p["ip"])
                if ip and not ad.usable_host(subnet, ip):
                    self.bad(("nodes", i, "pods", j, "ip"),
                             f"{ip} is not a pod address of {subnet} (network, broadcast and gateway {ad.gateway_for(subnet)} are taken)")
                elif ip in fixed:
                    self.bad(("nodes", i, "pods", j, "ip"), f"duplicate pod ip {ip}")
                fixed.add(ip)
        names: dict[str, int] = {}
        out, next_host = [], 2
        for j, p in enumerate(specs):
            if p["name"] in names:
                self.bad(("nodes", i, "pods", j, "name"), f"duplicate pod name {p['name']} (also pods[{names[p['name']]}])")
            names[p["name"]] = j
            if "ip" in p:
                try:
                    ip = ipaddress.IPv4Address(p["ip"])
                except ValueError:
                    continue  # reported above
            else:
                while next_host < subnet.num_addresses - 1 and ad.nth(subnet, next_host) in fixed:
                    next_host += 1
                if next_host >= subnet.num_addresses - 1:
                    self.bad(("nodes", i, "pods", j), f"{subnet} has no address left for pod {p['name']}")
                    continue
                ip = ad.nth(subnet, next_host)
                next_host += 1
            out.append(Pod(p["name"], ip, p["via"]))
        return out
