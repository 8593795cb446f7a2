"""Every schema and semantic error: reported with file:line and the YAML path, all at once."""

import re

import pytest

from provisioner.routing import pod_routes
from provisioner.errors import InventoryError
from provisioner.inventory import load_inventory

from ..conftest import BASE, ROOT


def errors(write, text: str) -> list[str]:
    path = write(text)
    with pytest.raises(InventoryError) as exc:
        load_inventory(path)
    return [str(p) for p in exc.value.problems]


def one(write, text: str, pattern: str, line: int | None = None) -> str:
    errs = errors(write, text)
    hits = [e for e in errs if re.search(pattern, e)]
    assert hits, f"no error matches {pattern!r}: {errs}"
    if line is not None:
        assert re.search(rf"inv\.yaml:{line} ", hits[0]), hits[0]
    return hits[0]


def test_valid_inventory_defaults(base_inventory):
    inv = base_inventory
    assert inv.cluster.domain == "cluster.local"
    assert str(inv.cluster.dns_ip) == "10.96.0.10"
    assert inv.cluster.bridge == "v-net-0" and inv.cluster.node_prefix == 24
    assert [str(n.pod_subnet) for n in inv.nodes] == ["10.244.1.0/24", "10.244.2.0/24", "10.244.3.0/24"]
    assert [str(p.ip) for p in inv.nodes[0].pods] == ["10.244.1.2", "10.244.1.3"]
    assert inv.nodes[0].port == 22 and inv.ssh.user == "root" and inv.ssh.host_key_policy == "strict"


def test_unknown_key_is_named_at_its_line_with_a_hint(write):
    text = BASE.replace("  service_cidr:", "  servce_cidr: 10.97.0.0/16\n  service_cidr:")
    e = one(write, text, "servce_cidr", line=5)
    assert "unknown key" in e and "service_cidr" in e


def test_unknown_node_key(write):
    one(write, BASE.replace("    pods: [web]\n", "    pods: [web]\n    colour: red\n"), r"nodes\[1\]\.colour: unknown key", line=13)


def test_yaml_syntax_error_has_line(write):
    one(write, BASE.replace("  pod_cidr: 10.244.0.0/16", "  pod_cidr: [10.244.0.0/16"), "YAML syntax")


def test_duplicate_yaml_key(write):
    one(write, BASE.replace("  name: demo\n", "  name: demo\n  name: other\n"), r"cluster\.name: duplicate key", line=3)


@pytest.mark.parametrize("a,b,key", [
    ("node_cidr: 192.168.56.0/24", "node_cidr: 10.244.5.0/24", "pod_cidr"),        # node inside pod
    ("pod_cidr: 10.244.0.0/16", "pod_cidr: 10.0.0.0/8", "service_cidr"),             # pod contains service
    ("service_cidr: 10.96.0.0/12", "service_cidr: 192.168.0.0/16", "service_cidr"),  # service contains node
])
def test_ranges_must_not_overlap_in_any_direction(write, a, b, key):
    text = BASE.replace(a, b)
    if b.startswith("node_cidr"):
        text = text.replace("192.168.56.1", "10.244.5.1")
    one(write, text, rf"cluster\.{key}: .* overlaps cluster\.")


def test_node_subnet_outside_pod_range(write):
    text = BASE.replace("    pods: [web]\n", "    pods: [web]\n    pod_subnet: 10.250.2.0/24\n")
    one(write, text, r"nodes\[1\]\.pod_subnet: 10.250.2.0/24 is outside cluster.pod_cidr", line=13)


def test_node_subnets_overlapping(write):
    text = BASE.replace("    pods: [web, api]\n", "    pods: [web, api]\n    pod_subnet: 10.244.9.0/24\n")
    text = text.replace("    pods: [web]\n", "    pods: [web]\n    pod_subnet: 10.244.9.0/24\n")
    one(write, text, r"nodes\[1\]\.pod_subnet: 10.244.9.0/24 overlaps nodes\[0\]")


def test_node_subnet_wrong_size(write):
    text = BASE.replace("    pods: [web]\n", "    pods: [web]\n    pod_subnet: 10.244.4.0/25\n")
    one(write, text, r"is a /25; cluster.node_prefix says /24")


def test_subnet_with_host_bits_suggests_the_network(write):
    text = BASE.replace("    pods: [web]\n", "    pods: [web]\n    pod_subnet: 10.244.4.7/24\n")
    one(write, text, r"did you mean 10.244.4.0/24")


@pytest.mark.parametrize("dns,msg", [
    ("10.200.0.10", "outside cluster.service_cidr"),
    ("10.96.0.0", "network address"),
    ("10.96.0.1", "first address .* kubernetes API"),
])
def test_dns_ip_checks(write, dns, msg):
    one(write, BASE.replace("  service_cidr: 10.96.0.0/12\n", f"  service_cidr: 10.96.0.0/12\n  dns_ip: {dns}\n"),
        rf"cluster\.dns_ip: .*{msg}", line=6)


def test_duplicate_node_names_and_addresses(write):
    text = BASE.replace("  - name: node3\n    address: 192.168.56.13", "  - name: node1\n    address: 192.168.56.12")
    errs = errors(write, text)
    assert any(re.search(r"nodes\[2\]\.name: duplicate name node1 \(also nodes\[0\]\)", e) for e in errs), errs
    assert any(re.search(r"nodes\[2\]\.address: duplicate address 192.168.56.12:22", e) for e in errs), errs
    assert any(re.search(r"nodes\[2\]\.ip: duplicate ip", e) for e in errs), errs


def test_node_ip_outside_node_network(write):
    one(write, BASE.replace("    address: 192.168.56.13", "    address: 192.168.57.13"), r"nodes\[2\]\.address: .* outside cluster.node_cidr", line=14)


def test_host_name_address_needs_ip(write):
    one(write, BASE.replace("    address: 192.168.56.13", "    address: node3.lab"), "'ip' is required")


@pytest.mark.parametrize("name", ["this-is-way-too-long0", "br/0", "br 0", "br:0"])
def test_bridge_names_linux_refuses(write, name):
    one(write, BASE.replace("  name: demo\n", f"  name: demo\n  bridge: '{name}'\n"), r"cluster\.bridge: .*Linux interface name", line=3)


def test_interface_name_too_long(write):
    one(write, BASE.replace("    pods: [web]\n", "    pods: [web]\n    interface: enp0s3f1234567890\n"),
        r"nodes\[1\]\.interface: .*1-15")


@pytest.mark.parametrize("bad", ["Node1", "node_1", "-node", "node1;rm"])
def test_node_names_must_be_safe(write, bad):
    one(write, BASE.replace("  - name: node3", f"  - name: '{bad}'"), r"nodes\[2\]\.name: .*does not match")


def test_pod_names_must_be_safe_and_short(write):
    one(write, BASE.replace("pods: [web]", "pods: [averyverylongpodname]"), r"nodes\[1\]\.pods\[0\]")


def test_pod_ip_checks(write):
    text = BASE.replace("pods: [web, api]", "pods: [{name: web, ip: 10.244.1.1}, {name: api, ip: 10.244.9.9}]")
    errs = errors(write, text)
    assert any("pods[0].ip: 10.244.1.1 is not a pod address" in e for e in errs), errs
    assert any("pods[1].ip: 10.244.9.9 is not a pod address" in e for e in errs), errs


def test_duplicate_pod_names(write):
    one(write, BASE.replace("pods: [web, api]", "pods: [web, web]"), r"pods\[1\]\.name: duplicate pod name web")


def test_all_problems_reported_together(write):
    text = BASE.replace("pod_cidr: 10.244.0.0/16", "pod_cidr: 10.96.0.0/16").replace("- name: node3", "- name: node1")
    assert len(errors(write, text)) >= 2


def test_missing_required_and_wrong_types(write):
    errs = errors(write, "cluster:\n  pod_cidr: 10.244.0.0/16\nnodes: []\n")
    assert any("'node_cidr' is required" in e for e in errs)
    assert any("'service_cidr' is required" in e for e in errs)
    assert any("nodes" in e for e in errs)


def test_router_mode_needs_router(write):
    one(write, BASE.replace("  name: demo\n", "  name: demo\n  routing: router\n"), "needs cluster.router")


def test_router_mode_routes(write):
    from provisioner.inventory import load_inventory
    inv = load_inventory(write(BASE.replace("  name: demo\n", "  name: demo\n  routing: router\n  router: 192.168.56.11\n")))
    assert pod_routes(inv, inv.nodes[1]) == [{"dst": "10.244.0.0/16", "via": "192.168.56.11"}]
    assert len(pod_routes(inv, inv.nodes[0])) == 2  # the router itself routes to each node


def test_vagrant_nat_address_warns(write):
    text = BASE.replace("node_cidr: 192.168.56.0/24", "node_cidr: 10.0.2.0/24").replace("192.168.56.1", "10.0.2.1")
    text = text.replace("address: 10.0.2.13", "address: 10.0.2.15")
    inv = load_inventory(write(text))
    assert len(inv.warnings) == 1 and "inv.yaml:14 nodes[2].address: 10.0.2.15 is the NAT address" in inv.warnings[0]


def test_ssh_paths_are_relative_to_the_inventory(write, tmp_path):
    from provisioner.inventory import load_inventory
    inv = load_inventory(write(BASE + "ssh:\n  identity_file: keys/id\n  known_hosts: kh\n  user: ops\n  sudo: true\n"))
    assert inv.ssh.identity_file == tmp_path / "keys/id" and inv.ssh.known_hosts == tmp_path / "kh"
    assert inv.ssh.sudo and inv.ssh.user == "ops"


def test_example_inventories_are_valid():
    found = sorted((ROOT / "inventories").glob("*.yaml"))
    assert len(found) >= 3  # example, lab, vagrant: a glob that finds nothing must not pass
    for p in found:
        load_inventory(p)


def test_committed_lab_inventory_is_what_lab_up_writes():
    import ipaddress

    import yaml

    from provisioner.lab import namespace
    ips = [ipaddress.IPv4Address("10.213.0.11") + i for i in range(3)]
    want = namespace.inventory("plab", namespace.ROOT / "plab", "10.213.0.0/24", ips)
    assert yaml.safe_load((ROOT / "inventories/lab.yaml").read_text()) == want


@pytest.mark.parametrize("change,pattern", [
    (("address: 192.168.56.11", "address: 192.168.56.0"), r"nodes\[0\]\.address: 192\.168\.56\.0 is the network address"),
    (("address: 192.168.56.11", "address: 192.168.56.255"), r"nodes\[0\]\.address: 192\.168\.56\.255 is the broadcast address"),
    (("service_cidr: 10.96.0.0/12", "service_cidr: 10.96.0.0/12\n  dns_ip: 10.111.255.255"),
     r"cluster\.dns_ip: 10\.111\.255\.255 is the broadcast address"),
    (("service_cidr: 10.96.0.0/12", "service_cidr: 10.96.0.0/12\n  routing: router\n  router: 192.168.56.0"),
     r"cluster\.router: 192\.168\.56\.0 is the network address"),
    (("address: 192.168.56.11", "address: 192.168.56.11\n    interface: v-net-0"), r"nodes\[0\]\.interface: v-net-0 is cluster\.bridge"),
])
def test_addresses_a_host_cannot_have_are_refused(write, change, pattern):
    one(write, BASE.replace(*change, 1), pattern)


@pytest.mark.parametrize("text,pattern", [
    (b"cluster: {name: \xff}\n", r"inv\.yaml:1: not UTF-8 text \(byte 16"),
    (b"cluster:\n  name: a\x00b\n", r"inv\.yaml:2: YAML: character '\\x00' is not allowed"),
    (b"a: " + b"[" * 3000 + b"]" * 3000, r"nested deeper than 64 levels"),
    (b"a: &x [*x]\n", r"an alias that contains itself"),
    (b"a: &a [1,1,1,1,1,1,1,1,1,1]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
     b"d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\n", r"more than 50000 values"),
    (b"? {a: 1}\n: 2\n", r"a key must be a plain value"),
    (b"cluster: !!float x\n", r"inv\.yaml:1 cluster: tag:yaml\.org,2002:float"),
    (b"cluster: {}\n1: a\nyes: b\n", r"key 1 is not text"),
    (b"cluster: {}\ncluster: {}\n", r"inv\.yaml:2 cluster: duplicate key"),
    (b'cluster: {}\nnodes: []\n"\\e[31mevil": 1\n', r"\\x1b\[31mevil: unknown key"),
])
def test_yaml_oddities_are_located_errors_never_tracebacks(tmp_path, text, pattern):
    import time

    path = tmp_path / "inv.yaml"
    path.write_bytes(text)
    start = time.monotonic()
    with pytest.raises(InventoryError) as exc:
        load_inventory(path)
    assert time.monotonic() - start < 5
    assert any(re.search(pattern, str(p)) for p in exc.value.problems), [str(p) for p in exc.value.problems]


def test_jump_hosts_as_proxyjump_writes_them(write):
    text = BASE.replace("cluster:\n", "ssh:\n  user: admin\n  port: 2200\n  jump: ops@bastion.example\ncluster:\n", 1)
    text = text.replace("    pods: [web]\n", "    pods: [web]\n    jump: none\n", 1)
    inv = load_inventory(write(text))
    assert [str(n.jump) for n in inv.nodes[:2]] == ["ops@bastion.example:2200", "None"]  # user given; port: ssh.port
    text = BASE.replace("    pods: [web]\n", "    pods: [web]\n    jump: \"[fe80::1]:2022\"\n", 1)
    assert str(load_inventory(write(text)).nodes[1].jump) == "root@[fe80::1]:2022"
    one(write, BASE.replace("    pods: [web]\n", "    pods: [web]\n    jump: h:70000\n", 1), r"nodes\[1\]\.jump: port 70000", line=13)
    one(write, BASE.replace("    pods: [web]\n", "    pods: [web]\n    jump: \"[nope]\"\n", 1), r"nodes\[1\]\.jump")
    one(write, BASE.replace("    pods: [web]\n", "    pods: [web]\n    jump: \"a b@h\"\n", 1), r"nodes\[1\]\.jump")


def test_defaults_fill_array_items_only_where_the_item_schema_has_something_to_fill():
    from provisioner.inventory.load import with_defaults
    root = {"$defs": {"port": {"type": "object", "properties": {"p": {"default": 80}}}},
            "properties": {
                "plain": {"type": "array", "items": {"type": "object", "properties": {"dst": {"type": "string"}}}},
                "direct": {"type": "array", "items": {"type": "object", "properties": {"d": {"default": 1}}}},
                "nested": {"type": "array", "items": {"type": "array", "items": {"properties": {"n": {"default": 2}}}}},
                "ref": {"type": "array", "items": {"$ref": "#/$defs/port"}},
                "branch": {"type": "array", "items": {"oneOf": [{"type": "string"}, {"type": "object", "properties": {
                    "o": {"type": "object", "properties": {"x": {"type": "string"}}}}}]}}}}
    value = {"plain": [{"dst": "a"}], "direct": [{}], "nested": [[{}]], "ref": [{}], "branch": ["s", {}]}
    assert with_defaults(root, value) == {"plain": [{"dst": "a"}], "direct": [{"d": 1}], "nested": [[{"n": 2}]],
                                          "ref": [{"p": 80}], "branch": ["s", {"o": {}}]}
    assert with_defaults(root, value)["plain"] is not value["plain"]  # a copy, as before: binding never shares lists


def test_mesh_routes_are_made_once_per_inventory_and_shared_by_the_nodes(base_inventory):
    """N lists of N-1 routes share N route values (a 200-node bind held 12 MiB of copies)."""
    inv = base_inventory
    a, b = inv.nodes[0], inv.nodes[1]
    shared = [r for r in pod_routes(inv, a) if r in pod_routes(inv, b)]
    assert shared and all(any(r is s for s in pod_routes(inv, b)) for r in shared)
    assert pod_routes(inv, a) == [{"dst": str(n.pod_subnet), "via": str(n.ip)} for n in inv.nodes if n is not a]
