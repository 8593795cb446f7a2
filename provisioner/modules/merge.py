"""Editing files a user already has: our keys in, everything else (comments, order, layout) kept.

- :func:`set_yaml_keys`: top-level keys of a YAML mapping (kubelet's config.yaml) replaced in place
  or appended, each rendered by the YAML serializer; the result is parsed back and must
  equal the merged mapping, otherwise the whole document is re-serialized (comments lost,
  data kept) rather than risk a wrong edit.
- :func:`set_env_var`: one ``NAME=value`` line of an environment file (``/etc/default/kubelet``)
  replaced in place or appended; every other line kept byte for byte.

Example::

    >>> set_yaml_keys("# mine\\nkind: KubeletConfiguration\\npodCIDR: 10.0.0.0/24  # old\\n", {"podCIDR": "10.244.1.0/24"})
    '# mine\\nkind: KubeletConfiguration\\npodCIDR: 10.244.1.0/24\\n'
"""

from __future__ import annotations

import re
import shlex
from typing import Any, Callable

import yaml


class MergeError(ValueError):
    """The existing file cannot be read as its format (the message says where)."""


def load_mapping(text: str) -> dict:
    """The YAML mapping in ``text`` (empty text is ``{}``); anything else is a :class:`MergeError`."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise MergeError(f"is not valid YAML{where} ({getattr(exc, 'problem', None) or exc})") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise MergeError(f"holds a YAML {type(doc).__name__}, not a mapping")
    return doc


def _key_block(lines: list[str], key: str) -> tuple[int, int] | None:
    """[start, stop) of top-level ``key:`` and the lines that belong to its value."""
    pattern = re.compile(r"\A" + re.escape(key) + r"[ \t]*:(?:[ \t]|\Z)")
    for i, line in enumerate(lines):
        if pattern.match(line.rstrip("\n")):
            stop = i + 1
            while stop < len(lines) and (lines[stop][:1] in (" ", "\t") or lines[stop].startswith("- ")
                                         or lines[stop].rstrip("\n") == "-"):
                stop += 1
            return i, stop
    return None


def set_yaml_keys(text: str, values: dict[str, Any], dump: Callable[[dict], str] | None = None) -> str:
    """``text`` (a YAML mapping) with each top-level key of ``values`` set; the rest kept as written."""
    dump = dump or (lambda d: yaml.safe_dump(d, sort_keys=False, default_flow_style=False))
    wanted = {**load_mapping(text), **values}
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    for key, value in values.items():
        rendered = dump({key: value}).splitlines(keepends=True)
        block = _key_block(lines, key)
        if block:
            lines[block[0]:block[1]] = rendered
        else:
            lines += rendered
    out = "".join(lines)
    try:
        if load_mapping(out) == wanted:
            return out
    except MergeError:
        pass
    return dump(wanted)  # an odd layout (flow mapping, anchors, quoted keys): the data, re-serialized


ENV_LINE = r"\A(?:export[ \t]+)?{name}=(.*)\Z"


def env_var(text: str, name: str) -> str | None:
    """The value of the last ``name=…`` line of an environment file, unquoted as sh would; None if absent."""
    pattern = re.compile(ENV_LINE.format(name=re.escape(name)))
    value = None
    for line in text.splitlines():
        m = pattern.match(line.strip())
        if m:
            try:
                value = " ".join(shlex.split(m.group(1), comments=True))
            except ValueError as exc:
                raise MergeError(f"{name}= cannot be read ({exc})") from None
    return value


def set_env_var(text: str, name: str, line: str) -> str:
    """``text`` with its last ``name=…`` line replaced by ``line`` (which ends in a newline), else ``line``
    appended; every other byte kept."""
    pattern = re.compile(ENV_LINE.format(name=re.escape(name)))
    lines = text.splitlines(keepends=True)
    for i in range(len(lines) - 1, -1, -1):
        if pattern.match(lines[i].strip()):
            lines[i] = line if lines[i].endswith("\n") or i < len(lines) - 1 else line.rstrip("\n")
            return "".join(lines)
    if text and not text.endswith("\n"):
        text += "\n"
    return text + line
