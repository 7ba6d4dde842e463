"""The command line: exit codes, one-line errors, and grading a live URL without building anything."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from portfolio_grader.cli import main

from ..probes.apps import good_books_app


def test_help_and_rubrics(capsys):
    assert main(["rubrics"]) == 0
    listed = capsys.readouterr().out
    assert "beginner" in listed and "intermediate" in listed


def messages(err: str) -> list[str]:
    """stderr without the progress lines (`12:03:04 fetch started`): what the grader had to say."""
    return [line for line in err.strip().splitlines() if line.strip() and not re.match(r"\d\d:\d\d:\d\d ", line)]


def test_an_unreachable_repo_exits_2_without_a_scorecard(tmp_path, capsys):
    code = main(["grade", (tmp_path / "nope").as_uri(), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "could not fetch" in err and len(messages(err)) == 1
    assert not (tmp_path / "out").exists()


def test_an_unknown_rubric_exits_2(tmp_path, capsys):
    code = main(["grade", str(tmp_path), "--tier", "wizard", "--out", str(tmp_path / "out")])
    assert code == 2 and "no rubric 'wizard'" in capsys.readouterr().err


def test_no_docker_engine_exits_2_with_one_actionable_line(tmp_path, monkeypatch, capsys):
    (tmp_path / "Dockerfile").write_text("FROM python:3.12-slim\n")
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    code = main(["grade", str(tmp_path), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(messages(err)) == 1
    assert "Docker" in err and ("start" in err or "DOCKER_HOST" in err)


def test_grading_a_live_url_builds_nothing_and_grades_the_api(serve, tmp_path):
    url = serve(good_books_app())
    code = main(["grade", "--url", url, "--out", str(tmp_path), "--max-examples", "5"])
    result = json.loads(next(tmp_path.glob("*/result.json")).read_text())
    checks = {c["check"]: c for c in result["checks"]}
    assert result["runtime"]["kind"] == "external" and result["source"]["url"] == url
    assert checks["runtime.builds"]["status"] == "not_evaluated"
    assert checks["repo.readme"]["status"] == "not_evaluated"  # no repository to read: never a silent pass
    assert checks["crud.lifecycle"]["status"] == "pass" and checks["contract.no_server_errors"]["status"] == "pass"
    statuses = {c["id"]: c["status"] for c in result["criteria"]}
    assert statuses["runs-in-docker"] == "pass" and statuses["readme"] == "not_evaluated"
    assert code == (0 if result["passed"] else 1)


def test_tier_auto_grades_against_the_highest_tier_whose_gates_hold(serve, tmp_path):
    url = serve(good_books_app())  # a correct CRUD API without any authentication
    main(["grade", "--url", url, "--tier", "auto", "--out", str(tmp_path), "--max-examples", "3"])
    result = json.loads(next(tmp_path.glob("*/result.json")).read_text())
    steps = {s["tier"]: s for s in result["ladder"]}
    assert result["tier"] == "beginner" and steps["beginner"]["status"] == "reached"
    assert steps["intermediate"]["status"] == "missed"
    assert "Protected operations refuse requests without valid credentials" in steps["intermediate"]["missing_gates"]



@pytest.mark.parametrize(("args", "option"), [
    (["--max-examples", "-3"], "--max-examples"), (["--seed", "-1"], "--seed"), (["--cpus", "nan"], "--cpus"),
    (["--pids", "2"], "--pids"), (["--memory", "lots"], "--memory"), (["--fail-under", "140"], "--fail-under"),
])
def test_nonsense_numbers_are_refused_with_the_subcommands_usage(tmp_path, capsys, args, option):
    with pytest.raises(SystemExit) as refused:
        main(["grade", str(tmp_path), "--out", str(tmp_path / "out"), *args])
    err = capsys.readouterr().err
    assert refused.value.code == 2 and option in err and "usage: portfolio-grader grade" in err
    assert not (tmp_path / "out").exists()


def test_a_post_parse_error_prints_the_subcommands_usage(tmp_path, capsys):
    with pytest.raises(SystemExit) as refused:
        main(["grade", "--url", "ftp://example.invalid", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert refused.value.code == 2 and "usage: portfolio-grader grade" in err and "--url" in err


def test_a_url_nothing_answers_at_exits_2_in_one_line_without_a_scorecard(tmp_path, capsys, monkeypatch):
    from portfolio_grader.runtime import external

    from ..conftest import free_port

    monkeypatch.setattr(external, "CONNECT_GRACE", 1.0)  # a refused connection is not tried again for long
    code = main(["grade", "--url", f"http://127.0.0.1:{free_port()}", "--out", str(tmp_path / "out"), "-q"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and not (tmp_path / "out").exists()
    assert len(err) == 1 and "does not answer: nothing accepts connections at 127.0.0.1:" in err[0]


def test_a_listening_deployment_is_not_turned_away_by_the_reachability_check():
    import socket

    from portfolio_grader.runtime.external import unreachable

    with socket.create_server(("127.0.0.1", 0)) as listener:  # accepts, answers no HTTP yet: a host still waking
        assert unreachable(f"http://127.0.0.1:{listener.getsockname()[1]}", grace=1.0) is None
    assert "does not resolve" in unreachable("http://no-such-host.invalid", grace=1.0)


def test_fail_under_exit_zero_and_quiet_decide_the_exit_and_the_output(serve, tmp_path, capsys):
    url = serve(good_books_app())
    base = ["grade", "--url", url, "--max-examples", "3"]
    strict = main([*base, "--out", str(tmp_path / "a"), "--fail-under", "100"])
    result = json.loads(next((tmp_path / "a").glob("*/result.json")).read_text())
    assert strict == (0 if result["passed"] and result["score"] >= 100 else 1)
    capsys.readouterr()
    lenient = main([*base, "--out", str(tmp_path / "b"), "--exit-zero", "-q"])
    out = capsys.readouterr().out.strip().splitlines()
    assert lenient == 0 and len(out) == 1 and "/100" in out[0]


def test_python_dash_m_runs_the_cli():
    ran = subprocess.run([sys.executable, "-m", "portfolio_grader", "rubrics"], capture_output=True, text=True,
                         timeout=60)
    assert ran.returncode == 0 and "beginner" in ran.stdout
