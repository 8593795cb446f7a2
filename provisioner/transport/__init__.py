"""How the runner talks to a node: a small interface, three implementations.

``ssh.SSHTransport`` (the only importer of fabric), ``local.LocalTransport``
(this machine, optionally inside a network namespace), and
``fake.FakeTransport`` (canned answers for unit tests).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Result:
    stdout: str
    stderr: str
    rc: int


class Transport(Protocol):
    host: str
    deadline: float | None  # set by the runner: monotonic time by which this host's work must end

    def run(self, script: str, timeout: float | None = None) -> Result:
        """Run ``script`` with ``sh -s`` on the node (as root); never raises on non-zero exit."""

    def lock(self, path: str, timeout: float):
        """Context manager holding an exclusive lock on the node (True; False where it cannot lock);
        raises HostError on timeout."""

    def close(self) -> None: ...
