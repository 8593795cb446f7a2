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
from collections.abc import Callable
from typing import Any

from .. import addressing as ad
from ..addressing import Addr, Net
from ..errors import InputError, InventoryError, Problem
from ..yaml_lines import Document, load_file, schema_problems
from ..node_plugin import PLUGIN_NAME
from .model import CNI, Cluster, Endpoint, Inventory, Jump, Node, Pod, Service, ServicePort, SSHSettings


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

    def net(self, path: tuple[Any, ...], value: str) -> Net | None:
        try:
            return ipaddress.ip_network(value)
        except ValueError as exc:
            hint = ""
            try:
                hint = f" (did you mean {ipaddress.ip_network(value, strict=False)}?)"
            except ValueError:
                pass
            self.bad(path, f"{value} is not a network: {str(exc).replace('does not appear to be an IPv4 or IPv6 network', 'is neither IPv4 nor IPv6')}{hint}")
            return None

    def addr(self, path: tuple[Any, ...], value: str) -> Addr | None:
        try:
            return ipaddress.ip_address(value)
        except ValueError:
            self.bad(path, f"{value} is not an IPv4 or IPv6 address")
            return None

    def nets(self, path: tuple[Any, ...], value: Any) -> dict[int, tuple[Net, tuple[Any, ...]]] | None:
        """A network given alone or as a list of one per family → {4 or 6: (network, its path)}."""
        return self.per_family(path, value, self.net, "network")

    def ips(self, path: tuple[Any, ...], value: Any) -> dict[int, tuple[Addr, tuple[Any, ...]]] | None:
        """An address given alone or as a list of one per family → {4 or 6: (address, its path)}."""
        return self.per_family(path, value, self.addr, "address")

    def per_family(self, path: tuple[Any, ...], value: Any, parse: Callable[[tuple[Any, ...], str], Any],
                   what: str) -> dict[int, tuple[Any, tuple[Any, ...]]] | None:
        """A value given alone or as a list of one per family → {4 or 6: (parsed, its path)}; None when any
        part is wrong (reported)."""
        items = value if isinstance(value, list) else [value]
        out: dict[int, tuple[Any, tuple[Any, ...]]] = {}
        ok = True
        for k, item in enumerate(items):
            where = path + (k,) if isinstance(value, list) else path
            parsed = parse(where, item)
            if parsed is None:
                ok = False
                continue
            version = parsed.version
            if version in out:
                self.bad(where, f"two {ad.family(version)} {what}s ({out[version][0]} and {parsed}): give one per family")
                ok = False
                continue
            out[version] = (parsed, where)
        return out if ok else None

    def in_families(self, path: tuple[Any, ...], got: dict[int, Any], families: tuple[int, ...], what: str,
                    example: str) -> bool:
        """``got`` has exactly the cluster's families; else a problem saying which one is missing or extra."""
        missing = [f for f in families if f not in got]
        extra = [f for f in got if f not in families]
        for f in extra:
            self.bad(got[f][1], f"{got[f][0]} is {ad.family(f)}, but the cluster has no {ad.family(f)} pod range "
                                f"(cluster.pod_cidr gives {self.families_text(families)})")
        for f in missing:
            self.bad(path, f"the cluster is {self.families_text(families)}: {what} needs an {ad.family(f)} address "
                           f"too, e.g. {example}")
        return not missing and not extra

    @staticmethod
    def families_text(families: tuple[int, ...]) -> str:
        return " and ".join(ad.family(f) for f in families) + (" (dual-stack)" if len(families) > 1 else " only")

    # -- cluster -----------------------------------------------------------
    def cluster(self, c: dict[str, Any]) -> Cluster | None:
        base = ("cluster",)
        keys = ("node_cidr", "pod_cidr", "service_cidr")
        ranges = {k: self.nets(base + (k,), c[k]) for k in keys}
        pods = ranges["pod_cidr"]
        families = tuple(pods) if pods else ()
        for k in ("node_cidr", "service_cidr"):
            got = ranges[k]
            if got is not None and families and tuple(got) != families:
                self.bad(base + (k,), f"cluster.{k} gives {self.families_text(tuple(got))}, cluster.pod_cidr "
                                      f"{self.families_text(families)}: give the same families in the same order "
                                      "(the first is the primary)")
                ranges[k] = None
        for i, a in enumerate(keys):
            for b in keys[i + 1:]:
                ra, rb = ranges[a], ranges[b]
                if ra is None or rb is None:
                    continue
                for f in families:
                    if ad.overlaps(ra[f][0], rb[f][0]):
                        self.bad(rb[f][1], f"{rb[f][0]} overlaps cluster.{a} {ra[f][0]}")
        prefix_of = {4: ("node_prefix", c["node_prefix"]), 6: ("node_prefix6", c["node_prefix6"])}
        for f in families:
            key, prefix = prefix_of[f]
            if pods is not None and prefix < pods[f][0].prefixlen:
                self.bad(base + (key,), f"/{prefix} is larger than cluster.pod_cidr {pods[f][0]}")
        svc = ranges["service_cidr"]
        dns = self.dns_ip(c, svc, families) if svc else None
        routers: tuple[Addr, ...] = ()
        routing = c["routing"]
        nodes = ranges["node_cidr"]
        if routing == "router":
            if "router" not in c:
                self.bad(base + ("routing",), "routing: router needs cluster.router (the router's node-network IP, "
                                              "one per family)")
            else:
                given = self.ips(base + ("router",), c["router"])
                if given is not None and nodes is not None and self.in_families(
                        base + ("router",), given, families, "cluster.router", "router: [192.168.56.11, fd00:56::11]"):
                    for f in families:
                        ip, where = given[f]
                        if ip not in nodes[f][0]:
                            self.bad(where, f"{ip} is outside cluster.node_cidr {nodes[f][0]}")
                        else:
                            self.not_a_host(where, ip, nodes[f][0])
                    routers = tuple(given[f][0] for f in families)
        if nodes is None or pods is None or svc is None or dns is None:
            return None
        return Cluster(
            name=c["name"], domain=c["domain"],
            node_cidrs=tuple(nodes[f][0] for f in families), pod_cidrs=tuple(pods[f][0] for f in families),
            node_prefixes=tuple(prefix_of[f][1] for f in families),
            service_cidrs=tuple(svc[f][0] for f in families), dns_ip=dns, bridge=c["bridge"],
            routing=routing, routers=routers,
        )

    def dns_ip(self, c: dict[str, Any], svc: dict[int, tuple[Net, tuple[Any, ...]]], families: tuple[int, ...]) -> Addr | None:
        """The cluster DNS address: given (inside the service range of its family), or the 10th address of the
        primary family's service range."""
        base = ("cluster",)
        if "dns_ip" not in c:
            primary = svc[families[0]][0] if families and families[0] in svc else None
            if primary is not None and primary.num_addresses > 10:
                return ad.dns_ip_for(primary)
            if primary is not None:
                self.bad(base + ("service_cidr",), f"{primary} is too small for a cluster DNS address")
            return None
        dns = self.addr(base + ("dns_ip",), c["dns_ip"])
        if dns is None:
            return None
        if dns.version not in svc:
            self.bad(base + ("dns_ip",), f"{dns} is {ad.family(dns.version)}, but cluster.service_cidr has no "
                                         f"{ad.family(dns.version)} range")
            return None
        net = svc[dns.version][0]
        if dns not in net:
            self.bad(base + ("dns_ip",), f"{dns} is outside cluster.service_cidr {net}")
        elif dns == net.network_address:
            self.bad(base + ("dns_ip",), f"{dns} is the network address of {net}")
        elif net.version == 4 and net.num_addresses > 2 and dns == net.broadcast_address:
            self.bad(base + ("dns_ip",), f"{dns} is the broadcast address of {net}")
        elif net.num_addresses > 1 and dns == ad.api_ip_for(net):
            self.bad(base + ("dns_ip",), f"{dns} is the first address of {net}, taken by the kubernetes API service")
        return dns  # when wrong, the problem is recorded and the nodes are still checked

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
        services = self.services(data["services"], cluster, nodes)
        if self.problems:
            return None
        return Inventory(Path(self.doc.file), cluster, ssh, tuple(nodes), cni, kube, dns, tuple(self.warnings),
                         tuple(services))

    # -- services ------------------------------------------------------------
    def services(self, items: list[dict[str, Any]], cluster: Cluster, nodes: list[Node]) -> list[Service]:
        """Each service with its cluster IP (given, or the same one every run: see :func:`ad.service_ip`) and
        its endpoints, the lab pods it names."""
        svc = cluster.service_cidr
        reserved = {svc.network_address: "the network address", ad.api_ip_for(svc): "the kubernetes API service's",
                    cluster.dns_ip: "the cluster DNS address"}
        taken: dict[Addr, int] = {}
        given: dict[int, Addr] = {}
        seen: dict[str, int] = {}
        for i, s in enumerate(items):
            key = f"{s['namespace']}/{s['name']}"
            if key in seen:
                self.bad(("services", i, "name"), f"duplicate service {key} (also services[{seen[key]}])")
            seen.setdefault(key, i)
            names = [p.get("name") for p in s["ports"]]
            if len(names) > 1 and (None in names or len(set(names)) != len(names)):
                self.bad(("services", i, "ports"), f"service {key} has {len(names)} ports: each needs a name of its own "
                                                   "(as in Kubernetes)")
            wanted = [(p["port"], p["protocol"]) for p in s["ports"]]
            for j, w in enumerate(wanted):
                if w in wanted[:j]:
                    self.bad(("services", i, "ports", j, "port"), f"port {w[0]}/{w[1]} twice in service {key}")
            if "cluster_ip" in s:
                ip = self.addr(("services", i, "cluster_ip"), s["cluster_ip"])
                if ip is None:
                    continue
                where = ("services", i, "cluster_ip")
                if ip.version != svc.version or ip not in svc:
                    self.bad(where, f"{ip} is outside cluster.service_cidr {svc}")
                elif ip in reserved or (svc.version == 4 and ip == svc.broadcast_address):
                    self.bad(where, f"{ip} is {reserved.get(ip, 'the broadcast address')} of {svc}")
                elif ip in taken:
                    self.bad(where, f"{ip} is services[{taken[ip]}]'s cluster IP too")
                else:
                    taken[ip], given[i] = i, ip
        out = []
        for i, s in enumerate(items):
            key = f"{s['namespace']}/{s['name']}"
            ip = given.get(i)
            if ip is None and "cluster_ip" not in s:
                try:
                    ip = ad.service_ip(svc, key, set(taken) | set(reserved))
                except ValueError as exc:
                    self.bad(("services", i), f"service {key}: {exc}")
                    continue
                taken[ip] = i
            if ip is None:
                continue
            ports = tuple(ServicePort(p.get("name"), p["port"], p.get("target_port", p["port"]), p["protocol"])
                          for p in s["ports"])
            out.append(Service(s["name"], s["namespace"], ip, ports, self.endpoints(i, s["pods"], key, nodes)))
        return out

    def endpoints(self, i: int, names: list[str], key: str, nodes: list[Node]) -> tuple[Endpoint, ...]:
        """The pods ``names`` picks: ``web`` (the pod web of every node that has one) or ``node2/web``."""
        out: list[Endpoint] = []
        for j, name in enumerate(names):
            node, _, pod = name.rpartition("/")
            found = [(n, p) for n in nodes for p in n.pods if p.name == pod and (not node or n.name == node)]
            if not found:
                self.bad(("services", i, "pods", j), f"service {key}: no lab pod {name}"
                                                     + ("" if node else " on any node"))
            for n, p in found:
                if p.via == "cni":
                    self.bad(("services", i, "pods", j), f"service {key}: {n.name}/{p.name} gets its address from "
                                                         "IPAM at apply, so a service cannot name it; use a hand-made pod")
                elif all((e.node, e.pod) != (n.name, p.name) for e in out):
                    out.append(Endpoint(n.name, p.name, p.ip))
        return tuple(out)

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
        if c["type"] == "weave" and 6 in cluster.families:
            self.bad(base + ("type",), "weave is IPv4 only (Weave Net has no IPv6): a dual-stack or IPv6 cluster "
                                       "needs bridge, ptp or this project's own plugin")
        elif c["type"] == "weave":
            alloc = self.net(base + ("weave_ipalloc_range",), c.get("weave_ipalloc_range", str(cluster.pod_cidr)))
            for other in ("node_cidr", "service_cidr"):
                if alloc and ad.overlaps(alloc, getattr(cluster, other)):
                    self.bad(base + ("weave_ipalloc_range",), f"IPALLOC_RANGE {alloc} overlaps cluster.{other} {getattr(cluster, other)}")
            if alloc and not ad.inside(alloc, cluster.pod_cidr):
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

    # -- nodes -------------------------------------------------------------
    def nodes(self, items: list[dict[str, Any]], cluster: Cluster, ssh: SSHSettings) -> list[Node] | None:
        port = ssh.port
        families = cluster.families
        ips = [self.node_ips(i, n, cluster) for i, n in enumerate(items)]
        explicit = [self.node_subnets(i, n, cluster) for i, n in enumerate(items)]
        self.duplicates("name", [n["name"] for n in items])
        self.duplicates("address", [f"{n['address']}:{n.get('port', port)}" for n in items])
        for k in range(len(families)):
            self.duplicates("ip", [None if ip is None else str(ip[k]) for ip in ips])
        subnets: list[list[Net]] = [[] for _ in items]
        for k, f in enumerate(families):
            for i in range(len(items)):  # a subnet given twice or overlapping another node's, at its own line
                for j in range(i):
                    a, b = explicit[i].get(f), explicit[j].get(f)
                    if a is not None and b is not None and ad.overlaps(a[0], b[0]):
                        self.bad(a[1], f"{a[0]} overlaps nodes[{j}].pod_subnet {b[0]}")
            try:
                got = ad.allocate_subnets(cluster.pod_cidrs[k], cluster.node_prefixes[k],
                                          [e[f][0] if f in e else None for e in explicit])
            except ValueError as exc:
                self.bad(("cluster", "pod_cidr"), str(exc))
                return None
            for i, s in enumerate(got):
                subnets[i].append(s)
        out = []
        for i, n in enumerate(items):
            pods = self.pods(i, n["pods"], tuple(subnets[i]))
            ip = ips[i]
            if ip is None:
                continue
            out.append(Node(
                name=n["name"], address=n["address"], port=n.get("port", port), ips=ip,
                interface=n["interface"], groups=tuple(n["groups"]), pod_subnets=tuple(subnets[i]), pods=tuple(pods),
                **self.login(i, n, ssh),
            ))
        return out

    def node_ips(self, i: int, n: dict[str, Any], cluster: Cluster) -> tuple[Addr, ...] | None:
        """The node's address of each cluster family: ``ip`` (one, or a list of one per family), else its SSH
        address when that is an IP of the cluster's only family."""
        path = ("nodes", i, "ip")
        if n["interface"] == cluster.bridge:
            self.bad(("nodes", i, "interface"), f"{cluster.bridge} is cluster.bridge, the pod bridge apply makes: "
                                                "the node's own interface needs another name")
        if "ip" in n:
            given = self.ips(path, n["ip"])
        else:
            try:
                given = {ipaddress.ip_address(n["address"]).version: (ipaddress.ip_address(n["address"]),
                                                                       ("nodes", i, "address"))}
            except ValueError:
                self.bad(("nodes", i), f"node {n['name']}: 'ip' is required when address is a host name")
                return None
        example = f"ip: [{n['address'] if 'ip' not in n else '192.168.56.11'}, fd00:56::11]"
        if given is None or not self.in_families(path if "ip" in n else ("nodes", i, "address"), given,
                                                 cluster.families, f"node {n['name']}", example):
            return None
        for k, f in enumerate(cluster.families):
            ip, where = given[f]
            if ip not in cluster.node_cidrs[k]:
                self.bad(where, f"{ip} is outside cluster.node_cidr {cluster.node_cidrs[k]}")
            else:
                self.not_a_host(where, ip, cluster.node_cidrs[k])
            if str(ip) == "10.0.2.15":
                self.warnings.append(str(self.doc.problem(where, "10.0.2.15 is the NAT address every VirtualBox VM has: "
                                                                 "the node IP should be its private network address")))
        return tuple(given[f][0] for f in cluster.families)

    def node_subnets(self, i: int, n: dict[str, Any], cluster: Cluster) -> dict[int, tuple[Net, tuple[Any, ...]]]:
        """The pod subnets the node's ``pod_subnet`` gives, by family (the others are allocated)."""
        if "pod_subnet" not in n:
            return {}
        given = self.nets(("nodes", i, "pod_subnet"), n["pod_subnet"]) or {}
        for f, (sub, where) in list(given.items()):
            if f not in cluster.families:
                self.bad(where, f"{sub} is {ad.family(f)}, but the cluster has no {ad.family(f)} pod range")
                del given[f]
                continue
            k = cluster.families.index(f)
            pod, prefix = cluster.pod_cidrs[k], cluster.node_prefixes[k]
            if not ad.inside(sub, pod):
                self.bad(where, f"{sub} is outside cluster.pod_cidr {pod}")
            if sub.prefixlen != prefix:
                self.bad(where, f"{sub} is a /{sub.prefixlen}; cluster.{'node_prefix' if f == 4 else 'node_prefix6'} "
                                f"says /{prefix}")
        return given

    def not_a_host(self, path: tuple[Any, ...], ip: Addr, net: Net) -> None:
        """The network address of ``net`` (and for IPv4 its broadcast address) is not one a host can have."""
        if net.num_addresses > 2 and (ip == net.network_address or (net.version == 4 and ip == net.broadcast_address)):
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

    def pods(self, i: int, items: list[Any], subnets: tuple[Net, ...]) -> list[Pod]:
        """The node's pods, each with an address of every family: as given, else the next free host number,
        the same in each family where it can be (10.244.1.2 and fd00:10:244:1::2)."""
        specs = [with_defaults(POD, {"name": p}) if isinstance(p, str) else p for p in items]
        by_family: dict[int, Net] = {s.version: s for s in subnets}
        given: list[dict[int, Addr]] = []
        taken: set[int] = set()  # host numbers held by a given address, in any family
        fixed: set[Addr] = set()
        for j, p in enumerate(specs):
            mine: dict[int, Addr] = {}
            if "ip" in p:
                path = ("nodes", i, "pods", j, "ip")
                for ip, where in (self.ips(path, p["ip"]) or {}).values():
                    subnet = by_family.get(ip.version)
                    if subnet is None:
                        self.bad(where, f"{ip} is {ad.family(ip.version)}, but the cluster has no "
                                        f"{ad.family(ip.version)} pod range")
                    elif not ad.usable_host(subnet, ip):
                        self.bad(where, f"{ip} is not a pod address of {subnet} (network, broadcast and gateway "
                                        f"{ad.gateway_for(subnet)} are taken)")
                    elif ip in fixed:
                        self.bad(where, f"duplicate pod ip {ip}")
                    else:
                        mine[ip.version] = ip
                        fixed.add(ip)
                        taken.add(int(ip) - int(subnet.network_address))
            given.append(mine)
        names: dict[str, int] = {}
        out, next_host = [], 2
        limit = min(s.num_addresses - 1 for s in subnets)
        for j, p in enumerate(specs):
            if p["name"] in names:
                self.bad(("nodes", i, "pods", j, "name"), f"duplicate pod name {p['name']} (also pods[{names[p['name']]}])")
            names[p["name"]] = j
            if "ip" in p and len(given[j]) != len(p["ip"] if isinstance(p["ip"], list) else [p["ip"]]):
                continue  # reported above
            addrs = dict(given[j])
            missing = [s for s in subnets if s.version not in addrs]
            if missing:
                same = [int(a) - int(by_family[f].network_address) for f, a in addrs.items()]
                if same and all(same[0] < s.num_addresses - 1 and ad.nth(s, same[0]) not in fixed for s in missing):
                    number = same[0]  # its given address's host number, in the other family too
                else:
                    while next_host < limit and next_host in taken:
                        next_host += 1
                    if next_host >= limit:
                        self.bad(("nodes", i, "pods", j), f"{subnets[0]} has no address left for pod {p['name']}")
                        continue
                    number, next_host = next_host, next_host + 1
                taken.add(number)
                for s in missing:
                    addrs[s.version] = ad.nth(s, number)
            out.append(Pod(p["name"], tuple(addrs[s.version] for s in subnets), p["via"]))
        return out
