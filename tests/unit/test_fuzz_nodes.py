"""A node that answers every fact with hostile output: random text, JSON of any shape, escapes, huge numbers.
Whatever it says, plan and reset of the default playbook end in a clean result for that node (a fact it could
not read, or a task that cannot be planned), never an exception out of a parser or a module.

The importers get the same treatment: any JSON as a node list, any YAML or INI as an Ansible inventory, through
the CLI: exit 0 or 2 with a message, never a traceback. PROVISION_FUZZ_EXAMPLES sets the number of examples
(scripts/fuzz.sh runs a long campaign)."""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provisioner import facts as factlib
from provisioner.engine.runner import wanted_facts
from provisioner.errors import HostError
from provisioner.modules import MODULES
from provisioner.playbook import bind, load_playbook, resolve_path

pytestmark = pytest.mark.slow

EXAMPLES = int(os.environ.get("PROVISION_FUZZ_EXAMPLES", "300"))

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=True) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=20)
ip_like = st.lists(st.fixed_dictionaries({}, optional={
    "ifname": st.text(max_size=16) | st.integers(), "ifindex": st.integers() | st.text(max_size=3),
    "flags": st.lists(st.sampled_from(["UP", "LOWER_UP", "\x1b[2J"])) | st.text(max_size=5),
    "mtu": st.integers() | st.none(), "master": st.text(max_size=16) | st.integers(),
    "linkinfo": st.fixed_dictionaries({}, optional={"info_kind": st.text(max_size=8) | st.integers()}) | json_values,
    "addr_info": st.lists(st.fixed_dictionaries({}, optional={
        "family": st.sampled_from(["inet", "inet6", 4]), "local": st.text(max_size=20) | st.integers(),
        "prefixlen": st.integers() | st.text(max_size=3)})) | json_values,
    "dst": st.text(max_size=20) | st.integers(), "gateway": st.text(max_size=20), "protocol": st.text(max_size=6),
    "dev": st.text(max_size=16), "name": st.text(max_size=16)}), max_size=4)
answers = st.one_of(
    st.text(max_size=200),
    json_values.map(json.dumps),
    ip_like.map(json.dumps),
    st.binary(max_size=100).map(lambda b: b.decode("latin-1")),
    st.sampled_from(["", "\x1b]0;owned\x07", "0", "1\n", "999999999999999999999", "-1", "755 root root\nAAAA",
                     "0644 root root\n!!!not base64", "1\n2\n3", "nan", "[]", "{}", "null"]))


def site_tasks():
    from provisioner.inventory import load_inventory
    from pathlib import Path
    import tempfile
    from ..conftest import BASE
    d = Path(tempfile.mkdtemp())
    (d / "inv.yaml").write_text(BASE)
    inv = load_inventory(d / "inv.yaml")
    return bind(load_playbook(resolve_path(None)), inv)["node1"]


TASKS = site_tasks()


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data(), mode=st.sampled_from(["apply", "reset"]))
def test_a_node_answering_anything_never_breaks_plan_or_reset(data, mode):
    order = list(enumerate(TASKS))
    wanted = wanted_facts(order, mode)
    raw = {f: (data.draw(answers), data.draw(st.sampled_from([0, 0, 0, 1, 2, 127]))) for f in wanted}
    try:
        values = factlib.parse_all(wanted, raw)
    except factlib.FactError:
        return  # the node's error: "its answer to … could not be read"
    for _, task in order:
        module = MODULES[task.module]
        try:
            (module.reverse if mode == "reset" and not task.handler else module.plan)(task.args, values)
        except HostError:  # ModuleError included: that task cannot be planned on this node, said plainly
            pass


kube_nodes = st.fixed_dictionaries({}, optional={
    "items": st.lists(st.fixed_dictionaries({}, optional={
        "metadata": st.fixed_dictionaries({}, optional={"name": json_values | st.from_regex(r"\A[a-z0-9-]{1,10}\Z"),
                                                        "labels": json_values}) | json_values,
        "spec": st.fixed_dictionaries({}, optional={"podCIDR": json_values | st.sampled_from(["10.244.1.0/24", "x"]),
                                                    "podCIDRs": json_values}) | json_values,
        "status": st.fixed_dictionaries({}, optional={"addresses": st.lists(st.fixed_dictionaries({}, optional={
            "type": st.sampled_from(["InternalIP", "Hostname", 5]), "address": json_values | st.ip_addresses(v=4).map(str)}))
            | json_values}) | json_values}) | json_values, max_size=4) | json_values,
    "kind": json_values}) | json_values
ansible_text = st.one_of(
    json_values.map(lambda v: __import__("yaml").safe_dump(v)),
    st.lists(st.one_of(st.from_regex(r"\A\[[a-z:]{0,12}\]\Z"), st.from_regex(r"\A[a-z0-9\[\]:.]{1,12}( [a-z_]{1,14}=[^\n]{0,12}){0,3}\Z"),
                       st.text(max_size=30).filter(lambda t: "\n" not in t and "\r" not in t)), max_size=8).map("\n".join))


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(doc=kube_nodes)
def test_any_json_as_a_node_list_ends_in_a_message(tmp_path_factory, doc):
    from provisioner import cli
    src = tmp_path_factory.mktemp("k") / "nodes.json"
    src.write_text(json.dumps(doc))
    assert cli.main(["inventory", "from-kubectl", str(src), "--service-cidr", "10.96.0.0/12",
                     "--pod-cidr", "10.244.0.0/16"]) in (0, 2)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(text=ansible_text)
def test_any_yaml_or_ini_as_an_ansible_inventory_ends_in_a_message(tmp_path_factory, text):
    from provisioner import cli
    src = tmp_path_factory.mktemp("a") / "hosts"
    src.write_text(text)
    assert cli.main(["inventory", "from-ansible", str(src), "--pod-cidr", "10.244.0.0/16",
                     "--service-cidr", "10.96.0.0/12"]) in (0, 2)
