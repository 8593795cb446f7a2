"""Modules by name. Each is pure: (args, facts) → Outcome; see :mod:`.base`."""

from .base import Module, ModuleError, Outcome
from .bridge import BridgeModule
from .cni import CNIConfigModule, CNIPluginsModule, CNIPodsModule
from .file import FileModule
from .pods import PodsModule
from .routes import RoutesModule
from .sysctl import SysctlModule

MODULES: dict[str, Module] = {m.name: m for m in (
    SysctlModule(), BridgeModule(), PodsModule(), RoutesModule(), FileModule(),
    CNIPluginsModule(), CNIConfigModule(), CNIPodsModule(),
)}

__all__ = ["MODULES", "Module", "ModuleError", "Outcome"]
