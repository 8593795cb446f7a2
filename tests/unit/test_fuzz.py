"""Fuzzing `provision validate`: generated inventories and playbooks never give a traceback or a hang.

Each example is a valid inventory or playbook with random parts replaced by random
YAML (text, numbers, lists, mappings, hostile templates), or raw random bytes. The
CLI must answer with exit 0, or exit 2 and only ``file:line`` problems, within 5 s.
CI runs PROVISION_FUZZ_EXAMPLES (default 500) of each kind, 1000 in all (keeps CI under 15 minutes);
``scripts/fuzz.sh`` runs a longer campaign.
"""

from __future__ import annotations

import copy
import io
import re
import os
import time
from contextlib import redirect_stderr, redirect_stdout

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import jsonschema

from provisioner import playbook
from provisioner.cli import main
from provisioner.modules import MODULES

from .test_hostile import FULL

pytestmark = pytest.mark.slow

EXAMPLES = int(os.environ.get("PROVISION_FUZZ_EXAMPLES", "500"))
TEXTS = st.one_of(st.text(max_size=40), st.sampled_from([
    "", "\n", "\x00", "\x1b[31m", "10.244.0.0/16", "10.244.1.0/33", "999.1.1.1", "0.0.0.0/0", "/etc/x", "../../etc/passwd",
    "node1", "v-net-0", "a" * 300, "1.30", "v1.23.17", "{{ cluster.name }}", "{{ nodes[5].name }}", "{{ 9 ** 9999999 }}",
    "{{ range(10**9) | list }}", "{% for i in range(100000) %}{{ i }}{% endfor %}", "{{ cycler.__init__.__globals__ }}",
    "{{ ''.__class__ }}", "{{ lipsum }}", "{{", "}}", "{% if %}", "$(id)", "`id`", "*x", "&x", "!!python/object:os.system",
    "--max-pods=50", "yes", "on", "~", "null", "-1", "1e400", ".nan"]))
LEAVES = st.one_of(TEXTS, st.integers(min_value=-2**70, max_value=2**70), st.booleans(), st.none(),
                   st.floats(allow_nan=True, allow_infinity=True))
VALUES = st.recursive(LEAVES, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                      st.dictionaries(TEXTS, inner, max_size=4)), max_leaves=12)
PLAYBOOK = [{"name": "p", "hosts": "all", "tasks": [
    {"name": "b", "bridge": {"name": "{{ cluster.bridge }}", "address": "{{ node.pod_gateway }}/{{ node.pod_prefix }}"}},
    {"name": "r", "routes": {"routes": "{{ pod_routes }}"}, "when": "node.pods | length > 0", "notify": "h"},
    {"name": "f", "file": {"path": "/etc/provisioner/x", "content": "{{ cluster.name }}\n", "mode": "0644"}},
    {"name": "s", "sysctl": {"settings": {"net.ipv4.ip_forward": 1}}}],
    "handlers": [{"name": "h", "service": {"name": "kubelet"}}]},
    {"import_playbook": "other.yaml"}]


def paths(doc, prefix=()):
    """Every place in ``doc`` a value sits (to replace) or a key could go (to add)."""
    yield prefix
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from paths(v, prefix + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from paths(v, prefix + (i,))


@st.composite
def mutated(draw, base):
    doc = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 4))):
        where = draw(st.sampled_from(list(paths(doc))))
        value = draw(VALUES)
        if not where:
            doc = value
            continue
        parent = doc
        try:
            for p in where[:-1]:
                parent = parent[p]
            action = draw(st.sampled_from(["replace", "delete", "add"]))
            if action == "delete" and isinstance(parent, dict):
                parent.pop(where[-1], None)
            elif action == "add" and isinstance(parent, dict):
                parent[draw(TEXTS)] = value
            else:
                parent[where[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue
    return doc


def render(doc) -> bytes:
    try:
        return yaml.safe_dump(doc, allow_unicode=True).encode()
    except (yaml.YAMLError, RecursionError, ValueError):
        return b"- [unterminated"


def validate(tmp, inventory: bytes, playbook: bytes | None = None) -> None:
    inv, book = tmp / "inv.yaml", tmp / "book.yaml"
    inv.write_bytes(inventory)
    argv = ["validate", str(inv)]
    if playbook is not None:
        book.write_bytes(playbook)
        (tmp / "other.yaml").write_text("- name: o\n  hosts: all\n  tasks: []\n")
        argv += ["-p", str(book)]
    out, err = io.StringIO(), io.StringIO()
    start = time.monotonic()
    with redirect_stdout(out), redirect_stderr(err):
        rc = main(argv)  # an exception here is a traceback a user would see: the test fails on it
    assert time.monotonic() - start < 5, argv
    assert rc in (0, 2), (rc, err.getvalue())
    if rc == 2:
        lines = [line.strip() for line in err.getvalue().splitlines()[1:] or err.getvalue().splitlines()]
        # at the inventory's file:line, or (an inventory value a playbook task takes, e.g. cni.sha256) at that
        # task's file:line in the playbook
        assert lines and all(line.startswith(("error:", str(tmp))) or re.match(r"\S+\.yaml:\d+ ", line)
                             for line in lines), err.getvalue()
        assert "Traceback" not in err.getvalue()


SETTINGS = dict(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large])


@settings(**SETTINGS)
@given(doc=mutated(FULL), raw=st.one_of(st.none(), st.binary(max_size=200)))
def test_fuzzed_inventories_get_clean_errors(tmp_path_factory, doc, raw):
    tmp = tmp_path_factory.mktemp("fuzz")
    for rel in ("keys/id", "keys/n1", "known_hosts"):
        (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp / rel).write_text("")
    validate(tmp, raw if raw is not None else render(doc))


@settings(**SETTINGS)
@given(book=mutated(PLAYBOOK))
def test_fuzzed_playbooks_get_clean_errors(tmp_path_factory, book):
    tmp = tmp_path_factory.mktemp("fuzzpb")
    base = copy.deepcopy(FULL)
    base["ssh"], base["cni"]["sha256"] = {}, {}
    base["cni"].pop("tarball_sha256")
    base["nodes"][0].pop("identity_file")
    validate(tmp, render(base), render(book))


INI_LINES = st.one_of(TEXTS, st.sampled_from([
    "[kube_control_plane]", "[kube_node]", "[etcd:children]", "[k8s_cluster:children]", "[k8s_cluster:vars]",
    "[bastion]", "[all:vars]", "[x:y]", "[ a ]", "[", "kube_control_plane", "kube_node", "node1 ansible_host=10.0.0.1",
    "node[1:3] ip=10.0.0.5", "node[01:3]", "node[a:Z]", "w[0:99999999]", "w[1:2][1:9999]", "n:2222", "n:", "[::1]:22",
    "node1 ansible_port=99999", "node1 ansible_port='22'", "node1 ansible_host='{{ x }}'", "kube_pods_subnet=10.233.64.0/18",
    "kube_pods_subnet={{ lookup('pipe','id') }}", "kube_service_addresses=10.233.0.0/18", "node1 ip=[1,2]",
    "node1 ip={'a': 1}", "node1 ansible_connection=local", "node1 ansible_ssh_private_key_file=~/../../k",
    "bastion ansible_host=1.2.3.4 ansible_user=$(id)", "node1 x=\"unterminated", "node1 x=(1,)", "node1 x=b'\\xff'"]))


@settings(**SETTINGS)
@given(lines=st.lists(INI_LINES, max_size=14), vars_file=st.one_of(st.none(), VALUES, TEXTS))
def test_fuzzed_ansible_inventories_get_clean_errors(tmp_path_factory, lines, vars_file):
    """Any INI inventory (kubespray's lines, mixed and broken) with any group_vars file: exit 0 and a written
    inventory that validates, or exit 2 and a message; never a traceback."""
    tmp = tmp_path_factory.mktemp("fuzzans")
    (tmp / "hosts.ini").write_text("\n".join(lines) + "\n", errors="surrogateescape")
    if vars_file is not None:
        (tmp / "group_vars").mkdir()
        (tmp / "group_vars" / "k8s_cluster.yml").write_text(
            vars_file if isinstance(vars_file, str) else yaml.safe_dump(vars_file), errors="surrogateescape")
    out, err = io.StringIO(), io.StringIO()
    start = time.monotonic()
    with redirect_stdout(out), redirect_stderr(err):
        rc = main(["inventory", "from-ansible", str(tmp / "hosts.ini"), "--pod-cidr", "10.244.0.0/16",
                   "--service-cidr", "10.96.0.0/12", "-o", str(tmp / "out.yaml")])
    assert rc in (0, 2), (rc, err.getvalue())
    assert "Traceback" not in err.getvalue() and time.monotonic() - start < 5
    assert (rc == 0) == (tmp / "out.yaml").exists()


@settings(**SETTINGS)
@given(doc=VALUES)
def test_fuzzed_yaml_ansible_inventories_get_clean_errors(tmp_path_factory, doc):
    tmp = tmp_path_factory.mktemp("fuzzansy")
    base = {"all": {"children": {"kube_node": {"hosts": {"n1": {"ansible_host": "10.0.0.5"}}}}}}
    base["all"]["children"]["kube_node"]["hosts"]["n1"]["x"] = doc
    for text in (yaml.safe_dump(doc), yaml.safe_dump({"all": doc}), yaml.safe_dump(base)):
        (tmp / "hosts.yml").write_text(text)
        err = io.StringIO()
        with redirect_stdout(io.StringIO()), redirect_stderr(err):
            rc = main(["inventory", "from-ansible", str(tmp / "hosts.yml"), "--pod-cidr", "10.244.0.0/16",
                       "--service-cidr", "10.96.0.0/12"])
        assert rc in (0, 2) and "Traceback" not in err.getvalue(), err.getvalue()


ARRAY_MODULES = sorted((m, key) for m in MODULES for key in playbook._item_arrays(m))


def test_some_modules_have_item_arrays():
    assert {("routes", "routes"), ("pod_network_boot", "routes")} <= set(ARRAY_MODULES)


@settings(max_examples=300, deadline=None, database=None)
@given(which=st.sampled_from(ARRAY_MODULES), items=st.lists(st.one_of(VALUES, st.fixed_dictionaries(
    {"dst": st.sampled_from(["10.244.2.0/24", "10.244.2.0/33", "x"]), "via": st.sampled_from(["192.168.1.2", 7, True])},
    optional={"extra": VALUES})), max_size=5), rest=st.dictionaries(TEXTS, VALUES, max_size=3))
def test_item_memo_finds_what_jsonschema_finds(which, items, rest):
    """Arrays are checked item by item with a memo (binding 200 nodes); the problems are exactly jsonschema's,
    for an item seen for the first time and for one seen before."""
    module, key = which
    args = {**rest, key: items + items[:2]}
    plain = jsonschema.Draft202012Validator(MODULES[module].args)
    want = sorted((tuple(map(str, e.absolute_path)), e.message) for e in plain.iter_errors(args))
    for _ in range(2):
        got = sorted((tuple(map(str, path)), message) for path, message in playbook._arg_problems(module, args))
        assert got == want
    for not_a_mapping in ("routes", [args], None, 7):  # a task whose arguments are not a mapping at all
        assert [m for _, m in playbook._arg_problems(module, not_a_mapping)] == [
            e.message for e in plain.iter_errors(not_a_mapping)]


PLAIN_MODULES = sorted(m for m in MODULES if not playbook._item_arrays(m))


@settings(max_examples=300, deadline=None, database=None)
@given(module=st.sampled_from(PLAIN_MODULES), args=st.one_of(st.dictionaries(TEXTS, VALUES, max_size=4), VALUES))
def test_whole_args_memo_finds_what_jsonschema_finds(module, args):
    """Arguments without item arrays are checked once per distinct value (most tasks bind the same arguments on
    every node): the problems are exactly jsonschema's, the first time and from the memo, and a caller that
    changes the list it got changes nothing for the next."""
    plain = jsonschema.Draft202012Validator(MODULES[module].args)
    want = sorted((tuple(map(str, e.absolute_path)), e.message) for e in plain.iter_errors(args))
    for _ in range(2):
        got = playbook._arg_problems(module, args)
        assert sorted((tuple(map(str, path)), message) for path, message in got) == want
        got.append((("x",), "spoiled"))
