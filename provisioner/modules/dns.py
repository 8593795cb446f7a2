"""Node DNS: the cluster DNS in /etc/resolv.conf (``resolv_conf``) and the CoreDNS files (``coredns``).

The node's own upstream resolvers are saved to a file of their own; kubelet's
resolvConf and CoreDNS's ``forward`` use that file, so nothing forwards to the
cluster DNS itself (a loop), and the systemd-resolved stub 127.0.0.53 is
replaced by the real upstreams from /run/systemd/resolve/resolv.conf.
"""

from __future__ import annotations

import posixpath
from dataclasses import replace
from typing import Any

from .. import cluster_dns as dns
from ..facts import Fact, Facts, value
from ..facts.files import Exists, File
from ..shell import command, quote
from ..steps import Cmd, Step, WriteFile
from ..formats import NL_MARK, drop_block, set_block
from .base import (ABS, DOMAIN, COREDNS, IP, RESOLV_OPTION, SEARCH, FilesModule, Module, ModuleError, Outcome,
                   backup_of, created_by_apply, file_facts, file_steps, restore_steps, schema, text_of, write_steps)

RESOLVED = "/run/systemd/resolve/resolv.conf"
DHCP_HOOKS = "/etc/dhcp/dhclient-exit-hooks.d"  # Debian's isc-dhcp-client sources these after each lease
TOP = ("# BEGIN provisioner: cluster DNS first", "# END provisioner: cluster DNS first")
BOTTOM = ("# BEGIN provisioner: cluster search path (the last search line wins)", "# END provisioner: cluster search path")


def tail_block(a: dict[str, Any]) -> str:
    return f"search {' '.join(a['search'])}\n" + (f"options {' '.join(a['options'])}\n" if a["options"] else "")


def dhcp_hook(a: dict[str, Any]) -> str:
    """sh that dhclient-script sources after every lease: a DHCP client rewrites resolv.conf at boot and at each
    renewal, and this puts the two marked blocks back exactly as :meth:`ResolvConfModule.plan` writes them
    (so the next plan has nothing to do). Every value is a quoted argument; it never ``exit``s (it is sourced)."""
    def lines(*words: str) -> str:
        return "printf '%s\\n' " + command(*words)
    top = lines(TOP[0], f"nameserver {a['nameserver']}", TOP[1])
    body = tail_block(a).splitlines()
    return ("# managed by provisioner: dhclient rewrites resolv.conf at boot and on every renewal; this puts the\n"
            "# cluster DNS blocks of `provision apply` back (removed by `provision reset`)\n"
            'case "$reason" in BOUND|RENEW|REBIND|REBOOT)\n'
            f"  ( f={quote(a['path'])}\n"
            f'    if [ -f "$f" ] && ! grep -qxF {quote(TOP[0])} "$f"; then\n'
            '      t=$(mktemp "$f.provisioner-XXXXXXXX") || exit 0\n'
            f"      {{ {top}; cat \"$f\"\n"
            f'        if [ -s "$f" ] && [ -n "$(tail -c1 "$f")" ]; then printf \'\\n\'; {lines(BOTTOM[0] + NL_MARK)}; '
            f"else {lines(BOTTOM[0])}; fi\n"
            f"        {lines(*body, BOTTOM[1])}; }} > \"$t\" &&\n"
            '      chmod --reference="$f" "$t" && chown --reference="$f" "$t" && mv -f "$t" "$f" || rm -f "$t"\n'
            "    fi ) || true ;;\n"
            "esac\n")


class ResolvConfModule(Module):
    """The cluster DNS first in resolv.conf, the search path last, the node's own upstreams kept in a file of
    their own; where a DHCP client owns resolv.conf, a hook of its own puts the blocks back after each rewrite."""

    name = "resolv_conf"
    args = schema({
        "path": ABS, "nameserver": IP, "search": {"type": "array", "items": SEARCH},
        "options": {"type": "array", "items": RESOLV_OPTION}, "upstream_file": ABS,
        "upstream": {"type": "array", "items": IP},
        "dhcp_hook": {**ABS, "default": DHCP_HOOKS + "/provisioner-resolv-conf"},
    }, ["path", "nameserver", "search", "options", "upstream_file"])

    def facts(self, a: dict[str, Any]) -> list[Fact[Any]]:
        own: list[Fact[Any]] = [File(a["path"]), File(RESOLVED), File(backup_of(a["path"])),
                           Exists(posixpath.dirname(a["dhcp_hook"]))]
        return own + file_facts([a["upstream_file"], a["dhcp_hook"]])

    def upstreams(self, a: dict[str, Any], facts: Facts, original: str) -> list[str]:
        if a.get("upstream"):
            return list(a["upstream"])
        found = dns.nameservers(original)
        resolved = value(facts, File(RESOLVED))
        if any(ns in dns.LOOPS for ns in found) and resolved is not None:
            found = dns.nameservers(text_of(RESOLVED, resolved))  # the stub's real upstreams
        found = [ns for ns in found if ns != a["nameserver"] and not ns.startswith("127.")]
        if not found:
            raise ModuleError(f"no upstream resolver in {a['path']} (only the cluster DNS or a local stub); "
                              "set dns.upstream in the inventory")
        return found

    def plan(self, a: dict[str, Any], facts: Facts) -> Outcome:
        path, current = a["path"], value(facts, File(a['path']))
        text = text_of(path, current) if current else ""
        original = drop_block(drop_block(text, *TOP), *BOTTOM)
        ups = self.upstreams(a, facts, original)
        upstream_text = ("# managed by provisioner: this node's upstream resolvers, for kubelet resolvConf and "
                         "CoreDNS forward\n" + "".join(f"nameserver {ns}\n" for ns in ups))
        new = set_block(text, *TOP, f"nameserver {a['nameserver']}\n", top=True)
        new = set_block(new, *BOTTOM, tail_block(a), top=False)
        steps, diff = file_steps(path, new.encode(), current, current.mode if current else "0644",
                                 current.owner if current else "root", current.group if current else "root")
        if steps and current is not None and value(facts, File(backup_of(path))) is None and original == text:
            steps.insert(0, Cmd(("cp", "-P", "-p", path, backup_of(path))))  # the original, as it was (a symlink stays one)
        elif steps and current is None:
            first = steps[0]
            assert isinstance(first, WriteFile), first  # a new file starts with its write
            steps[0] = replace(first, creates=("file", path))
        usteps, udiff = write_steps(a["upstream_file"], upstream_text.encode(), facts)
        if facts[Exists(posixpath.dirname(a["dhcp_hook"]))]:  # dhclient owns resolv.conf on this node
            hsteps, hdiff = write_steps(a["dhcp_hook"], dhcp_hook(a).encode(), facts)
            usteps, udiff = usteps + hsteps, udiff + hdiff
        if not steps and not usteps:
            return Outcome(reason=f"{path} already asks {a['nameserver']} first, search {' '.join(a['search'])}; "
                                  f"upstreams {', '.join(ups)} saved in {a['upstream_file']}")
        return Outcome(steps + usteps, f"cluster DNS {a['nameserver']} in {path}; upstreams {', '.join(ups)} "
                                       f"in {a['upstream_file']}", diff + udiff)

    def reverse(self, a: dict[str, Any], facts: Facts) -> Outcome:
        path, current = a["path"], value(facts, File(a['path']))
        backup = value(facts, File(backup_of(path)))
        steps: list[Step] = []
        if current is not None:
            text = text_of(path, current)
            original = drop_block(drop_block(text, *TOP), *BOTTOM)
            if backup is not None and backup.content == original.encode():
                steps.append(Cmd(("mv", "-f", backup_of(path), path)))  # exactly the original (bytes, mode, symlink)
            elif original == "" and created_by_apply("file", path, facts):
                steps.append(Cmd(("rm", "-f", path)))
            elif original != text:
                s, _ = file_steps(path, original.encode(), current, current.mode, current.owner, current.group)
                steps += s + ([Cmd(("rm", "-f", backup_of(path)))] if backup is not None else [])
        steps += restore_steps(a["dhcp_hook"], facts) + restore_steps(a["upstream_file"], facts)
        if not steps:
            return Outcome(reason=f"{path} holds no provisioner block")
        return Outcome(steps, f"restore {path}; remove {a['upstream_file']}")


class CoreDNSModule(FilesModule):
    name = "coredns"
    args = schema({
        "corefile": ABS, "manifest": ABS, "domain": DOMAIN, "dns_ip": IP,
        "upstream_file": ABS, "pods": COREDNS["pods"], "ttl": COREDNS["ttl"], "cache": COREDNS["cache"],
        "image": COREDNS["image"],
    }, ["corefile", "manifest", "domain", "dns_ip", "upstream_file"])

    def files(self, a: dict[str, Any]) -> dict[str, str]:
        opts = dict(pods=a["pods"], ttl=a["ttl"], cache=a["cache"])
        return {
            a["corefile"]: "# managed by provisioner\n" + dns.corefile(a["domain"], a["upstream_file"], **opts),
            a["manifest"]: dns.manifests(a["domain"], a["dns_ip"], image=a["image"], **opts),
        }

    def noop(self, a: dict[str, Any]) -> str:
        return f"Corefile and manifests already as wanted (service IP {a['dns_ip']})"
