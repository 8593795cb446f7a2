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
    assert t["bridge"].args == {"name": "v-net-0", "address": ["10.244.2.1/24"], "mtu": 1500}  # cni.mtu
    assert t["routes"].args["routes"] == [{"dst": "10.244.1.0/24", "via": "192.168.56.11"},
                                          {"dst": "10.244.3.0/24", "via": "192.168.56.13"}]
    assert t["pods"].args["prefix"] == [24]  # a whole-value template keeps its type (a list: one per family)
    assert "pods" not in {b.module for b in hosts["node3"]}  # when: node3 has no pods
    assert t["bridge"].where.endswith("pod-network.yaml:21")


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
    assert hosts["node3"][0].args == {"path": "/tmp/node3", "content": "10.244.3.0/24",  # + the module's defaults
                                      "mode": "0644", "owner": "root", "group": "root", "state": "present"}
    with pytest.raises(PlaybookError, match=r"pb.yaml:2 \[0\].hosts: 'nodeX' matches no node"):
        bind(book(write, text.replace("node3", "nodeX")), base_inventory)
    hosts = bind(book(write, text.replace("[node3, node1]", "'all:!node2'")), base_inventory)  # an Ansible pattern
    assert [len(hosts[n]) for n in ("node1", "node2", "node3")] == [1, 0, 1]


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


@pytest.mark.parametrize("template", ["{{ cycler.__init__.__globals__.os.system('touch /tmp/provisioner-pwned') }}",
                                      "x{{ ''.__class__.__mro__[1].__subclasses__() }}",
                                      "{{ range(10**10) | list }}", "{{ 'a' * 10**9 }}", "{{ 9 ** 9999999 }}",
                                      "{{ lipsum.__globals__['os'].popen('id').read() }}",
                                      "{% for a in range(99999) %}{% for b in range(99999) %}{% endfor %}{% endfor %}",
                                      # sizes refused before anything is allocated (these took 37 s and 3.9 GB)
                                      "{{ 'x'|center(2000000000) }}", "{{ '%2000000000d'|format(1) }}",
                                      "{{ '%2000000000d' % 1 }}", "{{ '{:2000000000}'.format(1) }}",
                                      "{{ 'x'|indent(2000000000) }}",
                                      # the sandbox is immutable: a template cannot change its variables
                                      "{{ cluster.update({'name': 'x'}) }}", "{{ node.pods.append(1) }}"])
def test_template_cannot_run_code_or_exhaust_memory(write, base_inventory, template, tmp_path):
    pb = book(write, f"""\
        - name: p
          hosts: all
          tasks:
            - name: t
              file: {{path: /etc/x, content: "{template}"}}
        """)
    t0 = __import__("time").monotonic()
    with pytest.raises(PlaybookError) as exc:
        bind(pb, base_inventory)
    assert "pb.yaml:5 [0].tasks[0].file.content: template" in str(exc.value)
    assert not __import__("os").path.exists("/tmp/provisioner-pwned")
    assert __import__("time").monotonic() - t0 < 10  # refused, not rendered until the time limit


def test_sandbox_escape_is_a_validation_error_at_the_cli(write, capsys):
    from provisioner.cli import main

    from ..conftest import BASE
    inv = write(BASE)
    pb = write("""\
        - name: p
          hosts: all
          tasks:
            - {name: t, file: {path: /etc/x, content: "{{ cycler.__init__.__globals__.os.system('id') }}"}}
        """, "pb.yaml")
    assert main(["validate", str(inv), "-p", str(pb)]) == 2
    err = capsys.readouterr().err
    assert "pb.yaml:4" in err and "unsafe" in err and "Traceback" not in err


def test_import_playbook_stays_in_its_own_folder_and_echoes_nothing(write, tmp_path):
    secret = tmp_path / "outside.yaml"
    secret.write_text("- name: root:x:0:0:secret-content\n  hosts: all\n  tasks: oops\n")
    inner = tmp_path / "book"
    inner.mkdir()
    pb = inner / "pb.yaml"
    pb.write_text(f"- import_playbook: ../outside.yaml\n- import_playbook: {secret}\n")
    with pytest.raises(PlaybookError) as exc:
        load_playbook(pb)
    assert "must name a file inside" in str(exc.value) and "secret-content" not in str(exc.value)
    (inner / "ok.yaml").write_text("- name: p\n  hosts: all\n  tasks: []\n")
    (inner / "link.yaml").symlink_to(secret)  # a link out of the folder counts where it points
    pb.write_text("- import_playbook: ok.yaml\n- import_playbook: link.yaml\n")
    with pytest.raises(PlaybookError, match="must name a file inside"):
        load_playbook(pb)
    pb.write_text("- import_playbook: ok.yaml\n")
    assert [p.name for p in load_playbook(pb).plays] == ["p"]


def test_import_chains_are_bounded_and_each_file_read_once(tmp_path):
    import time

    for i in range(40):  # a chain deeper than the limit
        (tmp_path / f"c{i}.yaml").write_text(f"- import_playbook: c{i + 1}.yaml\n")
    (tmp_path / "c40.yaml").write_text("- name: p\n  hosts: all\n  tasks: []\n")
    with pytest.raises(PlaybookError, match="imports nest deeper than 32 files"):
        load_playbook(tmp_path / "c0.yaml")
    for i in range(24):  # a diamond: 2^24 paths to the last file
        (tmp_path / f"d{i}.yaml").write_text(f"- import_playbook: d{i + 1}.yaml\n- import_playbook: d{i + 1}.yaml\n")
    (tmp_path / "d24.yaml").write_text("- name: p\n  hosts: all\n  tasks: []\n")
    start = time.monotonic()
    with pytest.raises(PlaybookError, match="more than 1000 plays"):
        load_playbook(tmp_path / "d0.yaml")
    assert time.monotonic() - start < 5


def test_uploads_come_only_from_cni_source_or_the_playbooks_own_folder(write, base_inventory, tmp_path):
    def plugins_from(source, plugin):
        return book(write, f"""\
            - name: p
              hosts: all
              tasks:
                - name: t
                  cni_plugins: {{source: {source}, dest: /etc/cni/bin, plugins: [{plugin}]}}
            """)
    secret = tmp_path.parent / f"{tmp_path.name}-keys"
    secret.mkdir()
    (secret / "id_ed25519").write_text("PRIVATE KEY")
    with pytest.raises(PlaybookError, match=r"cni_plugins.source: cni_plugins: uploads come only from the inventory's "
                                            r"cni.source \(/usr/lib/cni\) or this playbook's own folder tree"):
        bind(plugins_from(secret, "id_ed25519"), base_inventory)
    mine = tmp_path / "plugins"
    mine.mkdir()
    (mine / "bridge").write_bytes(b"\x7fELF")
    assert bind(plugins_from(mine, "bridge"), base_inventory)["node1"][0].args["files"][0].name == "bridge"
