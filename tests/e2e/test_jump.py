"""A node reachable only through another, as behind a bastion: ssh.jump / nodes[].jump (ProxyJump's way)."""

from __future__ import annotations

from pathlib import Path

import yaml

from provisioner.lab import namespace


def _behind(lab, node: str) -> None:
    """``node`` stops answering this machine (replies to the lab bridge's address are dropped in its namespace);
    the other nodes still reach it over the lab network."""
    data = lab.data()
    host = namespace.plan_addresses(data["cluster"]["node_cidr"], len(data["nodes"]))[0].ip
    lab.node_sh(node, f"ip route add blackhole {host}/32")


def _inventory(lab, tmp_path, name: str, **changes) -> Path:
    data = lab.data()
    data["ssh"]["connect_timeout"] = 2
    for key, value in changes.items():
        if key == "ssh":
            data["ssh"].update(value)
        else:
            data["nodes"][int(key[-1]) - 1].update(value)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_a_node_behind_another_is_reached_through_it(make_lab, tmp_path):
    lab = make_lab(2, pods=("web",))
    _behind(lab, "node2")
    bastion = lab.data()["nodes"][0]["address"]

    direct = _inventory(lab, tmp_path, "direct.yaml")
    p = lab.provision("plan", "-l", "node2", inventory=direct)
    assert p.returncode != 0 and "node2" in p.stdout + p.stderr

    through = _inventory(lab, tmp_path, "through.yaml", node2={"jump": f"root@{bastion}"})
    rc, doc = lab.json("apply", inventory=through)
    assert rc == 0, doc["recap"]
    assert {n: r["failed"] for n, r in doc["recap"].items()} == {"node1": 0, "node2": 0}
    assert "v-net-0" in lab.node_sh("node2", "ip -br link show v-net-0")
    assert lab.provision("verify", inventory=through).returncode == 0  # OpenSSH (testinfra) goes through it too
    rc, doc = lab.json("plan", inventory=through)
    assert rc == 0 and not any(r["changed"] for r in doc["recap"].values())
    # the shell that `provision ssh` opens goes through it too
    p = lab.provision("ssh", "node2", "hostname", inventory=through)
    assert p.returncode == 0 and "node2" in p.stdout
    assert lab.json("reset", inventory=through)[0] == 0


def test_the_jump_hosts_key_is_checked_like_a_nodes(make_lab, tmp_path):
    lab = make_lab(2, pods=())
    data = lab.data()
    bastion = data["nodes"][0]["address"]
    known = tmp_path / "known_hosts"  # node2's key only: the bastion's is unknown
    known.write_text("".join(line + "\n" for line in open(data["ssh"]["known_hosts"]).read().splitlines()
                             if line.startswith(data["nodes"][1]["address"] + " ")))
    strict = _inventory(lab, tmp_path, "strict.yaml", ssh={"jump": f"root@{bastion}", "known_hosts": str(known)},
                        node1={"jump": "none"})
    p = lab.provision("plan", "-l", "node2", inventory=strict)
    assert p.returncode != 0
    assert f"jump host root@{bastion}:22: its host key is not in {known}" in p.stdout + p.stderr
