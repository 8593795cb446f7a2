"""A node address where something accepts TCP but never speaks SSH: one line saying so, no paramiko traceback."""

from __future__ import annotations

import socket
import threading

from provisioner import cli


def test_no_ssh_banner_is_one_line_not_a_traceback(write, capsys):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])  # accepted, and never a byte sent
            except OSError:
                pass

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    try:
        inv = write("cluster: {name: s, node_cidr: 127.0.0.0/8, pod_cidr: 10.244.0.0/16, service_cidr: 10.96.0.0/12}\n"
                    "ssh: {host_key_policy: insecure, connect_timeout: 2}\n"
                    f"nodes:\n  - {{name: node1, address: 127.0.0.1, port: {listener.getsockname()[1]}}}\n")
        assert cli.main(["plan", str(inv), "--retries", "0"]) == 1
    finally:
        stop.set()
        t.join(5)
        for c in held:
            c.close()
        listener.close()
    out, err = capsys.readouterr()
    assert "the SSH handshake did not finish within 2s (no SSH banner" in out, out
    assert "Traceback" not in err and "No existing session" not in out + err
