"""known_hosts is parsed once per version of the file, and each connection gets only its own host's keys
(plain, [addr]:port and hashed entries alike); @revoked lines still reach every connection."""

from __future__ import annotations

import os
import subprocess

import paramiko

from provisioner.transport import ssh


def pubkey(tmp_path, name: str) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / name)], check=True)
    return " ".join((tmp_path / f"{name}.pub").read_text().split()[:2])


def test_each_connection_gets_its_own_hosts_keys_from_one_parse(tmp_path, monkeypatch):
    a, b, c, bad = (pubkey(tmp_path, n) for n in ("a", "b", "c", "bad"))
    known = tmp_path / "known_hosts"
    known.write_text(f"10.0.0.1 {a}\n[10.0.0.2]:2222 {b}\n{paramiko.HostKeys.hash_host('10.0.0.3')} {c}\n"
                     f"@revoked * {bad}\n@cert-authority *.example {a}\n")
    ssh._parsed.cache_clear()
    parsed = []
    real = ssh.load_known_hosts
    monkeypatch.setattr(ssh, "load_known_hosts", lambda keys, path: parsed.append(path) or real(keys, path))

    def keys_for(name: str) -> tuple[list[str], ssh.KnownHosts]:
        keys = paramiko.HostKeys()
        found = ssh.trusted_keys(keys, known, [name])
        return sorted(keys.keys()), found

    assert keys_for("10.0.0.1")[0] == ["10.0.0.1"]
    assert keys_for("[10.0.0.2]:2222")[0] == ["[10.0.0.2]:2222"] and keys_for("10.0.0.2")[0] == []
    names, found = keys_for("10.0.0.3")  # a hashed entry: found by its hash, added under the plain name
    assert names == ["10.0.0.3"] and len(found.revoked) == 1 and found.ca_lines == 1
    assert len(parsed) == 1  # four connections, one parse
    known.write_text(known.read_text() + f"10.0.0.4 {b}\n")  # accept-new wrote a key: the next connection sees it
    os.utime(known, ns=(1, 1))  # a new stamp, even within the same clock tick
    assert keys_for("10.0.0.4")[0] == ["10.0.0.4"] and len(parsed) == 2
