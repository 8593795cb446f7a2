"""Ansible inventories read the way ansible-core reads them, without ansible-core.

One parser, whether or not ansible-core is installed, so that an import gives the
same result everywhere (``tests/data/import/corpus`` holds what ansible-core
itself made of each inventory there, and a test compares). Read here:

- the INI form (``[group]``, ``[group:children]``, ``[group:vars]``, ``host:port``,
  inline ``key=value`` read as Python literals as Ansible's INI plugin does);
- the YAML form (groups with ``hosts``, ``vars``, ``children``);
- ``ansible-inventory --list`` JSON (``_meta.hostvars``): the way in for dynamic
  inventories and plugin configs, which only Ansible can run;
- host ranges ``worker[01:03]``, ``db[a:c]``, ``n[1:9:2]`` in host names;
- ``group_vars/`` and ``host_vars/`` beside the inventory (files ``NAME``,
  ``NAME.yml|yaml|json`` or a directory ``NAME/`` read in name order);
- variable precedence as ansible-core's defaults: the inventory file's ``all`` vars,
  then its group vars (by depth, ``ansible_group_priority``, name), then
  ``group_vars/all``, then ``group_vars/GROUP`` in that order, then the host's own
  vars, then ``host_vars/HOST``. Values are never templated: ``{{ ... }}`` stays text.
"""

from __future__ import annotations

import ast
import json
import re
import shlex
import string
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import InputError
from ..yaml_lines import SAFE_LOADER, read_text

VARS_EXTENSIONS = ("", ".yml", ".yaml", ".json")  # ansible-core's order: a bare name (a directory) first
MAX_HOSTS = 20_000  # hosts one inventory may name (far more than provision can load: it says so, quickly)
MAX_RANGE = MAX_HOSTS  # hosts one range may expand to


class Vaulted(str):
    """A ``!vault`` value: encrypted, and provision has no vault password."""


class _VarsLoader(SAFE_LOADER):  # type: ignore[misc,valid-type]
    """YAML as Ansible writes vars files: ``!unsafe`` is a plain string, ``!vault`` an opaque value."""


_VarsLoader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))
_VarsLoader.add_constructor("!vault", lambda loader, node: Vaulted(loader.construct_scalar(node)))


@dataclass
class _Group:
    name: str
    hosts: dict[str, None] = field(default_factory=dict)  # in order, each once
    children: list[str] = field(default_factory=list)
    parents: set[str] = field(default_factory=set)
    vars: dict[str, Any] = field(default_factory=dict)
    depth: int = 0
    priority: int = 1

    def set(self, key: str, value: Any, where: str) -> None:
        """A group variable; ``ansible_group_priority`` is the group's priority, not a variable (as in ansible-core)."""
        if key != "ansible_group_priority":
            self.vars[key] = value
            return
        try:
            self.priority = int(value)
        except (TypeError, ValueError):
            raise InputError(f"{where}: ansible_group_priority {value!r} is not a number") from None


@dataclass
class Parsed:
    """An inventory as Ansible sees it: every host's variables (merged) and every group's hosts."""

    hosts: dict[str, dict[str, Any]]
    groups: dict[str, list[str]]  # with the hosts of child groups; without all and ungrouped


class _Inventory:
    def __init__(self, source: str):
        self.source = source
        self.groups: dict[str, _Group] = {"all": _Group("all"), "ungrouped": _Group("ungrouped")}
        self.host_vars: dict[str, dict[str, Any]] = {}

    def group(self, name: str) -> _Group:
        if name not in self.groups:
            self.groups[name] = _Group(name)
        return self.groups[name]

    def add_host(self, group: str, host: str, hvars: dict[str, Any]) -> None:
        if host not in self.host_vars and len(self.host_vars) >= MAX_HOSTS:
            raise InputError(f"{self.source}: more than {MAX_HOSTS} hosts; provision takes one cluster per inventory")
        self.host_vars.setdefault(host, {}).update(hvars)
        self.group(group).hosts.setdefault(host)

    def add_child(self, parent: str, child: str) -> None:
        if parent == child:
            raise InputError(f"{self.source}: group {child} cannot be a child of itself")
        p, c = self.group(parent), self.group(child)
        if child not in p.children:
            p.children.append(child)
        c.parents.add(parent)

    def finish(self) -> None:
        """As ansible-core's reconcile: parentless groups under ``all``, groupless hosts in ``ungrouped``."""
        for name, g in self.groups.items():
            if name != "all" and not g.parents:
                self.add_child("all", name)
        grouped = {h for name, g in self.groups.items() if name not in ("all", "ungrouped") for h in g.hosts}
        for host in self.host_vars:  # hosts put in `all` by name are ungrouped too, unless in another group
            if host not in grouped:
                self.add_host("ungrouped", host, {})
        self._depths()

    def _depths(self) -> None:
        """Each group's depth: its longest path from ``all`` (ansible-core orders group vars by it)."""
        memo: dict[str, int] = {}

        def depth(name: str, path: tuple[Any, ...]) -> int:
            if name in path:
                loop = path[path.index(name):] + (name,)
                raise InputError(f"{self.source}: groups {' -> '.join(loop)} form a loop")
            if name not in memo:
                parents = self.groups[name].parents
                memo[name] = 0 if name == "all" else 1 + max(depth(p, path + (name,)) for p in parents)
            return memo[name]

        for name, g in self.groups.items():
            g.depth = depth(name, ())

    def ancestors(self, group: str) -> set[str]:
        out: set[str] = set()
        todo = [group]
        while todo:
            for p in self.groups[todo.pop()].parents:
                if p not in out:
                    out.add(p)
                    todo.append(p)
        return out

    def resolve(self, vars_dir: Path | None) -> Parsed:
        self.finish()
        member: dict[str, set[str]] = {h: set() for h in self.host_vars}
        for name, g in self.groups.items():
            up = self.ancestors(name) | {name}
            for h in g.hosts:
                member[h].update(up)
        files = _VarsFiles(vars_dir)
        order = sorted((g for g in self.groups.values() if g.name != "all"), key=lambda g: (g.depth, g.priority, g.name))
        hosts = {}
        for host, own in self.host_vars.items():
            mine = [g for g in order if g.name in member[host]]
            merged = dict(self.groups["all"].vars)
            for g in mine:
                merged.update(g.vars)
            merged.update(files.vars("group_vars", "all"))
            for g in mine:
                merged.update(files.vars("group_vars", g.name))
            merged.update(own)
            merged.update(files.vars("host_vars", host))
            hosts[host] = merged
        groups = {}
        for name in self.groups:
            if name in ("all", "ungrouped"):
                continue
            groups[name] = [h for h in self.host_vars if name in member[h]]
        return Parsed(hosts, groups)


class _VarsFiles:
    """``group_vars/`` and ``host_vars/`` beside the inventory, read once each."""

    def __init__(self, base: Path | None):
        self.base = base
        self.cache: dict[tuple[str, str], dict[str, Any]] = {}

    def vars(self, kind: str, name: str) -> dict[str, Any]:
        if self.base is None or name.startswith("/"):
            return {}
        key = (kind, name)
        if key not in self.cache:
            self.cache[key] = self._load(self.base / kind, name)
        return self.cache[key]

    def _load(self, folder: Path, name: str) -> dict[str, Any]:
        if not folder.is_dir():
            return {}
        for ext in VARS_EXTENSIONS:
            path = folder / (name + ext)
            if path.exists():
                found = _dir_files(path) if path.is_dir() else [path]
                break
        else:
            return {}
        out: dict[str, Any] = {}
        for f in found:
            try:
                data = yaml.load(read_text(f), Loader=_VarsLoader)
            except yaml.YAMLError as exc:
                raise InputError(f"{f}: not YAML: {exc}") from None
            if data is None:
                continue
            if not isinstance(data, dict):
                raise InputError(f"{f}: variables must be a mapping of names to values")
            out.update({str(k): v for k, v in data.items()})
        return out


def _dir_files(path: Path) -> list[Path]:
    out = []
    for entry in sorted(path.iterdir(), key=lambda p: p.name):
        if entry.name.startswith(".") or entry.name.endswith("~"):
            continue
        if entry.is_dir() and not entry.suffix:
            out += _dir_files(entry)
        elif entry.is_file() and entry.suffix in VARS_EXTENSIONS:
            out.append(entry)
    return out


# -- host names ---------------------------------------------------------------------
def expand_hosts(pattern: str, where: str) -> tuple[list[str], int | None]:
    """A host entry's names and port: ``web[01:03]:2222`` is web01..web03 on port 2222; ``[fe80::1]:22`` and a
    bare IPv6 address are one host."""
    port = None
    ipv6 = re.fullmatch(r"\[([0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*)\](?::([0-9]+))?", pattern)
    if ipv6:
        return [ipv6.group(1)], int(ipv6.group(2)) if ipv6.group(2) else None
    outside = re.sub(r"\[[^]]*\]", "", pattern)  # the colons of ranges are not ports
    if outside.count(":") == 1:
        head, _, tail = pattern.rpartition(":")
        if not tail:
            raise InputError(f"{where}: host {pattern!r} ends in ':' (reserved for a port)")
        if not (tail.isascii() and tail.isdigit()) or not 0 < int(tail) < 65536:
            raise InputError(f"{where}: host {pattern!r}: {tail!r} after ':' is not a port number")
        pattern, port = head, int(tail)
    elif outside.count(":") > 1:
        return [pattern], None  # an IPv6 address
    if "[" not in pattern:
        return [pattern], port
    return _ranges(pattern, where), port


def _ranges(name: str, where: str) -> list[str]:
    if "]" not in name:
        raise InputError(f"{where}: host range {name!r} has no closing ]")
    head, rest = name.split("[", 1)
    body, tail = rest.split("]", 1)
    bounds = body.split(":")
    if len(bounds) not in (2, 3):
        raise InputError(f"{where}: host range [{body}] must be [begin:end] or [begin:end:step]")
    beg, end = bounds[0] or "0", bounds[1]
    step = bounds[2] if len(bounds) == 3 else "1"
    if not end:
        raise InputError(f"{where}: host range [{body}] has no end")
    width = len(beg) if beg[0] == "0" and len(beg) > 1 else 0
    if width and width != len(end):
        raise InputError(f"{where}: host range [{body}]: begin and end must have the same width")
    if not step.isascii() or not step.isdigit() or int(step) == 0:
        raise InputError(f"{where}: host range [{body}]: the step must be a positive number")
    letters = string.ascii_letters
    if beg in letters and end in letters and len(beg) == len(end) == 1:
        if letters.index(beg) > letters.index(end):
            raise InputError(f"{where}: host range [{body}]: begin is after end")
        seq = list(letters[letters.index(beg):letters.index(end) + 1:int(step)])
    elif all(b.isascii() and b.isdigit() for b in (beg, end)):
        numbers = range(int(beg), int(end) + 1, int(step))
        if len(numbers) > MAX_RANGE:
            raise InputError(f"{where}: host range [{body}] is {len(numbers)} hosts, more than {MAX_RANGE}")
        seq = [str(i).zfill(width) if width else str(i) for i in numbers]
    else:
        raise InputError(f"{where}: host range [{body}] is neither numbers nor single letters")
    out: list[str] = []
    for part in seq:
        one = head + part + tail
        out += _ranges(one, where) if "[" in one else [one]
        if len(out) > MAX_RANGE:
            raise InputError(f"{where}: host range {name!r} is more than {MAX_RANGE} hosts")
    return out


def ini_value(text: str) -> Any:
    """An INI value as Ansible reads it: a Python literal where it is one (``True``, ``22``, ``'a b'``), else text."""
    if len(text) > 10_000:
        return text
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SyntaxWarning)
            value = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text
    return _plain(value)


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode(errors="surrogateescape")
    if isinstance(value, (list, tuple, set)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if value is ...:
        return "..."
    if isinstance(value, complex):
        return str(value)
    return value


# -- the three forms -----------------------------------------------------------------
def read(path: Path) -> Parsed:
    """An Ansible inventory file, with the group_vars/ and host_vars/ beside it."""
    text = read_text(path)
    source = str(path)
    base = path.resolve().parent
    stripped = text.lstrip()
    if stripped.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise InputError(f"{source}: not JSON: {exc}") from None
        return _from_json(data, source).resolve(base)
    data = None
    try:
        data = yaml.load(text, Loader=_VarsLoader)
    except yaml.YAMLError:
        pass
    if isinstance(data, dict) and not _looks_ini(text):
        if "plugin" in data:
            raise InputError(f"{source}: an inventory plugin's config (plugin: {data['plugin']}): only Ansible can run "
                             f"it; import what it makes: ansible-inventory -i {source} --list > inventory.json")
        if "_meta" in data:
            return _from_json(data, source).resolve(base)
        return _from_yaml(data, source).resolve(base)
    return _from_ini(text, source).resolve(base)


def _looks_ini(text: str) -> bool:
    first = next((ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith(("#", ";"))), "")
    return first.startswith("[")


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InputError(f"{where}: expected a mapping, found {type(value).__name__}")
    return value


def _from_yaml(data: dict[str, Any], source: str) -> _Inventory:
    inv = _Inventory(source)

    def group(name: str, body: Any, parent: str | None) -> None:
        name = str(name)
        where = f"{source}: group {name}"
        inv.group(name)
        if parent is not None:
            inv.add_child(parent, name)
        body = _mapping(body, where)
        for k, v in _mapping(body.get("vars"), where + " vars").items():
            inv.groups[name].set(str(k), v, where)
        for entry, hvars in _mapping(body.get("hosts"), where + " hosts").items():
            names, port = expand_hosts(str(entry), where)
            own = dict(_mapping(hvars, f"{where} host {entry}"))
            if port is not None:
                own["ansible_port"] = port
            for h in names:
                inv.add_host(name, h, {str(k): v for k, v in own.items()})
        for child, cbody in _mapping(body.get("children"), where + " children").items():
            group(child, cbody, name)

    for name, body in data.items():
        group(name, body, None)
    return inv


def _from_ini(text: str, source: str) -> _Inventory:
    inv = _Inventory(source)
    section, kind = "ungrouped", "hosts"
    pending: dict[str, tuple[int, str]] = {}  # groups named in :children or :vars before they are declared
    declared = {"all", "ungrouped"}
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        where = f"{source}:{n}"
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            head = line.split("#", 1)[0].split(";", 1)[0].strip() if "]" in line else line
            if not head.endswith("]") or " " in head[1:-1]:
                raise InputError(f"{where}: {line!r} is not a section header ([group], [group:children], [group:vars])")
            section, _, kind = head[1:-1].partition(":")
            kind = kind or "hosts"
            if kind not in ("hosts", "children", "vars"):
                raise InputError(f"{where}: section [{head[1:-1]}] has an unknown kind :{kind}")
            inv.group(section)
            if kind != "vars":
                declared.add(section)
            elif section not in declared:
                pending.setdefault(section, (n, f"[{section}:vars] is for a group declared nowhere"))
            continue
        if kind == "children":
            child = line.split()[0]
            inv.add_child(section, child)
            if child not in declared:
                pending.setdefault(child, (n, f"[{section}:children] names group {child}, declared nowhere"))
        elif kind == "vars":
            if "=" not in line:
                raise InputError(f"{where}: expected key=value, found {line!r}")
            key, _, value = line.partition("=")
            inv.groups[section].set(key.strip(), ini_value(value.strip()), where)
        else:
            try:
                words = shlex.split(line, comments=True)
            except ValueError as exc:
                raise InputError(f"{where}: {exc}") from None
            names, port = expand_hosts(words[0], where)
            hvars: dict[str, Any] = {}
            for w in words[1:]:
                if "=" not in w:
                    raise InputError(f"{where}: {w!r} is not key=value")
                k, _, v = w.partition("=")
                hvars[k] = ini_value(v)
            if port is not None:
                hvars["ansible_port"] = port
            for h in names:
                inv.add_host(section, h, hvars)
    for group, (n, why) in pending.items():
        if group not in declared:
            raise InputError(f"{source}:{n}: {why}")
    return inv


def _from_json(data: Any, source: str) -> _Inventory:
    """``ansible-inventory --list`` (or ``--export``) output, or a script inventory's JSON."""
    inv = _Inventory(source)
    if not isinstance(data, dict):
        raise InputError(f"{source}: expected the JSON object `ansible-inventory --list` prints")
    hostvars = _mapping(_mapping(data.get("_meta"), f"{source}: _meta").get("hostvars"), f"{source}: _meta.hostvars")
    for name, body in data.items():
        if name == "_meta":
            continue
        where = f"{source}: group {name}"
        inv.group(str(name))
        if isinstance(body, list):  # the short form: a group is its list of hosts
            body = {"hosts": body}
        body = _mapping(body, where)
        for h in body.get("hosts") or []:
            inv.add_host(str(name), str(h), {})
        for child in body.get("children") or []:
            inv.add_child(str(name), str(child))
        for k, v in _mapping(body.get("vars"), where + " vars").items():
            inv.groups[str(name)].set(str(k), v, where)
    for host, hvars in hostvars.items():
        inv.host_vars.setdefault(str(host), {}).update({str(k): v for k, v in _mapping(hvars, f"{source}: host {host}").items()})
    return inv
