"""Ansible and pyinfra doing what ``provision apply`` does, for bench/bench_lab.py (never a project dependency).

:func:`prepare` reads a fresh lab once (the facts provision would read) and
writes, per node, what both peers need to do the same steps:

- four shell snippets, each idempotent (checks before it changes), for the steps
  provision does with commands: ``sysctl.sh`` (br_netfilter, forwarding),
  ``bridge.sh``, ``pods.sh`` (namespaces, veths, addresses, default routes),
  ``routes.sh`` (the routes to the other nodes' pod subnets);
- every file provision writes (CNI plugins, CNI config, kubelet, containerd,
  kube-proxy, resolv.conf, CoreDNS, …) with its content and mode, which the peers
  copy with their own file modules (Ansible ``copy``, pyinfra ``files.put``).

The contents come from provision's own modules, so all three tools end with the
same node state, which ``provision verify`` then checks.
"""

from __future__ import annotations

import json
import shlex
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

q = shlex.quote


def _snippets(inv, node) -> dict[str, str]:
    from provisioner.template_vars import pod_routes

    br, gw, pfx = inv.cluster.bridge, str(node.pod_gateway), node.pod_subnet.prefixlen
    sysctl = ("modprobe br_netfilter\n"
              "for k in net/ipv4/ip_forward net/bridge/bridge-nf-call-iptables; do\n"
              "  [ \"$(cat /proc/sys/$k)\" = 1 ] || echo 1 > /proc/sys/$k\ndone\n")
    bridge = (f"ip link show {q(br)} >/dev/null 2>&1 || ip link add {q(br)} type bridge\n"
              f"ip -4 addr show dev {q(br)} | grep -q ' {gw}/{pfx} ' || ip addr add {gw}/{pfx} dev {q(br)}\n"
              f"ip link set {q(br)} up\n")
    pods = ""
    for p in node.pods:
        if p.via != "manual":
            continue
        n, v = q(p.name), q(f"veth-{p.name}")
        pods += (f"if ! ip netns list | grep -qw {n}; then\n"
                 f"  ip netns add {n}\n  ip link add {v} type veth peer name eth0 netns {n}\n"
                 f"  ip link set {v} master {q(br)} up\n  ip -n {n} addr add {p.ip}/{pfx} dev eth0\n"
                 f"  ip -n {n} link set eth0 up\n  ip -n {n} link set lo up\n"
                 f"  ip -n {n} route add default via {gw}\nfi\n")
    routes = "".join(f"ip route replace {r['dst']} via {r['via']} proto 147\n" for r in pod_routes(inv, node))
    return {"sysctl.sh": sysctl, "bridge.sh": bridge, "pods.sh": pods or ":\n", "routes.sh": routes or ":\n"}


def _files(inv, host: str, tasks) -> list[tuple[str, bytes, str]]:
    """(path, content, mode) of every file provision's plan writes on this fresh node."""
    from provisioner.engine import runner
    from provisioner.engine.runner import HostResult
    from provisioner.steps import Upload, WriteFile
    from provisioner.transport.ssh import SSHTransport

    order = [(i, t) for i, t in enumerate(tasks) if not t.handler]
    t = SSHTransport(inv, inv.node(host))
    try:
        values = runner.run_facts(t, runner.wanted_facts(order, "apply"), 60)
    finally:
        t.close()
    outcomes = runner._plan(host, order, values, "apply", HostResult(host), lambda *a: None)
    out = []
    for i, _ in order:
        for s in outcomes[i].steps:
            if isinstance(s, WriteFile):
                out.append((s.path, s.content, s.mode))
            elif isinstance(s, Upload):
                out.append((s.path, s.artifact.data, s.mode))
    return out


def prepare(inv_path: Path, tmp: Path) -> dict[str, Path]:
    """Per-node snippets and files under ``tmp/peers``; the Ansible and pyinfra inventories; the known_hosts."""
    from provisioner import engine
    from provisioner.inventory import load_inventory

    inv = load_inventory(inv_path)
    tasks = engine.bind(inv, "apply", None)
    root = tmp / "peers"
    hosts: dict[str, dict] = {}

    def one(node) -> None:
        d = root / node.name
        (d / "files").mkdir(parents=True, exist_ok=True)
        for name, text in _snippets(inv, node).items():
            (d / name).write_text(text)
        files = []
        for k, (path, content, mode) in enumerate(_files(inv, node.name, tasks[node.name])):
            src = d / "files" / f"{k}-{Path(path).name}"
            src.write_bytes(content)
            files.append({"src": str(src), "dest": path, "mode": mode})
        hosts[node.name] = {"address": node.address, "port": node.port, "dir": str(d), "files": files}

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(one, inv.nodes))
    key, known = str(inv.nodes[0].identity_file), str(inv.ssh.known_hosts)
    ansible = root / "hosts.json"  # Ansible reads a YAML inventory; JSON is YAML
    ansible.write_text(json.dumps({"all": {"hosts": {
        n: {"ansible_host": h["address"], "ansible_port": h["port"], "ansible_user": "root",
            "ansible_ssh_private_key_file": key, "peer_dir": h["dir"], "peer_files": h["files"],
            "ansible_python_interpreter": "/usr/bin/python3"} for n, h in hosts.items()}}}))
    pyinfra = root / "inventory.py"
    pyinfra.write_text("nodes = " + repr([
        (n, {"ssh_hostname": h["address"], "ssh_port": h["port"], "ssh_user": "root", "ssh_key": key,
             "ssh_known_hosts_file": known, "ssh_strict_host_key_checking": "yes", "ssh_look_for_keys": False,
             "ssh_allow_agent": False, "peer_dir": h["dir"], "peer_files": h["files"]}) for n, h in hosts.items()]) + "\n")
    return {"ansible": ansible, "pyinfra": pyinfra, "known_hosts": Path(known)}
