"""Probe tests of the rate-limit burst: a limited API, one that declares its limit in headers, one with no limit,
and the bounds of the burst itself (count, time, target)."""

from __future__ import annotations

import time

from fastapi import FastAPI

from portfolio_grader.checks import ratelimit

from ..conftest import kinds, make_context, run
from .list_apps import items_app


def test_an_api_that_answers_429_passes_and_the_burst_stops_there(serve):
    app = items_app("offset", rate_limit=20)
    ctx = make_context(serve(app))
    outcome = run("ratelimit.burst", ctx)
    assert outcome.status == "pass", outcome
    assert "request 21 was refused with 429" in outcome.summary and "Retry-After: 30" in outcome.summary
    burst = [e for e in ctx.prober.exchanges if e.source == "burst"]
    assert len(burst) == 21 and burst[-1].status == 429, "no request after the first 429"
    assert outcome.evidence[-1].response.status == 429


def test_declared_ratelimit_headers_pass_without_a_429(serve):
    outcome = run("ratelimit.burst", make_context(serve(items_app("offset", rate_headers=True))))
    assert outcome.status == "pass", outcome
    assert "declares a limit (ratelimit-limit: 1000" in outcome.summary.lower()


def test_an_unlimited_api_is_rate_limit_missing_within_the_bounds(serve):
    ctx = make_context(serve(items_app("offset")))
    started = time.monotonic()
    outcome = run("ratelimit.burst", ctx)
    elapsed = time.monotonic() - started
    assert outcome.status == "fail" and kinds(outcome) == {"rate_limit_missing"}
    finding = outcome.findings[0]
    assert finding.operation == "GET /items" and finding.evidence[-1].curl.startswith("curl ")
    burst = [e for e in ctx.prober.exchanges if e.source == "burst"]
    assert len(burst) == ratelimit.MAX_REQUESTS <= 100
    assert elapsed < ratelimit.BURST_SECONDS + 2
    assert all(e.url.startswith(ctx.prober.base_url) for e in ctx.prober.exchanges)


def test_a_slow_api_stops_the_burst_at_its_time_bound_and_is_not_judged(serve, monkeypatch):
    monkeypatch.setattr(ratelimit, "BURST_SECONDS", 1.5)
    app = FastAPI()

    @app.get("/reports")
    def reports():
        time.sleep(0.1)
        return []

    ctx = make_context(serve(app))
    started = time.monotonic()
    outcome = run("ratelimit.burst", ctx)
    assert time.monotonic() - started < 1.5 + 0.5
    assert outcome.status == "not_evaluated" and "could not judge" in outcome.reason
    assert len([e for e in ctx.prober.exchanges if e.source == "burst"]) < ratelimit.MIN_ANSWERED


def test_docs_and_health_are_not_burst_targets(serve):
    app = FastAPI()

    @app.get("/health")
    def health():
        return {"ok": True}

    outcome = run("ratelimit.burst", make_context(serve(app)))
    assert outcome.status == "not_evaluated" and "no ordinary GET" in outcome.reason
