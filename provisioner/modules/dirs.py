"""``created_dirs``: reset removes the directories apply created, and only those.

Every directory an apply makes (for /etc/cni/bin, /etc/provisioner, …) is written
down on the node in /var/lib/provisioner/created-dirs. This module's reverse
removes them, deepest first, when they are empty, and then the records
themselves (the other things apply made are in /var/lib/provisioner/created,
which each module's reverse reads). It is the first task of
site.yaml, so reset, which runs tasks backwards, gets to it last.
"""

from __future__ import annotations

from ..facts.files import File, Created
from ..steps import CREATED, CREATED_DIRS, STATE_DIR, Cmd, RemoveEmptyDir
from .base import Module, Outcome, schema


class CreatedDirsModule(Module):
    name = "created_dirs"
    args = schema({}, [])

    def facts(self, args):
        return [File(CREATED_DIRS), Created()]

    def plan(self, args, facts):
        return Outcome(reason=f"directories this tool creates are listed in {CREATED_DIRS}")

    def reverse(self, args, facts):
        record = facts[File(CREATED_DIRS)]
        if record is None:
            if facts.get(Created()):
                return Outcome([Cmd(("rm", "-f", CREATED)), RemoveEmptyDir(STATE_DIR)], f"remove {CREATED}")
            return Outcome(reason="no directories created by provisioner are left")
        made = [d for d in record["content"].decode().splitlines() if d.startswith("/")]
        deepest_first = sorted(set(made), key=lambda d: (-d.count("/"), d))
        steps = [RemoveEmptyDir(d) for d in deepest_first]
        steps += [Cmd(("rm", "-f", CREATED_DIRS, CREATED)), RemoveEmptyDir(STATE_DIR)]
        return Outcome(steps, f"remove {len(deepest_first)} directory(ies) apply created, where empty")
