"""What facts read, as typed values: modules, graph, the facts summary and verify read attributes, not dict keys."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FileState:
    """A regular file on the node (``File``): its mode (4 octal digits), owner, group and bytes."""

    mode: str
    owner: str
    group: str
    content: bytes


@dataclass(frozen=True)
class BinaryState:
    """A file known by its checksum (``Binary``): mode and sha256 (None when it could not be read)."""

    mode: str
    sha256: str | None


@dataclass(frozen=True)
class Link:
    """One interface as ``ip -json -d link`` shows it (``Links``); ``peer`` is a veth's other end, by ifindex."""

    kind: str | None = None
    master: str | None = None
    up: bool = False
    mtu: int | None = None
    mac: str | None = None
    index: int | None = None
    peer: int | None = None
    hairpin: bool | None = None  # a bridge port's hairpin mode (None: not a bridge port)


@dataclass(frozen=True)
class Route:
    """One route as ``ip -json route`` shows it (``Routes``): ``dst`` is ``default`` or a network."""

    dst: str | None
    via: str | None = None
    dev: str | None = None
    protocol: str = "boot"


@dataclass(frozen=True)
class Process:
    """A process holding a socket, as ``ss -p`` names it."""

    name: str
    pid: int


@dataclass(frozen=True)
class Socket:
    """A listening TCP socket (``Listening``): address (``::`` or ``*`` for any), port, the processes holding it."""

    address: str
    port: int
    processes: tuple[Process, ...] = ()
