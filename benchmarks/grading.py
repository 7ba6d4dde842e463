"""One grade as the benchmark sees it: the `portfolio-grader grade` subprocess, timed, its peak memory read,
and its result.json split into building/starting, the grader's own work and deliberate waits."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

# Checks whose time is mostly a deliberate wait, and what they wait for. The webhook checks share one
# session (memoised by webhooks.delivery, which runs first): the delivery wait and the retry wait are in it.
WAITS = {
    "load.latency": "the bounded load probe (Settings.load_duration)",
    "webhooks.delivery": "webhook delivery + retry waits (one shared session)",
    "webhooks.signature": "webhook signature (reads the shared session)",
    "webhooks.retry": "webhook retry (reads the shared session)",
    "shortener.background_job": "polling until clicks reach the statistics",
    "auth.login_rate_limit": "failed-login burst, then waiting out Retry-After",
    "usage.tracking": "polling until usage counters move",
}
IDLE_CPU_SAMPLE = 1.0  # a single container's CPU is sampled this long after the checks (runtime/docker.py)
BUILD_START_STAGES = ("runtime", "setup", "cleanup")  # the engine's work: build, start, readiness polls, removal


@dataclass
class Grade:
    seconds: float  # wall clock of the whole process
    exit_code: int
    result: dict = field(default_factory=dict)
    cpu_seconds: float = 0.0  # user + system of the grader process and what it waited for
    peak_rss_mb: float = 0.0  # VmHWM of the grader process itself
    tree_peak_rss_mb: float = 0.0  # ru_maxrss over the process and its waited-for children (docker CLI, compose)


def _watch_hwm(pid: int, peak: list[float], done: threading.Event) -> None:
    while not done.is_set():
        try:
            with open(f"/proc/{pid}/status") as fh:
                for line in fh:
                    if line.startswith("VmHWM:"):
                        peak[0] = max(peak[0], int(line.split()[1]) / 1024)
        except OSError:
            return
        done.wait(0.1)


def run_grade(source: Path, tier: str, *, seed: int, out: Path | None = None, extra: tuple[str, ...] = ()) -> Grade:
    """Grade `source` in a subprocess (what a learner runs) and read back its result.json."""
    with tempfile.TemporaryDirectory(prefix="pgbench-grade-") as tmp:
        out = out or Path(tmp)
        cmd = [sys.executable, "-m", "portfolio_grader", "grade", str(source), "--tier", tier, "--out", str(out),
               "--seed", str(seed), "-q", "--exit-zero", *extra]
        started = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        peak, done = [0.0], threading.Event()
        watcher = threading.Thread(target=_watch_hwm, args=(proc.pid, peak, done), daemon=True)
        watcher.start()
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.monotonic() - started
        done.set()
        watcher.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
        results = sorted(out.glob("*/result.json"))
        result = json.loads(results[0].read_text("utf-8")) if results else {}
        return Grade(seconds=seconds, exit_code=proc.returncode, result=result,
                     cpu_seconds=usage.ru_utime + usage.ru_stime, peak_rss_mb=peak[0],
                     tree_peak_rss_mb=usage.ru_maxrss / 1024)


def split(grade: Grade) -> list[tuple[str, str, float]]:
    """(category, name, seconds) rows that add up to the grade's wall time.

    building/starting: the runtime, setup and cleanup stages; deliberate waits: the checks in WAITS;
    the grader's own work: the other stages and checks (Schemathesis named apart), the checks stage's
    time outside any check (making and removing the test users), and the process outside every stage
    (interpreter start, imports, writing the scorecard).
    """
    stages = {s["name"]: s["seconds"] for s in grade.result.get("stages", [])}
    checks = grade.result.get("checks", [])
    rows: list[tuple[str, str, float]] = []
    for name in BUILD_START_STAGES:
        if name in stages:
            rows.append(("building/starting", f"stage {name}", stages[name]))
    for name in ("fetch", "inspect", "discover", "scoring"):
        if name in stages:
            rows.append(("grader's own work", f"stage {name}", stages[name]))
    timed = [c for c in checks if c.get("seconds") is not None]
    if "checks" in stages and not timed:
        rows.append(("grader's own work", "stage checks (no per-check timing recorded)", stages["checks"]))
    beside = [c for c in timed if c.get("alongside")]  # the side lane: its time overlaps the other checks'
    main = [c for c in timed if not c.get("alongside")]
    contract = sum(c["seconds"] for c in main if c["area"] == "contract")
    others = sum(c["seconds"] for c in main if c["area"] != "contract" and c["check"] not in WAITS)
    if timed:
        rows.append(("grader's own work", "contract checks (the Schemathesis run)", contract))
        rows.append(("grader's own work", "other checks (probes)", others))
        gap = max(0.0, stages.get("checks", 0.0) - sum(c["seconds"] for c in main))
        # The checks stage outside the main lane's checks: making the test users, and waiting for the side
        # lane to end; the side lane's share of it is at most its own time (an upper bound, not timed apart).
        side = min(gap, sum(c["seconds"] for c in beside))
        if beside:
            names = ", ".join(f"{c['check']} {c['seconds']:.1f} s" for c in beside)
            rows.append(("deliberate waits", f"side lane, the part the other checks did not cover (at most; "
                                             f"{names} beside them)", side))
        rows.append(("grader's own work", "checks stage outside checks (test users)", gap - side))
    for c in main:
        if c["check"] in WAITS and c["seconds"] >= 0.05:
            rows.append(("deliberate waits", f"{c['check']}: {WAITS[c['check']]}", c["seconds"]))
    outside = max(0.0, grade.seconds - sum(stages.values()))
    runtime = grade.result.get("runtime") or {}
    if runtime.get("kind") == "docker" and runtime.get("status") == "running":  # known from the code, not timed
        sample = min(IDLE_CPU_SAMPLE, outside)
        rows.append(("deliberate waits", f"idle-CPU sample after the checks ({IDLE_CPU_SAMPLE:g} s, fixed in "
                                         "runtime/docker.py; outside the stages)", sample))
        outside -= sample
    rows.append(("grader's own work", "outside the stages (interpreter, imports, sandbox notes, scoring, "
                                      "report files)", outside))
    return rows


def slowest_checks(grade: Grade, count: int = 5) -> list[tuple[str, float]]:
    timed = [(c["check"], c["seconds"]) for c in grade.result.get("checks", []) if c.get("seconds") is not None]
    return sorted(timed, key=lambda item: -item[1])[:count]


def not_evaluated(grade: Grade) -> list[tuple[str, str]]:
    return [(c["check"], c.get("reason") or "") for c in grade.result.get("checks", [])
            if c.get("status") == "not_evaluated"]
