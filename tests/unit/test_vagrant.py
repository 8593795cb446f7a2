"""The Vagrantfile reads everything from the inventory; vagrant-inventory turns ssh-config into SSH settings."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from provisioner.template_vars import pod_routes
from provisioner import cli
from provisioner.errors import InputError
from provisioner.inventory import load_inventory
from provisioner.lab.vagrant import inventory_for_vms, parse_ssh_config

from ..conftest import ROOT

# what the Vagrantfile's `libvirt_driver: auto` finds on this machine: a real KVM module and a usable /dev/kvm
KVM = (Path("/sys/module/kvm_intel").exists() or Path("/sys/module/kvm_amd").exists()) and os.access("/dev/kvm", os.W_OK)
RECORDED = (ROOT / "tests/data/vagrant-ssh-config.txt").read_text()
needs_ruby = pytest.mark.skipif(shutil.which("ruby") is None, reason="ruby is not installed (scripts/bootstrap.sh installs it)")


@needs_ruby
def test_ruby_syntax():
    r = subprocess.run(["ruby", "-c", str(ROOT / "Vagrantfile")], capture_output=True, text=True)
    assert r.returncode == 0 and "Syntax OK" in r.stdout, r.stderr


@pytest.mark.skipif(shutil.which("vagrant") is None, reason="Debian's vagrant is not installed (scripts/bootstrap.sh installs it)")
def test_vagrant_validate(tmp_path):
    env = dict(os.environ, VAGRANT_HOME=str(tmp_path / "home"), VAGRANT_DOTFILE_PATH=str(tmp_path / "dot"))
    r = subprocess.run(["vagrant", "validate", "--ignore-provider"], cwd=ROOT, capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0 and "validated successfully" in r.stdout, r.stdout + r.stderr


def recorded(inventory: Path) -> dict:
    env = dict(os.environ, PROVISION_INVENTORY=str(inventory))
    env.pop("VAGRANT_DEFAULT_PROVIDER", None)
    r = subprocess.run(["ruby", str(ROOT / "tests/data/vagrant_harness.rb"), str(ROOT / "Vagrantfile")],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@needs_ruby
@pytest.mark.parametrize("inventory", ["inventories/vagrant.yaml", "custom"])
def test_machines_ips_and_resources_come_from_the_inventory(tmp_path, inventory):
    if inventory == "custom":  # a different inventory gives different machines: nothing is hard-coded
        data = yaml.safe_load((ROOT / "inventories/vagrant.yaml").read_text())
        data["vagrant"] = {"box": "generic/debian12", "provider": "libvirt", "cpus": 4, "memory": 4096,
                           "libvirt_driver": "qemu", "isolated": True, "management_network": "192.168.200.0/24"}
        data["nodes"] = [{"name": "cp", "address": "192.168.56.21", "interface": "eth1"},
                         {"name": "w1", "address": "192.168.56.22", "ip": "192.168.56.32", "interface": "eth1"}]
        path = tmp_path / "custom.yaml"
        path.write_text(yaml.safe_dump(data))
    else:
        path = ROOT / inventory
    data = yaml.safe_load(path.read_text())
    got = recorded(path)
    cfg = got["config"]
    assert cfg["box"] == data["vagrant"]["box"] and got["default_provider"] == data["vagrant"]["provider"]
    machines = cfg["machines"]
    assert [m["name"] for m in machines] == [n["name"] for n in data["nodes"]]
    for m, n in zip(machines, data["nodes"]):
        vm = m["vm"]
        assert vm["hostname"] == n["name"]
        name = data["cluster"]["name"]
        forward = "none" if data["vagrant"].get("isolated") else "nat"
        assert vm["networks"] == [{"kind": "private_network", "ip": n.get("ip", n["address"]),
                                   "libvirt__network_name": f"{name}-nodes", "libvirt__forward_mode": forward}]
        for provider in ("virtualbox", "libvirt"):
            assert vm["providers"][provider]["cpus"] == data["vagrant"]["cpus"]
            assert vm["providers"][provider]["memory"] == data["vagrant"]["memory"]
        lv = vm["providers"]["libvirt"]
        assert lv["management_network_name"] == f"{name}-mgmt" and lv["management_network_mode"] == forward
        assert lv["management_network_address"] == data["vagrant"].get("management_network", "192.168.121.0/24")
        assert lv["driver"] == data["vagrant"].get("libvirt_driver", "qemu" if not KVM else "kvm")


def test_parse_recorded_ssh_config_for_three_machines():
    hosts = parse_ssh_config(RECORDED)
    assert list(hosts) == ["node1", "node2", "node3"]
    assert hosts["node2"] == {"hostname": "127.0.0.1", "user": "vagrant", "port": "2200",
                              "identityfile": "/home/ana/lab/.vagrant/machines/node2/virtualbox/private_key"}


def test_vagrant_inventory_keeps_the_private_ip_as_node_ip(tmp_path, capsys):
    rec = tmp_path / "ssh-config.txt"
    rec.write_text(RECORDED)
    out = tmp_path / "vlab.yaml"
    assert cli.main(["lab", "vagrant-inventory", "--inventory", str(ROOT / "inventories/vagrant.yaml"),
                     "--ssh-config", str(rec), "--out", str(out)]) == 0
    inv = load_inventory(out)
    n2 = inv.node("node2")
    assert (n2.address, n2.port, n2.user) == ("127.0.0.1", 2200, "vagrant")
    assert str(n2.identity_file) == "/home/ana/lab/.vagrant/machines/node2/virtualbox/private_key"
    assert [str(n.ip) for n in inv.nodes] == ["192.168.56.11", "192.168.56.12", "192.168.56.13"]
    assert pod_routes(inv, n2)[0] == {"dst": "10.244.1.0/24", "via": "192.168.56.11"}  # routes use the private IPs
    assert inv.ssh.host_key_policy == "accept-new" and inv.ssh.known_hosts == tmp_path / "vlab.known_hosts"
    assert "10.0.2.15" not in out.read_text() and not inv.warnings


def test_vagrant_inventory_names_missing_machines():
    data = yaml.safe_load((ROOT / "inventories/vagrant.yaml").read_text())
    with pytest.raises(InputError, match="no Host entry for node3"):
        inventory_for_vms(data, RECORDED.split("Host node3")[0], Path("/tmp/kh"))
