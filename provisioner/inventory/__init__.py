"""The inventory: what the cluster and its nodes look like."""

from .load import load_inventory
from .model import CNI, Cluster, Inventory, Node, Pod, SSHSettings

__all__ = ["load_inventory", "CNI", "Cluster", "Inventory", "Node", "Pod", "SSHSettings"]
