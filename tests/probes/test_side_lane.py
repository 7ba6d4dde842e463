"""The side lane against real in-process servers: checks that deliberately wait run beside the others, end
before the closing checks, keep the grade's deadline, and number their findings as if run in order; and the
webhook retry probe, which waits there, is not fooled by the other checks' events."""

from __future__ import annotations

import time

from flask import Flask, request

from portfolio_grader.checks.registry import SIDE_LANE_ENDS_AT, check, run_checks
from portfolio_grader.deadlines import within

from ..conftest import kinds, make_context
from .advanced_apps import tenant_app
from .test_deadlines import context

WAIT = 3.0  # the waiter's answer; the first check's takes a third of it
_times: dict[str, tuple[float, float]] = {}


def sleepy_app() -> Flask:
    app = Flask("sleepy")

    @app.get("/wait")
    def wait():
        time.sleep(float(request.args.get("s", WAIT)))
        return {"ok": True}

    @app.get("/fast")
    def fast():
        return {"ok": True}

    return app


def _timed(name: str, path: str, ctx, *, finding: bool = False):
    started = time.monotonic()
    exchange = ctx.prober.request("GET", path)
    _times[name] = (started, time.monotonic())
    findings = [ctx.fail("test_side_lane_kind", "low", f"{name} saw something",
                         evidence=[exchange.evidence(name)])] if finding else []
    return ctx.verdict(f"{name} answered {exchange.status}", findings, [exchange.evidence(name)])


# Checks registered for these tests only: run_checks runs only the ids it is given.
@check("test_side_lane.waiter", area="t-wait", title="waits for something", order=10, waits="a 3 s answer")
def _waiter(ctx):
    return _timed("waiter", "/wait", ctx, finding=True)


@check("test_side_lane.first", area="t-main", title="a slow check that runs first", order=0)
def _first(ctx):
    return _timed("first", f"/wait?s={WAIT / 3}", ctx, finding=True)


@check("test_side_lane.later", area="t-main", title="a fast check after the waiter's order", order=20)
def _later(ctx):
    return _timed("later", "/fast", ctx, finding=True)


@check("test_side_lane.closing", area="t-close", title="judges the whole grade", order=SIDE_LANE_ENDS_AT)
def _closing(ctx):
    return _timed("closing", "/fast", ctx)


IDS = ["test_side_lane.first", "test_side_lane.waiter", "test_side_lane.later", "test_side_lane.closing"]


def test_a_waiting_check_runs_beside_the_others_and_ends_before_the_closing_checks(serve):
    ctx = context(serve(sleepy_app()), family=30)
    started = time.monotonic()
    first, waiter, later, closing = run_checks(IDS, ctx)
    took = time.monotonic() - started
    assert all(o.status == "fail" for o in (first, waiter, later)) and closing.status == "pass"
    assert took < WAIT * 4 / 3, f"{took:.1f} s: the waiter's {WAIT:g} s ran after the first check, not beside it"
    assert waiter.alongside and not (first.alongside or later.alongside or closing.alongside)
    assert _times["waiter"][0] < _times["first"][1], "the waiter began while the first check still ran"
    assert _times["later"][0] < _times["waiter"][1], "a later check did not wait for the waiter"
    assert _times["closing"][0] >= _times["waiter"][1], "the closing check ran before the side lane ended"


def test_findings_are_numbered_in_check_order_whatever_the_lanes_timing(serve):
    ctx = context(serve(sleepy_app()), family=30)
    first, waiter, later, _ = run_checks(IDS, ctx)
    assert _times["later"][1] < _times["waiter"][1]  # made its finding before the waiter did
    assert [o.findings[0].id for o in (first, waiter, later)] == ["F001", "F002", "F003"]


def test_past_the_grades_deadline_the_side_lane_runs_nothing_either(serve):
    ctx = context(serve(sleepy_app()), family=30)
    with within(0.0, "the grade's 1 s deadline"):
        outcomes = run_checks(IDS, ctx)
    assert all(o.status == "not_evaluated" and "had passed" in o.reason for o in outcomes)


# ---------------------------------------------------------------- the webhook retry, waiting beside other checks

FAST = {"webhooks.delivery": {"deadline_s": 3}, "webhooks.retry": {"deadline_s": 4}}


@check("test_side_lane.busy", area="t-busy", title="creates projects while the webhook probe waits", order=0)
def _busy(ctx):
    """Another check's work: user A's projects, whose events the API (flaw `broadcast`) sends to every hook."""
    headers = ctx.identities(1)[0].headers(ctx.api.auth)
    made = []
    ends = time.monotonic() + 6
    while time.monotonic() < ends:
        made.append(ctx.prober.request("POST", "/projects", headers=headers, json={"name": "busy"}).status)
        time.sleep(0.3)
    return ctx.verdict(f"made {made.count(201)} projects")


def _retry_beside_busy(serve, **flaws):
    ctx = make_context(serve(tenant_app(broadcast=True, thin_events=True, **flaws)))
    ctx.check_params = FAST
    outcomes = run_checks(["test_side_lane.busy", "webhooks.delivery", "webhooks.retry"], ctx)
    return {o.check: o for o in outcomes}


def test_other_checks_events_do_not_pass_for_a_retry(serve):
    """Events that name their object by id only, and other tenants' events reach the grader's hook: without a
    retry of the grader's own event the probe fails, however many other deliveries arrive meanwhile."""
    outcomes = _retry_beside_busy(serve, no_retry=True)
    assert outcomes["test_side_lane.busy"].status == "pass", outcomes["test_side_lane.busy"]
    assert outcomes["webhooks.delivery"].status == "pass", outcomes["webhooks.delivery"]
    retry = outcomes["webhooks.retry"]
    assert retry.alongside and retry.status == "fail" and kinds(retry) == {"webhook_no_retry"}, retry


def test_a_retry_named_by_id_only_passes_beside_other_checks(serve):
    retry = _retry_beside_busy(serve)["webhooks.retry"]
    assert retry.status == "pass", retry
    assert [e.response.status for e in retry.evidence[1:3]] == [500, 200]

