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
