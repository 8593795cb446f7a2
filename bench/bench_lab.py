"""Benchmark provision on the namespace lab: fresh apply, no-op apply, plan, reset.

    sudo .venv/bin/python bench/bench_lab.py --nodes 5 --rounds 3 [--peers]

Prints a table of wall-clock seconds (median over rounds) and SSH execs per host
for a no-op run, which the design says must be one. With --peers and ansible-core
installed in the venv (pip install ansible-core; never a project dependency), the
same no-op check ("read the links of every node, change nothing") is timed with an
Ansible ad-hoc `raw` command over the same SSH settings, for comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from provisioner.lab import namespace  # noqa: E402

CLI = [sys.executable, "-m", "provisioner.cli"]


def timed(argv: list[str]) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    p = subprocess.run(argv, capture_output=True, text=True)
    return time.perf_counter() - start, p


def provision(*args: str) -> float:
    seconds, p = timed(CLI + list(args))
    if p.returncode != 0:
        raise SystemExit(f"provision {' '.join(args)} failed:\n{p.stdout}\n{p.stderr}")
    return seconds


def execs_per_host_noop(inv: Path) -> int:
    """Count SSH exec channels of a no-op apply on one host, through the real transport."""
    from provisioner.inventory import load_inventory
    from provisioner.playbook import bind, load_playbook, resolve_path
    from provisioner.engine.runner import Options, run_all
    from provisioner.transport.ssh import SSHTransport

    loaded = load_inventory(inv)
    node = loaded.nodes[0]
    count = [0]

    class Counting(SSHTransport):
        def run(self, script, timeout=None):
            count[0] += 1
            return super().run(script, timeout)

    hosts = bind(load_playbook(resolve_path(None)), loaded, [node.name])
    run_all(hosts, lambda h: Counting(loaded, node), "apply", Options())
    return count[0]


def ansible_noop(inv: Path, tmp: Path) -> float | None:
    ansible = shutil.which("ansible", path=str(Path(sys.executable).parent)) or shutil.which("ansible")
    if ansible is None:
        return None
    data = json.loads(subprocess.run(CLI + ["validate", str(inv), "--json"], capture_output=True, text=True).stdout)
    import yaml
    raw = yaml.safe_load(inv.read_text())
    hosts = tmp / "hosts.ini"
    hosts.write_text("[lab]\n" + "".join(f"{n} ansible_host={v['ip']}\n" for n, v in data["nodes"].items()))
    # same host keys as provision uses (the lab's known_hosts, strict): nothing is written to ~/.ssh
    env = dict(os.environ, ANSIBLE_SSH_ARGS=f"-o UserKnownHostsFile={raw['ssh']['known_hosts']} -o StrictHostKeyChecking=yes "
                                            "-o ControlMaster=auto -o ControlPersist=30s")
    argv = [ansible, "lab", "-i", str(hosts), "-u", "root", "--private-key", raw["ssh"]["identity_file"],
            "-m", "raw", "-a", "ip -json link show", "-f", "10"]
    start = time.perf_counter()
    p = subprocess.run(argv, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    if p.returncode != 0:
        print(f"ansible failed: {p.stdout[-300:]} {p.stderr[-300:]}", file=sys.stderr)
        return None
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--peers", action="store_true", help="also time Ansible, if installed")
    args = ap.parse_args()
    rows: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for _ in range(args.rounds):
            inv = namespace.up(args.nodes, tmp / "bench.yaml", "10.213.250.0/24", "bench", ("web", "api"), ("db",))
            try:
                for label, argv in (("plan (fresh)", ["plan"]), ("apply (fresh)", ["apply"]),
                                    ("apply (no-op)", ["apply"]), ("plan (no-op)", ["plan"]),
                                    ("verify", ["verify"]), ("reset", ["reset"])):
                    rows.setdefault(label, []).append(provision(argv[0], str(inv)))
                provision("apply", str(inv))
                execs = execs_per_host_noop(inv)
                if args.peers:
                    t = ansible_noop(inv, tmp)
                    if t is not None:
                        rows.setdefault("ansible raw no-op (peer)", []).append(t)
            finally:
                namespace.down("bench")
    print(f"{args.nodes} nodes, median of {args.rounds} round(s), wall-clock seconds incl. Python start-up")
    for label, values in rows.items():
        print(f"  {label:<26} {statistics.median(values):7.2f}s")
    print(f"  SSH execs per host, no-op apply: {execs} (design: 1)")


if __name__ == "__main__":
    main()
