"""Run scripts on this machine (optionally inside a network namespace): tests and the lab."""

from __future__ import annotations

import contextlib

import subprocess

from . import Result


class LocalTransport:
    def __init__(self, host: str = "localhost", netns: str | None = None):
        self.host = host
        self.prefix = ["ip", "netns", "exec", netns] if netns else []

    def run(self, script: str, timeout: float | None = None) -> Result:
        try:
            p = subprocess.run(self.prefix + ["sh", "-s"], input=script, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return Result("", f"timed out after {timeout}s", 124)
        return Result(p.stdout, p.stderr, p.returncode)

    @contextlib.contextmanager
    def lock(self, path: str, timeout: float):
        yield False

    def close(self) -> None:
        pass
