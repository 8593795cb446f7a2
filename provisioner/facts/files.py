"""File and kernel facts: file content and metadata, sha256, sysctl values, paths."""

from __future__ import annotations

import base64
import binascii
import shlex

from . import Fact


def parse_file(text: str, rc: int) -> dict | None:
    """``stat`` line then base64 content → ``{mode, owner, group, content}``; None if absent."""
    if rc != 0 or not text:
        return None
    meta, _, data = text.partition("\n")
    try:
        mode, owner, group = meta.split()
        content = base64.b64decode("".join(data.split()))
    except (ValueError, binascii.Error):
        return None
    return {"mode": mode.zfill(4), "owner": owner, "group": group, "content": content}


def file(path: str) -> Fact:
    """The whole file (for small config files whose diff we show)."""
    q = shlex.quote(path)
    return Fact(f"file:{path}", f"test -f {q} && stat -L -c '%a %U %G' {q} && base64 {q}", parse_file)


def parse_created(text: str, rc: int) -> frozenset[tuple[str, str]]:
    """The record of what apply created: ``KIND NAME`` lines → ``{(kind, name)}``; empty without the file."""
    if rc != 0:
        return frozenset()
    return frozenset(tuple(line.split(" ", 1)) for line in text.splitlines() if " " in line)  # type: ignore[misc]


def created() -> Fact:
    from ..ops import CREATED

    return Fact("created", f"cat {CREATED}", parse_created)


def parse_sha256(text: str, rc: int) -> str | None:
    return text.split()[0] if rc == 0 and text.strip() else None


def sha256(path: str) -> Fact:
    q = shlex.quote(path)
    return Fact(f"sha256:{path}", f"test -f {q} && sha256sum {q}", parse_sha256)


def parse_text(text: str, rc: int) -> str | None:
    return text.strip() if rc == 0 else None


def sysctl(key: str) -> Fact:
    """Current value of a sysctl, read from /proc/sys (no procps needed); None if absent."""
    return Fact(f"sysctl:{key}", f"cat {shlex.quote(sysctl_path(key))}", parse_text)


def sysctl_path(key: str) -> str:
    return "/proc/sys/" + key.replace(".", "/")


def exists(path: str) -> Fact:
    return Fact(f"exists:{path}", f"test -e {shlex.quote(path)}", lambda text, rc: rc == 0)


def command(name: str) -> Fact:
    """Path of a command on the node, or None."""
    return Fact(f"command:{name}", f"command -v {shlex.quote(name)}", parse_text)
