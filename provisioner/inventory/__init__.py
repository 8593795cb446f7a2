"""The inventory: what the cluster and its nodes look like."""

from .load import load_inventory
from .model import Cluster, Inventory, Node, Pod, SSHSettings

__all__ = ["load_inventory", "Cluster", "Inventory", "Node", "Pod", "SSHSettings"]
