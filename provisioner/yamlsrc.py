"""Load YAML and remember the line of every value, so errors can say ``file:line``.

>>> doc = load_text("a:\\n  b: [1, 2]\\n", "x.yaml")
>>> doc.data, doc.line(("a", "b", 1))
({'a': {'b': [1, 2]}}, 2)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import InputError, Problem

PathT = tuple[Any, ...]


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


def _build(loader: yaml.SafeLoader, node: yaml.Node, path: PathT, doc: Document) -> Any:
    doc.lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if key in out:
                raise InputError([Problem(doc.file, key_node.start_mark.line + 1,
                                          format_path(path + (key,)), "duplicate key")])
            out[key] = _build(loader, value_node, path + (key,), doc)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(loader, item, path + (i,), doc) for i, item in enumerate(node.value)]
    return loader.construct_object(node, deep=True)


def load_text(text: str, file: str) -> Document:
    """Parse one YAML document; syntax errors become an :class:`InputError` with the line."""
    doc = Document(file, None)
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        doc.data = None if node is None else _build(loader, node, (), doc)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise InputError([Problem(file, line, "", f"YAML syntax: {exc.problem or exc}")]) from None
    except yaml.YAMLError as exc:
        raise InputError([Problem(file, None, "", f"YAML: {exc}")]) from None
    finally:
        loader.dispose()
    return doc


def load_file(path: str | Path) -> Document:
    """Read and parse ``path``; a missing or unreadable file is an :class:`InputError`."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError([Problem(str(path), None, "", f"cannot read: {exc.strerror}")]) from None
    return load_text(text, str(path))


def schema_problems(doc: Document, schema: dict, instance: Any = None, base: PathT = ()) -> list[Problem]:
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
            for key in sorted(k for k in err.instance if k not in allowed):
                hint = _close(key, allowed)
                problems.append(doc.problem(path + (key,), "unknown key" + (f" (did you mean '{hint}'?)" if hint else "")))
            continue
        problems.append(doc.problem(path, _message(err)))
    return problems


def _close(word: str, choices: set[str]) -> str | None:
    import difflib

    match = difflib.get_close_matches(str(word), sorted(choices), n=1, cutoff=0.6)
    return match[0] if match else None


def _message(err) -> str:
    if err.validator == "pattern":
        return f"{err.instance!r} does not match {err.validator_value} ({err.schema.get('description', 'invalid value')})"
    if err.validator == "required":
        return err.message.replace("is a required property", "is required")
    return err.message
