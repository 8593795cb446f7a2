"""The apply script: every step of a host in one ``set -e`` script, with markers that tell how far it got."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from ..shell import quote
from .lock import FENCED_RC, LOCK_TOKEN, PROC_ID_FUNCTION, script_file
from .values import CREATED, CREATED_DIRS, STATE_DIR, Step, Upload

MARK = "@@PROVISIONER"

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


def mark(nonce: str = "") -> str:
    """The apply script's marker: MARK and the run's nonce (random hex), so that no step's output passes for one."""
    if not nonce.isascii() or not all(c in "0123456789abcdef" for c in nonce):
        raise ValueError("the nonce is hex")
    return MARK + nonce


@dataclass(frozen=True)
class Script:
    """An apply script as pieces: text, and the compressed bytes of uploads, which are the one shared copy
    (:func:`provisioner.uploads.compressed_base64`). A transport sends the pieces one after the other, so a
    host's script is never built whole in memory: with many hosts at once, memory holds each upload once."""

    pieces: tuple[str | bytes, ...]

    def chunks(self) -> Iterator[bytes | memoryview]:
        """What to send, in order; shared bytes as views (no copy)."""
        for piece in self.pieces:
            yield piece.encode() if isinstance(piece, str) else memoryview(piece)

    def __str__(self) -> str:
        return "".join(p if isinstance(p, str) else p.decode("ascii") for p in self.pieces)


def render_script(tasks: Sequence[tuple[int, Sequence[Step]]], token: str | None = None, nonce: str = "") -> Script:
    """:func:`render`, as a :class:`Script` whose upload data is shared, not copied."""
    pieces: list[str | bytes] = []
    text: list[str] = ["set -e", "export LC_ALL=C PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH",
                       MKDIR_FUNCTION, RECORD_FUNCTION, PROC_ID_FUNCTION, "provisioner_main() {"]
    if token:
        text.append(fence(token, nonce))
    text.append(run_dir(token))
    for task_index, steps in tasks:
        for step_index, step in enumerate(steps):
            text.append(f"echo '{mark(nonce)} step {task_index} {step_index}'")
            if isinstance(step, Upload):
                head, data, tail = step.pieces()
                pieces += ["\n".join(text) + "\n" + head, data]
                text = [tail]
            else:
                text.append(step.shell())
    text += [f"echo '{mark(nonce)} done'", "}", "provisioner_main"]
    pieces.append("\n".join(text) + "\n")
    return Script(tuple(pieces))


def render(tasks: Sequence[tuple[int, Sequence[Step]]], token: str | None = None, nonce: str = "") -> str:
    """One ``set -e`` script for a host: before each step a marker names task and step.

    With ``token`` (the lease the facts were gathered under) the script first proves, on the node,
    that this lease still holds the lock (:func:`fence`), and changes nothing otherwise.

    The runner reads the last marker from stdout to tell which step failed. The
    steps sit in a function that is called on the last line: ``sh`` reads the whole
    script before running any of it, so a script cut off in transit runs nothing.
    """
    return str(render_script(tasks, token, nonce))


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
