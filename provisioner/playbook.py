"""Playbooks: plays of tasks, Ansible-style YAML, resolved per node with jinja2.

::

    - name: Pod network
      hosts: all                  # all, a group, node names, or a list of them
      tasks:
        - name: Pod bridge
          bridge: {name: "{{ cluster.bridge }}", address: "{{ node.pod_gateway }}/{{ node.pod_prefix }}"}
          when: "node.pods | length > 0"

Templates render in jinja2's sandbox (no attribute of Python's internals is
reachable, so a template can compute but never run code) with StrictUndefined:
a typo is an error with ``file:line``, never an empty string. A value that is one whole ``{{ expr }}`` is evaluated as an
expression and keeps its type (a list stays a list, the string "1.30" stays a
string); anything else renders to text.
"""

from __future__ import annotations

import dataclasses

import contextlib
import fnmatch
import functools
import json
import re
import signal
import tarfile
import threading
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
import jsonschema
from jinja2.environment import TemplateExpression
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from .errors import InputError, PlaybookError, Problem
from .inventory import Inventory
from . import patterns
from .modules import MODULES
from .modules.base import ABS
from .template_vars import shared_vars, template_vars
from .yaml_lines import Document, PathT, format_path, load_file, schema_problems

DEFAULT = "playbooks/site.yaml"

_TASK_KEYS = {"name", "when", "notify", "tags"}
_TAGS = {"anyOf": [{"type": ["string", "integer"]}, {"type": "array", "items": {"type": ["string", "integer"]}}]}
PLAYBOOK_SCHEMA = {
    "$defs": {"task": {"type": "object", "required": ["name"], "properties": {
        "name": {"type": "string", "minLength": 1},
        "when": {"type": ["string", "boolean"]},
        "tags": _TAGS,
        "notify": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}}}},
    "type": "array",
    "items": {
        "type": "object",
        "if": {"required": ["import_playbook"]},
        "then": {"additionalProperties": False, "properties": {"import_playbook": {"type": "string"}, "tags": _TAGS}},
        "else": {"additionalProperties": False, "required": ["name", "hosts", "tasks"],
                 "properties": {
                     "name": {"type": "string"},
                     "hosts": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
                     "tags": _TAGS,
                     "tasks": {"type": "array", "items": {"$ref": "#/$defs/task"}},
                     "handlers": {"type": "array", "items": {"$ref": "#/$defs/task"}},
                 }},
    },
}


def tag_set(value: Any) -> frozenset[str]:
    """``tags:`` as Ansible reads it: a list, or one string of comma-separated tags."""
    if value is None:
        return frozenset()
    items = value if isinstance(value, list) else str(value).split(",")
    return frozenset(t for t in (str(i).strip() for i in items) if t)


UNTAGGED = frozenset({"untagged"})


@dataclass(frozen=True)
class Selection:
    """Which tasks run: ``--tags``, ``--skip-tags`` and ``--start-at-task``, with ansible-playbook's meaning
    (the special tags ``all``, ``always``, ``never``, ``tagged``, ``untagged`` included)."""

    tags: frozenset[str] = frozenset({"all"})
    skip: frozenset[str] = frozenset()
    start_at: str | None = None

    def runs(self, tags: frozenset[str]) -> bool:
        tags = tags or UNTAGGED
        if "always" in tags:
            run = True
        elif "all" in self.tags and "never" not in tags:
            run = True
        elif not tags.isdisjoint(self.tags):
            run = True
        else:
            run = "tagged" in self.tags and tags != UNTAGGED and "never" not in tags
        if run and self.skip:
            if "all" in self.skip:
                run = "always" in tags and "always" not in self.skip
            elif not tags.isdisjoint(self.skip):
                run = False
            elif "tagged" in self.skip and tags != UNTAGGED:
                run = False
        return run

    def starts(self, name: str) -> bool:
        return self.start_at is not None and (name == self.start_at or fnmatch.fnmatchcase(name, self.start_at))


@dataclass(frozen=True)
class Task:
    name: str
    module: str
    args: Any
    when: str | None
    path: PathT  # where the task sits in the playbook, for errors
    notify: tuple[str, ...] = ()
    handler: bool = False
    tags: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Play:
    name: str
    hosts: tuple[str, ...]
    tasks: tuple[Task, ...]
    path: PathT
    doc: Document  # the file it came from (imports keep their own lines)
    tags: frozenset[str] = frozenset()  # the play's own and its import's: every task of it has them too

    def tags_of(self, task: Task) -> frozenset[str]:
        return self.tags | task.tags


@dataclass(frozen=True)
class BoundTask:
    """A task resolved for one node: args rendered and checked against the module.

    A handler runs only when a task that ``notify``-names it changes.
    """

    play: str
    name: str
    module: str
    args: Any
    where: str  # "file:line"
    notify: tuple[str, ...] = ()
    handler: bool = False


@dataclass(frozen=True)
class Playbook:
    doc: Document
    plays: tuple[Play, ...]


def resolve_path(path: str | None) -> Path:
    """The playbook to run: ``path`` as given, else ./playbooks/site.yaml, else the packaged one."""
    if path:
        return Path(path)
    if Path(DEFAULT).is_file():
        return Path(DEFAULT)
    return Path(str(resources.files("provisioner").joinpath(DEFAULT)))


def packaged(name: str) -> Path:
    return Path(str(resources.files("provisioner").joinpath("playbooks", name)))


def _allowed_roots(top: Path) -> tuple[Path, ...]:
    """Where imports may come from: the top playbook's own folder tree, and the packaged playbooks."""
    return (top.resolve().parent, packaged("site.yaml").resolve().parent)


MAX_IMPORT_DEPTH = 32
MAX_PLAYS = 1000


def load_playbook(path: str | Path) -> Playbook:
    """Load ``path``; ``- import_playbook: other.yaml`` items splice in that file's plays.

    An import must stay inside the top playbook's folder tree (or the packaged
    playbooks): a playbook cannot make the tool read, or echo, any other file.
    Each file is read once; imports nest at most MAX_IMPORT_DEPTH deep and splice
    in at most MAX_PLAYS plays in all.
    """
    path = Path(path)
    return _load(path, (), _allowed_roots(path), {})


def _load(path: Path, seen: tuple[Path, ...], roots: tuple[Path, ...], cache: dict[Path, Playbook]) -> Playbook:
    key = path.resolve()
    if key in seen:
        raise PlaybookError([Problem(str(path), None, "", "import_playbook loops back to this file")])
    if len(seen) > MAX_IMPORT_DEPTH:
        raise PlaybookError([Problem(str(path), None, "", f"imports nest deeper than {MAX_IMPORT_DEPTH} files")])
    if key in cache:
        return cache[key]
    try:
        doc = load_file(path)
    except InputError as exc:
        raise PlaybookError(exc.problems) from None
    if not isinstance(doc.data, list):
        raise PlaybookError([Problem(doc.file, 1, "", "a playbook is a list of plays")])
    problems = schema_problems(doc, PLAYBOOK_SCHEMA)
    if problems:
        raise PlaybookError(problems)
    plays: list[Play] = []
    for i, p in enumerate(doc.data):
        if "import_playbook" in p:
            target = path.parent / p["import_playbook"]
            if not any(target.resolve().is_relative_to(root) for root in roots):
                raise PlaybookError([doc.problem((i, "import_playbook"), "import_playbook must name a file inside "
                                                 f"{roots[0]} (the playbook's own folder) or the packaged playbooks")])
            imported = _load(target, seen + (key,), roots, cache).plays
            extra = tag_set(p.get("tags"))
            plays += [dataclasses.replace(play, tags=play.tags | extra) for play in imported] if extra else imported
            if len(plays) > MAX_PLAYS:
                raise PlaybookError([doc.problem((i, "import_playbook"), f"imports add up to more than {MAX_PLAYS} plays")])
            continue
        tasks = []
        entries = [("tasks", j, t) for j, t in enumerate(p["tasks"])] + [("handlers", j, t) for j, t in enumerate(p.get("handlers", []))]
        handler_names = {str(t["name"]) for t in p.get("handlers", [])}
        for section, j, t in entries:
            tpath = (i, section, j)
            modules = [k for k in t if k not in _TASK_KEYS]
            unknown = [k for k in modules if k not in MODULES]
            for k in unknown:
                problems.append(doc.problem(tpath + (k,), f"unknown module or key '{k}' (modules: {', '.join(sorted(MODULES))})"))
            if not unknown and len(modules) != 1:
                problems.append(doc.problem(tpath, f"task '{t['name']}' needs exactly one module, has {len(modules) or 'none'}"))
            if unknown or len(modules) != 1:
                continue
            when = t.get("when")
            if when is not None and not isinstance(when, (str, bool)):
                problems.append(doc.problem(tpath + ("when",), "when is an expression (a string)"))
            notify = t.get("notify", [])
            notify = [notify] if isinstance(notify, str) else notify
            for k, name in enumerate(notify):
                if name not in handler_names:
                    problems.append(doc.problem(tpath + ("notify",), f"notify '{name}': this play has no such handler "
                                                                      f"({', '.join(sorted(handler_names)) or 'none'})"))
            tasks.append(Task(str(t["name"]), modules[0], t[modules[0]], None if when is None else str(when), tpath,
                              tuple(notify), section == "handlers", tag_set(t.get("tags"))))
        hosts = p["hosts"]
        plays.append(Play(p["name"], tuple([hosts] if isinstance(hosts, str) else hosts), tuple(tasks), (i,), doc,
                          tag_set(p.get("tags"))))
    if problems:
        raise PlaybookError(problems)
    cache[key] = Playbook(doc, tuple(plays))
    return cache[key]


MAX_TEXT = 1 << 20  # the most characters a template (or a * or ** inside one) may produce


_WIDE = re.compile(r"\d{7,}")  # a width or precision of a million or more in a format string


def _check_size(*values: Any) -> None:
    """Refuse, before anything is allocated, a number or format width that would make a value too large."""
    for v in values:
        if isinstance(v, int) and not isinstance(v, bool) and abs(v) > MAX_TEXT:
            raise jinja2.exceptions.SecurityError(f"{v} is too large a number for a template argument")
        if isinstance(v, str) and ("%" in v or "{" in v) and _WIDE.search(v):
            raise jinja2.exceptions.SecurityError("a format width or precision that large is refused in a template")


def _bounded(f: Callable[..., Any]) -> Callable[..., Any]:
    """A filter whose arguments (and, for ``format``, its format string) are checked by :func:`_check_size`
    before it runs: ``center``, ``indent``, ``wordwrap``, ``format``…"""
    skip = 2 if getattr(f, "jinja_pass_arg", None) else 1  # (context or environment,) value, arguments

    @functools.wraps(f)  # keeps jinja2's pass_context/pass_environment marks
    def checked(*args: Any, **kwargs: Any) -> Any:
        _check_size(*args[skip:], *kwargs.values())
        if f is jinja2.filters.do_format and args:
            _check_size(args[0])
        return f(*args, **kwargs)
    return checked


class _Sandbox(ImmutableSandboxedEnvironment):
    """jinja2's immutable sandbox (a template cannot change its variables: no ``dict.update``, ``list.append``),
    with sizes bounded before allocation (``*``, ``**``, ``%``, filter and method arguments, format widths)
    so that a template cannot exhaust memory or time."""

    intercepted_binops = frozenset({"*", "**", "%"})

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.filters = {name: _bounded(f) for name, f in self.filters.items()}

    def call(self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # every call a template makes: methods included
        _check_size(*args, *kwargs.values())
        return super().call(__context, __obj, *args, **kwargs)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:  # 'FORMAT'.format(…): the format string is checked when it is looked up
        if getattr(value, "__name__", "") in ("format", "format_map") and isinstance(getattr(value, "__self__", None), str):
            _check_size(value.__self__)
        return super().wrap_str_format(value)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "%":
            _check_size(left if isinstance(left, str) else "")
        if operator == "**" and isinstance(right, (int, float)) and (abs(right) > 128 or
                                                                     (isinstance(left, (int, float)) and abs(left) > 2 ** 64)):
            raise jinja2.exceptions.SecurityError(f"{left!r} ** {right!r} is too large for a template")
        if operator == "*":
            for seq, n in ((left, right), (right, left)):
                if isinstance(seq, (str, list, tuple)) and isinstance(n, int) and len(seq) * n > MAX_TEXT:
                    raise jinja2.exceptions.SecurityError(f"repeating a value {n} times is too large for a template")
        return super().call_binop(context, operator, left, right)


_env = _Sandbox(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
MAX_SECONDS = 2.0  # the longest one template may take to render (nested loops can take forever otherwise)


@functools.lru_cache(maxsize=4096)
def _expression(text: str) -> TemplateExpression:
    """Compiled once per run, rendered once per node: compiling dominated binding at 20 nodes."""
    return _env.compile_expression(text, undefined_to_none=False)


@functools.lru_cache(maxsize=4096)
def _template(text: str) -> jinja2.Template:
    return _env.from_string(text)


class _TooSlow(Exception):
    pass


@contextlib.contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    """Interrupt the block after ``seconds`` (SIGALRM; binding runs in the main thread, before any worker)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def alarm(signum: int, frame: object) -> None:
        raise _TooSlow()

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
_WHOLE = re.compile(r"\A\s*\{\{(?P<expr>(?:(?!\}\}|\{\{).)*)\}\}\s*\Z", re.S)
_DOTTED = re.compile(r"\A\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\s*\Z")
_MISSING = object()


def _lookup(expr: str, ctx: dict[str, Any]) -> Any:
    """``node.pod_subnet`` looked up in the template variables (plain dicts) without compiling a template: most
    playbook values are such paths. Anything else, or a name that is not there, returns _MISSING and goes to
    jinja2 (which gives the same value, or the error message)."""
    m = _DOTTED.match(expr)
    if not m:
        return _MISSING
    value: Any = ctx
    for part in m[1].split("."):
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


def _render(value: Any, ctx: dict[str, Any], doc: Document, path: PathT) -> Any:
    if isinstance(value, str):
        if "{{" not in value and "{%" not in value:
            return value
        whole = _WHOLE.match(value)  # one expression: keep its type (a list stays a list, "1.30" stays a string)
        out = _lookup(whole["expr"], ctx) if whole else _MISSING
        if out is not _MISSING:  # a plain path: no template runs, so no time limit to set (most values)
            return _checked_size(out, value, doc, path)
        try:
            with _time_limit(MAX_SECONDS):
                if whole:
                    out = _expression(whole["expr"])(**ctx)
                    if isinstance(out, jinja2.Undefined):
                        str(out)  # StrictUndefined raises here
                else:
                    out = _template(value).render(ctx)
        except _TooSlow:
            raise PlaybookError([doc.problem(path, f"template {value!r} takes longer than {MAX_SECONDS:g}s to render")]) from None
        except jinja2.TemplateError as exc:
            raise PlaybookError([doc.problem(path, f"template {value!r}: {exc}")]) from None
        except Exception as exc:  # noqa: BLE001 - whatever a template does wrong is the playbook's error
            raise PlaybookError([doc.problem(path, f"template {value!r}: {type(exc).__name__}: {exc}")]) from None
        return _checked_size(out, value, doc, path)
    if isinstance(value, dict):
        return {k: _render(v, ctx, doc, path + (k,)) for k, v in value.items()}
    if isinstance(value, list):
        return [_render(v, ctx, doc, path + (i,)) for i, v in enumerate(value)]
    return value


def _checked_size(out: Any, value: str, doc: Document, path: PathT) -> Any:
    if len(repr(out)) > MAX_TEXT:
        raise PlaybookError([doc.problem(path, f"template {value!r} gives more than {MAX_TEXT} characters")])
    return out


def _when(expr: str, ctx: dict[str, Any], doc: Document, path: PathT) -> bool:
    try:
        with _time_limit(MAX_SECONDS):
            return bool(_expression(expr)(**ctx))
    except _TooSlow:
        raise PlaybookError([doc.problem(path, f"when {expr!r} takes longer than {MAX_SECONDS:g}s")]) from None
    except jinja2.TemplateError as exc:
        raise PlaybookError([doc.problem(path, f"when {expr!r}: {exc}")]) from None
    except Exception as exc:  # noqa: BLE001
        raise PlaybookError([doc.problem(path, f"when {expr!r}: {type(exc).__name__}: {exc}")]) from None


def select_hosts(play: Play, inv: Inventory, doc: Document) -> list[str]:
    """The play's hosts: ``hosts:`` is an Ansible host pattern (a list is joined with ``,``)."""
    try:
        return patterns.match(",".join(play.hosts), [n.name for n in inv.nodes], inv.groups())
    except ValueError as exc:
        raise PlaybookError([doc.problem(play.path + ("hosts",), f"{exc} (groups: {', '.join(sorted(inv.groups()))})")]) from None


def select_tasks(book: Playbook, selection: Selection) -> tuple[list[tuple[Play, tuple[Task, ...]]], bool]:
    """Each play with the tasks ``selection`` keeps (handlers always: they run when notified), and whether
    any task was left out. ``--start-at-task`` that names no task is an error."""
    out, started, partial = [], selection.start_at is None, False
    for play in book.plays:
        kept = []
        for task in play.tasks:
            if not task.handler:
                started = started or selection.starts(task.name)
                if not started or not selection.runs(play.tags_of(task)):
                    partial = True
                    continue
            kept.append(task)
        if not any(not t.handler for t in kept):  # handlers run when a task notifies them: none is left to
            kept = []
        out.append((play, tuple(kept)))
    if not started:
        names = [t.name for p in book.plays for t in p.tasks if not t.handler]
        raise InputError(f"--start-at-task {selection.start_at!r}: no task of {book.doc.file} is named that (tasks: "
                         + "; ".join(names[:8]) + (" …" if len(names) > 8 else "") + ")")
    return out, partial


def bind(book: Playbook, inv: Inventory, hosts: list[str] | None = None,
         selection: Selection = Selection()) -> dict[str, list[BoundTask]]:
    """Every node's task list (``hosts`` only, when given; the tasks ``selection`` keeps), templates rendered and
    args checked. Raises before any I/O."""
    out: dict[str, list[BoundTask]] = {n.name: [] for n in inv.nodes if hosts is None or n.name in hosts}
    problems: list[Problem] = []
    broken: set[tuple[str, PathT]] = set()  # a task that failed on one node is not tried (slowly) on every other
    plays, partial = select_tasks(book, selection)
    shared = shared_vars(inv)
    contexts: dict[str, dict[str, Any]] = {}  # each host's template variables, made once for all its plays
    for play, tasks in plays:
        for host in select_hosts(play, inv, play.doc):
            if host not in out:
                continue
            ctx = contexts.get(host) or contexts.setdefault(host, template_vars(inv, inv.node(host), shared))
            for task in tasks:
                if (play.doc.file, task.path) in broken:
                    continue
                try:
                    bound = _bind_task(play.doc, play, task, ctx)
                except PlaybookError as exc:
                    problems += [p for p in exc.problems if p not in problems]
                    broken.add((play.doc.file, task.path))
                    continue
                if bound is not None:
                    out[host].append(bound)
    if problems:
        raise PlaybookError(problems)
    return {host: _with_paths(tasks, partial) for host, tasks in out.items()}


_ABS = re.compile(ABS["pattern"])


def node_paths(value: Any) -> set[str]:
    """Every absolute node path in a task's arguments (strings the schema's path pattern accepts)."""
    if isinstance(value, str):
        return {value} if _ABS.match(value) else set()
    if isinstance(value, dict):
        return set().union(*(node_paths(v) for v in value.values())) if value else set()
    if isinstance(value, (list, tuple)):
        return set().union(*(node_paths(v) for v in value)) if value else set()
    return set()


def _with_paths(tasks: list[BoundTask], partial: bool = False) -> list[BoundTask]:
    """Tasks of modules that must know the host's paths (``created_dirs``: what reset may remove) get them, and
    whether the run leaves tasks out (``--tags``: then the records of what the others made must stay)."""
    if not any(MODULES[t.module].needs_paths for t in tasks):
        return tasks
    paths = sorted(set().union(*(node_paths(t.args) for t in tasks)))
    return [dataclasses.replace(t, args={**t.args, "paths": paths, "partial": partial})
            if MODULES[t.module].needs_paths else t for t in tasks]


@functools.lru_cache(maxsize=None)
def _item_arrays(module: str) -> dict[str, dict[str, Any]]:
    """The module's top-level arguments that are arrays of one item schema (``routes``, ``pods``): key → item
    schema (one with a ``$ref`` stays with the whole, which holds the ``$defs``)."""
    args_schema = MODULES[module].args
    return {key: sub["items"] for key, sub in args_schema.get("properties", {}).items()
            if isinstance(sub, dict) and sub.get("type") == "array" and isinstance(sub.get("items"), dict)
            and "$ref" not in json.dumps(sub["items"])}


@functools.lru_cache(maxsize=None)
def _validator(module: str) -> jsonschema.Draft202012Validator:
    """One checker per module and run (building it costs more than using it, and every node binds every task),
    for the arguments with the items of :func:`_item_arrays` checked item by item in :func:`_arg_problems`."""
    args_schema = MODULES[module].args
    arrays = _item_arrays(module)
    props = {key: ({k: v for k, v in sub.items() if k != "items"} if key in arrays else sub)
             for key, sub in args_schema.get("properties", {}).items()}
    return jsonschema.Draft202012Validator({**args_schema, "properties": props} if arrays else args_schema)


# (module, array key or "" for the whole arguments, repr of the value) → its problems, for this process
_ITEM_PROBLEMS: dict[tuple[str, str, str], list[tuple[tuple[str | int, ...], str]]] = {}


def _arg_problems(module: str, args: dict[str, Any]) -> list[tuple[tuple[str | int, ...], str]]:
    """Every (path in ``args``, message) the module's argument schema finds, as jsonschema would report them.

    Each distinct item of an array argument is checked once per run (keyed by its ``repr``, which tells
    ``1`` from ``True`` and ``{1: …}`` from ``{"1": …}``): a mesh of N nodes has N-1 routes on every node
    but only N distinct ones, and checking each node's list whole was N² work, the largest part of binding
    200 nodes. Arguments without such arrays are checked once per distinct value (most tasks bind the same
    arguments on every node)."""
    arrays = _item_arrays(module)
    if not arrays:
        memo = (module, "", repr(args))
        if memo not in _ITEM_PROBLEMS:
            _remember(memo, [(tuple(e.absolute_path), e.message) for e in _validator(module).iter_errors(args)])
        return list(_ITEM_PROBLEMS[memo])
    found = [(tuple(e.absolute_path), e.message) for e in _validator(module).iter_errors(args)]
    for key in arrays:
        items = args.get(key) if isinstance(args, dict) else None  # args that are not a mapping: reported above
        for i, item in enumerate(items if isinstance(items, list) else []):
            memo = (module, key, repr(item))
            if memo not in _ITEM_PROBLEMS:
                _remember(memo, [(tuple(e.absolute_path), e.message) for e in _item_validator(module, key).iter_errors(item)])
            found += [((key, i) + path, message) for path, message in _ITEM_PROBLEMS[memo]]
    return found


def _remember(memo: tuple[str, str, str], problems: list[tuple[tuple[str | int, ...], str]]) -> None:
    if len(_ITEM_PROBLEMS) > 20000:
        _ITEM_PROBLEMS.clear()
    _ITEM_PROBLEMS[memo] = problems


@functools.lru_cache(maxsize=None)
def _item_validator(module: str, key: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(_item_arrays(module)[key])


def _may_upload_from(path: Path, ctx: dict[str, Any], doc: Document) -> bool:
    """A local path a task uploads from: the inventory's ``cni.source``, or inside the folder tree of the
    playbook file that names it (a playbook cannot send ~/.ssh/id_ed25519 to every node)."""
    where = path.resolve()
    allowed = [Path(str(ctx["cni"]["source"])).resolve(), Path(doc.file).resolve().parent,
               packaged("site.yaml").resolve().parent]
    return where == allowed[0] or any(where.is_relative_to(root) for root in allowed[1:])


def _bind_task(doc: Document, play: Play, task: Task, ctx: dict[str, Any]) -> BoundTask | None:
    if task.when is not None and not _when(task.when, ctx, doc, task.path + ("when",)):
        return None
    args = _render(task.args, ctx, doc, task.path + (task.module,))
    module = MODULES[task.module]
    problems = [doc.problem(task.path + (task.module,) + path, f"{task.module}: {message} (node {ctx['node']['name']})")
                for path, message in _arg_problems(task.module, args)]
    if problems:
        raise PlaybookError(problems)
    for key in module.local_sources:  # files on this machine that will be uploaded: only from where they may come
        if isinstance(args.get(key), str) and not _may_upload_from(Path(args[key]), ctx, doc):
            raise PlaybookError([doc.problem(task.path + (task.module, key),
                                             f"{task.module}: uploads come only from the inventory's cni.source "
                                             f"({ctx['cni']['source']}) or this playbook's own folder tree, not "
                                             f"{args[key]} (node {ctx['node']['name']})")])
    try:
        args = module.prepare(module.with_defaults(args))
    except (ValueError, OSError, EOFError, tarfile.TarError, zlib.error) as exc:
        raise PlaybookError([doc.problem(task.path + (task.module,), f"{task.module}: {exc} (node {ctx['node']['name']})")]) from None
    where = f"{doc.file}:{doc.line(task.path) or '?'}"
    return BoundTask(play.name, task.name, task.module, args, where, task.notify, task.handler)


__all__ = ["load_playbook", "bind", "resolve_path", "format_path", "BoundTask", "Playbook", "Selection", "select_tasks"]
