"""A node in a temp dir for the runner's unit tests: the rendered scripts run through a real ``sh``.

Facts and apply scripts run as they would on a node, with three changes:

- ``ip`` is :mod:`tests.fake_ip` (links, addresses, routes and namespaces kept in
  a JSON file), set up by the test with the node's starting network;
- the node's paths (``/proc/sys``, ``/etc``, ``/var/lib/provisioner``, ``/run``,
  ``/sys/module``) live under the temp dir: the script's absolute paths are
  moved there before it runs, so nothing on this machine is read or written;
- ``modprobe br_netfilter`` makes the bridge sysctls appear (as the module
  does), ``systemctl`` and ``chown`` only log.

So a test sees what really happens to the state when the script runs: a
second run after a fresh apply must be a no-op, from the state the first made.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from provisioner.transport import Result
from provisioner.transport.fake import FakeTransport

HERE = Path(__file__).parent
MOVED = ("/proc/sys/", "/etc/", "/var/lib/provisioner", "/run/", "/sys/module/")


class ShellNode(FakeTransport):
    """A Transport whose node is a temp dir (the lock and close of FakeTransport); ``fail`` makes one ``ip``
    command fail as the kernel would."""

    def __init__(self, root: Path, host: str = "node2", ip: str = "192.168.56.12/24", fail: str = ""):
        super().__init__(host)
        self.root, self.fail = root, fail
        for d in ("proc/sys/net/ipv4", "etc/sysctl.d", "etc/modules-load.d", "var/lib", "run", "sys/module"):
            (root / d).mkdir(parents=True, exist_ok=True)
        (root / "proc/sys/net/ipv4/ip_forward").write_text("0\n")
        self.state = root / "ip.json"
        net = {"links": {"lo": {"kind": None, "up": True, "master": None, "index": 1, "peer": None},
                         "eth0": {"kind": None, "up": True, "master": None, "index": 2, "peer": None, "addrs": [ip]}},
               "routes": [{"dst": str(__import__("ipaddress").ip_interface(ip).network), "dev": "eth0",
                           "protocol": "kernel"}]}
        self.state.write_text(json.dumps({"netns": [], "ns": {"": net}, "next_index": 10}))

    def network(self) -> dict:
        """The fake ``ip`` state: ``{"netns": […], "ns": {"": {"links": …, "routes": […]}, "web": …}}``."""
        return json.loads(self.state.read_text())

    def edit_network(self, change) -> None:
        s = self.network()
        change(s)
        self.state.write_text(json.dumps(s))

    def _prelude(self) -> str:
        r = self.root
        return "\n".join([
            f"ip() {{ {sys.executable} {HERE / 'fake_ip.py'} \"$@\"; }}",
            f"modprobe() {{ echo \"modprobe $*\" >> {r}/log; if [ \"$1\" = br_netfilter ]; then "
            f"command mkdir -p {r}/proc/sys/net/bridge {r}/sys/module/br_netfilter; "
            f"for k in bridge-nf-call-iptables bridge-nf-call-ip6tables; do "
            f"[ -e {r}/proc/sys/net/bridge/$k ] || echo 0 > {r}/proc/sys/net/bridge/$k; done; fi; }}",
            f"systemctl() {{ echo \"systemctl $*\" >> {r}/log; return 1; }}",
            f"chown() {{ echo \"chown $*\" >> {r}/log; }}",
        ]) + "\n"

    def run(self, script, timeout: float | None = None) -> Result:
        script = str(script)  # a steps.Script too: its pieces joined
        self.scripts.append(script)
        text = script
        for prefix in MOVED:
            text = text.replace(prefix, f"{self.root}{prefix}")
        env = {"PATH": "/usr/bin:/bin", "HOME": str(self.root), "LC_ALL": "C", "FAKE_IP_STATE": str(self.state),
               "FAKE_IP_FAIL": self.fail}
        try:
            p = subprocess.run(["sh", "-s"], input=(self._prelude() + text).encode(), capture_output=True,
                               timeout=timeout or 60, cwd=self.root, env=env)
        except subprocess.TimeoutExpired:
            return Result("", "timed out", 124)
        # the node's own paths, as a real node would print them (the record of what apply created, say)
        out, err = (b.decode(errors="replace").replace(str(self.root) + "/", "/") for b in (p.stdout, p.stderr))
        if getattr(self, "on_output", None) is not None:  # as the SSH transport: output in pieces, lines cut anywhere
            for at in range(0, len(out), 7):
                self.on_output(out[at:at + 7])
        return Result(out, err, p.returncode)

