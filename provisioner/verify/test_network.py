"""The pod network as the Kubernetes model asks: every pod has an IP, reaches every
pod on its node and on every other node, without NAT."""

from __future__ import annotations

import ipaddress
import json
import time

import pytest
from provisioner.template_vars import pod_routes
from provisioner.verify.conftest import ping_all


def test_bridge_up_with_gateway(host, node, inventory):
    br = inventory.cluster.bridge
    r = host.run(f"ip -json addr show dev {br}")
    assert r.rc == 0, f"bridge {br} missing on {node.name}: {r.stderr}"
    link = json.loads(r.stdout)[0]
    assert "UP" in link["flags"], f"bridge {br} is down on {node.name}"
    addrs = [f"{a['local']}/{a['prefixlen']}" for a in link["addr_info"] if a["family"] == "inet"]
    assert f"{node.pod_gateway}/{node.pod_subnet.prefixlen}" in addrs


def test_routes_to_every_peer(host, node, inventory):
    routes = json.loads(host.run("ip -json route show table main").stdout)
    have = {r["dst"]: r.get("gateway") for r in routes}
    for want in pod_routes(inventory, node):
        assert have.get(want["dst"]) == want["via"], f"{node.name}: no route to {want['dst']} via {want['via']}"


@pytest.mark.parametrize("key", ["net.ipv4.ip_forward", "net.bridge.bridge-nf-call-iptables"])
def test_sysctl(host, key):
    assert host.file("/proc/sys/" + key.replace(".", "/")).content_string.strip() == "1"


def test_pods_have_their_ip(node, live_pods):
    for (pod, ip), spec in zip(live_pods[node.name], node.pods):
        assert ip is not None, f"pod {pod} on {node.name} has no IPv4 address on eth0"
        assert ipaddress.IPv4Address(ip) in node.pod_subnet, f"pod {pod} has {ip}, outside {node.pod_subnet}"
        if spec.via == "manual":
            assert ip == str(spec.ip), f"pod {pod} on {node.name} has {ip}, inventory says {spec.ip}"


def test_pod_to_pod_same_node(host, node, live_pods):
    pods = live_pods[node.name]
    if len(pods) < 2:
        pytest.skip(f"{node.name} has fewer than two pods")
    src = pods[0][0]
    silent = ping_all(host, src, [ip for _, ip in pods[1:] if ip])
    assert not silent, f"{src}@{node.name} cannot reach {', '.join(silent)}"


def test_pod_to_pod_across_nodes(host, node, inventory, live_pods):
    peers = [n for n in inventory.nodes if n.name != node.name and live_pods[n.name]]
    if not live_pods[node.name] or not peers:
        pytest.skip("needs pods on at least two nodes")
    src = live_pods[node.name][0][0]
    targets = [ip for peer in peers for _, ip in live_pods[peer.name] if ip]
    silent = ping_all(host, src, targets)
    assert not silent, f"{src}@{node.name} cannot reach {', '.join(silent)}"


LISTEN = ("import socket,sys;s=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);"
          "s.bind((sys.argv[1],int(sys.argv[2])));s.listen(1);s.settimeout(15);c,a=s.accept();print(a[0],flush=True)")
CONNECT = "import socket,sys;socket.create_connection((sys.argv[1],int(sys.argv[2])),5).close()"


def test_no_nat_across_nodes(host, node, inventory, live_pods, host_of):
    """A pod receiving a TCP connection from a pod on another node sees that pod's own IP."""
    order = [n.name for n in inventory.nodes]
    peer_name = order[(order.index(node.name) + 1) % len(order)]
    if peer_name == node.name or not live_pods[node.name] or not live_pods[peer_name]:
        pytest.skip("needs pods on at least two nodes")
    peer = host_of(peer_name)
    if peer.run("command -v python3").rc != 0 or host.run("command -v python3").rc != 0:
        pytest.skip("the TCP check runs python3 on the nodes; python3 is not installed")
    (src_pod, src_ip), (dst_pod, dst_ip) = live_pods[node.name][0], live_pods[peer_name][0]
    port, out = 39000 + order.index(node.name), f"/tmp/provision-verify-nonat-{node.name}"
    peer.run(f"rm -f {out}; setsid ip netns exec {dst_pod} python3 -c '{LISTEN}' {dst_ip} {port} "
             f"> {out} 2>&1 < /dev/null &")
    deadline = time.monotonic() + 5
    while peer.run(f"ip netns exec {dst_pod} ss -Hltn 'sport = :{port}'").stdout.strip() == "":
        assert time.monotonic() < deadline, f"listener in {dst_pod} on {peer_name} did not start"
        time.sleep(0.1)
    r = host.run(f"ip netns exec {src_pod} python3 -c '{CONNECT}' {dst_ip} {port}")
    assert r.rc == 0, f"{src_pod}@{node.name} could not connect to {dst_ip}:{port}: {r.stderr}"
    seen = ""
    while time.monotonic() < deadline + 5 and not seen:
        seen = peer.file(out).content_string.strip() if peer.file(out).exists else ""
        time.sleep(0.05)
    peer.run(f"rm -f {out}")
    assert seen == src_ip, f"{dst_pod}@{peer_name} saw the connection from {seen or 'nothing'}, not from {src_ip}: NAT on the path"


def test_cni_config_agrees_with_the_bridge(host, node, inventory):
    """The CNI config names the hand-made bridge, its gateway and the node's pod subnet."""
    c = inventory.cni
    f = host.file(f"{c.conf_dir}/{c.config_name}")
    assert f.exists, f"{c.conf_dir}/{c.config_name} is missing on {node.name}"
    plugin = json.loads(f.content_string)["plugins"][0]
    assert plugin["type"] == c.type and plugin["bridge"] == inventory.cluster.bridge
    if c.ipam == "host-local":
        rng = plugin["ipam"]["ranges"][0][0]
        assert rng["subnet"] == str(node.pod_subnet) and rng["gateway"] == str(node.pod_gateway)


def test_cni_plugins_installed_executable(host, inventory):
    c = inventory.cni
    for name in list(c.plugins) + (["provisioner-bridge"] if c.own_plugin else []):
        f = host.file(f"{c.bin_dir}/{name}")
        assert f.exists and f.mode == 0o755, f"{c.bin_dir}/{name} missing or not mode 0755"
