"""Load YAML and remember the line of every value, so errors can say ``file:line``.

>>> doc = load_text("a:\\n  b: [1, 2]\\n", "x.yaml")
>>> doc.data, doc.line(("a", "b", 1))
({'a': {'b': [1, 2]}}, 2)
"""

from __future__ import annotations

import contextlib
import os
import stat

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from .errors import InputError, Problem

if TYPE_CHECKING:
    import jsonschema

PathT = tuple[Any, ...]

# libyaml's parser where PyYAML was built with it (about ten times quicker than the pure-Python one, the same
# safe constructor); the pure-Python loader otherwise
SAFE_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def format_path(path: PathT) -> str:
    """``("nodes", 1, "pod_subnet")`` → ``nodes[1].pod_subnet``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


@dataclass
class Document:
    """Plain Python data plus a map from YAML path to 1-based line number."""

    file: str
    data: Any
    lines: dict[PathT, int] = field(default_factory=dict)

    def line(self, path: PathT) -> int | None:
        """Line of ``path``, or of its nearest ancestor that has one."""
        path = tuple(path)
        while path not in self.lines and path:
            path = path[:-1]
        return self.lines.get(path)

    def problem(self, path: PathT, message: str) -> Problem:
        return Problem(self.file, self.line(path), format_path(path), message)


MAX_BYTES = 4 << 20    # an inventory or playbook larger than this is refused, not read
MAX_DEPTH = 64         # nesting of mappings and lists
MAX_VALUES = 50_000    # values after alias expansion: a "billion laughs" file stops here


class _Budget:
    """Counts values as aliases are expanded, so that no document costs more than MAX_VALUES."""

    def __init__(self) -> None:
        self.values = 0


def _build(loader: Any, node: yaml.Node, path: PathT, doc: Document, budget: _Budget,
           stack: tuple[int, ...] = ()) -> Any:
    line = node.start_mark.line + 1
    doc.lines[path] = line
    budget.values += 1
    if budget.values > MAX_VALUES:
        raise InputError([Problem(doc.file, line, format_path(path), f"more than {MAX_VALUES} values once aliases "
                                                                     "are expanded: refused")])
    if len(path) > MAX_DEPTH or id(node) in stack:
        why = "an alias that contains itself" if id(node) in stack else f"nested deeper than {MAX_DEPTH} levels"
        raise InputError([Problem(doc.file, line, format_path(path[:MAX_DEPTH]), why)])
    stack += (id(node),)
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            kline = key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode):
                raise InputError([Problem(doc.file, kline, format_path(path), "a key must be a plain value, not a "
                                                                             "mapping or a list")])
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                raise InputError([Problem(doc.file, kline, format_path(path), f"key {key!r} is not text (YAML reads "
                                                                             "on/off/yes/no and numbers as such: quote it)")])
            if key in out:
                raise InputError([Problem(doc.file, kline, format_path(path + (key,)), "duplicate key")])
            out[key] = _build(loader, value_node, path + (key,), doc, budget, stack)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(loader, item, path + (i,), doc, budget, stack) for i, item in enumerate(node.value)]
    try:
        return loader.construct_object(node, deep=True)
    except (ValueError, TypeError, OverflowError) as exc:  # e.g. !!float x
        raise InputError([Problem(doc.file, line, format_path(path), f"{node.tag}: {exc}")]) from None


def _check_depth(text: str, file: str) -> None:
    """Refuse deep nesting from the event stream (flat, fast) before PyYAML's recursive composer sees it."""
    depth = 0
    deep = f"nested deeper than {MAX_DEPTH} levels"
    try:
        for event in yaml.parse(text, Loader=SAFE_LOADER):
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                depth += 1
                if depth > MAX_DEPTH:
                    line = event.start_mark.line + 1 if event.start_mark is not None else None
                    raise InputError([Problem(file, line, "", deep)])
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                depth -= 1
    except yaml.MarkedYAMLError as exc:  # libyaml's scanner reads ahead and stops at its own limit (1000) first
        if "maximum nesting depth" not in str(exc.problem):
            raise
        mark = exc.problem_mark
        raise InputError([Problem(file, mark.line + 1 if mark else None, "", deep)]) from None


def load_text(text: str, file: str) -> Document:
    """Parse one YAML document; every problem (syntax, depth, aliases, odd keys) becomes an :class:`InputError`."""
    doc = Document(file, None)
    loader = None
    try:
        _check_depth(text, file)
        loader = SAFE_LOADER(text)
        node = loader.get_single_node()
        doc.data = None if node is None else _build(loader, node, (), doc, _Budget())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise InputError([Problem(file, line, "", f"YAML syntax: {exc.problem or exc}")]) from None
    except yaml.reader.ReaderError as exc:  # a NUL or another character YAML does not allow
        line = text.count("\n", 0, exc.position) + 1
        char = exc.character if isinstance(exc.character, str) else chr(exc.character)
        raise InputError([Problem(file, line, "", f"YAML: character {char!r} is not allowed "
                                                  f"(position {exc.position})")]) from None
    except yaml.YAMLError as exc:
        raise InputError([Problem(file, None, "", f"YAML: {exc}")]) from None
    except RecursionError:
        raise InputError([Problem(file, None, "", f"nested too deeply (more than {MAX_DEPTH} levels) or a recursive "
                                                  "alias")]) from None
    finally:
        if loader is not None:
            loader.dispose()
    return doc


def read_local(path: str | Path, limit: int = MAX_BYTES) -> bytes:
    """Up to ``limit`` + 1 bytes of a regular file on this machine. A FIFO, a device or a directory is refused
    without reading (a FIFO would block forever, /dev/zero never ends); opening never blocks."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError as exc:
        raise InputError([Problem(str(path), None, "", f"cannot read: {exc.strerror}")]) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise InputError([Problem(str(path), None, "", "not a regular file (a FIFO, device or directory): refused")])
    with os.fdopen(fd, "rb") as fh:
        try:
            return fh.read(limit + 1)
        except OSError as exc:
            raise InputError([Problem(str(path), None, "", f"cannot read: {exc.strerror}")]) from None


def write_local(path: str | Path, data: str | bytes, mode: int = 0o644,
                check: Callable[[Path], object] | None = None) -> None:
    """Write a file on this machine as the tool writes every output a person names (an inventory, a graph,
    a Corefile): into a fresh temp file beside it (created exclusively), then renamed onto it. A symlink
    planted at the name is replaced, never written through; a reader never sees half a file. ``check``
    (given the temp file's path, beside the target so relative paths in it resolve the same) may refuse it
    by raising: then nothing takes the name."""
    import tempfile

    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode() if isinstance(data, str) else data)
        os.chmod(tmp, mode)
        if check is not None:
            check(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def read_text(path: str | Path) -> str:
    """A local input file as text (an inventory, a playbook, an importer's source): a regular file of at most
    MAX_BYTES, UTF-8; anything else is an :class:`InputError` at its file (and line)."""
    raw = read_local(path)
    if len(raw) > MAX_BYTES:
        raise InputError([Problem(str(path), None, "", f"larger than {MAX_BYTES >> 20} MiB: refused")])
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise InputError([Problem(str(path), line, "", f"not UTF-8 text (byte {exc.start}: {raw[exc.start:exc.start + 1]!r})")]) from None


def load_file(path: str | Path) -> Document:
    """Read and parse ``path``; a missing, unreadable, oversized, non-UTF-8 or not regular file is an
    :class:`InputError`."""
    return load_text(read_text(path).removeprefix("\ufeff"), str(path))


def schema_problems(doc: Document, schema: dict[str, Any], instance: Any = None, base: PathT = ()) -> list[Problem]:
    """Validate with JSON Schema; each error located at its YAML line.

    Unknown keys are reported one by one at their own line, which is what a
    person needs to find a typo.
    """
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema)
    target = doc.data if instance is None else instance
    problems = []
    for err in sorted(validator.iter_errors(target), key=lambda e: list(map(str, e.absolute_path))):
        path = base + tuple(err.absolute_path)
        if err.validator == "additionalProperties" and isinstance(err.instance, dict):
            allowed = set(err.schema.get("properties", {}))
            for key in sorted((k for k in err.instance if k not in allowed), key=str):
                hint = _close(key, allowed)
                problems.append(doc.problem(path + (key,), "unknown key" + (f" (did you mean '{hint}'?)" if hint else "")))
            continue
        problems.append(doc.problem(path, _message(err)))
    return problems


def _close(word: str, choices: set[str]) -> str | None:
    import difflib

    match = difflib.get_close_matches(str(word), sorted(choices), n=1, cutoff=0.6)
    return match[0] if match else None


def _message(err: jsonschema.ValidationError) -> str:
    if err.validator == "pattern":
        return f"{err.instance!r} does not match {err.validator_value} ({err.schema.get('description', 'invalid value')})"
    if err.validator == "required":
        return str(err.message).replace("is a required property", "is required")
    return str(err.message)
