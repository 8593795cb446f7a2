"""Kubernetes node files and cluster DNS on the lab (names through the lab's DNS server: test_services.py)."""

from __future__ import annotations

FILES = ("/var/lib/kubelet/config.yaml /etc/default/kubelet /etc/containerd/config.toml "
         "/var/lib/kube-proxy/config.yaml /etc/provisioner/resolv.conf.upstream")


def test_node_files_written_once_and_resolv_conf_restored_exactly(lab3):
    before = lab3.node_sh("node1", "sha256sum /etc/resolv.conf; ls -l /etc/resolv.conf | cut -c1-10")
    assert lab3.provision("apply").returncode == 0
    out = lab3.node_sh("node1", f"for f in {FILES} /etc/kubernetes/provisioner/control-plane.env; do echo \"== $f\"; cat $f; done")
    assert 'bin_dir = "/etc/cni/bin"' in out and "clusterCIDR: 10.244.0.0/16" in out and "--node-ip=" in out
    assert "--service-cluster-ip-range=10.96.0.0/12" in out
    assert "control-plane.env" not in lab3.node_sh("node2", "ls /etc/kubernetes/provisioner 2>/dev/null || true")
    resolv = lab3.node_sh("node2", "cat /etc/resolv.conf")
    assert resolv.startswith("# BEGIN provisioner: cluster DNS first\nnameserver 10.96.0.10\n")
    assert "search default.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n" in resolv

    rc, again = lab3.json("apply")
    assert rc == 0 and all(r["changed"] == 0 for r in again["recap"].values()), again["recap"]

    for _ in range(2):  # reset twice is fine
        rc, doc = lab3.json("reset")
        assert rc == 0, doc
    assert lab3.node_sh("node1", "sha256sum /etc/resolv.conf; ls -l /etc/resolv.conf | cut -c1-10") == before
    assert lab3.node_sh("node1", f"ls {FILES} 2>/dev/null || true") == ""
