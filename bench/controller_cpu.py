"""Controller CPU per node without the network: bind, then facts parsed, plan and apply script rendered for
every node of an N-node inventory, each node answering as a fresh lab node does.

    sudo .venv/bin/python bench/controller_cpu.py --nodes 20 200

One real 1-node lab answers the gather script once per role (the control plane, a worker); every node of the
big inventory then gets that answer (with its own nonce), so what is timed is only this process's own work,
the part that must stay flat per node as the fleet grows (SSH's share is in bench_lab.py's table).
"""

from __future__ import annotations

import argparse
import ipaddress
import sys
import tempfile
import time
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from provisioner import engine, steps  # noqa: E402
from provisioner.engine import runner  # noqa: E402
from provisioner.engine.runner import HostResult  # noqa: E402
from provisioner.inventory import load_inventory  # noqa: E402
from provisioner.lab import namespace  # noqa: E402
from provisioner.transport import Result  # noqa: E402
from provisioner.transport.ssh import SSHTransport  # noqa: E402

LAB, SUBNET = "cpub", "10.213.251.0/24"


def measure(nodes: int, tmp: Path, lab_inv: Path) -> dict[str, float]:
    net = ipaddress.IPv4Network("10.50.0.0/16")
    data = namespace.inventory("p", tmp, str(net), list(net.hosts())[1:nodes + 1], pods=("web",))
    path = tmp / f"inv{nodes}.yaml"
    path.write_text(yaml.safe_dump(data))
    inv = load_inventory(path)
    start = time.process_time()
    tasks = engine.bind(inv, "apply", None)
    bind = time.process_time() - start
    lab = load_inventory(lab_inv)
    answers = {}
    t = SSHTransport(lab, lab.nodes[0])
    try:
        for role in ("node1", "node2"):  # the control plane and a worker: every other node is one
            wanted = runner.wanted_facts(runner.task_order(tasks[role], "apply"), "apply")
            script, nonce = runner.facts_script(wanted)
            answers[role] = (t.run(script, 60).stdout, nonce)
    finally:
        t.close()
    start = time.process_time()
    for host, host_tasks in tasks.items():
        order = [(i, task) for i, task in enumerate(host_tasks) if not task.handler]
        wanted = runner.wanted_facts(order, "apply")
        script, nonce = runner.facts_script(wanted)
        captured, theirs = answers["node1" if host == "node1" else "node2"]
        values = runner.read_facts(host, wanted, nonce, Result(captured.replace(theirs, nonce), "", 0), 60)
        result = HostResult(host)
        outcomes = runner._plan(host, order, values, "apply", result, lambda *a: None)
        if outcomes is None:
            raise SystemExit(f"{host}: " + "; ".join(str(r.error) for r in result.tasks if r.error))
        steps.render([(i, outcomes[i].steps) for i, _ in order if outcomes[i].changed])
    rest = time.process_time() - start
    return {"nodes": nodes, "bind_ms_per_node": 1000 * bind / nodes, "plan_render_ms_per_node": 1000 * rest / nodes}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, nargs="+", default=[20, 200])
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="cpub-") as d:
        tmp = Path(d)
        (tmp / "id_ed25519").write_text("unused: nothing connects to the big inventory's nodes\n")
        (tmp / "known_hosts").write_text("")
        namespace.down(LAB)
        try:
            lab_inv = namespace.up(1, tmp / "lab.yaml", SUBNET, LAB, ("web",))
            for n in args.nodes:
                r = measure(n, tmp, lab_inv)
                print(f"{n:>5} nodes: bind {r['bind_ms_per_node']:.1f} ms/node, facts + plan + script "
                      f"{r['plan_render_ms_per_node']:.1f} ms/node", flush=True)
        finally:
            namespace.down(LAB)


if __name__ == "__main__":
    main()
