"""Facts about the node's system: kernel modules, systemd units, listening sockets."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..shell import command, sh
from . import Fact
from .values import Process, Socket

_USERS = re.compile(r'\("([^"]+)",pid=(\d+)')


def parse_ss(text: str, rc: int) -> list[Socket] | None:
    """``ss -Hltnp`` lines → :class:`Socket` values, by port then address."""
    if rc != 0:
        return None
    out = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 4:
            continue
        addr, _, port = parts[3].rpartition(":")
        procs = tuple(Process(n, int(p)) for n, p in _USERS.findall(line))
        out.append(Socket(addr.strip("[]"), int(port), procs))
    return sorted(out, key=lambda x: (x.port, x.address))


@dataclass(frozen=True)
class KernelModule(Fact[bool]):
    """Is this kernel module loaded (``/sys/module/NAME``)?"""

    name: str

    def command(self) -> str:
        return sh("test -d {}", f"/sys/module/{self.name}")

    def process(self, stdout: str, rc: int) -> bool:
        return rc == 0


@dataclass(frozen=True)
class SystemdUnit(Fact[bool]):
    """Does systemd know ``NAME.service``?"""

    name: str

    def command(self) -> str:
        return sh("systemctl cat {} >/dev/null 2>&1", self.name + ".service")

    def process(self, stdout: str, rc: int) -> bool:
        return rc == 0


@dataclass(frozen=True)
class Listening(Fact[list[Socket] | None]):
    """Listening TCP sockets with their processes, as ``ss -ltnp`` shows them."""

    def command(self) -> str:
        return "ss -Hltnp"

    def process(self, stdout: str, rc: int) -> list[Socket] | None:
        return parse_ss(stdout, rc)


@dataclass(frozen=True)
class Commands(Fact[frozenset[str]]):
    """Which of these commands the node lacks (``command -v``): checked with the facts, before any change."""

    names: tuple[str, ...]

    def command(self) -> str:
        return ("for c in " + command(*self.names)
                + '; do command -v "$c" >/dev/null 2>&1 || echo "$c"; done')

    def process(self, stdout: str, rc: int) -> frozenset[str]:
        return frozenset(n for n in stdout.split() if n in self.names)


@dataclass(frozen=True)
class IptablesRules(Fact[list[str] | None]):
    """The ``-A``/``:`` lines of one iptables table that concern chains named ``PREFIX-…`` (ours), or jump to
    them, as ``iptables-save`` prints them; None where there is no iptables (or it cannot be read)."""

    table: str
    prefix: str = "PROV-"
    family: int = 4

    def command(self) -> str:
        return sh("{} -t {}", "iptables-save" if self.family == 4 else "ip6tables-save", self.table)

    def process(self, stdout: str, rc: int) -> list[str] | None:
        if rc != 0:
            return None
        mine = f"-j {self.prefix}"
        return [line for line in stdout.splitlines()
                if line.startswith(f":{self.prefix}") or line.startswith(f"-A {self.prefix}")
                or (line.startswith("-A ") and (mine in line))]


@dataclass(frozen=True)
class IpvsRules(Fact[list[str] | None]):
    """``ipvsadm -S -n`` lines (virtual services and real servers); ``[]`` where IPVS is not loaded (never loaded
    by looking: ipvsadm would modprobe it); None where ipvsadm is missing or fails."""

    def command(self) -> str:
        return "if [ -e /proc/net/ip_vs ]; then ipvsadm -S -n; else echo no-ipvs; fi"

    def process(self, stdout: str, rc: int) -> list[str] | None:
        if rc != 0:
            return None
        if stdout.strip() == "no-ipvs":
            return []
        return [line.strip() for line in stdout.splitlines() if line.strip().startswith(("-A ", "-a "))]
