"""Sandbox settings, deadline helpers, observations and the Schemathesis body cap, without Docker."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from portfolio_grader.deadlines import Deadlines, GradeClock, run_with_deadline, seconds_text, within
from portfolio_grader.observations import notes
from portfolio_grader.probe import SCAN_LIMIT, Exchange
from portfolio_grader.runtime.sandbox import (
    SandboxConfig,
    limit_notes,
    memory_bytes,
    mentions_read_only,
    workdir_of,
)

# ---------------------------------------------------------------- sandbox settings


def test_sandbox_defaults_env_and_flags_in_that_order():
    assert SandboxConfig() == SandboxConfig(memory="1g", cpus=1.0, pids=256, read_only=True, egress=False)
    env = {"PORTFOLIO_GRADER_MEMORY": "512m", "PORTFOLIO_GRADER_CPUS": "0.5", "PORTFOLIO_GRADER_PIDS": "128",
           "PORTFOLIO_GRADER_READ_ONLY": "0", "PORTFOLIO_GRADER_EGRESS": "yes"}
    config = SandboxConfig.from_env(env)
    assert (config.memory, config.cpus, config.pids, config.read_only, config.egress) == ("512m", 0.5, 128, False, True)
    flagged = config.with_overrides(memory="2g", cpus=None, pids=64)
    assert (flagged.memory, flagged.cpus, flagged.pids) == ("2g", 0.5, 64)
    options = flagged.runtime_options("run1", start_timeout=5, ends=None)
    assert (options.memory, options.pids, options.read_only, options.egress, options.start_timeout) == (
        "2g", 64, False, True, 5)


@pytest.mark.parametrize("values, message", [
    ({"memory": "lots"}, "memory 'lots'"), ({"memory": "1m"}, "at least 6m"), ({"cpus": 0}, "cpus 0"),
    ({"pids": 2}, "pids 2"),
])
def test_bad_sandbox_values_are_refused_with_what_to_give(values, message):
    with pytest.raises(ValueError, match=message):
        SandboxConfig(**values)


def test_bad_limits_on_the_command_line_are_a_usage_error(capsys):
    from portfolio_grader.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["grade", ".", "--memory", "lots"])
    assert exit_info.value.code == 2 and "give a Docker size" in capsys.readouterr().err


def test_memory_sizes_and_workdirs():
    assert memory_bytes("64m") == 64 * 2**20 and memory_bytes("1g") == 2**30 and memory_bytes("x") is None
    assert workdir_of({"Config": {"WorkingDir": "/app"}}) == "/app"
    assert workdir_of({"Config": {"WorkingDir": ""}}) is None and workdir_of({"Config": {"WorkingDir": "/"}}) is None
    assert workdir_of({"Config": {"WorkingDir": "/usr"}}) is None


def test_read_only_errors_are_recognised_in_the_usual_stacks():
    assert "Read-only file system" in mentions_read_only("boot\nOSError: [Errno 30] Read-only file system: '/x'")
    assert mentions_read_only("Error: EROFS: read-only file system, open 'db.json'")
    assert mentions_read_only("sqlite3.OperationalError: attempt to write a readonly database")
    assert mentions_read_only("INFO: Uvicorn running on http://0.0.0.0:8000") is None


def test_limit_notes_name_the_limit_that_was_hit():
    options = SandboxConfig(memory="64m", cpus=0.5, pids=64).runtime_options("r")
    assert "limit of 64 processes" in limit_notes({"pids": 64}, "", options)[0]
    assert "limit of 64 processes" in limit_notes({}, "bash: fork: retry: Resource temporarily unavailable", options)[0]
    assert "all of its 64m of memory" in limit_notes({"memory_max": 64 * 2**20}, "", options)[0]
    assert "0.30 CPU busy while no request" in limit_notes({"idle_cpu": 0.3}, "", options)[0]
    assert "log flood" in limit_notes({"log_rate": 5 * 2**20}, "", options)[0]
    quiet = {"pids": 3, "memory_max": 20 * 2**20, "idle_cpu": 0.001, "log_rate": 100.0, "periods": 50}
    assert limit_notes(quiet, "INFO started", options) == []


# ---------------------------------------------------------------- deadlines


def test_deadlines_from_env_override_only_valid_positive_numbers():
    found = Deadlines.from_env({"PORTFOLIO_GRADER_DEADLINE_GRADE": "90", "PORTFOLIO_GRADER_DEADLINE_BUILD": "x",
                                "PORTFOLIO_GRADER_DEADLINE_FAMILY": "-1"})
    assert found.grade == 90 and found.build == Deadlines().build and found.family == Deadlines().family
    assert seconds_text(2.5) == "2.5 s" and seconds_text(90) == "90 s"


def test_the_grade_clock_caps_each_stage_by_what_is_left():
    clock = GradeClock(Deadlines(grade=10, discover=120, family=3))
    assert 9 < clock.budget("discover") <= 10 and clock.budget("family") == 3
    assert clock.label("discover") == "the grade's 10 s deadline" and clock.label("family") == "its 3 s deadline"


def test_run_with_deadline_returns_raises_and_abandons():
    assert run_with_deadline(lambda: 42, 1, "t").value == 42
    with pytest.raises(ZeroDivisionError):
        run_with_deadline(lambda: 1 / 0, 1, "t")
    started = time.monotonic()
    stuck = run_with_deadline(lambda: time.sleep(5), 0.2, "t", grace=0.1)
    assert stuck.timed_out and stuck.overran and time.monotonic() - started < 1.5


def test_nested_budgets_the_tightest_wins_and_threads_carry_them():
    from portfolio_grader import deadlines

    assert deadlines.remaining() is None
    with within(10, "outer"):
        with within(1, "inner") as inner:
            assert deadlines.binding() is inner
            seen = run_with_deadline(deadlines.remaining, 5, "worker").value  # the worker sees its own 5 s and
            assert seen is not None and seen <= 1  # the inner 1 s it inherited: the tightest wins


# ---------------------------------------------------------------- observations


def exchange(status=200, body=b"{}", headers=None, truncated=False, elapsed_ms=5.0, error=None, path="/x"):
    return Exchange("GET", f"http://127.0.0.1:1{path}", {}, None, status, headers or {}, body, elapsed_ms,
                    error=error, truncated=truncated)


def test_an_ordinary_api_gets_no_observation():
    assert notes([exchange(), exchange(404, b'{"detail":"x"}'), exchange(201)], 10) == []


def test_observations_name_loops_big_slow_binary_and_dead_apis():
    loop = [exchange(302, b"", {"location": "/x"}) for _ in range(4)]
    assert "to itself: a redirect loop" in notes(loop, 10)[0]
    big = [exchange(body=b"A" * SCAN_LIMIT, headers={"content-length": "52428800"}, truncated=True)] * 3
    assert "larger than 256 KB" in notes(big, 10)[0] and "52428800" in notes(big, 10)[0]
    slow = [exchange(body=b"  ", truncated=True, elapsed_ms=10_500)]
    assert "arrived so slowly" in notes(slow, 10)[0]
    binary = [exchange(body=bytes(range(256)))]
    assert "not valid UTF-8" in notes(binary, 10)[0]
    cut_utf8 = [exchange(body=b"A" * (SCAN_LIMIT - 1) + "é".encode()[:1], truncated=True)]  # cut at the limit
    assert not any("UTF-8" in note for note in notes(cut_utf8, 10))
    dead = [exchange(), exchange()] + [exchange(None, b"", error="ConnectError: refused") for _ in range(3)]
    assert "stopped answering after 2 answered requests" in notes(dead, 10)[0]


# ---------------------------------------------------------------- the Schemathesis body cap


class _Big(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        self.send_response(200)
        if self.path == "/drip":
            self.end_headers()
            try:
                for _ in range(30):
                    self.wfile.write(b" ")
                    self.wfile.flush()
                    time.sleep(0.2)
            except OSError:
                pass
            return
        self.send_header("Content-Length", str(8 * 2**20))
        self.end_headers()
        try:
            for _ in range(8):
                self.wfile.write(b"A" * 2**20)
        except OSError:
            pass


def test_schemathesis_reads_at_most_a_mebibyte_and_stops_a_drip_at_its_timeout():
    import requests
    from schemathesis.engine import context
    from schemathesis.transport import requests as transport

    from portfolio_grader.bodycap import MAX_BODY, install

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Big)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        install()
        install()  # idempotent
        url = f"http://127.0.0.1:{server.server_port}"
        big = transport._request(requests.Session(), {"method": "GET", "url": url + "/big", "timeout": 10}, 100)
        assert MAX_BODY <= len(big.content) < 2 * MAX_BODY
        started = time.monotonic()
        drip = transport._request(requests.Session(), {"method": "GET", "url": url + "/drip", "timeout": 1}, 100)
        assert time.monotonic() - started < 2.5 and len(drip.content) < 30
        # the engine's own sessions (its capability probes use them directly) carry the cap as a response hook
        assert any(getattr(hook, "__name__", "") == "cap" for hook in _engine_session_hooks(context))
    finally:
        server.shutdown()


def _engine_session_hooks(context) -> list:
    from schemathesis.config import SchemathesisConfig

    config = SchemathesisConfig.from_dict({}).projects.default
    return context.make_session(config).hooks["response"]
