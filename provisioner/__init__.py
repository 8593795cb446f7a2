"""provisioner: Kubernetes pod networking by hand, over SSH, from a YAML inventory."""

__version__ = "0.1.0"
