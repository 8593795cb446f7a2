"""A lab whose nodes look like a used machine (`provision lab up --used`): they see this machine's own
/etc/containerd, /etc/cni, … as a node with those packages would. Apply edits what is there, verify
passes, reset gives back exactly what the node saw, and this machine's own files never change."""

from __future__ import annotations

import hashlib
import tomllib
from pathlib import Path

from provisioner.lab.namespace import USED_VISIBLE
from provisioner.modules.containerd import TABLES, config_version, parse

CONFIG = Path("/etc/containerd/config.toml")


def host_files() -> dict[str, str]:
    """sha256 of every file under the paths a used node sees (this machine's own)."""
    out = {}
    for top in map(Path, USED_VISIBLE):
        for f in ([top] if top.is_file() else sorted(top.rglob("*")) if top.is_dir() else []):
            if f.is_file():
                out[str(f)] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


def node_files(lab, node: str) -> dict[str, str]:
    out = lab.node_sh(node, "for p in " + " ".join(USED_VISIBLE) + "; do [ -e $p ] && find $p -type f; done "
                            "| sort | xargs -r sha256sum; true")
    return {line.split()[1]: line.split()[0] for line in out.splitlines()}


def cni_table(text: str) -> dict:
    doc = tomllib.loads(text)
    for key in TABLES[config_version("config.toml", parse("config.toml", text))]:
        doc = doc.get(key, {})
    return doc


def test_a_used_machine_is_edited_verified_and_given_back(make_lab):
    before = host_files()
    lab = make_lab(2, pods=("web",), used=True)
    assert node_files(lab, "node1") == before  # the node sees exactly this machine's files
    rc, doc = lab.json("apply")
    assert rc == 0, {h: r["error"] or [t["error"] for t in r["tasks"] if t["error"]] for h, r in doc["hosts"].items()}
    if CONFIG.exists():  # Debian's containerd (bootstrap installs it) ships one with a CNI table of its own
        host_text = CONFIG.read_text()
        new = lab.node_sh("node1", f"cat {CONFIG}")
        assert cni_table(new)["conf_dir"] == "/etc/cni/net.d"
        assert cni_table(new).get("bin_dir", "/etc/cni/bin") == "/etc/cni/bin"
        kept = [l for l in host_text.splitlines() if "bin_dir" not in l and "conf_dir" not in l]
        assert all(line in new.splitlines() for line in kept)  # every other line of it stays
        task = next(t for t in doc["hosts"]["node1"]["tasks"] if t["module"] == "containerd_cni")
        assert task["status"] == "changed" and "of /etc/containerd/config.toml at /etc/cni/bin" in task["reason"]
    assert lab.provision("verify").returncode == 0
    again = lab.json("plan")[1]
    assert not [t["name"] for r in again["hosts"].values() for t in r["tasks"] if t["status"] != "ok"]
    rc, doc = lab.json("reset")
    assert rc == 0, doc["recap"]
    assert node_files(lab, "node1") == before  # reset gave back what the node had, byte for byte
    assert host_files() == before  # and this machine's own files never changed
