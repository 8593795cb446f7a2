"""``created_dirs``: reset removes the directories apply created, and only those.

Every directory an apply makes (for /etc/cni/bin, /etc/provisioner, …) is written
down on the node in /var/lib/provisioner/created-dirs. This module's reverse
removes them, deepest first, when they are empty, and then the records
themselves (the other things apply made are in /var/lib/provisioner/created,
which each module's reverse reads). It is the first task of
site.yaml, so reset, which runs tasks backwards, gets to it last.

The record is on the node, where anyone with root can write to it: reset removes a
recorded directory only when it is one of the paths the playbook's own tasks name
(``paths``, filled in by binding), an ancestor of one, or inside one; a line ``/srv``
that no task names is left alone.
"""

from __future__ import annotations

from typing import Any

from ..facts import Fact, Facts, value
from ..facts.files import File, Created
from ..steps import CREATED, CREATED_DIRS, STATE_DIR, Cmd, RemoveEmptyDir, Step
from .base import ABS, Module, Outcome, dirs_created, schema


def named(directory: str, paths: list[str]) -> bool:
    """Is ``directory`` one of ``paths``, an ancestor of one, or inside one (never inside ``/`` alone)?"""
    d = directory.rstrip("/")
    if not d:
        return False  # "/" is never apply's to remove
    return any(p == d or p.startswith(d + "/") or (p != "/" and d.startswith(p + "/")) for p in paths)


class CreatedDirsModule(Module):
    name = "created_dirs"
    args = schema({"paths": {"type": "array", "items": ABS, "default": [],
                             "description": "every node path the playbook's tasks name (binding fills it in)"},
                   "partial": {"type": "boolean", "default": False,
                               "description": "the run leaves tasks out (--tags): the records stay (binding fills it in)"}},
                  [])
    needs_paths = True

    def facts(self, args: dict[str, Any]) -> list[Fact[Any]]:
        return [File(CREATED_DIRS), Created()]

    def plan(self, args: dict[str, Any], facts: Facts) -> Outcome:
        return Outcome(reason=f"directories this tool creates are listed in {CREATED_DIRS}")

    def reverse(self, args: dict[str, Any], facts: Facts) -> Outcome:
        record = value(facts, File(CREATED_DIRS))
        if record is None:
            if facts.get(Created()):
                return Outcome([Cmd(("rm", "-f", CREATED)), RemoveEmptyDir(STATE_DIR)], f"remove {CREATED}")
            return Outcome(reason="no directories created by provisioner are left")
        lines = dirs_created(facts)
        allowed = list(args.get("paths", [])) + [STATE_DIR]  # and the tool's own state (cni-results, …)
        made = {d for d in lines if named(d, allowed)}
        foreign = sorted(set(lines) - made)
        deepest_first = sorted(made, key=lambda d: (-d.count("/"), d))
        steps: list[Step] = [RemoveEmptyDir(d) for d in deepest_first]
        if args.get("partial"):  # the tasks left out still have things on the node that only these records name
            return Outcome(steps, "remove the directories of the tasks that ran, where empty (the records stay: "
                                  "tasks were left out)")
        steps += [Cmd(("rm", "-f", CREATED_DIRS, CREATED)), RemoveEmptyDir(STATE_DIR)]
        note = (f"; left alone, as no task names them: {', '.join(foreign[:5])}" + (" …" if len(foreign) > 5 else "")
                if foreign else "")
        return Outcome(steps, f"remove {len(deepest_first)} directory(ies) apply created, where empty{note}",
                       warnings=[f"{CREATED_DIRS} lists directories no task names (left alone): "
                                 f"{', '.join(foreign[:5])}"] if foreign else [])
