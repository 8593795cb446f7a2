"""Per host: facts (one exec) → plan (pure) → apply (one exec). Hosts run in parallel.

``mode`` is ``plan`` (stop before apply), ``apply``, or ``reset`` (the modules'
reverse, tasks in reverse order). Results stream to ``emit`` as they happen.
If any task of a host fails to plan, nothing is applied on that host: a
half-applied node is worse than an untouched one.
"""

from __future__ import annotations

import contextlib
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from .. import FORKS
from .. import facts as factlib
from .. import steps
from ..errors import HostError, TransportError, seconds
from ..facts import Fact, Facts
from ..facts.system import Commands
from ..modules import MODULES, ModuleError, Outcome
from ..playbook import BoundTask
from ..transport import Held, Result, Transport
from ..uploads import start_compressing

STDERR_LINES = 8


@dataclass(frozen=True)
class Options:
    """How a run behaves; the CLI flags map one to one."""

    forks: int = FORKS
    timeout: float | None = 300          # one exec on a host (--timeout)
    host_timeout: float | None = None    # all of one host's work (--host-timeout)
    lock_timeout: float = 60             # wait for another run's node lock (--lock-timeout)
    max_fail_percent: float | None = None  # stop starting hosts past this (--max-fail-percent)
    retries: int = 2                     # connection attempts after the first (--retries)
    check: bool = False                  # reset --check: show what the mode would change, change nothing


@dataclass
class TaskResult:
    host: str
    index: int
    play: str
    name: str
    module: str
    status: str  # ok | changed | failed | skipped
    reason: str = ""
    commands: list[str] = field(default_factory=list)
    diff: str = ""
    error: str | None = None
    where: str = ""
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "host"}


@dataclass
class HostResult:
    host: str
    tasks: list[TaskResult] = field(default_factory=list)
    unreachable: bool = False
    error: str | None = None
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for t in self.tasks if t.status == status)

    @property
    def failed(self) -> bool:
        return self.unreachable or self.count("failed") > 0 or self.error is not None

    def recap(self) -> dict[str, Any]:
        """Counts per status; a host that failed as a whole (lock, timeout, lost connection) counts one failure."""
        failed = self.count("failed") + (1 if self.error is not None and not self.unreachable else 0)
        return {"ok": self.count("ok"), "changed": self.count("changed"), "failed": failed,
                "skipped": self.count("skipped"), "unreachable": self.unreachable, "seconds": round(self.seconds, 2)}


Emit = Callable[[str, object], None]
Order = list[tuple[int, BoundTask]]  # a host's tasks with their index in the playbook, in the order they run


class _Clock:
    """Per-exec timeout, capped by what is left of the host's own budget."""

    def __init__(self, host: str, opts: Options):
        self.host, self.opts = host, opts
        self.deadline = None if opts.host_timeout is None else time.monotonic() + opts.host_timeout

    def __call__(self) -> float | None:
        if self.deadline is None:
            return self.opts.timeout
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise HostError(f"{self.host}: --host-timeout of {seconds(self.opts.host_timeout)} reached")
        return left if self.opts.timeout is None else min(left, self.opts.timeout)


def run_host(transport: Transport, tasks: list[BoundTask], mode: str, emit: Emit,
             opts: Options = Options()) -> HostResult:
    """Facts, plan and (unless ``mode == 'plan'``) apply on one host.

    apply and reset hold the node's lock from facts to apply, so that two runs
    never plan from the same facts and both act on them.
    """
    start = time.monotonic()
    result = HostResult(transport.host)
    clock = _Clock(transport.host, opts)
    order = task_order(tasks, mode)
    try:
        emit("phase", (transport.host, "connecting"))
        transport.deadline = clock.deadline
        wanted = wanted_facts(order, mode)
        script, nonce = facts_script(wanted)
        dry = mode == "plan" or opts.check
        lock: contextlib.AbstractContextManager[Held]
        if dry:  # no lock: the facts are the only exec
            lock = contextlib.nullcontext(Held(True, _run_facts(transport, script, clock()) if wanted else None))
        else:  # the facts run in the lock's own exec: one exec per node for a no-op, the lock held from facts to apply
            lock = transport.lock(steps.LOCK, opts.lock_timeout, facts_script=script if wanted else None,
                                   facts_timeout=clock())
        with lock as held:
            if not held.locked:
                result.warnings.append(f"{transport.host} has no flock: ran without the node lock "
                                       "(install util-linux so that two runs cannot overlap)")
            emit("phase", (transport.host, "gathering facts"))
            values = read_facts(transport.host, wanted, nonce, held.facts, clock())
            check_commands(transport.host, order, values)
            outcomes = _plan(transport.host, order, values, mode, result, emit, dry)
            if not dry and outcomes is not None:
                for s in (s for o in outcomes.values() for s in o.steps if isinstance(s, steps.Upload)):
                    start_compressing(s.artifact)
                _apply(transport, order, outcomes, result, emit, clock(), held.token)
    except TransportError as exc:
        result.unreachable, result.error = True, str(exc)
        emit("unreachable", result)
    except HostError as exc:
        result.error = str(exc)
        emit("host_failed", result)
    except Exception as exc:  # noqa: BLE001 - one host's fault never ends the run: it is that host's failure
        result.error = f"{transport.host}: internal error: {type(exc).__name__}: {exc}"
        emit("host_failed", result)
    finally:
        with contextlib.suppress(Exception):
            transport.close()
    position = {i: k for k, (i, _) in enumerate(order)}
    result.tasks.sort(key=lambda t: position[t.index])  # the order they ran in (reset: backwards, handlers last)
    result.seconds = time.monotonic() - start
    emit("host_done", result)
    return result


def wanted_facts(order: Order, mode: str) -> list[Fact[Any]]:
    """Every fact the host's tasks need, each once (reset asks each task's reverse), and whether the node has
    the commands their steps run."""
    wanted: list[Fact[Any]] = []
    for _, task in order:
        module = MODULES[task.module]
        wanted += module.reverse_facts(task.args) if mode == "reset" and not task.handler else module.facts(task.args)
    commands = needed_commands(order)
    return factlib.distinct(wanted + ([Commands(commands)] if commands else []))


def needed_commands(order: Order) -> tuple[str, ...]:
    return tuple(sorted({c for _, task in order for c in MODULES[task.module].needs_commands}))


def check_commands(host: str, order: Order, values: Facts) -> None:
    """A node that lacks a command some task runs fails here, before any change (not half-way through)."""
    commands = needed_commands(order)
    missing = sorted(values.get(Commands(commands)) or ()) if commands else []
    if missing:
        users = sorted({t.name for _, t in order if set(MODULES[t.module].needs_commands) & set(missing)})
        raise HostError(f"{host}: {', '.join(missing)} not found on the node (needed by: {'; '.join(users)}); "
                        "install it (ip: Debian's iproute2); nothing was changed")


def facts_script(wanted: list[Fact[Any]]) -> tuple[str, str]:
    """The gather script for ``wanted`` and its nonce (random per run)."""
    nonce = secrets.token_hex(4)
    return factlib.script(wanted, nonce), nonce


def run_facts(transport: Transport, wanted: list[Fact[Any]], timeout: float | None) -> dict[Fact[Any], Any]:
    """Run every fact in ``wanted`` in ONE exec and process them (the ``facts`` command; no lock)."""
    if not wanted:
        return {}
    script, nonce = facts_script(wanted)
    return read_facts(transport.host, wanted, nonce, _run_facts(transport, script, timeout), timeout)


def _run_facts(transport: Transport, script: str, timeout: float | None) -> Result:
    try:
        return transport.run(script, timeout)
    except TransportError as exc:
        raise TransportError(f"connection to {transport.host} lost while gathering facts ({exc})") from None


def read_facts(host: str, wanted: list[Fact[Any]], nonce: str, r: Result | None, timeout: float | None) -> dict[Fact[Any], Any]:
    """The facts' values from the gather script's result; HostError when the script itself failed."""
    if not wanted or r is None:
        return {}
    if r.rc == 124:
        raise HostError(f"{host} did not answer within {seconds(timeout)} while gathering facts "
                        "(--timeout/--host-timeout)")
    if r.rc != 0:
        raise HostError(f"{host}: gathering facts failed (exit {r.rc}): {_tail(r.stderr) or '(no stderr)'}")
    raw = factlib.split(r.stdout, wanted, nonce)
    if not raw:
        raise HostError(f"{host}: the node's shell did not run the facts script (it printed none of its markers); "
                        "a start-up file of the SSH user (~/.bashrc) that exits or execs is the usual cause")
    try:
        return factlib.parse_all(wanted, raw)
    except factlib.FactError as exc:
        raise HostError(f"{host}: {exc}") from None


def task_order(tasks: list[BoundTask], mode: str) -> Order:
    """``(index, task)`` in the order they run: reset backwards; handlers always last."""
    order = [(i, t) for i, t in enumerate(tasks) if not t.handler]
    if mode == "reset":
        order.reverse()
    return order + [(i, t) for i, t in enumerate(tasks) if t.handler]


def plan_tasks(order: Order, values: Facts, mode: str) -> dict[int, Outcome | str]:
    """Each task's plan over the facts (its reverse for reset), or the text of why it cannot be planned.

    Pure: the one place plans are made, for plan, apply, reset and ``graph --live``. A handler is
    planned only when a task that notifies it changes something.
    """
    outcomes: dict[int, Outcome | str] = {}
    notified: set[str] = set()
    for i, task in order:
        module = MODULES[task.module]
        if task.handler and task.name not in notified:
            outcomes[i] = Outcome(reason="handler not needed: nothing that notifies it changed")
            continue
        try:
            o = module.reverse(task.args, values) if mode == "reset" and not task.handler else module.plan(task.args, values)
        except ModuleError as exc:
            outcomes[i] = str(exc)
            continue
        except Exception as exc:  # noqa: BLE001 - a fault in one task fails that task on this host, never the run
            outcomes[i] = f"internal error while planning: {type(exc).__name__}: {exc}"
            continue
        outcomes[i] = o
        if o.changed:
            notified.update(task.notify)
    return outcomes


def _plan(host: str, order: Order, values: Facts, mode: str, result: HostResult, emit: Emit,
          dry: bool = False) -> dict[int, Outcome] | None:
    planned = plan_tasks(order, values, mode)
    errors = {i: why for i, why in planned.items() if isinstance(why, str)}
    if errors:
        for i, task in order:
            if i in errors:
                _record(result, emit, _task_result(host, i, task, "failed", error=errors[i]))
        for i, task in order:
            if i in planned and i not in errors:
                _record(result, emit, _task_result(host, i, task, "skipped",
                                                   reason="nothing applied on this host: another task failed to plan"))
        return None
    outcomes = {i: o for i, o in planned.items() if isinstance(o, Outcome)}
    if mode == "plan" or dry:
        for i, task in order:
            _record(result, emit, _outcome_result(host, i, task, outcomes[i]))
    return outcomes


def _apply(transport: Transport, order: Order, outcomes: dict[int, Outcome], result: HostResult, emit: Emit,
           timeout: float | None, token: str | None = None) -> None:
    host = transport.host
    todo = [(i, outcomes[i].steps) for i, _ in order if outcomes[i].changed]
    if not todo:
        return _report_applied(host, order, outcomes, result, emit, None, "", "")
    lost = None
    nonce = secrets.token_hex(6)  # in every marker of the script: no step's output can pass for one
    names = {i: t.name for i, t in order}
    number = {i: k for k, (i, _) in enumerate(todo, 1)}
    emit("phase", (host, f"task 1/{len(todo)}: {names[todo[0][0]]}"))
    buffer = [""]

    def progress(text: str) -> None:  # the script says `MARK step TASK STEP` before each step: show that task
        buffer[0] += text
        *lines, buffer[0] = buffer[0].split("\n")
        marks = [m for m in (steps.step_mark(ln, nonce) for ln in lines) if m is not None]
        if marks and marks[-1][0] in number:
            task = marks[-1][0]
            emit("phase", (host, f"task {number[task]}/{len(todo)}: {names[task]}"))

    transport.on_output = progress
    try:
        r = transport.run(steps.render_script(todo, token, nonce), timeout)
    except TransportError as exc:  # what had arrived tells how far the script got
        lost, r = exc, Result(exc.partial, "", -1)
    finally:
        transport.on_output = None
    if r.rc == 0 and steps.finished(r.stdout, nonce):
        return _report_applied(host, order, outcomes, result, emit, None, "", "")
    if r.rc == steps.FENCED_RC and steps.fenced(r.stdout, nonce):
        why = (f"the node lock was lost before apply (its lease lapsed: the client was paused or its renewals "
               f"did not arrive in {steps.LEASE}s); nothing was changed, and another run may hold the lock now")
        _report_applied(host, order, outcomes, result, emit, (todo[0][0], None), why, "not run: the node lock was lost")
        raise HostError(f"{host}: {why}")
    failed_at = steps.last_step(r.stdout, nonce) or (todo[0][0], None)
    total = sum(len(task_steps) for _, task_steps in todo)
    done = sum(1 for line in r.stdout.splitlines() if steps.step_mark(line, nonce))
    step = outcomes[failed_at[0]].steps[failed_at[1]] if failed_at[1] is not None else None
    where = f"step {done} of {total}" + (f": {step.show()}" if step else "")
    if lost is not None:
        why = f"connection to {host} lost during apply (at {where}); that step may or may not have run"
    elif r.rc == 124:
        stopped = transport.stop_script()
        why = (f"did not finish within {seconds(timeout)} (--timeout/--host-timeout), at {where}; the script was "
               + ("stopped on the node" if stopped else "may still be running on the node"))
    else:
        why = f"command `{step.show()}` exited {r.rc}" if step else f"the script exited {r.rc}"
        why += f": {_tail(r.stderr) or '(no stderr)'}"
    _report_applied(host, order, outcomes, result, emit, failed_at, why,
                    "not run: the connection was lost" if lost else "not run: an earlier task failed")
    if lost is not None:
        raise TransportError(f"{host}: {why}")
    if r.rc == 124:
        raise HostError(f"{host}: {why}")


def _report_applied(host: str, order: Order, outcomes: dict[int, Outcome], result: HostResult, emit: Emit,
                    failed_at: tuple[int, int | None] | None, why: str, after: str) -> None:
    """Each task's result after the apply script: changed, failed (at ``failed_at``) or, after that, skipped."""
    after_failure = False
    for i, task in order:
        o = outcomes[i]
        tr = _outcome_result(host, i, task, o)
        if o.changed and after_failure:
            tr.status, tr.reason = "skipped", after
        elif o.changed and failed_at and failed_at[0] == i:
            tr.status, tr.error = "failed", why
            after_failure = True
        _record(result, emit, tr)


def _task_result(host: str, i: int, task: BoundTask, status: str, **kw: Any) -> TaskResult:
    return TaskResult(host, i, task.play, task.name, task.module, status, where=task.where, **kw)


def _outcome_result(host: str, i: int, task: BoundTask, o: Outcome) -> TaskResult:
    """What a planned task reports: changed (with its commands and diff) or ok (with its reason)."""
    return _task_result(host, i, task, "changed" if o.changed else "ok", reason=o.reason,
                        commands=[s.show() for s in o.steps], diff=o.diff, warnings=o.warnings)


def _record(result: HostResult, emit: Emit, tr: TaskResult) -> None:
    result.tasks.append(tr)
    emit("task", tr)


def _tail(text: str, n: int = STDERR_LINES) -> str:
    return "\n".join(text.strip().splitlines()[-n:])


def run_all(hosts: dict[str, list[BoundTask]], connect: Callable[[str], Transport], mode: str,
            opts: Options = Options(), emit: Emit = lambda kind, obj: None) -> list[HostResult]:
    """Run every host with at most ``opts.forks`` at once; one host's failure never stops the others.

    With ``max_fail_percent``, once more than that share of all hosts has failed
    (unreachable counts), hosts not yet started are not started.
    """
    total, failed = len(hosts), [0]
    guard = threading.Lock()

    def one(host: str) -> HostResult:
        with guard:
            if opts.max_fail_percent is not None and failed[0] * 100 > opts.max_fail_percent * total:
                res = HostResult(host, error=f"not started: more than {opts.max_fail_percent:g}% of hosts failed")
                emit("host_failed", res)
                emit("host_done", res)
                return res
        try:
            res = run_host(connect(host), hosts[host], mode, emit, opts)
        except TransportError as exc:
            res = HostResult(host, unreachable=True, error=str(exc))
            emit("unreachable", res)
            emit("host_done", res)
        except Exception as exc:  # noqa: BLE001 - e.g. the connection could not even be set up
            res = HostResult(host, error=f"{host}: {type(exc).__name__}: {exc}")
            emit("host_failed", res)
            emit("host_done", res)
        if res.failed:
            with guard:
                failed[0] += 1
        return res

    with ThreadPoolExecutor(max_workers=max(1, opts.forks)) as pool:
        return list(pool.map(one, list(hosts)))
