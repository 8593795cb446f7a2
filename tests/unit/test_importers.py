"""Inventories from what users have: kubectl's node list and Ansible inventories (INI and YAML)."""

import copy
import json
from pathlib import Path

import pytest
import yaml

from provisioner import cli
from provisioner.errors import InputError
from provisioner.inventory import importers, load_inventory

from ..conftest import ROOT

DATA = ROOT / "tests/data/import"
KUBEADM = json.loads((DATA / "kubeadm.json").read_text())


def kubectl(doc, **kw):
    return importers.from_kubectl(json.dumps(doc), kw.pop("service_cidr", "10.96.0.0/12"), kw.pop("pod_cidr", "10.244.0.0/16"),
                                  **kw)


def test_kubeadm_cluster_with_control_plane_label_and_dual_stack_nodes():
    warnings: list[str] = []
    data = kubectl(KUBEADM, warnings=warnings)
    assert data["cluster"] == {"node_cidr": "192.168.56.0/24", "pod_cidr": "10.244.0.0/16", "service_cidr": "10.96.0.0/12"}
    assert warnings == ["node cp1: fd00:10:244::/64 left out (the pod range 10.244.0.0/16 has no range of their family)",
                        "node worker1: fd00:10:244:1::/64, fd00::11 left out (the pod range 10.244.0.0/16 has no range "
                        "of their family)"]
    assert data["nodes"] == [
        {"name": "cp1", "address": "192.168.56.10", "pod_subnet": "10.244.0.0/24", "groups": ["control_plane"]},
        {"name": "worker1", "address": "192.168.56.11", "pod_subnet": "10.244.1.0/24", "groups": ["workers"]},
        {"name": "worker2", "address": "192.168.56.12", "pod_subnet": "10.244.2.0/24", "groups": ["workers"]}]


def test_old_master_label_is_control_plane_too():
    doc = copy.deepcopy(KUBEADM)
    doc["items"][0]["metadata"]["labels"] = {"node-role.kubernetes.io/master": ""}
    assert kubectl(doc)["nodes"][0]["groups"] == ["control_plane"]


def test_nodes_without_pod_cidr_need_pod_cidr_and_get_subnets_allocated(write):
    doc = copy.deepcopy(KUBEADM)
    for item in doc["items"]:
        item["spec"] = {}
    with pytest.raises(InputError, match="pod range is not in a node list: give --pod-cidr"):
        kubectl(doc, pod_cidr=None)
    data = kubectl(doc, pod_cidr="10.244.0.0/16")
    assert data["cluster"]["pod_cidr"] == "10.244.0.0/16" and all("pod_subnet" not in n for n in data["nodes"])
    inv = load_inventory(write(yaml.safe_dump(data)))
    assert [str(n.pod_subnet) for n in inv.nodes] == ["10.244.1.0/24", "10.244.2.0/24", "10.244.3.0/24"]


@pytest.mark.parametrize("change,message", [
    (lambda d: d["items"][2]["status"].update(addresses=[{"type": "Hostname", "address": "worker2"}]),
     "node worker2: no IPv4 InternalIP"),
    (lambda d: d["items"][2]["status"].update(addresses=[{"type": "InternalIP", "address": "fd00::12"}]),
     r"node worker2: no IPv4 InternalIP \(only fd00::12\); the pod range 10.244.0.0/16 makes the cluster IPv4"),
    (lambda d: d["items"][2]["spec"].update(podCIDR="10.244.0.0/23"), "node worker2: podCIDR 10.244.0.0/23 overlaps node cp1"),
    (lambda d: d["items"][1]["metadata"].update(name="Worker_1"), "node Worker_1: the name is not a DNS label"),
])
def test_what_cannot_be_mapped_names_the_node(change, message):
    doc = copy.deepcopy(KUBEADM)
    change(doc)
    with pytest.raises(InputError, match=message):
        kubectl(doc)


def test_pod_cidr_given_must_hold_every_node_subnet():
    with pytest.raises(InputError, match="node worker2: podCIDR 10.244.2.0/24 is outside the pod range 10.244.0.0/23"):
        kubectl(KUBEADM, pod_cidr="10.244.0.0/23")


@pytest.mark.parametrize("source", ["hosts.ini", "hosts.yaml"])
def test_ansible_inventory_groups_children_and_connection_vars(source):
    data = importers.from_ansible(DATA / source, "10.244.0.0/16", "10.96.0.0/12", cwd=Path("/home/me/cluster"))
    by = {n["name"]: n for n in data["nodes"]}
    assert list(by) == ["cp1", "worker1", "worker2"]
    # a relative key is found as ssh finds it under ansible-playbook: from where the command runs; written absolute
    assert by["cp1"] == {"name": "cp1", "address": "192.168.56.10", "user": "admin",
                         "identity_file": "/home/me/cluster/keys/lab_ed25519", "groups": ["control", "k8s"]}
    assert by["worker1"]["port"] == 2222 and by["worker1"]["groups"] == ["k8s", "workers"]
    assert by["worker2"]["address"] == "192.168.56.12"  # worker2.lab.example: the node is named by its first label
    assert data["ssh"] == {"sudo": True}  # cp1 becomes root from a non-root user
    assert data["cluster"]["node_cidr"] == "192.168.56.0/24"


def test_ansible_host_names_need_an_ip(tmp_path):
    path = tmp_path / "hosts.ini"
    path.write_text("[web]\nweb1 ansible_host=web1.example.com\n")
    with pytest.raises(InputError, match="host web1: ansible_host web1.example.com is not an IPv4 address.*ip="):
        importers.from_ansible(path, "10.244.0.0/16", "10.96.0.0/12")
    path.write_text("[web]\nweb1 ansible_host=web1.example.com ip=10.0.0.5\n")
    assert importers.from_ansible(path, "10.244.0.0/16", "10.96.0.0/12")["nodes"][0]["ip"] == "10.0.0.5"
    path.write_text("[web]\nweb[1:3]\n")  # a range of names: each still needs its IP
    with pytest.raises(InputError, match="host web1: its name web1 is not an IPv4 address.*ip="):
        importers.from_ansible(path, "10.244.0.0/16", "10.96.0.0/12")


def test_cli_writes_an_inventory_that_validates(tmp_path, capsys):
    out = tmp_path / "from-kubectl.yaml"
    assert cli.main(["inventory", "from-kubectl", str(DATA / "kubeadm.json"), "--service-cidr", "10.96.0.0/12",
                     "--pod-cidr", "10.244.0.0/16", "-o", str(out)]) == 0
    capsys.readouterr()
    inv = load_inventory(out)
    assert [n.name for n in inv.nodes] == ["cp1", "worker1", "worker2"] and inv.groups()["control_plane"] == ["cp1"]
    assert cli.main(["inventory", "from-ansible", str(DATA / "hosts.ini"), "--pod-cidr", "10.244.0.0/16",
                     "--service-cidr", "10.96.0.0/12"]) == 0
    printed = capsys.readouterr().out
    assert "name: worker1" in printed and printed.startswith("# written by `provision inventory`")
    # a result that does not validate is refused, naming why
    assert cli.main(["inventory", "from-ansible", str(DATA / "hosts.ini"), "--pod-cidr", "192.168.0.0/16",
                     "--service-cidr", "10.96.0.0/12"]) == 2
    assert "does not validate" in capsys.readouterr().err


HOSTILE = ["$(touch /tmp/pwned)", "a'b\"c", "x\ny", "`reboot`", "${HOME}", "../../etc/shadow;rm -rf /"]


@pytest.mark.parametrize("payload", HOSTILE)
def test_hostile_values_in_sources_are_refused_with_a_message(tmp_path, capsys, payload):
    """Whatever a node list or an Ansible inventory holds, the result is refused (exit 2, a message) or it is
    inert: the written inventory still passes the schema, which keeps shell and format syntax out."""
    doc = copy.deepcopy(KUBEADM)
    doc["items"][1]["metadata"]["name"] = payload
    src = tmp_path / "nodes.json"
    src.write_text(json.dumps(doc))
    assert cli.main(["inventory", "from-kubectl", str(src), "--service-cidr", "10.96.0.0/12"]) == 2
    for key in ("ansible_user", "ansible_ssh_private_key_file", "ansible_host", "ansible_port"):
        hosts = tmp_path / "hosts.yaml"
        hosts.write_text(yaml.safe_dump({"all": {"hosts": {"web1": {"ansible_host": "10.0.0.5", key: payload}}}}))
        out = tmp_path / "out.yaml"
        rc = cli.main(["inventory", "from-ansible", str(hosts), "--pod-cidr", "10.244.0.0/16",
                       "--service-cidr", "10.96.0.0/12", "-o", str(out)])
        assert "Traceback" not in capsys.readouterr().err
        if rc == 0:  # inert: a local key path kept as text, made absolute (the schema refuses quotes, $, control characters)
            assert key == "ansible_ssh_private_key_file" and not any(c in payload for c in "$\"'\n")  # a backtick stays text
            assert yaml.safe_load(out.read_text())["nodes"][0]["identity_file"] == str(Path.cwd() / payload)
            out.unlink()
        else:
            assert rc == 2 and not out.exists(), key


def test_unreadable_sources_are_messages(tmp_path, capsys):
    assert cli.main(["inventory", "from-kubectl", str(tmp_path / "nope.json"), "--service-cidr", "10.96.0.0/12"]) == 2
    assert cli.main(["inventory", "from-ansible", str(tmp_path / "nope.ini"), "--pod-cidr", "10.244.0.0/16",
                     "--service-cidr", "10.96.0.0/12"]) == 2
    err = capsys.readouterr().err
    assert err.count("cannot read") == 2 and "Traceback" not in err


@pytest.mark.parametrize("kind", ["fifo", "/dev/zero", "dir"])
def test_fifos_devices_and_directories_are_refused_without_reading(tmp_path, capsys, kind):
    """A FIFO would block for ever and /dev/zero never ends: sources, inventories and imported playbooks
    must be regular files."""
    import os
    if kind == "fifo":
        src = tmp_path / "fifo"
        os.mkfifo(src)
    elif kind == "dir":
        src = tmp_path
    else:
        src = kind
    assert cli.main(["inventory", "from-kubectl", str(src), "--service-cidr", "10.96.0.0/12"]) == 2
    assert cli.main(["inventory", "from-ansible", str(src), "--pod-cidr", "10.244.0.0/16",
                     "--service-cidr", "10.96.0.0/12"]) == 2
    assert cli.main(["validate", str(src)]) == 2
    book = tmp_path.parent / f"{tmp_path.name}-pb"
    book.mkdir(exist_ok=True)
    if kind == "fifo":
        os.mkfifo(book / "evil.yaml")
        (book / "site.yaml").write_text("- import_playbook: evil.yaml\n")
        inv = tmp_path.parent / f"{tmp_path.name}-inv.yaml"
        inv.write_text((ROOT / "inventories/example.yaml").read_text())
        assert cli.main(["validate", str(inv), "-p", str(book / "site.yaml")]) == 2
    err = capsys.readouterr().err
    assert "not a regular file" in err and "Traceback" not in err, err


def test_the_written_inventory_never_goes_through_a_planted_symlink(tmp_path, capsys):
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    out = tmp_path / "out" / "cluster.yaml"
    out.parent.mkdir()
    (out.parent / ".cluster.yaml.check").symlink_to(victim)  # the old fixed name of the check file
    out.symlink_to(victim)
    assert cli.main(["inventory", "from-kubectl", str(DATA / "kubeadm.json"), "--service-cidr", "10.96.0.0/12",
                     "--pod-cidr", "10.244.0.0/16", "-o", str(out)]) == 0
    assert victim.read_text() == "precious\n" and not out.is_symlink() and load_inventory(out).nodes
    assert sorted(p.name for p in out.parent.iterdir()) == [".cluster.yaml.check", "cluster.yaml"]  # no temp left


def kubectl_cases():
    node = KUBEADM["items"][1]
    yield "a name that is a number", {"items": [{**node, "metadata": {**node["metadata"], "name": 5}}]}
    yield "a name that is a list", {"items": [{**node, "metadata": {**node["metadata"], "name": ["a"]}}]}
    yield "null items", {"items": None}
    yield "a null item", {"items": [None]}
    yield "null metadata", {"items": [{**node, "metadata": None}]}
    yield "addresses as a string", {"items": [{**node, "status": {"addresses": "10.0.0.1"}}]}
    yield "podCIDR as a number", {"items": [{**node, "spec": {"podCIDR": 10}}]}
    deep: dict = {}
    for _ in range(5000):
        deep = {"items": [deep]}
    yield "deep nesting", deep
    yield "a list at the top", [1, 2]


@pytest.mark.parametrize("what,doc", list(kubectl_cases()), ids=[c[0] for c in kubectl_cases()])
def test_any_node_list_ends_in_a_message(tmp_path, capsys, what, doc):
    src = tmp_path / "nodes.json"
    try:
        src.write_text(json.dumps(doc))
    except RecursionError:
        src.write_text('{"items": [' * 5000 + "]}" * 5000)
    assert cli.main(["inventory", "from-kubectl", str(src), "--service-cidr", "10.96.0.0/12"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "Traceback" not in err, err


@pytest.mark.parametrize("text", ["all: [1, 2]\n", "all:\n  hosts: [web1]\n", "all:\n  hosts:\n    web1: [1]\n",
                                  "all:\n  vars: 5\n  hosts: {web1: {ansible_host: 10.0.0.5}}\n",
                                  "all:\n  children: 3\n", "a: &a [*a]\n", "all:\n  hosts:\n    web1:\n      ansible_port: ٣٣\n"
                                  "      ansible_host: 10.0.0.5\n", "all:\n  hosts:\n    \u212aube1: {ansible_host: 10.0.0.5}\n"])
def test_any_ansible_inventory_ends_in_a_message(tmp_path, capsys, text):
    src = tmp_path / "hosts.yaml"
    src.write_text(text)
    rc = cli.main(["inventory", "from-ansible", str(src), "--pod-cidr", "10.244.0.0/16", "--service-cidr", "10.96.0.0/12"])
    out, err = capsys.readouterr()
    assert rc == 2 and "Traceback" not in err, (out, err)
    assert "port: 33" not in out and "name: kube1" not in out


def test_ini_ports_take_ascii_digits_only(tmp_path, capsys):
    src = tmp_path / "hosts.ini"
    src.write_text("[w]\nweb1 ansible_host=10.0.0.5 ansible_port=\u0663\u0663\n")
    assert cli.main(["inventory", "from-ansible", str(src), "--pod-cidr", "10.244.0.0/16",
                     "--service-cidr", "10.96.0.0/12"]) == 2
    assert "is not a port number" in capsys.readouterr().err


def test_an_inventory_too_large_to_load_is_refused_before_it_is_written(tmp_path, capsys):
    src = tmp_path / "big.ini"
    src.write_text("[workers]\n" + "".join(f"w{i} ansible_host=10.1.{i // 256}.{i % 256}\n" for i in range(20000)))
    out = tmp_path / "out.yaml"
    assert cli.main(["inventory", "from-ansible", str(src), "--pod-cidr", "10.244.0.0/16",
                     "--service-cidr", "10.96.0.0/12", "-o", str(out)]) == 2
    assert "20000 hosts make an inventory of" in capsys.readouterr().err and not out.exists()



def test_from_kubectl_takes_yaml_a_single_node_and_kubeadms_ranges(tmp_path, capsys):
    node = KUBEADM["items"][2]
    src = tmp_path / "node.yaml"
    src.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "Node", **node}))
    config = tmp_path / "kubeadm-config.yaml"
    cluster_config = yaml.safe_dump({"kind": "ClusterConfiguration", "networking": {
        "podSubnet": "10.244.0.0/16", "serviceSubnet": "10.96.0.0/12", "dnsDomain": "corp.local"}})
    config.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap", "data": {"ClusterConfiguration": cluster_config}}))
    assert cli.main(["inventory", "from-kubectl", str(src), "--kubeadm-config", str(config)]) == 0
    out, err = capsys.readouterr()
    data = yaml.safe_load(out)
    assert data["cluster"]["pod_cidr"] == "10.244.0.0/16" and data["cluster"]["service_cidr"] == "10.96.0.0/12"
    assert data["cluster"]["domain"] == "corp.local" and [n["name"] for n in data["nodes"]] == ["worker2"]
    # without the ranges, it asks for them rather than guessing
    assert cli.main(["inventory", "from-kubectl", str(src)]) == 2
    assert "give --pod-cidr" in capsys.readouterr().err


def test_a_dual_stack_cluster_keeps_both_families(write):
    doc = copy.deepcopy(KUBEADM)
    doc["items"] = doc["items"][:2]
    doc["items"][0]["status"]["addresses"].insert(1, {"type": "InternalIP", "address": "fd00::10"})
    warnings: list[str] = []
    data = kubectl(doc, pod_cidr="10.244.0.0/16,fd00:10:244::/56", service_cidr="fd00:10:96::/112,10.96.0.0/12",
                   node_cidr="192.168.56.0/24,fd00::/64", warnings=warnings)
    assert warnings == []
    assert data["cluster"] == {"node_cidr": ["192.168.56.0/24", "fd00::/64"], "pod_cidr": ["10.244.0.0/16", "fd00:10:244::/56"],
                               "service_cidr": ["10.96.0.0/12", "fd00:10:96::/112"]}  # the pod range's order
    assert data["nodes"][1] == {"name": "worker1", "address": "192.168.56.11", "ip": ["192.168.56.11", "fd00::11"],
                                "pod_subnet": ["10.244.1.0/24", "fd00:10:244:1::/64"], "groups": ["workers"]}
    inv = load_inventory(write(yaml.safe_dump(data)))
    assert inv.cluster.families == (4, 6) and [str(s) for s in inv.nodes[0].pod_subnets] == ["10.244.0.0/24", "fd00:10:244::/64"]
    ipv6_first = kubectl(doc, pod_cidr="fd00:10:244::/56,10.244.0.0/16", service_cidr="10.96.0.0/12,fd00:10:96::/112")
    assert ipv6_first["nodes"][0]["address"] == "fd00::10" and ipv6_first["cluster"]["node_cidr"] == ["fd00::/64", "192.168.56.0/24"]
    doc["items"][0]["status"]["addresses"].pop(1)
    with pytest.raises(InputError, match=r"node cp1: no IPv6 InternalIP \(only 192.168.56.10\); .* makes the cluster dual-stack"):
        kubectl(doc, pod_cidr="10.244.0.0/16,fd00:10:244::/56", service_cidr="10.96.0.0/12,fd00:10:96::/112")
    with pytest.raises(InputError, match="the same families"):
        kubectl(doc, pod_cidr="10.244.0.0/16,fd00:10:244::/56", service_cidr="10.96.0.0/12")
