"""containerd's CNI dirs, set in the config.toml that is there: edited, never refused, never rewritten whole.

A real node almost always has a config already: Debian's package ships one whose
``[plugins."io.containerd.grpc.v1.cri".cni]`` table says ``bin_dir = "/usr/lib/cni"``,
and ``containerd config default`` (what kubeadm guides write) says ``/opt/cni/bin``.
The file is parsed with tomlkit, which keeps comments, order and layout; only
``bin_dir``/``conf_dir`` of the CNI table change (the table is added where missing),
every other byte stays. Which table is decided by the file's own ``version``:

====================  =====================================================  ===============
config ``version``    table                                                  containerd
====================  =====================================================  ===============
1 (or no version,     ``[plugins.cri.cni]``                                  1.x (old form)
with ``plugins.cri``)
2                     ``[plugins."io.containerd.grpc.v1.cri".cni]``          1.x (2.x migrates it)
3                     ``[plugins."io.containerd.cri.v1.runtime".cni]``       2.x
====================  =====================================================  ===============

A new file takes the version of ``kubernetes.containerd.major``. The original is kept
as ``PATH.provisioner-orig`` before the first change; reset puts it back byte for byte
(or, when someone edited the file since, gives our two settings their old values and
keeps that person's edits).
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Any

import tomlkit
from tomlkit.exceptions import TOMLKitError

from ..facts import Fact, Facts, value
from ..facts.files import File
from ..steps import Cmd
from .base import ABS, Module, ModuleError, Outcome, backup_of, file_facts, restore_steps, schema, text_of, write_steps

NEW_HEADER = "# managed by provisioner: the CNI dirs below are set by `provision apply`; the rest is yours\n"
TABLES = {1: ("plugins", "cri", "cni"), 2: ("plugins", "io.containerd.grpc.v1.cri", "cni"),
          3: ("plugins", "io.containerd.cri.v1.runtime", "cni")}
KEYS = ("bin_dir", "bin_dirs", "conf_dir")


def table_name(version: int) -> str:
    """``[plugins."io.containerd.grpc.v1.cri".cni]``: the table as the file spells it."""
    return "[" + ".".join(k if k.isidentifier() else f'"{k}"' for k in TABLES[version]) + "]"


def parse(path: str, text: str) -> tomlkit.TOMLDocument:
    try:
        return tomlkit.parse(text)
    except (TOMLKitError, ValueError) as exc:
        raise ModuleError(f"{path} is not valid TOML ({exc}); containerd cannot read it either: fix it first") from None


def config_version(path: str, doc: tomlkit.TOMLDocument) -> int:
    """The config's schema version as containerd reads it (no ``version`` key means 1)."""
    version = doc.get("version", 1)
    if version not in TABLES:
        raise ModuleError(f"{path}: config version {version!r} is not one containerd 1.x or 2.x reads (1, 2 or 3)")
    return int(version)


def _table(doc: MutableMapping[str, Any], keys: tuple[str, ...], create: bool) -> MutableMapping[str, Any] | None:
    """The (possibly nested) table at ``keys``; missing parents are made as super tables, so that only
    ``[a."b".c]`` appears in the file, the way people write it."""
    node = doc
    for i, key in enumerate(keys):
        if key not in node:
            if not create:
                return None
            node[key] = tomlkit.table(is_super_table=i < len(keys) - 1)
        node = node[key]
        if not isinstance(node, dict):
            raise ModuleError(f"{'.'.join(keys[:i + 1])} is a value, not a table")
    return node


def cni_settings(doc: tomlkit.TOMLDocument, version: int) -> dict[str, Any]:
    """The CNI table's ``bin_dir``/``bin_dirs``/``conf_dir`` as plain values (absent keys left out)."""
    table = _table(doc, TABLES[version], create=False)
    return {k: table[k].unwrap() if hasattr(table[k], "unwrap") else table[k] for k in KEYS if table and k in table}


def set_cni(doc: tomlkit.TOMLDocument, version: int, bin_dir: str, conf_dir: str) -> None:
    """Point the CNI table at ``bin_dir``/``conf_dir``, in whichever key form the table already uses.

    containerd 2.0 reads ``bin_dir``; 2.1 added ``bin_dirs`` (a list). A table with either keeps
    its form; a new version 3 table gets ``bin_dirs``.
    """
    table = _table(doc, TABLES[version], create=True)
    assert table is not None  # made when missing
    if "bin_dir" in table or (version < 3 and "bin_dirs" not in table):
        table["bin_dir"] = bin_dir
    if "bin_dirs" in table or version == 3 and "bin_dir" not in table:
        table["bin_dirs"] = [bin_dir]
    table["conf_dir"] = conf_dir


def restore_cni(doc: tomlkit.TOMLDocument, version: int, old: dict[str, Any]) -> None:
    """Give the CNI table's keys the values ``old`` had (remove those it lacked; an emptied table goes)."""
    table = _table(doc, TABLES[version], create=False)
    if table is None:
        return
    for key in KEYS:
        if key in old:
            table[key] = old[key]
        elif key in table:
            del table[key]
    parents = [doc] + [_table(doc, TABLES[version][:i], create=False) for i in range(1, len(TABLES[version]))]
    for parent, key in reversed(list(zip(parents, TABLES[version]))):
        if parent is not None and key in parent and not parent[key]:
            del parent[key]


def edited(path: str, text: str, bin_dir: str, conf_dir: str, major: int) -> tuple[str, int]:
    """``text`` with the CNI dirs set; a file with no content gets a version for containerd ``major``."""
    doc = parse(path, text)
    if not text.strip() or ("version" not in doc and not _has_tables(doc)):
        doc.add("version", major + 1)  # an empty or comment-only file: our major's form, said explicitly
    version = config_version(path, doc)
    set_cni(doc, version, bin_dir, conf_dir)
    return tomlkit.dumps(doc), version


def _has_tables(doc: Mapping[str, Any]) -> bool:
    return any(isinstance(v, dict) for v in doc.values())


class ContainerdCNIModule(Module):
    """Points containerd's CRI plugin at the CNI dirs in its config.toml, whatever else that file holds."""

    name = "containerd_cni"
    args = schema({"config_file": ABS, "major": {"enum": [1, 2]}, "bin_dir": ABS, "conf_dir": ABS},
                  ["config_file", "major", "bin_dir", "conf_dir"])

    def facts(self, a: dict[str, Any]) -> list[Fact[Any]]:
        return file_facts([a["config_file"]]) + [File(backup_of(a["config_file"]))]

    def plan(self, a: dict[str, Any], facts: Facts) -> Outcome:
        path, current = a["config_file"], value(facts, File(a["config_file"]))
        original = NEW_HEADER if current is None else text_of(path, current)
        text, version = edited(path, original, a["bin_dir"], a["conf_dir"], a["major"])
        warnings = []
        if (version == 3) != (a["major"] == 2):
            warnings.append(f"{path} is a version {version} config (containerd {'2' if version == 3 else '1'}.x) but "
                            f"kubernetes.containerd.major is {a['major']}: the file's own version was followed")
        # a new config gets 0600 (it may come to hold registry credentials); an existing one keeps its mode
        steps, diff = write_steps(path, text.encode(), facts, mode=None if current else "0600")
        where = table_name(version)
        if not steps:
            return Outcome(reason=f"{where} of {path} already points at {a['bin_dir']} and {a['conf_dir']}",
                           warnings=warnings)
        return Outcome(steps, f"point {where} of {path} at {a['bin_dir']} and {a['conf_dir']}", diff, warnings)

    def reverse(self, a: dict[str, Any], facts: Facts) -> Outcome:
        path, current = a["config_file"], value(facts, File(a["config_file"]))
        if current is None:
            return Outcome(reason=f"{path} is absent")
        backup = facts.get(File(backup_of(path)))
        if backup is None:  # no original: the file is ours (remove) or someone else's that apply never changed
            steps = restore_steps(path, facts)
            return Outcome(steps, f"remove {path}") if steps else Outcome(reason=f"{path} was never changed by apply")
        original = text_of(backup_of(path), backup)
        ours_now, _ = edited(path, original, a["bin_dir"], a["conf_dir"], a["major"])
        if current.content == ours_now.encode():  # nobody edited it since: the original, byte for byte
            return Outcome(restore_steps(path, facts), f"put back the original {path}")
        # edited since apply: keep those edits, give the CNI keys back their original values
        doc = parse(path, text_of(path, current))
        version = config_version(path, doc)
        restore_cni(doc, version, cni_settings(parse(path, original), version))
        steps, diff = write_steps(path, tomlkit.dumps(doc).encode(), facts)
        return Outcome(steps + [Cmd(("rm", "-f", backup_of(path)))],
                       f"{path} was edited since apply: CNI dirs put back to the original's, other edits kept", diff)


