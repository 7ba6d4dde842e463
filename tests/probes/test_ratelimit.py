"""Probe tests of the rate-limit burst: a limited API, one that declares a limit that counts in headers (every
header form), one whose headers are decorative, one with no limit, and the bounds of the burst itself (count,
time, target)."""

from __future__ import annotations

import time

import pytest
from fastapi import FastAPI

from portfolio_grader.checks import ratelimit

from ..conftest import kinds, make_context, run
from .list_apps import items_app
from .ratelimit_apps import limited_app


def test_an_api_that_answers_429_passes_and_the_burst_stops_there(serve):
    app = items_app("offset", rate_limit=20)
    ctx = make_context(serve(app))
    outcome = run("ratelimit.burst", ctx)
    assert outcome.status == "pass", outcome
    assert "request 21 was refused with 429" in outcome.summary and "Retry-After: 30" in outcome.summary
    burst = [e for e in ctx.prober.exchanges if e.source == "burst"]
    assert len(burst) == 21 and burst[-1].status == 429, "no request after the first 429"
    assert outcome.evidence[-1].response.status == 429


@pytest.mark.parametrize("style, counted", [("x-ratelimit", "x-ratelimit-remaining"), ("draft-7", "ratelimit"),
                                             ("draft-8", "ratelimit default")])
def test_a_declared_limit_that_counts_down_passes_without_a_429(serve, style, counted):
    app = limited_app(style, limit=1000)
    ctx = make_context(serve(app))
    outcome = run("ratelimit.burst", ctx)
    assert outcome.status == "pass", outcome
    burst = [e for e in ctx.prober.exchanges if e.source == "burst"]
    assert len(burst) == ratelimit.MAX_REQUESTS and app.state.refused == 0, "the whole burst, under the limit"
    # the limiter counted every request the grader sent (discovery's GETs included): remaining went down by 99
    first, last = (ratelimit.remaining_values(e.headers)[counted] for e in (burst[0], burst[-1]))
    assert first - last == ratelimit.MAX_REQUESTS - 1
    assert f"declares a limit that counts ({counted} went from {first} to {last}" in outcome.summary
    assert [e.response.headers for e in outcome.evidence] and all(e.curl.startswith("curl ") for e in outcome.evidence)


def test_a_draft8_limit_the_burst_exhausts_is_a_429_pass_with_its_headers(serve):
    app = limited_app("draft-8", limit=30, window=60)
    ctx = make_context(serve(app))
    outcome = run("ratelimit.burst", ctx)
    assert outcome.status == "pass", outcome
    burst = [e for e in ctx.prober.exchanges if e.source == "burst"]
    assert burst[-1].status == 429 and len(burst) <= 31 and app.state.refused == 1, "stops at the first 429"
    assert 'ratelimit: "default";r=0;' in outcome.summary.lower() and "Retry-After: " in outcome.summary


@pytest.mark.parametrize("style", ["x-ratelimit", "draft-7", "draft-8"])
def test_static_ratelimit_headers_are_decorative_and_rate_limit_missing(serve, style):
    ctx = make_context(serve(limited_app(style, limit=1000, static=True)))
    outcome = run("ratelimit.burst", ctx)
    assert outcome.status == "fail" and kinds(outcome) == {"rate_limit_missing"}, outcome
    finding = outcome.findings[0]
    assert "decorative" in finding.message and "never went down (it stayed at 999)" in finding.message
    assert "RateLimit-Remaining goes down" in finding.hint
    assert len([e for e in ctx.prober.exchanges if e.source == "burst"]) == ratelimit.MAX_REQUESTS
    assert all(e.curl.startswith("curl ") for e in finding.evidence)


def test_hard_coded_headers_of_a_list_endpoint_are_decorative(serve):
    outcome = run("ratelimit.burst", make_context(serve(items_app("offset", rate_headers=True))))
    assert outcome.status == "fail" and kinds(outcome) == {"rate_limit_missing"}
    assert "ratelimit-remaining: 990" in outcome.findings[0].message.lower()
    assert "decorative" in outcome.findings[0].message


def test_a_declared_policy_without_a_remaining_count_still_counts_as_declared(serve):
    outcome = run("ratelimit.burst", make_context(serve(limited_app("policy-only", limit=1000))))
    assert outcome.status == "pass", outcome
    assert "declares a limit (ratelimit-policy: 1000;w=60; no remaining count to follow)" in outcome.summary.lower()


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
