"""Our Ansible inventory parser against ansible-core's own reading of the same inventories.

tests/data/import/corpus/expected.json was recorded with ansible-core (record.py there says how); with
ansible-core installed (the test extras install it), the corpus is also read by it live, in a child process.
"""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from provisioner import cli
from provisioner.errors import InputError
from provisioner.inventory import ansible_inventory, importers, load_inventory

CORPUS = Path(__file__).parent.parent / "data" / "import" / "corpus"
EXPECTED = json.loads((CORPUS / "expected.json").read_text())


def ours(source: str) -> dict:
    parsed = ansible_inventory.read(CORPUS / source)
    return {"hosts": parsed.hosts, "groups": {g: sorted(hs) for g, hs in parsed.groups.items()}}


@pytest.mark.parametrize("source", sorted(EXPECTED))
def test_our_parser_reads_what_ansible_core_read(source):
    assert ours(source) == EXPECTED[source]


def _ansible_core() -> bool:
    return subprocess.run([sys.executable, "-c", "import ansible.inventory.manager"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _ansible_core(), reason="ansible-core is not installed (the recorded table still runs)")
def test_the_recorded_table_is_what_the_installed_ansible_core_reads():
    code = ("import json, sys; sys.path.insert(0, '.'); import record; "
            "print(json.dumps({s: record.record(s) for s in record.SOURCES}))")
    done = subprocess.run([sys.executable, "-c", code], cwd=CORPUS, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    live = json.loads(done.stdout)
    for source, listed_from in {**{s: s for s in live}, "listed/inventory.json": "kubespray-sample/inventory.ini"}.items():
        assert ours(source) == live[listed_from], source


def imported(source: str, *args, **kw) -> tuple[dict, list[str]]:
    warnings: list[str] = []
    data = importers.from_ansible(CORPUS / source, *args, warnings=warnings, cwd=Path("/home/me/kubespray"), **kw)
    return data, warnings


@pytest.mark.parametrize("source", sorted(EXPECTED))
def test_the_import_is_the_same_from_ansible_cores_reading(source):
    """What ansible-core read (recorded), mapped, is what our reading gives: the same with or without it."""
    recorded = ansible_inventory.Parsed(EXPECTED[source]["hosts"], EXPECTED[source]["groups"])
    args = ("10.244.0.0/16", "10.96.0.0/12") if source.startswith("docs-style") else ()
    if source.startswith("kubespray-legacy"):
        args = ("10.233.64.0/18", "10.233.0.0/18")
    theirs = importers.from_parsed(recorded, source, *args, cwd=Path("/home/me/kubespray"))
    mine = imported(source, *args)[0]
    for data in (theirs, mine):  # ansible-core lists hosts in file order too; the record sorted them
        data["nodes"].sort(key=lambda n: n["name"])
    assert theirs == mine


def validates(tmp_path, data) -> None:
    path = tmp_path / "inventory.yaml"
    path.write_text(importers.to_yaml(data, "test"))
    assert load_inventory(path).nodes


def test_kubespray_sample_has_kubesprays_meaning(tmp_path):
    data, warnings = imported("kubespray-sample/inventory.ini")
    nodes = {n["name"]: n for n in data["nodes"]}
    assert list(nodes) == ["node1", "node2", "node3", "node4", "node5"]  # the bastion is not a node
    assert nodes["node1"] == {"name": "node1", "address": "95.54.0.12", "ip": "10.3.0.1",
                              "groups": ["control_plane", "etcd", "k8s_cluster"]}
    assert nodes["node4"]["groups"] == ["k8s_cluster", "workers"] and nodes["node4"]["ip"] == "10.3.0.4"
    assert data["ssh"] == {"jump": "ops@95.54.0.10"}
    # the ranges come from group_vars/k8s_cluster; pod routes go over the node network (ip=), not public addresses
    assert data["cluster"] == {"node_cidr": "10.3.0.0/24", "pod_cidr": "10.233.64.0/18", "service_cidr": "10.233.0.0/18",
                               "dns_ip": "10.233.0.3"}
    assert warnings == []
    validates(tmp_path, data)
    inv = load_inventory(tmp_path / "inventory.yaml")
    assert str(inv.nodes[0].jump) == "ops@95.54.0.10:22" and inv.groups()["control_plane"] == ["node1", "node2", "node3"]


def test_kubespray_docs_form_access_ip_host_vars_and_what_is_not_a_node(tmp_path):
    data, warnings = imported("kubespray-docs/hosts.yaml")
    nodes = {n["name"]: n for n in data["nodes"]}
    assert list(nodes) == ["node1", "node2", "node3"]
    assert nodes["node3"]["ip"] == "10.3.0.3" and nodes["node3"]["port"] == 2201  # access_ip; host_vars/node3.yml
    assert nodes["node1"]["identity_file"] == "/home/me/kubespray/keys/cluster_ed25519"
    assert data["ssh"] == {"sudo": True}
    assert warnings == ["host etcd1 (etcd) is not a node: it is not in k8s_cluster"]
    validates(tmp_path, data)


def test_kubespray_legacy_names_ssh_aliases_and_ranges(tmp_path):
    data, _ = imported("kubespray-legacy/inventory.ini", "10.233.64.0/18", "10.233.0.0/18")
    nodes = {n["name"]: n for n in data["nodes"]}
    assert nodes["master1"] == {"name": "master1", "address": "192.168.10.11", "port": 2222,
                                "user": "core", "groups": ["control_plane", "etcd", "k8s-cluster"]}
    assert [nodes[f"worker0{i}"]["address"] for i in (1, 2, 3)] == ["192.168.10.21", "192.168.10.22", "192.168.10.23"]
    assert nodes["worker01"]["groups"] == ["k8s-cluster", "workers"]
    assert data["ssh"] == {"sudo": True}
    with pytest.raises(InputError, match="pod range is not in the inventory's vars.*--pod-cidr"):
        importers.from_ansible(CORPUS / "kubespray-legacy/inventory.ini")
    validates(tmp_path, data)


def test_a_plain_ansible_inventory_every_host_a_node(tmp_path):
    data, warnings = imported("docs-style/hosts.yml", "10.244.0.0/16", "10.96.0.0/12")
    nodes = {n["name"]: n for n in data["nodes"]}
    assert sorted(nodes) == ["cp-a", "db1", "db3", "web-a", "web-b", "web-c"]
    assert nodes["db3"]["port"] == 2200 and nodes["web-b"]["user"] == "admin" and nodes["web-a"]["user"] == "deploy"
    assert "dns_ip" not in data["cluster"] and warnings == []
    validates(tmp_path, data)


def test_the_command_line_overrides_the_inventorys_ranges_and_says_so():
    data, warnings = imported("kubespray-sample/inventory.ini", "10.244.0.0/16", "10.233.0.0/18")
    assert data["cluster"]["pod_cidr"] == "10.244.0.0/16"
    assert warnings == ["kube_pods_subnet 10.233.64.0/18 in the inventory's vars is overridden by the command line: "
                        "10.244.0.0/16"]


def write(tmp_path, text: str, name: str = "hosts.ini") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_templates_and_vault_are_never_run(tmp_path):
    path = write(tmp_path, "[kube_node]\nn1 ansible_host=10.0.0.5\n[k8s_cluster:children]\nkube_node\n"
                           "[k8s_cluster:vars]\nkube_pods_subnet={{ lookup('pipe', 'touch /tmp/pwned') }}\n"
                           "kube_service_addresses=10.233.0.0/18\n")
    warnings: list[str] = []
    with pytest.raises(InputError, match="pod range is not in the inventory's vars"):
        importers.from_ansible(path, warnings=warnings)
    assert any("kube_pods_subnet is a template ({{ lookup" in w for w in warnings), warnings
    assert importers.from_ansible(path, "10.233.64.0/18")["cluster"]["pod_cidr"] == "10.233.64.0/18"
    (tmp_path / "host_vars").mkdir()
    (tmp_path / "host_vars" / "n1.yml").write_text("ansible_user: !vault |\n  $ANSIBLE_VAULT;1.1;AES256\n  6162\n")
    with pytest.raises(InputError, match="host n1: ansible_user is vault-encrypted"):
        importers.from_ansible(path, "10.233.64.0/18")
    (tmp_path / "host_vars" / "n1.yml").write_text("ansible_host: '{{ inventory_hostname }}.example'\n")
    with pytest.raises(InputError, match="host n1: ansible_host is a template"):
        importers.from_ansible(path, "10.233.64.0/18")
    (tmp_path / "host_vars" / "n1.yml").unlink()
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "group_vars" / "k8s_cluster.yml").write_text("kube_pods_subnet: !vault |\n  $ANSIBLE_VAULT;1.1;AES256\n  6162\n")
    warnings = []
    with pytest.raises(InputError, match="pod range is not in the inventory's vars"):
        importers.from_ansible(path, warnings=warnings)
    assert "kube_pods_subnet is vault-encrypted and is not used: give the value on the command line" in warnings


def test_connection_local_is_explained_and_other_connections_refused(tmp_path):
    path = write(tmp_path, "[kube_node]\nlocalhost ansible_connection=local\n")
    with pytest.raises(InputError, match="ansible_connection=local: Ansible runs it on the controller without SSH; "
                                         "provision still connects over SSH \\(to 127.0.0.1\\)"):
        importers.from_ansible(path, "10.244.0.0/16", "10.96.0.0/12")
    path = write(tmp_path, "[kube_node]\nlocalhost ansible_connection=local ip=10.0.0.5\n")
    node = importers.from_ansible(path, "10.244.0.0/16", "10.96.0.0/12")["nodes"][0]
    assert node["address"] == "127.0.0.1" and node["ip"] == "10.0.0.5"
    path = write(tmp_path, "[kube_node]\nbox ansible_connection=docker ansible_host=10.0.0.5\n")
    with pytest.raises(InputError, match="ansible_connection=docker: provision reaches nodes over SSH only"):
        importers.from_ansible(path, "10.244.0.0/16", "10.96.0.0/12")


def test_plugin_configs_and_errors_name_the_file_and_line(tmp_path):
    path = write(tmp_path, "plugin: amazon.aws.aws_ec2\nregions: [eu-west-1]\n", "aws_ec2.yml")
    with pytest.raises(InputError, match="inventory plugin's config.*ansible-inventory -i .*--list > inventory.json"):
        importers.from_ansible(path, "10.244.0.0/16", "10.96.0.0/12")
    path = write(tmp_path, "[a:children]\nb\n")
    with pytest.raises(InputError, match=r"hosts.ini:2: \[a:children\] names group b, declared nowhere"):
        importers.from_ansible(path, "10.244.0.0/16", "10.96.0.0/12")
    path = write(tmp_path, "[w]\nweb[01:3] ansible_host=10.0.0.5\n")
    with pytest.raises(InputError, match="hosts.ini:2: host range \\[01:3\\]: begin and end must have the same width"):
        importers.from_ansible(path, "10.244.0.0/16", "10.96.0.0/12")
    path = write(tmp_path, "[a:children]\nb\n[b:children]\na\n")
    with pytest.raises(InputError, match="form a loop"):
        importers.from_ansible(path, "10.244.0.0/16", "10.96.0.0/12")


@pytest.mark.parametrize("bastion", ["bastion ansible_host='x;rm -rf /'", "bastion ansible_host=10.0.0.1 ansible_user='$(id)'",
                                     "bastion ansible_host=10.0.0.1 ansible_port=99999"])
def test_a_hostile_bastion_never_reaches_the_written_inventory(tmp_path, capsys, bastion):
    path = write(tmp_path, f"[bastion]\n{bastion}\n[kube_node]\nn1 ansible_host=10.0.0.5\n")
    rc = cli.main(["inventory", "from-ansible", str(path), "--pod-cidr", "10.244.0.0/16", "--service-cidr", "10.96.0.0/12",
                   "-o", str(tmp_path / "out.yaml")])
    assert rc == 2 and not (tmp_path / "out.yaml").exists()
    assert "Traceback" not in capsys.readouterr().err


def test_the_cli_takes_kubesprays_ranges_without_options(tmp_path, capsys):
    out = tmp_path / "cluster.yaml"
    assert cli.main(["inventory", "from-ansible", str(CORPUS / "kubespray-sample/inventory.ini"), "-o", str(out)]) == 0
    inv = load_inventory(out)
    assert str(inv.cluster.pod_cidr) == "10.233.64.0/18" and str(inv.cluster.dns_ip) == "10.233.0.3"
