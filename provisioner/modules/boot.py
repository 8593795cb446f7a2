"""``pod_network_boot``: the pod network comes back after a reboot, without anyone running apply.

What ``bridge``, ``pods`` and ``routes`` make with ``ip`` lives only in the running
kernel (sysctl.d and modules-load.d already persist the kernel settings). This module
writes the same steps as a boot script and a systemd unit that runs it once the node's
network is up::

    /etc/provisioner/pod-network.sh                      the steps, each one safe to run again
    /etc/systemd/system/provisioner-pod-network.service  Type=oneshot, After=network-online.target
    /etc/systemd/system/multi-user.target.wants/…        the link `systemctl enable` would make

Every value in the script is an argument quoted by :mod:`provisioner.shell` (and checked by the
schema before that). The three paths are read back as facts, shown by plan, and
removed by reset (only what apply recorded that it made), so a node that was reset
and reboots has no trace of provisioner.
"""

from __future__ import annotations

import posixpath
from typing import Any

from ..facts import Fact, Facts
from ..facts.files import Exists
from ..shell import command
from ..steps import Cmd
from .base import ABS, IFNAME, IP, NET, Module, ip_family, Outcome, file_facts, ours, plan_files, restore_steps, schema
from .bridge import BridgeModule, bridge_addresses
from .pods import POD_IF, PodsModule, gateways, host_veth, pod_addresses
from .routes import PROTO

UNIT_NAME = {"type": "string", "pattern": r"\A[A-Za-z0-9@._-]{1,200}\.service\Z"}


q = command  # the script's lines are short: one letter for "these words, each quoted"


def boot_script(a: dict[str, Any]) -> str:
    """The replay script: bridge, hand-made pods, routes; each line idempotent, ``set -e`` so a failure shows."""
    br = a["bridge"]
    lines = ["#!/bin/sh",
             "# managed by provisioner: the pod network `provision apply` made with ip, made again at boot",
             "# by " + a["unit"] + "; changes here are overwritten by the next apply",
             "set -eu",
             f"# the routes go through {a['node_ip']} on {a['interface']}: wait up to 60 s for it",
             f"i=0; until ip -o {'-6' if ':' in a['node_ip'] else '-4'} addr show dev {q(a['interface'])} 2>/dev/null"
             f" | grep -qF {q(' ' + a['node_ip'] + '/')}; do",
             '  i=$((i+1)); [ "$i" -ge 60 ] && break; sleep 1', "done",
             f"ip link show {q(br)} >/dev/null 2>&1 || ip link add {q(br)} type bridge"]
    lines += [f"ip addr replace {q(address)} dev {q(br)}{_nodad(address)}" for address in bridge_addresses(a["address"])]
    if a.get("mtu"):
        lines.append(f"ip link set {q(br)} mtu {int(a['mtu'])}")
    lines.append(f"ip link set {q(br)} up")
    mtu = f" mtu {int(a['mtu'])}" if a.get("mtu") else ""
    for pod in (p for p in a["pods"] if p.get("via", "manual") == "manual"):
        name, veth = pod["name"], host_veth(pod["name"])
        lines += [f"# pod {name}",
                  f"[ -e {q('/run/netns/' + name)} ] || ip netns add {q(name)}",
                  f"ip link show {q(veth)} >/dev/null 2>&1 || ip link add {q(veth)}{mtu} type veth peer name {POD_IF}{mtu} "
                  f"netns {q(name)}",
                  f"ip link set {q(veth)} master {q(br)} up",
                  f"ip link set {q(veth)} type bridge_slave hairpin on"]
        lines += [f"ip -n {q(name)} addr replace {q(address)} dev {POD_IF}{_nodad(address)}"
                  for address in pod_addresses(pod, a)]
        lines += [f"ip -n {q(name)} link set {POD_IF} up",
                  f"ip -n {q(name)} link set lo up"]
        lines += [f"ip -n {q(name)} route replace default via {q(gateway)}" for gateway in gateways(a)]
    for r in a["routes"]:
        lines.append(f"ip route replace {q(r['dst'])} via {q(r['via'])} proto {PROTO}")
    return "\n".join(lines) + "\n"


def _nodad(address: str) -> str:
    """An IPv6 address is usable at once, without duplicate address detection (as apply adds it)."""
    return " nodad" if ip_family(address) == 6 else ""


def boot_unit(a: dict[str, Any]) -> str:
    return ("# managed by provisioner: replays the pod network at boot; removed by `provision reset`\n"
            "[Unit]\n"
            "Description=Pod network made by provisioner (bridge, lab pods, routes to the other nodes' pods)\n"
            "Wants=network-online.target\n"
            "After=network-online.target\n"
            "Before=containerd.service kubelet.service kube-proxy.service\n"
            "\n[Service]\nType=oneshot\nRemainAfterExit=yes\n"
            f"ExecStart=/bin/sh {a['script']}\n"
            "\n[Install]\nWantedBy=multi-user.target\n")


def wants_link(a: dict[str, Any]) -> str:
    return posixpath.join(posixpath.dirname(a["unit_dir"] + "/"), "multi-user.target.wants", a["unit"])


class PodNetworkBootModule(Module):
    """Writes the boot script and unit and enables the unit (the symlink ``systemctl enable`` makes)."""

    name = "pod_network_boot"
    args = schema({
        "bridge": IFNAME, "address": BridgeModule.args["properties"]["address"],
        "gateway": PodsModule.args["properties"]["gateway"], "prefix": PodsModule.args["properties"]["prefix"],
        "mtu": {"anyOf": [{"type": "integer", "minimum": 68}, {"type": "null"}], "default": None},
        "interface": IFNAME, "node_ip": IP,
        "pods": PodsModule.args["properties"]["pods"],
        "routes": {"type": "array", "items": {"type": "object", "additionalProperties": False, "required": ["dst", "via"],
                                              "properties": {"dst": NET, "via": IP}}},
        "script": {**ABS, "default": "/etc/provisioner/pod-network.sh"},
        "unit": {**UNIT_NAME, "default": "provisioner-pod-network.service"},
        "unit_dir": {**ABS, "default": "/etc/systemd/system"},
    }, ["bridge", "address", "gateway", "prefix", "interface", "node_ip", "pods", "routes"])

    def files(self, a: dict[str, Any]) -> dict[str, str]:
        return {a["script"]: boot_script(a), posixpath.join(a["unit_dir"], a["unit"]): boot_unit(a)}

    def facts(self, a: dict[str, Any]) -> list[Fact[Any]]:
        return file_facts(self.files(a)) + [Exists(wants_link(a))]

    def plan(self, a: dict[str, Any], facts: Facts) -> Outcome:
        pods = sum(1 for p in a["pods"] if p.get("via", "manual") == "manual")
        what = f"bridge {a['bridge']}, {pods} pod(s), {len(a['routes'])} route(s)"
        out = plan_files(self.files(a), facts, f"{a['unit']} already replays {what} at boot")
        link = wants_link(a)
        if not facts[Exists(link)]:
            target = posixpath.join(a["unit_dir"], a["unit"])
            # provisioner_mkdir (the apply script's own) writes down a directory it makes, for reset
            out.steps = [*out.steps, Cmd(("provisioner_mkdir", posixpath.dirname(link))),
                         Cmd(("ln", "-sfn", target, link), creates=("file", link))]
            out.reason = f"{a['unit']} replays {what} at boot (enabled)"
        elif out.steps:
            out.reason = f"{a['unit']}: update what it replays at boot ({what})"
        return out

    def reverse(self, a: dict[str, Any], facts: Facts) -> Outcome:
        link = wants_link(a)
        steps = restore_steps(link, facts, present=facts[Exists(link)]) if ours(link, facts) else []
        for path in self.files(a):
            steps += restore_steps(path, facts)
        if not steps:
            return Outcome(reason=f"no boot unit of ours left ({a['unit']})")
        return Outcome(steps, f"disable and remove {a['unit']} and {a['script']}")
