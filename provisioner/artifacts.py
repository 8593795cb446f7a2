"""Files that travel from this machine to the nodes (CNI plugin binaries), checked before upload.

Reading the source is the only I/O a module's ``prepare`` may do; it happens
while binding the playbook, before any connection, so a missing plugin or a
sha256 mismatch is bad input (exit 2) and nothing has been uploaded.
The bytes are kept here by sha256 for the runner to upload.
"""

from __future__ import annotations

import hashlib
import tarfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

STORE: dict[str, bytes] = {}


class ArtifactError(ValueError):
    pass


@dataclass(frozen=True)
class Artifact:
    name: str
    sha256: str
    size: int


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@lru_cache(maxsize=8)
def _tarball(path: Path, mtime: float) -> dict[str, bytes]:
    out = {}
    with tarfile.open(path, "r:*") as tar:
        for member in tar.getmembers():
            if member.isfile():
                fh = tar.extractfile(member)
                if fh is not None:
                    out[Path(member.name).name] = fh.read()
    return out


def collect(source: Path, names: list[str], pins: dict[str, str], tarball_pin: str | None,
            extra: dict[str, Path] | None = None) -> list[Artifact]:
    """Read plugins ``names`` from ``source`` (a directory or .tgz), check pins, store their bytes.

    ``extra`` maps names to files outside the source (the project's own plugin).
    """
    files: dict[str, bytes] = {}
    if source.is_dir():
        for name in names:
            path = source / name
            if not path.is_file():
                raise ArtifactError(f"plugin {name} not found in {source}")
            files[name] = path.read_bytes()
    elif source.is_file() and source.name.endswith((".tgz", ".tar.gz")):
        if tarball_pin and sha256(source.read_bytes()) != tarball_pin:
            raise ArtifactError(f"{source}: sha256 {sha256(source.read_bytes())} does not match tarball_sha256 {tarball_pin}")
        content = _tarball(source, source.stat().st_mtime)
        for name in names:
            if name not in content:
                raise ArtifactError(f"plugin {name} not found in {source}")
            files[name] = content[name]
    else:
        raise ArtifactError(f"{source} is neither a directory nor a cni-plugins .tgz "
                            "(install Debian's containernetworking-plugins or set cni.source)")
    for name, path in (extra or {}).items():
        files[name] = path.read_bytes()
    out = []
    for name, data in files.items():
        digest = sha256(data)
        if name in pins and pins[name] != digest:
            raise ArtifactError(f"plugin {name}: sha256 {digest} does not match the pinned {pins[name]}")
        STORE[digest] = data
        out.append(Artifact(name, digest, len(data)))
    return out
