"""The batch folder on disk: where each submission's files live and what state they say it is in.

    OUT/batch.json                      the roster, its problems, the shard, the batch settings
    OUT/.lock                           held (flock) while a batch or merge writes this folder
    OUT/submissions/<student>/
        student.json                    the roster entry the grade was started from
        running.json                    {run_id, pid} while a grade runs: a resumed batch cleans it up
        attempts.jsonl                  one line per grade started (history: nothing is graded twice)
        grade.log                       the grade's output
        report/<name>/result.json       written atomically by `portfolio-grader grade`: finished
        error.json                      written atomically when it could not be graded: finished too

Every JSON file is written to a temp file and renamed, so a kill -9 at any moment leaves either the
old file or the new one.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from ..report import write_text_atomic

BATCH_JSON = "batch.json"
SUBMISSIONS = "submissions"
STUDENT_JSON = "student.json"
RUNNING_JSON = "running.json"
ERROR_JSON = "error.json"
ATTEMPTS = "attempts.jsonl"
GRADE_LOG = "grade.log"
REPORT_DIR = "report"


class FolderBusy(RuntimeError):
    """Another batch or merge is writing this folder right now."""


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def write_json(path: Path, data: Any) -> Path:
    return write_text_atomic(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def read_json(path: Path) -> Any | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


@contextlib.contextmanager
def locked(out: Path) -> Iterator[None]:
    """One writer per folder. The kernel drops the lock when its process dies, kill -9 included."""
    out.mkdir(parents=True, exist_ok=True)
    handle = open(out / ".lock", "a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise FolderBusy(f"{out}: another portfolio-grader batch or merge is writing this folder") from None
        yield
    finally:
        handle.close()


@dataclass(frozen=True)
class Submission:
    """One student's folder and what is in it."""

    folder: Path

    @property
    def result_path(self) -> Path | None:
        found = sorted((self.folder / REPORT_DIR).glob("*/result.json"))
        return found[0] if found else None

    @property
    def error(self) -> dict | None:
        return read_json(self.folder / ERROR_JSON)

    @property
    def running(self) -> dict | None:
        return read_json(self.folder / RUNNING_JSON)

    @property
    def student(self) -> dict | None:
        return read_json(self.folder / STUDENT_JSON)

    @property
    def finished(self) -> bool:
        return self.result_path is not None or (self.folder / ERROR_JSON).is_file()

    def attempts(self) -> list[dict]:
        try:
            lines = (self.folder / ATTEMPTS).read_text(encoding="utf-8").splitlines()
        except OSError:
            return []
        out = []
        for line in lines:
            try:
                out.append(json.loads(line))
            except ValueError:
                continue  # a line cut short by a kill
        return out

    def append_attempt(self, record: dict) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.folder / ATTEMPTS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (json.dumps(record) + "\n").encode())  # one write: lines never interleave
            os.fsync(fd)
        finally:
            os.close(fd)

    def clear_outcome(self) -> None:
        """Forget a finished grade (for --force, or when the roster line changed)."""
        shutil.rmtree(self.folder / REPORT_DIR, ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            (self.folder / ERROR_JSON).unlink()

    def clear_running(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.folder / RUNNING_JSON).unlink()


def submission(out: Path, folder_name: str) -> Submission:
    return Submission(out / SUBMISSIONS / folder_name)
