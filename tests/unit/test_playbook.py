"""Playbooks: schema errors with file:line, templates per node, when, host selection, module args."""

import pytest

from provisioner.errors import PlaybookError
from provisioner.playbook import bind, load_playbook, resolve_path


def book(write, text):
    return load_playbook(write(text, "pb.yaml"))


def test_site_playbook_binds_every_node(base_inventory):
    hosts = bind(load_playbook(resolve_path(None)), base_inventory)
    assert set(hosts) == {"node1", "node2", "node3"}
    t = {b.module: b for b in hosts["node2"]}
    assert t["bridge"].args == {"name": "v-net-0", "address": "10.244.2.1/24"}
    assert t["routes"].args["routes"] == [{"dst": "10.244.1.0/24", "via": "192.168.56.11"},
                                          {"dst": "10.244.3.0/24", "via": "192.168.56.13"}]
    assert t["pods"].args["prefix"] == 24  # a whole-value template keeps its type
    assert "pods" not in {b.module for b in hosts["node3"]}  # when: node3 has no pods
    assert t["bridge"].where.endswith("pod-network.yaml:11")


def test_undefined_variable_is_an_error_with_line(write, base_inventory):
    pb = book(write, """\
        - name: p
          hosts: all
          tasks:
            - name: t
              bridge: {name: "{{ cluster.bridgee }}", address: 10.244.1.1/24}
        """)
    with pytest.raises(PlaybookError) as exc:
        bind(pb, base_inventory)
    msg = str(exc.value)
    assert "pb.yaml:5 [0].tasks[0].bridge.name" in msg and "bridgee" in msg


def test_module_args_checked_after_templates(write, base_inventory):
    pb = book(write, """\
        - name: p
          hosts: all
          tasks:
            - name: t
              bridge: {name: "{{ cluster.bridge }}-way-too-long", address: x}
        """)
    with pytest.raises(PlaybookError, match=r"pb.yaml:5 .*bridge.name: .*does not match"):
        bind(pb, base_inventory)


def test_unknown_module_and_two_modules(write):
    with pytest.raises(PlaybookError) as exc:
        book(write, """\
            - name: p
              hosts: all
              tasks:
                - name: t
                  brige: {}
                - name: u
                  bridge: {}
                  file: {}
            """)
    msg = str(exc.value)
    assert "pb.yaml:5" in msg and "unknown module or key 'brige'" in msg
    assert "pb.yaml:6" in msg and "needs exactly one module, has 2" in msg


def test_play_schema(write):
    with pytest.raises(PlaybookError, match="'hosts' is required"):
        book(write, "- name: p\n  tasks: []\n")
    with pytest.raises(PlaybookError, match=r"pb.yaml:3 \[0\].tsks: unknown key"):
        book(write, "- name: p\n  hosts: all\n  tsks: []\n")


def test_hosts_by_group_name_and_list(write, base_inventory, tmp_path):
    text = """\
        - name: p
          hosts: [node3, node1]
          tasks:
            - name: t
              file: {path: "/tmp/{{ node.name }}", content: "{{ node.pod_subnet }}"}
        """
    hosts = bind(book(write, text), base_inventory)
    assert [len(hosts[n]) for n in ("node1", "node2", "node3")] == [1, 0, 1]
    assert hosts["node3"][0].args == {"path": "/tmp/node3", "content": "10.244.3.0/24"}
    with pytest.raises(PlaybookError, match="'nodeX' is neither a group"):
        bind(book(write, text.replace("node3", "nodeX")), base_inventory)


def test_when_expression_and_error(write, base_inventory):
    text = """\
        - name: p
          hosts: all
          tasks:
            - name: t
              file: {path: /tmp/x, content: x}
              when: "node.name == 'node2'"
        """
    hosts = bind(book(write, text), base_inventory)
    assert [len(hosts[n]) for n in ("node1", "node2", "node3")] == [0, 1, 0]
    with pytest.raises(PlaybookError, match=r"pb.yaml:6 .*when"):
        bind(book(write, text.replace("node.name", "node.nam")), base_inventory)


def test_limit(base_inventory):
    hosts = bind(load_playbook(resolve_path(None)), base_inventory, ["node2"])
    assert list(hosts) == ["node2"]
