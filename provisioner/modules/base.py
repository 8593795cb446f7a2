"""What every module is: declared args, the facts it needs, a pure plan.

A module never opens a connection. ``plan(args, facts)`` returns an
:class:`Outcome`: the steps to run (empty means nothing to do) and a reason a
person can read ("bridge v-net-0 already up with 10.244.1.1/24").
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from dataclasses import dataclass, field, replace
from collections.abc import Iterable, Sequence
from typing import Any

from ..errors import HostError
from ..inventory.load import schema as inventory_schema
from ..inventory.load import with_defaults
from ..facts import Fact, Facts, value
from ..facts.files import File, Exists, Created
from ..facts.values import FileState
from ..steps import CREATED_DIRS, Cmd, Step, WriteFile

# Argument types shared with the inventory's schema (one definition each): every
# pattern is anchored with \A…\Z, so a trailing newline never passes.
_DEFS = inventory_schema()["$defs"]
ABS = _DEFS["path"]          # an absolute, normalised path with no shell or format syntax in it
IFNAME = _DEFS["ifname"]
PODNAME = _DEFS["podname"]
IPV4 = _DEFS["ipv4"]
CIDR = _DEFS["cidr"]
NET = {"anyOf": [_DEFS["cidr"], _DEFS["ipv6cidr"]], "description": _DEFS["net"]["description"]}  # IPv4 or IPv6
IP = {"anyOf": [_DEFS["ipv4"], _DEFS["ipv6"]], "description": _DEFS["ip"]["description"]}


def per_family(item: dict[str, Any]) -> dict[str, Any]:
    """The schema of an argument given once, or as a list of one per address family (dual-stack)."""
    return {"anyOf": [item, {"type": "array", "items": item, "minItems": 1, "maxItems": 2}]}


def listed(value: Any) -> list[Any]:
    """A per-family argument as a list: one value alone, or the list given."""
    return value if isinstance(value, list) else [value]


def ip_family(text: str) -> int:
    """4 or 6: the family of an address, with or without its prefix (``fd00::1/64``)."""
    return ipaddress.ip_interface(text).version
_PROPS = inventory_schema()["properties"]
_KUBE, _DNS = _PROPS["kubernetes"]["properties"], _PROPS["dns"]["properties"]
DOMAIN = _PROPS["cluster"]["properties"]["domain"]
VERSION = _KUBE["version"]
KUBELET_ARGS = _KUBE["kubelet"]["properties"]["extra_args"]
COREDNS = _DNS["coredns"]["properties"]  # pods, ttl, cache, image: same types and defaults as the inventory's
SEARCH, RESOLV_OPTION = _DNS["search"]["items"], _DNS["options"]["items"]
UNIX_NAME = {"type": "string", "pattern": r"\A[a-z_][a-z0-9_-]{0,31}\Z", "description": "a Unix user or group name"}


class ModuleError(HostError):
    """A module cannot reach the desired state from these facts (e.g. a name is taken)."""


@dataclass(frozen=True)
class Part:
    """The piece of the node some of a plan's steps mend: ``Part("route", "10.244.3.0/24", "route … missing")``.

    ``graph --live`` draws the text in red on that piece (kinds: ``bridge``, ``pod``, ``route``, ``routes``);
    a changed plan without parts is drawn on the node itself, with its reason.
    """

    kind: str
    name: str
    what: str


@dataclass
class Outcome:
    steps: Sequence[Step] = ()
    reason: str = ""
    diff: str = ""
    warnings: list[str] = field(default_factory=list)
    parts: list[Part] = field(default_factory=list)   # what the steps mend, piece by piece (graph --live)

    @property
    def changed(self) -> bool:
        return bool(self.steps)


class Module:
    """Subclasses set ``name`` and ``args`` (a JSON Schema for their arguments)."""

    name = ""
    args: dict[str, Any] = {}
    needs_paths = False  # True: binding passes every node path the host's tasks name as args["paths"]
    needs_commands: tuple[str, ...] = ()  # commands its steps run: a node without one fails before any change
    local_sources: tuple[str, ...] = ()   # args naming files on this machine to upload (binding confines them)

    def with_defaults(self, args: dict[str, Any]) -> dict[str, Any]:
        """``args`` with the defaults of :attr:`args` (the schema) filled in; binding does this once."""
        filled: dict[str, Any] = with_defaults(self.args, args)
        return filled

    def prepare(self, args: dict[str, Any]) -> dict[str, Any]:
        """Local work before any connection (read files to upload); may raise ValueError. Default: none."""
        return args

    def facts(self, args: dict[str, Any]) -> list[Fact[Any]]:
        return []

    def plan(self, args: dict[str, Any], facts: Facts) -> Outcome:
        raise NotImplementedError

    def reverse_facts(self, args: dict[str, Any]) -> list[Fact[Any]]:
        return self.facts(args)

    def reverse(self, args: dict[str, Any], facts: Facts) -> Outcome:
        """Undo what ``plan`` makes; runs twice without error (CNI's DEL rule)."""
        raise NotImplementedError


def schema(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": False, "properties": properties, "required": required}


def file_steps(path: str, content: bytes, current: FileState | None, mode: str = "0644",
               owner: str = "root", group: str = "root") -> tuple[list[Step], str]:
    """Steps and unified diff that bring file ``path`` to ``content``/mode/owner.

    ``current`` is the value of the :class:`~provisioner.facts.files.File` fact.
    """
    mode = mode.zfill(4)
    if current is None:
        return [WriteFile(path, content, mode, owner, group)], unified_diff(path, b"", content)
    if current.content != content:
        return [WriteFile(path, content, mode, owner, group)], unified_diff(path, current.content, content)
    steps: list[Step] = []
    if current.mode != mode:
        steps.append(Cmd(("chmod", mode, path)))
    if (current.owner, current.group) != (owner, group):
        steps.append(Cmd(("chown", f"{owner}:{group}", path)))
    return steps, ""


MANAGED = b"# managed by provisioner"


def backup_of(path: str) -> str:
    return path + ".provisioner-orig"


def text_of(path: str, current: FileState) -> str:
    """A node file's content as text; a file that is not UTF-8 is this task's error, not a crash."""
    try:
        return current.content.decode()
    except UnicodeDecodeError as exc:
        raise ModuleError(f"{path} is not UTF-8 text (byte {exc.start} of {len(current.content)}): "
                          "provisioner edits text files only; fix or move it") from None


def created_by_apply(kind: str, name: str, facts: Facts) -> bool:
    """Did an apply write down (in :data:`provisioner.steps.CREATED`) that it created this? Needs ``Created()``."""
    return (kind, name) in (facts.get(Created()) or frozenset())


def dirs_created(facts: Facts) -> list[str]:
    """The directories apply wrote down as made (CREATED_DIRS), in the order it made them. Needs ``File(CREATED_DIRS)``."""
    record = facts.get(File(CREATED_DIRS))
    return [d for d in record.content.decode(errors="replace").splitlines() if d.startswith("/")] if record else []


def ours(path: str, facts: Facts) -> bool:
    """A file apply created (recorded), or one that says it is ours (written before the record existed)."""
    current = facts.get(File(path))
    return created_by_apply("file", path, facts) or bool(current and current.content.startswith(MANAGED))


def backup_step(path: str, facts: Facts) -> list[Step]:
    """Keep a file someone else made as ``PATH.provisioner-orig`` before the first change (once)."""
    if facts.get(Exists(backup_of(path))) or ours(path, facts):
        return []
    return [Cmd(("cp", "-p", path, backup_of(path)))]


def write_steps(path: str, content: bytes, facts: Facts, mode: str | None = None, owner: str | None = None,
                group: str | None = None) -> tuple[list[Step], str]:
    """:func:`file_steps` with reset's bookkeeping: a new file is written down as created before it is
    written; a file someone else made is backed up before its first change.

    ``mode``/``owner``/``group`` left out keep what an existing file has (a 0600 file stays
    0600); a new file gets 0644 root:root. Needs :func:`file_facts` of ``path``.
    """
    current = value(facts, File(path))
    keep = current or FileState("0644", "root", "root", b"")
    steps, diff = file_steps(path, content, current, mode or keep.mode, owner or keep.owner, group or keep.group)
    if not steps:
        return steps, diff
    if current is None:
        first = steps[0]
        assert isinstance(first, WriteFile), first  # a new file starts with its write
        return [replace(first, creates=("file", path))] + steps[1:], diff
    return backup_step(path, facts) + steps, diff


def restore_steps(path: str, facts: Facts, present: bool | None = None) -> list[Step]:
    """Undo :func:`write_steps`: put the backup back, or remove a file apply created; anything else stays.

    ``present`` says whether the file is there when ``facts`` hold no ``file:`` fact for it.
    """
    if facts.get(Exists(backup_of(path))):
        return [Cmd(("mv", "-f", backup_of(path), path))]
    if present is None:
        present = facts.get(File(path)) is not None
    if present and ours(path, facts):
        return [Cmd(("rm", "-f", path))]
    return []


SECRET = re.compile(r"(?i)\A([-+ ]?\s*[\"']?[\w.-]*(?:password|passwd|token|auth|secret|key)[\w.-]*[\"']?\s*[=:]\s*)(\S.*)\Z")


def redact(line: str) -> str:
    """``password = "hunter2"`` → ``password = <redacted>``: diffs never show a value under a key that looks secret."""
    m = SECRET.match(line.rstrip("\n"))
    return m.group(1) + "<redacted>" + line[len(line.rstrip("\n")):] if m else line


def unified_diff(path: str, old: bytes, new: bytes) -> str:
    try:
        a, b = old.decode().splitlines(keepends=True), new.decode().splitlines(keepends=True)
    except UnicodeDecodeError:
        return f"binary file {path} differs ({len(old)} -> {len(new)} bytes)\n"
    return "".join(redact(line) for line in difflib.unified_diff(a, b, f"{path} (node)" if old else "/dev/null",
                                                                  f"{path} (wanted)"))


def file_facts(paths: Iterable[str]) -> list[Fact[Any]]:
    """Each file, its backup and the record of what apply created: what reset needs to put back what was there."""
    return [Created()] + [f for p in paths for f in (File(p), Exists(backup_of(p)))]


def plan_files(wanted: dict[str, str], facts: Facts, noop: str) -> Outcome:
    steps, diffs, names = [], [], []
    for path, text in wanted.items():
        s, d = write_steps(path, text.encode(), facts)
        if s:
            steps += s
            diffs.append(d)
            names.append(path)
    if not steps:
        return Outcome(reason=noop)
    return Outcome(steps, "write " + ", ".join(names), "".join(diffs))


def remove_files(wanted: dict[str, str], facts: Facts) -> Outcome:
    steps, names = [], []
    for path in wanted:
        s = restore_steps(path, facts)
        steps += s
        names += [path] if s else []
    if not steps:
        return Outcome(reason="nothing of ours left: " + ", ".join(wanted))
    return Outcome(steps, "restore or remove " + ", ".join(names))


class FilesModule(Module):
    """A module that only writes whole files: ``files(args)`` says which, with what content.

    Pre-existing files are backed up on the first write and put back on reset.
    """

    def files(self, args: dict[str, Any]) -> dict[str, str]:
        raise NotImplementedError

    def noop(self, args: dict[str, Any]) -> str:
        """The reason given when every file is already as wanted."""
        raise NotImplementedError

    def facts(self, args: dict[str, Any]) -> list[Fact[Any]]:
        return file_facts(self.files(args))

    def plan(self, args: dict[str, Any], facts: Facts) -> Outcome:
        return plan_files(self.files(args), facts, self.noop(args))

    def reverse(self, args: dict[str, Any], facts: Facts) -> Outcome:
        return remove_files(self.files(args), facts)
