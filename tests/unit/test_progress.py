"""What `grade` shows while it runs (stderr): timestamped lines when not a terminal or in CI, a rich status line
on a terminal, the deadline left on long waits, nothing with -q, each request with -v."""

from __future__ import annotations

import io
import re
import sys
import time

from portfolio_grader.cli import main
from portfolio_grader.progress import Lines, Live, Progress, for_stderr

from ..probes.apps import good_books_app

STAMP = re.compile(r"^\d\d:\d\d:\d\d ", re.MULTILINE)


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _grade(url, tmp_path, *extra) -> int:
    return main(["grade", "--url", url, "--out", str(tmp_path), "--max-examples", "3", *extra])


def test_not_a_terminal_shows_each_stage_and_check_family_as_timestamped_lines(serve, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    url = serve(good_books_app())
    _grade(url, tmp_path)
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if STAMP.match(line)]
    said = [line[9:] for line in lines]
    started = [s.split()[0] for s in said if " started" in s]
    assert started == ["fetch", "inspect", "runtime", "discover", "checks", "cleanup", "scoring"], said
    assert "runtime started (deadline 90 s)" in said  # a live URL: only waited for, within the start deadline
    assert any(re.fullmatch(r"checks ok in [\d.]+ s", s) for s in said), said
    assert any(re.fullmatch(r"checks: crud \(\d+ s of its deadline left\)", s) for s in said), said
    assert not any(" -> " in s for s in said)  # requests only with -v
    assert STAMP.search(captured.out) is None  # the summary on stdout is left as it was


def test_verbose_adds_each_request_and_quiet_says_nothing(serve, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    url = serve(good_books_app())
    _grade(url, tmp_path / "v", "-v")
    err = capsys.readouterr().err
    assert re.search(r"^\d\d:\d\d:\d\d   GET /openapi\.json -> 200 \(\d+ ms\)$", err, re.MULTILINE), err[:2000]
    assert re.search(r"^\d\d:\d\d:\d\d   POST /books -> 201", err, re.MULTILINE)
    _grade(url, tmp_path / "q", "-q")
    assert STAMP.search(capsys.readouterr().err) is None


def test_a_terminal_gets_a_rich_status_and_one_line_per_stage(serve, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    url = serve(good_books_app())
    _grade(url, tmp_path)
    shown = terminal.getvalue()
    assert "\x1b[" in shown  # drawn by rich: colours and cursor movement
    for stage in ("fetch", "runtime", "discover", "checks", "scoring"):
        assert re.search(rf"✓ .*{stage} .*ok in", shown), stage
    assert STAMP.search(shown) is None  # no timestamped log lines on a terminal


def test_which_display_the_stream_and_environment_choose():
    assert type(for_stderr(stream=io.StringIO(), environ={})) is Lines
    assert type(for_stderr(stream=FakeTerminal(), environ={})) is Live
    assert type(for_stderr(stream=FakeTerminal(), environ={"CI": "true"})) is Lines
    assert type(for_stderr(quiet=True, stream=FakeTerminal(), environ={})) is Progress


def test_a_long_wait_is_named_again_with_the_deadline_left():
    stream = io.StringIO()
    with Lines(stream, every=0.2) as progress:
        progress.stage_started("build", 900)
        time.sleep(1.5)
    said = [line[9:] for line in stream.getvalue().splitlines()]
    assert said[0] == "build started (deadline 900 s)"
    assert any(re.fullmatch(r"still running: build [\d.]+ s, 89\d s left", s) for s in said[1:]), said


def test_the_running_check_family_names_its_own_deadline_left():
    progress = Lines(io.StringIO(), every=0)
    progress.stage_started("checks", 1800)
    progress.check_started("auth", "auth.protected", 41.0)
    assert re.fullmatch(r"checks: auth \(auth\.protected\) [\d.]+ s, 4\d s left", progress.now_running())
    progress.stage_ended("checks", "ok", 1.0)
    assert progress.now_running() is None
