"""How the runner talks to a node: a small interface and its implementations.

``ssh.SSHTransport`` (the only importer of paramiko) and
``fake.FakeTransport`` (canned answers for unit tests); ``openssh`` writes the
ssh_config the OpenSSH client uses (verify, ``provision ssh``).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ..steps.script import Script


@dataclass(frozen=True)
class Result:
    stdout: str
    stderr: str
    rc: int


@dataclass(frozen=True)
class Held:
    """What :meth:`Transport.lock` yields: whether the lock is held, and what the facts script printed."""

    locked: bool          # False: the node has no flock; the run goes on without it (with a warning)
    facts: Result | None  # what the facts script printed, run on the node as soon as the lock was taken
    token: str | None = None  # the lease's token: an apply script rendered with it runs only while that lease holds


class Transport(Protocol):
    host: str
    deadline: float | None  # set by the runner: monotonic time by which this host's work must end
    # set by the runner (optional for a transport): called with each piece of a running script's stdout as it
    # arrives, so that the status line can show the step a node is on
    on_output: "Callable[[str], None] | None"

    def run(self, script: str | Script, timeout: float | None = None) -> Result:
        """Run ``script`` with ``sh -s`` on the node (as root); never raises on non-zero exit. A :class:`Script`
        is sent piece by piece (its uploads are shared bytes, never joined into one string per node)."""

    def lock(self, path: str, timeout: float, facts_script: str | None = None,
             facts_timeout: float | None = None) -> AbstractContextManager[Held]:
        """Context manager holding an exclusive lock on the node, yielding :class:`Held`.

        ``facts_script`` runs on the node right after the lock is taken, in the same exec
        (a no-op run is then one exec per node); raises HostError on timeout."""

    def stop_script(self) -> bool:
        """Stop the apply script of the lease held now that outlived its time-out (and every process it
        started); True if one was stopped. A transport that cannot stop one says False."""

    def close(self) -> None: ...
