"""The files a batch leaves for people and tools: batch.json (what was asked), and from the submissions
summary.json, index.html (the class dashboard), grades.csv (Canvas) and classroom.csv (GitHub Classroom).
Each is written atomically; they are rewritten as each submission finishes, so a long batch can be
watched, and a killed one still shows what was done.
"""

from __future__ import annotations

import threading
from pathlib import Path

from .. import __version__
from ..report import write_text_atomic
from .dashboard import render_dashboard
from .gradebook import canvas_csv, classroom_csv
from .roster import Roster, Student
from .store import BATCH_JSON, now, read_json, write_json
from .summary import RowCache, build_summary

INDEX_HTML = "index.html"
GRADES_CSV = "grades.csv"
CLASSROOM_CSV = "classroom.csv"
SUMMARY_JSON = "summary.json"


def roster_json(roster: Roster) -> dict:
    return {
        "source": roster.source,
        "fingerprint": roster.fingerprint(),
        "students": [s.to_json() | {"folder": s.folder} for s in roster.students],
        "problems": [{"line": p.line, "message": p.message} for p in roster.problems],
    }


def write_batch_meta(out: Path, roster: Roster, assigned: list[Student], shard: str | None, settings: dict) -> None:
    write_json(out / BATCH_JSON, {
        "schema_version": "1.0",
        "grader_version": __version__,
        "roster": roster_json(roster),
        "shards": [shard] if shard else [],
        "assigned": [s.id for s in assigned],
        "settings": settings,
        "updated_at": now(),
    })


class Outputs:
    """Rewrites the class outputs; safe to call from several grading threads."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self._cache = RowCache()
        self._lock = threading.Lock()

    def write(self) -> dict:
        with self._lock:
            summary = build_summary(self.out, self._cache)
            stamp = now()
            write_json(self.out / SUMMARY_JSON, summary | {"generated_at": stamp})
            write_text_atomic(self.out / GRADES_CSV, canvas_csv(summary))
            write_text_atomic(self.out / CLASSROOM_CSV, classroom_csv(summary))
            write_text_atomic(self.out / INDEX_HTML, render_dashboard(summary, generated_at=stamp))
            return summary


def batch_settings(out: Path) -> dict:
    return (read_json(out / BATCH_JSON) or {}).get("settings", {})
