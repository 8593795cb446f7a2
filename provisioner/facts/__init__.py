"""Typed facts: a fact is a class with its arguments, a command and a pure ``process()``.

Modules ask for instances (``File("/etc/resolv.conf")``) and read the answers
from a ``{fact: value}`` mapping keyed by those same instances (two instances
with the same class and arguments are the same fact). All facts of a host run in
ONE ssh exec: :func:`script` wraps each fact's command (or one command for a
whole class of facts, :meth:`Fact.batch_command`) in numbered markers,
:func:`split` cuts the output back into ``{fact: (stdout, rc)}`` and
:func:`parse_all` applies each fact's ``process``. An absent thing processes
to ``None`` (or ``False``/empty), never an exception.

Markers carry a position (the fact's index in :func:`distinct`), never an
argument: arguments hold paths from the inventory, and no inventory text may
reach the shell except as a quoted argument inside a fact's own command.

>>> from provisioner.facts.files import File
>>> File("/etc/hosts") == File("/etc/hosts"), str(File("/etc/hosts"))
(True, "File('/etc/hosts')")
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any, Generic, Protocol, TypeVar

BEGIN = "@@PROVISIONER-FACT"
END = "@@PROVISIONER-END"


T = TypeVar("T")


@dataclass(frozen=True)
class Fact(Generic[T]):
    """Subclasses are frozen dataclasses; their fields are the fact's arguments, ``T`` the type of the value
    :meth:`process` gives (``File`` is a ``Fact[FileState | None]``); :func:`value` reads one typed."""

    def command(self) -> str:
        """POSIX sh that prints what :meth:`process` reads; every value in it quoted by :mod:`provisioner.shell`."""
        raise NotImplementedError

    def process(self, stdout: str, rc: int) -> T:
        """Pure: the command's output and exit code → the value modules read."""
        raise NotImplementedError

    @classmethod
    def batch_command(cls, facts: list[Fact[Any]]) -> str | None:
        """One command that answers all ``facts`` of this class at once (fewer processes on the node), or None.

        :meth:`unbatch` cuts its output back into what each fact's own command
        would have printed, so :meth:`process` stays the one parser.
        """
        return None

    @classmethod
    def unbatch(cls, facts: list[Fact[Any]], stdout: str, rc: int) -> dict[Fact[Any], tuple[str, int]]:
        raise NotImplementedError

    def __str__(self) -> str:
        args = ", ".join(repr(getattr(self, f.name)) for f in fields(self) if getattr(self, f.name) is not None)
        return f"{type(self).__name__}({args})"


class Facts(Protocol):
    """What a module's plan and reverse receive: each fact's value, typed by the fact (``facts[Addrs()]`` is
    a ``dict[str, list[str]] | None``), so mypy checks every read. A ``dict[Fact, Any]`` is one."""

    def __getitem__(self, fact: Fact[T], /) -> T: ...

    def get(self, fact: Fact[T], /) -> T | None: ...

    def __contains__(self, fact: object, /) -> bool: ...


def value(facts: Facts, fact: Fact[T]) -> T:
    """``facts[fact]``, typed: what :meth:`Fact.process` gave for ``fact``."""
    return facts[fact]


def distinct(facts: Iterable[Fact[Any]]) -> list[Fact[Any]]:
    """Each fact once, in first-seen order."""
    return list(dict.fromkeys(facts))


def jobs(facts: Iterable[Fact[Any]]) -> list[tuple[str, list[Fact[Any]], type[Fact[Any]] | None]]:
    """What the gather script runs: ``(command, facts, batch class)``; job ``i`` is marker ``i``.

    Facts of a class that batches share one command; other facts with the same
    command (``Links`` and ``Addrs`` both read ``ip -d addr``) share its run.
    """
    out: list[tuple[str, list[Fact[Any]], type[Fact[Any]] | None]] = []
    by_class: dict[type[Fact[Any]], list[Fact[Any]]] = {}
    for f in distinct(facts):
        by_class.setdefault(type(f), []).append(f)
    batched: dict[type[Fact[Any]], str] = {}
    for cls, group in by_class.items():
        command = cls.batch_command(group) if len(group) > 1 else None
        if command is not None:
            batched[cls] = command
    by_command: dict[str, int] = {}
    emitted: set[type[Fact[Any]]] = set()
    for f in distinct(facts):
        cls = type(f)
        if cls in batched:
            if cls not in emitted:
                out.append((batched[cls], by_class[cls], cls))
                emitted.add(cls)
            continue
        command = f.command()
        if command in by_command:
            out[by_command[command]][1].append(f)
        else:
            by_command[command] = len(out)
            out.append((command, [f], None))
    return out


def script(facts: Iterable[Fact[Any]], nonce: str = "") -> str:
    """One POSIX sh script that runs every distinct fact once, between numbered markers.

    ``nonce`` (random per run, hex) goes into every marker so that no fact's
    output can pass for a marker. Markers hold only the nonce and a number.
    """
    if not re.fullmatch(r"[0-9a-f]*", nonce):
        raise ValueError("the nonce is hex")
    lines = ["export LC_ALL=C PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH"]
    for i, (command, _, _) in enumerate(jobs(facts)):
        lines.append(f"echo '{BEGIN}{nonce} {i}'")
        lines.append(f"( {command}\n) </dev/null 2>/dev/null")
        lines.append(f"printf '\\n{END}{nonce} %d\\n' $?")
    return "\n".join(lines) + "\n"


def split(stdout: str, facts: Iterable[Fact[Any]], nonce: str = "") -> dict[Fact[Any], tuple[str, int]]:
    """Cut the output of :func:`script` over the same ``facts`` into ``{fact: (output, exit code)}``."""
    begin, end = f"{BEGIN}{nonce} ", f"{END}{nonce} "
    out: dict[int, tuple[str, int]] = {}
    pos: int | None = None
    buf: list[str] = []
    for line in stdout.split("\n"):
        if pos is None and line.startswith(begin) and line[len(begin):].isdigit():
            pos, buf = int(line[len(begin):]), []
        elif pos is not None and line.startswith(end):
            # the newline printed before the end marker is the one join() leaves out
            try:
                out[pos] = ("\n".join(buf), int(line[len(end):]))
            except ValueError:
                out[pos] = ("\n".join(buf), 255)
            pos = None
        elif pos is not None:
            buf.append(line)
    raw: dict[Fact[Any], tuple[str, int]] = {}
    for i, (_, group, batch) in enumerate(jobs(facts)):
        if i not in out:
            continue
        if batch is not None:
            raw.update(batch.unbatch(group, *out[i]))
        else:
            raw.update({f: out[i] for f in group})
    return raw


class FactError(ValueError):
    """A node's answer to a fact could not be read (wrong shape or type): that node's error, never a crash."""


def parse_all(facts: Iterable[Fact[Any]], raw: Mapping[Fact[Any], tuple[str, int]]) -> dict[Fact[Any], Any]:
    """Apply each fact's ``process``; a fact missing from the output processes as absent (exit 127).

    What a node prints is data it controls: a parser that fails on it raises :class:`FactError` naming the fact.
    """
    values = {}
    for f in distinct(facts):
        text, rc = raw.get(f, ("", 127))
        try:
            values[f] = f.process(text, rc)
        except Exception as exc:  # noqa: BLE001 - any shape the node sent
            raise FactError(f"its answer to {f} could not be read ({type(exc).__name__}: {str(exc)[:200]})") from None
    return values
