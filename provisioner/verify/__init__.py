"""``provision verify``: the packaged pytest-testinfra suite, run over SSH against the nodes.

The engine decides everything the suite needs and hands it over in one JSON
file named by ``PROVISION_VERIFY_PLAN``: the inventory, the nodes to check
(``--limit`` already applied), the ssh_config written from the inventory
(same user, key, port and known_hosts, strict host key checking unless the
inventory says otherwise) and where the shared connections live. The suite
decides nothing of its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from ..inventory import Inventory
from ..transport.openssh import ssh_config

HERE = Path(__file__).parent


def run_suite(inv: Inventory, hosts: list[str], extra: list[str] | None = None, full: bool = False) -> int:
    """Run the suite on ``hosts``; returns pytest's exit code (0 all passed). ``full``: every pod pings every pod
    (the default: every pod its node's pods, and each node one pod on every other node)."""
    with tempfile.TemporaryDirectory(prefix="provision-verify-") as tmp:
        cfg = Path(tmp) / "ssh_config"
        cfg.write_text(ssh_config(inv))
        plan = Path(tmp) / "plan.json"
        plan.write_text(json.dumps({"inventory": str(inv.path.resolve()), "hosts": hosts,
                                    "ssh_config": str(cfg), "control_dir": tmp, "full": full}))
        env = dict(os.environ, PROVISION_VERIFY_PLAN=str(plan))
        argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-c", os.devnull,
                "--rootdir", str(HERE), "-q", "-rfEs", "--tb=short", str(HERE), *(extra or [])]
        try:
            return subprocess.run(argv, env=env).returncode
        finally:
            for h in hosts:  # end the shared ssh connections testinfra opened
                subprocess.run(["ssh", "-F", str(cfg), "-S", f"{tmp}/{h}", "-O", "exit", h], capture_output=True)
