"""Modules as the runner sees them: their arguments with the schema's defaults filled in, as binding does.

Unit tests call modules directly with short argument dicts; ``MODULES`` here
fills the defaults the same way :func:`provisioner.playbook.bind` does, once,
so the modules themselves never carry a default of their own.
"""

from __future__ import annotations

from provisioner.modules import MODULES as REAL
from provisioner.modules import Module


class Bound:
    def __init__(self, module: Module):
        self.module = module

    def __getattr__(self, name):
        attr = getattr(self.module, name)
        if name in ("facts", "reverse_facts", "plan", "reverse", "files", "noop", "prepare"):
            return lambda args, *rest: attr(self.module.with_defaults(args), *rest)
        return attr


MODULES = {name: Bound(m) for name, m in REAL.items()}
