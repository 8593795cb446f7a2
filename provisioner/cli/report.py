"""Output: a line per host and task as results arrive, a recap, or one JSON document."""

from __future__ import annotations

import json
import os
import shutil
import sys
import threading
from typing import Any, TextIO, cast

from ..engine.runner import HostResult, TaskResult
from ..errors import printable_lines

COLORS = {"warning": "35", "ok": "32", "changed": "33", "failed": "31", "unreachable": "31;1", "skipped": "36", "would change": "33"}


class Reporter:
    """Prints events as they come (thread-safe). With ``json_out`` it prints nothing until :meth:`finish`.

    On a terminal, a status line under the results shows which hosts are still
    working and on what; elsewhere (pipes, CI logs) only plain result lines.
    """

    def __init__(self, mode: str, json_out: bool = False, stream: TextIO | None = None, verbose: bool = False,
                 diff: bool = False):
        self.mode, self.json_out, self.verbose, self.diff = mode, json_out, verbose, diff
        self.out = stream or sys.stdout
        self.color = self.out.isatty() and not os.environ.get("NO_COLOR")  # NO_COLOR: plain words on any terminal
        self.live = self.color and not json_out
        self.working: dict[str, str] = {}
        self.lock = threading.Lock()

    def _status(self) -> None:
        if not self.live:
            return
        width = shutil.get_terminal_size((100, 20)).columns - 1
        line = "working: " + "; ".join(f"{h} ({p})" for h, p in sorted(self.working.items())) if self.working else ""
        self.out.write("\r\033[K" + line[:width])
        self.out.flush()

    def _clear(self) -> None:
        if self.live:
            self.out.write("\r\033[K")

    def paint(self, word: str) -> str:
        code = COLORS.get(word)
        return f"\033[{code}m{word}\033[0m" if self.color and code else word

    def __call__(self, kind: str, obj: object) -> None:
        if self.json_out:
            return
        with self.lock:
            self._clear()
            if kind == "phase":
                host, text = cast("tuple[str, str]", obj)
                self.working[host] = text
            elif kind == "host_done" and isinstance(obj, HostResult):
                self.working.pop(obj.host, None)
                for w in obj.warnings:
                    print(f"[{obj.host}] {self.paint('warning')}: {printable_lines(w)}", file=self.out, flush=True)
            elif kind == "task" and isinstance(obj, TaskResult):
                self._task(obj)
            elif kind in ("unreachable", "host_failed") and isinstance(obj, HostResult):
                res = obj
                word = "unreachable" if res.unreachable else "failed"
                print(f"[{res.host}] {self.paint(word)}: {printable_lines(res.error or '')}", file=self.out, flush=True)
            self._status()

    def _task(self, t: TaskResult) -> None:
        word = "would change" if self.mode == "plan" and t.status == "changed" else t.status
        text = printable_lines((t.error if t.status == "failed" else t.reason) or "")
        pad = " " * max(0, 8 - len(word))
        print(f"[{t.host}] {self.paint(word)}{pad} {t.name} ({t.module}): {text}", file=self.out, flush=True)
        if t.status == "failed" and t.where:
            print(f"    task at {t.where}", file=self.out)
        for w in t.warnings:
            if printable_lines(w) == text:
                continue
            print(f"    {self.paint('warning')}: {printable_lines(w)}", file=self.out)
        show_detail = self.mode == "plan" or self.verbose
        if show_detail and t.status in ("changed", "failed") and t.commands:
            for c in t.commands:
                print("    $ " + printable_lines(c).replace("\n", "\n      "), file=self.out)
        if (show_detail or self.diff) and t.status in ("changed", "failed") and t.diff:
            print("    " + printable_lines(t.diff.rstrip("\n")).replace("\n", "\n    "), file=self.out)
        self.out.flush()

    def finish(self, results: list[HostResult]) -> None:
        self._clear()
        if self.json_out:
            print(json.dumps(to_json(self.mode, results), indent=2), file=self.out)
            return
        print("\nRECAP", file=self.out)
        width = max((len(r.host) for r in results), default=4)
        for r in results:
            c = r.recap()
            line = (f"{r.host:<{width}}  ok={c['ok']:<3} changed={c['changed']:<3} failed={c['failed']:<3} "
                    f"skipped={c['skipped']:<3} unreachable={'yes' if r.unreachable else 'no':<4} {c['seconds']:.2f}s")
            print(line, file=self.out)
        bad = [r for r in results if r.failed]
        if bad:
            what = ", ".join(f"{r.host} ({'unreachable' if r.unreachable else 'failed'})" for r in bad)
            print(f"\n{self.mode}: INCOMPLETE: {len(bad)} of {len(results)} host(s) did not finish: {what}", file=self.out)
        if self.mode == "plan":
            n = sum(r.count("changed") for r in results)
            if n:
                print(f"\nplan: {n} task(s) would change; nothing was changed.", file=self.out)
            elif not bad:
                print("\nplan: nothing to do.", file=self.out)
            else:
                print("\nplan: nothing would change on the hosts that answered; the others are not known.", file=self.out)


def to_json(mode: str, results: list[HostResult]) -> dict[str, Any]:
    return {
        "mode": mode,
        "ok": not any(r.failed for r in results),
        "recap": {r.host: r.recap() for r in results},
        "hosts": {r.host: {"error": r.error, "unreachable": r.unreachable, "warnings": r.warnings,
                           "tasks": [t.to_json() for t in r.tasks]} for r in results},
    }
