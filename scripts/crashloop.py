#!/usr/bin/env python3
"""Crash-loop check: SIGKILL `provision apply` at random moments, then apply + verify must converge.

Each round starts an apply (a fresh lab, or one reset in between), kills the client at
a random moment, then runs apply and verify to completion: both must pass, and once
the node lock's lease has lapsed no temp file, run directory or lock holder may be
left on any node. Run as root from a checkout (after ./scripts/bootstrap.sh):

    .venv/bin/python scripts/crashloop.py [--rounds 20] [--nodes 3] [--seed N]

It makes its own lab (name `crash`, subnet 10.213.250.0/24) and always takes it down.
"""

from __future__ import annotations

import argparse
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from provisioner.lab import namespace  # noqa: E402

LEFTOVERS = ("ls -A /tmp /etc/cni/bin /etc/cni/net.d 2>/dev/null | grep -E '^[.].*provisioner' ; "
             "cat /run/provisioner.lock.owner /run/provisioner.lock.script 2>/dev/null; true")


def cli(*argv: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "provisioner.cli", *argv], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


def node_sh(lab: str, node: str, script: str) -> str:
    pid = namespace.node_pid(lab, node)
    return subprocess.run(["nsenter", "-t", str(pid), "-n", "-m", "-u", "-p", "-r", "-w", "--", "sh", "-c", script],
                          capture_output=True, text=True, timeout=60).stdout


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--nodes", type=int, default=3)
    p.add_argument("--seed", type=int, default=None)
    args = p.parse_args()
    rng = random.Random(args.seed)
    name, failures = "crash", 0
    with tempfile.TemporaryDirectory() as tmp:
        inv = Path(tmp) / "crash.yaml"
        namespace.down(name)
        namespace.up(args.nodes, inv, "10.213.250.0/24", name, ("web", "api"), ("db",))
        try:
            for rnd in range(1, args.rounds + 1):
                if rng.random() < 0.5:
                    cli("reset", str(inv))
                victim = subprocess.Popen([sys.executable, "-m", "provisioner.cli", "apply", str(inv)], cwd=ROOT,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                delay = rng.uniform(0.0, 3.0)
                time.sleep(delay)
                victim.send_signal(signal.SIGKILL)
                victim.wait()
                apply = cli("apply", str(inv), "--lock-timeout", "60")
                verify = cli("verify", str(inv))
                time.sleep(8)  # past the lock lease
                left = {n: node_sh(name, n, LEFTOVERS).strip() for n in namespace.node_names(args.nodes)}
                ok = apply.returncode == 0 and verify.returncode == 0 and not any(left.values())
                failures += not ok
                print(f"round {rnd:2}: killed after {delay:.2f}s; apply {apply.returncode}, verify {verify.returncode}, "
                      f"leftovers {sum(bool(v) for v in left.values())} -> {'ok' if ok else 'FAILED'}", flush=True)
                if not ok:
                    print(apply.stdout[-2000:], verify.stdout[-2000:], left, sep="\n")
        finally:
            namespace.down(name)
    print(f"{args.rounds - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
