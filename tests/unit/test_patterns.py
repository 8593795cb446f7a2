"""Host patterns mean what they mean in Ansible: the table in tests/data/patterns/table.json was recorded with
ansible-core's own pattern code on hosts.ini (record.py says how); where ansible-core matched nothing for a term
(it warns and goes on), provision stops with an error naming it."""

from __future__ import annotations

import json

import pytest

from provisioner import engine
from provisioner.errors import InputError
from provisioner.patterns import match

from ..conftest import BASE, ROOT

DATA = ROOT / "tests/data/patterns"
TABLE = json.loads((DATA / "table.json").read_text())


def inventory() -> tuple[list[str], dict[str, list[str]]]:
    hosts: list[str] = []
    groups: dict[str, list[str]] = {}
    group = None
    for line in (DATA / "hosts.ini").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            group = line.strip("[]")
            groups[group] = []
        else:
            hosts += [] if line in hosts else [line]
            if group:
                groups[group].append(line)
    ungrouped = [h for h in hosts if not any(h in g for g in groups.values())]
    return hosts, {"ungrouped": ungrouped, **groups}


@pytest.mark.parametrize("pattern", sorted(TABLE))
def test_patterns_select_what_ansible_selects(pattern, monkeypatch):
    monkeypatch.chdir(DATA)  # @retry.txt
    hosts, groups = inventory()
    want = TABLE[pattern]
    if not want["every_term_matched"]:
        with pytest.raises(ValueError, match="matches no node"):
            match(pattern, hosts, groups, files=True)
    else:
        assert sorted(match(pattern, hosts, groups, files=True)) == want["hosts"]


def test_limit_takes_patterns_and_an_empty_selection_is_an_error(write):
    from provisioner.inventory import load_inventory
    inv = load_inventory(write(BASE.replace("    pods: [web]\n", "    pods: [web]\n    groups: [workers]\n")))
    assert engine.select(inv, "all:!node1") == ["node2", "node3"]
    assert engine.select(inv, "workers,node3") == ["node2", "node3"]
    with pytest.raises(InputError, match=r"--limit node\[1:3\]: 'node\[1:3\]' matches no node"):
        engine.select(inv, "node[1:3]")
    with pytest.raises(InputError, match=r"--limit workers:&node1: no node is left"):
        engine.select(inv, "workers:&node1")


def test_the_recorded_table_is_what_the_installed_ansible_core_selects():
    """The table was recorded once; the test extras install ansible-core, which must still select the same."""
    import subprocess
    import sys

    if subprocess.run([sys.executable, "-c", "import ansible.inventory.manager"], capture_output=True).returncode:
        pytest.skip("ansible-core is not installed (the recorded table still runs)")
    code = "import json, sys; sys.path.insert(0, '.'); import record; print(json.dumps(record.table()))"
    done = subprocess.run([sys.executable, "-c", code], cwd=DATA, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == TABLE
