"""Steps: what modules want done on a node, and the scripts that do it, in three parts.

- :mod:`.values`: the step types (``Cmd``, ``WriteFile``, ``Upload``, ``RemoveEmptyDir``, ``CNIChain``) and
  the records of what apply made (``CREATED``, ``CREATED_DIRS``);
- :mod:`.lock`: the node lock's protocol (lease, fence, the stop of an overrunning script);
- :mod:`.script`: the one apply script a host's steps render to, and reading its markers back.

Everything is importable from here (``from provisioner.steps import Cmd, render, LOCK``).
"""

from .lock import (FENCED_RC, HEARTBEAT, LEASE, LOCK, LOCK_OWNER, LOCK_SCRIPT, LOCK_TOKEN, PROC_ID_FUNCTION,
                   lock_script, script_file, stop_script)
from .script import (MARK, MKDIR_FUNCTION, RECORD_FUNCTION, RUN_PREFIX, fence, fenced, finished, last_step, mark,
                     Script, render, render_script, run_dir, step_mark)
from .values import (CREATED, CREATED_DIRS, STATE_DIR, CNIChain, Cmd, Creates, RemoveEmptyDir, Step, Upload,
                     WriteFile)

__all__ = ["FENCED_RC", "HEARTBEAT", "LEASE", "LOCK", "LOCK_OWNER", "LOCK_SCRIPT", "LOCK_TOKEN", "PROC_ID_FUNCTION",
           "lock_script", "script_file", "stop_script", "MARK", "MKDIR_FUNCTION", "RECORD_FUNCTION", "RUN_PREFIX",
           "fence", "fenced", "finished", "last_step", "mark", "Script", "render", "render_script", "run_dir", "step_mark", "CREATED",
           "CREATED_DIRS", "STATE_DIR", "CNIChain", "Cmd", "Creates", "RemoveEmptyDir", "Step", "Upload", "WriteFile"]
