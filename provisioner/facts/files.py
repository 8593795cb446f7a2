"""File and kernel facts: file content and metadata, checksums, listings, sysctl values."""

from __future__ import annotations

import base64
import binascii
import io
import tarfile
from dataclasses import dataclass
from typing import Any

from ..steps import CREATED
from ..shell import command, sh
from . import Fact
from .values import BinaryState, FileState


def parse_file(text: str, rc: int) -> FileState | None:
    """``stat`` line then base64 content → :class:`FileState`; None if absent."""
    if rc != 0 or not text:
        return None
    meta, _, data = text.partition("\n")
    try:
        mode, owner, group = meta.split()
        content = base64.b64decode("".join(data.split()))
    except (ValueError, binascii.Error):
        return None
    return FileState(mode.zfill(4), owner, group, content)


def parse_created(text: str, rc: int) -> frozenset[tuple[str, str]]:
    """The record of what apply created: ``KIND NAME`` lines → ``{(kind, name)}``; empty without the file."""
    if rc != 0:
        return frozenset()
    return frozenset((kind, name) for kind, _, name in (line.partition(" ") for line in text.splitlines() if " " in line))


def parse_binary(text: str, rc: int) -> BinaryState | None:
    """``stat -c %a`` then ``sha256sum`` → :class:`BinaryState`; None when absent."""
    if rc != 0 or not text.strip():
        return None
    mode, _, rest = text.strip().partition("\n")
    return BinaryState(mode.strip().zfill(4), rest.split()[0] if rest.split() else None)


def parse_text(text: str, rc: int) -> str | None:
    return text.strip() if rc == 0 else None


def sysctl_path(key: str) -> str:
    return "/proc/sys/" + key.replace(".", "/")


def _regular(paths: list[str]) -> str:
    """sh that sets ``"$@"`` to those of ``paths`` that are regular files (symlinks followed) and prints their
    positions on one line: a batch's answers are matched to facts by position, never by a name read back."""
    return ("set --; i=0; for f in " + command(*paths)
            + '; do [ -f "$f" ] && { set -- "$@" "$f"; printf \'%d \' $i; }; i=$((i+1)); done; echo')


def _positions(stdout: str) -> tuple[list[int], str]:
    first, _, rest = stdout.partition("\n")
    try:
        return [int(x) for x in first.split()], rest
    except ValueError:
        return [], rest


def _paths(facts: list[Fact[Any]]) -> list[str]:
    """The paths of a batch of File or Binary facts (a batch holds facts of one class)."""
    return [f.path for f in facts if isinstance(f, (File, Binary))]


@dataclass(frozen=True)
class File(Fact[FileState | None]):
    """A whole small file (config files whose diff we show): a :class:`FileState`, or None.

    Many files are read by one ``tar`` (mode, owner and bytes of each, read together)
    piped to one ``base64``, not two processes per file.
    """

    path: str

    def command(self) -> str:
        return sh("test -f {p} && stat -L -c '%a %U %G' {p} && base64 {p}", p=self.path)

    def process(self, stdout: str, rc: int) -> FileState | None:
        return parse_file(stdout, rc)

    @classmethod
    def batch_command(cls, facts: list[Fact[Any]]) -> str | None:
        return (_regular(_paths(facts))
                + '\n[ $# -eq 0 ] || tar -c -P -h --hard-dereference --no-recursion -f - -- "$@" | base64')

    @classmethod
    def unbatch(cls, facts: list[Fact[Any]], stdout: str, rc: int) -> dict[Fact[Any], tuple[str, int]]:
        """Each file's own answer (``MODE OWNER GROUP`` then base64), or absent (exit 1) when not in the archive."""
        positions, rest = _positions(stdout)
        found: dict[int, str] = {}
        try:
            with tarfile.open(fileobj=io.BytesIO(base64.b64decode("".join(rest.split()))), mode="r:") as tar:
                members = [m for m in tar]
                for i, m in zip(positions, members):
                    fh = tar.extractfile(m) if m.isfile() else None
                    if fh is not None:
                        found[i] = (f"{m.mode & 0o7777:o} {m.uname or m.uid} {m.gname or m.gid}\n"
                                    + base64.b64encode(fh.read()).decode())
        except (ValueError, binascii.Error, tarfile.TarError, EOFError):
            found = {}
        return {f: (found[i], 0) if i in found else ("", 1) for i, f in enumerate(facts)}


@dataclass(frozen=True)
class Binary(Fact[BinaryState | None]):
    """A file too big to fetch (a plugin binary): ``{mode, sha256}`` or None. Many: one ``stat``, one ``sha256sum``."""

    path: str

    def command(self) -> str:
        return sh("test -f {p} && stat -L -c %a {p} && sha256sum {p}", p=self.path)

    def process(self, stdout: str, rc: int) -> BinaryState | None:
        return parse_binary(stdout, rc)

    @classmethod
    def batch_command(cls, facts: list[Fact[Any]]) -> str | None:
        return (_regular(_paths(facts))
                + "\n[ $# -eq 0 ] || { stat -L -c %a -- \"$@\" && echo @@sha256 && sha256sum -- \"$@\"; }")

    @classmethod
    def unbatch(cls, facts: list[Fact[Any]], stdout: str, rc: int) -> dict[Fact[Any], tuple[str, int]]:
        """Each binary's own answer (mode, then the sha256 line), by position; absent (exit 1) when not found."""
        positions, rest = _positions(stdout)
        modes, _, sums = rest.partition("@@sha256\n")
        pairs = list(zip(modes.splitlines(), sums.splitlines()))
        found = {i: f"{mode}\n{digest.lstrip(chr(92))}" for i, (mode, digest) in zip(positions, pairs)}
        return {f: (found[i], 0) if i in found and len(pairs) == len(positions) else ("", 1)
                for i, f in enumerate(facts)}


@dataclass(frozen=True)
class Listing(Fact[list[str]]):
    """Names in a directory, sorted; empty when it does not exist."""

    path: str

    def command(self) -> str:
        return sh("test -d {p} && ls -1A {p}", p=self.path)

    def process(self, stdout: str, rc: int) -> list[str]:
        return sorted(x for x in stdout.split("\n") if x) if rc == 0 else []


@dataclass(frozen=True)
class Exists(Fact[bool]):
    path: str

    def command(self) -> str:
        return sh("test -e {}", self.path)

    def process(self, stdout: str, rc: int) -> bool:
        return rc == 0


@dataclass(frozen=True)
class Created(Fact[frozenset[tuple[str, str]]]):
    """What apply recorded that it created (:data:`provisioner.steps.CREATED`): ``{(kind, name)}``."""

    def command(self) -> str:
        return f"cat {CREATED}"

    def process(self, stdout: str, rc: int) -> frozenset[tuple[str, str]]:
        return parse_created(stdout, rc)


@dataclass(frozen=True)
class Sysctl(Fact[str | None]):
    """Current value of a sysctl, read from /proc/sys (no procps needed); None if absent."""

    key: str

    def command(self) -> str:
        return sh("cat {}", sysctl_path(self.key))

    def process(self, stdout: str, rc: int) -> str | None:
        return parse_text(stdout, rc)
