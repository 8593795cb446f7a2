"""Fixtures for the verify suite: the inventory, a testinfra host per node, live pod IPs."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from functools import lru_cache

import pytest
import testinfra

from provisioner.inventory import load_inventory


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


@pytest.fixture(scope="session")
def host_of(inventory):
    """``host_of(name)`` → a testinfra host over SSH (through sudo for a non-root user), shared by all tests."""
    def get(name: str):
        if name not in _hosts:
            _hosts[name] = testinfra.get_host(
                f"ssh://{name}", ssh_config=_plan()["ssh_config"], sudo=inventory.node(name).sudo,
                controlpath=f"{_plan()['control_dir']}/{name}", controlpersist=30)
        return _hosts[name]
    return get


@pytest.fixture
def node(inventory, node_name):
    return inventory.node(node_name)


@pytest.fixture
def host(host_of, node_name):
    return host_of(node_name)


@pytest.fixture(scope="session")
def live_pods(inventory, host_of):
    """``{node: [(pod, ip)]}`` as found on the nodes (CNI pods get their IP at run time); one command per node."""
    out = {}
    for n in inventory.nodes:
        if not n.pods:
            out[n.name] = []
            continue
        script = "; ".join(f"echo {p.name} $(ip -n {p.name} -4 -o addr show dev eth0 2>/dev/null | awk '{{print $4}}')"
                           for p in n.pods)
        found = dict((line.split() + [""])[:2] for line in host_of(n.name).run(script).stdout.splitlines())
        out[n.name] = [(p.name, found.get(p.name, "").split("/")[0] or None) for p in n.pods]
    return out


def ping_all(host, pod: str, ips: list[str]) -> list[str]:
    """Ping every ``ips`` from inside ``pod`` at once; returns the addresses that did not answer."""
    loop = " ".join(f"(ping -c1 -W2 {ip} >/dev/null 2>&1 || echo {ip}) &" for ip in ips)
    r = host.run(f"ip netns exec {pod} sh -c '{loop} wait'")
    return r.stdout.split()
