"""mypy --strict checks provisioner/ (settings in pyproject.toml's [tool.mypy]); the suite fails on any error it finds."""

import subprocess
import sys

from ..conftest import ROOT


def test_mypy_finds_nothing():
    done = subprocess.run([sys.executable, "-m", "mypy", "--no-error-summary"], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_settings_are_strict():
    """The check cannot quietly loosen: strict is on for provisioner/ and no module of ours is exempt."""
    import tomllib

    conf = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]
    assert conf["strict"] is True and conf["files"] == ["provisioner"]
    assert all(not m.startswith("provisioner") for o in conf.get("overrides", []) for m in o["module"])
