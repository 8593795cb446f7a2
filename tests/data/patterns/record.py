"""Records what ansible-core selects for each pattern of PATTERNS on hosts.ini into table.json.

Run with ansible-core installed (a throw-away venv; provision never needs it):
    python3 -m venv /tmp/ans && /tmp/ans/bin/pip install ansible-core
    cd tests/data/patterns && /tmp/ans/bin/python record.py
"""
import json

from ansible.inventory.manager import InventoryManager, split_host_pattern
from ansible.parsing.dataloader import DataLoader

PATTERNS = [
    "all", "*", "node1", "workers", "control_plane,workers", "control_plane:workers", "workers:!node3",
    "all:!workers", "workers:&etcd", "etcd:&workers:!node2", "!node1", "&etcd", "node*", "node[1:3]", "*[12]",
    "workers[0]", "workers[1:2]", "workers[-1]", "workers[2:]", "~node[23]", "~web", "~(node1|web2)", "web*:&all",
    "etcd,web", "etcd:web:!web2", "control_plane:&workers", "node9", "workers:node9", "nope*", "~zzz",
    "NODE1", "node1,node2,node1", "all:&web:&~web1", "workers:!~node[45]", "etcd[0:1]:web[1]", "@retry.txt",
    "@retry.txt:&workers", "empty", "empty:node1",
]


def table():
    loader = DataLoader()
    manager = InventoryManager(loader=loader, sources=["hosts.ini"])
    out = {}
    for pattern in PATTERNS:
        if pattern.startswith("@"):
            manager.subset(pattern)
            hosts = [h.name for h in manager.get_hosts("all")]
            manager.subset(None)
            terms_matched = True
        else:
            hosts = [h.name for h in manager.get_hosts(pattern)]
            terms = [t.lstrip("&!") for t in split_host_pattern(pattern)]
            terms_matched = all(manager.get_hosts(t) or t in manager.groups for t in terms)
        out[pattern] = {"hosts": sorted(hosts), "every_term_matched": terms_matched}
    return out


def main():
    with open("table.json", "w") as fh:
        json.dump(table(), fh, indent=1, sort_keys=True)
        fh.write("\n")


if __name__ == "__main__":
    main()
