"""End-to-end fixtures: namespace labs that are always taken down, even when a test fails."""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from provisioner.lab import namespace

def pytest_collection_modifyitems(items):
    for item in items:
        if "/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)
            if os.geteuid() != 0:
                item.add_marker(pytest.mark.skip(reason="end-to-end tests build namespace labs and need root"))


class Lab:
    def __init__(self, name: str, inventory: Path):
        self.name, self.inventory = name, inventory

    def provision(self, *args: str, inventory: Path | None = None, check: bool = False) -> subprocess.CompletedProcess:
        """Run the real CLI; returns the completed process (stdout, stderr, returncode)."""
        argv = [sys.executable, "-m", "provisioner.cli", args[0], str(inventory or self.inventory), *args[1:]]
        p = subprocess.run(argv, capture_output=True, text=True, timeout=600)
        if check and p.returncode != 0:
            raise AssertionError(f"provision {' '.join(args)} exited {p.returncode}\n{p.stdout}\n{p.stderr}")
        return p

    def json(self, *args: str, **kw) -> tuple[int, dict]:
        p = self.provision(*args, "--json", **kw)
        try:
            return p.returncode, json.loads(p.stdout)
        except ValueError:
            raise AssertionError(f"not JSON (exit {p.returncode}):\n{p.stdout}\n{p.stderr}") from None

    def node_sh(self, node: str, script: str) -> str:
        """Run ``script`` inside node ``node`` (its namespaces, as the node's sshd sees them)."""
        pid = namespace.node_pid(self.name, node)
        p = subprocess.run(["nsenter", "-t", str(pid), "-n", "-m", "-u", "-p", "-r", "-w", "--", "sh", "-c", script],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, f"{node}: {script}: {p.stderr}"
        return p.stdout

    def data(self) -> dict:
        return yaml.safe_load(self.inventory.read_text())


@pytest.fixture
def make_lab(tmp_path):
    """make_lab(nodes=3, **kw) → Lab; every lab made is removed at teardown, whatever happened."""
    made: list[str] = []
    base = secrets.randbelow(230)  # lab subnets 10.213.20-249.0/24; the demo lab uses 10.213.0.0/24

    def make(nodes: int = 3, pods: tuple[str, ...] = ("web", "api"), **kw) -> Lab:
        """kw: cni_pods=("db",), cni_type="provisioner-bridge" (see namespace.up)."""
        name = "t" + secrets.token_hex(2)
        # labs of a suite running beside this one (or a demo) may hold some subnets: take the next free one
        free = (f"10.213.{20 + (base + len(made) + i) % 230}.0/24" for i in range(230))
        subnet = next(s for s in free if namespace.subnet_taken(ipaddress.IPv4Network(s)) is None)
        made.append(name)
        out = namespace.up(nodes, tmp_path / f"{name}.yaml", subnet, name, pods, **kw)
        return Lab(name, out)

    yield make
    for name in made:
        namespace.down(name)
        left = namespace.running(name)
        assert not any(left.values()), f"lab {name} left {left}"


@pytest.fixture
def lab3(make_lab):
    return make_lab(3)
