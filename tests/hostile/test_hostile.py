"""Hostile submissions: every case ends inside its deadline, with a scorecard that names what happened,
the grader neither crashes nor hangs and stays within MAX_RSS_MB, and nothing it created is left behind.

Each case is a tiny repo (tests/hostile/repos.py) graded by the real CLI in its own process, with small
deadlines (conftest.SUITE_ENV); the cases run concurrently in the `graded` session fixture.
"""

from __future__ import annotations

import json

import pytest

from .conftest import GRADE_DEADLINE, MAX_RSS_MB, WALL_SLACK, Run, leftovers, text_of

pytestmark = pytest.mark.docker


def assert_graded(run: Run, client) -> dict:
    """Exit 0/1 (graded), inside the deadline, a result.json and a scorecard.html, nothing left on the engine."""
    assert run.code in (0, 1), f"exit {run.code}: {run.stderr[-2000:]}"
    assert "Traceback" not in run.stderr, run.stderr[-3000:]
    assert run.seconds <= GRADE_DEADLINE + WALL_SLACK, f"took {run.seconds:.0f} s"
    assert run.maxrss_mb <= MAX_RSS_MB, f"the grader used {run.maxrss_mb:.0f} MB"
    assert run.result is not None and (run.report_dir / "scorecard.html").is_file()
    assert leftovers(client, run.run_id) == []
    return run.result


def notes(result: dict) -> str:
    return "\n".join(result["notes"])


def stage(result: dict, name: str) -> dict:
    return next(s for s in result["stages"] if s["name"] == name)


@pytest.mark.case("fork_bomb")
def test_a_fork_bomb_hits_the_pid_limit_and_the_scorecard_says_so(graded, docker_client):
    result = assert_graded(graded["fork_bomb"], docker_client)
    assert result["runtime"]["status"] in ("start_failed", "container_crashed", "running")
    assert "limit of 64 processes" in result["runtime"]["detail"] + notes(result)


@pytest.mark.case("memory_hog")
def test_a_memory_hog_is_killed_at_its_memory_limit(graded, docker_client):
    result = assert_graded(graded["memory_hog"], docker_client)
    assert result["runtime"]["status"] == "container_crashed"
    assert "killed for using more than 64m of memory" in result["runtime"]["detail"]


@pytest.mark.case("cpu_spin")
def test_a_cpu_spin_is_held_to_its_cpu_share_and_named(graded, docker_client):
    result = assert_graded(graded["cpu_spin"], docker_client)
    assert result["runtime"]["status"] == "running"  # the grade went on: the API still answered
    assert "CPU busy while no request was being made" in notes(result) or "held at its limit" in notes(result)


@pytest.mark.case("log_flood")
def test_a_log_flood_is_named_and_only_its_tail_is_kept(graded, docker_client):
    run = graded["log_flood"]
    result = assert_graded(run, docker_client)
    assert "log flood" in notes(result)
    api_log = next(log for log in result["logs"] if log["name"] == "api")
    assert api_log["truncated"] and len(api_log["text"].encode()) <= 20_000
    assert (run.report_dir / "result.json").stat().st_size < 2_000_000


@pytest.mark.case("never_listens")
def test_a_server_that_never_listens_runs_out_of_its_start_deadline(graded, docker_client):
    result = assert_graded(graded["never_listens"], docker_client)
    assert result["runtime"]["status"] == "start_failed"
    assert "no HTTP answer" in result["runtime"]["detail"] and "within 12 s" in result["runtime"]["detail"]
    assert stage(result, "runtime")["status"] == "timeout"


@pytest.mark.case("crash_after_first")
def test_a_server_that_dies_after_its_first_answer_is_reported_as_crashed(graded, docker_client):
    result = assert_graded(graded["crash_after_first"], docker_client)
    crashed = [f for f in result["findings"] if f["kind"] == "container_crashed"]
    assert crashed and "stopped answering" in crashed[0]["message"]


@pytest.mark.case("big_body")
def test_50_mb_bodies_are_read_only_in_part(graded, docker_client):
    run = graded["big_body"]
    result = assert_graded(run, docker_client)
    assert "larger than 256 KB" in notes(result) and "Content-Length 52428800" in notes(result)
    assert run.maxrss_mb < 250  # 50 MB bodies: neither the Prober nor Schemathesis holds them whole


@pytest.mark.case("drip")
def test_a_body_that_drips_a_byte_a_second_runs_out_of_the_stage_deadlines(graded, docker_client):
    result = assert_graded(graded["drip"], docker_client)
    assert "arrived so slowly" in notes(result)
    timed_out = [s["name"] for s in result["stages"] if s["status"] == "timeout"]
    assert "discover" in timed_out or "checks" in timed_out
    cut = [c for c in result["checks"] if c["status"] == "not_evaluated" and "ran out of" in (c["reason"] or "")]
    assert cut or stage(result, "discover")["status"] == "timeout"


@pytest.mark.case("redirect_loop")
def test_an_infinite_redirect_loop_is_named(graded, docker_client):
    result = assert_graded(graded["redirect_loop"], docker_client)
    assert "a redirect loop" in notes(result)


@pytest.mark.case("binary")
def test_invalid_utf8_and_binary_bodies_are_named_and_rendered(graded, docker_client):
    run = graded["binary"]
    result = assert_graded(run, docker_client)
    assert "not valid UTF-8" in notes(result)
    json.loads((run.report_dir / "result.json").read_text(encoding="utf-8"))  # strict UTF-8 JSON


@pytest.mark.case("recursive_ref")
def test_a_recursive_ref_in_the_spec_is_graded_without_hanging(graded, docker_client):
    result = assert_graded(graded["recursive_ref"], docker_client)
    assert result["api"]["spec_source"] == "served at /openapi.json"
    assert result["api"]["operations"] == 2


@pytest.mark.case("huge_spec")
def test_a_10_mb_spec_is_refused_with_its_size(graded, docker_client):
    result = assert_graded(graded["huge_spec"], docker_client)
    assert "/openapi.json: larger than" in notes(result) and "openapi.json: over 5 MiB" in notes(result)
    assert result["api"]["spec_source"] is None


@pytest.mark.case("missing_base")
def test_a_base_image_that_does_not_exist_fails_the_build_by_name(graded, docker_client):
    result = assert_graded(graded["missing_base"], docker_client)
    assert result["runtime"]["status"] == "build_failed"
    assert "portfolio-grader-hostile/no-such-image:404" in result["runtime"]["detail"]


@pytest.mark.case("too_big")
def test_a_repo_over_the_size_limit_is_refused_with_a_scorecard(graded, docker_client):
    result = assert_graded(graded["too_big"], docker_client)
    assert stage(result, "fetch")["status"] == "failed" and "size limit" in stage(result, "fetch")["detail"]
    assert "over the 200 MiB size limit" in notes(result)
    assert all(c["status"] == "not_evaluated" for c in result["checks"]) and result["score"] == 0


@pytest.mark.case("symlink_escape")
def test_links_out_of_the_repo_never_leak_the_host_file(graded, docker_client, secret_marker):
    run = graded["symlink_escape"]
    result = assert_graded(run, docker_client)
    assert secret_marker not in text_of(run)
    # the build refused to follow the link out of its context, and the scorecard says which step
    assert result["runtime"]["status"] == "build_failed" and "-link" in result["runtime"]["detail"]


@pytest.mark.parametrize("case, refusal", [
    pytest.param("compose_root", "mounts the host's root directory", marks=pytest.mark.case("compose_root")),
    pytest.param("compose_socket", "mounts the Docker socket", marks=pytest.mark.case("compose_socket")),
])
def test_compose_files_that_reach_the_host_are_refused_with_a_clear_message(graded, docker_client, case, refusal):
    result = assert_graded(graded[case], docker_client)
    assert result["runtime"]["status"] == "start_failed"
    assert "the grader did not start the stack" in result["runtime"]["detail"] and refusal in result["runtime"]["detail"]


@pytest.mark.case("compose_privileged")
def test_a_service_asking_for_privilege_runs_unprivileged_with_a_note_and_a_finding(graded, docker_client):
    result = assert_graded(graded["compose_privileged"], docker_client)
    assert result["runtime"]["status"] == "running", result["runtime"]
    assert "asks for `privileged: true`; it ran unprivileged" in notes(result)
    assert "compose_privileged" in {f["kind"] for f in result["findings"]}


def test_the_grader_peak_memory_stays_bounded_across_the_suite(graded):
    peaks = {name: run.maxrss_mb for name, run in graded.items()}
    assert peaks and max(peaks.values()) <= MAX_RSS_MB, peaks
