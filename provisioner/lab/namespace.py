"""The namespace lab: N "nodes" on this machine, each a real sshd in its own namespaces.

A node is a network namespace (veth to the lab bridge) plus, inside it, new
mount, UTS and PID namespaces: an overlay with ``lowerdir=/`` and its upper dir
on a tmpfs private to the node, fresh /proc, /run and /tmp, its own hostname,
then ``chroot`` and ``sshd -D``. Files a node writes stay on that node.

Everything is named from the lab name (default ``plab``): namespaces and host
links ``plab-node1``…, bridge ``plab-br``, state in ``/run/provisioner-lab/plab``.
``down`` finds leftovers by those names, so it also cleans up after a crash.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from ..errors import InputError, LabError
from ..shell import command, quote
from ..yaml_lines import write_local

ROOT = Path("/run/provisioner-lab")
NAME_RE = re.compile(r"\A[a-z][a-z0-9]{0,5}\Z")
MARKER = "# written by `provision lab up`"
NEEDS = {"ip": "iproute2", "unshare": "util-linux", "sshd": "openssh-server", "ssh-keygen": "openssh-client"}
POD_CIDR, SERVICE_CIDR = "10.244.0.0/16", "10.96.0.0/12"
POD_CIDR6, SERVICE_CIDR6 = "fd00:10:244::/56", "fd00:10:96::/112"
FAMILIES = ("ipv4", "dual", "ipv6")  # as kind's networking.ipFamily: the node network's and the cluster's
# Node-level state a fresh machine does not have: hidden from each node (overlay whiteouts), so that
# a node never sees this machine's own CNI config, containerd, kubelet… (podman's /etc/cni, say).
HIDDEN = ("/etc/cni", "/opt/cni", "/var/lib/cni", "/etc/containerd", "/var/lib/containerd", "/etc/kubernetes",
          "/var/lib/kubelet", "/var/lib/kube-proxy", "/etc/default/kubelet", "/etc/coredns", "/etc/provisioner",
          "/var/lib/provisioner", "/etc/systemd/system/kubelet.service.d", "/etc/sysctl.d/90-provisioner.conf",
          "/etc/sysctl.d/90-provisioner-ipv6.conf",
          "/etc/modules-load.d/provisioner.conf", "/var/lib/containers", "/run/containers")
# With ``used=True`` a node sees this machine's own configuration of these, as a machine with the same
# packages installed would (Debian's containerd config.toml, podman's conflist, a kubeadm /etc/kubernetes…);
# state (containerd's and podman's storage, CNI leases, kubelet's dir) stays hidden either way. What a node
# writes over them stays in its own upper dir: this machine's files never change.
USED_VISIBLE = ("/etc/cni", "/opt/cni", "/etc/containerd", "/etc/kubernetes", "/etc/default/kubelet")


def _run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    p = subprocess.run(argv, capture_output=True, text=True)
    if check and p.returncode != 0:
        raise LabError(f"`{' '.join(argv)}` failed: {p.stderr.strip()}")
    return p


def preflight(name: str) -> None:
    if not NAME_RE.match(name):
        raise LabError(f"lab name {name!r}: 1-6 lower-case letters and digits, starting with a letter")
    if os.geteuid() != 0:
        raise LabError("the namespace lab needs root (it creates network namespaces, a bridge and mounts): run it with sudo")
    missing = [f"{cmd} (Debian package {pkg})" for cmd, pkg in NEEDS.items()
               if shutil.which(cmd) is None and not Path(f"/usr/sbin/{cmd}").exists()]
    if missing:
        raise LabError("missing: " + ", ".join(missing))


def node_names(count: int) -> list[str]:
    return [f"node{i}" for i in range(1, count + 1)]


def plan_addresses(subnet: str, count: int) -> tuple[ipaddress.IPv4Interface, list[ipaddress.IPv4Address]]:
    """Bridge takes the first host, nodes .11, .12, …"""
    try:
        net = ipaddress.IPv4Network(subnet)
    except ValueError as exc:
        raise LabError(f"--subnet {subnet}: {exc}") from None
    if net.num_addresses < count + 12:
        raise LabError(f"--subnet {subnet} is too small for {count} nodes")
    for other in (POD_CIDR, SERVICE_CIDR):
        if net.overlaps(ipaddress.IPv4Network(other)):
            raise LabError(f"--subnet {subnet} overlaps the lab's {other}")
    return ipaddress.IPv4Interface(f"{net.network_address + 1}/{net.prefixlen}"), [net.network_address + 10 + i for i in range(1, count + 1)]


def plan_addresses6(subnet: str, count: int) -> tuple[ipaddress.IPv6Interface, list[ipaddress.IPv6Address]]:
    """The lab's IPv6 node network, a ULA /64 named after its IPv4 subnet (10.213.5.0/24 → fd70:ad5:500::/64,
    so labs on different subnets never share one): the bridge ``::1``, nodes ``::b``, ``::c``, … (the same
    host numbers as their IPv4 addresses, .11, .12, …)."""
    v4 = ipaddress.IPv4Network(subnet).network_address.packed
    net = ipaddress.IPv6Network(f"fd70:{v4[0]:x}{v4[1]:02x}:{v4[2]:x}{v4[3]:02x}::/64")
    return (ipaddress.IPv6Interface(f"{net.network_address + 1}/64"),
            [net.network_address + 10 + i for i in range(1, count + 1)])


# how long a node's sshd may take to answer, and its addresses to settle: seconds on an idle machine, but a
# machine running a suite beside a 200-node lab (load average in the hundreds) took more than 15 s
START_SECONDS = 90
MAX_NODES = 240  # node IPs .11 to .250 of the lab's /24; interface names ("lab-node240") stay within 15 characters


def subnet_taken(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> str | None:
    """The host route that overlaps ``net`` (``"10.213.5.0/24 dev t1a2b-br"``), or None if none does.

    Only the main table's destinations count: a default route overlaps everything and says nothing.
    """
    p = subprocess.run(["ip", "-json", f"-{net.version}", "route", "show"], capture_output=True, text=True)
    try:
        routes = json.loads(p.stdout or "[]")
    except ValueError:
        return None
    for route in routes if isinstance(routes, list) else []:
        dst = route.get("dst") if isinstance(route, dict) else None
        if not isinstance(dst, str) or dst == "default":
            continue
        try:
            other = ipaddress.ip_network(dst, strict=False)
        except ValueError:
            continue
        if other.version == net.version and other.overlaps(net):
            return f"{dst} dev {route.get('dev', '?')}"
    return None


def up(count: int, out: Path, subnet: str = "10.213.0.0/24", name: str = "plab", pods: tuple[str, ...] = ("web", "api"),
       cni_pods: tuple[str, ...] = (), cni_type: str | None = None, used: bool = False, family: str = "ipv4") -> Path:
    """Build the lab and write its inventory to ``out``; on any failure, remove what was made.

    ``used``: nodes see this machine's own config files (:data:`USED_VISIBLE`), not a fresh machine's.
    ``family``: ``ipv4``; ``dual`` (the nodes have an address of each family, the cluster is dual-stack);
    ``ipv6`` (the nodes have only their IPv6 address and are reached on it; the cluster is IPv6 only).
    """
    if family not in FAMILIES:
        raise LabError(f"--ip-family {family}: one of {', '.join(FAMILIES)}")
    hidden = tuple(p for p in HIDDEN if not used or p not in USED_VISIBLE)
    preflight(name)
    if not 1 <= count <= MAX_NODES:
        raise LabError(f"--nodes must be between 1 and {MAX_NODES}")
    state = ROOT / name
    if state.exists() or _netns(name):
        raise InputError(f"a lab named {name} is already up (or left over from a crash): start another beside it "
                         f"with --name NAME --subnet CIDR (e.g. --name lab2 --subnet 10.213.2.0/24), or remove it "
                         f"with `provision lab down --name {name}`")
    bridge_if, ips = plan_addresses(subnet, count)
    bridge6, ips6 = plan_addresses6(subnet, count) if family != "ipv4" else (None, [])
    taken = subnet_taken(bridge_if.network) or (subnet_taken(bridge6.network) if bridge6 else None)
    if taken:
        raise InputError(f"--subnet {subnet} is already routed on this machine ({taken}): give the lab a free one "
                         f"with --subnet CIDR (another lab, or this machine's own network, uses it)")
    try:
        state.mkdir(parents=True)
        _keys(state, node_names(count))
        bridge = f"{name}-br"
        _run("ip", "link", "add", bridge, "type", "bridge")
        if family != "ipv6":
            _run("ip", "addr", "add", str(bridge_if), "dev", bridge)
        if bridge6 is not None:  # no duplicate address detection: the lab's addresses are usable at once
            _run("ip", "addr", "add", str(bridge6), "dev", bridge, "nodad")
        _run("ip", "link", "set", bridge, "up")
        v4: list[ipaddress.IPv4Address | None] = list(ips) if family != "ipv6" else [None] * count
        v6: list[ipaddress.IPv6Address | None] = list(ips6) if ips6 else [None] * count
        for node, ip, ip6 in zip(node_names(count), v4, v6):
            _start_node(name, state, node, ip, bridge_if.network.prefixlen, bridge, hidden, ip6)
        reach: list[ipaddress.IPv4Address | ipaddress.IPv6Address | None] = \
            list(v4) if family != "ipv6" else list(v6)  # the address each node is reached on (its inventory address)
        known = "".join(f"{where} {(state / node / 'ssh_host_ed25519_key.pub').read_text().split(' ')[0]} "
                        f"{(state / node / 'ssh_host_ed25519_key.pub').read_text().split(' ')[1]}\n"
                        for node, where in zip(node_names(count), reach))
        (state / "known_hosts").write_text(known)
        for where in reach:
            _wait_port(str(where), 22, START_SECONDS)
        for node in node_names(count):
            _wait_settled(f"{name}-{node}", START_SECONDS)
        if family != "ipv6":
            _static_neighbours(name, node_names(count), ips, bridge, bridge_if.ip)
        out = out.resolve()
        out.parent.mkdir(parents=True, exist_ok=True)
        data = inventory(name, state, subnet, ips, pods, cni_pods, cni_type, family, ips6)
        write_local(out, MARKER + "\n" + yaml.safe_dump(data, sort_keys=False))
        _service_network(name, node_names(count), v4, v6, out)
        (state / "state.json").write_text(json.dumps({"name": name, "nodes": count, "subnet": subnet, "inventory": str(out),
                                                          "used": used, "family": family, "sha256": hashlib.sha256(out.read_bytes()).hexdigest()}))
    except BaseException:
        down(name)
        raise
    return out


def inventory(name: str, state: Path, subnet: str, ips: list[ipaddress.IPv4Address], pods: tuple[str, ...] = ("web", "api"),
              cni_pods: tuple[str, ...] = (), cni_type: str | None = None, family: str = "ipv4",
              ips6: list[ipaddress.IPv6Address] | None = None) -> dict[str, Any]:
    names = node_names(len(ips))
    node_net = str(ipaddress.IPv4Network(subnet))
    node_net6 = str(plan_addresses6(subnet, len(ips))[0].network)
    ranges: dict[str, Any] = {"node_cidr": node_net, "pod_cidr": POD_CIDR, "service_cidr": SERVICE_CIDR}
    if family == "dual":
        ranges = {"node_cidr": [node_net, node_net6], "pod_cidr": [POD_CIDR, POD_CIDR6],
                  "service_cidr": [SERVICE_CIDR, SERVICE_CIDR6]}
    elif family == "ipv6":
        ranges = {"node_cidr": node_net6, "pod_cidr": POD_CIDR6, "service_cidr": SERVICE_CIDR6}

    def addresses(i: int) -> dict[str, Any]:
        if family == "dual":
            return {"address": str(ips[i]), "ip": [str(ips[i]), str((ips6 or [])[i])]}
        return {"address": str((ips6 or [])[i] if family == "ipv6" else ips[i])}

    data = {
        "cluster": {"name": name, "domain": "cluster.local", **ranges, "node_prefix": 24, "bridge": "v-net-0"},
        "ssh": {"user": "root", "identity_file": str(state / "id_ed25519"),
                "known_hosts": str(state / "known_hosts"), "host_key_policy": "strict", "connect_timeout": 10},
        "nodes": [{"name": n, **addresses(i), "interface": "eth0",
                   "groups": ["control_plane"] if i == 0 else ["workers"],
                   "pods": list(pods) + [{"name": p, "via": "cni"} for p in cni_pods]}
                  for i, n in enumerate(names)],
    }
    if cni_type:
        data["cni"] = {"type": cni_type}
    return data


def _keys(state: Path, nodes: list[str]) -> None:
    _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "provisioner-lab", "-f", str(state / "id_ed25519"))
    shutil.copy(state / "id_ed25519.pub", state / "authorized_keys")
    for node in nodes:
        (state / node).mkdir()
        _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", node, "-f", str(state / node / "ssh_host_ed25519_key"))


def _start_node(lab: str, state: Path, node: str, ip: ipaddress.IPv4Address | None, prefix: int, bridge: str,
                hidden: tuple[str, ...] = HIDDEN, ip6: ipaddress.IPv6Address | None = None) -> None:
    ns = f"{lab}-{node}"
    d = state / node
    _run("ip", "netns", "add", ns)
    # no IPv6 duplicate address detection in the node: its links are settled as soon as they are up
    _run("ip", "netns", "exec", ns, "sh", "-c", "for f in /proc/sys/net/ipv6/conf/default/accept_dad "
         "/proc/sys/net/ipv6/conf/all/accept_dad; do [ ! -e $f ] || echo 0 > $f; done")
    _run("ip", "link", "add", ns, "type", "veth", "peer", "name", "eth0", "netns", ns)
    _run("ip", "link", "set", ns, "master", bridge, "up")
    if ip is not None:
        _run("ip", "-n", ns, "addr", "add", f"{ip}/{prefix}", "dev", "eth0")
    if ip6 is not None:
        _run("ip", "-n", ns, "addr", "add", f"{ip6}/64", "dev", "eth0", "nodad")
    _run("ip", "-n", ns, "link", "set", "eth0", "up")
    listen = "".join(f"ListenAddress {a}\n" for a in (ip, ip6) if a is not None)
    _run("ip", "-n", ns, "link", "set", "lo", "up")
    (d / "sshd_config").write_text(listen + textwrap.dedent(f"""\
        HostKey {d}/ssh_host_ed25519_key
        AuthorizedKeysFile {state}/authorized_keys
        PermitRootLogin prohibit-password
        PasswordAuthentication no
        KbdInteractiveAuthentication no
        UsePAM no
        StrictModes no
        PidFile none
        PrintMotd no
        MaxStartups 100:30:200
        MaxSessions 100
        LogLevel ERROR
        Subsystem sftp /usr/lib/openssh/sftp-server
        """))
    # The node's own tmpfs is mounted over its state dir inside its private mount
    # namespace: the overlay's upper dir lives there and vanishes with the node.
    # root's home is a fresh empty one, as on a new machine: sshd runs every command
    # through root's login shell, and this machine's ~/.bashrc (pyenv, cargo…) would
    # otherwise run on every exec of every node.
    root = d / "root"
    q = quote
    up, work = f"{d}/upper", f"{d}/work"
    (d / "init.sh").write_text(textwrap.dedent(f"""\
        set -e
        mount --make-rprivate /
        mount -t tmpfs -o mode=755 {q(node)} {q(d)}
        mkdir {q(up)} {q(work)} {q(root)}
        for p in {command(*hidden)}; do
          mkdir -p {q(up)}"$(dirname "$p")"
          mknod {q(up)}"$p" c 0 0
        done
        mount -t overlay overlay -o {q(f"lowerdir=/,upperdir={up},workdir={work}")} {q(root)}
        mount -t proc proc {q(f"{root}/proc")}
        mount --rbind /sys {q(f"{root}/sys")}
{_cgroup_mounts(root)}        mount --rbind /dev {q(f"{root}/dev")}
        mount -t tmpfs -o mode=755 tmpfs {q(f"{root}/run")}
        mount -t tmpfs -o mode=1777 tmpfs {q(f"{root}/tmp")}
        mount -t tmpfs -o mode=700 tmpfs {q(f"{root}/root")}
        mkdir -p {q(f"{root}/run/sshd")} {q(f"{root}{state}")}
        mount --bind {q(state)} {q(f"{root}{state}")}
        hostname {q(node)}
        exec chroot {q(root)} /usr/sbin/sshd -D -e -f {q(f"{d}/sshd_config")}
        """))
    _launch(lab, state, node)


def _cgroup_mounts(root: Path) -> str:
    """Shell lines that give a node this machine's cgroup hierarchies (v1 or v2), as a fresh machine has them.

    `ip netns exec` mounts a fresh sysfs without /sys/fs/cgroup, and a container runtime
    (runc under containerd or podman) needs them; mounting a hierarchy again attaches to
    the same one, so what a runtime makes in a node shows on this machine too (under
    the cgroup parent the lab's tests name after the lab, which ``down`` removes).
    """
    lines: list[str] = []
    mounted: set[str] = set()
    for line in Path("/proc/self/mounts").read_text().splitlines():
        dev, where, fstype, opts = line.split()[:4]
        if fstype not in ("cgroup", "cgroup2") or not where.startswith("/sys/fs/cgroup"):
            continue
        keep = [o for o in opts.split(",") if o not in ("rw", "ro") and "time" not in o
                and not o.startswith(("nosuid", "nodev", "noexec"))]
        if fstype == "cgroup" and keep and all(o.startswith("name=") for o in keep):
            keep.insert(0, "none")  # a named hierarchy with no controller
        option = ("-o", ",".join(keep)) if keep else ()
        target = f"{root}{where}"
        lines.append(f"mkdir -p {quote(target)} && {command('mount', '-t', fstype, *option, dev, target)} "
                     f"|| echo {quote(f'cgroup {where} not mounted')} >&2")
        mounted.add(where)
    if lines and "/sys/fs/cgroup" not in mounted:  # v1: a tmpfs holds the hierarchies
        lines.insert(0, command("mount", "-t", "tmpfs", "-o", "mode=755", "cgroup", f"{root}/sys/fs/cgroup"))
    return "".join(f"        {x}\n" for x in lines)


def _launch(lab: str, state: Path, node: str) -> None:
    """Start the node's namespaces and sshd (init.sh) inside its existing network namespace."""
    log = open(state / f"{node}.log", "a")
    subprocess.Popen(["ip", "netns", "exec", f"{lab}-{node}", "unshare", "--mount", "--uts", "--pid", "--fork",
                      "--kill-child", "sh", str(state / node / "init.sh")],
                     stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
    log.close()


def _service_network(lab: str, nodes: list[str], v4: list[Any], v6: list[Any], out: Path) -> None:
    """What a real node has and a lab node lacks for services: a way out for the service range (a real node's
    default route; here the range on-link on eth0, so a packet no rule catches dies in the lab), and the cluster
    DNS (:mod:`provisioner.lab.dns`, run in the first node, holding the cluster DNS address; the other nodes
    route that address to it). Only the lab's own namespaces change."""
    from ..inventory import load_inventory  # the lab's inventory, as apply will read it

    inv = load_inventory(out)
    for node in nodes:
        for net in inv.cluster.service_cidrs:
            _run("ip", "-n", f"{lab}-{node}", "route", "add", str(net), "dev", "eth0")
    dns = inv.cluster.dns_ip
    holder = (v4 if dns.version == 4 else v6)[0]
    _run("ip", "-n", f"{lab}-{nodes[0]}", "addr", "add", f"{dns}/{dns.max_prefixlen}", "dev", "lo")
    for node in nodes[1:]:
        _run("ip", "-n", f"{lab}-{node}", "route", "add", f"{dns}/{dns.max_prefixlen}", "via", str(holder))
    state = ROOT / lab
    (state / "dns.json").write_text(json.dumps({"node": nodes[0], "address": str(dns), "inventory": str(out)}))
    start_dns(lab)


def start_dns(lab: str, node: str | None = None) -> None:
    """Start the lab's DNS server in its node (again, after that node was stopped: with ``node``, only if the
    server lives there) and wait until it answers."""
    state = ROOT / lab
    try:
        where = json.loads((state / "dns.json").read_text())
    except (OSError, ValueError):
        return  # a lab brought up before the lab had a DNS server
    if node is not None and where.get("node") != node:
        return
    log_path = state / "dns.log"
    log_path.write_text("")
    log = open(log_path, "a")
    # run from the directory holding this very package: `-m` looks in the working directory first, where another
    # checkout's provisioner/ may lie
    home = Path(__file__).resolve().parents[2]
    subprocess.Popen(["ip", "netns", "exec", f"{lab}-{where['node']}", sys.executable, "-m", "provisioner.lab.dns",
                      where["inventory"], where["address"], str(log_path)],
                     stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True, cwd=home)
    log.close()
    if not _wait(lambda: "answering" in log_path.read_text(), START_SECONDS):
        raise LabError(f"the lab's DNS server did not start on {where['address']}: {log_path.read_text().strip()}")


def stop_node(lab: str, node: str) -> None:
    """Kill the node's sshd and everything in it (its files go with its overlay); the network stays."""
    _kill({int(p) for p in _run("ip", "netns", "pids", f"{lab}-{node}", check=False).stdout.split()})


def start_node(lab: str, node: str, address: str) -> None:
    """Bring a stopped node back: fresh namespaces and sshd on the same address."""
    _launch(lab, ROOT / lab, node)
    _wait_port(address, 22, START_SECONDS)
    start_dns(lab, node)  # stopping the node killed the DNS server, if it runs in the node's namespace


def _wait_port(host: str, port: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise LabError(f"sshd on {host}:{port} did not come up within {seconds:.0f}s") from None
            time.sleep(0.1)


def _static_neighbours(lab: str, nodes: list[str], ips: list[ipaddress.IPv4Address], bridge: str,
                       bridge_ip: ipaddress.IPv4Address) -> None:
    """Each node knows every other node's MAC and the lab bridge's, and the lab bridge knows every node's
    (permanent ARP entries).

    The kernel keeps ONE ARP table for all network namespaces of the machine, and
    stops adding entries (and drops packets: "neighbor table overflow") past
    net.ipv4.neigh.default.gc_thresh3, 1024 by default, a setting of the machine
    itself. A 50-node lab learning its peers by ARP needs about 2,500 entries, a
    200-node lab 400 more for SSH alone; permanent ones are not counted, so only the
    pods' own entries are left (see :func:`arp_need`).
    """
    macs = {}
    for node in nodes:
        link = json.loads(_run("ip", "-n", f"{lab}-{node}", "-json", "link", "show", "eth0").stdout)[0]
        macs[node] = link["address"]
    bridge_mac = json.loads(_run("ip", "-json", "link", "show", bridge).stdout)[0]["address"]
    for node in nodes:
        batch = "".join(f"neigh replace {ip} lladdr {macs[peer]} dev eth0 nud permanent\n"
                        for peer, ip in zip(nodes, ips) if peer != node)
        batch += f"neigh replace {bridge_ip} lladdr {bridge_mac} dev eth0 nud permanent\n"
        subprocess.run(["ip", "-n", f"{lab}-{node}", "-batch", "-"], input=batch, text=True, check=True,
                       capture_output=True)
    # this machine's side, on the lab's own bridge only (it goes with the bridge at lab down)
    subprocess.run(["ip", "-batch", "-"], input="".join(f"neigh replace {ip} lladdr {macs[node]} dev {bridge} nud permanent\n"
                                                        for node, ip in zip(nodes, ips)),
                   text=True, check=True, capture_output=True)


GC_THRESH3 = Path("/proc/sys/net/ipv4/neigh/default/gc_thresh3")


def arp_need(nodes: int, pods: int) -> int:
    """The ARP entries a lab's pods need at once (all nodes share this machine's one table): on each node,
    each pod's entry for its gateway and for the node's other pods, and the bridge's entry for each pod."""
    return nodes * pods * (pods + 1)


def arp_warning(nodes: int, pods: int) -> str | None:
    """Advice when the lab's pods would overflow this machine's ARP table, else None."""
    try:
        limit = int(GC_THRESH3.read_text())
    except (OSError, ValueError):
        return None
    need, room = arp_need(nodes, pods), int(limit * 0.8)  # room for this machine's own entries and other labs
    if need <= room:
        return None
    fit = room // arp_need(1, pods)
    return (f"{nodes} nodes with {pods} pod(s) each need about {need} ARP entries at once, and this machine's one "
            f"ARP table for all namespaces holds {limit} (net.ipv4.neigh.default.gc_thresh3, a setting of the "
            f"machine, not of the lab): pings between pods will be dropped (\"neighbor table overflow\" in dmesg). "
            f"Use fewer pods (--pods web), at most {fit} nodes, or raise it yourself "
            f"(sysctl -w net.ipv4.neigh.default.gc_thresh3={max(2 * need, limit)} "
            f"net.ipv4.neigh.default.gc_thresh2={max(need, limit // 2)})")


def _wait_settled(netns: str, seconds: float) -> None:
    """Wait until no address in ``netns`` is still tentative (IPv6 DAD): a snapshot before that is not stable."""
    def settled() -> bool:
        p = _run("ip", "-n", netns, "-json", "addr", "show", check=False)
        try:
            return not any(a.get("tentative") for link in json.loads(p.stdout or "[]") for a in link.get("addr_info", []))
        except ValueError:
            return False
    if not _wait(settled, seconds):
        raise LabError(f"{netns}: addresses still tentative after {seconds:.0f}s")


def _netns(name: str) -> list[str]:
    p = _run("ip", "netns", "list", check=False)
    return [line.split()[0] for line in p.stdout.splitlines() if line.startswith(f"{name}-")]


def _links(name: str) -> list[str]:
    p = _run("ip", "-o", "link", "show", check=False)
    out = []
    for line in p.stdout.splitlines():
        ifname = line.split(":")[1].strip().split("@")[0]
        if ifname.startswith(f"{name}-"):
            out.append(ifname)
    return out


def _lab_pids(name: str) -> set[int]:
    """Processes of the lab: in its namespaces, or started from its state dir (found after a crash too)."""
    pids: set[int] = set()
    for ns in _netns(name):
        pids |= {int(p) for p in _run("ip", "netns", "pids", ns, check=False).stdout.split()}
    pids |= set(_procs_with(f"{ROOT / name}/".encode()))
    pids.discard(os.getpid())
    return pids


def down(name: str = "plab") -> list[str]:
    """Remove every process, namespace, link and file of lab ``name``; safe to run twice."""
    preflight(name)
    removed = []
    pids = _lab_pids(name)
    _kill(pids)
    if pids:
        removed.append(f"{len(pids)} process(es)")
    for ns in _netns(name):
        _run("ip", "netns", "del", ns, check=False)
        removed.append(f"netns {ns}")
    _wait(lambda: all(not link.startswith(f"{name}-node") for link in _links(name)), 5)
    for link in _links(name):
        _run("ip", "link", "del", link, check=False)
        removed.append(f"link {link}")
    cgroups = _remove_cgroups(name)
    if cgroups:
        removed.append(f"{len(cgroups)} cgroup(s)")
    state = ROOT / name
    if state.exists():
        try:
            meta = json.loads((state / "state.json").read_text())
            inv = Path(meta["inventory"])
            if inv.is_file() and hashlib.sha256(inv.read_bytes()).hexdigest() == meta.get("sha256"):
                inv.unlink()  # as lab up wrote it; one edited since is the user's now
                removed.append(f"file {inv}")
            elif inv.is_file():
                removed.append(f"(kept {inv}: edited since lab up)")
        except (OSError, ValueError, KeyError):
            pass
        shutil.rmtree(state, ignore_errors=True)
        removed.append(f"dir {state}")
    if ROOT.exists() and not any(ROOT.iterdir()):
        ROOT.rmdir()
    return removed


def _kill(pids: set[int]) -> None:
    """SIGKILL every pid and wait (5 s at most) until they are gone."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    _wait(lambda: not any(Path(f"/proc/{p}").exists() for p in pids), 5)


def _procs_with(needle: bytes) -> list[int]:
    """PIDs whose command line contains ``needle``."""
    out = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if needle in (proc / "cmdline").read_bytes():
                    out.append(int(proc.name))
            except OSError:
                pass
    return out


def _wait(cond: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def node_pid(lab: str, node: str) -> int:
    """PID (in this PID namespace) of the node's init, i.e. its sshd: for nsenter in tests."""
    for pid in _procs_with(f"{ROOT / lab}/{node}/sshd_config".encode()):
        try:
            if b"sshd" in Path(f"/proc/{pid}/comm").read_bytes():
                return pid
        except OSError:
            pass
    raise LabError(f"node {node} of lab {lab} is not running")


def running(name: str = "plab") -> dict[str, Any]:
    """What exists of lab ``name`` right now (for tests and `lab status`)."""
    return {"netns": _netns(name), "links": _links(name), "pids": sorted(_lab_pids(name)),
            "state": (ROOT / name).exists()}


def cgroup_parent(lab: str) -> str:
    """The cgroup parent a lab's container runtimes are told to use: ``down`` removes what is left under it."""
    return f"/provisioner-lab-{lab}"


def _remove_cgroups(name: str) -> list[str]:
    """Empty cgroups a runtime left under the lab's cgroup parent (deepest first); a busy one stays."""
    removed = []
    leaf = cgroup_parent(name).lstrip("/")
    top = Path("/sys/fs/cgroup")
    for base in [*top.glob(leaf), *top.glob(f"*/{leaf}")]:  # cgroup v2, and each v1 hierarchy
        for d in sorted((p for p in base.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)) + [base]:
            try:
                d.rmdir()
                removed.append(str(d))
            except OSError:
                pass
    return removed
