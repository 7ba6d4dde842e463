"""What a batch shows while it runs: a live rich table in a terminal, plain lines in CI or with NO_COLOR.

The stage of a running grade is read from the outside (no hook in the grade): before its first
container it is fetching and building, while a container with its run label runs the service is up
and being probed, after that it is scoring and writing the report.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from dataclasses import dataclass

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from ..report.terminal import clean
from .roster import Student

WATCH_EVERY = 2.0  # seconds between looks at the Docker engine
RECENT = 8  # finished rows kept on the live screen


@dataclass
class Row:
    student: Student
    stage: str = "queued"
    run_id: str | None = None
    started: float | None = None
    done: bool = False
    error: bool = False
    line: str = ""
    service_seen: bool = False
    finished_at: float = 0.0


def plain_wanted() -> bool:
    return bool(os.environ.get("CI")) or bool(os.environ.get("NO_COLOR")) or not sys.stdout.isatty()


class Board:
    """The state of every submission of this run, shown live or as lines."""

    def __init__(self, students: list[Student], *, plain: bool | None = None, console: Console | None = None,
                 title: str = "") -> None:
        self.rows = {s.id: Row(s) for s in students}
        self.order = [s.id for s in students]
        self.plain = plain_wanted() if plain is None else plain
        self.console = console or Console(highlight=False, emoji=False, no_color=self.plain or None)
        self.title = title
        self.notes: list[str] = []
        self._lock = threading.RLock()
        self._live: Live | None = None
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self._began = time.monotonic()

    # ---------------------------------------------------------------- updates (any thread)

    def update(self, student_id: str, stage: str, run_id: str | None = None) -> None:
        with self._lock:
            row = self.rows[student_id]
            row.stage = stage
            if run_id:
                row.run_id, row.started, row.service_seen = run_id, time.monotonic(), False
                row.stage = "fetch · build"
        if self.plain and stage != "queued":
            self._say(f"{self._who(student_id)}: " + (f"grading started (run {run_id})" if run_id else stage))

    def finished(self, student_id: str, line: str, skipped: bool = False) -> None:
        with self._lock:
            row = self.rows[student_id]
            row.done, row.line, row.finished_at = True, line, time.monotonic()
            row.error = line.startswith("could not grade")
            row.stage = "finished earlier" if skipped else ("could not grade" if row.error else "graded")
            took = "" if skipped or row.started is None else f" in {time.monotonic() - row.started:.0f} s"
            counts = self._counts()
        if self.plain:
            prefix = "skipped, finished earlier: " if skipped else ""
            self._say(f"[{counts['done']}/{len(self.rows)}] {self._who(student_id)}: {prefix}{clean(line, 300)}{took}")

    def note(self, message: str) -> None:
        with self._lock:
            self.notes.append(message)
        if self.plain:
            self._say(message)

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> None:
        self._watcher = threading.Thread(target=self._watch, name="stage-watch", daemon=True)
        self._watcher.start()
        if not self.plain:
            self._live = Live(get_renderable=self._render, console=self.console, refresh_per_second=2,
                              transient=False)
            self._live.start()

    def stop(self) -> None:
        self._stop.set()
        if self._live is not None:
            self._live.stop()
            self._live = None

    # ---------------------------------------------------------------- rendering

    def _counts(self) -> dict[str, int]:
        rows = self.rows.values()
        return {
            "done": sum(r.done for r in rows),
            "errors": sum(r.done and r.error for r in rows),
            "running": sum(not r.done and r.run_id is not None for r in rows),
            "queued": sum(not r.done and r.run_id is None for r in rows),
        }

    def totals_line(self) -> str:
        with self._lock:
            c = self._counts()
        elapsed = time.monotonic() - self._began
        return (f"{c['done']}/{len(self.rows)} finished ({c['errors']} could not be graded), "
                f"{c['running']} grading, {c['queued']} queued · {elapsed:.0f} s")

    def _render(self) -> Group:
        table = Table(title=clean(self.title, 100) or None, expand=False, show_edge=False, pad_edge=False)
        table.add_column("student")
        table.add_column("stage")
        table.add_column("time", justify="right")
        table.add_column("result")
        with self._lock:
            rows = [self.rows[i] for i in self.order]
            active = [r for r in rows if not r.done and r.run_id is not None]
            recent = sorted((r for r in rows if r.done), key=lambda r: r.finished_at)[-RECENT:]
            for row in recent + active:
                took = f"{time.monotonic() - row.started:.0f} s" if row.started and not row.done else ""
                style = "red" if row.error else ("green" if row.done else "cyan")
                table.add_row(Text(clean(row.student.name, 40)), Text(row.stage, style=style), took,
                              Text(clean(row.line.removeprefix("could not grade: "), 80)))
            notes = [Text(clean(n, 200), style="yellow") for n in self.notes[-3:]]
        return Group(table, *notes, Text(self.totals_line(), style="bold"))

    def _say(self, line: str) -> None:
        with self._lock:
            print(line, flush=True)

    def _who(self, student_id: str) -> str:
        row = self.rows[student_id]
        return f"{clean(row.student.name, 60)} ({clean(student_id, 60)})"

    # ---------------------------------------------------------------- stage from the Docker engine

    def _watch(self) -> None:
        client = None
        while not self._stop.wait(WATCH_EVERY):
            with self._lock:
                running = {r.run_id: r for r in self.rows.values() if r.run_id and not r.done}
            if not running:
                continue
            try:
                if client is None:
                    import docker

                    client = docker.from_env(timeout=5)
                up = {c.labels.get("portfolio-grader.run") for c in
                      client.containers.list(filters={"label": "portfolio-grader.run"})}
            except Exception:  # noqa: BLE001 - the stage column is a nicety; the grade does not depend on it
                client = None
                continue
            for run_id, row in running.items():
                with self._lock:
                    if row.done or row.run_id != run_id:
                        continue
                    if run_id in up:
                        stage, row.service_seen = "service up · probing", True
                    elif row.service_seen:
                        stage = "scoring · report"
                    else:
                        continue
                    changed = stage != row.stage
                    row.stage = stage
                if changed and self.plain:
                    self._say(f"{self._who(row.student.id)}: {stage}")
