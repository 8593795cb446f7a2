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
from ..facts import Fact
from ..ops import Cmd, Step, WriteFile


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


def unified_diff(path: str, old: bytes, new: bytes) -> str:
    try:
        a, b = old.decode().splitlines(keepends=True), new.decode().splitlines(keepends=True)
    except UnicodeDecodeError:
        return f"binary file {path} differs\n"
    return "".join(difflib.unified_diff(a, b, f"{path} (node)" if old else "/dev/null", f"{path} (wanted)"))
