"""SSH transport over Fabric. The ONLY module in the project that imports fabric.

Host keys are checked against the inventory's known_hosts, else the user's
``~/.ssh/known_hosts`` (``strict``, the default): Fabric's own default would
auto-accept any key, so its policy is replaced here. ``accept-new`` records an
unknown key into that same file (never nowhere) and still refuses a changed
one; ``insecure`` accepts any key and writes no file (the CLI warns each run).
``@revoked`` lines are honoured; ``@cert-authority`` lines cannot be checked
(paramiko does not verify host certificates), so a host known only through a
CA is refused with a message that says so.
"""

from __future__ import annotations

import contextlib
import os
import select
import shlex
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import paramiko
from fabric import Config, Connection

from ..errors import HostError, TransportError
from ..inventory import Inventory, Node
from . import Result


class _Retryable(Exception):
    """A connection failure worth another try (refused, timed out, reset)."""


class LockError(HostError):
    """Another run holds the node's lock."""


_APPEND = threading.Lock()  # hosts connect in parallel; their accept-new lines must not interleave


class _AcceptNew(paramiko.MissingHostKeyPolicy):
    """Trust a key seen for the first time, and write it down so that the next run checks it."""

    def __init__(self, path: Path):
        self.path = path

    def missing_host_key(self, client, hostname, key):
        client.get_host_keys().add(hostname, key.get_name(), key)
        with _APPEND:
            if not self.path.parent.is_dir():
                self.path.parent.mkdir(mode=0o700, parents=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            with os.fdopen(fd, "a") as fh:
                fh.write(f"{hostname} {key.get_name()} {key.get_base64()}\n")


@dataclass
class KnownHosts:
    """What a known_hosts file says, as far as paramiko can check it."""

    revoked: list = field(default_factory=list)   # keys of @revoked lines: refused wherever they show up
    ca_lines: int = 0                              # @cert-authority lines: cannot be checked here


def load_known_hosts(keys: paramiko.HostKeys, path: Path) -> KnownHosts:
    """Add the plain entries of ``path`` to ``keys``; marker lines are collected apart, bad lines skipped.

    (paramiko's own loader stops with an exception at the first ``@cert-authority`` line.)
    """
    found = KnownHosts()
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return found
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        marker = line.split(None, 1)[0] if line.startswith("@") else None
        if marker is not None:
            line = line.split(None, 1)[1] if " " in line else ""
        try:
            entry = paramiko.hostkeys.HostKeyEntry.from_line(line, lineno)
        except (paramiko.SSHException, ValueError, TypeError):
            entry = None
        if marker == "@cert-authority":
            found.ca_lines += 1
        elif marker == "@revoked" and entry is not None:
            found.revoked.append(entry.key)
        elif marker is None and entry is not None:
            for name in entry.hostnames:
                keys.add(name, entry.key.get_name(), entry.key)
    return found


class SSHTransport:
    """One SSH connection to a node; every exec and upload of a run shares it.

    Opening is retried ``retries`` times with exponential backoff (connection
    refused, timeouts); a refused or changed host key is never retried.
    """

    def __init__(self, inv: Inventory, node: Node, connect_timeout: float | None = None, retries: int = 2,
                 backoff: float = 0.5):
        s = inv.ssh
        self.host = node.name
        self.retries, self.backoff = retries, backoff
        self.node = node
        user = node.user or s.user
        identity = node.identity_file or s.identity_file
        self.sudo = s.sudo and user != "root"
        kwargs: dict = {"allow_agent": True, "look_for_keys": identity is None, "banner_timeout": 30}
        if identity:
            kwargs["key_filename"] = [str(identity)]
        self.conn = Connection(
            node.address, user=user, port=node.port,
            connect_timeout=connect_timeout or s.connect_timeout, connect_kwargs=kwargs,
            config=Config(overrides={"load_ssh_configs": False, "run": {"hide": True, "warn": True}}),
        )
        client = self.conn.client
        known = s.known_hosts or Path("~/.ssh/known_hosts").expanduser()
        self._trust = load_known_hosts(client.get_host_keys(), known)
        policy = {"strict": paramiko.RejectPolicy(), "accept-new": _AcceptNew(known),
                  "insecure": paramiko.AutoAddPolicy()}[s.host_key_policy]  # AutoAdd keeps keys in memory only
        client.set_missing_host_key_policy(policy)
        self._known = known

    def _open(self) -> None:
        if self.conn.is_connected:
            return
        for attempt in range(self.retries + 1):
            try:
                return self._open_once()
            except _Retryable as exc:
                if attempt == self.retries:
                    raise TransportError(str(exc) + (f" (after {attempt + 1} attempts)" if attempt else "")) from None
                time.sleep(self.backoff * 2 ** attempt)

    def _open_once(self) -> None:
        try:
            self.conn.open()
            key = self.conn.client.get_transport().get_remote_server_key()
            if any(key == bad for bad in self._trust.revoked):
                self.conn.close()
                raise TransportError(f"{self.host}: the host key of {self.node.address} is marked @revoked in "
                                     f"{self._known}; refusing to connect")
        except paramiko.BadHostKeyException as exc:
            raise TransportError(f"{self.host}: host key for {exc.hostname} CHANGED (not the one in {self._known}); refusing to connect") from None
        except paramiko.SSHException as exc:
            if "not found in known_hosts" in str(exc):
                ca = (f"; its {self._trust.ca_lines} @cert-authority line(s) cannot be checked by provision "
                      "(host certificates are not supported): add the host's own key" if self._trust.ca_lines else "")
                raise TransportError(f"{self.host}: host key of {self.node.address} is not in {self._known}{ca} "
                                     "(add it, e.g. with ssh-keyscan, or set ssh.host_key_policy: accept-new)") from None
            if isinstance(exc, paramiko.AuthenticationException):
                raise TransportError(f"{self.host}: ssh to {self.node.address}:{self.node.port}: {exc}") from None
            raise _Retryable(f"{self.host}: ssh to {self.node.address}:{self.node.port}: {exc}") from None
        except (socket.timeout, TimeoutError):
            raise _Retryable(f"{self.host}: ssh to {self.node.address}:{self.node.port} timed out") from None
        except OSError as exc:
            raise _Retryable(f"{self.host}: ssh to {self.node.address}:{self.node.port}: {exc.strerror or exc}") from None

    def run(self, script: str, timeout: float | None = None) -> Result:
        """Send ``script`` whole to ``sh -s`` on a fresh channel of the open connection.

        (Fabric's ``run(in_stream=…)`` feeds stdin a byte at a time with a sleep
        between bytes: seconds for a few KB. One ``sendall`` is the fast path.)
        """
        self._open()
        command = "sudo -n sh -s" if self.sudo else "sh -s"
        chan = None
        try:
            chan = self.conn.client.get_transport().open_session()
            chan.settimeout(timeout)
            chan.exec_command(command)
            chan.sendall(script.encode())
            chan.shutdown_write()
            out, err = self._drain(chan, timeout)
            rc = chan.recv_exit_status()
        except (socket.timeout, TimeoutError):
            if chan is not None:
                chan.close()  # stop waiting; the remote shell gets EOF and a closed channel
            return Result("", f"timed out after {timeout}s", 124)
        except (OSError, EOFError, paramiko.SSHException) as exc:
            raise TransportError(f"{self.host}: connection lost: {exc}") from None
        return Result(out.decode(errors="replace"), err.decode(errors="replace"), rc)

    @staticmethod
    def _drain(chan, timeout: float | None) -> tuple[bytes, bytes]:
        out, err = bytearray(), bytearray()
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if chan.recv_ready():
                out += chan.recv(65536)
            elif chan.recv_stderr_ready():
                err += chan.recv_stderr(65536)
            elif chan.exit_status_ready() and not chan.recv_ready() and not chan.recv_stderr_ready():
                while chan.recv_ready():
                    out += chan.recv(65536)
                return bytes(out), bytes(err)
            else:
                if deadline is not None and time.monotonic() > deadline:
                    raise TimeoutError
                select.select([chan], [], [], 0.01)

    @contextlib.contextmanager
    def lock(self, path: str, timeout: float):
        """Hold ``flock`` on ``path`` on the node for the duration (a channel of its own).

        The lock lives as long as the remote ``cat`` waiting on our stdin: it is
        released when we close the channel, and also if this process or the
        connection dies.
        """
        self._open()
        q = shlex.quote(path)
        wait = "" if timeout <= 0 else f"-w {int(timeout)}"
        script = (f"command -v flock >/dev/null || {{ echo NOFLOCK; exec cat; }}; exec 9>>{q}; "
                  f"flock {wait} 9 && echo LOCKED && exec cat")
        command = f"sudo -n sh -c {shlex.quote(script)}" if self.sudo else f"sh -c {shlex.quote(script)}"
        chan = self.conn.client.get_transport().open_session()
        chan.exec_command(command)
        line = chan.makefile("r").readline().strip()
        if line not in ("LOCKED", "NOFLOCK"):
            chan.close()
            raise LockError(f"{self.host}: another provision run holds {path} on this node "
                            f"(waited {timeout:.0f}s; see --lock-timeout)")
        try:
            yield line == "LOCKED"
        finally:
            chan.shutdown_write()
            chan.close()

    def close(self) -> None:
        self.conn.close()
