"""Files a node already has are edited, not replaced: kubelet's config.yaml (our keys, comments kept) and
/etc/default/kubelet (only KUBELET_EXTRA_ARGS)."""

import shlex
import subprocess

import pytest
import yaml

from provisioner.facts.values import FileState
from provisioner.facts.files import Created, Exists, File
from provisioner.modules import ModuleError
from provisioner.formats import env_var, set_env_var, set_yaml_keys
from tests.bound_modules import MODULES

CFG, ENV = "/var/lib/kubelet/config.yaml", "/etc/default/kubelet"
ARGS = {"version": "1.30", "cni_flags": False, "node_ip": "192.168.56.11", "cluster_dns": "10.96.0.10",
        "cluster_domain": "cluster.local", "resolv_conf": "/etc/provisioner/resolv.conf.upstream",
        "pod_cidr": "10.244.1.0/24", "cni_bin_dir": "/etc/cni/bin", "cni_conf_dir": "/etc/cni/net.d",
        "config_file": CFG, "env_file": ENV, "dropin": None, "extra_args": []}
KUBEADM_CONFIG = """\
# written by kubeadm, edited by hand
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  anonymous:
    enabled: false   # never
cgroupDriver: systemd
clusterDNS:
- 10.0.0.10
clusterDomain: old.local
# our own tuning
maxPods: 200
"""


def meta(content):
    return None if content is None else FileState("0644", "root", "root", content.encode())


def facts(cfg=None, env=None, env_backup=None):
    return {File(CFG): meta(cfg), File(ENV): meta(env), File(ENV + ".provisioner-orig"): meta(env_backup),
            Exists(CFG + ".provisioner-orig"): False, Exists(ENV + ".provisioner-orig"): env_backup is not None,
            Created(): frozenset()}


def written(outcome) -> dict[str, str]:
    return {s.path: s.content.decode() for s in outcome.steps if hasattr(s, "content")}


def test_yaml_keys_are_set_in_place_and_comments_stay():
    out = set_yaml_keys(KUBEADM_CONFIG, {"clusterDNS": ["10.96.0.10"], "podCIDR": "10.244.1.0/24"})
    assert "# written by kubeadm, edited by hand\n" in out and "enabled: false   # never\n" in out
    assert "# our own tuning\nmaxPods: 200\n" in out and "10.0.0.10" not in out
    assert yaml.safe_load(out) == {**yaml.safe_load(KUBEADM_CONFIG), "clusterDNS": ["10.96.0.10"], "podCIDR": "10.244.1.0/24"}


@pytest.mark.parametrize("text", ["{clusterDNS: [1.1.1.1], maxPods: 5}\n", "clusterDNS: &a [1.1.1.1]\nx: *a\n",
                                  '"clusterDNS":\n  - 1.1.1.1\n', "", "maxPods: 5"])
def test_yaml_layouts_it_cannot_edit_in_place_still_merge_the_data(text):
    out = set_yaml_keys(text, {"clusterDNS": ["10.96.0.10"]})
    assert yaml.safe_load(out) == {**(yaml.safe_load(text) or {}), "clusterDNS": ["10.96.0.10"]}


def test_kubelet_merges_our_keys_into_kubeadms_config():
    o = MODULES["kubelet"].plan(ARGS, facts(cfg=KUBEADM_CONFIG, env=""))
    new = written(o)[CFG]
    assert new.startswith("# written by kubeadm, edited by hand\n") and "maxPods: 200" in new
    doc = yaml.safe_load(new)
    assert doc["clusterDNS"] == ["10.96.0.10"] and doc["clusterDomain"] == "cluster.local"
    assert doc["cgroupDriver"] == "systemd" and doc["authentication"] == {"anonymous": {"enabled": False}}
    assert doc["resolvConf"] == "/etc/provisioner/resolv.conf.upstream" and doc["podCIDR"] == "10.244.1.0/24"
    assert o.steps[0].shell() == f"cp -p {CFG} {CFG}.provisioner-orig"
    again = MODULES["kubelet"].plan(ARGS, facts(cfg=new, env=written(o)[ENV]))
    assert not again.changed, again.reason


@pytest.mark.parametrize("text,error", [("kind: KubeProxyConfiguration\n", r"is a 'KubeProxyConfiguration', not a KubeletConfiguration"),
                                        ("a: [1\n", r"is not valid YAML at line 2"), ("- a\n", "holds a YAML list, not a mapping")])
def test_a_config_it_cannot_read_is_the_tasks_error_naming_the_file(text, error):
    with pytest.raises(ModuleError, match=rf"{CFG} {error}"):
        MODULES["kubelet"].plan(ARGS, facts(cfg=text))


def test_env_file_only_our_variable_changes_and_earlier_flags_are_kept():
    user = "# kubeadm\nKUBELET_KUBEADM_ARGS=\"--container-runtime-endpoint=unix:///run/containerd/containerd.sock\"\n" \
           "KUBELET_EXTRA_ARGS='--fail-swap-on=false --node-ip=10.0.2.15'\nOTHER=1"
    new = written(MODULES["kubelet"].plan(ARGS, facts(env=user)))[ENV]
    assert new.startswith("# kubeadm\nKUBELET_KUBEADM_ARGS=") and new.endswith("\nOTHER=1")
    assert env_var(new, "KUBELET_EXTRA_ARGS") == ("--config=/var/lib/kubelet/config.yaml --node-ip=192.168.56.11 "
                                                  "--fail-swap-on=false")  # ours win over the same flag of theirs
    # later runs take "theirs" from the original, so a flag dropped from the inventory goes away
    later = written(MODULES["kubelet"].plan({**ARGS, "extra_args": ["--v=2"]}, facts(env=new, env_backup=user)))[ENV]
    assert env_var(later, "KUBELET_EXTRA_ARGS").endswith("--v=2 --fail-swap-on=false")
    back = written(MODULES["kubelet"].plan(ARGS, facts(env=later, env_backup=user)))[ENV]
    assert back == new


def test_env_values_stay_data_when_a_shell_reads_them():
    hostile = 'KUBELET_EXTRA_ARGS="--x=$(touch /tmp/pwned) --y=`id`"\n'
    new = written(MODULES["kubelet"].plan(ARGS, facts(env=hostile)))[ENV]
    r = subprocess.run(["sh", "-c", new + '\nprintf %s "$KUBELET_EXTRA_ARGS"'], capture_output=True, text=True)
    assert r.stdout.endswith("--x=$(touch /tmp/pwned) --y=`id`"), r.stdout


def test_set_env_var_edits_the_last_assignment_only():
    text = "A=1\nKUBELET_EXTRA_ARGS=a\nexport KUBELET_EXTRA_ARGS=b\n# end\n"
    assert set_env_var(text, "KUBELET_EXTRA_ARGS", "KUBELET_EXTRA_ARGS=c\n") == "A=1\nKUBELET_EXTRA_ARGS=a\nKUBELET_EXTRA_ARGS=c\n# end\n"
    assert set_env_var("A=1", "K", "K=2\n") == "A=1\nK=2\n"
    assert shlex.split("KUBELET_EXTRA_ARGS=c")


def test_reset_puts_the_originals_back():
    f = facts(cfg="x: 1\n", env="A=1\n")
    f[Exists(CFG + ".provisioner-orig")] = f[Exists(ENV + ".provisioner-orig")] = True
    shells = [s.shell() for s in MODULES["kubelet"].reverse(ARGS, f).steps]
    assert shells == [f"mv -f {CFG}.provisioner-orig {CFG}", f"mv -f {ENV}.provisioner-orig {ENV}"]
