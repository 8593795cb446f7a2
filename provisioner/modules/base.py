"""What every module is: declared args, the facts it needs, a pure plan.

A module never opens a connection. ``plan(args, facts)`` returns an
:class:`Outcome`: the steps to run (empty means nothing to do) and a reason a
person can read ("bridge v-net-0 already up with 10.244.1.1/24").
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

from ..errors import HostError
from ..facts import Fact, files
from ..inventory.load import schema as inventory_schema
from ..ops import Cmd, Step, WriteFile

# Argument types shared with the inventory's schema (one definition each): every
# pattern is anchored with \A…\Z, so a trailing newline never passes.
_DEFS = inventory_schema()["$defs"]
ABS = _DEFS["path"]          # an absolute, normalised path with no shell or format syntax in it
IFNAME = _DEFS["ifname"]
PODNAME = _DEFS["podname"]
IPV4 = _DEFS["ipv4"]
CIDR = _DEFS["cidr"]
_PROPS = inventory_schema()["properties"]
_KUBE, _DNS = _PROPS["kubernetes"]["properties"], _PROPS["dns"]["properties"]
DOMAIN = _PROPS["cluster"]["properties"]["domain"]
VERSION = _KUBE["version"]
KUBELET_ARG = _KUBE["kubelet"]["properties"]["extra_args"]["items"]
SEARCH, RESOLV_OPTION = _DNS["search"]["items"], _DNS["options"]["items"]
IMAGE = _DNS["coredns"]["properties"]["image"]
UNIX_NAME = {"type": "string", "pattern": r"\A[a-z_][a-z0-9_-]{0,31}\Z", "description": "a Unix user or group name"}


class ModuleError(HostError):
    """A module cannot reach the desired state from these facts (e.g. a name is taken)."""


@dataclass
class Outcome:
    steps: list[Step] = field(default_factory=list)
    reason: str = ""
    diff: str = ""
    warnings: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.steps)


class Module:
    """Subclasses set ``name`` and ``args`` (a JSON Schema for their arguments)."""

    name = ""
    args: dict[str, Any] = {}

    def prepare(self, args: dict) -> dict:
        """Local work before any connection (read files to upload); may raise ValueError. Default: none."""
        return args

    def facts(self, args: dict) -> list[Fact]:
        return []

    def plan(self, args: dict, facts: dict[str, Any]) -> Outcome:
        raise NotImplementedError

    def reverse_facts(self, args: dict) -> list[Fact]:
        return self.facts(args)

    def reverse(self, args: dict, facts: dict[str, Any]) -> Outcome:
        """Undo what ``plan`` makes; runs twice without error (CNI's DEL rule)."""
        raise NotImplementedError


def schema(properties: dict, required: list[str]) -> dict:
    return {"type": "object", "additionalProperties": False, "properties": properties, "required": required}


def file_steps(path: str, content: bytes, current: dict | None, mode: str = "0644",
               owner: str = "root", group: str = "root") -> tuple[list[Step], str]:
    """Steps and unified diff that bring file ``path`` to ``content``/mode/owner.

    ``current`` is the :func:`provisioner.facts.files.file` fact.
    """
    mode = mode.zfill(4)
    if current is None:
        return [WriteFile(path, content, mode, owner, group)], unified_diff(path, b"", content)
    if current["content"] != content:
        return [WriteFile(path, content, mode, owner, group)], unified_diff(path, current["content"], content)
    steps: list[Step] = []
    if current["mode"] != mode:
        steps.append(Cmd(("chmod", mode, path)))
    if (current["owner"], current["group"]) != (owner, group):
        steps.append(Cmd(("chown", f"{owner}:{group}", path)))
    return steps, ""


MANAGED = b"# managed by provisioner"


def backup_of(path: str) -> str:
    return path + ".provisioner-orig"


def replace_steps(path: str, content: bytes, current: dict | None, backup_exists: bool,
                  mode: str = "0644") -> tuple[list[Step], str]:
    """Like :func:`file_steps`, but a file someone else wrote is first kept as ``PATH.provisioner-orig``."""
    steps, diff = file_steps(path, content, current, mode)
    if steps and current is not None and not backup_exists and not current["content"].startswith(MANAGED):
        steps.insert(0, Cmd(("cp", "-p", path, backup_of(path))))
    return steps, diff


def restore_steps(path: str, current: dict | None, backup_exists: bool) -> list[Step]:
    """Put back what was there before :func:`replace_steps`: the backup, or nothing."""
    if backup_exists:
        return [Cmd(("mv", "-f", backup_of(path), path))]
    if current is not None and current["content"].startswith(MANAGED):
        return [Cmd(("rm", "-f", path))]
    return []


def unified_diff(path: str, old: bytes, new: bytes) -> str:
    try:
        a, b = old.decode().splitlines(keepends=True), new.decode().splitlines(keepends=True)
    except UnicodeDecodeError:
        return f"binary file {path} differs\n"
    return "".join(difflib.unified_diff(a, b, f"{path} (node)" if old else "/dev/null", f"{path} (wanted)"))


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


def file_facts(paths) -> list[Fact]:
    """Each file and its backup: what reset needs to put back what was there before."""
    return [f for p in paths for f in (files.file(p), files.exists(backup_of(p)))]


def plan_files(wanted: dict[str, str], facts: dict, noop: str) -> Outcome:
    steps, diffs, names = [], [], []
    for path, text in wanted.items():
        s, d = replace_steps(path, text.encode(), facts[f"file:{path}"], facts.get(f"exists:{backup_of(path)}", False))
        if s:
            steps += s
            diffs.append(d)
            names.append(path)
    if not steps:
        return Outcome(reason=noop)
    return Outcome(steps, "write " + ", ".join(names), "".join(diffs))


def remove_files(wanted: dict[str, str], facts: dict) -> Outcome:
    steps, names = [], []
    for path in wanted:
        s = restore_steps(path, facts.get(f"file:{path}"), facts.get(f"exists:{backup_of(path)}", False))
        steps += s
        names += [path] if s else []
    if not steps:
        return Outcome(reason="nothing of ours left: " + ", ".join(wanted))
    return Outcome(steps, "restore or remove " + ", ".join(names))


class FilesModule(Module):
    """A module that only writes whole files: ``files(args)`` says which, with what content.

    Pre-existing files are backed up on the first write and put back on reset.
    """

    def files(self, args: dict) -> dict[str, str]:
        raise NotImplementedError

    def noop(self, args: dict) -> str:
        """The reason given when every file is already as wanted."""
        raise NotImplementedError

    def facts(self, args):
        return file_facts(self.files(args))

    def plan(self, args, facts):
        return plan_files(self.files(args), facts, self.noop(args))

    def reverse(self, args, facts):
        return remove_files(self.files(args), facts)
