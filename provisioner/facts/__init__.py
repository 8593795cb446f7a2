"""Facts: a command plus a pure parse. All facts of a host run in ONE ssh exec.

The gather script wraps each fact's command in markers; :func:`split` cuts the
output back into ``{key: (stdout, rc)}`` and :func:`parse_all` applies each
fact's parser. An absent thing parses to ``None``, never an exception.

Markers carry a position (the fact's index in :func:`distinct`), never the key:
keys hold paths from the inventory, and no inventory text may reach the shell
except as a quoted argument inside a fact's own command.
"""

from __future__ import annotations

import re

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

BEGIN = "@@PROVISIONER-FACT"
END = "@@PROVISIONER-END"


@dataclass(frozen=True)
class Fact:
    """``key`` names the fact (same key, same command); ``parse(stdout, rc)`` is pure."""

    key: str
    command: str
    parse: Callable[[str, int], Any] = field(compare=False, hash=False)


def distinct(facts: Iterable[Fact]) -> list[Fact]:
    """Each fact once (same key, same command), in first-seen order: position ``i`` is marker ``i``."""
    seen: dict[str, Fact] = {}
    for f in facts:
        seen.setdefault(f.key, f)
    return list(seen.values())


def script(facts: Iterable[Fact], nonce: str = "") -> str:
    """One POSIX sh script that runs every distinct fact once, between numbered markers.

    ``nonce`` (random per run, hex) goes into every marker so that no fact's
    output can pass for a marker. Markers hold only the nonce and a number.
    """
    if not re.fullmatch(r"[0-9a-f]*", nonce):
        raise ValueError("the nonce is hex")
    lines = ["export LC_ALL=C PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH"]
    for i, f in enumerate(distinct(facts)):
        lines.append(f"echo '{BEGIN}{nonce} {i}'")
        lines.append(f"( {f.command}\n) </dev/null 2>/dev/null")
        lines.append(f"printf '\\n{END}{nonce} %d\\n' $?")
    return "\n".join(lines) + "\n"


def split(stdout: str, facts: Iterable[Fact], nonce: str = "") -> dict[str, tuple[str, int]]:
    """Cut the output of :func:`script` over the same ``facts`` into ``{key: (output, exit code)}``."""
    begin, end = f"{BEGIN}{nonce} ", f"{END}{nonce} "
    out: dict[int, tuple[str, int]] = {}
    pos, buf = None, []
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
    return {f.key: out[i] for i, f in enumerate(distinct(facts)) if i in out}


def parse_all(facts: Iterable[Fact], raw: dict[str, tuple[str, int]]) -> dict[str, Any]:
    """Apply each fact's parser; a fact missing from the output parses as absent."""
    values = {}
    for f in facts:
        text, rc = raw.get(f.key, ("", 127))
        values[f.key] = f.parse(text, rc)
    return values
