"""Deadlines against real in-process servers: a check family that runs out is reported, the rest goes on,
and a whole grade of a hostile live URL ends inside its deadline with the overrun stages named."""

from __future__ import annotations

import time

import pytest
from flask import Flask, Response

from portfolio_grader.checks import CheckContext, Settings
from portfolio_grader.checks.registry import REGISTRY, check, run_checks
from portfolio_grader.deadlines import Deadlines, within
from portfolio_grader.models import ApiModel, RepoFacts, RunningService, Source, Workspace
from portfolio_grader.pipeline import GradeRequest, grade
from portfolio_grader.probe import Prober


def slow_app() -> Flask:
    app = Flask("slow")

    @app.get("/fast")
    def fast():
        return {"ok": True}

    @app.get("/slow")
    def slow():
        time.sleep(4)
        return {"ok": True}

    @app.route("/", defaults={"path": ""}, methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    @app.route("/<path:path>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    def drip(path):
        def body():
            for _ in range(120):  # a byte a second for two minutes
                yield b" "
                time.sleep(1)
        return Response(body(), content_type="application/json")

    return app


# Checks registered for these tests only: run_checks runs only the ids it is given.
@check("test_deadlines.slow", area="t-slow", title="three slow requests")
def _slow(ctx):
    for _ in range(3):
        ctx.prober.request("GET", "/slow")
    return ctx.verdict("answered")


@check("test_deadlines.same_family", area="t-slow", title="a fast check after the slow one, same family")
def _same_family(ctx):
    ctx.prober.request("GET", "/fast")
    return ctx.verdict("answered")


@check("test_deadlines.other_family", area="t-fast", title="a fast check of another family")
def _other_family(ctx):
    exchange = ctx.prober.request("GET", "/fast")
    return ctx.verdict("answered", evidence=[exchange.evidence("fast")])


@check("test_deadlines.stuck", area="t-stuck", title="a check that ignores every deadline")
def _stuck(ctx):
    time.sleep(30)  # CPU-bound or blocked outside the Prober: only the worker thread's deadline stops it
    return ctx.verdict("never")


IDS = ["test_deadlines.slow", "test_deadlines.same_family", "test_deadlines.other_family"]


def context(url: str, family: float, **deadlines):
    """A context without discovery (the app's catch-all route drips: discovery is tested with the pipeline)."""
    return CheckContext(workspace=Workspace(name="t", source=Source()), facts=RepoFacts(),
                        service=RunningService(kind="external", base_url=url, status="running"), api=ApiModel(),
                        prober=Prober(url), settings=Settings(deadlines=Deadlines(family=family, **deadlines)))


def test_a_family_that_runs_out_is_not_evaluated_and_the_other_families_still_run(serve):
    ctx = context(serve(slow_app()), family=2)
    started = time.monotonic()
    slow, same, other = run_checks(IDS, ctx)
    assert time.monotonic() - started < 8  # 2 s family deadline + grace, not 3 x 4 s
    assert slow.status == "not_evaluated" and "ran out of the 't-slow' check family's 2 s deadline" in slow.reason
    assert same.status == "not_evaluated" and "ran out of its 2 s deadline" in same.reason
    assert other.status == "pass" and other.evidence


def test_a_check_that_ignores_its_deadline_is_abandoned_not_waited_for(serve):
    ctx = context(serve(slow_app()), family=1)
    started = time.monotonic()
    [stuck, other] = run_checks(["test_deadlines.stuck", "test_deadlines.other_family"], ctx)
    assert time.monotonic() - started < 7
    assert stuck.status == "not_evaluated" and "ran out of" in stuck.reason
    assert other.status == "pass"


def test_past_the_grades_deadline_no_check_runs(serve):
    ctx = context(serve(slow_app()), family=60)
    with within(0.0, "the grade's 1 s deadline"):
        [other] = run_checks(["test_deadlines.other_family"], ctx)
    assert other.status == "not_evaluated" and other.reason == "not run: the grade's 1 s deadline had passed"


def test_the_prober_clamps_requests_to_the_deadline_and_refuses_after_it(serve):
    prober = Prober(serve(slow_app()), timeout=10)
    with within(1.0, "a 1 s deadline") as budget:
        started = time.monotonic()
        dripping = prober.request("GET", "/drip")
        # cut at the deadline: mid-body (truncated) or, when the next byte is due just after it, by the read timeout
        cut = dripping.truncated or (dripping.status is None and "Timeout" in (dripping.error or ""))
        assert time.monotonic() - started < 2.5 and cut and budget.overran, dripping
        refused = prober.request("GET", "/fast")
    assert refused.status is None and "deadline had passed" in refused.error
    assert prober.request("GET", "/fast").status == 200  # outside the deadline: business as usual


def test_a_whole_grade_of_a_dripping_api_ends_inside_its_deadline_and_names_what_ran_out(serve):
    url = serve(slow_app())
    settings = Settings(max_examples=2, request_timeout=3,
                        deadlines=Deadlines(grade=20, discover=4, family=3, start=5))
    started = time.monotonic()
    scorecard = grade(GradeRequest(url=url, tier="beginner", settings=settings))
    assert time.monotonic() - started < 20 + 8
    stages = {s.name: s for s in scorecard.stages}
    assert stages["discover"].status == "timeout" and "deadline" in stages["discover"].detail
    assert any("arrived so slowly" in note for note in scorecard.notes)
    assert stages["checks"].status == "timeout" or all(c.status != "pass" for c in scorecard.checks
                                                       if c.area in ("contract", "crud", "errors"))


@pytest.fixture(autouse=True, scope="module")
def _forget_test_checks():
    yield
    for key in [k for k in REGISTRY if k.startswith("test_deadlines.")]:
        REGISTRY.pop(key)
