"""Local labs: the namespace lab (no VMs) and helpers for the Vagrant lab."""
