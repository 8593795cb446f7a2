"""``file``: a file with given content, mode and owner, written atomically.

Example task::

    - name: Pod network notes
      file: {path: /etc/provisioner/notes, content: "hello\\n", mode: "0644"}
"""

from __future__ import annotations

from typing import Any

from ..facts import Fact, Facts, value
from ..facts.files import File
from ..steps import Cmd
from .base import ABS, UNIX_NAME, Module, Outcome, file_facts, restore_steps, schema, write_steps


class FileModule(Module):
    name = "file"
    args = schema({
        "path": ABS,
        "content": {"type": "string", "default": ""},
        "mode": {"type": "string", "pattern": r"\A0?[0-7]{3}\Z", "default": "0644"},
        "owner": {**UNIX_NAME, "default": "root"},
        "group": {**UNIX_NAME, "default": "root"},
        "state": {"enum": ["present", "absent"], "default": "present"},
    }, ["path"])

    def facts(self, args: dict[str, Any]) -> list[Fact[Any]]:
        return file_facts([args["path"]])

    def plan(self, args: dict[str, Any], facts: Facts) -> Outcome:
        path, current = args["path"], value(facts, File(args['path']))
        if args["state"] == "absent":  # the playbook asks for it gone, whoever made it
            if current is None:
                return Outcome(reason=f"{path} is already absent")
            return Outcome([Cmd(("rm", "-f", path))], f"remove {path}")
        steps, diff = write_steps(path, args["content"].encode(), facts, args["mode"], args["owner"], args["group"])
        if not steps:
            return Outcome(reason=f"{path} already has the wanted content, mode and owner")
        return Outcome(steps, f"{'update' if current else 'create'} {path}", diff)

    def reverse(self, args: dict[str, Any], facts: Facts) -> Outcome:
        """Puts back what the file was before apply, or removes it if apply created it; else leaves it."""
        path = args["path"]
        if args["state"] == "absent":
            return Outcome(reason=f"{path}: state absent has nothing to undo")
        steps = restore_steps(path, facts)
        if not steps:
            return Outcome(reason=f"{path} is absent or was not made by provisioner")
        return Outcome(steps, f"restore or remove {path}")
