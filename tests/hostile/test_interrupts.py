"""Cleanup on every way out: Ctrl-C twice during a build and during a run, SIGTERM, and `portfolio-grader
cleanup` for what a SIGKILLed grader leaves. Each test runs the real CLI in its own process."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from .conftest import SUITE_ENV, leftovers, one_line, run_cli

pytestmark = pytest.mark.docker

SLOW_BUILD = "FROM python:3.12-slim\nRUN sleep 60\nCMD [\"python\", \"-m\", \"http.server\", \"8000\"]\n"
NEVER_LISTENS = "FROM python:3.12-slim\nCMD [\"sleep\", \"infinity\"]\n"


def start_grade(repo: Path, out: Path, run_id: str, **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "portfolio_grader.cli", "grade", str(repo), "--out", str(out), "--run-id", run_id],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, **SUITE_ENV, **env})


def processes_mentioning(text: str) -> list[int]:
    """Pids whose command line mentions `text` (a docker build tagged with the run id, ...)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def repo_with(tmp_path: Path, dockerfile: str) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "Dockerfile").write_text(dockerfile)
    return repo


def finish(proc: subprocess.Popen, timeout: float = 60) -> tuple[int, str]:
    try:
        _, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError("the grader did not exit after the interrupt") from None
    return proc.returncode, stderr.decode("utf-8", "replace")


def test_ctrl_c_twice_during_the_build_still_cleans_up(docker_client, tmp_path):
    run_id = f"hostile-int-build-{secrets.token_hex(3)}"
    proc = start_grade(repo_with(tmp_path, SLOW_BUILD), tmp_path / "out", run_id)
    wait_until(lambda: [p for p in processes_mentioning(run_id) if p != proc.pid], 60, "the docker build to start")
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)  # impatient: the second Ctrl-C must not skip the cleanup
    code, stderr = finish(proc)
    assert code == 130 and "interrupted" in stderr and "Traceback" not in stderr, stderr[-2000:]
    wait_until(lambda: not [p for p in processes_mentioning(run_id)], 15, "the build process to be gone")
    assert leftovers(docker_client, run_id) == []


@pytest.mark.parametrize("signals", [(signal.SIGINT, signal.SIGINT), (signal.SIGTERM, signal.SIGINT)],
                         ids=["ctrl-c-twice", "sigterm-then-ctrl-c"])
def test_an_interrupt_while_the_container_runs_removes_it(docker_client, tmp_path, signals):
    run_id = f"hostile-int-run-{secrets.token_hex(3)}"
    proc = start_grade(repo_with(tmp_path, NEVER_LISTENS), tmp_path / "out", run_id,
                       PORTFOLIO_GRADER_DEADLINE_START="120")
    flt = {"label": f"portfolio-grader.run={run_id}", "status": "running"}
    wait_until(lambda: docker_client.containers.list(filters=flt), 90, "the container to run")
    first, second = signals
    proc.send_signal(first)
    time.sleep(0.1)
    proc.send_signal(second)
    code, stderr = finish(proc)
    assert code == 130 and "interrupted" in stderr and "Traceback" not in stderr, stderr[-2000:]
    assert leftovers(docker_client, run_id) == []


def test_cleanup_removes_what_a_killed_grader_left(docker_client, tmp_path):
    """SIGKILL skips every `finally`: `portfolio-grader cleanup --run` removes the run's objects by label."""
    run_id = f"hostile-kill-{secrets.token_hex(3)}"
    proc = start_grade(repo_with(tmp_path, f"# {run_id}\n{NEVER_LISTENS}"), tmp_path / "out", run_id,
                       PORTFOLIO_GRADER_DEADLINE_START="120")
    flt = {"label": f"portfolio-grader.run={run_id}", "status": "running"}
    wait_until(lambda: docker_client.containers.list(filters=flt), 90, "the container to run")
    proc.kill()
    proc.wait()
    left = leftovers(docker_client, run_id)
    assert any(item.startswith("container") for item in left) and any(item.startswith("network") for item in left)
    run = run_cli(["cleanup", "--run", run_id])
    assert run.code == 0 and "removed container" in run.stdout and "removed network" in run.stdout, run.stdout
    assert leftovers(docker_client, run_id) == []
    again = run_cli(["cleanup", "--run", run_id])
    assert again.code == 0 and "nothing to remove" in again.stdout
    for copy in Path(tempfile.gettempdir()).glob("pg-ws-*/repo/Dockerfile"):  # the killed grade's workspace copy
        if run_id in copy.read_text(errors="replace"):
            shutil.rmtree(copy.parent.parent, ignore_errors=True)


def test_cleanup_without_a_run_removes_every_labelled_object(docker_client):
    """Every object kind carrying the label goes (a private label here: other grades may be running)."""
    label = f"pg-hostile-cleanup-{secrets.token_hex(4)}"
    labels = {label: "1"}
    network = docker_client.networks.create(f"{label}-net", labels=labels)
    volume = docker_client.volumes.create(f"{label}-vol", labels=labels)
    container = docker_client.containers.create("python:3.12-slim", ["sleep", "60"], labels=labels,
                                                 name=f"{label}-c", network=network.name)
    image = docker_client.images.build(fileobj=__import__("io").BytesIO(
        f"FROM python:3.12-slim\nLABEL {label}=1\n".encode()), tag=f"{label}:img", rm=True)[0]
    try:
        run = run_cli(["cleanup", "--label", label])
        assert run.code == 0, run.stderr
        assert f"container {label}-c" in run.stdout and f"network {label}-net" in run.stdout
        assert f"volume {label}-vol" in run.stdout and f"{label}:img" in run.stdout
        flt = {"label": label}
        assert not docker_client.containers.list(all=True, filters=flt) and not docker_client.networks.list(filters=flt)
        assert not docker_client.volumes.list(filters=flt) and not docker_client.images.list(filters=flt)
    finally:
        for remove in (lambda: container.remove(force=True), lambda: network.remove(),
                       lambda: volume.remove(force=True), lambda: docker_client.images.remove(image.id, force=True)):
            try:
                remove()
            except Exception:
                pass


@pytest.mark.parametrize("command", [["grade", "."], ["cleanup"]])
def test_no_docker_engine_is_one_actionable_line_and_exit_2(tmp_path, command):
    (tmp_path / "Dockerfile").write_text(NEVER_LISTENS)
    run = run_cli(command, env={"DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"}, cwd=tmp_path)
    assert run.code == 2 and one_line(run.stderr), run.stderr
    assert "no Docker engine answered" in run.stderr and "DOCKER_HOST" in run.stderr
