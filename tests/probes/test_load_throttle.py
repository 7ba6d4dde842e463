"""The load probe against a real limiter: 429s are counted as throttled, apart from errors and latencies, and a
limiter that refuses most of the load leaves latency not evaluated (never a silent pass)."""

from __future__ import annotations

import re

from portfolio_grader.checks import Settings
from portfolio_grader.checks.load import MIN_SERVED, run_load

from ..conftest import kinds, make_context, run
from .ratelimit_apps import allow_first

def context(serve, app, duration: float = 2.0, p95_ms: float = 300):
    ctx = make_context(serve(app))
    ctx.settings = Settings(load_duration=duration, load_concurrency=10, load_max_requests=3000)
    ctx.check_params = {"load.latency": {"p95_ms": p95_ms, "max_error_rate": 0.01}}
    return ctx


def test_run_load_counts_429_as_throttled_not_as_errors_or_latencies(serve):
    app = allow_first(120)
    url = serve(app) + "/health"
    result = run_load(url, {}, concurrency=10, duration=1.5, max_requests=3000, timeout=5)
    assert app.state.refused > 0, "the load outran the limiter"
    assert result.throttled == app.state.refused == result.statuses[429]
    assert result.count == len(result.latencies_ms) == app.state.served == result.statuses[200] == 120
    assert result.errors == 0 and result.error_rate == 0.0
    assert result.sent == result.count + result.throttled


def test_a_throttled_load_with_enough_served_is_judged_on_the_served_requests(serve):
    app = allow_first(200)
    outcome = run("load.latency", context(serve, app))
    assert outcome.status == "pass", outcome
    assert app.state.refused > 0
    assert f"{app.state.refused} throttled (429)" in outcome.summary and "errors 0.0%" in outcome.summary
    # the percentiles are of the served requests only: all the 200s of the load (discovery took a few of the 200)
    served = int(re.search(r"of (\d+) served", outcome.summary).group(1))
    assert f"statuses {{200: {served}, 429: {app.state.refused}}}" in outcome.summary and MIN_SERVED <= served < 200


def test_throttled_answers_do_not_hide_slow_served_ones(serve):
    """Fast 429s are most of the load; the served requests (60 ms each) still set the percentiles."""
    app = allow_first(100, delay_ms=60)
    outcome = run("load.latency", context(serve, app, p95_ms=40))
    assert app.state.refused > app.state.served, "most of the load was throttled"
    assert outcome.status == "fail" and kinds(outcome) == {"latency_slow"}, outcome
    assert "p95 latency" in outcome.findings[0].message and "throttled (429)" in outcome.findings[0].message


def test_a_limiter_that_refuses_most_of_the_load_leaves_latency_not_evaluated(serve):
    app = allow_first(MIN_SERVED - 20)
    outcome = run("load.latency", context(serve, app, duration=1.5))
    assert outcome.status == "not_evaluated", outcome
    served = int(re.search(r"only (\d+) served", outcome.reason).group(1))
    assert 0 < served < MIN_SERVED - 20, "discovery and the sample request took a few"
    assert "rate limiter refused most of the load" in outcome.reason and "exempt the hot read path" in outcome.reason
    assert f"{app.state.refused} throttled (429)" in outcome.reason


def test_no_throttling_says_zero_throttled(serve):
    app = allow_first(10**6)
    outcome = run("load.latency", context(serve, app, duration=1.0))
    assert outcome.status == "pass" and "0 throttled (429)" in outcome.summary and app.state.refused == 0
