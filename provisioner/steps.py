"""Operations as values: what a module wants done on a node, rendered to shell in one place.

Modules return lists of :class:`Cmd` and :class:`WriteFile`; only :func:`render`
turns them into shell text, and every word goes through :mod:`provisioner.shell`.

>>> Cmd(("ip", "link", "add", "v-net-0", "type", "bridge")).shell()
'ip link add v-net-0 type bridge'
>>> Cmd(("printf", "%s\\\\n", "1"), stdout="/proc/sys/net/ipv4/ip_forward").shell()
"printf '%s\\\\n' 1 > /proc/sys/net/ipv4/ip_forward"
"""

from __future__ import annotations

import base64
import posixpath
from collections.abc import Sequence
from dataclasses import dataclass

from .shell import command, quote
from .uploads import Artifact, compressed_base64

MARK = "@@PROVISIONER"
LOCK = "/run/provisioner.lock"          # flock'ed by the lock channel from facts to the end of apply
LOCK_OWNER = LOCK + ".owner"            # who holds it: "controller host, pid, start time"
LOCK_TOKEN = LOCK + ".token"            # the token of the lease that holds the lock: the fence an apply script checks
LOCK_SCRIPT = LOCK + ".script."         # + token: "pid pgid starttime" of that lease's apply/reset script while it runs
HEARTBEAT = 2.0                         # the client renews its lock this often …
LEASE = 6                               # … and the node lets go this many seconds after the last renewal
FENCED_RC = 75                          # an apply script whose lease is gone exits with this, having changed nothing
STATE_DIR = "/var/lib/provisioner"
CREATED_DIRS = f"{STATE_DIR}/created-dirs"
CREATED = f"{STATE_DIR}/created"  # "KIND NAME" lines: what apply made (file PATH, link NAME, netns NAME, addr …)
Creates = tuple[str, str] | None   # (kind, name) a step makes: written down in CREATED just before it runs


def _recorded(creates: Creates, line: str) -> str:
    """``line``, preceded by the record of what it creates (reset removes only what is recorded)."""
    if creates is None:
        return line
    return f"{command('provisioner_created', *creates)}\n{line}"


@dataclass(frozen=True)
class Cmd:
    """One command line; ``stdout`` redirects its output to a file (e.g. under /proc/sys)."""

    argv: tuple[str, ...]
    stdout: str | None = None
    stdin: str | None = None  # text fed to the command (a quoted here-document)
    creates: Creates = None

    def shell(self) -> str:
        return _recorded(self.creates, self._line())

    def _line(self) -> str:
        line = command(*self.argv)
        if self.stdout:
            line += f" > {quote(self.stdout)}"
        if self.stdin is not None:
            if "\nPROVISIONER_EOF\n" in "\n" + self.stdin:
                raise ValueError("stdin holds the here-document terminator")
            body = self.stdin if self.stdin.endswith("\n") else self.stdin + "\n"
            line += f" <<'PROVISIONER_EOF'\n{body}PROVISIONER_EOF"
        return line

    def show(self) -> str:
        return self._line()  # the record line that may precede it is bookkeeping, not the command


def _install(path: str, fill, mode: str, owner: str | None = None) -> str:
    """The atomic write: make the directory, ``fill(tmp)`` a new temp file beside ``path``, set mode/owner, ``mv``.

    The temp file comes from ``mktemp`` (a fresh name, created exclusively, 0600), so
    nothing planted in the directory beforehand (a symlink, say) is ever written through.
    """
    q = quote
    directory = posixpath.dirname(path) or "/"
    template = q(posixpath.join(directory, f".{posixpath.basename(path)}.provisioner-XXXXXXXX"))
    # a directory where the file must go: mv would move the file into it (and report success every run)
    refuse = f"if [ -d {q(path)} ]; then printf '%s is a directory, not a file\\n' {q(path)} >&2; exit 1; fi"
    lines = [f"provisioner_mkdir {q(directory)}", refuse, f"t=$(mktemp {template})", fill('"$t"'),
             f'chmod {q(mode)} "$t"']
    if owner:
        lines.append(f'chown {q(owner)} "$t"')
    return "\n".join(lines + [f'mv -f "$t" {q(path)}'])


@dataclass(frozen=True)
class WriteFile:
    """Write ``content`` to ``path`` atomically: temp file in the same directory, then ``mv``."""

    path: str
    content: bytes
    mode: str = "0644"
    owner: str = "root"
    group: str = "root"
    creates: Creates = None

    def shell(self) -> str:
        data = base64.encodebytes(self.content).decode()
        return _recorded(self.creates, "") + _install(self.path, lambda tmp: f"base64 -d > {tmp} <<'PROVISIONER_EOF'\n{data}PROVISIONER_EOF",
                        self.mode, f"{self.owner}:{self.group}")

    def show(self) -> str:
        return f"write {self.path} ({len(self.content)} bytes, mode {self.mode}, {self.owner}:{self.group})"


@dataclass(frozen=True)
class Upload:
    """Install a file from this machine (a plugin binary), carried in the apply script itself.

    The bytes (an :class:`~provisioner.uploads.Artifact` read while binding) travel gzip-compressed
    in a here-document, are unpacked into the run's private directory (``mktemp -d``,
    0700, removed when the script exits), checked against their sha256, then
    copied beside the target and moved into place.
    """

    path: str
    artifact: Artifact
    mode: str = "0755"
    creates: Creates = None

    @property
    def sha256(self) -> str:
        return self.artifact.sha256

    def shell(self) -> str:
        q = quote
        staged = f'"$PROVISIONER_RUN"/{self.sha256}'
        data = compressed_base64(self.artifact)
        return _recorded(self.creates, "") + (f"base64 -d <<'PROVISIONER_EOF' | gzip -dc > {staged}\n{data}PROVISIONER_EOF\n"
                f'(cd "$PROVISIONER_RUN" && echo {q(self.sha256 + "  " + self.sha256)} | sha256sum -c --quiet)\n'
                + _install(self.path, lambda tmp: f"cp {staged} {tmp}", self.mode)
                + f"\nrm -f {staged}")

    def show(self) -> str:
        return f"upload {self.path} (sha256 {self.sha256[:12]}…, mode {self.mode})"


@dataclass(frozen=True)
class RemoveEmptyDir:
    """Remove a directory if it is there and empty (reset of a directory the tool created)."""

    path: str

    def shell(self) -> str:
        q = quote(self.path)
        return f"[ ! -d {q} ] || rmdir --ignore-fail-on-non-empty {q}"

    def show(self) -> str:
        return f"rmdir {self.path} (if empty)"


@dataclass(frozen=True)
class CNIChain:
    """Run a whole conflist for one attachment, as a runtime (libcni) does.

    ADD calls each plugin in order, giving each the result of the one before as
    ``prevResult``, and caches the final result in ``cache``; DEL calls them in
    reverse order with the cached result (and ignores a missing cache); CHECK
    calls each in order with it. Plugin results are JSON objects spliced into
    the next config as text: nothing from them is ever evaluated. ``plugins``
    are the single-plugin configs, already JSON text; ``env`` the CNI_*
    variables. Each plugin's own output goes to stderr, so that an error shows.
    """

    command: str
    plugins: tuple[str, ...]
    env: tuple[str, ...]
    bin_dir: str
    types: tuple[str, ...]
    cache: str

    def shell(self) -> str:
        q = quote
        env = " ".join(q(x) for x in (f"CNI_COMMAND={self.command}",) + self.env)
        order = list(zip(self.plugins, self.types))
        lines = ["r="] if self.command == "ADD" else [
            f"r=$(cat {q(self.cache)} 2>/dev/null || true)", 'case "$r" in "{"*) ;; *) r= ;; esac']
        if self.command == "DEL":
            order.reverse()
        for conf, kind in order:
            head = conf[:-1]  # the config object without its closing brace: prevResult goes in last
            plugin = q(posixpath.join(self.bin_dir, kind))
            feed = (f'{{ printf %s {q(head)}; [ -z "$r" ] || printf \',"prevResult":%s\' "$r"; printf \'}}\'; }}')
            if self.command == "ADD":
                lines.append(f'r=$({feed} | env {env} {plugin})' + ' || { printf \'%s\\n\' "$r" >&2; exit 1; }')
                lines.append('printf \'%s\\n\' "$r" >&2')
            else:
                lines.append(f"{feed} | env {env} {plugin} >&2")
        if self.command == "ADD":
            lines += [f"provisioner_mkdir {q(posixpath.dirname(self.cache))}", f'printf \'%s\\n\' "$r" > {q(self.cache)}']
        elif self.command == "DEL":
            lines.append(f"rm -f {q(self.cache)}")
        return "\n".join(lines)

    def show(self) -> str:
        order = self.types[::-1] if self.command == "DEL" else self.types
        return f"CNI {self.command} through {' -> '.join(order)} ({' '.join(self.env)})"


Step = Cmd | WriteFile | Upload | RemoveEmptyDir | CNIChain

RECORD_FUNCTION = f"""provisioner_created() {{
  mkdir -p {STATE_DIR}
  printf '%s %s\\n' "$1" "$2" >> {CREATED}
}}"""

# Makes a directory and its missing parents, writing down each one it made, so
# that reset can take away exactly the directories apply created (see modules/dirs.py).
MKDIR_FUNCTION = f"""provisioner_mkdir() {{
  [ -d "$1" ] && return 0
  provisioner_mkdir "$(dirname "$1")"
  mkdir "$1"
  mkdir -p {STATE_DIR}
  printf '%s\\n' "$1" >> {CREATED_DIRS}
}}"""


# Who a process is, from /proc/PID/stat: "pgid starttime" (the command name, which may hold spaces and
# parentheses, is cut off first). A pid alone can be stale or reused; with its start time it names one process.
PROC_ID_FUNCTION = """provisioner_procid() {
  s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  s=${s##*) }
  set -- $s
  echo "$3 ${20}"
}"""


def script_file(token: str) -> str:
    return LOCK_SCRIPT + token


def fence(token: str, nonce: str = "") -> str:
    """sh an apply script runs before anything else: claim this lease's script file (pid, process group, start
    time), then prove that the lease it gathered facts under still holds the lock (LOCK_TOKEN holds its token);
    otherwise exit FENCED_RC having changed nothing. Claim first, check second: a lock script that lets go
    removes the token first and then waits for a claimed script, so either this script sees the token gone or
    it is waited for."""
    q = quote
    mine = q(script_file(token))
    return "\n".join([
        f'printf \'%s %s\\n\' $$ "$(provisioner_procid $$)" > {mine}',
        f'if [ "$(cat {LOCK_TOKEN} 2>/dev/null)" != {q(token)} ]; then',
        f"  rm -f {mine}; echo '{mark(nonce)} fenced'",
        "  echo 'the node lock was lost before apply (its lease lapsed); nothing was changed' >&2",
        f"  exit {FENCED_RC}",
        "fi",
    ])


RUN_PREFIX = "/tmp/.provisioner-run."


def run_dir(token: str | None) -> str:
    """The run's private directory (mktemp -d: a fresh name, mode 0700), removed on any exit of the script
    with the lease's script file; directories left by a run that was killed are swept first (the fence, just
    before, proved that this run holds the node lock, so no other live run owns one)."""
    mine = f"; echo done > {quote(script_file(token))}" if token else ""  # ended: the lock need not wait
    return "\n".join([
        "find /tmp -maxdepth 1 -name '.provisioner-run.*' -type d -uid \"$(id -u)\" -exec rm -rf {} + 2>/dev/null || true",
        f"PROVISIONER_RUN=$(mktemp -d {RUN_PREFIX}XXXXXXXXXX)",
        f"trap 'rm -rf \"$PROVISIONER_RUN\"{mine}' EXIT",
        "trap 'exit 129' HUP", "trap 'exit 130' INT", "trap 'exit 143' TERM"])


def lock_script(nonce: str, timeout: float, owner: str, then: str | None = None, grace: float = 600) -> str:
    """What the lock channel runs on the node: take ``flock`` on LOCK and hold it as a lease.

    It prints ``NONCE LOCKED`` (or ``NONCE HELD <owner>`` after ``timeout`` seconds,
    ``NONCE NOFLOCK`` where there is no flock). Under the lock it writes the lease's token
    (the nonce) to LOCK_TOKEN, the fence every apply script of this lease checks first, and
    clears script files of earlier leases (none can be running: their locks are gone).
    Then it runs ``then`` (the facts script, in a subshell with stdin closed) and prints
    ``NONCE RAN <exit code>``, so taking the lock and reading the facts are one exec. Then
    it keeps the lock while the client sends a byte at least every LEASE seconds (``.`` every
    HEARTBEAT). ``U`` says an apply script is on its way: until that script has started (its
    script file exists) the lease waits up to ``grace`` seconds for the next byte, so a slow
    upload queued in front of the renewals cannot let it lapse; once it has started, the wait
    for the script itself holds the lock. Once renewals stop (channel closed, client dead or
    cut off) it removes the token, so no apply script of this lease can start any more, waits
    for one that runs (identified by pid and start time), and only then lets go. Only the
    nonce-marked line is read, so anything the node's shell start-up files print is ignored.
    """
    q = quote
    wait = "" if timeout <= 0 else f"-w {int(timeout)} "
    run = f"( {then}\n) </dev/null; echo {q(nonce)} RAN $?" if then is not None else ":"
    mine = q(script_file(nonce))
    return "\n".join([
        f"command -v flock >/dev/null 2>&1 || {{ echo {q(nonce)} NOFLOCK; {run}; exec cat >/dev/null; }}",
        PROC_ID_FUNCTION,
        f"exec 9>>{LOCK}",
        f"if ! flock {wait}9; then echo {q(nonce)} HELD \"$(cat {LOCK_OWNER} 2>/dev/null)\"; exit 1; fi",
        f"rm -f {LOCK_SCRIPT}*",
        f"printf '%s\\n' {q(nonce)} > {LOCK_TOKEN}",
        f"printf '%s\\n' {q(owner)} > {LOCK_OWNER}",
        f"echo {q(nonce)} LOCKED",
        run,
        "u=0",
        "while :; do",
        f'  if c=$(timeout {LEASE} dd bs=1 count=1 2>/dev/null); then',
        '    case "$c" in .) u=0 ;; U) [ "$u" = 0 ] && u=1 ;; *) break ;; esac',
        # no renewal for a lease: let go, unless an apply script was announced and has not started yet
        f'  elif [ "$u" = 0 ] || [ -e {mine} ] || [ "$u" -gt {max(int(grace) // LEASE, 1)} ]; then break',
        '  else u=$((u+1))',
        "  fi",
        "done",
        f'[ "$(cat {LOCK_TOKEN} 2>/dev/null)" = {q(nonce)} ] && rm -f {LOCK_TOKEN}',
        f'while read -r pid id < {mine} 2>/dev/null && [ -n "$id" ] && [ "$(provisioner_procid "$pid")" = "$id" ]; do',
        "  sleep 0.2",
        "done",
        f"rm -f {mine} {LOCK_OWNER}",
    ]) + "\n"


def stop_script(token: str) -> str:
    """sh that stops this lease's apply script and everything it started (its process group), and nothing else:
    the script file must name a live process with the same start time and process group (a stale or forged
    file names none), and the group must be a real one (never 0, 1 or negative). TERM, then KILL after 3 s."""
    mine = quote(script_file(token))
    return "\n".join([
        PROC_ID_FUNCTION,
        f"read -r pid pgid start < {mine} 2>/dev/null || exit 0",
        'case "$pid$pgid$start" in *[!0-9]*|"") exit 0 ;; esac',
        '[ "$pid" -gt 1 ] && [ "$pgid" -gt 1 ] || exit 0',
        'alive() { [ "$(provisioner_procid "$pid")" = "$pgid $start" ]; }',
        "alive || exit 0",
        'kill -TERM -"$pgid" 2>/dev/null',
        "i=0; while alive && [ $i -lt 15 ]; do sleep 0.2; i=$((i+1)); done",
        'alive && kill -KILL -"$pgid" 2>/dev/null',
        "echo stopped",
    ]) + "\n"


def mark(nonce: str = "") -> str:
    """The apply script's marker: MARK and the run's nonce (random hex), so that no step's output passes for one."""
    if not nonce.isascii() or not all(c in "0123456789abcdef" for c in nonce):
        raise ValueError("the nonce is hex")
    return MARK + nonce


def render(tasks: Sequence[tuple[int, Sequence[Step]]], token: str | None = None, nonce: str = "") -> str:
    """One ``set -e`` script for a host: before each step a marker names task and step.

    With ``token`` (the lease the facts were gathered under) the script first proves, on the node,
    that this lease still holds the lock (:func:`fence`), and changes nothing otherwise.

    The runner reads the last marker from stdout to tell which step failed. The
    steps sit in a function that is called on the last line: ``sh`` reads the whole
    script before running any of it, so a script cut off in transit runs nothing.
    """
    lines = ["set -e", "export LC_ALL=C PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH",
             MKDIR_FUNCTION, RECORD_FUNCTION, PROC_ID_FUNCTION, "provisioner_main() {"]
    if token:
        lines.append(fence(token, nonce))
    lines.append(run_dir(token))
    for task_index, steps in tasks:
        for step_index, step in enumerate(steps):
            lines.append(f"echo '{mark(nonce)} step {task_index} {step_index}'")
            lines.append(step.shell())
    lines += [f"echo '{mark(nonce)} done'", "}", "provisioner_main"]
    return "\n".join(lines) + "\n"


def step_mark(line: str, nonce: str = "") -> tuple[int, int] | None:
    """The (task, step) a marker line of :func:`render` names; None for any other line."""
    words = line.split()
    if len(words) == 4 and words[0] == mark(nonce) and words[1] == "step" and words[2].isdigit() and words[3].isdigit():
        return int(words[2]), int(words[3])
    return None


def last_step(stdout: str, nonce: str = "") -> tuple[int, int] | None:
    """The (task, step) of the last marker in ``stdout``; None when no step began."""
    found = None
    for line in stdout.splitlines():
        found = step_mark(line, nonce) or found
    return found


def finished(stdout: str, nonce: str = "") -> bool:
    return f"{mark(nonce)} done" in stdout.splitlines()


def fenced(stdout: str, nonce: str = "") -> bool:
    return f"{mark(nonce)} fenced" in stdout.splitlines()
