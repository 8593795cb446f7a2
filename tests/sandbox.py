"""A throw-away node for unit tests: scripts run by a real ``sh`` with every outside command stubbed.

Each command the facts, apply and reset scripts call (``ip``, ``mkdir``, ``mv``,
``base64``, ``mktemp``, …) is replaced by a shell function that only writes its
arguments to a log, so a script can be run for real, as root, without touching
this machine. The node's state directory (/var/lib/provisioner) is moved into
the sandbox. A command that is *not* stubbed runs for real: ``pwned``, the
command the hostile-value tests try to smuggle in, is an executable in the
sandbox that leaves a marker file when anything runs it.
"""

from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path

from provisioner.transport import Held, Result

STUBBED = ("ip", "mkdir", "rmdir", "mv", "cp", "chmod", "chown", "rm", "base64", "gzip", "sha256sum", "find", "modprobe",
           "env", "systemctl", "cat", "stat", "ls", "flock", "id", "sudo", "nsenter", "iptables", "touch", "tee",
           "dirname", "python3", "sh", "bash", "chroot", "kill", "awk", "sed", "grep", "head", "tail", "xargs", "ln",
           "install", "dd", "curl", "wget", "nc", "ping", "mount", "umount", "sleep")
PAYLOAD = "pwned"


def _prelude(root: Path) -> str:
    log = root / "commands.log"
    lines = []
    for name in STUBBED:
        lines.append(f"{name}() {{ printf '%s\\n' \"{name} $*\" >> {log}; }}")
    # mktemp hands out fresh names inside the sandbox (never the template's own directory)
    lines.append(f"mktemp() {{ printf '%s\\n' \"mktemp $*\" >> {log}; command mkdir -p {root}/tmp; "
                 f"case \"$1\" in -d) command mktemp -d -p {root}/tmp ;; *) command mktemp -p {root}/tmp ;; esac; }}")
    return "\n".join(lines) + "\n"


class SandboxTransport:
    """A Transport whose node is a real ``sh`` in ``root`` with the commands above stubbed."""

    def __init__(self, root: Path, host: str = "node1"):
        self.host, self.root = host, root
        self.scripts: list[str] = []
        root.mkdir(parents=True, exist_ok=True)
        (root / "state").mkdir(exist_ok=True)
        bin_dir = root / "bin"
        bin_dir.mkdir(exist_ok=True)
        marker = bin_dir / PAYLOAD
        marker.write_text(f"#!/bin/sh\necho \"$0 $*\" >> {root}/PWNED\n")
        marker.chmod(0o755)

    @property
    def pwned(self) -> bool:
        """Did any script run the payload command?"""
        return (self.root / "PWNED").exists()

    def commands(self) -> list[str]:
        log = self.root / "commands.log"
        return log.read_text().splitlines() if log.exists() else []

    def run(self, script, timeout: float | None = None) -> Result:
        script = str(script)  # a steps.Script too: its pieces joined
        self.scripts.append(script)
        text = _prelude(self.root) + script.replace("/var/lib/provisioner", str(self.root / "state"))
        env = {"PATH": f"/usr/bin:/bin:{self.root / 'bin'}", "HOME": str(self.root), "LC_ALL": "C"}
        p = subprocess.run(["sh", "-s"], input=text.encode(), capture_output=True, timeout=timeout or 60,
                           cwd=self.root, env=env)
        return Result(p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace"), p.returncode)

    def lock(self, path: str, timeout: float, facts_script: str | None = None,
             facts_timeout: float | None = None):
        return contextlib.nullcontext(Held(True, self.run(facts_script, facts_timeout) if facts_script is not None else None))

    def stop_script(self) -> bool:
        return False

    def close(self) -> None:
        pass

