"""From ``vagrant ssh-config`` to the SSH part of an inventory, so ``provision apply`` reaches the VMs.

The node IP stays the private network address from the inventory: every VirtualBox
VM has 10.0.2.15 on its NAT interface, which is where ``vagrant ssh-config`` points
SSH (through a forwarded port on 127.0.0.1), never where pods route to.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from ..errors import InputError

FIELDS = {"hostname": "address", "port": "port", "user": "user", "identityfile": "identity_file"}


def parse_ssh_config(text: str) -> dict[str, dict[str, str]]:
    """``Host node1`` blocks → ``{"node1": {"hostname": …, "port": …, "user": …, "identityfile": …}}``."""
    hosts: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition(" ")
        key, value = key.lower(), value.strip().strip('"')
        if key == "host":
            current = hosts.setdefault(value, {})
        elif current is not None and key in FIELDS and key not in current:
            current[key] = value
    return hosts


def inventory_for_vms(data: dict[str, Any], ssh_config: str, known_hosts: Path) -> dict[str, Any]:
    """A copy of inventory ``data`` whose nodes are reached the way ``vagrant ssh-config`` says."""
    hosts = parse_ssh_config(ssh_config)
    missing = [n["name"] for n in data["nodes"] if n["name"] not in hosts]
    if missing:
        raise InputError(f"vagrant ssh-config has no Host entry for {', '.join(missing)} "
                         f"(found: {', '.join(hosts) or 'none'}); are the VMs up?")
    out = copy.deepcopy(data)
    for node in out["nodes"]:
        h = hosts[node["name"]]
        node.setdefault("ip", node["address"])  # the private network address stays the node IP
        node["address"] = h.get("hostname", node["address"])
        if "port" in h:
            node["port"] = int(h["port"])
        if "user" in h:
            node["user"] = h["user"]
        if "identityfile" in h:
            node["identity_file"] = h["identityfile"]
    ssh = out.setdefault("ssh", {})
    ssh["known_hosts"] = str(known_hosts)
    ssh.setdefault("host_key_policy", "accept-new")  # fresh VMs: record their keys on first contact
    if ssh.get("host_key_policy") == "strict" and not known_hosts.exists():
        ssh["host_key_policy"] = "accept-new"
    if any(n.get("user", ssh.get("user", "root")) != "root" for n in out["nodes"]):
        ssh.setdefault("sudo", True)
    return out


def write_inventory(base: Path, ssh_config: str | None, out: Path) -> dict[str, Any]:
    """Write ``out``: inventory ``base`` (validated by the caller) reached as ``vagrant ssh-config`` says.

    Without ``ssh_config`` text, runs ``vagrant ssh-config`` (the Vagrantfile reads
    ``PROVISION_INVENTORY``). Returns the data written; the caller validates ``out``.
    """
    import os
    import subprocess

    import yaml

    from ..yaml_lines import load_file, write_local

    if ssh_config is None:
        env = dict(os.environ, PROVISION_INVENTORY=str(base.resolve()))
        p = subprocess.run(["vagrant", "ssh-config"], capture_output=True, text=True, env=env)
        if p.returncode != 0:
            raise InputError(f"vagrant ssh-config failed: {p.stderr.strip() or p.stdout.strip()}")
        ssh_config = p.stdout
    data = inventory_for_vms(load_file(base).data, ssh_config, (out.parent / f"{out.stem}.known_hosts").resolve())
    write_local(out, f"# written by `provision lab vagrant-inventory` from {base} and vagrant ssh-config\n"
                + yaml.safe_dump(data, sort_keys=False))
    return data
