"""Files that travel from this machine to the nodes (CNI plugin binaries), checked before upload.

Reading the source is the only I/O a module's ``prepare`` may do; it happens
while binding the playbook, before any connection, so a missing plugin or a
sha256 mismatch is bad input (exit 2) and nothing has been uploaded.
Each :class:`Artifact` carries its bytes; they travel with the bound task's
arguments into the ``Upload`` steps of the plan (no store between binding and
running).
"""

from __future__ import annotations


import base64
import gzip
import hashlib
import tarfile
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

class ArtifactError(ValueError):
    pass


@dataclass(frozen=True)
class Artifact:
    name: str
    sha256: str
    data: bytes = field(repr=False, compare=False)

    @property
    def size(self) -> int:
        return len(self.data)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


_COMPRESSED: dict[str, Future[bytes]] = {}
_COMPRESSING = threading.Lock()
_POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="compress")


def _compress(data: bytes) -> bytes:
    return base64.encodebytes(gzip.compress(data, compresslevel=6, mtime=0))


def start_compressing(artifact: Artifact) -> None:
    """Begin compressing the artifact's bytes in the background, once per run: as soon as the first host's plan
    needs it (the other hosts are still reading their facts), never for a run that uploads nothing (a no-op
    apply once compressed every plugin for nothing)."""
    with _COMPRESSING:
        if artifact.sha256 not in _COMPRESSED:
            _COMPRESSED[artifact.sha256] = _POOL.submit(_compress, artifact.data)


def compressed_base64(artifact: Artifact) -> bytes:
    """The artifact's bytes gzip-compressed and base64-encoded in lines (ASCII), computed once per run.

    Every node's apply script needs them at about the same moment (one thread per
    node): all of them wait for the one compression started at binding, and all of
    them send this one object (the scripts hold it, never a copy of it).
    """
    start_compressing(artifact)
    return _COMPRESSED[artifact.sha256].result()


def _stamp(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_mtime_ns, st.st_size


@lru_cache(maxsize=64)
def _hashed(path: Path, stamp: tuple[int, int]) -> tuple[bytes, str]:
    """A file's bytes and sha256, read once per run (binding asks for them once per node)."""
    data = path.read_bytes()
    return data, sha256(data)


def load(path: Path) -> tuple[bytes, str]:
    return _hashed(path, _stamp(path))


@lru_cache(maxsize=8)
def _tarball(path: Path, stamp: tuple[int, int]) -> dict[str, tuple[bytes, str]]:
    out = {}
    with tarfile.open(path, "r:*") as tar:
        for member in tar.getmembers():
            if member.isfile():
                fh = tar.extractfile(member)
                if fh is not None:
                    data = fh.read()
                    out[Path(member.name).name] = (data, sha256(data))
    return out


def collect(source: Path, names: list[str], pins: dict[str, str], tarball_pin: str | None,
            extra: dict[str, Path] | None = None) -> list[Artifact]:
    """Read plugins ``names`` from ``source`` (a directory or .tgz) and check their pins.

    ``extra`` maps names to files outside the source (the project's own plugin).
    """
    files: dict[str, tuple[bytes, str]] = {}
    if source.is_dir():
        for name in names:
            path = source / name
            if not path.is_file():
                raise ArtifactError(f"plugin {name} not found in {source}")
            files[name] = load(path)
    elif source.is_file() and source.name.endswith((".tgz", ".tar.gz")):
        if tarball_pin and (digest := load(source)[1]) != tarball_pin:
            raise ArtifactError(f"{source}: sha256 {digest} does not match tarball_sha256 {tarball_pin}")
        content = _tarball(source, _stamp(source))
        for name in names:
            if name not in content:
                raise ArtifactError(f"plugin {name} not found in {source}")
            files[name] = content[name]
    else:
        raise ArtifactError(f"{source} is neither a directory nor a cni-plugins .tgz "
                            "(install Debian's containernetworking-plugins or set cni.source)")
    for name, path in (extra or {}).items():
        files[name] = load(path)
    out = []
    for name, (data, digest) in files.items():
        if name in pins and pins[name] != digest:
            raise ArtifactError(f"plugin {name}: sha256 {digest} does not match the pinned {pins[name]}")
        out.append(Artifact(name, digest, data))
    return out
