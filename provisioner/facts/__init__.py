"""Facts: a command plus a pure parse. All facts of a host run in ONE ssh exec.

The gather script wraps each fact's command in markers; :func:`split` cuts the
output back into ``{key: (stdout, rc)}`` and :func:`parse_all` applies each
fact's parser. An absent thing parses to ``None``, never an exception.
"""

from __future__ import annotations

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


def script(facts: Iterable[Fact], nonce: str = "") -> str:
    """One POSIX sh script that runs every distinct fact once, between markers.

    ``nonce`` (random per run) goes into every marker so that no fact's output
    can pass for a marker.
    """
    begin, end = f"{BEGIN}{nonce}", f"{END}{nonce}"
    lines = ["export LC_ALL=C PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH"]
    seen = set()
    for f in facts:
        if f.key in seen:
            continue
        seen.add(f.key)
        lines.append(f"echo '{begin} {len(f.key)} {f.key}'")
        lines.append(f"( {f.command}\n) </dev/null 2>/dev/null")
        lines.append(f"printf '\\n{end} %d\\n' $?")
    return "\n".join(lines) + "\n"


def split(stdout: str, nonce: str = "") -> dict[str, tuple[str, int]]:
    """Cut gather output into ``{key: (output, exit code)}``."""
    begin, end = f"{BEGIN}{nonce} ", f"{END}{nonce} "
    out: dict[str, tuple[str, int]] = {}
    key, buf = None, []
    for line in stdout.split("\n"):
        if key is None and line.startswith(begin):
            _, n, rest = line.split(" ", 2)
            key, buf = rest[: int(n)], []
        elif key is not None and line.startswith(end):
            # the newline printed before the end marker is the one join() leaves out
            out[key] = ("\n".join(buf), int(line.split()[1]))
            key = None
        elif key is not None:
            buf.append(line)
    return out


def parse_all(facts: Iterable[Fact], raw: dict[str, tuple[str, int]]) -> dict[str, Any]:
    """Apply each fact's parser; a fact missing from the output parses as absent."""
    values = {}
    for f in facts:
        text, rc = raw.get(f.key, ("", 127))
        values[f.key] = f.parse(text, rc)
    return values
