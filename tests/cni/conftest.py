"""CNI conformance harness: a "node" network namespace, pod namespaces, and plugin calls
made exactly as a container runtime makes them (CNI_* environment + config on stdin)."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
from pathlib import Path

import pytest

from provisioner.node_plugin import PLUGIN_NAME, plugin_path

REFERENCE = Path("/usr/lib/cni")


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    p = subprocess.run(argv, capture_output=True, text=True)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(argv)}: {p.stderr}")
    return p


class Node:
    """A network namespace standing in for a node; the plugin runs inside it."""

    def __init__(self, tmp: Path):
        self.name = "cnin-" + secrets.token_hex(3)
        self.tmp = tmp
        self.pods: list[str] = []
        self.bin = tmp / "bin"
        self.bin.mkdir()
        shutil.copy(plugin_path(), self.bin / PLUGIN_NAME)
        (self.bin / PLUGIN_NAME).chmod(0o755)
        for ref in ("host-local", "bridge", "loopback"):
            (self.bin / ref).symlink_to(REFERENCE / ref)
        self.data_dir = tmp / "leases"
        sh("ip", "netns", "add", self.name)
        sh("ip", "-n", self.name, "link", "set", "lo", "up")

    def config(self, type_: str = PLUGIN_NAME, **over) -> dict:
        conf = {"cniVersion": "1.0.0", "name": "testnet", "type": type_, "bridge": "cnibr0", "isGateway": True,
                "ipMasq": False, "hairpinMode": True, "mtu": 1500,
                "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.250.0.0/24", "gateway": "10.250.0.1"}]],
                         "routes": [{"dst": "0.0.0.0/0"}], "dataDir": str(self.data_dir)}}
        conf.update(over)
        return conf

    def pod(self) -> str:
        name = "cnip-" + secrets.token_hex(3)
        sh("ip", "netns", "add", name)
        self.pods.append(name)
        return name

    def call(self, command: str, conf: dict | str, pod: str | None, ifname: str = "eth0",
             plugin: str = PLUGIN_NAME, env: dict | None = None) -> tuple[int, dict | None]:
        environ = {"CNI_COMMAND": command, "CNI_CONTAINERID": pod or "none", "CNI_NETNS": f"/run/netns/{pod}" if pod else "",
                   "CNI_IFNAME": ifname, "CNI_PATH": str(self.bin), "PATH": os.environ["PATH"],
                   "PROVISIONER_CNI_RUNDIR": str(self.tmp)}
        environ.update(env or {})
        stdin = conf if isinstance(conf, str) else json.dumps(conf)
        p = subprocess.run(["ip", "netns", "exec", self.name, str(self.bin / plugin)], input=stdin,
                           capture_output=True, text=True, env=environ, timeout=60)
        out = json.loads(p.stdout) if p.stdout.strip() else None
        return p.returncode, out

    def run(self, *argv: str, pod: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
        where = pod or self.name
        return sh("ip", "netns", "exec", where, *argv, check=check)

    def ip_json(self, *args: str, pod: str | None = None) -> list:
        out = self.run("ip", "-json", *args, pod=pod).stdout
        return json.loads(out) if out.strip() else []

    def leases(self) -> list[str]:
        d = self.data_dir / "testnet"
        return sorted(p.name for p in d.iterdir() if p.name[0].isdigit()) if d.exists() else []

    def veths(self) -> list[str]:
        return [x["ifname"] for x in self.ip_json("link", "show", "type", "veth")]

    def remove(self) -> None:
        for pod in self.pods:
            sh("ip", "netns", "del", pod, check=False)
        sh("ip", "netns", "del", self.name, check=False)


@pytest.fixture
def node(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("CNI conformance tests create network namespaces and need root")
    if not (REFERENCE / "host-local").exists():
        pytest.skip("containernetworking-plugins is not installed (scripts/bootstrap.sh installs it)")
    n = Node(tmp_path)
    try:
        yield n
    finally:
        n.remove()


@pytest.fixture
def node2(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root")
    d = tmp_path / "second"
    d.mkdir()
    n = Node(d)
    try:
        yield n
    finally:
        n.remove()
