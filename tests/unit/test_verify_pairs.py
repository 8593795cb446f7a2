"""Which pings verify makes: linear in the nodes by default, every pair with --full; and the probe script runs
a pod's pings in one exec of that pod, every value quoted."""

from __future__ import annotations

import doctest
import shlex
import subprocess

import provisioner.verify.conftest as suite
from provisioner.verify.conftest import ping_pairs, probe_script


def cluster(nodes: int, pods: int) -> dict[str, dict[str, str | None]]:
    return {f"node{n}": {f"p{k}": f"10.244.{n}.{k + 2}" for k in range(pods)} for n in range(1, nodes + 1)}


def owner(pods, ip):
    return next(n for n, ps in pods.items() if ip in ps.values())


def test_the_default_reaches_every_other_node_once_from_each_node_and_every_pod_is_a_target():
    for nodes, per in ((2, 1), (3, 2), (7, 3), (50, 2)):
        pods = cluster(nodes, per)
        pairs = {n: ping_pairs(n, pods) for n in pods}
        for n, mine in pairs.items():
            local = [(s, ip) for s, ip in mine if owner(pods, ip) == n]
            remote = [(s, ip) for s, ip in mine if owner(pods, ip) != n]
            assert len(local) == per * (per - 1)  # the node's own pods: all pairs
            assert sorted(owner(pods, ip) for _, ip in remote) == sorted(o for o in pods if o != n)  # each peer once
            if nodes - 1 >= per:  # every local pod takes a turn
                assert {s for s, _ in remote} == set(pods[n])
        targets = {ip for mine in pairs.values() for _, ip in mine}
        assert targets == {ip for ps in pods.values() for ip in ps.values()}
        total = sum(len(p) for p in pairs.values())
        assert total == nodes * (per * (per - 1) + nodes - 1)  # per node: linear in the nodes


def test_full_is_every_pod_to_every_other_pod():
    pods = cluster(4, 2)
    for n in pods:
        pairs = ping_pairs(n, pods, full=True)
        assert len(pairs) == 2 * (8 - 1) and len(set(pairs)) == len(pairs)


def test_pods_without_an_address_are_neither_sources_nor_targets():
    pods = {"a": {"x": "10.0.0.2", "y": None}, "b": {"z": None}, "c": {"w": "10.0.2.2"}}
    assert ping_pairs("a", pods) == [("x", "10.0.2.2")]
    assert ping_pairs("b", pods) == []


def test_a_pods_pings_run_in_one_exec_of_that_pod_and_hostile_names_stay_arguments(tmp_path):
    evil = "w$(touch${IFS}x)`id`;y"  # no space: _silent reads words (real pod names are checked: no shell in them)
    script = probe_script(None, [(evil, "10.0.0.2"), (evil, "10.0.0.3"), ("api", "10.0.0.4")], {})  # type: ignore[arg-type]
    # a fake `ip` that logs each `netns exec POD` and runs the command; a ping that never gets an answer
    log = tmp_path / "ip.log"
    (tmp_path / "ip").write_text(f'#!/bin/sh\nprintf "%s\\n" "$3" >> {shlex.quote(str(log))}\nshift 3\nexec "$@"\n')
    (tmp_path / "ping").write_text("#!/bin/sh\nexit 1\n")
    for f in ("ip", "ping"):
        (tmp_path / f).chmod(0o755)
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=30, cwd=tmp_path,
                         env={"PATH": f"{tmp_path}:/usr/bin:/bin"})
    assert sorted(log.read_text().splitlines()) == sorted(["api", evil])  # one exec per source pod
    assert sorted(suite._silent(out.stdout)) == [("api", "10.0.0.4"), (evil, "10.0.0.2"), (evil, "10.0.0.3")]
    assert not (tmp_path / "x").exists()


def test_the_doc_example_holds():
    assert doctest.testmod(suite).failed == 0
