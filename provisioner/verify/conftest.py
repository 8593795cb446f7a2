"""Fixtures for the verify suite: the inventory, a testinfra host per node, and one survey of all nodes.

The survey does the suite's work on every node at once (a thread per node) and in
three execs per node, however many checks there are:

1. **look**: the bridge, routes, sysctls, CNI files and every pod's address, as
   facts in one script (the same typed facts and markers ``apply`` uses);
2. **probe**: pings (:func:`ping_pairs`): every pod pings every other pod on its node,
   and the node's pods, taking turns, ping one pod on every other node (so the work
   per node grows with the number of nodes, not of pods in the cluster; ``--full``:
   every pod pings every pod). A pod's pings run in one ``ip netns exec`` of that pod,
   AT_ONCE at a time; those without an answer are asked once more, slowly, in one more
   exec. For the no-NAT check, a TCP listener in the node's first pod and a connection
   from it to the next node's listener (a ring: one pair per node);
3. **collect**: which source address each listener saw.

Tests then only read the survey, one test per node and rule, so a failure still
names the node and the pods.
"""

from __future__ import annotations

import json
import os
import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from functools import lru_cache
from typing import Any

import pytest
import testinfra

from provisioner import facts
from provisioner.facts.files import Binary, File, Sysctl
from provisioner.facts.net import Addrs, Routes, Routes6
from provisioner.facts import Fact
from provisioner.inventory import Inventory, Node, load_inventory
from provisioner.shell import quote, sh

SYSCTLS = ("net.ipv4.ip_forward", "net.bridge.bridge-nf-call-iptables")
SYSCTLS6 = ("net.ipv6.conf.all.forwarding", "net.bridge.bridge-nf-call-ip6tables")
# a port of its own for each run: a listener of an earlier run that heard nothing (its peer was cut off) may
# still hold the last one for a while, and a quick second verify would then fail for that alone
PORT = 39000 + secrets.randbelow(1000)
NONAT_DIR = "/tmp/.provision-verify-nonat."  # mktemp -d adds a random suffix
LISTEN = ("import socket,sys;s=socket.socket(socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET);s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);"
          "s.bind((sys.argv[1],int(sys.argv[2])));s.listen(1);s.settimeout(40);c,a=s.accept();print(a[0],flush=True)")
CONNECT = ("import socket,sys,time\nend=time.time()+20\nwhile True:\n try:\n  socket.create_connection((sys.argv[1],"
           "int(sys.argv[2])),3).close();break\n except OSError:\n  if time.time()>end:raise\n  time.sleep(0.2)")
AT_ONCE = 24  # pings in flight per node: a node pinging hundreds of pods at once drops answers on a busy machine


@lru_cache(maxsize=1)
def _plan() -> dict[str, Any]:
    """What the engine decided for this run (``provisioner.verify.run_suite``)."""
    with open(os.environ["PROVISION_VERIFY_PLAN"]) as fh:
        plan: dict[str, Any] = json.load(fh)
    return plan


@lru_cache(maxsize=1)
def _inventory() -> Inventory:
    """The inventory, cut down to the nodes the engine selected (peers outside them are not checked)."""
    inv = load_inventory(_plan()["inventory"])
    return replace(inv, nodes=tuple(n for n in inv.nodes if n.name in _plan()["hosts"]))


@pytest.fixture(scope="session")
def inventory() -> Inventory:
    return _inventory()


def sysctls(inv: Inventory) -> tuple[str, ...]:
    """The kernel settings apply makes for the cluster's families."""
    return (SYSCTLS if 4 in inv.cluster.families else ()) + (SYSCTLS6 if 6 in inv.cluster.families else ())


def pytest_ignore_collect(collection_path: Any, config: pytest.Config) -> bool | None:
    """The service checks only where the inventory has services (a pod network alone is not reported as
    six skipped checks per node)."""
    if collection_path.name == "test_services.py" and not _inventory().services:
        return True
    return None


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "node_name" in metafunc.fixturenames:
        metafunc.parametrize("node_name", [n.name for n in _inventory().nodes])
    if "family" in metafunc.fixturenames:  # checks made once per address family of the cluster
        metafunc.parametrize("family", _inventory().cluster.families, ids=lambda f: f"IPv{f}")
    if "sysctl_key" in metafunc.fixturenames:
        metafunc.parametrize("sysctl_key", sysctls(_inventory()))


_hosts: dict[str, Any] = {}


def host_of(name: str) -> Any:
    """A testinfra host over SSH (through sudo where the engine decided so), one shared connection per node."""
    if name not in _hosts:
        _hosts[name] = testinfra.get_host(
            f"ssh://{name}", ssh_config=_plan()["ssh_config"], sudo=_inventory().node(name).sudo,
            controlpath=f"{_plan()['control_dir']}/{name}", controlpersist=60)
    return _hosts[name]


@pytest.fixture
def node(inventory: Inventory, node_name: str) -> Node:
    return inventory.node(node_name)


def look_facts(inv: Inventory, node: Node) -> dict[str, Fact[Any]]:
    c = inv.cni
    plugins = list(c.plugins) + (["provisioner-bridge"] if c.own_plugin else [])
    return {"bridge": Addrs(), "routes": Routes(), **({"routes6": Routes6()} if 6 in inv.cluster.families else {}),
            "conf": File(f"{c.conf_dir}/{c.config_name}"),
            **{f"sysctl {k}": Sysctl(k) for k in sysctls(inv)},
            **{f"plugin {p}": Binary(f"{c.bin_dir}/{p}") for p in plugins},
            **{f"pod {p.name}": Addrs(p.name) for p in node.pods}}


def look(inv: Inventory, node: Node) -> dict[str, Any]:
    """Exec 1: what is on the node, by name (``bridge``, ``routes``, ``pod web``, …)."""
    wanted = look_facts(inv, node)
    nonce = secrets.token_hex(6)  # fresh per run: no fact's output can pass for a marker
    r = host_of(node.name).run(facts.script(wanted.values(), nonce))
    values = facts.parse_all(wanted.values(), facts.split(r.stdout, wanted.values(), nonce))
    out = {name: values[f] for name, f in wanted.items()}
    # {family: {pod: its address of the family, or None}}; "pods" is the primary family's
    out["pods_by_family"] = {f: {p.name: _pod_ip(out[f"pod {p.name}"], f) for p in node.pods} for f in inv.cluster.families}
    out["pods"] = out["pods_by_family"][inv.cluster.families[0]]
    return out


def _pod_ip(addrs: dict[str, Any] | None, family: int = 4) -> str | None:
    found = [a for a in (addrs or {}).get("eth0") or [] if (":" in a) == (family == 6)]
    return found[0].split("/")[0] if found else None


def ping_pairs(node: str, pods: dict[str, dict[str, str | None]], full: bool = False) -> list[tuple[str, str]]:
    """``(source pod, target IP)`` pairs that ``node`` pings: every local pod to every other local pod; then one pod
    of every other node (a different one for each node, so all of them get reached across the cluster), from the
    local pods in turn. ``full``: every local pod to every pod of the cluster. ``pods``: ``{node: {pod: ip}}``.

    >>> ping_pairs("n1", {"n1": {"a": "1", "b": "2"}, "n2": {"c": "3", "d": "4"}, "n3": {"e": "5"}})
    [('a', '2'), ('b', '1'), ('a', '3'), ('b', '5')]
    """
    mine = [(p, ip) for p, ip in pods[node].items() if ip]
    if not mine:
        return []
    out = [(src, ip) for src, _ in mine for p, ip in mine if p != src]
    order = list(pods)
    for k, other in enumerate(o for o in order if o != node):
        theirs = [ip for ip in pods[other].values() if ip]
        if not theirs:
            continue
        if full:
            out += [(src, ip) for src, _ in mine for ip in theirs]
        else:  # node i pings pod i of each peer: across the cluster every pod is a target
            out.append((mine[k % len(mine)][0], theirs[order.index(node) % len(theirs)]))
    return out


def probe_script(node: Node, pairs: list[tuple[str, str]], nats: dict[int, dict[str, Any]]) -> str:
    """Exec 2: the ``(pod, ip)`` pings (in parallel) and, for the no-NAT check of each family, the first pod
    listens while connecting to the next node's first pod. Prints ``silent SRC IP`` for each ping that got no
    answer and ``connect-failed FAMILY`` for a connection that could not be made."""
    q = quote
    lines = []
    listen = {f: nat["listen"] for f, nat in nats.items() if nat.get("listen")}
    if listen:
        # what the listeners hear goes to files in a fresh private directory (mktemp -d: never a name planted
        # in /tmp); its name is printed for exec 3. In a subshell: not a job of this shell, so the pings' `wait`
        # does not wait for its connection
        lines.append(f"d=$(mktemp -d {NONAT_DIR}XXXXXXXX) && echo nonat \"$d\"")
    for f, (pod, ip) in listen.items():
        lines.append(f"( setsid ip netns exec {q(pod)} python3 -c {q(LISTEN)} {q(ip)} {PORT} "
                     f'> "$d/heard{f}" 2>&1 < /dev/null & )')
    lines += pings(pairs, 2)
    for f, nat in nats.items():
        if nat.get("connect"):
            pod, ip = nat["connect"]
            lines.append(f"ip netns exec {q(pod)} python3 -c {q(CONNECT)} {q(ip)} {PORT} >/dev/null 2>&1 "
                         f"|| echo connect-failed {f}")
    lines.append("wait")
    return "\n".join(lines) + "\n"


def pings(pairs: list[tuple[str, str]], wait: int) -> list[str]:
    """sh lines: ping each ``(source pod, ip)`` once; ``silent SRC IP`` for each without an answer. Each source pod's
    pings run in ONE ``ip netns exec`` of that pod (an exec per ping cost more than the ping), AT_ONCE at a time;
    the pods' groups run side by side."""
    q, lines = quote, []
    by_src: dict[str, list[str]] = {}
    for src, ip in pairs:
        by_src.setdefault(src, []).append(ip)
    for src, ips in by_src.items():
        inner = []
        for i, ip in enumerate(ips):
            inner.append(f"(ping -c1 -W{wait} {q(ip)} >/dev/null 2>&1 || echo silent {q(src)} {q(ip)}) &")
            if i % AT_ONCE == AT_ONCE - 1:
                inner.append("wait")
        inner.append("wait")
        lines.append(f"ip netns exec {q(src)} sh -c {q(chr(10).join(inner))} &")
    return lines


def _silent(stdout: str) -> list[tuple[str, str]]:
    return [(words[1], words[2]) for words in (line.split() for line in stdout.splitlines() if line.startswith("silent "))
            if len(words) >= 3]


@pytest.fixture(scope="session")
def survey(inventory: Inventory) -> dict[str, dict[str, Any]]:
    """``{node: {bridge, routes, conf, sysctl …, plugin …, pods: {pod: ip}, pods_by_family, silent: [(src, ip)],
    nat: {family: …}, heard: {family: …}, connect_failed: {family, …}, python: bool}}``."""
    nodes = list(inventory.nodes)
    families = inventory.cluster.families
    with ThreadPoolExecutor(max_workers=max(1, min(64, len(nodes)))) as pool:  # all probes at once: listeners wait for connectors
        seen = dict(zip([n.name for n in nodes], pool.map(lambda n: look(inventory, n), nodes)))
        python = dict(zip([n.name for n in nodes], pool.map(
            lambda n: host_of(n.name).run("command -v python3").rc == 0, nodes)))
        nat_pairs = {f: _nat_pairs(nodes, seen, python, f) for f in families}

        heard_in: dict[str, str] = {}

        def probe(n: Node) -> tuple[list[tuple[str, str]], set[int]]:
            nats = {f: {"listen": nat_pairs[f].get(n.name, {}).get("listen"),
                        "connect": nat_pairs[f].get(n.name, {}).get("connect")} for f in families}
            pairs = [pair for f in families for pair in ping_pairs(
                n.name, {m: s["pods_by_family"][f] for m, s in seen.items()}, _plan().get("full", False))]
            r = host_of(n.name).run(probe_script(n, pairs, nats))
            where = [ln.split(" ", 1)[1] for ln in r.stdout.splitlines() if ln.startswith(f"nonat {NONAT_DIR}")]
            if where:
                heard_in[n.name] = where[0]
            failed = {int(w[1]) for w in (ln.split() for ln in r.stdout.splitlines())
                      if len(w) == 2 and w[0] == "connect-failed" and w[1] in ("4", "6")}
            return _silent(r.stdout), failed

        def again(n: Node) -> tuple[list[tuple[str, str]], set[int]]:
            """Exec 2b, only where a ping went unanswered: ask once more, slowly (a lost answer on a busy machine
            is not a broken network; a broken one stays silent)."""
            silent, failed = probed[n.name]
            if not silent:
                return silent, failed
            r = host_of(n.name).run("\n".join(pings(silent, 5) + ["wait"]) + "\n")
            return _silent(r.stdout), failed

        probed = dict(zip([n.name for n in nodes], pool.map(probe, nodes)))
        probed = dict(zip([n.name for n in nodes], pool.map(again, nodes)))
        heard = dict(zip([n.name for n in nodes], pool.map(lambda n: _heard(n.name, heard_in.get(n.name), families), nodes)))
    for n in nodes:
        s = seen[n.name]
        s["silent"], s["connect_failed"] = probed[n.name]
        s["nat"] = {f: nat_pairs[f].get(n.name, {}) for f in families}
        s["heard"] = heard[n.name]
        s["port"] = PORT
        s["python"] = python[n.name]  # the service checks run python3 too
    return seen


@pytest.fixture(scope="session")
def services_survey(inventory: Inventory, survey: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """``{"services": [Service], "left": {key: why}, "asks": {node: {pod: [Ask]}}, "failed": {node: [pod]},
    "not_ready": {node: [text]}, "python": {node: bool}}`` (see :mod:`provisioner.verify.service_checks`)."""
    from provisioner.verify import service_checks as sc
    nodes = list(inventory.nodes)
    services, left = sc.checked(inventory, [n.name for n in nodes])
    out: dict[str, Any] = {"services": services, "left": left, "asks": {}, "failed": {}, "not_ready": {}}
    if not services:
        return out
    pods = {n.name: survey[n.name]["pods"] for n in nodes}
    askers = sum(1 for n in nodes if any(pods[n.name].values()))
    python = {n.name: survey[n.name]["python"] for n in nodes}  # asked once, by the survey
    out["python"] = python
    with ThreadPoolExecutor(max_workers=max(1, min(64, len(nodes)))) as pool:
        def serve(n: Node) -> str | None:
            mine = sc.listeners(services, n)
            if not mine or not python[n.name]:
                return None
            r = host_of(n.name).run(sc.serve_script(mine))
            out["not_ready"][n.name] = [ln for ln in r.stdout.splitlines() if not ln.startswith("svcdir ")]
            where = [ln.split(" ", 1)[1] for ln in r.stdout.splitlines() if ln.startswith(f"svcdir {sc.SERVE_DIR}")]
            return where[0] if where else None

        def ask(i_n: tuple[int, Node]) -> None:
            i, n = i_n
            if not python[n.name]:
                return
            peer = nodes[(i + 1) % len(nodes)].name
            peer_pod = next((ip for ip in pods[peer].values() if ip), None) if peer != n.name else None
            by_pod = sc.asks(inventory, services, n, pods[n.name], askers, peer_pod)
            r = host_of(n.name).run(sc.ask_script(by_pod))
            out["failed"][n.name] = sc.read_answers(r.stdout, by_pod)
            out["asks"][n.name] = by_pod

        dirs = dict(zip([n.name for n in nodes], pool.map(serve, nodes)))
        try:
            list(pool.map(ask, enumerate(nodes)))
        finally:
            def stop(n: Node) -> None:
                where = dirs[n.name]
                if where is not None:
                    host_of(n.name).run(sc.stop_script(where))
            list(pool.map(stop, nodes))
    return out


def _heard(node: str, where: str | None, families: tuple[int, ...]) -> dict[int, str]:
    """Exec 3: the source address each listener of ``node`` saw, by family (a listener writes once it has
    accepted: up to 5 s)."""
    if where is None:
        return {}
    script = "".join(sh("i=0; while [ ! -s {f} ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done; "
                        "echo heard {n} $(cat {f} 2>/dev/null)\n", f=f"{where}/heard{f}", n=str(f)) for f in families)
    out = host_of(node).run(script + sh("rm -rf {d}\n", d=where)).stdout
    return {int(w[1]): (w[2] if len(w) > 2 else "") for w in (ln.split() for ln in out.splitlines())
            if len(w) >= 2 and w[0] == "heard" and w[1] in ("4", "6")}


def _nat_pairs(nodes: list[Node], seen: dict[str, dict[str, Any]], python: dict[str, bool],
               family: int) -> dict[str, dict[str, Any]]:
    """Each node with a pod and python3 connects from its first pod to the next such node's first pod, over
    their addresses of ``family``."""
    pods = {name: s["pods_by_family"][family] for name, s in seen.items()}
    able = [n.name for n in nodes if python[n.name] and any(pods[n.name].values())]
    out: dict[str, dict[str, Any]] = {}
    if len(able) < 2:
        return out
    for i, name in enumerate(able):
        peer = able[(i + 1) % len(able)]
        src = next((p, ip) for p, ip in pods[name].items() if ip)
        dst = next((p, ip) for p, ip in pods[peer].items() if ip)
        out.setdefault(name, {})["connect"] = dst
        out[name]["peer"], out[name]["from"] = peer, src
        out.setdefault(peer, {})["listen"] = dst
    return out
