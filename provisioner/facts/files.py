"""File and kernel facts: file content and metadata, checksums, listings, sysctl values."""

from __future__ import annotations

import base64
import binascii
import shlex
from dataclasses import dataclass

from ..steps import CREATED
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


def parse_created(text: str, rc: int) -> frozenset[tuple[str, str]]:
    """The record of what apply created: ``KIND NAME`` lines → ``{(kind, name)}``; empty without the file."""
    if rc != 0:
        return frozenset()
    return frozenset(tuple(line.split(" ", 1)) for line in text.splitlines() if " " in line)  # type: ignore[misc]


def parse_binary(text: str, rc: int) -> dict | None:
    """``stat -c %a`` then ``sha256sum`` → ``{mode, sha256}``; None when absent."""
    if rc != 0 or not text.strip():
        return None
    mode, _, rest = text.strip().partition("\n")
    return {"mode": mode.strip().zfill(4), "sha256": rest.split()[0] if rest.split() else None}


def parse_text(text: str, rc: int) -> str | None:
    return text.strip() if rc == 0 else None


def sysctl_path(key: str) -> str:
    return "/proc/sys/" + key.replace(".", "/")


@dataclass(frozen=True)
class File(Fact):
    """A whole small file (config files whose diff we show): ``{mode, owner, group, content}`` or None."""

    path: str

    def command(self) -> str:
        q = shlex.quote(self.path)
        return f"test -f {q} && stat -L -c '%a %U %G' {q} && base64 {q}"

    def process(self, stdout: str, rc: int) -> dict | None:
        return parse_file(stdout, rc)


@dataclass(frozen=True)
class Binary(Fact):
    """A file too big to fetch (a plugin binary): ``{mode, sha256}`` or None."""

    path: str

    def command(self) -> str:
        q = shlex.quote(self.path)
        return f"test -f {q} && stat -c %a {q} && sha256sum {q}"

    def process(self, stdout: str, rc: int) -> dict | None:
        return parse_binary(stdout, rc)


@dataclass(frozen=True)
class Listing(Fact):
    """Names in a directory, sorted; empty when it does not exist."""

    path: str

    def command(self) -> str:
        q = shlex.quote(self.path)
        return f"test -d {q} && ls -1A {q}"

    def process(self, stdout: str, rc: int) -> list[str]:
        return sorted(x for x in stdout.split("\n") if x) if rc == 0 else []


@dataclass(frozen=True)
class Exists(Fact):
    path: str

    def command(self) -> str:
        return f"test -e {shlex.quote(self.path)}"

    def process(self, stdout: str, rc: int) -> bool:
        return rc == 0


@dataclass(frozen=True)
class Created(Fact):
    """What apply recorded that it created (:data:`provisioner.steps.CREATED`): ``{(kind, name)}``."""

    def command(self) -> str:
        return f"cat {CREATED}"

    def process(self, stdout: str, rc: int) -> frozenset[tuple[str, str]]:
        return parse_created(stdout, rc)


@dataclass(frozen=True)
class Sysctl(Fact):
    """Current value of a sysctl, read from /proc/sys (no procps needed); None if absent."""

    key: str

    def command(self) -> str:
        return f"cat {shlex.quote(sysctl_path(self.key))}"

    def process(self, stdout: str, rc: int) -> str | None:
        return parse_text(stdout, rc)
