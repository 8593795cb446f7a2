"""Node DNS: the cluster DNS in /etc/resolv.conf (``resolv_conf``) and the CoreDNS files (``coredns``).

The node's own upstream resolvers are saved to a file of their own; kubelet's
resolvConf and CoreDNS's ``forward`` use that file, so nothing forwards to the
cluster DNS itself (a loop), and the systemd-resolved stub 127.0.0.53 is
replaced by the real upstreams from /run/systemd/resolve/resolv.conf.
"""

from __future__ import annotations

from dataclasses import replace

from .. import cluster_dns as dns
from ..facts.files import File
from ..steps import Cmd
from .base import (ABS, DOMAIN, COREDNS, IPV4, RESOLV_OPTION, SEARCH, FilesModule, Module, ModuleError, Outcome, backup_of,
                   created_by_apply, drop_block, file_facts, file_steps, restore_steps, schema, set_block, text_of,
                   write_steps)

RESOLVED = "/run/systemd/resolve/resolv.conf"
TOP = ("# BEGIN provisioner: cluster DNS first", "# END provisioner: cluster DNS first")
BOTTOM = ("# BEGIN provisioner: cluster search path (the last search line wins)", "# END provisioner: cluster search path")


class ResolvConfModule(Module):
    name = "resolv_conf"
    args = schema({
        "path": ABS, "nameserver": IPV4, "search": {"type": "array", "items": SEARCH},
        "options": {"type": "array", "items": RESOLV_OPTION}, "upstream_file": ABS,
        "upstream": {"type": "array", "items": IPV4},
    }, ["path", "nameserver", "search", "options", "upstream_file"])

    def facts(self, a):
        return [File(a["path"]), File(RESOLVED), File(backup_of(a["path"]))] + file_facts([a["upstream_file"]])

    def upstreams(self, a, facts, original: str) -> list[str]:
        if a.get("upstream"):
            return list(a["upstream"])
        found = dns.nameservers(original)
        if any(ns in dns.LOOPS for ns in found) and facts[File(RESOLVED)]:
            found = dns.nameservers(text_of(RESOLVED, facts[File(RESOLVED)]))  # the stub's real upstreams
        found = [ns for ns in found if ns != a["nameserver"] and not ns.startswith("127.")]
        if not found:
            raise ModuleError(f"no upstream resolver in {a['path']} (only the cluster DNS or a local stub); "
                              "set dns.upstream in the inventory")
        return found

    def plan(self, a, facts):
        path, current = a["path"], facts[File(a['path'])]
        text = text_of(path, current) if current else ""
        original = drop_block(drop_block(text, *TOP), *BOTTOM)
        ups = self.upstreams(a, facts, original)
        upstream_text = ("# managed by provisioner: this node's upstream resolvers, for kubelet resolvConf and "
                         "CoreDNS forward\n" + "".join(f"nameserver {ns}\n" for ns in ups))
        new = set_block(text, *TOP, f"nameserver {a['nameserver']}\n", top=True)
        tail = f"search {' '.join(a['search'])}\n" + (f"options {' '.join(a['options'])}\n" if a["options"] else "")
        new = set_block(new, *BOTTOM, tail, top=False)
        steps, diff = file_steps(path, new.encode(), current, current["mode"] if current else "0644",
                                 current["owner"] if current else "root", current["group"] if current else "root")
        if steps and current is not None and facts[File(backup_of(path))] is None and original == text:
            steps.insert(0, Cmd(("cp", "-P", "-p", path, backup_of(path))))  # the original, as it was (a symlink stays one)
        elif steps and current is None:
            steps[0] = replace(steps[0], creates=("file", path))
        usteps, udiff = write_steps(a["upstream_file"], upstream_text.encode(), facts)
        if not steps and not usteps:
            return Outcome(reason=f"{path} already asks {a['nameserver']} first, search {' '.join(a['search'])}; "
                                  f"upstreams {', '.join(ups)} saved in {a['upstream_file']}")
        return Outcome(steps + usteps, f"cluster DNS {a['nameserver']} in {path}; upstreams {', '.join(ups)} "
                                       f"in {a['upstream_file']}", diff + udiff)

    def reverse(self, a, facts):
        path, current = a["path"], facts[File(a['path'])]
        backup = facts[File(backup_of(path))]
        steps = []
        if current is not None:
            text = text_of(path, current)
            original = drop_block(drop_block(text, *TOP), *BOTTOM)
            if backup is not None and backup["content"] == original.encode():
                steps.append(Cmd(("mv", "-f", backup_of(path), path)))  # exactly the original (bytes, mode, symlink)
            elif original == "" and created_by_apply("file", path, facts):
                steps.append(Cmd(("rm", "-f", path)))
            elif original != text:
                s, _ = file_steps(path, original.encode(), current, current["mode"], current["owner"], current["group"])
                steps += s + ([Cmd(("rm", "-f", backup_of(path)))] if backup is not None else [])
        steps += restore_steps(a["upstream_file"], facts)
        if not steps:
            return Outcome(reason=f"{path} holds no provisioner block")
        return Outcome(steps, f"restore {path}; remove {a['upstream_file']}")


class CoreDNSModule(FilesModule):
    name = "coredns"
    args = schema({
        "corefile": ABS, "manifest": ABS, "domain": DOMAIN, "dns_ip": IPV4,
        "upstream_file": ABS, "pods": COREDNS["pods"], "ttl": COREDNS["ttl"], "cache": COREDNS["cache"],
        "image": COREDNS["image"],
    }, ["corefile", "manifest", "domain", "dns_ip", "upstream_file"])

    def files(self, a) -> dict[str, str]:
        opts = dict(pods=a["pods"], ttl=a["ttl"], cache=a["cache"])
        return {
            a["corefile"]: "# managed by provisioner\n" + dns.corefile(a["domain"], a["upstream_file"], **opts),
            a["manifest"]: dns.manifests(a["domain"], a["dns_ip"], image=a["image"], **opts),
        }

    def noop(self, a) -> str:
        return f"Corefile and manifests already as wanted (service IP {a['dns_ip']})"
