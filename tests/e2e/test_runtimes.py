"""A real container runtime proves the files apply wrote: containerd, driven through CRI as kubelet drives it.

On each lab node the test starts Debian's containerd with the config.toml that the
`containerd_cni` task completed, imports a tiny sandbox image built here from
busybox-static (nothing is pulled), and makes pod sandboxes with RunPodSandbox,
PodSandboxStatus, StopPodSandbox and RemovePodSandbox. The sandbox's address must
come from the node's pod subnet through the conflist and plugins apply installed,
reach the other node's sandbox and hand-made pod without NAT, and its lease must go
when the sandbox is removed.
"""

from __future__ import annotations

import hashlib
import io
import ipaddress
import json
import shutil
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from provisioner.lab import namespace

from ..cri.client import CRI

pytestmark = pytest.mark.e2e
SANDBOX_IMAGE = "localhost/provisioner-pause:1"
USER_CONFIG = f"""version = 2
root = "/var/lib/containerd"
state = "/run/containerd"
[grpc]
  address = "/run/containerd/containerd.sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{SANDBOX_IMAGE}"
  disable_apparmor = true
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "native"
"""


def sandbox_image(path: Path) -> None:
    """A docker-archive image: busybox-static, whose entrypoint sleeps (the sandbox's "pause" process)."""
    busybox = Path("/bin/busybox")
    assert busybox.exists(), "busybox-static is missing (scripts/bootstrap.sh installs it)"
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as tar:
        info = tarfile.TarInfo("bin")
        info.type, info.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(info)
        data = busybox.read_bytes()
        info = tarfile.TarInfo("bin/busybox")
        info.size, info.mode = len(data), 0o755
        tar.addfile(info, io.BytesIO(data))
        for name in ("sh", "sleep"):
            info = tarfile.TarInfo(f"bin/{name}")
            info.type, info.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(info)
    layer_bytes = layer.getvalue()
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "config": {"Entrypoint": ["/bin/sleep", "2147483647"], "Env": ["PATH=/bin"]},
                         "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(layer_bytes).hexdigest()]}})
    manifest = json.dumps([{"Config": "config.json", "RepoTags": [SANDBOX_IMAGE], "Layers": ["layer.tar"]}])
    with tarfile.open(path, "w") as tar:
        for name, blob in (("layer.tar", layer_bytes), ("config.json", config.encode()), ("manifest.json", manifest.encode())):
            info = tarfile.TarInfo(name)
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))


class Containerd:
    """containerd running inside one lab node, reached through the node's own socket."""

    def __init__(self, lab, node: str):
        self.lab, self.node = lab, node
        assert shutil.which("containerd") and shutil.which("runc"), "containerd and runc are missing (bootstrap installs them)"
        lab.node_sh(node, "(containerd --config /etc/containerd/config.toml > /tmp/containerd.log 2>&1 &)")
        self.socket = f"/proc/{namespace.node_pid(lab.name, node)}/root/run/containerd/containerd.sock"
        deadline = time.monotonic() + 30
        while not Path(self.socket).exists():
            assert time.monotonic() < deadline, self.log()
            time.sleep(0.2)
        image = namespace.ROOT / lab.name / "sandbox-image.tar"
        if not image.exists():
            sandbox_image(image)
        lab.node_sh(node, f"ctr -n k8s.io images import --snapshotter native {image} >/dev/null")
        self.cri = CRI(self.socket)
        self.sandboxes: list[str] = []

    def log(self) -> str:
        return self.lab.node_sh(self.node, "tail -20 /tmp/containerd.log")

    def run(self, name: str) -> tuple[str, str]:
        """RunPodSandbox, then PodSandboxStatus: (sandbox id, its IP)."""
        sid = self.cri.run_sandbox(name, cgroup_parent=namespace.cgroup_parent(self.lab.name))
        self.sandboxes.append(sid)
        status = self.cri.status(sid)
        assert status.state == 0, status  # SANDBOX_READY
        return sid, status.network.ip

    def remove(self, sid: str) -> None:
        self.cri.stop(sid)
        self.cri.remove(sid)
        self.sandboxes.remove(sid)

    def close(self) -> None:
        for sid in list(self.sandboxes):
            try:
                self.remove(sid)
            except Exception:  # noqa: BLE001 - teardown goes on; lab down removes the rest
                pass
        self.cri.close()
        self.lab.node_sh(self.node, "pkill containerd; true")


def netns_of(lab, node: str, ip: str) -> str:
    """The network namespace a runtime made (through CNI) for the sandbox holding ``ip`` on ``node``."""
    found = lab.node_sh(node, f"for n in $(ip netns list | cut -d' ' -f1); do "
                              f"ip -n $n -4 -o addr | grep -q ' {ip}/' && echo $n; done; true").split()
    assert len(found) == 1, found
    return found[0]


def leases(lab, node: str) -> list[str]:
    out = lab.node_sh(node, f"ls /var/lib/cni/networks/{lab.name} 2>/dev/null || true").split()
    return [x for x in out if x[0].isdigit()]


def peer_seen_from(lab, node: str, pod: str, port: int = 7777) -> subprocess.Popen:
    """A one-shot TCP listener in hand-made pod ``pod`` on ``node`` that prints the peer address it sees."""
    pid = namespace.node_pid(lab.name, node)
    code = (f"import socket; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); "
            f"s.bind(('0.0.0.0', {port})); s.listen(1); print('listening', flush=True); s.settimeout(20); "
            f"c, a = s.accept(); print(a[0], flush=True)")
    p = subprocess.Popen(["nsenter", "-t", str(pid), "-n", "-m", "-u", "-p", "-r", "-w", "--", "ip", "netns", "exec",
                          pod, "python3", "-c", code], stdout=subprocess.PIPE, text=True)
    assert p.stdout is not None and p.stdout.readline().strip() == "listening"  # it listens: connect now, not after a nap
    return p


@pytest.mark.parametrize("cni_type", ["bridge", "provisioner-bridge"])
def test_containerd_cri_sandboxes_get_pod_network_from_what_apply_wrote(make_lab, cni_type):
    lab = make_lab(2, pods=("web",), cni_type=cni_type)
    for node in ("node1", "node2"):
        lab.node_sh(node, f"mkdir -p /etc/containerd && cat > /etc/containerd/config.toml <<'EOF'\n{USER_CONFIG}EOF")
    rc, doc = lab.json("apply")
    assert rc == 0, doc["recap"]
    runtimes = {n: Containerd(lab, n) for n in ("node1", "node2")}
    try:
        data = {n["name"]: n for n in lab.data()["nodes"]}
        subnets = {"node1": ipaddress.IPv4Network("10.244.1.0/24"), "node2": ipaddress.IPv4Network("10.244.2.0/24")}
        sid1, ip1 = runtimes["node1"].run("box1")
        sid2, ip2 = runtimes["node2"].run("box2")
        assert ipaddress.IPv4Address(ip1) in subnets["node1"] and ipaddress.IPv4Address(ip2) in subnets["node2"], (ip1, ip2)
        assert ipaddress.IPv4Address(ip1) >= subnets["node1"].network_address + 10  # the CNI range, past hand-made pods
        assert ip1 in leases(lab, "node1")
        ns1 = netns_of(lab, "node1", ip1)
        lab.node_sh("node1", f"ip netns exec {ns1} ping -c1 -W3 {ip2}")       # sandbox -> sandbox on the other node
        lab.node_sh("node1", f"ip netns exec {ns1} ping -c1 -W3 10.244.2.2")  # -> hand-made pod web on node2
        listener = peer_seen_from(lab, "node2", "web")
        lab.node_sh("node1", f"ip netns exec {ns1} python3 -c \"import socket; socket.create_connection(('10.244.2.2', 7777), 5)\"")
        seen = listener.communicate(timeout=30)[0].strip()
        assert seen == ip1, f"node2's pod saw {seen}, not the sandbox's own {ip1}: NAT in the way"
        runtimes["node1"].remove(sid1)
        assert ip1 not in leases(lab, "node1")  # removing the sandbox released its lease
        assert data  # (inventory read for the subnets above)
    finally:
        for r in runtimes.values():
            r.close()


def test_containerd_with_a_wrong_cni_section_gets_no_sandbox(make_lab):
    """The negative case: containerd pointed at a bin dir without plugins cannot make a sandbox."""
    import grpc

    lab = make_lab(1, pods=())
    lab.node_sh("node1", f"mkdir -p /etc/containerd && cat > /etc/containerd/config.toml <<'EOF'\n{USER_CONFIG}EOF")
    assert lab.provision("apply").returncode == 0
    lab.node_sh("node1", "mkdir -p /opt/no-plugins && sed -i 's#bin_dir = \"/etc/cni/bin\"#bin_dir = \"/opt/no-plugins\"#' "
                         "/etc/containerd/config.toml && grep -q no-plugins /etc/containerd/config.toml")
    runtime = Containerd(lab, "node1")
    try:
        with pytest.raises(grpc.RpcError) as exc:
            runtime.run("box")
        assert "plugin" in exc.value.details(), exc.value.details()
    finally:
        runtime.close()


PODMAN_CONF = """[network]
network_backend = "cni"
cni_plugin_dirs = ["/etc/cni/bin"]
network_config_dir = "/etc/cni/net.d"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "runc"
"""
PODMAN_STORAGE = """[storage]
driver = "vfs"
runroot = "/run/containers/storage"
graphroot = "/var/lib/containers/storage"
"""


class Podman:
    """Debian's podman (CNI backend) on one lab node, using the conflist and plugins apply installed."""

    def __init__(self, lab, node: str):
        assert shutil.which("podman"), "podman is missing (bootstrap installs it)"
        self.lab, self.node = lab, node
        lab.node_sh(node, f"mkdir -p /etc/containers && cat > /etc/containers/containers.conf <<'EOF'\n{PODMAN_CONF}EOF\n"
                          f"cat > /etc/containers/storage.conf <<'EOF'\n{PODMAN_STORAGE}EOF")
        image = namespace.ROOT / lab.name / "sandbox-image.tar"
        if not image.exists():
            sandbox_image(image)
        lab.node_sh(node, f"podman load -q -i {image} >/dev/null")
        self.containers: list[str] = []

    def run(self, name: str) -> str:
        """podman run on the cluster's CNI network; returns the container's IP."""
        self.lab.node_sh(self.node, f"podman run -d --name {name} --network {self.lab.name} "
                                    f"--cgroup-parent {namespace.cgroup_parent(self.lab.name)} {SANDBOX_IMAGE} >/dev/null")
        self.containers.append(name)
        return self.lab.node_sh(self.node, f"podman inspect {name} --format "
                                           f"'{{{{(index .NetworkSettings.Networks \"{self.lab.name}\").IPAddress}}}}'").strip()

    def remove(self, name: str) -> None:
        self.lab.node_sh(self.node, f"podman rm -f -t 0 {name} >/dev/null")
        self.containers.remove(name)

    def close(self) -> None:
        for name in list(self.containers):
            try:
                self.remove(name)
            except AssertionError:
                pass


@pytest.mark.parametrize("cni_type", ["bridge", "provisioner-bridge"])
def test_podman_containers_get_pod_network_from_what_apply_wrote(make_lab, cni_type):
    lab = make_lab(2, pods=("web",), cni_type=cni_type)
    rc, doc = lab.json("apply")
    assert rc == 0, doc["recap"]
    engines = {n: Podman(lab, n) for n in ("node1", "node2")}
    try:
        ip1, ip2 = engines["node1"].run("box1"), engines["node2"].run("box2")
        assert ipaddress.IPv4Address(ip1) in ipaddress.IPv4Network("10.244.1.0/24"), ip1
        assert ipaddress.IPv4Address(ip2) in ipaddress.IPv4Network("10.244.2.0/24"), ip2
        assert ip1 in leases(lab, "node1")
        ns1 = netns_of(lab, "node1", ip1)
        lab.node_sh("node1", f"ip netns exec {ns1} ping -c1 -W3 {ip2}")
        lab.node_sh("node1", f"ip netns exec {ns1} ping -c1 -W3 10.244.2.2")
        listener = peer_seen_from(lab, "node2", "web", 7778)
        lab.node_sh("node1", f"ip netns exec {ns1} python3 -c \"import socket; socket.create_connection(('10.244.2.2', 7778), 5)\"")
        assert listener.communicate(timeout=30)[0].strip() == ip1  # no NAT between pods
        engines["node1"].remove("box1")
        assert ip1 not in leases(lab, "node1")
    finally:
        for e in engines.values():
            e.close()


def leases6(lab, node: str) -> list[str]:
    out = lab.node_sh(node, f"ls /var/lib/cni/networks/{lab.name} 2>/dev/null || true").split()
    return [x for x in out if ":" in x]


@pytest.mark.parametrize("cni_type", ["bridge", "provisioner-bridge"])
def test_dual_stack_sandboxes_and_containers_get_an_address_of_each_family(make_lab, cni_type):
    """On a dual-stack lab, a CRI sandbox (containerd) and a podman container each get an IPv4 and an IPv6
    address from the node's subnets, reach the other node's pods over IPv6, and give both leases back."""
    lab = make_lab(2, pods=("web",), cni_type=cni_type, family="dual")
    for node in ("node1", "node2"):
        lab.node_sh(node, f"mkdir -p /etc/containerd && cat > /etc/containerd/config.toml <<'EOF'\n{USER_CONFIG}EOF")
    rc, doc = lab.json("apply")
    assert rc == 0, doc["recap"]
    v6 = {"node1": ipaddress.IPv6Network("fd00:10:244:1::/64"), "node2": ipaddress.IPv6Network("fd00:10:244:2::/64")}
    runtime = Containerd(lab, "node1")
    engine = Podman(lab, "node2")
    try:
        sid, ip1 = runtime.run("box1")
        extra = [x.ip for x in runtime.cri.status(sid).network.additional_ips]
        assert ipaddress.IPv4Address(ip1) in ipaddress.IPv4Network("10.244.1.0/24"), ip1
        assert len(extra) == 1 and ipaddress.IPv6Address(extra[0]) in v6["node1"], extra
        box2 = engine.run("box2")
        ip6_2 = lab.node_sh("node2", f"podman inspect box2 --format "
                                     f"'{{{{(index .NetworkSettings.Networks \"{lab.name}\").GlobalIPv6Address}}}}'").strip()
        assert ipaddress.IPv4Address(box2) in ipaddress.IPv4Network("10.244.2.0/24") and ipaddress.IPv6Address(ip6_2) in v6["node2"]
        assert extra[0] in leases6(lab, "node1") and ip6_2 in leases6(lab, "node2")
        ns1 = netns_of(lab, "node1", ip1)
        lab.node_sh("node1", f"ip netns exec {ns1} ping -c1 -W3 {ip6_2}")               # sandbox -> container, IPv6
        lab.node_sh("node1", f"ip netns exec {ns1} ping -c1 -W3 fd00:10:244:2::2")      # -> hand-made pod web on node2
        runtime.remove(sid)
        engine.remove("box2")
        assert leases6(lab, "node1") == [] and leases6(lab, "node2") == []
    finally:
        runtime.close()
        engine.close()
