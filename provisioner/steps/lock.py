"""The node lock as a lease and a fence: the lock channel's script, the apply script's claim on it, and the
stop of a script that outlived its time-out (used by :mod:`provisioner.transport.ssh` and the script renderer)."""

from __future__ import annotations

from ..shell import quote

LOCK = "/run/provisioner.lock"          # flock'ed by the lock channel from facts to the end of apply
LOCK_OWNER = LOCK + ".owner"            # who holds it: "controller host, pid, start time"
LOCK_TOKEN = LOCK + ".token"            # the token of the lease that holds the lock: the fence an apply script checks
LOCK_SCRIPT = LOCK + ".script."         # + token: "pid pgid starttime" of that lease's apply/reset script while it runs
HEARTBEAT = 2.0                         # the client renews its lock this often …
LEASE = 6                               # … and the node lets go this many seconds after the last renewal
FENCED_RC = 75                          # an apply script whose lease is gone exits with this, having changed nothing


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
        f'for f in {LOCK_SCRIPT}*; do [ -e "$f" ] && rm -f "$f"; done',  # no rm to run when there is none (most runs)
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
        f"t=; {{ read -r t < {LOCK_TOKEN}; }} 2>/dev/null",  # read by the shell itself: no cat to start
        # the fence goes first; the owner with it where no apply script of this lease has started (one rm, the
        # no-op case); one that starts in between is still waited for below, only its owner line is gone
        f'if [ "$t" = {q(nonce)} ]; then if [ -e {mine} ]; then rm -f {LOCK_TOKEN}; else rm -f {LOCK_TOKEN} {LOCK_OWNER}; fi; fi',
        f'while read -r pid id < {mine} 2>/dev/null && [ -n "$id" ] && [ "$(provisioner_procid "$pid")" = "$id" ]; do',
        "  sleep 0.2",
        "done",
        f"if [ -e {mine} ] || [ -e {LOCK_OWNER} ]; then rm -f {mine} {LOCK_OWNER}; fi",
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
