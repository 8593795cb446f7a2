"""Records what ansible-core makes of each inventory of this corpus into expected.json, and writes
listed/inventory.json (`ansible-inventory --list` of kubespray-sample) as one more inventory to read.

Run with ansible-core installed (a throw-away venv; provision never needs it):
    python3 -m venv /tmp/ans && /tmp/ans/bin/pip install ansible-core
    cd tests/data/import/corpus && /tmp/ans/bin/python record.py
"""
import json
import os
import subprocess
import sys

from ansible.inventory.manager import InventoryManager
from ansible.parsing.dataloader import DataLoader
from ansible.vars.manager import VariableManager

SOURCES = ["kubespray-sample/inventory.ini", "kubespray-docs/hosts.yaml", "kubespray-legacy/inventory.ini",
           "docs-style/hosts.yml"]
# ansible-core reads --list JSON only from a script; what it stands for is the inventory it was listed from
LISTED = {"listed/inventory.json": "kubespray-sample/inventory.ini"}
MAGIC = {"inventory_hostname", "inventory_hostname_short", "group_names", "groups", "omit", "playbook_dir",
         "ansible_playbook_python", "ansible_config_file", "inventory_dir", "inventory_file", "ansible_version",
         "ansible_check_mode", "ansible_diff_mode", "ansible_forks", "ansible_inventory_sources",
         "ansible_verbosity", "ansible_run_tags", "ansible_skip_tags", "ansible_facts", "ansible_search_path"}


def plain(value):
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    return str(value)


def record(source):
    loader = DataLoader()
    manager = InventoryManager(loader=loader, sources=[source])
    variables = VariableManager(loader=loader, inventory=manager)
    hosts = {h.name: {k: plain(v) for k, v in variables.get_vars(host=h, include_hostvars=False).items()
                      if k not in MAGIC}
             for h in manager.get_hosts()}
    groups = {g: sorted(h.name for h in manager.groups[g].get_hosts())
              for g in manager.groups if g not in ("all", "ungrouped")}
    return {"hosts": hosts, "groups": groups}


def main():
    os.makedirs("listed", exist_ok=True)
    listed = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-inventory"), "-i",
                             "kubespray-sample/inventory.ini", "--list"], check=True, capture_output=True, text=True)
    with open("listed/inventory.json", "w") as fh:
        json.dump(json.loads(listed.stdout), fh, indent=1, sort_keys=True)
        fh.write("\n")
    table = {source: record(source) for source in SOURCES}
    table.update({listed: table[source] for listed, source in LISTED.items()})
    with open("expected.json", "w") as fh:
        json.dump(table, fh, indent=1, sort_keys=True)
        fh.write("\n")


if __name__ == "__main__":
    main()
