"""Our plugin driven exactly as a runtime drives it, checked against the spec and the reference plugin."""

from __future__ import annotations

import ipaddress
from concurrent.futures import ThreadPoolExecutor

import jsonschema

# The shape of a CNI 1.0.0 ADD result (SPEC.md, "Success").
RESULT_SCHEMA = {
    "type": "object",
    "required": ["cniVersion", "ips"],
    "properties": {
        "cniVersion": {"const": "1.0.0"},
        "interfaces": {"type": "array", "items": {
            "type": "object", "required": ["name"], "additionalProperties": False,
            "properties": {"name": {"type": "string"}, "mac": {"type": "string", "pattern": "^([0-9a-f]{2}:){5}[0-9a-f]{2}$"},
                           "mtu": {"type": "integer"}, "sandbox": {"type": "string"}, "socketPath": {"type": "string"},
                           "pciID": {"type": "string"}}}},
        "ips": {"type": "array", "minItems": 1, "items": {
            "type": "object", "required": ["address"], "additionalProperties": False,
            "properties": {"address": {"type": "string"}, "gateway": {"type": "string"}, "interface": {"type": "integer", "minimum": 0}}}},
        "routes": {"type": "array", "items": {
            "type": "object", "required": ["dst"],
            "properties": {"dst": {"type": "string"}, "gw": {"type": "string"}, "mtu": {"type": "integer"},
                           "advmss": {"type": "integer"}, "priority": {"type": "integer"}, "table": {"type": "integer"},
                           "scope": {"type": "integer"}}}},
        "dns": {"type": "object", "properties": {"nameservers": {"type": "array"}, "domain": {"type": "string"},
                                                 "search": {"type": "array"}, "options": {"type": "array"}}},
    },
}
ERROR_SCHEMA = {"type": "object", "required": ["cniVersion", "code", "msg"],
                "properties": {"code": {"type": "integer"}, "msg": {"type": "string"}, "details": {"type": "string"}}}


def add(node, pod):
    rc, out = node.call("ADD", node.config(), pod)
    assert rc == 0, out
    return out


def test_add_result_matches_the_spec_and_the_pod_is_wired(node):
    pod = node.pod()
    out = add(node, pod)
    jsonschema.validate(out, RESULT_SCHEMA)
    ip = out["ips"][0]
    assert ip["gateway"] == "10.250.0.1" and out["interfaces"][ip["interface"]]["sandbox"] == f"/run/netns/{pod}"
    addr = ipaddress.IPv4Interface(ip["address"])
    assert addr in ipaddress.IPv4Network("10.250.0.0/24") or addr.ip in ipaddress.IPv4Network("10.250.0.0/24")
    routes = node.ip_json("route", "show", pod=pod)
    assert any(r["dst"] == "default" and r["gateway"] == "10.250.0.1" for r in routes)
    br = node.ip_json("addr", "show", "dev", "cnibr0")[0]
    assert "10.250.0.1" in [a["local"] for a in br["addr_info"]]
    node.run("ping", "-c1", "-W2", str(addr.ip))                  # bridge → pod
    node.run("ping", "-c1", "-W2", "10.250.0.1", pod=pod)         # pod → gateway


def test_version_command(node):
    rc, out = node.call("VERSION", "", None)
    assert rc == 0 and "1.0.0" in out["supportedVersions"]


def test_30_concurrent_adds_get_30_distinct_reachable_ips(node):
    pods = [node.pod() for _ in range(30)]
    with ThreadPoolExecutor(max_workers=30) as pool:
        results = list(pool.map(lambda p: node.call("ADD", node.config(), p), pods))
    assert all(rc == 0 for rc, _ in results), [out for rc, out in results if rc]
    ips = [ipaddress.IPv4Interface(out["ips"][0]["address"]).ip for _, out in results]
    assert len(set(ips)) == 30
    assert len(node.leases()) == 30
    for ip in ips:
        node.run("ping", "-c1", "-W2", str(ip))
    ports = [x for x in node.ip_json("-d", "link", "show", "type", "veth") if x.get("master") == "cnibr0"]
    assert len(ports) == 30


def test_check_passes_then_fails_after_the_veth_is_deleted_by_hand(node):
    pod = node.pod()
    out = add(node, pod)
    conf = node.config(prevResult=out)
    rc, err = node.call("CHECK", conf, pod)
    assert rc == 0, err
    node.run("ip", "link", "del", "eth0", pod=pod)
    rc, err = node.call("CHECK", conf, pod)
    assert rc != 0
    jsonschema.validate(err, ERROR_SCHEMA)
    assert "eth0" in err["msg"]


def test_del_twice_succeeds_and_frees_the_ip(node):
    pod = node.pod()
    out = add(node, pod)
    ip = out["ips"][0]["address"].split("/")[0]
    assert ip in node.leases()
    for _ in range(2):
        rc, err = node.call("DEL", node.config(), pod)
        assert rc == 0, err
    assert node.leases() == [] and node.veths() == []
    node.run("ip", "netns", "del", pod)
    rc, err = node.call("DEL", node.config(), pod)  # the namespace is gone: still fine
    assert rc == 0, err


def test_invalid_config_is_code_7_and_leaves_nothing(node):
    pod = node.pod()
    bad = node.config()
    del bad["ipam"]["type"]
    rc, err = node.call("ADD", bad, pod)
    assert rc != 0 and err["code"] == 7
    jsonschema.validate(err, ERROR_SCHEMA)
    rc, err = node.call("ADD", node.config(bridge="name/with/slash"), pod)
    assert rc != 0 and err["code"] == 7
    assert node.leases() == [] and node.veths() == []


def test_decode_error_is_code_6_and_missing_env_is_code_4(node):
    pod = node.pod()
    rc, err = node.call("ADD", "{not json", pod)
    assert rc != 0 and err["code"] == 6
    rc, err = node.call("ADD", node.config(), pod, env={"CNI_NETNS": ""})
    assert rc != 0 and err["code"] == 4
    assert node.leases() == [] and node.veths() == []


def test_failed_add_releases_its_lease_and_veth(node):
    pod = node.pod()
    node.run("ip", "link", "add", "cnibr0", "type", "veth", "peer", "name", "other0")  # name taken by another kind
    before = node.veths()
    rc, err = node.call("ADD", node.config(), pod)
    assert rc != 0 and "not a bridge" in err["msg"]
    assert node.leases() == [] and node.veths() == before


def test_bridge_with_a_different_address_is_refused(node):
    node.run("ip", "link", "add", "cnibr0", "type", "bridge")
    node.run("ip", "addr", "add", "10.250.0.77/24", "dev", "cnibr0")
    rc, err = node.call("ADD", node.config(), node.pod())
    assert rc != 0 and "not the gateway" in err["msg"]
    assert node.leases() == []


def _state(node, pod):
    """Network state a bridge plugin makes, minus names and MACs that legitimately differ."""
    addrs = [(a["local"], a["prefixlen"]) for x in node.ip_json("addr", "show", "dev", "eth0", pod=pod)
             for a in x["addr_info"] if a["family"] == "inet"]
    routes = sorted((r["dst"], r.get("gateway"), r.get("dev")) for r in node.ip_json("route", "show", pod=pod))
    link = node.ip_json("link", "show", "dev", "eth0", pod=pod)[0]
    ports = [x for x in node.ip_json("-d", "link", "show", "type", "veth") if x.get("master") == "cnibr0"]
    hairpin = [x["linkinfo"]["info_slave_data"]["hairpin"] for x in ports]
    br = node.ip_json("-d", "addr", "show", "dev", "cnibr0")[0]
    return {"pod_addrs": addrs, "pod_routes": routes, "pod_mtu": link["mtu"], "pod_up": "UP" in link["flags"],
            "bridge_ports": len(ports), "hairpin": hairpin, "bridge_addrs": sorted(
                (a["local"], a["prefixlen"]) for a in br["addr_info"] if a["family"] == "inet"),
            "bridge_up": "UP" in br["flags"], "bridge_kind": br["linkinfo"]["info_kind"]}


def test_same_network_state_as_the_reference_bridge_plugin(node, node2):
    ours_pod, ref_pod = node.pod(), node2.pod()
    rc, ours = node.call("ADD", node.config(), ours_pod)
    assert rc == 0, ours
    rc, ref = node2.call("ADD", node2.config(type_="bridge"), ref_pod, plugin="bridge")
    assert rc == 0, ref
    assert _state(node, ours_pod) == _state(node2, ref_pod)
    assert ours["ips"] == ref["ips"]
    assert len(ours["interfaces"]) == len(ref["interfaces"])
