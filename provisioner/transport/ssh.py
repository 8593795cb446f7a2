"""SSH transport over paramiko. The ONLY module in the project that imports paramiko.

Host keys are checked against the inventory's known_hosts, else the user's
``~/.ssh/known_hosts`` (``strict``, the default): paramiko's own default refuses
every key and Fabric's accepted any, so the policy is set here. ``accept-new`` records an
unknown key into that same file (never nowhere) and still refuses a changed
one; ``insecure`` accepts any key and writes no file (the CLI warns each run).
``@revoked`` lines are honoured; ``@cert-authority`` lines cannot be checked
(paramiko does not verify host certificates), so a host known only through a
CA is refused with a message that says so.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import contextlib
import functools
import hmac
import logging
import os
import secrets
import select
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import paramiko

from .. import steps
from ..shell import sh
from ..errors import HostError, TransportError, printable, seconds
from ..inventory import Inventory, Node
from ..steps.script import Script
from . import Held, Result


class _Retryable(Exception):
    """A connection failure worth another try (refused, timed out, reset)."""


class LockError(HostError):
    """Another run holds the node's lock."""


# How long a thread that waits on a node sleeps between looks when nothing wakes it. Paramiko's own
# reader thread wakes every 0.1 s and our output loop every 0.05 s: with 100 hosts in flight those idle
# looks were most of what the controller's CPU per node grew by from 20 to 200 nodes (bench/README.md).
# Data, EOF and a closed channel wake a waiter at once, so this bounds only keepalives and deadlines.
IDLE_LOOK = 1.0

_APPEND = threading.Lock()  # hosts connect in parallel; their accept-new lines must not interleave
_PARSING = threading.Lock()  # … and known_hosts is parsed by the first of them, the others waiting for it
# paramiko's transport threads log their failures (with tracebacks) through logging: without a handler of its
# own, Python prints them to stderr, over the status line. Every failure reaches the user as one message instead.
logging.getLogger("paramiko").addHandler(logging.NullHandler())
logging.getLogger("paramiko").propagate = False


class _AcceptNew(paramiko.MissingHostKeyPolicy):
    """Trust a key seen for the first time, and write it down so that the next run checks it."""

    def __init__(self, path: Path, revoked: list[Any] | None = None):
        self.path, self.revoked = path, revoked if revoked is not None else []

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        if any(key == bad for bad in self.revoked):  # refused before anything is written down
            raise paramiko.SSHException(f"the host key of {hostname} is marked @revoked in {self.path}")
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

    revoked: list[Any] = field(default_factory=list)   # keys of @revoked lines: refused wherever they show up
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


@functools.lru_cache(maxsize=8)
def _parsed(path: str, stamp: tuple[int, int] | None) -> tuple[paramiko.HostKeys, KnownHosts]:
    """known_hosts parsed once per version of the file (``stamp``: its mtime and size), for every connection."""
    keys = paramiko.HostKeys()
    return keys, load_known_hosts(keys, Path(path))


def trusted_keys(keys: paramiko.HostKeys, path: Path, names: list[str]) -> KnownHosts:
    """Add to ``keys`` what ``path`` says for ``names`` (as paramiko looks them up: ``addr``, ``[addr]:port``;
    hashed entries too), and return its markers. The file is parsed once, not once per connection: each of N
    connections parsing N lines was quadratic in the fleet (CPU, and memory while they were open)."""
    try:
        st = path.stat()
        stamp: tuple[int, int] | None = (st.st_mtime_ns, st.st_size)
    except OSError:
        stamp = None
    with _PARSING:  # hosts connect at once: the first parses, the rest wait for it instead of parsing too
        shared, found = _parsed(str(path), stamp)
    for name in names:
        for keytype, key in (shared.lookup(name) or {}).items():
            keys.add(name, keytype, key)
    return found


def _key_name(address: str, port: int) -> str:
    """The name paramiko looks a host's key up by."""
    return address if port == 22 else f"[{address}]:{port}"


def _send_all(chan: paramiko.Channel, data: bytes | memoryview) -> None:
    """``chan.sendall`` without its copies: paramiko's sendall slices ``data[sent:]`` after every packet, which
    for a script of megabytes copies the rest again each time (quadratic); a memoryview slices for free."""
    view = memoryview(data)
    while view:
        sent = chan.send(view)  # type: ignore[arg-type]  # paramiko takes any buffer (Message.add_string)
        if sent == 0:  # the channel reached EOF: nothing more can be sent (paramiko's sendall would spin here)
            raise EOFError("the channel closed while the script was being sent")
        view = view[sent:]


def _settle(transport: paramiko.Transport) -> None:
    """An open connection's pace: a keepalive every 5 s (a dead peer shows up as a failed send), and its
    reader thread looking at an idle socket once an IDLE_LOOK instead of ten times a second."""
    transport.set_keepalive(5)
    transport.sock.settimeout(IDLE_LOOK)


def _wait(chan: paramiko.Channel, deadline: float | None) -> None:
    """Sleep until ``chan`` has output, its EOF or its end, at most IDLE_LOOK and never past ``deadline``.
    After EOF the channel's pipe stays readable, so the wait is then for the exit status (or the close)."""
    left = IDLE_LOOK if deadline is None else max(0.0, min(IDLE_LOOK, deadline - time.monotonic()))
    if chan.eof_received:
        chan.status_event.wait(left)
    else:
        select.select([chan], [], [], left)


class _Lines:
    """Lines from a channel's stdout, read as they arrive (the lock channel's answers)."""

    def __init__(self, chan: paramiko.Channel):
        self.chan, self.buf = chan, bytearray()

    def _more(self, deadline: float | None, into: bytearray | None = None) -> bool:
        """Read what has arrived (onto ``into``, else the buffer); False when the channel has ended."""
        if self.chan.recv_ready():
            (self.buf if into is None else into).extend(self.chan.recv(65536))
        elif self.chan.exit_status_ready() or self.chan.closed:
            return False
        elif deadline is not None and time.monotonic() > deadline:
            raise TimeoutError("the node did not answer in time")
        else:
            _wait(self.chan, deadline)
        return True

    def marked(self, nonce: str, wait: float | None) -> str | None:
        """The text after ``nonce`` on the first line that starts with it; other lines are skipped."""
        deadline = None if wait is None else time.monotonic() + wait
        prefix = nonce.encode() + b" "
        while True:
            while b"\n" in self.buf:
                line, _, self.buf = self.buf.partition(b"\n")
                if line.startswith(prefix):
                    return line[len(prefix):].decode(errors="replace").strip()
            if not self._more(deadline):
                return None if not self.buf.startswith(prefix) else self.buf[len(prefix):].decode(errors="replace").strip()

    def until(self, marker: str, wait: float | None) -> tuple[str, int | None]:
        """Everything before the line ``marker<rc>``, and that rc (None when the channel ended first).

        Only what arrived since the last look is searched (a facts script's output comes in hundreds of pieces:
        searching it whole after each one was quadratic)."""
        deadline = None if wait is None else time.monotonic() + wait
        end = b"\n" + marker.encode()
        data = bytearray(b"\n") + self.buf
        self.buf = bytearray()
        look = 0
        while True:
            at = data.find(end, look)
            if at >= 0:
                nl = data.find(b"\n", at + len(end))
                if nl >= 0:
                    code, self.buf = bytes(data[at + len(end):nl]), data[nl + 1:]
                    text = data[1:at + 1].decode(errors="replace")
                    try:
                        return text, int(code)
                    except ValueError:
                        return text, 255
                look = at  # the marker is here; its line is not whole yet
            else:
                look = max(0, len(data) - len(end) + 1)
            if not self._more(deadline, data):
                return data[1:].decode(errors="replace"), None


# paramiko checks the MAC of every packet it receives with a byte-by-byte loop in Python (60 calls per packet):
# more than half of its CPU in a no-op run. hmac.compare_digest is the same constant-time comparison, in C.
# (Preferring AES-GCM, checked inside cryptography, saved as much, but measured slower for a fresh apply of
# 20 nodes: 5.6 s against 4.9 s, median of 10 interleaved runs; the ciphers stay paramiko's choice.)
paramiko.util.constant_time_bytes_eq = hmac.compare_digest  # type: ignore[assignment]


class Connection:
    """One paramiko client and what it connects with: no ssh_config is read (the inventory says it all), and
    nothing but :meth:`open` connects. (Fabric's ``Connection`` did this, and cost its import and invoke's,
    about 40 ms of every run's start.)"""

    def __init__(self, host: str, user: str, port: int, connect_timeout: float, connect_kwargs: dict[str, Any]):
        self.host, self.user, self.port = host, user, port
        self.connect_timeout = connect_timeout
        self.connect_kwargs = connect_kwargs
        self.client = paramiko.SSHClient()

    @property
    def is_connected(self) -> bool:
        t = self.client.get_transport()
        return t is not None and t.is_active()

    @property
    def transport(self) -> paramiko.Transport:
        """The open connection's transport; "not connected" (an SSHException, as paramiko says it) once closed."""
        t = self.client.get_transport()
        if t is None:
            raise paramiko.SSHException("not connected")
        return t

    def open(self) -> None:
        self.client.connect(self.host, self.port, self.user, timeout=self.connect_timeout, **self.connect_kwargs)

    def close(self) -> None:
        self.client.close()


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
        self.connect_timeout = connect_timeout or s.connect_timeout
        self.node = node
        user, identity = node.user, node.identity_file
        self.sudo = node.sudo  # decided once, at load
        self.policy_name = s.host_key_policy
        kwargs: dict[str, Any] = {"allow_agent": True, "look_for_keys": identity is None, "banner_timeout": 30}
        if identity:
            kwargs["key_filename"] = [str(identity)]
        self.conn = self._connection(node.address, user, node.port, kwargs)
        known = s.known_hosts or Path("~/.ssh/known_hosts").expanduser()
        self._trust = trusted_keys(self.conn.client.get_host_keys(), known, [_key_name(node.address, node.port)])
        self._policy(self.conn.client, known)
        self._known = known
        self.jump = node.jump
        self._jump_conn: Connection | None = None
        if self.jump is not None:  # the bastion: the same key and the same host-key policy as the nodes
            self._jump_conn = self._connection(self.jump.address, self.jump.user, self.jump.port, dict(kwargs))
            trusted_keys(self._jump_conn.client.get_host_keys(), known, [_key_name(self.jump.address, self.jump.port)])
            self._policy(self._jump_conn.client, known)
        self.via = f" through jump host {self.jump}" if self.jump else ""

    def _connection(self, address: str, user: str, port: int, kwargs: dict[str, Any]) -> Connection:
        return Connection(address, user, port, self.connect_timeout, kwargs)

    def _policy(self, client: paramiko.SSHClient, known: Path) -> None:
        policy = {"strict": paramiko.RejectPolicy(), "accept-new": _AcceptNew(known, self._trust.revoked),
                  "insecure": paramiko.AutoAddPolicy()}[self.policy_name]  # AutoAdd keeps keys in memory only
        client.set_missing_host_key_policy(policy)

    deadline: float | None = None  # monotonic time by which all of this host's work must end (--host-timeout)
    on_output: Callable[[str], None] | None = None  # called with each piece of a script's stdout as it arrives (the runner's progress)

    def _left(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.monotonic()

    def _open(self) -> None:
        """Connect, retrying refusals and time-outs with backoff, never past the host's deadline."""
        if self.conn.is_connected:
            return
        for attempt in range(self.retries + 1):
            left = self._left()
            if left is not None and left <= 0:
                raise TransportError(f"{self.host}: {self.node.address} did not answer within the --host-timeout")
            limit = self.connect_timeout if left is None else max(0.5, min(self.connect_timeout, left))
            self.conn.connect_timeout = limit
            self.conn.connect_kwargs.update(banner_timeout=min(30, limit * 3), auth_timeout=min(30, limit * 3))
            try:
                self._open_once()
                _settle(self.conn.transport)
                return
            except _Retryable as exc:
                left = self._left()
                if attempt == self.retries or (left is not None and left <= self.backoff * 2 ** attempt):
                    raise TransportError(str(exc) + (f" (after {attempt + 1} attempts)" if attempt else "")) from None
                time.sleep(self.backoff * 2 ** attempt)

    def _through_jump(self) -> None:
        """Open the jump host's connection (once) and a direct-tcpip channel through it to the node: the node's
        SSH session then runs over that channel, as with ssh's ProxyJump. Failures name the jump host."""
        jc, j = self._jump_conn, self.jump
        assert jc is not None and j is not None
        label = f"jump host {j}"
        if not jc.is_connected:
            jc.connect_timeout = self.conn.connect_timeout
            jc.connect_kwargs.update(banner_timeout=self.conn.connect_kwargs.get("banner_timeout", 30),
                                     auth_timeout=self.conn.connect_kwargs.get("auth_timeout", 30))
            self._open_checked(jc, label, f"{label}: its host key")
            _settle(jc.transport)
        try:
            chan = jc.transport.open_channel(
                "direct-tcpip", (self.node.address, self.node.port), ("127.0.0.1", 0), timeout=self.conn.connect_timeout)
        except paramiko.ChannelException as exc:
            raise _Retryable(f"{self.host}: {label} could not reach {self.node.address}:{self.node.port}: "
                             f"{exc.text or 'refused'}") from None
        except (paramiko.SSHException, OSError) as exc:  # the jump host's connection broke (timeouts included)
            raise _Retryable(f"{self.host}: {label}: {exc or type(exc).__name__}") from None
        self.conn.connect_kwargs["sock"] = chan

    def _open_once(self) -> None:
        if self._jump_conn is not None:
            self._through_jump()
        self._open_checked(self.conn, f"ssh to {self.node.address}:{self.node.port}{self.via}",
                           f"host key of {self.node.address}")

    def _open_checked(self, conn: Connection, peer: str, key_of: str) -> None:
        """Open ``conn`` (the node's, or its jump host's) and check the key it shows; every failure is one
        message, retried (_Retryable) only where trying again can help. ``peer`` names the connection in
        messages ("ssh to ADDRESS:PORT"), ``key_of`` its host key ("host key of ADDRESS")."""
        try:
            conn.open()
            key = conn.transport.get_remote_server_key()
            if any(key == bad for bad in self._trust.revoked):
                conn.close()
                raise TransportError(f"{self.host}: {key_of} is marked @revoked in {self._known}; refusing to connect")
        except paramiko.BadHostKeyException:
            raise TransportError(f"{self.host}: {key_of} CHANGED (not the one in {self._known}); refusing to connect") from None
        except paramiko.SSHException as exc:
            if "is marked @revoked" in str(exc):
                raise TransportError(f"{self.host}: {exc}; refusing to connect") from None
            if "not found in known_hosts" in str(exc):
                ca = (f"; its {self._trust.ca_lines} @cert-authority line(s) cannot be checked by provision "
                      "(host certificates are not supported): add the host's own key" if self._trust.ca_lines else "")
                raise TransportError(f"{self.host}: {key_of} is not in {self._known}{ca} "
                                     "(add it, e.g. with ssh-keyscan, or set ssh.host_key_policy: accept-new)") from None
            if isinstance(exc, paramiko.AuthenticationException):
                raise TransportError(f"{self.host}: {peer}: {exc}") from None
            if "banner" in str(exc).lower() or "no existing session" in str(exc).lower():
                # paramiko says "Error reading SSH protocol banner", or gives up on the handshake quietly and
                # then "No existing session": either way the peer never spoke SSH in time
                raise _Retryable(f"{self.host}: {peer}: the connection was accepted but the SSH handshake did not "
                                 f"finish within {seconds(conn.connect_timeout)} (no SSH banner: not sshd, or an "
                                 "sshd that hangs)") from None
            raise _Retryable(f"{self.host}: {peer}: {exc}") from None
        except (socket.timeout, TimeoutError):
            raise _Retryable(f"{self.host}: {peer} timed out") from None
        except OSError as exc:
            raise _Retryable(f"{self.host}: {peer}: {exc.strerror or exc}") from None

    _lease: tuple[Any, ...] | None = None  # (lock channel, token) while a lease is held
    _applying = False            # an apply script is on its way or running: renewals say so ("U")

    def run(self, script: str | Script, timeout: float | None = None) -> Result:
        """:meth:`_exec`; under a lease, the node is told first that an apply script is coming (``U`` on the
        lock channel, sent before the script's bytes on the same connection), so that however long the
        upload queues on a slow link, the lease cannot lapse behind it."""
        lease = self._lease
        if lease is None:
            return self._exec(script, timeout)
        self._applying = True
        with contextlib.suppress(Exception):
            lease[0].send(b"U")
        try:
            return self._exec(script, timeout)
        finally:
            self._applying = False

    def _exec(self, script: str | Script, timeout: float | None = None) -> Result:
        """Send ``script`` to ``sh -s`` on a fresh channel of the open connection.

        (Fabric's ``run(in_stream=…)`` feeds stdin a byte at a time with a sleep
        between bytes: seconds for a few KB. Sending the bytes ourselves is the fast path:
        each piece through a memoryview, so paramiko's packets are cut from it without
        copying what is left at each packet.)
        Every wait is bounded by ``timeout``: on time-out the result has exit 124 and
        what the script printed so far. A broken connection raises TransportError
        whose ``partial`` holds what had arrived.
        """
        self._open()
        command = "sudo -n sh -s" if self.sudo else "sh -s"
        chan = None
        out, err = bytearray(), bytearray()
        with self._watchdog(timeout) as fired:
            try:
                chan = self.conn.transport.open_session(timeout=timeout)
                chan.settimeout(timeout)
                chan.exec_command(command)
                for chunk in (script.chunks() if isinstance(script, Script) else [script.encode()]):
                    _send_all(chan, chunk)
                chan.shutdown_write()
                self._drain(chan, timeout, out, err)
                rc = chan.recv_exit_status()
                if rc == -1:  # closed with no exit status: sshd, the shell or the connection went away
                    raise EOFError("the session ended without an exit status")
            except (socket.timeout, TimeoutError):
                if chan is not None:
                    chan.close()  # stop waiting; the remote shell gets EOF and a closed channel
                return Result(out.decode(errors="replace"), f"timed out after {seconds(timeout)}", 124)
            except (OSError, EOFError, paramiko.SSHException) as exc:
                if fired.is_set():
                    return Result(out.decode(errors="replace"), f"timed out after {seconds(timeout)} (connection closed)", 124)
                raise TransportError(f"{self.host}: connection lost: {exc or type(exc).__name__}",
                                     partial=out.decode(errors="replace")) from None
        return Result(out.decode(errors="replace"), err.decode(errors="replace"), rc)

    @contextlib.contextmanager
    def _watchdog(self, seconds: float | None) -> Iterator[threading.Event]:
        """Close the connection if the block runs ``seconds`` past its start: paramiko's writes on a dead link
        block for as long as TCP retries, and only a closed transport frees them. Yields the "fired" event."""
        fired = threading.Event()
        if seconds is None:
            yield fired
            return

        def cut() -> None:
            fired.set()
            with contextlib.suppress(Exception):
                self.conn.transport.close()

        timer = threading.Timer(seconds + 1, cut)
        timer.daemon = True
        timer.start()
        try:
            yield fired
        finally:
            timer.cancel()

    def _drain(self, chan: paramiko.Channel, timeout: float | None, out: bytearray, err: bytearray) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if chan.recv_ready():
                piece = chan.recv(65536)
                out += piece
                if self.on_output is not None:
                    with contextlib.suppress(Exception):  # progress is a nicety: it never breaks a run
                        self.on_output(piece.decode(errors="replace"))
            elif chan.recv_stderr_ready():
                err += chan.recv_stderr(65536)
            elif chan.exit_status_ready() and not chan.recv_ready() and not chan.recv_stderr_ready():
                while chan.recv_ready():
                    out += chan.recv(65536)
                return
            elif chan.closed or not self.conn.transport.is_active():
                raise EOFError("the connection closed")
            else:
                if deadline is not None and time.monotonic() > deadline:
                    raise TimeoutError
                _wait(chan, deadline)

    @contextlib.contextmanager
    def lock(self, path: str, timeout: float, facts_script: str | None = None,
             facts_timeout: float | None = None) -> Iterator[Held]:
        """Hold the node's lock (``steps.lock_script``) as a lease, renewed from a thread, until the block ends.

        Yields :class:`Held`: ``locked`` False (with a warning for the run) where the
        node has no flock; ``facts_script`` run in the same exec once the lock is taken,
        its output in ``Held.facts`` (exit 124 past ``facts_timeout``).
        Raises LockError when another run holds it past ``timeout`` (naming the
        holder), TransportError when the node does not answer in time.
        """
        self._open()
        nonce = secrets.token_hex(6)
        owner = f"{socket.gethostname()} pid {os.getpid()} since {time.strftime('%Y-%m-%dT%H:%M:%S%z')}"
        left = self._left()
        if left is not None:  # one deadline per host: the wait for another run's lock ends within it too
            timeout = max(0.0, min(timeout, left - 2)) if timeout > 0 else max(0.0, left - 2)
        # an apply script on its way or running keeps the lease for as long as this host may still work
        script = steps.lock_script(nonce, timeout, owner, facts_script, grace=left + 5 if left is not None else 3600)
        command = sh("sudo -n sh -c {}", script) if self.sudo else sh("sh -c {}", script)
        wait = None if timeout <= 0 else timeout + 15
        if left is not None:
            wait = left if wait is None else min(wait, left)
        try:
            with self._watchdog(wait):
                chan = self.conn.transport.open_session(timeout=wait)
                chan.exec_command(command)
                lines = _Lines(chan)
                answer = lines.marked(nonce, wait)
        except (OSError, EOFError, paramiko.SSHException) as exc:
            raise TransportError(f"{self.host}: no answer while taking the node lock: {exc or type(exc).__name__}") from None
        if answer is None:  # the session ended without a word of the lock script
            status = chan.recv_exit_status() if chan.exit_status_ready() else None
            chan.close()
            raise HostError(f"{self.host}: the node's shell ended (exit {status}) before the lock script ran; nothing "
                            "ran: a start-up file of the SSH user (~/.bashrc) that exits or execs is the usual cause")
        if answer.startswith("HELD"):
            chan.close()
            holder = printable(answer[4:].strip())
            raise LockError(f"{self.host}: another provision run holds {steps.LOCK} on this node"
                            + (f" ({holder})" if holder else "") + f"; waited {seconds(timeout)} (see --lock-timeout"
                            + (" and --host-timeout" if left is not None else "") + ")")
        stop = threading.Event()
        token = nonce if answer == "LOCKED" else None  # NOFLOCK: no lease, so no fence and nothing to stop
        self._lease = (chan, token)
        beat = threading.Thread(target=self._heartbeat, args=(chan, stop), daemon=True)
        beat.start()
        try:
            ran = self._facts(lines, nonce, facts_timeout) if facts_script is not None else None
            yield Held(token is not None, ran, token)
        finally:
            stop.set()
            beat.join(5)
            self._lease = None
            with contextlib.suppress(Exception):
                chan.shutdown_write()
                chan.close()

    def _facts(self, lines: "_Lines", nonce: str, timeout: float | None) -> Result:
        """What the lock channel printed for the facts script until its ``NONCE RAN <rc>`` line."""
        try:
            with self._watchdog(timeout):
                out, rc = lines.until(f"{nonce} RAN ", timeout)
        except TimeoutError:
            return Result("", f"timed out after {seconds(timeout)}", 124)
        except (OSError, EOFError, paramiko.SSHException) as exc:
            raise TransportError(f"{self.host}: connection lost while gathering facts: {exc or type(exc).__name__}") from None
        if rc is None:
            raise TransportError(f"{self.host}: the lock session ended while gathering facts")
        return Result(out, "", rc)

    def _heartbeat(self, chan: paramiko.Channel, stop: threading.Event) -> None:
        """Renew the lease: ``.`` every HEARTBEAT seconds, ``U`` while an apply script is on its way or running."""
        while not stop.wait(steps.HEARTBEAT):
            try:
                chan.send(b"U" if self._applying else b".")
            except Exception:  # noqa: BLE001 - the lease then lapses on the node by itself
                return

    def stop_script(self) -> bool:
        """Stop this lease's apply script that outlived its time-out, with every process it started, and nothing
        else (``steps.stop_script`` checks the process's identity); True if one was stopped."""
        token = self._lease[1] if self._lease else None
        if token is None:
            return False
        try:
            # the stop is part of the host's work: it ends within its deadline too (with a few seconds of grace
            # past it, so that a script that overran is still stopped)
            left = self._left()
            limit = 10.0 if left is None else max(5.0, min(10.0, left + 5))
            return "stopped" in self._exec(steps.stop_script(token), limit).stdout
        except TransportError:
            return False

    def close(self) -> None:
        self.conn.close()
        if self._jump_conn is not None:
            self._jump_conn.close()
