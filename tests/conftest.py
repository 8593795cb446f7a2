import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent  # the checkout: tests never depend on the working directory

BASE = """\
cluster:
  name: demo
  node_cidr: 192.168.56.0/24
  pod_cidr: 10.244.0.0/16
  service_cidr: 10.96.0.0/12
nodes:
  - name: node1
    address: 192.168.56.11
    pods: [web, api]
  - name: node2
    address: 192.168.56.12
    pods: [web]
  - name: node3
    address: 192.168.56.13
"""


@pytest.fixture
def write(tmp_path):
    """write(text, name="inv.yaml") → path of a file holding dedented ``text``."""
    def _write(text: str, name: str = "inv.yaml") -> Path:
        p = tmp_path / name
        p.write_text(textwrap.dedent(text))
        return p
    return _write


@pytest.fixture
def base_inventory(write):
    from provisioner.inventory import load_inventory
    return load_inventory(write(BASE))


def wait_until(predicate, limit: float = 30, every: float = 0.05) -> bool:
    """Poll for an event (a file gone, a process ended, a lock taken), at most ``limit`` seconds."""
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(every)
    return False
