"""A small CRI client: the calls kubelet makes to get a pod sandbox, over containerd's socket.

The Python stubs are generated from cri_subset.proto with grpcio-tools into a temp dir
(test-only dependencies), once per test session.
"""

from __future__ import annotations

import importlib
import sys
import tempfile
from pathlib import Path

import grpc

HERE = Path(__file__).parent


def _stubs():
    if "cri_subset_pb2" not in sys.modules:
        from grpc_tools import protoc

        out = tempfile.mkdtemp(prefix="cri-stubs-")
        rc = protoc.main(["protoc", f"-I{HERE}", f"--python_out={out}", f"--grpc_python_out={out}",
                          str(HERE / "cri_subset.proto")])
        if rc != 0:
            raise RuntimeError("protoc failed on cri_subset.proto")
        sys.path.insert(0, out)
    return importlib.import_module("cri_subset_pb2"), importlib.import_module("cri_subset_pb2_grpc")


class CRI:
    """``CRI(socket)``: RunPodSandbox, PodSandboxStatus, StopPodSandbox, RemovePodSandbox, as kubelet calls them."""

    def __init__(self, socket: str, timeout: float = 60):
        self.pb, grpc_mod = _stubs()
        self.channel = grpc.insecure_channel(f"unix://{socket}")
        self.rt = grpc_mod.RuntimeServiceStub(self.channel)
        self.timeout = timeout

    def version(self):
        return self.rt.Version(self.pb.VersionRequest(version="v1"), timeout=self.timeout)

    def run_sandbox(self, name: str, namespace: str = "default", cgroup_parent: str = "") -> str:
        pb = self.pb
        config = pb.PodSandboxConfig(metadata=pb.PodSandboxMetadata(name=name, uid=f"uid-{name}", namespace=namespace),
                                     hostname=name, linux=pb.LinuxPodSandboxConfig(cgroup_parent=cgroup_parent))
        return self.rt.RunPodSandbox(pb.RunPodSandboxRequest(config=config), timeout=self.timeout).pod_sandbox_id

    def status(self, sandbox: str):
        return self.rt.PodSandboxStatus(self.pb.PodSandboxStatusRequest(pod_sandbox_id=sandbox), timeout=self.timeout).status

    def stop(self, sandbox: str) -> None:
        self.rt.StopPodSandbox(self.pb.StopPodSandboxRequest(pod_sandbox_id=sandbox), timeout=self.timeout)

    def remove(self, sandbox: str) -> None:
        self.rt.RemovePodSandbox(self.pb.RemovePodSandboxRequest(pod_sandbox_id=sandbox), timeout=self.timeout)

    def close(self) -> None:
        self.channel.close()
