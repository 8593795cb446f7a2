"""A small state file next to the inventory: which hosts failed in the last apply/reset.

``inventories/lab.yaml`` → ``inventories/.lab.yaml.provision-state.json``. Written
atomically; only ``--retry-failed`` reads it.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from .runner import HostResult


def path_for(inventory: Path) -> Path:
    return inventory.parent / f".{inventory.name}.provision-state.json"


def record(inventory: Path, mode: str, results: list[HostResult]) -> None:
    """Remember this run; hosts not in it keep their previous state (a --limit run)."""
    path = path_for(inventory)
    hosts = _read(path).get("hosts", {})
    for r in results:
        hosts[r.host] = {"failed": r.failed, "unreachable": r.unreachable, "mode": mode, "error": r.error}
    doc = {"inventory": str(inventory), "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "hosts": hosts}
    tmp = path.with_suffix(".tmp")
    try:
        tmp.write_text(json.dumps(doc, indent=2) + "\n")
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only inventory directory must not fail the run; --retry-failed will say so


def failed_hosts(inventory: Path) -> list[str] | None:
    """Hosts that failed last time, or None when there is no record."""
    doc = _read(path_for(inventory))
    if not doc:
        return None
    return [h for h, s in doc.get("hosts", {}).items() if s.get("failed")]


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
