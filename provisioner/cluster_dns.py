"""Cluster DNS, pure: names, the Corefile, and the manifests a user applies with kubectl.

>>> service_fqdn("web", "default", "cluster.local")
'web.default.svc.cluster.local'
>>> pod_a_record("10.244.2.5", "default", "cluster.local")
'10-244-2-5.default.pod.cluster.local'
"""

from __future__ import annotations

import ipaddress
from typing import Any

from .formats import yaml_documents

LOOPS = ("127.0.0.53",)


def service_fqdn(service: str, namespace: str, domain: str) -> str:
    return f"{service}.{namespace}.svc.{domain}"


def pod_a_record(ip: str, namespace: str, domain: str) -> str:
    """A pod's A (IPv4) or AAAA (IPv6) record name: the address with its dots or colons as dashes, which
    CoreDNS's kubernetes plugin turns back into the address (``fd00:10:244:1::5`` → ``fd00-10-244-1--5``)."""
    addr = ipaddress.ip_address(ip)
    return f"{str(addr).replace('.' if addr.version == 4 else ':', '-')}.{namespace}.pod.{domain}"


def nameservers(resolv_conf: str) -> list[str]:
    out = []
    for line in resolv_conf.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "nameserver":
            out.append(parts[1])
    return out


def corefile(domain: str, forward_to: str, pods: str = "insecure", ttl: int = 30, cache: int = 30) -> str:
    """The Corefile: kubernetes plugin for the cluster domain, everything else forwarded upstream."""
    return (
        ".:53 {\n"
        "    errors\n"
        "    health {\n        lameduck 5s\n    }\n"
        "    ready\n"
        f"    kubernetes {domain} in-addr.arpa ip6.arpa {{\n"
        f"        pods {pods}\n"
        "        fallthrough in-addr.arpa ip6.arpa\n"
        f"        ttl {ttl}\n"
        "    }\n"
        "    prometheus :9153\n"
        f"    forward . {forward_to} {{\n        max_concurrent 1000\n    }}\n"
        f"    cache {cache}\n"
        "    loop\n"
        "    reload\n"
        "    loadbalance\n"
        "}\n"
    )


def manifests(domain: str, dns_ip: str, pods: str = "insecure", ttl: int = 30, cache: int = 30,
              image: str = "registry.k8s.io/coredns/coredns:v1.11.3") -> str:
    """CoreDNS for ``kubectl apply -f``: its Corefile as a ConfigMap and the kube-dns Service at ``dns_ip``.

    Inside the CoreDNS pod (dnsPolicy: Default) /etc/resolv.conf is the file kubelet's
    resolvConf names, i.e. the node's saved upstream resolvers: forwarding there cannot
    loop back to the cluster DNS.
    """
    labels = {"k8s-app": "kube-dns"}

    def meta(name: str, **extra: Any) -> dict[str, Any]:
        return {"name": name, "namespace": "kube-system", **extra}

    docs: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta("coredns")},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "system:coredns"},
         "rules": [{"apiGroups": [""], "resources": ["endpoints", "services", "pods", "namespaces"], "verbs": ["list", "watch"]},
                   {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["list", "watch"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "system:coredns"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:coredns"},
         "subjects": [{"kind": "ServiceAccount", "name": "coredns", "namespace": "kube-system"}]},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("coredns"),
         "data": {"Corefile": corefile(domain, "/etc/resolv.conf", pods, ttl, cache)}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta("coredns", labels=labels),
         "spec": {"replicas": 2, "selector": {"matchLabels": labels},
                  "template": {"metadata": {"labels": labels},
                               "spec": {"serviceAccountName": "coredns", "dnsPolicy": "Default",
                                        "containers": [{"name": "coredns", "image": image, "args": ["-conf", "/etc/coredns/Corefile"],
                                                        "ports": [{"containerPort": 53, "name": "dns", "protocol": "UDP"},
                                                                  {"containerPort": 53, "name": "dns-tcp", "protocol": "TCP"},
                                                                  {"containerPort": 9153, "name": "metrics", "protocol": "TCP"}],
                                                        "volumeMounts": [{"name": "config", "mountPath": "/etc/coredns", "readOnly": True}],
                                                        "readinessProbe": {"httpGet": {"path": "/ready", "port": 8181}},
                                                        "livenessProbe": {"httpGet": {"path": "/health", "port": 8080}}}],
                                        "volumes": [{"name": "config", "configMap": {"name": "coredns"}}]}}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": meta("kube-dns", labels={**labels, "kubernetes.io/name": "CoreDNS"}),
         "spec": {"selector": labels, "clusterIP": dns_ip,
                  "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}, {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
                            {"name": "metrics", "port": 9153, "protocol": "TCP"}]}},
    ]
    return "# managed by provisioner: kubectl apply -f this file\n" + yaml_documents(docs)
