"""``provision``: argument parsing and output only; the work happens in :mod:`provisioner.engine` and friends.

Exit codes: 0 success, 1 a host failed or was unreachable, 2 bad input.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import FORKS, __version__
from ..errors import InputError, ProvisionerError, printable, printable_lines
from ..yaml_lines import read_text, write_local

if TYPE_CHECKING:  # the CLI imports the engine only for the commands that use it (a fast --help)
    from ..engine import Options
    from ..inventory import Inventory


# Python's cyclic GC walks the young objects every 700 allocations: a run builds most of its objects at the start
# (imports, the inventory, every host's bound tasks), and those walks were 12% of a 20-node no-op's start. Fewer
# walks while provision runs; garbage without cycles is freed at once as always.
GC_THRESHOLD = (10_000, 10, 10)


def main(argv: list[str] | None = None) -> int:
    previous = gc.get_threshold()
    gc.set_threshold(*GC_THRESHOLD)
    try:
        return _main(argv)
    finally:
        gc.set_threshold(*previous)


def _main(argv: list[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    _resolve_inventory(parser, args)
    if getattr(args, "check", False) and args.mode == "apply":
        args.mode = "plan"  # apply --check is plan; reset --check is a dry reset (Options.check)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except InputError as exc:
        if getattr(args, "json", False):  # a program reading --json gets the error as JSON too
            print(json.dumps({"ok": False, "error": "bad input", "problems": [str(p) for p in exc.problems]}))
        print(f"error: {len(exc.problems)} problem(s):" if len(exc.problems) > 1 else "error:", file=sys.stderr)
        for p in exc.problems:
            print(f"  {p}", file=sys.stderr)
        return exc.exit_code
    except ProvisionerError as exc:
        if getattr(args, "json", False):
            print(json.dumps({"ok": False, "error": str(exc)}))
        print(f"error: {printable_lines(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into head & co.
        sys.stderr.close()
        return 0


# FORKS (50): hosts at once, one thread and one SSH connection each; a run of up to 50 nodes goes in one wave


def positive(text: str) -> int:
    """argparse type for counts that must be at least 1 (``-f 0`` would run nothing, or hang)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not 1 or more")
    return value


def inventory_arg(sp: argparse.ArgumentParser) -> None:
    """The inventory, positional (``provision plan inv.yaml``) or as Ansible users type it (``-i inv.yaml``)."""
    sp.add_argument("inventory", nargs="?", help="inventory YAML file (or -i FILE)")
    sp.add_argument("-i", "--inventory", dest="inventory_option", metavar="INV", help="inventory YAML file")


def _resolve_inventory(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if not hasattr(args, "inventory_option"):
        return
    given = [x for x in (args.inventory, args.inventory_option) if x]
    if not given:
        parser.error(f"{args.mode}: an inventory is needed (INV or -i INV)")
    if len(set(given)) > 1:
        parser.error(f"{args.mode}: two inventories given ({given[0]} and {given[1]}); give one")
    args.inventory = given[0]


Command = Callable[[str, Callable[[argparse.Namespace], int], str], argparse.ArgumentParser]


def build_parser() -> argparse.ArgumentParser:
    """The CLI: one builder per family of commands below, each adding its subcommands and their options."""
    p = argparse.ArgumentParser(prog="provision", description="Kubernetes pod networking by hand, over SSH, from a YAML inventory.")
    p.add_argument("--version", action="version", version=f"provision {__version__}")
    sub = p.add_subparsers(metavar="COMMAND")

    def cmd(name: str, func: Callable[[argparse.Namespace], int], help: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help, description=help)
        sp.set_defaults(func=func, mode=name)
        return sp

    _checks(cmd)
    _runs(cmd)
    _reads(cmd)
    _helpers(cmd)
    _shells(cmd)
    _importers(sub)
    _labs(sub)
    return p


def _run_opts(sp: argparse.ArgumentParser, playbook: bool = True) -> None:
    """The options of plan, apply and reset."""
    inventory_arg(sp)
    if playbook:
        sp.add_argument("-p", "--playbook", help="playbook YAML (default playbooks/site.yaml)")
    sp.add_argument("-f", "--forks", type=positive, default=FORKS, help=f"hosts worked on at once (default {FORKS})")
    sp.add_argument("-l", "--limit", help="an Ansible host pattern: names, groups, globs, all, :! :& ~regex @file")
    sp.add_argument("--retry-failed", action="store_true",
                    help="run only the hosts that failed or were unreachable in the previous run of this inventory")
    sp.add_argument("--json", action="store_true", help="print one JSON document instead of lines")
    sp.add_argument("-v", "--verbose", action="store_true", help="show commands and diffs of changed tasks")
    sp.add_argument("-D", "--diff", action="store_true", help="show the file diffs of changed tasks (as ansible --diff)")
    sp.add_argument("--timeout", type=float, default=300, help="seconds one exec may run on a host (default 300)")
    sp.add_argument("--host-timeout", type=float, help="seconds all of one host's work may take")
    sp.add_argument("--retries", type=int, default=2, help="connection attempts after the first, with backoff (default 2)")
    sp.add_argument("--max-fail-percent", type=float, metavar="P",
                    help="stop starting new hosts once more than P%% of all hosts have failed")
    sp.add_argument("--lock-timeout", type=float, default=60,
                    help="seconds to wait for another run's lock on a node (default 60; 0 waits forever)")
    sp.add_argument("-t", "--tags", action="append", default=[], metavar="TAGS",
                    help="only tasks with these tags (comma-separated, repeatable; always/never/tagged/untagged/all "
                         "as in Ansible)")
    sp.add_argument("--skip-tags", action="append", default=[], metavar="TAGS", help="leave out tasks with these tags")
    sp.add_argument("--start-at-task", metavar="NAME", help="start at the first task of this name (or glob); "
                                                            "not for reset")
    sp.add_argument("--list-tasks", action="store_true", help="list the tasks that would run, with their tags; "
                                                               "contacts no node")
    sp.add_argument("--list-tags", action="store_true", help="list the tags of the tasks that would run")


def _checks(cmd: Command) -> None:
    """validate, ipcalc: nothing is contacted."""
    sp = cmd("validate", _validate, "check an inventory (and a playbook) without contacting any node")
    inventory_arg(sp)
    sp.add_argument("-p", "--playbook", help="the playbook to bind to every node (default playbooks/site.yaml)")
    sp.add_argument("--json", action="store_true")

    sp = cmd("ipcalc", _ipcalc, "network numbers of ADDRESS/PREFIX, like Debian's ipcalc")
    sp.add_argument("address", help="e.g. 10.49.70.3/24")
    sp.add_argument("--json", action="store_true")


def _runs(cmd: Command) -> None:
    """plan, apply, reset."""
    _run_opts(cmd("plan", _run, "show what apply would change; changes nothing"))
    sp = cmd("apply", _run, "bring every node to the state the playbook describes")
    _run_opts(sp)
    sp.add_argument("-C", "--check", action="store_true", help="change nothing: the same as `provision plan` (ansible --check)")
    sp = cmd("reset", _run, "undo what apply made (each module's reverse, in reverse order), and nothing else")
    _run_opts(sp)
    sp.add_argument("-C", "--check", action="store_true", help="change nothing: show what reset would undo")


def _reads(cmd: Command) -> None:
    """facts, graph, verify: read the nodes, change nothing."""
    sp = cmd("facts", _facts, "each node's IP, interface, MAC, network, listening ports, bridge and pod routes")
    inventory_arg(sp)
    sp.add_argument("-l", "--limit")
    sp.add_argument("--json", action="store_true")
    sp.add_argument("-f", "--forks", type=positive, default=FORKS)

    sp = cmd("graph", _graph, "draw the pod network from the inventory; --live reads the nodes and marks drift in red")
    inventory_arg(sp)
    sp.add_argument("-o", "--out", help="file to write (default: the inventory's name with .svg, beside it)")
    sp.add_argument("--format", choices=["svg", "png", "dot"], help="default: from -o's suffix, else svg")
    sp.add_argument("--live", action="store_true", help="gather facts (one exec per node) and draw in red what plan would "
                    "change; exit 1 on drift")
    sp.add_argument("-p", "--playbook", help="with --live: the playbook whose plan is the drift (default playbooks/site.yaml)")
    sp.add_argument("-l", "--limit", help="only these nodes (names or globs)")
    sp.add_argument("-f", "--forks", type=positive, default=FORKS)
    sp.add_argument("--json", action="store_true", help="print the graph as data (nodes, edges, drift) instead")

    sp = cmd("verify", _verify, "run the packaged testinfra suite against the nodes")
    inventory_arg(sp)
    sp.add_argument("-l", "--limit", help="only these nodes (names or globs); peers outside the limit are not checked")
    sp.add_argument("--full", action="store_true", help="every pod pings every pod (default: every pod the pods of its "
                    "node, and each node one pod on every other node: linear in the nodes)")
    sp.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")


def _helpers(cmd: Command) -> None:
    """coredns, dns-name, weave: the last steps of the manual procedure, by hand."""
    sp = cmd("coredns", _coredns, "the Corefile and CoreDNS manifests apply writes (ConfigMap, Service at dns_ip, …)")
    inventory_arg(sp)
    sp.add_argument("-p", "--playbook", help="take them from this playbook's coredns task (default playbooks/site.yaml)")
    sp.add_argument("--out", help="directory to write Corefile and coredns.yaml into (default: print)")

    sp = cmd("dns-name", _dns_name, "DNS names: a service FQDN, or with --pod a pod's A record")
    sp.add_argument("name", help="service name, or a pod IP with --pod")
    sp.add_argument("-n", "--namespace", default="default")
    sp.add_argument("--domain", default="cluster.local")
    sp.add_argument("--pod", action="store_true", help="NAME is a pod IP")
    sp.add_argument("-i", "--inventory", help="take the domain from this inventory")

    sp = cmd("weave", _weave, "check Weave's IPALLOC_RANGE against the inventory and print how to install it")
    inventory_arg(sp)


def _shells(cmd: Command) -> None:
    """ssh-config, ssh: the nodes with the inventory's SSH settings."""
    sp = cmd("ssh-config", _ssh_config, "print an ssh_config for the nodes (save it, then ssh -F FILE node1)")
    inventory_arg(sp)

    sp = cmd("ssh", _ssh, "open a shell (or run a command) on a node with the inventory's SSH settings")
    inventory_arg(sp)
    sp.add_argument("node")
    sp.add_argument("command", nargs=argparse.REMAINDER, help="command to run (default: a login shell)")


def _importers(sub: Any) -> None:
    """inventory from-kubectl / from-ansible."""
    sources = sub.add_parser("inventory", help="write an inventory from what you have: kubectl nodes, an Ansible "
                                               "inventory").add_subparsers(metavar="SOURCE")
    for name, help_ in (("from-kubectl", "from `kubectl get nodes -o json` or `-o yaml` (a FILE, or - for stdin)"),
                        ("from-ansible", "from an Ansible or kubespray inventory (INI, YAML, or `ansible-inventory "
                                         "--list` JSON), with the group_vars/ and host_vars/ beside it")):
        sp = sources.add_parser(name, help=help_, description=help_)
        sp.add_argument("source", nargs="?" if name == "from-kubectl" else None, default="-",
                        help="the input file" + (" (default: stdin)" if name == "from-kubectl" else ""))
        kube = name == "from-kubectl"
        sp.add_argument("--service-cidr",
                        help="the cluster's service range (" + ("a node list does not know it; or --kubeadm-config)"
                                                                 if kube else "default: kube_service_addresses)"))
        sp.add_argument("--pod-cidr",
                        help="the cluster's pod range (" + ("or --kubeadm-config; never guessed)" if kube else
                                                            "default: kube_pods_subnet; never guessed)"))
        if kube:
            sp.add_argument("--kubeadm-config", metavar="FILE",
                            help="kubeadm's ClusterConfiguration, e.g. `kubectl -n kube-system get cm kubeadm-config -o "
                                 "yaml`: podSubnet, serviceSubnet and dnsDomain from it")
        sp.add_argument("--node-cidr", help="the node network (default: the smallest network holding the node IPs, at most /24)")
        sp.add_argument("-o", "--out", help="inventory file to write (default: print it)")
        sp.set_defaults(func=_import_inventory, source_kind=name)


def _labs(sub: Any) -> None:
    """lab up / down / status / vagrant-inventory."""
    lab = sub.add_parser("lab", help="local lab: up, down, status").add_subparsers(metavar="ACTION")
    up = lab.add_parser("up", help="start a namespace lab and write its inventory")
    up.add_argument("--nodes", type=int, default=3)
    up.add_argument("--out", default="lab-inventory.yaml", help="inventory file to write (default lab-inventory.yaml)")
    up.add_argument("--subnet", default="10.213.0.0/24", help="the lab's node network (default 10.213.0.0/24)")
    up.add_argument("--ip-family", choices=["ipv4", "dual", "ipv6"], default="ipv4",
                    help="ipv4 (default); dual: nodes and cluster dual-stack, an IPv6 ULA node network beside the IPv4 "
                         "one; ipv6: IPv6 only")
    up.add_argument("--name", default="plab", help="lab name, prefix of its namespaces and links (default plab)")
    up.add_argument("--pods", default="web,api", help="lab pods per node, wired by hand (default web,api)")
    up.add_argument("--cni-pods", default="", help="lab pods per node attached through the CNI plugin (e.g. db)")
    up.add_argument("--cni-type", choices=["bridge", "provisioner-bridge"], help="CNI plugin the lab inventory selects")
    up.add_argument("--used", action="store_true",
                    help="nodes see this machine's own /etc/containerd, /etc/cni, /opt/cni, /etc/kubernetes and "
                         "/etc/default/kubelet, as a used machine with those packages would (default: a fresh machine)")
    up.set_defaults(func=_lab_up)
    down = lab.add_parser("down", help="remove every namespace, link, process and file of the lab")
    down.add_argument("--name", default="plab")
    down.set_defaults(func=_lab_down)
    vi = lab.add_parser("vagrant-inventory", help="an inventory that reaches the Vagrant VMs, from `vagrant ssh-config`")
    vi.add_argument("--inventory", default="inventories/vagrant.yaml", help="the VM lab's inventory (default inventories/vagrant.yaml)")
    vi.add_argument("--ssh-config", help="recorded `vagrant ssh-config` output, - for stdin (default: run vagrant ssh-config)")
    vi.add_argument("--out", default="vagrant-lab.yaml", help="inventory to write (default vagrant-lab.yaml)")
    vi.set_defaults(func=_vagrant_inventory)
    st = lab.add_parser("status", help="what exists of the lab")
    st.add_argument("--name", default="plab")
    st.set_defaults(func=_lab_status)


def _inventory(path: str) -> Inventory:
    """Load and check an inventory; its warnings go to stderr."""
    from ..inventory import load_inventory

    inv = load_inventory(path)
    for w in inv.warnings:
        print(f"warning: {w}", file=sys.stderr)
    return inv


def _validate(args: argparse.Namespace) -> int:
    from .. import engine

    inv = _inventory(args.inventory)
    engine.bind(inv, "apply", args.playbook)  # the playbook too (default site.yaml): a bad cni.source shows here
    if args.json:
        print(json.dumps({"ok": True, "nodes": {n.name: {"ip": str(n.ip), "pod_subnet": str(n.pod_subnet),
                                                         "gateway": str(n.pod_gateway)} for n in inv.nodes}}))
    else:
        print(f"{args.inventory}: ok ({len(inv.nodes)} nodes)")
        for n in inv.nodes:
            print(f"  {n.name:<12} {', '.join(map(str, n.ips)):<16} pods {', '.join(map(str, n.pod_subnets))} "
                  f"gateway {', '.join(map(str, n.pod_gateways))}")
    return 0


def _ipcalc(args: argparse.Namespace) -> int:
    from ..addressing import format_ipcalc, ipcalc

    try:
        fields = ipcalc(args.address)
    except ValueError as exc:
        raise InputError(f"{args.address}: {exc}") from None
    print(json.dumps(fields) if args.json else format_ipcalc(fields))
    return 0


def _options(args: argparse.Namespace) -> Options:
    from ..engine import Options

    return Options(forks=args.forks, timeout=args.timeout, host_timeout=args.host_timeout,
                   lock_timeout=args.lock_timeout, max_fail_percent=args.max_fail_percent, retries=args.retries,
                   check=getattr(args, "check", False))


def _run(args: argparse.Namespace) -> int:
    """plan, apply, reset: a request to the engine, its events printed as they come."""
    from .. import engine
    from .report import Reporter

    request = engine.Request(args.mode, _inventory(args.inventory), args.playbook, args.limit,
                             args.retry_failed, _options(args), tags=_tags(args.tags),
                             skip_tags=_tags(args.skip_tags), start_at=args.start_at_task)
    if args.list_tasks or args.list_tags:
        return _list_tasks(engine.list_tasks(request), args.list_tags, args.json)
    dry = args.mode == "reset" and getattr(args, "check", False)
    reporter = Reporter("plan" if dry else args.mode, args.json, verbose=args.verbose, diff=args.diff)
    result = engine.run(request, reporter)
    if result.note:
        print(result.note)
        return 0
    reporter.finish(result.hosts)
    return 1 if result.failed else 0


def _tags(values: list[str]) -> tuple[str, ...]:
    return tuple(t.strip() for v in values for t in v.split(",") if t.strip())


def _list_tasks(listing: dict[str, Any], tags_only: bool, as_json: bool) -> int:
    """ansible-playbook's --list-tasks / --list-tags layout: each play, its tasks (or tags) and their tags."""
    if as_json:
        print(json.dumps(listing, indent=2))
        return 0
    print(f"playbook: {listing['playbook']}")
    every: set[str] = set()
    for i, p in enumerate(listing["plays"], 1):
        print(f"\n  play #{i} ({','.join(p['hosts'])}): {printable(p['name'])}\tTAGS: [{','.join(p['tags'])}]")
        print(f"    nodes: {', '.join(p['nodes']) or '(none)'}")
        if tags_only:
            tags = sorted({t for task in p["tasks"] for t in task["tags"]})
            every.update(tags)
            print(f"      TASK TAGS: [{', '.join(tags)}]")
            continue
        print("    tasks:")
        for t in p["tasks"]:
            print(f"      {printable(t['name'])}{' (handler)' if t['handler'] else ''}\tTAGS: [{', '.join(t['tags'])}]")
    if tags_only:
        print(f"\n  all tags: [{', '.join(sorted(every))}]")
    return 0


def _facts(args: argparse.Namespace) -> int:
    from .. import engine
    from ..engine.node_summary import table

    result = engine.run(engine.Request("facts", _inventory(args.inventory), limit=args.limit,
                                       options=engine.Options(forks=args.forks)))
    print(json.dumps(result.facts, indent=2) if args.json else printable_lines(table(result.facts)))
    return 1 if result.failed else 0


def _graph(args: argparse.Namespace) -> int:
    from .. import engine
    from ..graph import to_dot

    inv = _inventory(args.inventory)
    result = engine.run(engine.Request("graph", inv, playbook=args.playbook, limit=args.limit, live=args.live,
                                       options=engine.Options(forks=args.forks)))
    g = result.graph
    if args.json and not args.out:
        print(json.dumps(g, indent=2))
        return 1 if g["drift"] else 0
    out = Path(args.out) if args.out else inv.path.with_suffix(".svg")
    fmt = args.format or (out.suffix[1:] if out.suffix[1:] in ("svg", "png", "dot") else "svg")
    title = f"{inv.cluster.name}: {'live, ' if args.live else ''}{inv.path.name}"
    dot = to_dot(g, title)
    if fmt == "dot":
        write_local(out, dot.source)
    else:
        import graphviz

        try:
            write_local(out, dot.pipe(format=fmt))
        except graphviz.ExecutableNotFound:
            raise InputError(f"--format {fmt} needs Graphviz's dot (apt install graphviz); --format dot writes the "
                             "graph without it") from None
    nodes = sum(1 for n in g["nodes"] if n["kind"] in ("node", "router"))
    print(f"wrote {out}: {nodes} node(s), {len(g['drift'])} difference(s) from the inventory"
          + ("" if args.live else " (not checked: add --live)"))
    for d in g["drift"]:
        print(f"  {d['node']}: {printable_lines(d['what'])}")
    for d in g.get("notes", []):
        print(f"  {d['node']}: note: {printable_lines(d['what'])}")
    if args.json:
        print(json.dumps(g, indent=2))
    return 1 if g["drift"] else 0


def _verify(args: argparse.Namespace) -> int:
    from .. import engine

    result = engine.run(engine.Request("verify", _inventory(args.inventory), limit=args.limit, full=args.full,
                                       pytest_args=tuple(args.pytest_args)))
    return result.exit_code


def _coredns(args: argparse.Namespace) -> int:
    from .. import engine

    corefile, manifest = engine.coredns_files(_inventory(args.inventory), args.playbook)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        write_local(out / "Corefile", corefile)
        write_local(out / "coredns.yaml", manifest)
        print(f"wrote {out / 'Corefile'} and {out / 'coredns.yaml'} (kubectl apply -f {out / 'coredns.yaml'})")
    else:
        print("# Corefile (for CoreDNS run on a node)\n" + corefile + "\n" + manifest, end="")
    return 0


def _dns_name(args: argparse.Namespace) -> int:
    from .. import cluster_dns

    domain = _inventory(args.inventory).cluster.domain if args.inventory else args.domain
    try:
        print(cluster_dns.pod_a_record(args.name, args.namespace, domain) if args.pod
              else cluster_dns.service_fqdn(args.name, args.namespace, domain))
    except ValueError as exc:
        raise InputError(f"{args.name}: {exc}") from None
    return 0


WEAVE_RELEASE = "https://github.com/weaveworks/weave/releases/download/v2.8.1/weave-daemonset-k8s.yaml"


def _weave(args: argparse.Namespace) -> int:
    """How to install Weave Net with the inventory's IPALLOC_RANGE (checked against the ranges at load)."""
    inv = _inventory(args.inventory)
    if inv.cni.type != "weave":
        raise InputError(f"{inv.path}: cni.type is {inv.cni.type}, not weave")
    r, c = inv.cni.weave_ipalloc_range, inv.cluster
    print(f"IPALLOC_RANGE={r} is inside the pod range {c.pod_cidr} and clear of the node ({c.node_cidr}) and "
          f"service ({c.service_cidr}) ranges.\n"
          "Install the release manifest, then set the range on the DaemonSet (the old cloud.weave.works URL is gone):\n"
          f"  kubectl apply -f {WEAVE_RELEASE}\n"
          f"  kubectl -n kube-system set env daemonset/weave-net -c weave IPALLOC_RANGE={r}")
    return 0


def _ssh_config(args: argparse.Namespace) -> int:
    from ..transport.openssh import ssh_config

    print(ssh_config(_inventory(args.inventory)), end="")
    return 0


def _ssh(args: argparse.Namespace) -> int:
    from ..transport.openssh import interactive

    return interactive(_inventory(args.inventory), args.node, args.command)


def _lab_up(args: argparse.Namespace) -> int:
    from ..lab import namespace

    pods = tuple(p for p in args.pods.split(",") if p)
    cni_pods = tuple(p for p in args.cni_pods.split(",") if p)
    out = namespace.up(args.nodes, Path(args.out), args.subnet, args.name, pods, cni_pods, args.cni_type, args.used,
                       args.ip_family)
    family = {"dual": ", dual-stack", "ipv6": ", IPv6 only"}.get(args.ip_family, "")
    print(f"lab {args.name} is up: {args.nodes} node(s){family}{', seeing this machine’s config files' if args.used else ''}; "
          f"inventory written to {out}")
    print(f"  next: provision apply {out}")
    print(f"  look around: provision ssh {out} node1   (or: ip netns exec {args.name}-node1 ip -br addr)")
    print(f"  tear down: provision lab down --name {args.name}")
    warning = namespace.arp_warning(args.nodes, len(pods) + len(cni_pods))
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    return 0


def _vagrant_inventory(args: argparse.Namespace) -> int:
    from ..lab.vagrant import write_inventory

    base = _inventory(args.inventory)  # validated first; then the raw YAML is copied
    text = None
    if args.ssh_config == "-":
        text = sys.stdin.read()
    elif args.ssh_config:
        text = read_text(args.ssh_config)
    out = Path(args.out)
    data = write_inventory(base.path, text, out)
    _inventory(str(out))  # what we wrote must validate
    print(f"wrote {out}: {len(data['nodes'])} node(s); next: provision apply {out}")
    return 0


def _import_inventory(args: argparse.Namespace) -> int:
    from ..inventory import importers

    warnings: list[str] = []
    if args.source_kind == "from-kubectl":
        try:
            text = sys.stdin.read() if args.source == "-" else read_text(args.source)
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"{args.source}: cannot read it: {exc}") from None
        kubeadm = read_text(args.kubeadm_config) if args.kubeadm_config else None
        data = importers.import_kubectl(text, args.source, args.service_cidr, args.pod_cidr, args.node_cidr,
                                        kubeadm, warnings)
    else:
        data = importers.import_ansible(Path(args.source), args.pod_cidr, args.service_cidr, args.node_cidr,
                                        warnings)
    for w in warnings:
        print(f"warning: {printable(w)}", file=sys.stderr)
    target = Path(args.out) if args.out else None
    text = importers.write(data, "stdin" if args.source == "-" else args.source, target)
    if target:
        print(f"wrote {target}: {len(data['nodes'])} node(s); next: provision validate {target}")
    else:
        print(text, end="")
    return 0


def _lab_down(args: argparse.Namespace) -> int:
    from ..lab import namespace

    removed = namespace.down(args.name)
    print(f"lab {args.name}: " + ("removed " + ", ".join(removed) if removed else "nothing to remove"))
    return 0


def _lab_status(args: argparse.Namespace) -> int:
    from ..lab import namespace

    print(json.dumps(namespace.running(args.name), indent=2))
    return 0
