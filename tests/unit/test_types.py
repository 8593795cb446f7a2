"""mypy checks provisioner/ (settings in pyproject.toml's [tool.mypy]); the suite fails on any error it finds."""

import subprocess
import sys

from ..conftest import ROOT


def test_mypy_finds_nothing():
    done = subprocess.run([sys.executable, "-m", "mypy", "--no-error-summary"], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
