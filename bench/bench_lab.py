"""Benchmark provision on namespace labs, side by side with the OpenSSH floors (and, with --peers, Ansible and pyinfra).

    sudo .venv/bin/python bench/bench_lab.py --nodes 20 [--rounds 3] [--peers] [--routing router] [--json out.json]

Each round brings up fresh labs of N nodes and times, interleaved:

- ``provision apply`` on a fresh lab, then ``verify`` (it must pass: the run did the
  work), ``apply`` again (no-op) and ``plan`` (no changes);
- the **OpenSSH all-steps floor**: on another fresh lab, the very script apply
  renders for each node (same steps, same bytes) sent with plain ``ssh`` (one exec
  per node, all nodes at once), then ``verify``;
- the **OpenSSH hand-written floor**: on another fresh lab, the same steps written by
  hand as one shell script per node (no lock, markers or records: :func:`handwritten`),
  sent the same way, then ``verify``;
- the **OpenSSH facts floor**: the gather script a no-op needs, one ``ssh`` exec per
  node, all at once;
- with ``--peers``: ansible-core and pyinfra doing the same steps
  (``bench/peers/``), installed by this script into ``~/.cache/provisioner-bench/peers-venv`` (never a
  dependency of the project), fresh and no-op.

Every time is the minimum over the rounds (this machine is shared and noisy). The
table gives wall time, time per node, the ratio to the floor, and for provision the
controller's CPU seconds and peak RSS (from ``wait4``). ``--json`` writes the same.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from provisioner.lab import namespace  # noqa: E402

CLI = [sys.executable, "-m", "provisioner.cli"]
LAB, SUBNET = "bench", "10.213.250.0/24"


TIME = shutil.which("time", path="/usr/bin:/bin")  # GNU time: its child is forked from a small process


def measure(argv: list[str], env: dict | None = None) -> dict:
    """Run ``argv``: wall seconds, CPU seconds (user+sys) and peak RSS (MiB) of the command and its children.

    Through GNU time when there is one (a child forked from this big benchmark
    process would count this process's pages in its peak RSS); else wait4 (RSS then
    an upper bound).
    """
    with tempfile.TemporaryDirectory() as d:
        usage_file = Path(d) / "usage"
        wrapped = [TIME, "-q", "-f", "%U %S %M", "-o", str(usage_file), *argv] if TIME else argv
        with open(Path(d) / "out", "w+b") as out, open(Path(d) / "err", "w+b") as err:
            start = time.perf_counter()
            p = subprocess.Popen(wrapped, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env, cwd=HERE.parent)
            _, status, usage = os.wait4(p.pid, 0)
            wall = time.perf_counter() - start
            p.returncode = os.waitstatus_to_exitcode(status)
            out.seek(0)
            err.seek(0)
            result = {"wall": wall, "rc": p.returncode, "out": out.read().decode(errors="replace"),  # whole: checks read it
                      "err": err.read().decode(errors="replace")[-3000:]}
        if TIME and usage_file.exists() and len(usage_file.read_text().split()) == 3:
            user, system, rss_kib = usage_file.read_text().split()
            result.update(cpu=float(user) + float(system), rss_mib=int(rss_kib) / 1024)
        else:
            result.update(cpu=usage.ru_utime + usage.ru_stime, rss_mib=usage.ru_maxrss / 1024)
        return result


def provision(*args: str) -> dict:
    r = measure(CLI + list(args))
    if r["rc"] != 0:
        raise SystemExit(f"provision {' '.join(args)} failed (exit {r['rc']}):\n{r['out']}\n{r['err']}")
    return r


def fresh_lab(nodes: int, tmp: Path, routing: str, pods: tuple[str, ...] = ("web", "api")) -> Path:
    namespace.down(LAB)
    inv = namespace.up(nodes, tmp / "bench.yaml", SUBNET, LAB, pods)  # hand-made pods: the peers make them too
    if routing == "router":
        import yaml

        data = yaml.safe_load(inv.read_text())
        data["cluster"].update(routing="router", router=data["nodes"][0]["address"])
        inv.write_text(yaml.safe_dump(data, sort_keys=False))
    return inv


def verify_names_a_missing_route(inv_path: Path) -> dict:
    """Delete node2's route to the last node's pods; verify must fail and name it; the route is put back."""
    import yaml

    nodes = yaml.safe_load(inv_path.read_text())["nodes"]
    last = len(nodes)
    dst, via = f"10.244.{last}.0/24", nodes[-1]["address"]
    enter = ["nsenter", "-t", str(namespace.node_pid(LAB, "node2")), "-n", "--", "ip", "route"]
    subprocess.run(enter + ["del", dst], check=True)
    try:
        r = measure(CLI + ["verify", str(inv_path)])
    finally:
        subprocess.run(enter + ["add", dst, "via", via, "proto", "147"], check=True)
    if r["rc"] != 1 or f"node2: no route to {dst} via {via}" not in r["out"]:
        raise SystemExit(f"verify did not name the missing route {dst} on node2 (exit {r['rc']}):\n{r['out']}")
    return r


def rendered(inv_path: Path) -> tuple[dict[str, str], dict[str, str]]:
    """Per node: the apply script provision would send to this (fresh) lab, and the no-op gather script."""
    from provisioner import engine
    from provisioner import steps
    from provisioner.engine import runner
    from provisioner.engine.runner import HostResult
    from provisioner.inventory import load_inventory
    from provisioner.transport.ssh import SSHTransport

    inv = load_inventory(inv_path)
    tasks = engine.bind(inv, "apply", None)

    def one(host: str) -> tuple[str, str, str]:
        order = [(i, t) for i, t in enumerate(tasks[host]) if not t.handler]
        wanted = runner.wanted_facts(order, "apply")
        t = SSHTransport(inv, inv.node(host))
        try:
            values = runner.run_facts(t, wanted, 60)
        finally:
            t.close()
        outcomes = runner._plan(host, order, values, "apply", HostResult(host), lambda *a: None)
        todo = [(i, outcomes[i].steps) for i, _ in order if outcomes[i].changed]
        return host, steps.render(todo), runner.facts_script(wanted)[0]

    with ThreadPoolExecutor(max_workers=16) as pool:
        got = list(pool.map(one, tasks))
    return {h: a for h, a, _ in got}, {h: f for h, _, f in got}


def handwritten(inv_path: Path) -> dict[str, str]:
    """Per node: the same steps written by hand as one shell script, with none of provision's bookkeeping (no lock,
    markers, records or checks): the peers' shell snippets (``peers/__init__.py``), then every file provision
    writes, binaries gzip+base64 in a here-document (the cheapest way to carry them in one exec)."""
    import base64
    import gzip
    import shlex
    from concurrent.futures import ThreadPoolExecutor

    from peers import _files, _snippets
    from provisioner import engine
    from provisioner.inventory import load_inventory

    inv = load_inventory(inv_path)
    tasks = engine.bind(inv, "apply", None)
    packed: dict[bytes, str] = {}

    def one(node) -> tuple[str, str]:
        lines = list(_snippets(inv, node).values())  # no set -e: as the peers run them (modprobe may fail in a lab)
        for path, content, mode in _files(inv, node.name, tasks[node.name]):
            if content not in packed:
                packed[content] = base64.encodebytes(gzip.compress(content, 6, mtime=0)).decode()
            p = shlex.quote(path)
            lines.append(f"mkdir -p {shlex.quote(os.path.dirname(path))}\n"
                         f"base64 -d <<'HANDWRITTEN_EOF' | gzip -dc > {p}\n{packed[content]}HANDWRITTEN_EOF\n"
                         f"chmod {mode} {p}")
        return node.name, "\n".join(lines) + "\n"

    with ThreadPoolExecutor(max_workers=16) as pool:
        return dict(pool.map(one, inv.nodes))


def openssh(inv_path: Path, scripts: dict[str, str], tmp: Path, warm_master: bool = False) -> dict:
    """Each node's script through plain OpenSSH (``ssh -F cfg node sh -s``), all nodes at once; wall seconds.

    ``warm_master``: through a ControlMaster connection opened (untimed) beforehand, as Ansible's
    ``ControlPersist`` leaves one from an earlier run: what an OpenSSH transport could at best reach on a
    second run, with no key exchange or authentication left in the timed part."""
    from provisioner.inventory import load_inventory
    from provisioner.transport.openssh import ssh_config

    cfg = tmp / "ssh_config"
    cfg.write_text(ssh_config(load_inventory(inv_path)))
    mux = ["-o", f"ControlPath={tmp}/cm-%C", "-o", "ControlPersist=120"] if warm_master else []
    if warm_master:
        with ThreadPoolExecutor(max_workers=len(scripts)) as pool:
            opened = list(pool.map(lambda h: subprocess.run(["ssh", "-F", str(cfg), *mux, "-o", "ControlMaster=yes",
                                                             "-N", "-f", h], capture_output=True).returncode, scripts))
        if any(opened):
            raise SystemExit(f"OpenSSH ControlMaster: exit codes {opened}")

    def one(item) -> int:
        host, script = item
        return subprocess.run(["ssh", "-F", str(cfg), *mux, host, "sh -s"], input=script.encode(),
                              capture_output=True).returncode

    try:
        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=len(scripts)) as pool:
            codes = list(pool.map(one, scripts.items()))
        wall = time.perf_counter() - start
    finally:
        if warm_master:
            with ThreadPoolExecutor(max_workers=len(scripts)) as pool:
                list(pool.map(lambda h: subprocess.run(["ssh", "-F", str(cfg), *mux, "-O", "exit", h],
                                                       capture_output=True), scripts))
    if any(codes):
        raise SystemExit(f"OpenSSH floor: exit codes {codes}")
    return {"wall": wall, "cpu": None, "rss_mib": None}


def peers_venv() -> Path:
    """ansible-core and pyinfra in their own venv, outside the project (~/.cache/provisioner-bench/peers-venv)."""
    venv = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "provisioner-bench" / "peers-venv"
    venv.parent.mkdir(parents=True, exist_ok=True)
    if not (venv / "bin" / "pyinfra").exists() or not (venv / "bin" / "ansible-playbook").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([venv / "bin" / "pip", "install", "-q", "ansible-core", "pyinfra"], check=True)
    return venv


def peer_run(tool: str, inv_path: Path, tmp: Path, venv: Path) -> dict:
    """ansible-core or pyinfra doing the same steps as site.yaml (bench/peers/)."""
    from peers import prepare  # bench/peers/__init__.py

    files = prepare(inv_path, tmp)
    env = dict(os.environ, ANSIBLE_HOST_KEY_CHECKING="True", ANSIBLE_SSH_ARGS="-o ControlMaster=auto -o ControlPersist=60s "
               f"-o UserKnownHostsFile={files['known_hosts']}", ANSIBLE_FORKS="50", ANSIBLE_NOCOLOR="1",
               PYTHONWARNINGS="ignore")
    if tool == "ansible":
        argv = [str(venv / "bin" / "ansible-playbook"), "-i", str(files["ansible"]), str(HERE / "peers" / "site.yml")]
    else:
        argv = [str(venv / "bin" / "pyinfra"), "-y", "--parallel", "50", str(files["pyinfra"]),
                str(HERE / "peers" / "deploy.py")]
    r = measure(argv, env=env)
    if r["rc"] != 0:
        raise SystemExit(f"{tool} failed (exit {r['rc']}):\n{r['out']}\n{r['err']}")
    return r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--peers", action="store_true", help="also ansible-core and pyinfra (installed into ~/.cache/provisioner-bench/peers-venv)")
    ap.add_argument("--routing", choices=["peers", "router"], default="peers")
    ap.add_argument("--json", type=Path, help="write the results here too")
    ap.add_argument("--pods", default="web,api", help="hand-made pods per node (200 nodes: one, see README's lab section)")
    args = ap.parse_args()
    pods = tuple(p for p in args.pods.split(",") if p)
    warning = namespace.arp_warning(args.nodes, len(pods))
    if warning:
        raise SystemExit(f"bench: {warning}")
    sys.path.insert(0, str(HERE))
    venv = peers_venv() if args.peers else None
    runs: dict[str, list[dict]] = {}

    def add(label: str, r: dict) -> None:
        runs.setdefault(label, []).append(r)
        print(f"  {label:<28} {r['wall']:7.2f}s", flush=True)

    with tempfile.TemporaryDirectory(prefix="bench-") as d:
        tmp = Path(d)
        try:
            for round_ in range(args.rounds):
                print(f"round {round_ + 1}/{args.rounds}", flush=True)
                inv = fresh_lab(args.nodes, tmp, args.routing, pods)
                add("provision apply (fresh)", provision("apply", str(inv), "--forks", "50"))
                add("provision verify", provision("verify", str(inv)))
                if round_ == 0 and args.routing == "peers":  # verify still names one missing route
                    add("provision verify (a route gone)", verify_names_a_missing_route(inv))
                add("provision apply (no-op)", provision("apply", str(inv), "--forks", "50"))
                add("provision plan (no-op)", provision("plan", str(inv), "--forks", "50"))
                _, gather = rendered(inv)
                add("OpenSSH facts floor", openssh(inv, gather, tmp))
                add("OpenSSH facts, warm master", openssh(inv, gather, tmp, warm_master=True))

                inv = fresh_lab(args.nodes, tmp, args.routing, pods)
                apply_scripts, _ = rendered(inv)
                add("OpenSSH all-steps floor", openssh(inv, apply_scripts, tmp))
                provision("verify", str(inv))  # the floor really did the work

                inv = fresh_lab(args.nodes, tmp, args.routing, pods)
                add("OpenSSH hand-written floor", openssh(inv, handwritten(inv), tmp))
                provision("verify", str(inv))

                if venv is not None:
                    for tool in ("ansible", "pyinfra"):
                        inv = fresh_lab(args.nodes, tmp, args.routing, pods)
                        add(f"{tool} (fresh)", peer_run(tool, inv, tmp, venv))
                        provision("verify", str(inv))
                        add(f"{tool} (no-op)", peer_run(tool, inv, tmp, venv))
        finally:
            namespace.down(LAB)
    report(args, runs)


def report(args, runs: dict[str, list[dict]]) -> None:
    best = {label: min(rs, key=lambda r: r["wall"]) for label, rs in runs.items()}
    floors = {"fresh": best.get("OpenSSH all-steps floor"), "no-op": best.get("OpenSSH facts floor")}
    rows = []
    for label, r in best.items():
        kind = "fresh" if "fresh" in label or "all-steps" in label else "no-op" if "no-op" in label or "facts" in label else ""
        floor = floors.get(kind)
        rows.append({"run": label, "wall_s": round(r["wall"], 2), "per_node_s": round(r["wall"] / args.nodes, 3),
                     "vs_floor": round(r["wall"] / floor["wall"], 2) if floor and "floor" not in label else None,
                     "cpu_s": None if r.get("cpu") is None else round(r["cpu"], 2),
                     "peak_rss_mib": None if r.get("rss_mib") is None else round(r["rss_mib"])})
    hand, ours_fresh = best.get("OpenSSH hand-written floor"), best.get("provision apply (fresh)")
    if hand and ours_fresh:
        rows.append({"run": "provision apply (fresh) / hand-written floor", "ratio": round(ours_fresh["wall"] / hand["wall"], 2)})
    for kind in ("fresh", "no-op"):
        ours = best.get(f"provision apply ({kind})")
        for tool in ("ansible", "pyinfra"):
            if ours and f"{tool} ({kind})" in best:
                rows.append({"run": f"{tool} ({kind}) / provision", "ratio": round(best[f"{tool} ({kind})"]["wall"] / ours["wall"], 1)})
    machine = f"{platform.node()}: {os.cpu_count()} cores, Python {platform.python_version()}, kernel {platform.release()}"
    print(f"\n{args.nodes} nodes, routing {args.routing}, min of {args.rounds} round(s); {machine}")
    print(f"{'run':<30} {'wall':>8} {'per node':>9} {'vs floor':>9} {'CPU':>7} {'RSS':>7}")
    for row in rows:
        if "ratio" in row:
            print(f"{row['run']:<46} {row['ratio']:>7}x")
            continue
        print(f"{row['run']:<30} {row['wall_s']:>7.2f}s {row['per_node_s']:>8.3f}s "
              f"{'' if row['vs_floor'] is None else str(row['vs_floor']) + 'x':>9} "
              f"{'' if row['cpu_s'] is None else str(row['cpu_s']) + 's':>7} "
              f"{'' if row['peak_rss_mib'] is None else str(row['peak_rss_mib']) + 'M':>7}")
    if args.json:
        args.json.write_text(json.dumps({"nodes": args.nodes, "routing": args.routing, "rounds": args.rounds,
                                         "machine": machine, "rows": rows}, indent=2) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    shutil.which("ssh") or sys.exit("needs the OpenSSH client")
    main()
