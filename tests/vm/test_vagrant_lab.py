"""The VM tier: three Debian 12 VMs (Vagrant + libvirt, the offline box), apply and verify over their real
sshd as ``vagrant`` with sudo, containerd restarted by systemd, podman containers across nodes without NAT,
reboots of one node and then all with nothing run again, services in ipvs mode, reset, and a reboot that
finds no trace.

Everything runs in one module-scoped lab (booting VMs is the expensive part); the tests run in file order
and each leaves the lab as the next expects. The lab is removed at the end whatever happened, and the
machine is checked to be as it was (no domain, network or libvirt chain of ours left).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from ..conftest import ROOT
from ..e2e.test_runtimes import sandbox_image

pytestmark = [pytest.mark.vm, pytest.mark.timeout(2400),  # VMs built, booted and rebooted: minutes
              pytest.mark.skipif(os.geteuid() != 0, reason="the VM tier starts libvirt and VMs: needs root")]

CLUSTER = "pvmt"
PROVISION = [sys.executable, "-m", "provisioner.cli"]
TIMES: dict[str, float] = {}  # measured, printed at the end (README "The Vagrant lab" quotes them)
IMAGE = "localhost/provisioner-pause:1"
FOREIGN_IPVS = "10.0.0.1:80"  # a virtual service that is not ours (keepalived's, say)
PODMAN_CONF = ('[network]\nnetwork_backend = "cni"\ncni_plugin_dirs = ["/etc/cni/bin"]\n'
               'network_config_dir = "/etc/cni/net.d"\n')


def host_state() -> dict:
    """What of this machine a VM lab may touch: libvirt's domains, networks and pools, its bridges and taps, its
    iptables chains. (Only these: namespace labs of other tests or a demo may come and go meanwhile.)"""
    virsh = shutil.which("virsh")
    links = subprocess.run(["ip", "-br", "link"], capture_output=True, text=True).stdout.split("\n")
    rules = subprocess.run(["iptables-save"], capture_output=True, text=True).stdout.splitlines()
    out = {"links": sorted(l.split()[0] for l in links if l.startswith(("virbr", "vnet", CLUSTER))),
           "iptables": sorted(r for r in rules if "LIBVIRT" in r or "virbr" in r)}
    if virsh and subprocess.run([virsh, "-c", "qemu:///system", "uri"], capture_output=True).returncode == 0:
        for key, args in (("domains", ["list", "--all", "--name"]), ("networks", ["net-list", "--all", "--name"]),
                          ("pools", ["pool-list", "--all", "--name"])):
            out[key] = sorted(subprocess.run([virsh, "-c", "qemu:///system", *args], capture_output=True,
                                             text=True).stdout.split())
    out["libvirt config"] = sorted(str(p) for p in Path("/etc/libvirt").rglob("*"))
    return out


class VMLab:
    def __init__(self, inventory: Path):
        self.inventory = inventory

    def provision(self, *args: str, check: bool = True, timeout: float = 900) -> subprocess.CompletedProcess:
        p = subprocess.run([*PROVISION, args[0], str(self.inventory), *args[1:]], capture_output=True, text=True,
                           timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(f"provision {' '.join(args)} exited {p.returncode}\n{p.stdout[-4000:]}\n{p.stderr[-4000:]}")
        return p

    def json(self, *args: str) -> dict:
        p = self.provision(*args, "--json", check=False)
        try:
            doc = json.loads(p.stdout)
        except ValueError:
            raise AssertionError(f"provision {' '.join(args)} exited {p.returncode}, not JSON:\n{p.stdout[-3000:]}\n"
                                 f"{p.stderr[-3000:]}") from None
        if p.returncode != 0:  # the failed tasks' own errors, not the tail of the document
            raise AssertionError(f"provision {' '.join(args)} exited {p.returncode}: " + "; ".join(
                f"{h}: {r.get('error') or ''} " + " ".join(f"[{t['name']}: {t['error']}]" for t in r["tasks"] if t["error"])
                for h, r in doc.get("hosts", {}).items()))
        return doc

    def sh(self, node: str, command: str, check: bool = True, stdin: bytes | None = None) -> str:
        p = subprocess.run([*PROVISION, "ssh", str(self.inventory), node, command], input=stdin,
                           capture_output=True, timeout=300)
        if check and p.returncode != 0:
            raise AssertionError(f"{node}: {command}: exit {p.returncode}: {p.stderr.decode(errors='replace')}")
        return p.stdout.decode(errors="replace")

    def boot_id(self, node: str) -> str | None:
        p = subprocess.run([*PROVISION, "ssh", str(self.inventory), node, "cat /proc/sys/kernel/random/boot_id"],
                           capture_output=True, text=True, timeout=60)
        return p.stdout.strip() if p.returncode == 0 else None

    def reboot(self, *nodes: str, limit: float = 600) -> float:
        """Reboot ``nodes`` (systemctl reboot) and wait until each answers with a new boot id; seconds taken."""
        before = {n: self.boot_id(n) for n in nodes}
        t0 = time.monotonic()
        for n in nodes:
            self.sh(n, "sudo systemctl reboot", check=False)
        waiting = set(nodes)
        while waiting and time.monotonic() - t0 < limit:
            for n in sorted(waiting):
                now = self.boot_id(n)
                if now and now != before[n]:
                    waiting.discard(n)
            if waiting:
                time.sleep(2)
        assert not waiting, f"{sorted(waiting)} did not come back within {limit} s"
        return time.monotonic() - t0

    def nothing_to_do(self) -> None:
        doc = self.json("plan")
        changed = {h: [t["name"] for t in r["tasks"] if t["status"] != "ok"] for h, r in doc["hosts"].items()}
        assert doc["ok"] and not any(changed.values()), changed

    def verify(self) -> None:
        p = self.provision("verify", check=False)
        assert p.returncode == 0, p.stdout[-6000:] + p.stderr[-2000:]


@pytest.fixture(scope="module")
def vmlab(tmp_path_factory):
    work = tmp_path_factory.mktemp("vmlab")
    data = yaml.safe_load((ROOT / "inventories/vagrant-libvirt.yaml").read_text())
    # a lab of its own: its own names and networks, so a user's lab or a demo can run beside it
    data["cluster"]["name"] = CLUSTER
    data["cluster"]["node_cidr"] = "192.168.57.0/24"
    data["vagrant"]["management_network"] = "192.168.123.0/24"
    for i, node in enumerate(data["nodes"]):
        node["address"] = f"192.168.57.{11 + i}"
    inventory = work / "inventory.yaml"
    inventory.write_text(yaml.safe_dump(data, sort_keys=False))
    state = Path("/run/provisioner-vmlab") / CLUSTER  # a fixed place: a run that was killed is cleaned up here
    subprocess.run(["bash", str(ROOT / "scripts/vm-lab.sh"), "down", str(state)], capture_output=True, timeout=900)
    before = host_state()
    t0 = time.monotonic()
    try:
        p = subprocess.run(["bash", str(ROOT / "scripts/vm-lab.sh"), "up", str(inventory), str(state)],
                           capture_output=True, text=True, timeout=1800)
        assert p.returncode == 0, p.stderr[-6000:]
        TIMES["box + libvirtd + vagrant up"] = time.monotonic() - t0
        yield VMLab(Path(p.stdout.strip().splitlines()[-1]))
    finally:
        t1 = time.monotonic()
        down = subprocess.run(["bash", str(ROOT / "scripts/vm-lab.sh"), "down", str(state)], capture_output=True,
                              text=True, timeout=900)
        TIMES["down"] = time.monotonic() - t1
        print("\nVM tier times (s): " + ", ".join(f"{k} {v:.0f}" for k, v in TIMES.items()))
        assert down.returncode == 0, down.stderr[-4000:]
        after = host_state()
        assert after == before, {k: (before.get(k), after.get(k)) for k in after if after.get(k) != before.get(k)}


ORIGINAL: dict[str, str] = {}


def test_apply_edits_debians_containerd_config_and_systemd_restarts_containerd(vmlab):
    ORIGINAL["containerd"] = vmlab.sh("node1", "sha256sum /etc/containerd/config.toml").split()[0]
    assert "/usr/lib/cni" in vmlab.sh("node1", "cat /etc/containerd/config.toml")  # Debian's own file is there
    t0 = time.monotonic()
    doc = vmlab.json("apply")
    TIMES["apply"] = time.monotonic() - t0
    assert doc["ok"], {h: r["error"] or [t["error"] for t in r["tasks"] if t["error"]] for h, r in doc["hosts"].items()}
    for host, r in doc["hosts"].items():
        restart = [t for t in r["tasks"] if t["name"] == "restart containerd"]
        assert restart and restart[0]["status"] == "changed", (host, restart)
        assert vmlab.sh(host, "systemctl is-active containerd").strip() == "active"
        dumped = vmlab.sh(host, "sudo containerd config dump")
        assert 'bin_dir = "/etc/cni/bin"' in dumped and 'conf_dir = "/etc/cni/net.d"' in dumped
    t0 = time.monotonic()
    vmlab.verify()
    TIMES["verify"] = time.monotonic() - t0
    vmlab.nothing_to_do()


def podman_pair(vmlab) -> None:
    """A container on node1 reaches a container on node3, and node3's sees node1's own pod IP (no NAT)."""
    ips, sandboxes = {}, {}
    for node in ("node1", "node3"):
        vmlab.sh(node, f"sudo podman rm -f -t 0 box >/dev/null 2>&1; sudo podman run -d --name box --network {CLUSTER} "
                       f"{IMAGE} >/dev/null")
        ips[node] = vmlab.sh(node, "sudo podman inspect box --format "
                                   f"'{{{{(index .NetworkSettings.Networks \"{CLUSTER}\").IPAddress}}}}'").strip()
        sandboxes[node] = vmlab.sh(node, "sudo podman inspect box --format '{{.NetworkSettings.SandboxKey}}'").strip()
    assert ips["node1"].startswith("10.244.1.") and ips["node3"].startswith("10.244.3."), ips
    vmlab.sh("node1", f"sudo nsenter --net={sandboxes['node1']} ping -c1 -W5 {ips['node3']}")
    listen = ("import socket; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); "
              "s.bind(('0.0.0.0', 7781)); s.listen(1); s.settimeout(60); c, a = s.accept(); print(a[0])")
    listener = subprocess.Popen([*PROVISION, "ssh", str(vmlab.inventory), "node3",
                                 f"sudo nsenter --net={sandboxes['node3']} python3 -c \"{listen}\""],
                                stdout=subprocess.PIPE, text=True)
    try:
        connect = (f"import socket, time\nfor i in range(60):\n    try: socket.create_connection(('{ips['node3']}', 7781), 3); "
                   f"break\n    except OSError: time.sleep(1)")
        vmlab.sh("node1", f"sudo nsenter --net={sandboxes['node1']} python3 -c \"{connect}\"")
        assert listener.communicate(timeout=90)[0].strip() == ips["node1"]
    finally:
        listener.kill()
    for node in ("node1", "node3"):
        vmlab.sh(node, "sudo podman rm -f -t 0 box >/dev/null")


def test_podman_containers_on_two_vms_reach_each_other_without_nat(vmlab):
    image = vmlab.inventory.parent / "image.tar"  # busybox-static as an image: the VMs cannot pull one
    sandbox_image(image)
    for node in ("node1", "node3"):
        vmlab.sh(node, f"sudo mkdir -p /etc/containers && printf '%s' '{PODMAN_CONF}' "
                       "| sudo tee /etc/containers/containers.conf >/dev/null")
        vmlab.sh(node, "sudo podman load -q >/dev/null", stdin=image.read_bytes())
    podman_pair(vmlab)


def test_one_node_reboots_and_the_pod_network_comes_back_by_itself(vmlab):
    TIMES["reboot one"] = vmlab.reboot("node2")
    assert vmlab.sh("node2", "systemctl is-active provisioner-pod-network.service").strip() == "active"
    vmlab.verify()
    vmlab.nothing_to_do()


def test_all_nodes_reboot_and_everything_works_without_apply(vmlab):
    TIMES["reboot all"] = vmlab.reboot("node1", "node2", "node3")
    vmlab.verify()
    vmlab.nothing_to_do()
    assert vmlab.sh("node1", "systemctl is-active containerd").strip() == "active"
    podman_pair(vmlab)


def test_services_in_ipvs_mode_on_the_vms_own_kernel(vmlab):
    """kube-proxy's ipvs mode by hand needs a kernel with IPVS, which the namespace lab's may lack: virtual
    services on the VMs' Debian kernels, checked by verify (by IP, the spread, no NAT, refused without
    pods; no cluster DNS here, so the name checks say so and are skipped), then nothing to do."""
    data = yaml.safe_load(vmlab.inventory.read_text())
    data.setdefault("kubernetes", {}).setdefault("kube_proxy", {})["mode"] = "ipvs"
    data["services"] = [
        {"name": "web", "ports": [{"name": "http", "port": 80, "target_port": 8080},
                                  {"name": "echo", "port": 7, "target_port": 7007, "protocol": "UDP"}], "pods": ["web"]},
        {"name": "api", "namespace": "shop", "cluster_ip": "10.96.7.7", "ports": [{"port": 8443}], "pods": ["node2/api"]},
        {"name": "nothing", "ports": [{"port": 80}]}]
    vmlab.inventory.write_text(yaml.safe_dump(data, sort_keys=False))
    vmlab.sh("node3", f"sudo ipvsadm -A -t {FOREIGN_IPVS} -s wlc")  # someone else's: never touched (reset checks)
    doc = vmlab.json("apply")
    assert doc["ok"], {h: r["error"] or [t["error"] for t in r["tasks"] if t["error"]] for h, r in doc["hosts"].items()}
    assert FOREIGN_IPVS in vmlab.sh("node3", "sudo ipvsadm -Sn")
    table = vmlab.sh("node1", "sudo ipvsadm -Ln")
    assert "10.96.7.7:8443 rr" in table and "UDP" in table and "Masq" in table, table
    assert "10.96.7.7/32" in vmlab.sh("node3", "ip -4 addr show dev prov-ipvs0")
    p = vmlab.provision("verify", "--", "-rA", check=False)
    assert p.returncode == 0, p.stdout[-6000:]
    passed = [ln for ln in p.stdout.splitlines() if ln.startswith("PASSED") and "test_services.py" in ln]
    assert len(passed) == 3 * 3 + 1, p.stdout[-4000:]  # by IP, client address, refused on each node; the spread
    vmlab.nothing_to_do()


def test_reset_then_reboot_leaves_no_trace(vmlab):
    for node in ("node1", "node3"):
        vmlab.sh(node, "sudo podman rmi -f " + IMAGE + " >/dev/null; sudo rm -f /etc/containers/containers.conf")
    doc = vmlab.json("reset")
    assert doc["ok"], {h: r["error"] for h, r in doc["hosts"].items()}
    assert vmlab.sh("node3", "sudo ipvsadm -Sn").splitlines() == [f"-A -t {FOREIGN_IPVS} -s wlc"]  # only ours went
    vmlab.sh("node3", f"sudo ipvsadm -D -t {FOREIGN_IPVS}")
    vmlab.reboot("node1")
    trace = vmlab.sh("node1", "ls -d /etc/provisioner /var/lib/provisioner /etc/systemd/system/provisioner-* "
                              "/etc/systemd/system/multi-user.target.wants/provisioner-* /etc/dhcp/dhclient-exit-hooks.d/provisioner* "
                              "/etc/cni/bin /etc/cni/net.d/10-* /etc/sysctl.d/90-provisioner.conf /var/lib/kubelet "
                              "/etc/*.provisioner-orig /etc/containerd/*.provisioner-orig 2>/dev/null; "
                              "grep -l provisioner /etc/resolv.conf; ip route show proto 147; ip link show v-net-0 2>&1 "
                              "| grep -v 'does not exist'; ip link show prov-ipvs0 2>&1 | grep -v 'does not exist'; "
                              "sudo iptables-save | grep PROV; sudo ipvsadm -Sn; true")
    assert trace.strip() == "", trace
    assert vmlab.sh("node1", "sha256sum /etc/containerd/config.toml").split()[0] == ORIGINAL["containerd"]
