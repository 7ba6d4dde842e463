"""Run a class's submissions concurrently, each as its own `portfolio-grader grade` process.

Why subprocesses: a grade that crashes, hangs or is killed takes nobody else with it, and each one
gets its own run id (container, compose project, image tag, ports, temp dir are all derived from it).
Why the files: a batch killed with kill -9 leaves `running.json` (the run id and pid) behind, so the
next batch stops the orphaned grade, removes its Docker objects by the run label, and grades it again;
a submission whose `result.json` or `error.json` exists is finished and never graded twice.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from .progress import Board
from .roster import Student
from .store import ERROR_JSON, GRADE_LOG, REPORT_DIR, RUNNING_JSON, STUDENT_JSON, Submission, now, submission, write_json

EXIT_COULD_NOT_GRADE = 2
STOP_GRACE = 45.0  # seconds a grade gets to remove its containers after SIGTERM, before SIGKILL


@dataclass(frozen=True)
class BatchSettings:
    default_tier: str = "beginner"
    jobs: int = 2
    force: bool = False  # grade again what is already finished
    retry_errors: bool = False  # grade again what could not be graded
    timeout: float = 2400.0  # per submission, a backstop behind the grade's own --deadline
    seed: int | None = None
    max_examples: int | None = None
    grade_args: tuple[str, ...] = ()  # --memory=, --cpus=, --pids=, --deadline= passed on to every grade


@dataclass
class RunReport:
    graded: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # finished by an earlier run
    reaped: list[str] = field(default_factory=list)  # leftovers of a killed batch, cleaned up
    interrupted: bool = False


class Runner:
    def __init__(self, out: Path, students: list[Student], settings: BatchSettings, board: Board,
                 on_finished: Callable[[], object] = lambda: None) -> None:
        self.out = out
        self.students = students
        self.settings = settings
        self.board = board
        self.on_finished = on_finished
        self._stop = threading.Event()
        self._procs: dict[str, subprocess.Popen] = {}
        self._lock = threading.Lock()
        self.report = RunReport()

    # ---------------------------------------------------------------- the batch

    def run(self) -> RunReport:
        pending = self._prepare()
        if pending:
            self._check_engine()
        self.board.start()
        try:
            with ThreadPoolExecutor(max_workers=max(1, self.settings.jobs), thread_name_prefix="grade") as pool:
                futures: dict[Future, Student] = {pool.submit(self._guarded, s): s for s in pending}
                try:
                    remaining = set(futures)
                    while remaining:  # short waits keep the main thread responsive to Ctrl-C
                        _, remaining = wait(remaining, timeout=0.5, return_when=FIRST_COMPLETED)
                except KeyboardInterrupt:
                    self.report.interrupted = True
                    self._stop.set()
                    for future in futures:
                        future.cancel()
                    self._terminate_all()
        finally:
            self.board.stop()
        return self.report

    def _check_engine(self) -> None:
        """RuntimeUnavailable now, rather than one "could not grade" per student."""
        from ..runtime.docker import connect_engine

        connect_engine().close()

    def _prepare(self) -> list[Student]:
        """Clean up what a killed batch left, then decide who still needs grading."""
        pending = []
        for student in self.students:
            sub = submission(self.out, student.folder)
            if sub.running is not None:
                self.board.update(student.id, "cleaning up a killed run")
                reap(sub)
                self.report.reaped.append(student.id)
            spec = student.spec(self.settings.default_tier)
            previous = (sub.student or {}).get("spec")
            if sub.finished and previous is not None and previous != spec:
                sub.clear_outcome()  # the roster line changed since: that grade is stale
            elif sub.finished and self.settings.force:
                sub.clear_outcome()
            elif sub.error is not None and self.settings.retry_errors:
                sub.clear_outcome()
            if sub.finished:
                _ensure_scorecard(sub)
                self.report.skipped.append(student.id)
                self.board.finished(student.id, _outcome_line(sub), skipped=True)
            else:
                pending.append(student)
                self.board.update(student.id, "queued")
        return pending

    # ---------------------------------------------------------------- one submission

    def _guarded(self, student: Student) -> None:
        """Whatever goes wrong with one submission is recorded for it; the others carry on."""
        if self._stop.is_set():
            return
        sub = submission(self.out, student.folder)
        try:
            self._grade(student, sub)
        except Exception as exc:  # noqa: BLE001 - containment is the point
            if not self._stop.is_set():
                _record_error(sub, "batch_error", f"the batch could not run this grade: {exc}", None)
                self._finish(student, sub)

    def _grade(self, student: Student, sub: Submission) -> None:
        run_id = uuid.uuid4().hex[:10]
        sub.folder.mkdir(parents=True, exist_ok=True)
        write_json(sub.folder / STUDENT_JSON, {"student": student.to_json(),
                                               "spec": student.spec(self.settings.default_tier)})
        # running.json first: a kill from here on leaves the run id a later batch needs to clean up
        write_json(sub.folder / RUNNING_JSON, {"run_id": run_id, "pid": None, "started_at": now()})
        cmd = self._command(student, sub, run_id)
        with open(sub.folder / GRADE_LOG, "ab") as log:
            log.write(f"\n=== {now()} run {run_id}: {' '.join(cmd[1:])}\n".encode())
            log.flush()
            env = {**os.environ, "NO_COLOR": "1", "PYTHONUNBUFFERED": "1", "COLUMNS": "120"}
            with self._lock:
                if self._stop.is_set():
                    sub.clear_running()
                    return
                # own session: Ctrl-C in the terminal reaches only the batch, which stops each grade in turn
                proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        env=env, start_new_session=True)
                self._procs[student.id] = proc
        write_json(sub.folder / RUNNING_JSON, {"run_id": run_id, "pid": proc.pid, "started_at": now()})
        sub.append_attempt({"run_id": run_id, "pid": proc.pid, "started_at": now(), "repo": student.repo})
        self.board.update(student.id, "grading", run_id=run_id)
        code: int | None
        try:
            code = proc.wait(timeout=self.settings.timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            timed_out = True
            code = stop_process(proc.pid, run_id, proc)
        finally:
            with self._lock:
                self._procs.pop(student.id, None)
        if self._stop.is_set() and sub.result_path is None:
            # interrupted: neither a result nor an error; the next batch grades it again
            _cleanup_docker(run_id)
            sub.clear_running()
            return
        if sub.result_path is None:
            if timed_out:
                _record_error(sub, "timeout", f"no result after {self.settings.timeout:g} s; the grade was stopped", code)
            elif code == EXIT_COULD_NOT_GRADE:
                _record_error(sub, "could_not_grade", _last_message(sub.folder / GRADE_LOG), code)
            else:
                _cleanup_docker(run_id)  # a crashed grade may not have removed its containers
                _record_error(sub, "crashed", f"the grade crashed (exit {code}): {_last_message(sub.folder / GRADE_LOG)}", code)
        sub.clear_running()
        self._finish(student, sub)

    def _finish(self, student: Student, sub: Submission) -> None:
        if sub.result_path is not None:
            self.report.graded.append(student.id)
        else:
            self.report.errors.append(student.id)
        self.board.finished(student.id, _outcome_line(sub))
        try:
            self.on_finished()
        except Exception as exc:  # noqa: BLE001 - the outputs are rewritten at the end anyway
            self.board.note(f"could not refresh the class outputs: {exc}")

    def _command(self, student: Student, sub: Submission, run_id: str) -> list[str]:
        tier = student.tier or self.settings.default_tier
        cmd = [sys.executable, "-m", "portfolio_grader.cli", "grade", f"--run-id={run_id}", f"--tier={tier}",
               f"--out={sub.folder / REPORT_DIR}"]
        if student.ref:
            cmd.append(f"--ref={student.ref}")
        if self.settings.seed is not None:
            cmd.append(f"--seed={self.settings.seed}")
        if self.settings.max_examples is not None:
            cmd.append(f"--max-examples={self.settings.max_examples}")
        return cmd + list(self.settings.grade_args) + ["--", student.repo]  # `--`: a repo can never be read as an option

    def _terminate_all(self) -> None:
        """Ctrl-C: every running grade gets SIGTERM (it removes its containers), then SIGKILL after a grace."""
        with self._lock:
            procs = list(self._procs.values())
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        for proc in procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)


# ---------------------------------------------------------------- leftovers of a killed batch


def reap(sub: Submission, grace: float = STOP_GRACE) -> None:
    """Stop the orphaned grade of a killed batch (if it still runs) and remove its Docker objects."""
    running = sub.running or {}
    run_id, pid = running.get("run_id"), running.get("pid")
    if run_id and not isinstance(pid, int):
        pid = _find_grade_process(run_id)  # killed between starting the grade and recording its pid
    if isinstance(pid, int) and run_id and _is_grade_process(pid, run_id):
        stop_process(pid, run_id, None, grace)
    if run_id:
        _cleanup_docker(run_id)
    sub.clear_running()


def stop_process(pid: int, run_id: str, proc: subprocess.Popen | None, grace: float = STOP_GRACE) -> int | None:
    """SIGTERM the grade (it unwinds and removes its containers), SIGKILL its whole group after `grace`."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if proc is not None:
            if proc.poll() is not None:
                break
        elif not _is_grade_process(pid, run_id):
            break
        time.sleep(0.2)
    else:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
    code = proc.wait() if proc is not None else None
    _cleanup_docker(run_id)
    return code


def _is_grade_process(pid: int, run_id: str) -> bool:
    """Is `pid` alive and still the grade of this run (pids are reused)?"""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            if fh.read().rsplit(b")", 1)[-1].split()[0] == b"Z":
                return False  # a zombie has finished
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return f"--run-id={run_id}".encode() in fh.read()
    except FileNotFoundError:
        return False
    except OSError:  # no /proc (macOS): ask ps
        out = subprocess.run(["ps", "-o", "command=", "-p", str(pid)], capture_output=True, text=True)
        return f"--run-id={run_id}" in out.stdout


def _find_grade_process(run_id: str) -> int | None:
    marker = f"--run-id={run_id}".encode()
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if marker in (entry / "cmdline").read_bytes():
                return int(entry.name)
        except OSError:
            continue
    return None


def _cleanup_docker(run_id: str) -> None:
    from ..runtime import cleanup

    with contextlib.suppress(Exception):  # no engine: nothing of this run can be left on it either
        cleanup(run_id)


# ---------------------------------------------------------------- outcome files


def _record_error(sub: Submission, kind: str, message: str, code: int | None) -> None:
    write_json(sub.folder / ERROR_JSON, {"kind": kind, "message": message, "exit_code": code, "finished_at": now()})


def _last_message(log: Path) -> str:
    """The grade's one-line reason (`portfolio-grader: ...`), else the log's last non-empty line."""
    try:
        lines = [ln.strip() for ln in log.read_text(encoding="utf-8", errors="replace").splitlines() if ln.strip()]
    except OSError:
        return "no output"
    lines = lines[lines_since_last_start(lines):]
    for line in reversed(lines):
        if line.startswith("portfolio-grader: "):
            return line.removeprefix("portfolio-grader: ")[:500]
    return (lines[-1][:500] if lines else "no output")


def lines_since_last_start(lines: list[str]) -> int:
    starts = [i for i, ln in enumerate(lines) if ln.startswith("=== ")]
    return starts[-1] + 1 if starts else 0


def _ensure_scorecard(sub: Submission) -> None:
    """A grade killed between result.json and scorecard.html: render the page from the result."""
    result = sub.result_path
    if result is None or (result.parent / "scorecard.html").is_file():
        return
    with contextlib.suppress(Exception):
        from ..report import load_scorecard, write_reports

        write_reports(load_scorecard(result), result.parent)


def _outcome_line(sub: Submission) -> str:
    from .summary import read_result

    result = sub.result_path
    if result is not None:
        data = read_result(result) or {}
        from ..report.verdict import verdict_of_result

        return f"{data.get('score', 0):g}/100 {verdict_of_result(data).headline}"
    error = sub.error or {}
    return f"could not grade: {error.get('message', 'unknown reason')}"
