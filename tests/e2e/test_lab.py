"""The lab never deletes what it did not make: a second lab of the same name is bad input with a way out, and
lab down keeps an inventory someone edited, and a subnet another lab holds is refused before anything is made."""

from __future__ import annotations

import subprocess
import sys


def lab_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "provisioner.cli", "lab", *args], capture_output=True, text=True,
                          timeout=120)


def test_a_lab_of_that_name_is_bad_input_and_an_edited_inventory_is_kept(make_lab):
    lab = make_lab(1, pods=())
    again = lab_cli("up", "--nodes", "1", "--name", lab.name, "--subnet", "10.213.251.0/24",
                    "--out", str(lab.inventory.parent / "other.yaml"))
    assert again.returncode == 2 and "--name NAME --subnet CIDR" in again.stderr, again.stderr
    assert lab.inventory.exists()
    subnet = lab.data()["cluster"]["node_cidr"]
    beside = lab_cli("up", "--nodes", "1", "--name", "zz" + lab.name[1:], "--subnet", subnet,
                     "--out", str(lab.inventory.parent / "beside.yaml"))
    assert beside.returncode == 2 and f"--subnet {subnet} is already routed" in beside.stderr, beside.stderr
    assert f"dev {lab.name}-br" in beside.stderr and not (lab.inventory.parent / "beside.yaml").exists()
    lab.inventory.write_text(lab.inventory.read_text() + "# my notes\n")  # the user's now
    down = lab_cli("down", "--name", lab.name)
    assert down.returncode == 0 and "kept" in down.stdout and lab.inventory.exists(), down.stdout
    assert lab.inventory.read_text().endswith("# my notes\n")


def test_the_lab_knows_its_neighbours_so_a_big_lab_leaves_the_machines_arp_table_to_the_pods(make_lab):
    """Nodes know each other and the lab bridge, and the lab bridge knows the nodes, by permanent entries: the
    kernel's one ARP table for all namespaces (gc_thresh3) is left to the pods. --nodes past 240 is refused."""
    import json
    import subprocess

    lab = make_lab(3, pods=())
    ips = [n["address"] for n in lab.data()["nodes"]]
    host = json.loads(subprocess.run(["ip", "-json", "neigh", "show", "dev", f"{lab.name}-br"], capture_output=True,
                                     text=True, check=True).stdout)
    assert sorted(e["dst"] for e in host if "PERMANENT" in e.get("state", [])) == sorted(ips)
    bridge_ip = lab.data()["cluster"]["node_cidr"].rsplit(".", 1)[0] + ".1"
    inside = json.loads(lab.node_sh("node2", "ip -json neigh show dev eth0"))
    assert sorted(e["dst"] for e in inside if "PERMANENT" in e.get("state", [])) == sorted([ips[0], ips[2], bridge_ip])
    big = lab_cli("up", "--nodes", "241", "--name", "zz" + lab.name[1:], "--subnet", "10.213.253.0/24",
                  "--out", str(lab.inventory.parent / "big.yaml"))
    assert big.returncode != 0 and "--nodes must be between 1 and 240" in big.stderr, big.stderr

