"""``sysctl``: kernel settings now (via /proc/sys) and after reboot (a sysctl.d file).

``net.bridge.*`` keys exist only once ``br_netfilter`` is loaded, so the module
loads it first (and lists it in modules-load.d) when any such key is asked for.

    - name: Forward and filter pod traffic
      sysctl:
        settings: {net.ipv4.ip_forward: 1, net.bridge.bridge-nf-call-iptables: 1}
"""

from __future__ import annotations

from typing import Any

from ..facts import Fact, Facts
from ..facts.files import File, Exists, Sysctl, sysctl_path
from ..facts.values import FileState
from ..steps import Cmd, Step
from .base import ABS, Module, ModuleError, Outcome, file_facts, restore_steps, schema, write_steps

BRIDGE_DIR = "/proc/sys/net/bridge"
ABSENT = "(absent)"  # a setting that did not exist before the first apply (br_netfilter not loaded)


class SysctlModule(Module):
    name = "sysctl"
    args = schema({
        "settings": {"type": "object", "minProperties": 1,
                     "propertyNames": {"pattern": r"\A[a-z0-9_]+(\.[a-zA-Z0-9_-]+)+\Z"},
                     "additionalProperties": {"anyOf": [{"type": "integer"},
                                                        {"type": "string", "pattern": r"\A[\x20-\x7e]{0,256}\Z"}]}},
        "persist": {"anyOf": [ABS, {"type": "null"}], "default": "/etc/sysctl.d/90-provisioner.conf"},
        "modules_file": {"anyOf": [ABS, {"type": "null"}], "default": "/etc/modules-load.d/provisioner.conf"},
    }, ["settings"])

    def facts(self, args: dict[str, Any]) -> list[Fact[Any]]:
        return [Sysctl(k) for k in args["settings"]] + [Exists(BRIDGE_DIR)] + file_facts(self._paths(args))

    def _paths(self, args: dict[str, Any]) -> list[str]:
        """The persist file and the modules-load file, where set."""
        return [p for key in ("persist", "modules_file") if (p := args[key])]

    def plan(self, args: dict[str, Any], facts: Facts) -> Outcome:
        settings = {k: str(v) for k, v in args["settings"].items()}
        needs_bridge = any(k.startswith("net.bridge.") for k in settings)
        steps, notes, diffs = [], [], []
        persist = args["persist"]
        if persist:
            # The values found before the first apply travel in the file, for reset to put back. The file is
            # written BEFORE any value changes, and a value it already records is never replaced: an apply
            # cut off half-way cannot make its own changes pass for the originals.
            before = {**{k: facts[Sysctl(k)] for k in settings}, **(previous(facts[File(persist)]) or {})}
            body = "# managed by provisioner\n" + "".join(
                f"# before: {k} = {ABSENT if before[k] is None else before[k]}\n" for k in settings) + "".join(
                f"{k} = {v}\n" for k, v in settings.items())
            fsteps, diff = write_steps(persist, body.encode(), facts)
            steps += fsteps
            diffs.append(diff)
        if needs_bridge and not facts[Exists(BRIDGE_DIR)]:
            steps.append(Cmd(("modprobe", "br_netfilter")))
            notes.append("load br_netfilter")
        for key, want in settings.items():
            have = facts[Sysctl(key)]
            if have is None and not (needs_bridge and key.startswith("net.bridge.")):
                raise ModuleError(f"sysctl {key} does not exist on this node ({sysctl_path(key)} is missing)")
            if have != want:
                steps.append(Cmd(("printf", "%s\\n", want), stdout=sysctl_path(key)))
                notes.append(f"{key} {have if have is not None else '(absent)'} -> {want}")
        modules_file = args["modules_file"]
        if modules_file and needs_bridge:
            fsteps, diff = write_steps(modules_file, b"# managed by provisioner\nbr_netfilter\n", facts)
            steps += fsteps
            diffs.append(diff)
        if not steps:
            return Outcome(reason="sysctls already set: " + ", ".join(f"{k}={v}" for k, v in settings.items()))
        return Outcome(steps, "; ".join(notes) or "write persistent settings", "".join(diffs))

    def reverse(self, args: dict[str, Any], facts: Facts) -> Outcome:
        """Puts back the values found before the first apply (recorded in the persist file), removes the files."""
        steps: list[Step] = []
        persist = args["persist"]
        before = previous(facts.get(File(persist))) if persist else {}
        for key, value in (before or {}).items():
            if key in args["settings"] and value != ABSENT and facts.get(Sysctl(key)) not in (None, value):
                steps.append(Cmd(("printf", "%s\\n", value), stdout=sysctl_path(key)))
        for path in self._paths(args):
            steps += restore_steps(path, facts)
        if not steps:
            return Outcome(reason="no provisioner sysctl settings left")
        return Outcome(steps, "restore sysctls and remove the persistent files")


def previous(current: FileState | None) -> dict[str, str] | None:
    """``# before: key = value`` lines of our persist file → ``{key: value}``; None without the file."""
    if current is None:
        return None
    out = {}
    for line in current.content.decode(errors="replace").splitlines():
        if line.startswith("# before: ") and " = " in line:
            key, value = line[len("# before: "):].split(" = ", 1)
            out[key.strip()] = value.strip()
    return out
