"""``python -m provisioner.cli``: the same as the ``provision`` command."""

import sys

from . import main

sys.exit(main())
