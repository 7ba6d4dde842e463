"""The hostile-submission suite: each case is a tiny repo graded by the real CLI in its own process.

Cases are graded concurrently (HOSTILE_JOBS, default 4) in one session fixture, so the whole suite
takes about as long as its slowest case; each test then asserts on its case's outcome. Deadlines are
small (SUITE_ENV) so that every stage that can run out does so quickly. The grader's peak memory is
read from the kernel (wait4's ru_maxrss) for every run and written to hostile-measurements.json.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.e2e.conftest import docker_client  # noqa: F401 - the engine or a failure in CI

from .repos import cases, make

GRADE_DEADLINE = 90.0  # seconds: the whole grade (PORTFOLIO_GRADER_DEADLINE_GRADE)
WALL_SLACK = 20.0  # interpreter start, report writing and teardown after the grade's deadline
SUITE_ENV = {
    "PORTFOLIO_GRADER_DEADLINE_GRADE": str(GRADE_DEADLINE),
    "PORTFOLIO_GRADER_DEADLINE_BUILD": "60",
    "PORTFOLIO_GRADER_DEADLINE_START": "12",
    "PORTFOLIO_GRADER_DEADLINE_DISCOVER": "15",
    "PORTFOLIO_GRADER_DEADLINE_FAMILY": "15",
    "PORTFOLIO_GRADER_DEADLINE_SETUP": "10",
    "PORTFOLIO_GRADER_DEADLINE_REPORT": "30",
    "NO_COLOR": "1",
    "COLUMNS": "120",
}
MAX_RSS_MB = 400  # the bound the suite holds the grader process to


def pytest_configure(config):
    config.addinivalue_line("markers", "case(name): the hostile case a test asserts on (graded once per session)")


@dataclass
class Run:
    """One `portfolio-grader` process: how it ended, how long it took, how much memory it used."""

    args: list[str]
    code: int
    stdout: str
    stderr: str
    seconds: float
    maxrss_mb: float
    run_id: str | None = None
    out: Path | None = None
    result: dict | None = None
    extra: dict = field(default_factory=dict)

    @property
    def report_dir(self) -> Path | None:
        if self.out is None:
            return None
        found = sorted(self.out.glob("*/result.json"))
        return found[0].parent if found else None


# The CLI, run as `python -m portfolio_grader.cli`, reporting its own peak memory (VmHWM) when it exits.
# (wait4's ru_maxrss would not do: Linux counts the forked copy of this pytest process before exec.)
CLI = """
import atexit, os, runpy, sys
def _peak():
    with open(os.environ["PG_PEAK_FILE"], "w") as out:
        out.write(next(l.split()[1] for l in open("/proc/self/status") if l.startswith("VmHWM")))
atexit.register(_peak)
sys.argv = ["portfolio-grader", *sys.argv[1:]]
runpy.run_module("portfolio_grader.cli", run_name="__main__", alter_sys=True)
"""


def run_cli(args: list[str], *, env: dict[str, str] | None = None, timeout: float = 300,
            cwd: Path | None = None) -> Run:
    """Run the grader CLI with ARGS in its own process; its peak RSS comes from the kernel (VmHWM)."""
    import tempfile

    with tempfile.NamedTemporaryFile(prefix="pg-peak-", delete=False) as handle:
        peak_file = handle.name
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-c", CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, **SUITE_ENV, **(env or {}), "PG_PEAK_FILE": peak_file}, cwd=cwd)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        stdout, stderr = proc.communicate()
        raise AssertionError(f"the grader hung: no exit within {timeout} s ({args})") from None
    try:
        peak_mb = int(Path(peak_file).read_text() or "nan") / 1024
    except ValueError:
        peak_mb = float("nan")
    finally:
        os.unlink(peak_file)
    return Run(args, proc.returncode, stdout.decode("utf-8", "replace"), stderr.decode("utf-8", "replace"),
               time.monotonic() - started, peak_mb)


def leftovers(client, run_id: str, label: str = "portfolio-grader") -> list[str]:
    """Every Docker object this run id's grade could have created that is still there."""
    run = {"label": f"{label}.run={run_id}"}
    project = {"label": f"com.docker.compose.project=pg-{run_id}"}
    found = []
    for flt in (run, project):
        found += [f"container {c.name}" for c in client.containers.list(all=True, filters=flt)]
        found += [f"network {n.name}" for n in client.networks.list(filters=flt)]
        found += [f"volume {v.name}" for v in client.volumes.list(filters=flt)]
    found += [f"image {i.tags or i.short_id}" for i in client.images.list(filters=run)]
    found += [f"image {t}" for i in client.images.list() for t in i.tags if t.endswith(f":{run_id}")]
    return found


@pytest.fixture(scope="session")
def hostile_dir(tmp_path_factory) -> Path:
    parent = tmp_path_factory.mktemp("hostile")
    return parent


@pytest.fixture(scope="session")
def secret_marker(hostile_dir) -> str:
    """A host file outside every repo that a symlink points at; its marker must never appear anywhere."""
    marker = f"PG-HOST-SECRET-{secrets.token_hex(8)}"
    (hostile_dir / "host-secret.txt").write_text(marker + "\n")
    return marker


@pytest.fixture(scope="session")
def graded(request, docker_client, hostile_dir, secret_marker, tmp_path_factory) -> dict[str, Run]:  # noqa: F811
    """Grade every case some collected test asks for, concurrently; {case: Run}."""
    wanted = sorted({m.args[0] for item in request.session.items for m in item.iter_markers("case")})
    all_cases = cases(hostile_dir / "host-secret.txt")
    repos = hostile_dir / "repos"
    out_root = tmp_path_factory.mktemp("hostile-reports")

    def grade(name: str) -> tuple[str, Run]:
        case = all_cases[name]
        root = make(case, repos)
        run_id = f"hostile-{name.replace('_', '-')}-{secrets.token_hex(3)}"
        out = out_root / name
        run = run_cli(["grade", str(root), "--out", str(out), "--max-examples", "2", "--run-id", run_id,
                       *case.args], timeout=GRADE_DEADLINE + WALL_SLACK + 60)
        run.run_id, run.out = run_id, out
        if run.report_dir is not None:
            run.result = json.loads((run.report_dir / "result.json").read_text())
        return name, run

    with ThreadPoolExecutor(max_workers=int(os.environ.get("HOSTILE_JOBS", "4"))) as pool:
        results = dict(pool.map(grade, wanted))
    measurements = {name: {"exit": r.code, "seconds": round(r.seconds, 1), "peak_rss_mb": round(r.maxrss_mb, 1)}
                    for name, r in results.items()}
    path = Path(os.environ.get("HOSTILE_MEASUREMENTS", tmp_path_factory.getbasetemp() / "hostile-measurements.json"))
    path.write_text(json.dumps(measurements, indent=2) + "\n")
    return results


def text_of(run: Run) -> str:
    """Everything the grade wrote for humans: result.json, scorecard.html, the terminal output."""
    parts = [run.stdout, run.stderr]
    if run.report_dir is not None:
        for path in run.report_dir.iterdir():
            if path.is_file():
                parts.append(path.read_bytes().decode("utf-8", "replace"))
    return "\n".join(parts)


def one_line(text: str) -> bool:
    """One message line, the progress lines `grade` writes before it (`12:03:04 fetch started`) aside."""
    return len([line for line in text.strip().splitlines()
                if line.strip() and not re.match(r"\d\d:\d\d:\d\d ", line)]) == 1


RUN_ID_IN_LOG = re.compile(r"run ([0-9a-f]{10}):")
