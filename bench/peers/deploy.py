"""pyinfra doing what `provision apply` does (see __init__.py): the same steps, the same files."""

from pyinfra import host
from pyinfra.operations import files, server

d = host.data.peer_dir
for name, title in (("sysctl.sh", "Kernel forwards and filters pod traffic"),
                    ("bridge.sh", "Pod bridge holds the gateway of the node's pod subnet"),
                    ("pods.sh", "Lab pods wired to the bridge by hand"),
                    ("routes.sh", "Routes to the other nodes' pod subnets")):
    with open(f"{d}/{name}") as fh:
        server.shell(name=title, commands=[fh.read()])

for f in host.data.peer_files:
    files.put(name=f"file {f['dest']}", src=f["src"], dest=f["dest"], mode=f["mode"], create_remote_dir=True)
