"""Weave Net: its IPALLOC_RANGE checked against the inventory (at load), and how to install it today."""

from __future__ import annotations

from .errors import InputError
from .inventory import Inventory

LEGACY_URL = "https://cloud.weave.works/k8s/net?k8s-version=$(kubectl version | base64 | tr -d '\\n')&env.IPALLOC_RANGE={range}"
RELEASE_URL = "https://github.com/weaveworks/weave/releases/download/v2.8.1/weave-daemonset-k8s.yaml"


def install_advice(inv: Inventory) -> list[str]:
    """Lines telling a person how to install Weave with the inventory's range; InputError unless cni.type is weave."""
    if inv.cni.type != "weave":
        raise InputError(f"{inv.path}: cni.type is {inv.cni.type}, not weave")
    r, c = inv.cni.weave_ipalloc_range, inv.cluster
    return [
        f"IPALLOC_RANGE={r} is inside the pod range {c.pod_cidr} and clear of the node "
        f"({c.node_cidr}) and service ({c.service_cidr}) ranges.",
        "The classic install URL (the cloud.weave.works service behind it is gone since 2023):",
        '  kubectl apply -f "' + LEGACY_URL.format(range=r) + '"',
        "What works today: the release manifest, then set the range on the DaemonSet:",
        f"  kubectl apply -f {RELEASE_URL}",
        f"  kubectl -n kube-system set env daemonset/weave-net -c weave IPALLOC_RANGE={r}",
    ]
