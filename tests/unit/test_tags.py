"""Tags as ansible-playbook has them: tags on plays, tasks and imports, --tags/--skip-tags (with always, never,
tagged, untagged, all), --start-at-task, --list-tasks; and a partial reset keeps the records of the rest."""

import itertools
import json
import subprocess
import sys

import pytest

from provisioner import cli
from provisioner.errors import InputError, PlaybookError
from provisioner.playbook import Selection, bind, load_playbook, resolve_path, select_tasks, tag_set

PLAYBOOK = """\
- name: First
  hosts: all
  tags: net
  tasks:
    - name: one
      sysctl: {settings: {net.ipv4.ip_forward: 1}}
    - name: two
      sysctl: {settings: {net.ipv4.ip_forward: 1}}
      tags: [extra, never]
- name: Second
  hosts: node1
  tasks:
    - name: three
      sysctl: {settings: {net.ipv4.ip_forward: 1}}
      tags: "a, b"
    - name: four
      sysctl: {settings: {net.ipv4.ip_forward: 1}}
    - name: five
      sysctl: {settings: {net.ipv4.ip_forward: 1}}
      tags: always
- import_playbook: more.yaml
  tags: imported
"""
MORE = """\
- name: Third
  hosts: all
  tasks:
    - name: six
      sysctl: {settings: {net.ipv4.ip_forward: 1}}
"""


@pytest.fixture
def book(write):
    write(MORE, "more.yaml")
    return load_playbook(write(PLAYBOOK, "pb.yaml"))


def names(book, **kw):
    plays, _ = select_tasks(book, Selection(**kw))
    return [t.name for _, tasks in plays for t in tasks]


def test_tags_of_plays_tasks_and_imports(book):
    assert tag_set("a, b") == {"a", "b"} and tag_set([1, "x"]) == {"1", "x"}
    assert names(book) == ["one", "three", "four", "five", "six"]  # `never` runs only when asked for
    # a task's other tag selects it even with `never`; `always` runs unless skipped by name
    assert names(book, tags=frozenset({"net"})) == ["one", "two", "five"]
    assert names(book, tags=frozenset({"extra"})) == ["two", "five"]
    assert names(book, tags=frozenset({"imported"})) == ["five", "six"]
    assert names(book, tags=frozenset({"untagged"})) == ["four", "five"]
    assert names(book, tags=frozenset({"tagged"})) == ["one", "three", "five", "six"]
    assert names(book, skip=frozenset({"b"})) == ["one", "four", "five", "six"]
    assert names(book, skip=frozenset({"always"})) == ["one", "three", "four", "six"]
    assert names(book, skip=frozenset({"all"})) == ["five"]


def test_start_at_task(book):
    assert names(book, start_at="four") == ["four", "five", "six"]
    assert names(book, start_at="th*") == ["three", "four", "five", "six"]
    assert names(book, start_at="four", tags=frozenset({"imported"})) == ["five", "six"]
    with pytest.raises(InputError, match="--start-at-task 'seven': no task of .*pb.yaml is named that.*one; two"):
        names(book, start_at="seven")


TAGSETS = [frozenset(), frozenset({"always"}), frozenset({"never"}), frozenset({"a"}), frozenset({"a", "never"}),
           frozenset({"a", "always"}), frozenset({"b"})]
CHOICES = [frozenset(), frozenset({"all"}), frozenset({"a"}), frozenset({"tagged"}), frozenset({"untagged"}),
           frozenset({"never"}), frozenset({"always"}), frozenset({"a", "untagged"})]


def test_selection_is_ansible_cores_evaluate_tags():
    """Every combination of task tags, --tags and --skip-tags, against ansible-core's Taggable when installed."""
    done = subprocess.run([sys.executable, "-c", ORACLE], capture_output=True, text=True, timeout=120)
    if done.returncode == 3:
        pytest.skip("ansible-core is not installed")
    assert done.returncode == 0, done.stderr
    theirs = json.loads(done.stdout)
    for (i, tags), (j, only), (k, skip) in itertools.product(enumerate(TAGSETS), enumerate(CHOICES), enumerate(CHOICES)):
        ours = Selection(only or frozenset({"all"}), skip).runs(tags)
        assert ours == theirs[f"{i} {j} {k}"], (tags, only, skip)


ORACLE = f"""
import itertools, json, sys
try:
    from ansible.playbook.taggable import Taggable
except ImportError:
    sys.exit(3)
TAGSETS = {[sorted(t) for t in TAGSETS]!r}
CHOICES = {[sorted(c) for c in CHOICES]!r}
class T(Taggable):
    def __init__(self, tags):
        self._tags, self._loader = tags, None
    def _get_all_taggable_objects(self):
        return []
    @property
    def tags(self):
        return self._tags
out = {{}}
for (i, tags), (j, only), (k, skip) in itertools.product(enumerate(TAGSETS), enumerate(CHOICES), enumerate(CHOICES)):
    out[f"{{i}} {{j}} {{k}}"] = T(tags).evaluate_tags(only or ["all"], skip, {{}})
print(json.dumps(out))
"""


def test_default_playbook_is_tagged_by_concern_and_a_partial_reset_keeps_the_records(base_inventory):
    site = load_playbook(resolve_path(None))
    plays, partial = select_tasks(site, Selection())
    assert not partial and {t for p, _ in plays for t in p.tags} == {"always", "network", "cni", "kubernetes", "dns", "services"}
    full = {t.module: t for t in bind(site, base_inventory)["node1"]}
    assert full["created_dirs"].args["partial"] is False
    only = bind(site, base_inventory, selection=Selection(frozenset({"cni"})))["node1"]
    assert {t.module for t in only} == {"created_dirs", "cni_plugins", "cni_config", "cni_pods"} - (
        set() if "cni_pods" in full else {"cni_pods"})
    dirs = next(t for t in only if t.module == "created_dirs")
    assert dirs.args["partial"] is True and "/etc/cni/net.d" in dirs.args["paths"]
    assert not any(p.startswith("/etc/kubernetes") for p in dirs.args["paths"])


def test_list_tasks_contacts_no_node_and_reads_as_ansibles(write, capsys):
    inv = write("""\
        cluster: {node_cidr: 192.0.2.0/24, pod_cidr: 10.244.0.0/16, service_cidr: 10.96.0.0/12}
        ssh: {connect_timeout: 1}
        nodes: [{name: node1, address: 192.0.2.11}, {name: node2, address: 192.0.2.12}]
        """)
    assert cli.main(["apply", str(inv), "--list-tasks", "--tags", "dns", "-l", "node2"]) == 0
    out = capsys.readouterr().out
    assert "play #5 (all): Cluster DNS\tTAGS: [dns]\n    nodes: node2\n    tasks:\n" \
           "      resolv.conf asks the cluster DNS; upstreams saved apart\tTAGS: [dns]" in out
    assert "Kernel forwards" not in out
    assert cli.main(["reset", str(inv), "--list-tasks", "--json", "--skip-tags", "dns,kubernetes"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert [p["name"] for p in listing["plays"] if p["tasks"]] == ["Services", "CNI network", "Pod network", "Bookkeeping"]
    assert cli.main(["reset", str(inv), "--start-at-task", "x"]) == 2
    assert "reset runs the playbook backwards" in capsys.readouterr().err


def test_tags_are_checked_like_the_rest_of_a_playbook(write):
    with pytest.raises(PlaybookError, match="pb.yaml:4"):
        load_playbook(write("- name: p\n  hosts: all\n  tasks: []\n  tags: {a: 1}\n", "pb.yaml"))
