"""The plugin to the letter of the spec: every version's result shape, VERSION, gated commands, GC and
STATUS, hostile calls answered with error JSON, and a chained conflist run as a runtime runs it."""

from __future__ import annotations

import copy
import ipaddress
import json

import jsonschema
import pytest

from provisioner.node_plugin import PLUGIN_NAME

VERSIONS = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]
IP_0X = {"type": "object", "required": ["version", "address"], "additionalProperties": False,
         "properties": {"version": {"enum": ["4", "6"]}, "address": {"type": "string"}, "gateway": {"type": "string"},
                        "interface": {"type": "integer", "minimum": 0}}}
IP_1X = {"type": "object", "required": ["address"], "additionalProperties": False,
         "properties": {"address": {"type": "string"}, "gateway": {"type": "string"},
                        "interface": {"type": "integer", "minimum": 0}}}


def result_schema(version: str) -> dict:
    """SPEC.md "Success" of each version: 0.3.x/0.4.0 name the IP version, 1.x does not."""
    return {"type": "object", "required": ["cniVersion", "ips"],
            "properties": {"cniVersion": {"const": version},
                           "interfaces": {"type": "array", "items": {"type": "object", "required": ["name"]}},
                           "ips": {"type": "array", "minItems": 1, "items": IP_0X if version < "1" else IP_1X},
                           "routes": {"type": "array", "items": {"type": "object", "required": ["dst"]}},
                           "dns": {"type": "object"}}}


def error_ok(rc, out) -> int:
    assert rc != 0 and isinstance(out, dict) and isinstance(out.get("code"), int) and out.get("msg"), out
    return out["code"]


@pytest.mark.parametrize("version", VERSIONS)
def test_each_version_gets_its_own_result_shape(node, version):
    pod = node.pod()
    rc, out = node.call("ADD", node.config(cniVersion=version), pod)
    assert rc == 0, out
    jsonschema.validate(out, result_schema(version))
    assert ipaddress.IPv4Interface(out["ips"][0]["address"]).ip in ipaddress.IPv4Network("10.250.0.0/24")
    if version >= "0.4.0":
        rc, err = node.call("CHECK", node.config(cniVersion=version, prevResult=out), pod)
        assert rc == 0, err
    rc, err = node.call("DEL", node.config(cniVersion=version, prevResult=out), pod)
    assert rc == 0, err
    assert node.leases() == [] and node.veths() == []


def test_version_answers_in_the_version_asked(node):
    for asked in ("0.4.0", "1.0.0", "1.1.0"):
        rc, out = node.call("VERSION", {"cniVersion": asked}, None)
        assert rc == 0 and out == {"cniVersion": asked, "supportedVersions": VERSIONS}
    rc, out = node.call("VERSION", "", None)
    assert rc == 0 and out["cniVersion"] == "1.1.0"


def test_commands_newer_than_the_config_are_refused(node):
    pod = node.pod()
    assert error_ok(*node.call("CHECK", node.config(cniVersion="0.3.1", prevResult={"ips": []}), pod)) == 1
    assert error_ok(*node.call("GC", node.config(cniVersion="1.0.0"), None)) == 1
    assert error_ok(*node.call("STATUS", node.config(cniVersion="1.0.0"), None)) == 1
    rc, out = node.call("STATUS", node.config(cniVersion="1.1.0"), None)
    assert rc == 0 and out is None


def fake_ipam(node, answer: str, rc: int = 0) -> dict:
    """An IPAM plugin in the node's CNI_PATH that answers ``answer`` (and exits ``rc``)."""
    script = node.bin / "fake-ipam"
    script.write_text(f"#!/bin/sh\ncat >/dev/null\nprintf '%s' '{answer}'\nexit {rc}\n")
    script.chmod(0o755)
    conf = node.config()
    conf["ipam"] = {"type": "fake-ipam"}
    return conf


HOSTILE_IPAM = [('[]', 0), ('{"ips": [{"address": "999.1.1.1/24"}]}', 0), ('{"ips": [{}]}', 0),
                ('{"ips": [{"address": "10.250.0.5/24"}], "routes": [{}]}', 0), ('{"ips": "x"}', 0),
                ('{"code": null, "msg": "nope"}', 1), ('not json', 1), ('{"ips": []}', 0),
                ('{"ips": [{"address": "fd00::5/64"}, {"address": "fd00::6/64"}]}', 0)]  # two of one family


@pytest.mark.parametrize("answer,rc", HOSTILE_IPAM)
def test_hostile_ipam_answers_are_error_json_and_leave_nothing(node, answer, rc):
    pod = node.pod()
    code = error_ok(*node.call("ADD", fake_ipam(node, answer, rc), pod))
    assert code in (6, 100)
    assert node.veths() == [] and node.run("ip", "link", "show", "dev", "eth0", pod=pod, check=False).returncode != 0


def test_hostile_calls_are_error_json_with_a_code(node, tmp_path):
    pod = node.pod()
    deep = '{"cniVersion": "1.0.0", "name": "n", "type": "t", "x": ' + "[" * 100000 + "]" * 100000 + "}"
    assert error_ok(*node.call("ADD", deep, pod)) == 6
    assert error_ok(*node.call("ADD", node.config(name="a\u0000b"), pod)) == 7
    assert error_ok(*node.call("ADD", node.config(name="../../escaped"), pod)) == 7
    assert not list(tmp_path.parent.glob("escaped*")) and not list(tmp_path.glob("**/escaped*"))
    for ifname in ("a/b", "..", "x" * 16, "eth 0", "a:b"):
        assert error_ok(*node.call("ADD", node.config(), pod, ifname=ifname)) == 4, ifname
    assert error_ok(*node.call("ADD", node.config(), pod, env={"CNI_CONTAINERID": "a;b"})) == 4
    assert error_ok(*node.call("ADD", node.config(cniVersion="9.9.9"), pod)) == 1
    assert error_ok(*node.call("CHECK", node.config(prevResult={"ips": "x"}), pod)) == 6
    assert error_ok(*node.call("CHECK", node.config(prevResult={"ips": [{"address": "nope"}]}), pod)) == 6
    assert error_ok(*node.call("FROB", node.config(), pod)) == 4
    assert error_ok(*node.call("ADD", node.config(mtu="1500"), pod)) == 7
    assert node.leases() == [] and node.veths() == []


def masq_rules(node, table: str = "iptables") -> list[str]:
    return [r for r in node.run(table, "-t", "nat", "-S", "POSTROUTING").stdout.splitlines() if "provisioner-bridge" in r]


DUAL_IPAM = {"ranges": [[{"subnet": "10.250.0.0/24", "gateway": "10.250.0.1"}],
                        [{"subnet": "fd00:250::/64", "gateway": "fd00:250::1"}]],
             "routes": [{"dst": "0.0.0.0/0"}, {"dst": "::/0"}]}


@pytest.mark.parametrize("version", VERSIONS)
def test_a_dual_stack_pod_gets_an_address_and_a_default_route_of_each_family(node, version):
    pod = node.pod()
    conf = node.config(cniVersion=version, ipMasq=True)
    conf["ipam"].update(DUAL_IPAM)
    rc, out = node.call("ADD", conf, pod)
    assert rc == 0, out
    jsonschema.validate(out, result_schema(version))
    got = [ipaddress.ip_interface(x["address"]) for x in out["ips"]]
    assert [a.version for a in got] == [4, 6] and got[1].ip in ipaddress.IPv6Network("fd00:250::/64")
    assert [x["gateway"] for x in out["ips"]] == ["10.250.0.1", "fd00:250::1"]
    if version < "1.0.0":
        assert [x["version"] for x in out["ips"]] == ["4", "6"]
    addrs = node.run("ip", "-o", "addr", "show", "dev", "eth0", "scope", "global", pod=pod).stdout
    assert str(got[0]) in addrs and str(got[1]) in addrs and "tentative" not in addrs  # usable at once (no DAD)
    assert "default via fd00:250::1" in node.run("ip", "-6", "route", pod=pod).stdout
    assert "fd00:250::1/64" in node.run("ip", "-o", "addr", "show", "dev", "cnibr0").stdout  # the bridge holds both
    assert len(masq_rules(node)) == 1 and len(masq_rules(node, "ip6tables")) == 1
    node.run("ping", "-c1", "-W2", "fd00:250::1", pod=pod)  # the pod reaches its IPv6 gateway
    if version >= "0.4.0":  # CHECK came with 0.4.0
        rc, err = node.call("CHECK", {**conf, "prevResult": out}, pod)
        assert rc == 0, err
    rc, err = node.call("DEL", {**conf, "prevResult": out}, pod)
    assert rc == 0, err
    assert node.leases() == [] and node.veths() == [] and masq_rules(node) == [] and masq_rules(node, "ip6tables") == []


def test_del_removes_the_nat_rule_even_when_the_namespace_is_gone(node):
    pod = node.pod()
    rc, out = node.call("ADD", node.config(ipMasq=True), pod)
    assert rc == 0, out
    assert len(masq_rules(node)) == 1
    node.run("ip", "netns", "del", pod)
    rc, err = node.call("DEL", node.config(ipMasq=True, prevResult=out), pod)
    assert rc == 0, err
    assert masq_rules(node) == [] and node.leases() == [] and node.veths() == []


def test_gc_forgets_only_the_attachments_that_are_no_longer_valid(node):
    keep, gone = node.pod(), node.pod()
    outs = {}
    for pod in (keep, gone):
        rc, outs[pod] = node.call("ADD", node.config(cniVersion="1.1.0", ipMasq=True), pod)
        assert rc == 0, outs[pod]
    node.run("ip", "netns", "del", gone)  # a sandbox that vanished without a DEL
    conf = node.config(cniVersion="1.1.0", ipMasq=True, **{"cni.dev/valid-attachments": [
        {"containerID": keep, "ifname": "eth0"}]})
    rc, err = node.call("GC", conf, None)
    assert rc == 0, err
    assert node.leases() == [outs[keep]["ips"][0]["address"].split("/")[0]]
    assert len(masq_rules(node)) == 1 and keep in masq_rules(node)[0]


def chain(node, command: str, confs: list[dict], pod: str, prev: dict | None = None) -> dict | None:
    """What libcni does with a conflist: ADD in order with each result as the next prevResult; CHECK and DEL
    with the cached final result, DEL in reverse order."""
    order = list(reversed(confs)) if command == "DEL" else confs
    result = prev
    for conf in order:
        conf = copy.deepcopy(conf)
        if result is not None:
            conf["prevResult"] = result
        rc, out = node.call(command, conf, pod, plugin=conf["type"])
        assert rc == 0, (command, conf["type"], out)
        if command == "ADD":
            result = out
    return result


def conflist(node, first: str) -> list[dict]:
    base = node.config(type_=first)
    return [base, {"cniVersion": "1.0.0", "name": "testnet", "type": "portmap", "capabilities": {"portMappings": True},
                   "snat": True},
            {"cniVersion": "1.0.0", "name": "testnet", "type": "tuning", "sysctl": {"net.ipv4.conf.eth0.rp_filter": "2"}}]


def test_a_chained_conflist_gives_the_same_state_as_the_reference_chain(node, node2):
    from .test_conformance import _state

    for n in (node, node2):
        for ref in ("portmap", "tuning"):
            if not (n.bin / ref).exists():
                (n.bin / ref).symlink_to(f"/usr/lib/cni/{ref}")
    ours_pod, ref_pod = node.pod(), node2.pod()
    ours = chain(node, "ADD", conflist(node, PLUGIN_NAME), ours_pod)
    theirs = chain(node2, "ADD", conflist(node2, "bridge"), ref_pod)
    assert _state(node, ours_pod) == _state(node2, ref_pod)
    assert ours["ips"] == theirs["ips"] and len(ours["interfaces"]) == len(theirs["interfaces"])
    assert node.run("cat", "/proc/sys/net/ipv4/conf/eth0/rp_filter", pod=ours_pod).stdout.strip() == "2"
    chain(node, "CHECK", conflist(node, PLUGIN_NAME), ours_pod, ours)
    chain(node2, "CHECK", conflist(node2, "bridge"), ref_pod, theirs)
    chain(node, "DEL", conflist(node, PLUGIN_NAME), ours_pod, ours)
    chain(node2, "DEL", conflist(node2, "bridge"), ref_pod, theirs)
    assert node.leases() == node2.leases() == [] and node.veths() == node2.veths() == []
    assert json.dumps(ours["routes"]) == json.dumps(theirs["routes"])
