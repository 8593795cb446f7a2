"""Every format provisioner writes into, in one place: values reach files only through these.

A value from an inventory or a playbook never goes into a file by string pasting; it goes
through its format's own serializer, here:

- YAML: :func:`to_yaml` (kubelet and kube-proxy configs, list items indented as kubeadm writes
  them), :func:`yaml_documents` (multi-document manifests), :func:`set_yaml_keys` (top-level keys
  of a user's mapping set in place, comments and order kept; the result is parsed back and must
  equal the merged mapping, else the data is re-serialized whole rather than risk a wrong edit).
- Environment files: :func:`env_value` (double-quoted; backslash, quote, dollar and backquote escaped),
  :func:`env_var` (read a ``NAME=`` line as sh would), :func:`set_env_var` (replace that one line).
- systemd unit settings: :func:`unit_value` (``%`` doubled for specifiers).
- Marked blocks in a text file (resolv.conf): :func:`set_block` / :func:`drop_block`, which give
  the original back byte for byte.

Shell command lines are :mod:`provisioner.shell`'s; JSON is :func:`json.dumps`; containerd's TOML is
tomlkit's (:mod:`provisioner.modules.containerd`).

    >>> set_yaml_keys("# mine\\nkind: KubeletConfiguration\\npodCIDR: 10.0.0.0/24  # old\\n", {"podCIDR": "10.244.1.0/24"})
    '# mine\\nkind: KubeletConfiguration\\npodCIDR: 10.244.1.0/24\\n'
    >>> env_value('a "b" $c')
    '"a \\\\"b\\\\" \\\\$c"'
"""

from __future__ import annotations

import re
import shlex
from typing import Any, Callable

import yaml

from .yaml_lines import SAFE_LOADER


# -- YAML --------------------------------------------------------------------
class _Dumper(yaml.SafeDumper):
    """PyYAML's safe dumper, with list items indented under their key (as kubeadm writes them)."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def to_yaml(doc: dict[str, Any]) -> str:
    return yaml.dump(doc, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=False)


def yaml_documents(docs: list[dict[str, Any]]) -> str:
    """Several YAML documents, ``---`` between them (a manifest for ``kubectl apply -f``)."""
    return "---\n".join(yaml.safe_dump(d, sort_keys=False, default_flow_style=False) for d in docs)


class MergeError(ValueError):
    """The existing file cannot be read as its format (the message says where)."""


def load_mapping(text: str) -> dict[str, Any]:
    """The YAML mapping in ``text`` (empty text is ``{}``); anything else is a :class:`MergeError`."""
    try:
        doc = yaml.load(text, Loader=SAFE_LOADER)
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


def set_yaml_keys(text: str, values: dict[str, Any], dump: Callable[[dict[str, Any]], str] | None = None) -> str:
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


# -- environment files and unit settings ---------------------------------------
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


def env_value(value: str) -> str:
    """A double-quoted value for an EnvironmentFile (and a shell): \\ " $ ` escaped, no line breaks."""
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        raise ValueError(f"control character in {value!r}")
    return '"' + "".join("\\" + ch if ch in '\\"$`' else ch for ch in value) + '"'


def unit_value(value: str) -> str:
    """A double-quoted systemd unit setting: \\ and " escaped, % doubled (specifiers), no line breaks."""
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        raise ValueError(f"control character in {value!r}")
    return '"' + "".join("\\" + ch if ch in '\\"' else "%%" if ch == "%" else ch for ch in value) + '"'


# -- marked blocks ----------------------------------------------------------------
NL_MARK = " (newline added before this block)"


def _find_block(content: str, begin: str, end: str) -> tuple[int, int, bool] | None:
    """(start, stop, added_newline) of the marked block, or None."""
    for mark, added in ((begin + NL_MARK + "\n", True), (begin + "\n", False)):
        if content.startswith(mark):
            start = 0
        elif (at := content.find("\n" + mark)) >= 0:
            start = at + 1
        else:
            continue
        stop = content.find(end + "\n", start)
        if stop >= 0:
            return start, stop + len(end) + 1, added
    return None


def set_block(content: str, begin: str, end: str, body: str, top: bool) -> str:
    """``content`` with the marked block holding ``body``; the rest kept byte for byte.

    A missing block goes first (``top``) or last; an existing one is replaced in
    place. Appending to text without a final newline adds one, and the block's
    first line says so, so that :func:`drop_block` gives the original back exactly.
    """
    found = _find_block(content, begin, end)
    if found:
        start, stop, added = found
        return content[:start] + f"{begin + (NL_MARK if added else '')}\n{body}{end}\n" + content[stop:]
    if top:
        return f"{begin}\n{body}{end}\n" + content
    if content and not content.endswith("\n"):
        return content + f"\n{begin}{NL_MARK}\n{body}{end}\n"
    return content + f"{begin}\n{body}{end}\n"


def drop_block(content: str, begin: str, end: str) -> str:
    """``content`` without the marked block: exactly what it was before :func:`set_block` added it."""
    found = _find_block(content, begin, end)
    if not found:
        return content
    start, stop, added = found
    if added and start > 0 and content[start - 1] == "\n":
        start -= 1
    return content[:start] + content[stop:]
