"""The OpenSSH client side: an ssh_config for the nodes (used by ``verify``, ``ssh-config``, ``ssh``).

Values are written through :func:`ssh_value` only: double-quoted, ``%`` doubled;
anything ssh_config cannot hold safely is refused, never written.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..inventory import Inventory


def ssh_value(value: object) -> str:
    """One ssh_config argument, double-quoted, ``%`` doubled (ssh expands %-tokens in file names).

    ssh_config has no escape for ``"`` and expands ``${VAR}``: such a value (or a
    line break, which would start a new directive) is refused, never written.
    """
    text = str(value)
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in text) or '"' in text or "${" in text:
        raise InputError(f"{text!r} cannot be written into an ssh_config (a quote, '${{' or a control character)")
    return '"' + text.replace("%", "%%") + '"'


def ssh_config(inv: Inventory, batch: bool = True) -> str:
    """Host blocks with the inventory's settings; ``insecure`` keeps ssh from writing any known_hosts.

    ``batch=False`` leaves out ``BatchMode`` (an interactive shell may ask for a password).
    """
    s = inv.ssh
    strict = {"strict": "yes", "accept-new": "accept-new", "insecure": "no"}[s.host_key_policy]
    blocks: list[str] = []
    jumps: dict[tuple[Any, ...], str] = {}  # (jump, key) -> the Host alias its block has

    def block(alias: str, address: str, port: int, user: str, identity: Path | None) -> list[str]:
        lines = [f"Host {alias}", f"  HostName {address}", f"  Port {port}", f"  User {user}",
                 f"  StrictHostKeyChecking {strict}"] + (["  BatchMode yes"] if batch else []) + [
                 f"  ConnectTimeout {int(s.connect_timeout)}", "  LogLevel ERROR"]
        if identity:
            lines += [f"  IdentityFile {ssh_value(identity)}", "  IdentitiesOnly yes"]
        if s.host_key_policy == "insecure":
            lines.append("  UserKnownHostsFile /dev/null")
        elif s.known_hosts:
            lines.append(f"  UserKnownHostsFile {ssh_value(s.known_hosts)}")
        return lines

    for n in inv.nodes:
        lines = block(n.name, n.address, n.port, n.user, n.identity_file)
        if n.jump is not None:  # the jump host gets a block of its own: the same key and host-key checks
            key = (n.jump, n.identity_file)
            if key not in jumps:
                jumps[key] = f"provision-jump-{len(jumps) + 1}"
                blocks.append("\n".join(block(jumps[key], n.jump.address, n.jump.port, n.jump.user, n.identity_file)))
            lines.append(f"  ProxyJump {jumps[key]}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def interactive(inv: Inventory, node: str, command: list[str]) -> int:
    """``ssh`` to ``node`` with the inventory's settings (a login shell without ``command``); its exit code."""
    names = [n.name for n in inv.nodes]
    if node not in names:
        raise InputError(f"no node {node} in {inv.path} (nodes: {', '.join(names)})")
    with tempfile.NamedTemporaryFile("w", prefix="provision-ssh-", suffix=".conf") as fh:
        fh.write(ssh_config(inv, batch=False))
        fh.flush()
        return subprocess.run(["ssh", "-F", fh.name, node, *[c for c in command if c != "--"]]).returncode
