"""provisioner: Kubernetes pod networking by hand, over SSH, from a YAML inventory."""

__version__ = "0.1.0"

FORKS = 50  # hosts worked on at once by default (engine and CLI): one thread and one SSH connection each
