"""One exception tree for everything the tool reports to a person.

Every message names the object and where it came from, e.g.
``inventories/lab.yaml:14 nodes[1].pod_subnet: 10.244.1.0/24 overlaps nodes[0]``.
"""

from __future__ import annotations

from dataclasses import dataclass


class ProvisionerError(Exception):
    """Base of every error the CLI turns into a message and an exit code."""

    exit_code = 1


@dataclass(frozen=True)
class Problem:
    """One located problem in an input file: ``file:line path: message``."""

    file: str
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        path, message = printable(self.path), printable(self.message)
        if len(message) > MAX_MESSAGE:
            message = f"{message[:MAX_MESSAGE]}… ({len(message)} characters)"
        head = " ".join(x for x in (where, path) if x)
        return f"{head}: {message}" if head else message


MAX_MESSAGE = 500


def printable(text: str) -> str:
    """``text`` with control characters (terminal escape sequences, NUL, …) shown escaped, never sent raw."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() or ch == " " else repr(ch)[1:-1] for ch in text)


def printable_lines(text: str) -> str:
    """:func:`printable` line by line: line breaks stay, every other control character is shown escaped.
    Everything a node sends back (errors, stderr, file contents in diffs, process names) is printed through it."""
    return "\n".join(printable(line) for line in text.split("\n"))


class InputError(ProvisionerError):
    """Bad input (inventory, playbook, arguments): exit 2, nothing was contacted."""

    exit_code = 2

    def __init__(self, problems: list[Problem] | str):
        if isinstance(problems, str):
            problems = [Problem("", None, "", problems)]
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class InventoryError(InputError):
    """The inventory failed its schema or its semantic checks."""


class PlaybookError(InputError):
    """A playbook failed its schema, a template, or a module's argument check."""


class HostError(ProvisionerError):
    """Something went wrong on (or on the way to) one host."""


class TransportError(HostError):
    """The host could not be reached or the connection broke: worth a retry.

    ``partial``: what a script had printed before its connection broke (it tells how far the script got).
    """

    def __init__(self, message: str, partial: str = ""):
        super().__init__(message)
        self.partial = partial


class LabError(ProvisionerError):
    """The namespace lab could not be built or removed."""


def seconds(value: float | None) -> str:
    """A duration for a message: ``300s``, ``2.5s``, ``0.2s`` (never ``0s`` for a fraction of a second)."""
    if value is None:
        return "no time limit"
    return f"{value:.0f}s" if value >= 10 else f"{round(value, 2):g}s"
