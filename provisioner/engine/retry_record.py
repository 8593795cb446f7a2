"""A small state file next to the inventory: which hosts failed in the last apply/reset.

``inventories/lab.yaml`` → ``inventories/.lab.yaml.provision-state.json``. Written
atomically; only ``--retry-failed`` reads it.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from .runner import HostResult


def path_for(inventory: Path) -> Path:
    return inventory.parent / f".{inventory.name}.provision-state.json"


_WRITE = threading.Lock()  # hosts finish in parallel threads; each adds its line in turn


def record(inventory: Path, mode: str, results: list[HostResult]) -> None:
    """Remember these hosts' outcome; other hosts keep their previous state (a --limit run, or hosts still running)."""
    with _WRITE:
        _record(path_for(inventory), inventory, mode, results)


def start(inventory: Path, mode: str, hosts: list[str]) -> None:
    """Before a run: its hosts count as failed until each one finishes, so a run killed half-way
    leaves a record that ``--retry-failed`` can use."""
    unfinished = [HostResult(h, error="the run ended before this host finished") for h in hosts]
    record(inventory, mode, unfinished)


def _record(path: Path, inventory: Path, mode: str, results: list[HostResult]) -> None:
    hosts = _read(path).get("hosts", {})
    for r in results:
        hosts[r.host] = {"failed": r.failed, "unreachable": r.unreachable, "mode": mode, "error": r.error}
    doc = {"inventory": str(inventory), "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "hosts": hosts}
    try:  # a new temp file (O_EXCL, 0600) beside the record: nothing planted there is written through
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError:
        return  # a read-only inventory directory must not fail the run; --retry-failed will say so
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(json.dumps(doc) + "\n")  # indent would use json's pure-Python encoder: quadratic in hosts, as each host rewrites it
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def failed_hosts(inventory: Path) -> list[str] | None:
    """Hosts that failed last time, or None when there is no record."""
    doc = _read(path_for(inventory))
    if not doc:
        return None
    return [h for h, s in doc.get("hosts", {}).items() if s.get("failed")]


def _read(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}  # a record someone overwrote with other JSON: none
