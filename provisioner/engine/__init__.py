"""The engine's one entry point: ``plan``, ``apply``, ``reset``, ``facts`` and ``verify`` all go through :func:`run`.

A :class:`Request` holds the inventory, the playbook, the node selection
(``--limit``, applied here and nowhere else) and the options; :func:`run` gives
back a :class:`Result`. The retry record (``--retry-failed``) is read and
written here. The CLI only builds requests and prints results.

>>> from provisioner.inventory import load_inventory
>>> inv = load_inventory("inventories/example.yaml")   # doctest: +SKIP
>>> run(Request("plan", inv, limit="node1"), emit=print)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from .. import patterns
from ..errors import HostError, InputError, printable
from ..facts import Fact, Facts, value
from ..inventory import Inventory, Node
from ..playbook import BoundTask
from ..transport import Transport
from . import retry_record
from .runner import Emit, HostResult, Options, run_all

if TYPE_CHECKING:
    from ..playbook import Selection

Bound = dict[str, list[BoundTask]]  # each host's tasks, bound
Read = dict[str, dict[Fact[Any], Any] | str]  # each host's fact values, or why it could not be read

R = TypeVar("R")
MODES = ("plan", "apply", "reset", "facts", "verify", "graph")


@dataclass(frozen=True)
class Request:
    """What to do (``mode``), where (``inventory``, ``limit``) and how (``options``)."""

    mode: str
    inventory: Inventory
    playbook: str | None = None          # plan/apply: default playbooks/site.yaml; reset: playbooks/reset.yaml
    limit: str | None = None             # comma-separated names or globs
    retry_failed: bool = False           # only the hosts the retry record says failed last time
    options: Options = field(default_factory=Options)
    pytest_args: tuple[str, ...] = ()    # verify only
    full: bool = False                   # verify only: every pod pings every pod
    live: bool = False                   # graph only: read the nodes and mark what differs
    tags: tuple[str, ...] = ()           # --tags (none: all), --skip-tags, --start-at-task: which tasks run
    skip_tags: tuple[str, ...] = ()
    start_at: str | None = None


@dataclass
class Result:
    """``hosts`` (plan/apply/reset), ``facts`` (facts) or ``exit_code`` (verify); ``note`` when nothing ran."""

    mode: str
    hosts: list[HostResult] = field(default_factory=list)
    facts: dict[str, dict[str, Any]] = field(default_factory=dict)
    graph: dict[str, Any] = field(default_factory=dict)   # graph: nodes, edges, drift
    note: str = ""
    exit_code: int = 0

    @property
    def failed(self) -> bool:
        return (self.exit_code != 0 or any(h.failed for h in self.hosts) or any("error" in f for f in self.facts.values())
                or bool(self.graph.get("drift")))


def select(inv: Inventory, limit: str | None) -> list[str]:
    """The nodes a run works on, in inventory order: all, or those an Ansible host pattern selects
    (``workers:!node3``, ``etcd:&workers``, ``~node[23]``, ``@retry-file``; see :mod:`provisioner.patterns`)."""
    names = [n.name for n in inv.nodes]
    if not limit:
        return names
    try:
        chosen = patterns.match(limit, names, inv.groups(), files=True)
    except ValueError as exc:
        raise InputError(f"--limit {printable(limit)}: {printable(str(exc))}") from None
    if not chosen:
        raise InputError(f"--limit {printable(limit)}: no node is left (nodes: {', '.join(names)})")
    return chosen


def run(request: Request, emit: Emit = lambda kind, obj: None) -> Result:
    """Do ``request``; bad input raises :class:`~provisioner.errors.InputError` before any node is contacted."""
    if request.mode not in MODES:
        raise ValueError(f"unknown mode {request.mode!r}")
    inv = request.inventory
    hosts = select(inv, request.limit)
    if request.mode == "facts":
        from .node_summary import summarize, wanted

        read = read_nodes(inv, hosts, lambda node: wanted(), request.options)
        return Result("facts", facts={h: _readable(h, lambda why: {"node": h, "error": why}, summarize, inv, inv.node(h), v)
                                      for h, v in read.items()})
    if request.mode == "graph":
        return Result("graph", graph=_graph(inv, hosts, request))
    if request.mode == "verify":
        from ..verify import run_suite

        return Result("verify", exit_code=run_suite(inv, hosts, list(request.pytest_args), full=request.full))
    if request.retry_failed:
        hosts, note = _retry(inv, hosts)
        if note:
            return Result(request.mode, note=note)
    tasks = bind(inv, request.mode, request.playbook, hosts, request)
    return Result(request.mode, hosts=_run_tasks(inv, request.mode, tasks, request.options, emit))


def selection(request: Request | None) -> Selection:
    """The tasks a request runs (:class:`provisioner.playbook.Selection`): its --tags, --skip-tags, --start-at-task."""
    from ..playbook import Selection

    if request is None:
        return Selection()
    if request.start_at is not None and request.mode == "reset":
        raise InputError("--start-at-task: reset runs the playbook backwards; choose what it undoes with --tags")
    return Selection(frozenset(request.tags) or frozenset({"all"}), frozenset(request.skip_tags), request.start_at)


def playbook_path(mode: str, playbook: str | None) -> Path:
    from ..playbook import packaged, resolve_path

    return resolve_path(playbook or (str(packaged("reset.yaml")) if mode == "reset" else None))


def bind(inv: Inventory, mode: str, playbook: str | None, hosts: list[str] | None = None,
         request: Request | None = None) -> Bound:
    """The playbook loaded and bound to ``hosts`` (all by default): every template rendered, every arg checked."""
    from ..playbook import bind as bind_playbook
    from ..playbook import load_playbook

    return bind_playbook(load_playbook(playbook_path(mode, playbook)), inv, hosts, selection(request))


def list_tasks(request: Request) -> dict[str, Any]:
    """The plays and the tasks ``request`` would run, with their tags (``--list-tasks``); no node is contacted."""
    from ..playbook import load_playbook, select_hosts, select_tasks

    path = playbook_path(request.mode, request.playbook)
    book = load_playbook(path)
    plays, _ = select_tasks(book, selection(request))
    if request.mode == "reset":  # reset runs every task's reverse, last first
        plays = [(p, tuple(reversed(ts))) for p, ts in reversed(plays)]
    hosts = select(request.inventory, request.limit)
    return {"playbook": str(path), "plays": [
        {"name": p.name, "hosts": list(p.hosts), "tags": sorted(p.tags),
         "nodes": [h for h in select_hosts(p, request.inventory, p.doc) if h in hosts],
         "tasks": [{"name": t.name, "module": t.module, "tags": sorted(p.tags_of(t)), "handler": t.handler}
                   for t in ts]}
        for p, ts in plays]}


def coredns_files(inv: Inventory, playbook: str | None = None) -> tuple[str, str]:
    """The Corefile and the CoreDNS manifest exactly as apply writes them: the playbook's ``coredns`` task,
    bound to the first node, rendered by the module itself (one renderer for both)."""
    from ..modules.dns import CoreDNSModule

    first = inv.nodes[0].name
    tasks = [t for t in bind(inv, "apply", playbook, [first])[first] if t.module == "coredns"]
    if not tasks:
        raise InputError(f"{playbook or 'playbooks/site.yaml'} has no coredns task for {first}")
    args = tasks[0].args
    files = CoreDNSModule().files(args)
    return files[args["corefile"]], files[args["manifest"]]


def read_nodes(inv: Inventory, hosts: list[str], wanted: Callable[[Node], list[Fact[Any]]], opts: Options) -> Read:
    """Each node's facts (``wanted(node)``) in one exec, all nodes at once, no lock: ``{host: values}``, or
    ``{host: why not}`` for a node that could not be read (``facts`` and ``graph --live``)."""
    from concurrent.futures import ThreadPoolExecutor

    from ..errors import HostError
    from .runner import run_facts

    connect = _connect(inv, opts)

    def one(name: str) -> tuple[str, dict[Fact[Any], Any] | str]:
        try:
            t = connect(name)
            try:
                return name, run_facts(t, wanted(inv.node(name)), opts.timeout)
            finally:
                t.close()
        except HostError as exc:
            return name, str(exc)
        except Exception as exc:  # noqa: BLE001 - whatever a node answers ends as that node's error, never a traceback
            return name, _unreadable(name, exc)

    with ThreadPoolExecutor(max_workers=max(1, opts.forks)) as pool:
        return dict(pool.map(one, hosts))


def _graph(inv: Inventory, hosts: list[str], request: Request) -> dict[str, Any]:
    """The planned graph; with ``live``, each node's drift is what ``plan`` with the same playbook would change
    there (the modules' own plans over the same facts, made by :func:`runner.plan_tasks`)."""
    from .. import graph
    from ..facts import distinct
    from ..facts.net import Routes, Routes6
    from . import runner

    g = graph.plan_graph(inv, hosts)
    if not request.live:
        return g
    orders = {h: [(i, t) for i, t in runner.task_order(tasks, "plan") if not t.handler]  # handlers mend nothing
              for h, tasks in bind(inv, "plan", request.playbook, hosts, request).items()}

    def wanted(node: Node) -> list[Fact[Any]]:
        return distinct(runner.wanted_facts(orders[node.name], "plan") + [Routes()]
                        + ([Routes6()] if 6 in inv.cluster.families else []))

    def planned(inv: Inventory, node: Node, values: Facts) -> list[dict[str, Any]]:
        order = orders[node.name]
        try:
            runner.check_commands(node.name, order, values)
        except HostError as exc:  # a command the steps need is missing: nothing can be planned
            return [{"id": f"node:{node.name}", "what": printable(str(exc))}]
        outcomes = runner.plan_tasks(order, values, "plan")
        six = values.get(Routes6())
        return graph.drift(inv, node, [(t, outcomes[i]) for i, t in order], (value(values, Routes()) or []) + (six or []))

    read = read_nodes(inv, hosts, wanted, request.options)
    return graph.mark(g, {h: _readable(h, lambda why: graph.drift(inv, inv.node(h), None, error=why), planned, inv,
                                       inv.node(h), v) for h, v in read.items()})


def _readable(host: str, failed: Callable[[str], R], use: Callable[[Inventory, Node, Facts], R], inv: Inventory, node: Node,
              values: dict[Fact[Any], Any] | str) -> R:
    """``use(inv, node, values)`` for a node that was read; ``failed(why)`` for one that was not, or whose
    answer has a shape ``use`` cannot take (a node's answer is data it controls: never a traceback)."""
    if isinstance(values, str):
        return failed(values)
    try:
        return use(inv, node, values)
    except Exception as exc:  # noqa: BLE001
        return failed(_unreadable(host, exc))


def _unreadable(host: str, exc: Exception) -> str:
    return f"{host}: its answer could not be read ({type(exc).__name__}: {str(exc)[:200]})"


def _retry(inv: Inventory, hosts: list[str]) -> tuple[list[str], str]:
    again = retry_record.failed_hosts(inv.path)
    if again is None:
        raise InputError(f"--retry-failed: no previous run recorded for {inv.path} ({retry_record.path_for(inv.path)})")
    chosen = [h for h in hosts if h in again]
    return chosen, "" if chosen else "--retry-failed: no host failed in the previous run; nothing to do"


def _run_tasks(inv: Inventory, mode: str, tasks: Bound, opts: Options, emit: Emit) -> list[HostResult]:
    dry = mode == "plan" or opts.check
    if not dry:
        retry_record.start(inv.path, mode, list(tasks))

    def recorded(kind: str, obj: Any) -> None:
        emit(kind, obj)
        if kind == "host_done" and not dry:  # written as each host ends: a killed run still leaves it
            retry_record.record(inv.path, mode, [obj])

    return run_all(tasks, _connect(inv, opts), mode, opts, recorded)


def _connect(inv: Inventory, opts: Options) -> Callable[[str], Transport]:
    from ..transport.ssh import SSHTransport

    return lambda host: SSHTransport(inv, inv.node(host), retries=opts.retries)


__all__ = ["MODES", "Options", "Request", "Result", "bind", "coredns_files", "run", "select"]
