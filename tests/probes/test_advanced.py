"""Advanced-tier probes (redirects, background job, health, metrics, logs, load) against a real in-process
shortener, each kind with its pass and its fail case."""

from __future__ import annotations

import time

import pytest

from portfolio_grader.checks import Settings
from portfolio_grader.models import Manifest, RepoFacts

from ..conftest import kinds, make_context, run
from .advanced_apps import ShortenerState, shortener_app

LOAD = Settings(max_examples=5, load_duration=1.5, load_concurrency=10, load_max_requests=400)
THRESHOLDS = {"load.latency": {"p95_ms": 300, "max_error_rate": 0.01}, "shortener.background_job": {"deadline_s": 3}}


def context(serve, facts=None, state: ShortenerState | None = None, **flaws):
    state = state if state is not None else ShortenerState()
    ctx = make_context(serve(shortener_app(state=state, **flaws)), facts)
    ctx.settings, ctx.check_params = LOAD, THRESHOLDS
    ctx.logs = lambda: "\n".join(state.log)
    return ctx


# ---------------------------------------------------------------- redirects


def test_redirect_passes_with_302_and_location_and_404_for_unknown(serve):
    outcome = run("shortener.redirect", context(serve))
    assert outcome.status == "pass", outcome
    assert "POST /links" in outcome.summary and "GET /{code}" in outcome.summary
    assert any(e.response.status == 302 and e.response.headers.get("location", "").startswith("https://example.com/")
               for e in outcome.evidence)


@pytest.mark.parametrize("status", [301, 307, 308])
def test_every_redirect_status_is_right(serve, status):
    assert run("shortener.redirect", context(serve, status=status)).status == "pass"


@pytest.mark.parametrize("flaw", [{"unknown_500": True}, {"status": 200}, {"no_location": True}])
def test_redirect_wrong(serve, flaw):
    outcome = run("shortener.redirect", context(serve, **flaw))
    assert outcome.status == "fail" and kinds(outcome) == {"redirect_wrong"}
    assert outcome.score == 0.5
    assert all(e.curl.startswith("curl ") for f in outcome.findings for e in f.evidence)
    if "unknown_500" in flaw:
        assert "crashed 500 instead of 404" in outcome.findings[0].message


def test_redirect_not_applicable_without_a_shortener_names_the_manifest_lines(serve):
    from .auth_apps import tasks_app

    ctx = make_context(serve(tasks_app()))
    outcome = run("shortener.redirect", ctx)
    # the advanced rubric turns this into a not_evaluated criterion; the capstone one drops it from the grade
    assert outcome.status == "not_applicable" and "no shortener-like operation" in outcome.reason
    assert "shortener:" in outcome.manifest_hint and "redirect: GET /{code}" in outcome.manifest_hint
    assert run("shortener.background_job", ctx).status == "not_applicable"


def test_manifest_names_an_undocumented_redirect(serve):
    facts = RepoFacts(manifest=Manifest.model_validate({"shortener": {"redirect": "GET /{code}"}}))
    ctx = context(serve, facts)
    assert run("shortener.redirect", ctx).status == "pass"
    assert any("(manifest)" in part for part in ctx._memo["shortener"].found)


# ---------------------------------------------------------------- background job


def test_background_job_counts_clicks_within_the_deadline(serve):
    outcome = run("shortener.background_job", context(serve))
    assert outcome.status == "pass", outcome
    assert "3 redirects" in outcome.summary and "`clicks`" in outcome.summary


def test_background_job_missing_when_no_worker_consumes_the_clicks(serve):
    started = time.monotonic()
    outcome = run("shortener.background_job", context(serve, no_worker=True))
    assert outcome.status == "fail" and kinds(outcome) == {"background_job_missing"}
    assert 3 <= time.monotonic() - started < 8, "waits for the rubric's deadline, and no longer"
    assert "went from 0 to 0" in outcome.findings[0].message


# ---------------------------------------------------------------- health, metrics, logs


def test_health_reports_dependencies(serve):
    outcome = run("observability.health", context(serve))
    assert outcome.status == "pass" and "database" in outcome.summary and "redis" in outcome.summary


def test_health_without_dependencies_is_reported(serve):
    outcome = run("observability.health", context(serve, health_deps=False))
    assert outcome.status == "fail" and kinds(outcome) == {"health_missing"} and outcome.score == 0.5


def test_health_missing_entirely(serve):
    from .auth_apps import tasks_app

    outcome = run("observability.health", make_context(serve(tasks_app())))
    assert kinds(outcome) == {"health_missing"} and outcome.score == 0.0
    assert "/health" in outcome.findings[0].message


def test_metrics_in_prometheus_format(serve):
    outcome = run("observability.metrics", context(serve))
    assert outcome.status == "pass" and "2 typed metric families" in outcome.summary


@pytest.mark.parametrize("metrics", ["json", "none"])
def test_metrics_missing(serve, metrics):
    outcome = run("observability.metrics", context(serve, metrics=metrics))
    assert outcome.status == "fail" and kinds(outcome) == {"metrics_missing"}
    assert ("not in the Prometheus text format" if metrics == "json" else "No metrics endpoint") in outcome.summary


def test_json_logs_pass(serve):
    ctx = context(serve)
    run("observability.health", ctx)  # some traffic to log
    outcome = run("observability.logs", ctx)
    assert outcome.status == "pass", outcome
    assert outcome.evidence[0].curl and outcome.evidence[0].excerpt.startswith("{")


def test_plain_logs_are_unstructured(serve):
    ctx = context(serve, json_logs=False)
    run("observability.health", ctx)
    outcome = run("observability.logs", ctx)
    assert outcome.status == "fail" and kinds(outcome) == {"logs_unstructured"}
    assert "INFO:" in outcome.findings[0].evidence[0].excerpt


def test_logs_not_evaluated_without_a_log_source(serve):
    ctx = context(serve)
    ctx.logs = None  # an external URL: no container to read
    assert run("observability.logs", ctx).status == "not_evaluated"


# ---------------------------------------------------------------- load


def test_latency_under_load_passes_and_stays_within_its_bounds(serve):
    state = ShortenerState()
    ctx = context(serve, state=state)
    started = time.monotonic()
    outcome = run("load.latency", ctx)
    took = time.monotonic() - started
    assert outcome.status == "pass", outcome
    assert took < LOAD.load_duration + 3, "the probe ends at its duration"
    # every load request reached the service under grade (the redirects it logged), and no more than the bound
    redirects = sum('"status": 302' in line for line in state.log) - 1  # less the sample request
    assert f"{redirects} GET requests" in outcome.summary and 10 <= redirects <= LOAD.load_max_requests
    assert "p50" in outcome.summary and "p95" in outcome.summary and "p99" in outcome.summary
    assert outcome.evidence[0].curl.startswith("seq ") and "xargs -P 10" in outcome.evidence[0].curl


def test_load_stops_at_the_request_bound(serve):
    state = ShortenerState()
    ctx = context(serve, state=state)
    ctx.settings = Settings(load_duration=10, load_concurrency=10, load_max_requests=50)
    started = time.monotonic()
    outcome = run("load.latency", ctx)
    assert time.monotonic() - started < 5
    redirects = [line for line in state.log if '"status": 302' in line]
    assert len(redirects) == 50 + 1 and "50 GET requests" in outcome.summary  # the load plus one sample


def test_latency_slow_when_the_handler_blocks(serve):
    outcome = run("load.latency", context(serve, block_ms=60))
    assert outcome.status == "fail" and kinds(outcome) == {"latency_slow"}
    assert "p95 latency" in outcome.findings[0].message


def test_latency_slow_on_errors(serve):
    outcome = run("load.latency", context(serve, error_every=5))
    assert kinds(outcome) == {"latency_slow"} and "failed" in outcome.findings[0].message


def test_load_needs_thresholds_from_the_rubric(serve):
    ctx = context(serve)
    ctx.check_params = {}
    outcome = run("load.latency", ctx)
    assert outcome.status == "not_evaluated" and "p95_ms" in outcome.reason
