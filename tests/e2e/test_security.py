"""Safe as root, on a real lab: hostile keys never run, planted symlinks are not followed, reset keeps
what apply did not make, and host keys are trusted only as the inventory says."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from provisioner.lab import namespace

# The 13 inventory keys whose paths once reached the facts script unquoted (and a playbook file task's path).
KEYS = [("cni", "bin_dir"), ("cni", "conf_dir"), ("cni", "data_dir"), ("kubernetes", "kubelet", "config_file"),
        ("kubernetes", "kubelet", "env_file"), ("kubernetes", "kubelet", "dropin"),
        ("kubernetes", "containerd", "config_file"), ("kubernetes", "kube_proxy", "config_file"),
        ("kubernetes", "control_plane_file"), ("dns", "resolv_conf"), ("dns", "upstream_file"),
        ("dns", "coredns", "corefile"), ("dns", "coredns", "manifest")]
MARK = "/tmp/provisioner-pwned"


def with_value(data: dict, path: tuple, value) -> dict:
    out = yaml.safe_load(yaml.safe_dump(data))
    target = out
    for p in path[:-1]:
        target = target.setdefault(p, {})
    target[path[-1]] = value
    return out


def cli(*argv: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "provisioner.cli", *argv], capture_output=True, text=True, timeout=300,
                          env=env)


def test_hostile_keys_never_run_in_plan_apply_or_reset(make_lab, tmp_path):
    lab = make_lab(2, pods=())
    nodes = ("node1", "node2")
    for path in KEYS:
        inv = tmp_path / f"{'-'.join(path)}.yaml"
        inv.write_text(yaml.safe_dump(with_value(lab.data(), path, f"/tmp/x'; touch {MARK}; echo '")))
        for command in ("plan", "apply", "reset"):
            p = cli(command, str(inv))
            assert p.returncode == 2 and "absolute, normalised path" in p.stderr, (path, command, p.stderr)
            assert f"{inv}:" in p.stderr  # file:line of the bad value
    book = tmp_path / "book.yaml"
    book.write_text(yaml.safe_dump([{"name": "p", "hosts": "all", "tasks": [
        {"name": "f", "file": {"path": f"/tmp/x'; touch {MARK}; echo '", "content": "a"}}]}]))
    p = lab.provision("plan", "-p", str(book))
    assert p.returncode == 2 and "book.yaml" in p.stderr
    for n in nodes:
        assert lab.node_sh(n, f"ls {MARK} 2>/dev/null || true") == ""
    assert not Path(MARK).exists()


def test_planted_symlinks_are_never_written_through(make_lab):
    lab = make_lab(1, pods=())
    # an unprivileged user plants links at every name an upload or a file write used to have
    lab.node_sh("node1", "printf 'root only\\n' > /root/secret && chmod 600 /root/secret && mkdir -p /etc/cni/bin && "
                         "for sha in $(sha256sum /usr/lib/cni/bridge /usr/lib/cni/host-local /usr/lib/cni/loopback "
                         "| cut -c1-24); do ln -s /root/secret /tmp/.provisioner-upload-$sha; done; "
                         "for f in bridge host-local loopback; do ln -s /root/secret /etc/cni/bin/.$f.provisioner-tmp; done")
    rc, doc = lab.json("apply")
    assert rc == 0, doc["recap"]
    assert lab.node_sh("node1", "cat /root/secret") == "root only\n"
    assert lab.node_sh("node1", "ls -A /tmp | grep -c '^.provisioner-run' || true").strip() == "0"  # run dir removed
    assert lab.node_sh("node1", "cmp /usr/lib/cni/bridge /etc/cni/bin/bridge && echo same").strip() == "same"


def test_reset_leaves_a_directory_that_was_there_before(make_lab):
    lab = make_lab(2, pods=(), cni_pods=("db",))
    name = lab.name
    data = with_value(lab.data(), ("cni", "data_dir"), "/var/lib")  # leases in /var/lib/<cluster name>
    lab.inventory.write_text(yaml.safe_dump(data))
    lab.node_sh("node1", f"mkdir -p /var/lib/{name} && printf 'secret key\\n' > /var/lib/{name}/ca.key")
    assert lab.provision("apply").returncode == 0
    rc, doc = lab.json("reset")
    assert rc == 0, doc["recap"]
    assert lab.node_sh("node1", f"cat /var/lib/{name}/ca.key") == "secret key\n"
    task = next(t for t in doc["hosts"]["node1"]["tasks"] if t["module"] == "cni_config")
    assert f"/var/lib/{name} existed before apply" in (task["reason"] or ""), task
    # where apply made the lease directory itself, reset takes it away again
    assert lab.node_sh("node2", f"ls -d /var/lib/{name} 2>/dev/null || true") == ""


def _keys_of(lab) -> dict[str, str]:
    return dict(line.split(" ", 1) for line in Path(lab.data()["ssh"]["known_hosts"]).read_text().splitlines())


def test_host_keys_are_trusted_only_as_the_inventory_says(make_lab, tmp_path):
    lab = make_lab(1, pods=())
    data = lab.data()
    address = data["nodes"][0]["address"]
    home = tmp_path / "home"
    home.mkdir()
    env = dict(os.environ, HOME=str(home))

    def run(policy: str, known: str | None, content: str | None = None) -> subprocess.CompletedProcess:
        ssh = {**data["ssh"], "host_key_policy": policy}
        if known is None:
            ssh.pop("known_hosts")
        else:
            ssh["known_hosts"] = known
            if content is not None:
                Path(known).write_text(content)
        inv = tmp_path / f"inv-{policy}.yaml"
        inv.write_text(yaml.safe_dump({**data, "ssh": ssh}))
        return cli("plan", str(inv), "--retries", "0", env=env)

    real = Path(data["ssh"]["known_hosts"]).read_text()
    kh = str(tmp_path / "kh")
    p = run("strict", kh, "")  # unknown key
    assert p.returncode == 1 and "is not in" in p.stdout and "ssh-keyscan" in p.stdout, p.stdout
    other = subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "other")], check=True)
    assert other.returncode == 0
    fake = f"{address} " + " ".join((tmp_path / "other.pub").read_text().split()[:2]) + "\n"
    p = run("strict", kh, fake)  # a changed key
    assert p.returncode == 1 and "CHANGED" in p.stdout, p.stdout
    p = run("strict", kh, "# my hosts\n@cert-authority *.example.com " + " ".join(fake.split()[1:]) + "\n")
    assert p.returncode == 1 and "@cert-authority" in p.stdout and "Traceback" not in p.stderr, p.stdout + p.stderr
    revoked = "@revoked " + real.split(" ", 1)[0] + " " + " ".join(real.split()[1:3]) + "\n"
    p = run("accept-new", kh, revoked)  # a revoked key is refused, and never written down first
    assert p.returncode == 1 and "@revoked" in p.stdout, p.stdout
    assert Path(kh).read_text() == revoked
    p = run("accept-new", kh, "")  # recorded in ssh.known_hosts, checked from then on
    assert p.returncode == 0, p.stdout
    assert Path(kh).read_text() == real
    assert run("strict", kh).returncode == 0
    p = run("accept-new", None)  # no ssh.known_hosts: the user's own file, never nowhere
    assert p.returncode == 0 and (home / ".ssh" / "known_hosts").read_text() == real
    assert oct((home / ".ssh" / "known_hosts").stat().st_mode & 0o777) == "0o600"
    (home / ".ssh" / "known_hosts").unlink()
    p = run("insecure", kh, "# kept as it is\n")
    assert p.returncode == 0 and "host_key_policy: insecure" in p.stderr, p.stderr
    assert Path(kh).read_text() == "# kept as it is\n" and not (home / ".ssh" / "known_hosts").exists()
    inv = tmp_path / "inv-insecure.yaml"
    v = cli("verify", str(inv), env=env)  # OpenSSH (testinfra) must not write a known_hosts either
    assert "Traceback" not in v.stderr
    assert Path(kh).read_text() == "# kept as it is\n" and not (home / ".ssh" / "known_hosts").exists()
    assert namespace.running(lab.name)["netns"]
