"""Steps as values: what a module wants done on a node (:class:`Cmd`, :class:`WriteFile`, :class:`Upload`,
:class:`RemoveEmptyDir`, :class:`CNIChain`), each rendering itself to shell through :mod:`provisioner.shell`.

>>> Cmd(("ip", "link", "add", "v-net-0", "type", "bridge")).shell()
'ip link add v-net-0 type bridge'
>>> Cmd(("printf", "%s\\\\n", "1"), stdout="/proc/sys/net/ipv4/ip_forward").shell()
"printf '%s\\\\n' 1 > /proc/sys/net/ipv4/ip_forward"
"""

from __future__ import annotations

import base64
import posixpath
from collections.abc import Callable
from dataclasses import dataclass

from ..shell import command, quote
from ..uploads import Artifact, compressed_base64

STATE_DIR = "/var/lib/provisioner"
CREATED_DIRS = f"{STATE_DIR}/created-dirs"
CREATED = f"{STATE_DIR}/created"  # "KIND NAME" lines: what apply made (file PATH, link NAME, netns NAME, addr …)
Creates = tuple[str, str] | None   # (kind, name) a step makes: written down in CREATED just before it runs


def _recorded(creates: Creates, line: str) -> str:
    """``line``, preceded by the record of what it creates (reset removes only what is recorded)."""
    if creates is None:
        return line
    return f"{command('provisioner_created', *creates)}\n{line}"


@dataclass(frozen=True)
class Cmd:
    """One command line; ``stdout`` redirects its output to a file (e.g. under /proc/sys)."""

    argv: tuple[str, ...]
    stdout: str | None = None
    stdin: str | None = None  # text fed to the command (a quoted here-document)
    creates: Creates = None

    def shell(self) -> str:
        return _recorded(self.creates, self._line())

    def _line(self) -> str:
        line = command(*self.argv)
        if self.stdout:
            line += f" > {quote(self.stdout)}"
        if self.stdin is not None:
            if "\nPROVISIONER_EOF\n" in "\n" + self.stdin:
                raise ValueError("stdin holds the here-document terminator")
            body = self.stdin if self.stdin.endswith("\n") else self.stdin + "\n"
            line += f" <<'PROVISIONER_EOF'\n{body}PROVISIONER_EOF"
        return line

    def show(self) -> str:
        return self._line()  # the record line that may precede it is bookkeeping, not the command


def _install(path: str, fill: Callable[[str], str], mode: str, owner: str | None = None) -> str:
    """The atomic write: make the directory, ``fill(tmp)`` a new temp file beside ``path``, set mode/owner, ``mv``.

    The temp file comes from ``mktemp`` (a fresh name, created exclusively, 0600), so
    nothing planted in the directory beforehand (a symlink, say) is ever written through.
    """
    q = quote
    directory = posixpath.dirname(path) or "/"
    template = q(posixpath.join(directory, f".{posixpath.basename(path)}.provisioner-XXXXXXXX"))
    # a directory where the file must go: mv would move the file into it (and report success every run)
    refuse = f"if [ -d {q(path)} ]; then printf '%s is a directory, not a file\\n' {q(path)} >&2; exit 1; fi"
    lines = [f"provisioner_mkdir {q(directory)}", refuse, f"t=$(mktemp {template})", fill('"$t"'),
             f'chmod {q(mode)} "$t"']
    if owner:
        lines.append(f'chown {q(owner)} "$t"')
    return "\n".join(lines + [f'mv -f "$t" {q(path)}'])


@dataclass(frozen=True)
class WriteFile:
    """Write ``content`` to ``path`` atomically: temp file in the same directory, then ``mv``."""

    path: str
    content: bytes
    mode: str = "0644"
    owner: str = "root"
    group: str = "root"
    creates: Creates = None

    def shell(self) -> str:
        data = base64.encodebytes(self.content).decode()
        return _recorded(self.creates, "") + _install(self.path, lambda tmp: f"base64 -d > {tmp} <<'PROVISIONER_EOF'\n{data}PROVISIONER_EOF",
                        self.mode, f"{self.owner}:{self.group}")

    def show(self) -> str:
        return f"write {self.path} ({len(self.content)} bytes, mode {self.mode}, {self.owner}:{self.group})"


@dataclass(frozen=True)
class Upload:
    """Install a file from this machine (a plugin binary), carried in the apply script itself.

    The bytes (an :class:`~provisioner.uploads.Artifact` read while binding) travel gzip-compressed
    in a here-document, are unpacked into the run's private directory (``mktemp -d``,
    0700, removed when the script exits), checked against their sha256, then
    copied beside the target and moved into place.
    """

    path: str
    artifact: Artifact
    mode: str = "0755"
    creates: Creates = None

    @property
    def sha256(self) -> str:
        return self.artifact.sha256

    def pieces(self) -> tuple[str, bytes, str]:
        """The step as text before the data, the data (the one shared compressed copy: never joined into a
        per-node string) and text after it."""
        q = quote
        staged = f'"$PROVISIONER_RUN"/{self.sha256}'
        return (_recorded(self.creates, "") + f"base64 -d <<'PROVISIONER_EOF' | gzip -dc > {staged}\n",
                compressed_base64(self.artifact),
                "PROVISIONER_EOF\n"
                f'(cd "$PROVISIONER_RUN" && echo {q(self.sha256 + "  " + self.sha256)} | sha256sum -c --quiet)\n'
                + _install(self.path, lambda tmp: f"cp {staged} {tmp}", self.mode)
                + f"\nrm -f {staged}")

    def shell(self) -> str:
        head, data, tail = self.pieces()
        return head + data.decode("ascii") + tail

    def show(self) -> str:
        return f"upload {self.path} (sha256 {self.sha256[:12]}…, mode {self.mode})"


@dataclass(frozen=True)
class RemoveEmptyDir:
    """Remove a directory if it is there and empty (reset of a directory the tool created)."""

    path: str

    def shell(self) -> str:
        q = quote(self.path)
        return f"[ ! -d {q} ] || rmdir --ignore-fail-on-non-empty {q}"

    def show(self) -> str:
        return f"rmdir {self.path} (if empty)"


@dataclass(frozen=True)
class CNIChain:
    """Run a whole conflist for one attachment, as a runtime (libcni) does.

    ADD calls each plugin in order, giving each the result of the one before as
    ``prevResult``, and caches the final result in ``cache``; DEL calls them in
    reverse order with the cached result (and ignores a missing cache); CHECK
    calls each in order with it. Plugin results are JSON objects spliced into
    the next config as text: nothing from them is ever evaluated. ``plugins``
    are the single-plugin configs, already JSON text; ``env`` the CNI_*
    variables. Each plugin's own output goes to stderr, so that an error shows.
    """

    command: str
    plugins: tuple[str, ...]
    env: tuple[str, ...]
    bin_dir: str
    types: tuple[str, ...]
    cache: str

    def shell(self) -> str:
        q = quote
        env = " ".join(q(x) for x in (f"CNI_COMMAND={self.command}",) + self.env)
        order = list(zip(self.plugins, self.types))
        lines = ["r="] if self.command == "ADD" else [
            f"r=$(cat {q(self.cache)} 2>/dev/null || true)", 'case "$r" in "{"*) ;; *) r= ;; esac']
        if self.command == "DEL":
            order.reverse()
        for conf, kind in order:
            head = conf[:-1]  # the config object without its closing brace: prevResult goes in last
            plugin = q(posixpath.join(self.bin_dir, kind))
            feed = (f'{{ printf %s {q(head)}; [ -z "$r" ] || printf \',"prevResult":%s\' "$r"; printf \'}}\'; }}')
            if self.command == "ADD":
                lines.append(f'r=$({feed} | env {env} {plugin})' + ' || { printf \'%s\\n\' "$r" >&2; exit 1; }')
                lines.append('printf \'%s\\n\' "$r" >&2')
            else:
                lines.append(f"{feed} | env {env} {plugin} >&2")
        if self.command == "ADD":
            lines += [f"provisioner_mkdir {q(posixpath.dirname(self.cache))}", f'printf \'%s\\n\' "$r" > {q(self.cache)}']
        elif self.command == "DEL":
            lines.append(f"rm -f {q(self.cache)}")
        return "\n".join(lines)

    def show(self) -> str:
        order = self.types[::-1] if self.command == "DEL" else self.types
        return f"CNI {self.command} through {' -> '.join(order)} ({' '.join(self.env)})"


Step = Cmd | WriteFile | Upload | RemoveEmptyDir | CNIChain
