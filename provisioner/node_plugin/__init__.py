"""The project's own CNI plugin (``plugin.py``, installed on nodes as ``provisioner-bridge``)."""

from importlib import resources
from pathlib import Path

PLUGIN_NAME = "provisioner-bridge"


def plugin_path() -> Path:
    return Path(str(resources.files(__package__).joinpath("plugin.py")))
