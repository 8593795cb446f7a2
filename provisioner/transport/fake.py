"""A transport with canned answers, recording every script: for runner unit tests."""

from __future__ import annotations

import contextlib

from collections.abc import Callable, Iterator

from ..errors import TransportError
from ..steps.script import Script
from . import Held, Result


class FakeTransport:
    def __init__(self, host: str, answer: Callable[[str], Result] | None = None, unreachable: bool = False):
        self.host = host
        self.answer = answer or (lambda script: Result("", "", 0))
        self.unreachable = unreachable
        self.scripts: list[str] = []
        self.locks: list[str] = []

    def run(self, script: str | Script, timeout: float | None = None) -> Result:
        if self.unreachable:
            raise TransportError(f"{self.host}: ssh to {self.host}:22: Connection refused")
        text = str(script)
        self.scripts.append(text)
        return self.answer(text)

    @contextlib.contextmanager
    def lock(self, path: str, timeout: float, facts_script: str | None = None,
             facts_timeout: float | None = None) -> Iterator[Held]:
        self.locks.append(path)
        yield Held(True, self.run(facts_script, facts_timeout) if facts_script is not None else None)

    def stop_script(self) -> bool:
        return False

    def close(self) -> None:
        pass
