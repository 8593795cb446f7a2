"""Modules by name. Each is pure: (args, facts) → Outcome; see :mod:`.base`."""

from .base import Module, ModuleError, Outcome
from .boot import PodNetworkBootModule
from .bridge import BridgeModule
from .cni import CNIConfigModule, CNIPluginsModule, CNIPodsModule
from .dirs import CreatedDirsModule
from .dns import CoreDNSModule, ResolvConfModule
from .file import FileModule
from .containerd import ContainerdCNIModule
from .kube import ControlPlaneFlagsModule, KubeletModule, KubeProxyModule, ServiceModule
from .pods import PodsModule
from .routes import RoutesModule
from .services import ServicesModule
from .sysctl import SysctlModule

MODULES: dict[str, Module] = {m.name: m for m in (
    SysctlModule(), BridgeModule(), PodsModule(), RoutesModule(), PodNetworkBootModule(), FileModule(),
    CNIPluginsModule(), CNIConfigModule(), CNIPodsModule(),
    KubeletModule(), ContainerdCNIModule(), KubeProxyModule(), ControlPlaneFlagsModule(), ServiceModule(),
    ResolvConfModule(), CoreDNSModule(), CreatedDirsModule(), ServicesModule(),
)}

__all__ = ["MODULES", "Module", "ModuleError", "Outcome"]
