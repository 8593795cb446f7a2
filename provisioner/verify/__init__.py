"""``provision verify``: the packaged pytest-testinfra suite, run over SSH against the nodes.

The suite reads the inventory named in ``PROVISION_INVENTORY`` and reaches the
nodes through an ssh_config written here from the inventory (same user, key,
port and known_hosts, with strict host key checking unless the inventory says
otherwise).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from ..errors import InputError
from ..inventory import Inventory

HERE = Path(__file__).parent


def ssh_value(value: object) -> str:
    """One ssh_config argument, double-quoted, ``%`` doubled (ssh expands %-tokens in file names).

    ssh_config has no escape for ``"`` and expands ``${VAR}``: such a value (or a
    line break, which would start a new directive) is refused, never written.
    """
    text = str(value)
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in text) or '"' in text or "${" in text:
        raise InputError(f"{text!r} cannot be written into an ssh_config (a quote, '${{' or a control character)")
    return '"' + text.replace("%", "%%") + '"'


def ssh_config(inv: Inventory) -> str:
    """Host blocks for OpenSSH with the inventory's settings; ``insecure`` keeps ssh from writing any known_hosts."""
    s = inv.ssh
    strict = {"strict": "yes", "accept-new": "accept-new", "insecure": "no"}[s.host_key_policy]
    blocks = []
    for n in inv.nodes:
        lines = [f"Host {n.name}", f"  HostName {n.address}", f"  Port {n.port}", f"  User {n.user or s.user}",
                 f"  StrictHostKeyChecking {strict}", "  BatchMode yes", f"  ConnectTimeout {int(s.connect_timeout)}",
                 "  LogLevel ERROR"]
        if n.identity_file or s.identity_file:
            lines += [f"  IdentityFile {ssh_value(n.identity_file or s.identity_file)}", "  IdentitiesOnly yes"]
        if s.host_key_policy == "insecure":
            lines.append("  UserKnownHostsFile /dev/null")
        elif s.known_hosts:
            lines.append(f"  UserKnownHostsFile {ssh_value(s.known_hosts)}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def run_suite(inv: Inventory, extra: list[str] | None = None, limit: list[str] | None = None) -> int:
    """Run the suite; returns pytest's exit code (0 all passed)."""
    with tempfile.TemporaryDirectory(prefix="provision-verify-") as tmp:
        cfg = Path(tmp) / "ssh_config"
        cfg.write_text(ssh_config(inv))
        env = dict(os.environ, PROVISION_INVENTORY=str(inv.path.resolve()), PROVISION_SSH_CONFIG=str(cfg),
                   PROVISION_CONTROL_DIR=tmp, PROVISION_LIMIT=",".join(limit or []))
        argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-c", os.devnull,
                "--rootdir", str(HERE), "-q", "-rfEs", "--tb=short", str(HERE), *(extra or [])]
        try:
            return subprocess.run(argv, env=env).returncode
        finally:
            for n in inv.nodes:  # end the shared ssh connections testinfra opened
                subprocess.run(["ssh", "-F", str(cfg), "-S", f"{tmp}/{n.name}", "-O", "exit", n.name],
                               capture_output=True)
