"""CNI on the node: plugin binaries (``cni_plugins``), the network config (``cni_config``),
and lab pods attached through the plugin as a runtime would (``cni_pods``).

    - name: CNI plugins
      cni_plugins: {source: /usr/lib/cni, dest: /etc/cni/bin, plugins: [bridge, host-local, loopback]}
"""

from __future__ import annotations

import json
import posixpath
from pathlib import Path
from typing import Any

from .. import uploads
from ..node_plugin import PLUGIN_NAME, plugin_path
from ..facts import Fact, Facts, value
from ..facts.files import File, Binary, Listing, Exists, Created
from ..facts.net import Links, Addrs, Netns
from ..steps import CREATED_DIRS, STATE_DIR, CNIChain, Cmd, Step, Upload
from .base import (ABS, PODNAME, Module, Outcome, Part, backup_of, backup_step, created_by_apply, dirs_created, file_facts, restore_steps,
                   schema, write_steps)

LOOPBACK_FILE = "99-loopback.conf"
RESULTS = f"{STATE_DIR}/cni-results"


class CNIPluginsModule(Module):
    name = "cni_plugins"
    local_sources = ("source",)
    args = schema({
        "source": {"type": "string"}, "dest": ABS,
        "plugins": {"type": "array", "items": {"type": "string", "pattern": r"\A[a-z0-9][a-z0-9_-]*\Z"}},
        "own_plugin": {"type": "boolean", "default": False},
        "sha256": {"type": "object", "additionalProperties": {"type": "string", "pattern": r"\A[0-9a-f]{64}\Z"}},
        "tarball_sha256": {"type": ["string", "null"]},
        "files": {"type": "array"},  # filled in by prepare(): uploads.Artifact values
    }, ["source", "dest", "plugins"])

    def prepare(self, args: dict[str, Any]) -> dict[str, Any]:
        extra = {PLUGIN_NAME: plugin_path()} if args["own_plugin"] else {}
        found = uploads.collect(Path(args["source"]), list(args["plugins"]), args.get("sha256") or {},
                                args.get("tarball_sha256"), extra)
        return {**args, "files": found}

    def facts(self, args: dict[str, Any]) -> list[Fact[Any]]:
        paths = [posixpath.join(args["dest"], f.name) for f in args["files"]]
        return [Created()] + [x for p in paths for x in (Binary(p), Exists(backup_of(p)))]

    def plan(self, args: dict[str, Any], facts: Facts) -> Outcome:
        steps: list[Step] = []
        names: list[str] = []
        for f in args["files"]:
            path = posixpath.join(args["dest"], f.name)
            have = value(facts, Binary(path))
            if have is None or have.sha256 != f.sha256:
                # a plugin someone else installed there is kept aside, for reset to put back
                if have is None:
                    steps.append(Upload(path, f, "0755", creates=("file", path)))
                else:
                    steps += backup_step(path, facts) + [Upload(path, f, "0755")]
                names.append(f.name)
            elif have.mode != "0755":
                steps.append(Cmd(("chmod", "0755", path)))
                names.append(f"{f.name} (mode)")
        if not steps:
            return Outcome(reason=f"{len(args['files'])} plugin(s) already in {args['dest']} with matching sha256: "
                                  + ", ".join(f.name for f in args["files"]))
        return Outcome(steps, f"install {', '.join(names)} into {args['dest']}")

    def reverse(self, args: dict[str, Any], facts: Facts) -> Outcome:
        """Puts back plugins that were there before apply and removes those it installed; others stay."""
        steps, names = [], []
        for f in args["files"]:
            path = posixpath.join(args["dest"], f.name)
            s = restore_steps(path, facts, present=value(facts, Binary(path)) is not None)
            steps += s
            names += [f.name] if s else []
        if not steps:
            return Outcome(reason=f"no plugins installed by provisioner left in {args['dest']}")
        return Outcome(steps, f"restore or remove {len(names)} plugin(s) in {args['dest']}: {', '.join(names)}")


class CNIConfigModule(Module):
    name = "cni_config"
    args = schema({
        "conf_dir": ABS, "file": {"type": "string", "pattern": r"\A[A-Za-z0-9_][A-Za-z0-9_.-]*\Z"},
        "config": {"type": "object", "required": ["cniVersion", "name", "plugins"]},
        "loopback": {"type": "boolean", "default": True},
        "data_dir": ABS,
    }, ["conf_dir", "file", "config"])

    def _files(self, args: dict[str, Any]) -> dict[str, bytes]:
        out = {posixpath.join(args["conf_dir"], args["file"]): (json.dumps(args["config"], indent=2) + "\n").encode()}
        if args["loopback"]:
            lo = {"cniVersion": args["config"]["cniVersion"], "name": "lo", "type": "loopback"}
            out[posixpath.join(args["conf_dir"], LOOPBACK_FILE)] = (json.dumps(lo, indent=2) + "\n").encode()
        return out

    def facts(self, args: dict[str, Any]) -> list[Fact[Any]]:
        leases = self._leases(args)
        data: list[Fact[Any]] = [Exists(leases), File(CREATED_DIRS)] if leases else []
        return file_facts(self._files(args)) + [Listing(args["conf_dir"])] + data

    def plan(self, args: dict[str, Any], facts: Facts) -> Outcome:
        steps: list[Step] = []
        diffs: list[str] = []
        leases = self._leases(args)
        if leases and not facts[Exists(leases)] and leases not in dirs_created(facts):
            # made here rather than by host-local, so that it is recorded and reset may empty it again; once
            # recorded, its absence is fine (podman's tmpfiles.d empties /var/lib/cni/networks at boot, and
            # host-local makes the directory again at its next ADD)
            steps.append(Cmd(("provisioner_mkdir", leases)))
        for path, content in self._files(args).items():
            s, d = write_steps(path, content, facts)
            steps += s
            diffs.append(d)
        ours = args["file"]
        first = [f for f in facts[Listing(args['conf_dir'])]
                 if f < ours and f.endswith((".conf", ".conflist", ".json")) and not f.startswith(".")]
        warnings = [f"{args['conf_dir']}/{f} sorts before {ours}: runtimes load only the first network config" for f in first]
        if not steps:
            return Outcome(reason=f"{args['conf_dir']}/{ours} already holds network {args['config']['name']}", warnings=warnings)
        return Outcome(steps, f"write {args['conf_dir']}/{ours}", "".join(diffs), warnings)

    def _leases(self, args: dict[str, Any]) -> str | None:
        return posixpath.join(args["data_dir"], args["config"]["name"]) if args.get("data_dir") else None

    def reverse(self, args: dict[str, Any], facts: Facts) -> Outcome:
        """Restores or removes the config files; empties the lease directory only if apply made it.

        host-local's leases would block the next run, but a lease directory that was
        there before apply (``cni.data_dir: /var/lib`` makes it /var/lib/kubernetes)
        is never touched: only host-local's own files in a directory apply recorded.
        """
        steps = [s for p in self._files(args) for s in restore_steps(p, facts)]
        what = [f"restore or remove {len(steps)} config file(s)"] if steps else []
        leases = self._leases(args)
        if leases and facts.get(Exists(leases)):
            if leases in dirs_created(facts):
                steps.append(Cmd(("find", leases, "-maxdepth", "1", "-type", "f", "(", "-name", "[0-9]*.[0-9]*.[0-9]*.[0-9]*",
                                  "-o", "-name", "last_reserved_ip.*", "-o", "-name", "lock", ")", "-delete")))
                what.append(f"remove host-local's leases in {leases}")
            else:
                what.append(f"{leases} existed before apply: left as it was")
        if not steps:
            return Outcome(reason=f"no config of network {args['config']['name']} left" + (f"; {what[-1]}" if what else ""))
        return Outcome(steps, "; ".join(what))


class CNIPodsModule(Module):
    """Lab pods attached by calling the installed plugin with the installed config, as a runtime does."""

    name = "cni_pods"
    needs_commands = ("ip",)
    args = schema({
        "bin_dir": ABS, "config": {"type": "object", "required": ["cniVersion", "name", "plugins"]},
        "pods": {"type": "array", "items": {"type": "object", "required": ["name"], "properties": {"name": PODNAME}}},
        "ifname": {"type": "string", "pattern": r"\A[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}\Z", "default": "eth0"},
    }, ["bin_dir", "config", "pods"])

    def _pods(self, args: dict[str, Any]) -> list[dict[str, Any]]:
        return [p for p in args["pods"] if p.get("via") == "cni"]

    def _cache(self, args: dict[str, Any], pod: str) -> str:
        """Where the ADD result of ``pod`` is kept, for DEL (a runtime keeps it in /var/lib/cni/results)."""
        return f"{RESULTS}/{args['config']['name']}-{pod}-{args['ifname']}"

    def facts(self, args: dict[str, Any]) -> list[Fact[Any]]:
        pods = self._pods(args)
        out: list[Fact[Any]] = [Netns(), Links(), Created()]
        return (out + [Addrs(p["name"]) for p in pods] + [Links(p["name"]) for p in pods]
                + [Exists(self._cache(args, p["name"])) for p in pods])

    def _attached(self, name: str, args: dict[str, Any], facts: Facts) -> bool:
        """The pod has its address, and the host end of its veth is a port of the bridge (a bridge deleted and made
        again by hand has no ports: the pod is then cut off though it still holds its address)."""
        ifname = args["ifname"]
        if not (facts.get(Addrs(name)) or {}).get(ifname):
            return False
        bridge = args["config"]["plugins"][0].get("bridge")
        inside = (facts.get(Links(name)) or {}).get(ifname)
        if bridge is None or inside is None or inside.peer is None:
            return True  # nothing to compare against
        host = next((x for x in (facts.get(Links()) or {}).values() if x.index == inside.peer), None)
        return host is not None and host.master == bridge

    def _chain(self, command: str, pod: str, args: dict[str, Any]) -> CNIChain:
        """The whole conflist for ``pod``, each plugin in turn with the result before it, as a runtime runs it."""
        conf = args["config"]
        singles = tuple(json.dumps({"cniVersion": conf["cniVersion"], "name": conf["name"], **p}) for p in conf["plugins"])
        env = (f"CNI_CONTAINERID={pod}", f"CNI_NETNS=/run/netns/{pod}", f"CNI_IFNAME={args['ifname']}",
               f"CNI_PATH={args['bin_dir']}")
        return CNIChain(command, singles, env, args["bin_dir"], tuple(p["type"] for p in conf["plugins"]),
                        self._cache(args, pod))

    def plan(self, args: dict[str, Any], facts: Facts) -> Outcome:
        """Attach each CNI pod; one whose namespace or address is gone is detached first (DEL, then ADD),
        as a runtime repairs a sandbox, so its old lease never blocks the new ADD."""
        steps: list[Step] = []
        names: list[str] = []
        parts: list[Part] = []
        for pod in self._pods(args):
            name = pod["name"]
            exists = name in (facts[Netns()] or [])
            if exists and self._attached(name, args, facts):
                continue
            bridge = args["config"]["plugins"][0].get("bridge") or "its bridge"
            parts.append(Part("pod", name, f"pod {name} missing" if not exists else
                              f"pod {name} has no IP" if not (facts.get(Addrs(name)) or {}).get(args["ifname"]) else
                              f"pod {name} is not attached to {bridge}"))
            if exists or facts.get(Exists(self._cache(args, name))):
                steps.append(self._chain("DEL", name, args))
            if not exists:
                steps.append(Cmd(("ip", "netns", "add", name), creates=("netns", name)))
            steps += [Cmd(("ip", "-n", name, "link", "set", "lo", "up")), self._chain("ADD", name, args)]
            names.append(name)
        if not steps:
            listed = ", ".join(p["name"] for p in self._pods(args)) or "none"
            return Outcome(reason=f"pods already attached through CNI: {listed}")
        chain = " -> ".join(p["type"] for p in args["config"]["plugins"])
        return Outcome(steps, f"attach {', '.join(names)} through {chain}", parts=parts)

    def reverse(self, args: dict[str, Any], facts: Facts) -> Outcome:
        steps: list[Step] = []
        for pod in self._pods(args):
            if pod["name"] in (facts[Netns()] or []) and created_by_apply("netns", pod["name"], facts):
                steps += [self._chain("DEL", pod["name"], args), Cmd(("ip", "netns", "del", pod["name"]))]
        return Outcome(steps, f"detach and remove {len(steps) // 2} CNI pod(s)" if steps else "no CNI pods left")
