"""Fixtures for the verify suite: the inventory, a testinfra host per node, and one survey of all nodes.

The survey does the suite's work on every node at once (a thread per node) and in
three execs per node, however many checks there are:

1. **look**: the bridge, routes, sysctls, CNI files and every pod's address, as
   facts in one script (the same typed facts and markers ``apply`` uses);
2. **probe**: from every pod, a ping to every other pod in the cluster (all at
   once), and for the no-NAT check a TCP listener in the node's first pod and a
   connection from it to the next node's listener;
3. **collect**: which source address each listener saw.

Tests then only read the survey, one test per node and rule, so a failure still
names the node and the pods.
"""

from __future__ import annotations

import json
import os
import shlex
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from functools import lru_cache

import pytest
import testinfra

from provisioner import facts
from provisioner.facts.files import Binary, File, Sysctl
from provisioner.facts.net import Addrs, Routes
from provisioner.inventory import load_inventory

SYSCTLS = ("net.ipv4.ip_forward", "net.bridge.bridge-nf-call-iptables")
PORT = 39000
LISTEN = ("import socket,sys;s=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);"
          "s.bind((sys.argv[1],int(sys.argv[2])));s.listen(1);s.settimeout(20);c,a=s.accept();print(a[0],flush=True)")
CONNECT = ("import socket,sys,time\nend=time.time()+15\nwhile True:\n try:\n  socket.create_connection((sys.argv[1],"
           "int(sys.argv[2])),3).close();break\n except OSError:\n  if time.time()>end:raise\n  time.sleep(0.2)")


@lru_cache(maxsize=1)
def _plan() -> dict:
    """What the engine decided for this run (``provisioner.verify.run_suite``)."""
    with open(os.environ["PROVISION_VERIFY_PLAN"]) as fh:
        return json.load(fh)


@lru_cache(maxsize=1)
def _inventory():
    """The inventory, cut down to the nodes the engine selected (peers outside them are not checked)."""
    inv = load_inventory(_plan()["inventory"])
    return replace(inv, nodes=tuple(n for n in inv.nodes if n.name in _plan()["hosts"]))


@pytest.fixture(scope="session")
def inventory():
    return _inventory()


def pytest_generate_tests(metafunc):
    if "node_name" in metafunc.fixturenames:
        metafunc.parametrize("node_name", [n.name for n in _inventory().nodes])


_hosts: dict = {}


def host_of(name: str):
    """A testinfra host over SSH (through sudo where the engine decided so), one shared connection per node."""
    if name not in _hosts:
        _hosts[name] = testinfra.get_host(
            f"ssh://{name}", ssh_config=_plan()["ssh_config"], sudo=_inventory().node(name).sudo,
            controlpath=f"{_plan()['control_dir']}/{name}", controlpersist=60)
    return _hosts[name]


@pytest.fixture
def node(inventory, node_name):
    return inventory.node(node_name)


def look_facts(inv, node) -> dict:
    c = inv.cni
    plugins = list(c.plugins) + (["provisioner-bridge"] if c.own_plugin else [])
    return {"bridge": Addrs(), "routes": Routes(), "conf": File(f"{c.conf_dir}/{c.config_name}"),
            **{f"sysctl {k}": Sysctl(k) for k in SYSCTLS},
            **{f"plugin {p}": Binary(f"{c.bin_dir}/{p}") for p in plugins},
            **{f"pod {p.name}": Addrs(p.name) for p in node.pods}}


def look(inv, node) -> dict:
    """Exec 1: what is on the node, by name (``bridge``, ``routes``, ``pod web``, …)."""
    wanted = look_facts(inv, node)
    r = host_of(node.name).run(facts.script(wanted.values(), "5eed"))
    values = facts.parse_all(wanted.values(), facts.split(r.stdout, wanted.values(), "5eed"))
    out = {name: values[f] for name, f in wanted.items()}
    out["pods"] = {p.name: _pod_ip(out[f"pod {p.name}"]) for p in node.pods}
    return out


def _pod_ip(addrs: dict | None) -> str | None:
    found = (addrs or {}).get("eth0") or []
    return found[0].split("/")[0] if found else None


def probe_script(node, pods: dict[str, str | None], targets: list[tuple[str, str]], nat: dict) -> str:
    """Exec 2: every local pod pings every target (in parallel) and, for the no-NAT check, the first pod listens
    while connecting to the next node's first pod. Prints ``silent SRC IP`` for each ping that got no answer."""
    q = shlex.quote
    lines = ["rm -f /tmp/provision-verify-nonat"]
    if nat.get("listen"):
        pod, ip = nat["listen"]
        lines.append(f"setsid ip netns exec {q(pod)} python3 -c {q(LISTEN)} {q(ip)} {PORT} "
                     "> /tmp/provision-verify-nonat 2>&1 < /dev/null &")
    for src in [p for p, ip in pods.items() if ip]:
        for pod, ip in targets:
            if ip != pods[src]:
                lines.append(f"(ip netns exec {q(src)} ping -c1 -W2 {q(ip)} >/dev/null 2>&1 || "
                             f"echo silent {q(src)} {q(ip)}) &")
    if nat.get("connect"):
        pod, ip = nat["connect"]
        lines.append(f"ip netns exec {q(pod)} python3 -c {q(CONNECT)} {q(ip)} {PORT} >/dev/null 2>&1 "
                     "|| echo connect-failed")
    lines.append("wait")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="session")
def survey(inventory) -> dict[str, dict]:
    """``{node: {bridge, routes, conf, sysctl …, plugin …, pods: {pod: ip}, silent: [(src, ip)], nat: …}}``."""
    nodes = list(inventory.nodes)
    with ThreadPoolExecutor(max_workers=max(1, min(64, len(nodes)))) as pool:  # all probes at once: listeners wait for connectors
        seen = dict(zip([n.name for n in nodes], pool.map(lambda n: look(inventory, n), nodes)))
        every = [(f"{pod}@{n}", ip) for n, s in seen.items() for pod, ip in s["pods"].items() if ip]
        python = dict(zip([n.name for n in nodes], pool.map(
            lambda n: host_of(n.name).run("command -v python3").rc == 0, nodes)))
        nat_pairs = _nat_pairs(nodes, seen, python)

        def probe(n):
            nat = {"listen": nat_pairs.get(n.name, {}).get("listen"), "connect": nat_pairs.get(n.name, {}).get("connect")}
            r = host_of(n.name).run(probe_script(n, seen[n.name]["pods"], every, nat))
            silent = [tuple(line.split()[1:3]) for line in r.stdout.splitlines() if line.startswith("silent ")]
            return silent, "connect-failed" in r.stdout

        probed = dict(zip([n.name for n in nodes], pool.map(probe, nodes)))
        time.sleep(0.2)
        heard = dict(zip([n.name for n in nodes], pool.map(
            lambda n: host_of(n.name).run("cat /tmp/provision-verify-nonat 2>/dev/null; rm -f /tmp/provision-verify-nonat")
            .stdout.strip(), nodes)))
    for n in nodes:
        s = seen[n.name]
        s["silent"], s["connect_failed"] = probed[n.name]
        s["nat"] = nat_pairs.get(n.name, {})
        s["heard"] = heard[n.name]
    return seen


def _nat_pairs(nodes, seen, python) -> dict[str, dict]:
    """Each node with a pod and python3 connects from its first pod to the next such node's first pod."""
    able = [n.name for n in nodes if python[n.name] and any(seen[n.name]["pods"].values())]
    out: dict[str, dict] = {}
    if len(able) < 2:
        return out
    for i, name in enumerate(able):
        peer = able[(i + 1) % len(able)]
        src = next((p, ip) for p, ip in seen[name]["pods"].items() if ip)
        dst = next((p, ip) for p, ip in seen[peer]["pods"].items() if ip)
        out.setdefault(name, {})["connect"] = dst
        out[name]["peer"], out[name]["from"] = peer, src
        out.setdefault(peer, {})["listen"] = dst
    return out
