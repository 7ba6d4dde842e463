"""Probe tests of the forged-token walk over every protected operation (auth.jwt_forgery, checks/jwt_surface.py):
one route that skips signature verification is found on that route, judged by its effect; a correct API passes
with a control per operation; objects the walk made are gone afterwards."""

from __future__ import annotations

import re
import time

import jwt
import pytest

from ..conftest import kinds, make_context, run
from .auth_apps import tasks_app
from .notes_apps import notes_app

pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")


def _token(evidence) -> str:
    return evidence.request.headers["Authorization"].removeprefix("Bearer ")


def _path(url: str) -> str:
    return re.sub(r"^https?://[^/]+", "", url)


def test_a_delete_route_that_alone_skips_the_signature_check_fails_on_that_operation(serve):
    ctx = make_context(serve(notes_app(unverified={"DELETE /projects/{project_id}"})))
    outcome = run("auth.jwt_forgery", ctx)
    assert outcome.status == "fail" and outcome.score == 0
    assert outcome.summary.startswith("7/7 forged tokens refused on GET /projects")  # the first target holds
    assert "accepted on DELETE /projects/{project_id}" in outcome.summary
    assert kinds(outcome) == {"jwt_alg_none_accepted", "jwt_signature_not_verified"}
    assert {f.operation for f in outcome.findings} == {"DELETE /projects/{project_id}"}
    assert all(f.severity == "critical" for f in outcome.findings)

    genuine = ctx.identities(1)[0].token
    finding = next(f for f in outcome.findings if f.kind == "jwt_signature_not_verified")
    assert "GET /projects refuses the same tokens" in finding.message
    control, forged, read_back = finding.evidence[:3]
    assert control.request.method == "DELETE" and control.response.status == 204 and _token(control) == genuine
    assert forged.request.method == "DELETE" and forged.response.status == 204
    assert _token(forged) != genuine and _token(forged).endswith(".")  # the signature stripped
    assert jwt.decode(_token(forged), options={"verify_signature": False})["sub"] == "1"
    assert _token(forged) in forged.curl and forged.curl.startswith("curl")
    # judged by effect: user A's genuine token reads the very object the forged request deleted, and it is gone
    assert read_back.request.method == "GET" and _token(read_back) == genuine and read_back.response.status == 404
    assert _path(read_back.request.url) == _path(forged.request.url)
    as_b = next(e for e in finding.evidence if "name user B" in (e.note or ""))
    assert "user B's fresh object is gone" in as_b.note


def test_a_put_route_that_skips_the_signature_check_is_judged_by_the_change_read_back(serve):
    ctx = make_context(serve(tasks_app(unverified_put=True)))
    outcome = run("auth.jwt_forgery", ctx)
    assert outcome.status == "fail"
    assert {f.operation for f in outcome.findings} == {"PUT /tasks/{task_id}"}
    finding = next(f for f in outcome.findings if f.kind == "jwt_alg_none_accepted")
    control, forged, read_back = finding.evidence[:3]
    assert control.response.status == 200 and "user A's genuine token succeeded" in control.note
    assert jwt.get_unverified_header(_token(forged))["alg"] == "none"
    written = re.search(r"'(pg-w-[0-9a-f]+)'", forged.note).group(1)
    assert written in forged.request.body and written in read_back.response.body  # the forged write, read back as A
    assert read_back.request.method == "GET" and read_back.response.status == 200


def test_the_same_api_fixed_passes_with_a_control_before_each_operation(serve):
    ctx = make_context(serve(notes_app()))
    outcome = run("auth.jwt_forgery", ctx)
    assert outcome.status == "pass", outcome.summary
    assert "the same forgeries on 8 more protected operation(s)" in outcome.summary
    assert "32/32 refused" in outcome.summary
    assert "POST /auth/logout (it may end user A's session, so never sent)" in outcome.summary
    assert "PUT /account (a write outside the collections the grader makes fresh objects in" in outcome.summary
    controls = [e for e in outcome.evidence if (e.note or "").startswith("the control on ")]
    assert controls and all(200 <= e.response.status < 300 for e in controls)

    # every forged request came after a genuine request of the same operation that succeeded
    genuine = ctx.identities(1)[0].token
    seen_ok: set[tuple[str, str]] = set()
    forged_ops: set[tuple[str, str]] = set()
    for exchange in ctx.prober.exchanges:
        token = exchange.request_headers.get("Authorization", "").removeprefix("Bearer ")
        if not token or exchange.source == "cleanup":
            continue
        shape = (exchange.method, re.sub(r"/\d+", "/{}", _path(exchange.url).split("?")[0]))
        if token == genuine and exchange.status is not None and exchange.status < 300:
            seen_ok.add(shape)
        elif token != genuine and token.count(".") == 2 and jwt.decode(token, options={"verify_signature": False}
                                                                       ).get("sub") == "1":
            assert shape in seen_ok, f"{shape} was forged before any control"
            forged_ops.add(shape)
    assert {m for m, _ in forged_ops} == {"GET", "POST", "PATCH", "DELETE"}


def test_an_api_verifying_every_route_passes_and_the_walk_leaves_nothing_behind(serve):
    ctx = make_context(serve(tasks_app()))
    outcome = run("auth.jwt_forgery", ctx)
    assert outcome.status == "pass", outcome.summary
    assert "on 5 more protected operation(s)" in outcome.summary and "20/20 refused" in outcome.summary
    # a control that fails leaves its operation not judged, never passed
    assert "GET /admin/users (the control with user A's genuine token was not served (403))" in outcome.summary
    for user in ctx.identities(2):
        listed = ctx.prober.request("GET", "/tasks", headers=user.headers(ctx.api.auth))
        assert listed.status == 200 and listed.json() == [], (user.label, listed.json())


def test_a_large_api_is_walked_within_the_bound_deletes_included(serve):
    # 54 operations: 21 GETs, 11 POSTs and 9 PUTs come before any DELETE, so a bound taken in order walks none
    ctx = make_context(serve(notes_app(unverified={"DELETE /things0/{thing_id}"}, extra_resources=9)))
    outcome = run("auth.jwt_forgery", ctx)
    assert "the same forgeries on 40 more protected operation(s)" in outcome.summary
    assert "and 9 more (past the bound of 40 operations)" in outcome.summary
    assert {f.operation for f in outcome.findings} == {"DELETE /things0/{thing_id}"}


def test_an_expired_token_accepted_by_one_delete_route_fails_the_lifetime_check_there(serve):
    ctx = make_context(serve(tasks_app(weak_secret=True, expired_ok_on_delete=True)))
    outcome = run("auth.jwt_lifetime", ctx)
    assert outcome.status == "fail" and kinds(outcome) == {"jwt_expired_accepted"}
    assert "are refused on GET /users/me" in outcome.summary  # the first target checks exp and nbf
    (finding,) = outcome.findings
    assert finding.operation == "DELETE /tasks/{task_id}" and finding.severity == "high"
    control, forged, read_back = finding.evidence[:3]
    assert control.response.status == 204 and "genuine token succeeded" in control.note
    claims = jwt.decode(_token(forged), "secret", algorithms=["HS256"], options={"verify_exp": False,
                                                                                  "verify_nbf": False})
    assert claims["exp"] < time.time() or claims.get("nbf", 0) > time.time()
    assert forged.response.status == 204 and read_back.response.status == 404


def test_a_lifetime_checked_on_every_route_passes_after_the_walk(serve):
    outcome = run("auth.jwt_lifetime", make_context(serve(tasks_app(weak_secret=True))))
    assert outcome.status == "pass", outcome.summary
    assert "the same forgeries on 5 more protected operation(s)" in outcome.summary
    assert "10/10 refused" in outcome.summary


def test_on_a_slow_api_the_walk_stops_at_its_share_of_the_deadline_and_says_so(serve):
    from portfolio_grader.deadlines import within

    ctx = make_context(serve(notes_app(extra_resources=9, delay=0.02)))
    ctx.identities(2)  # the users exist before the clock starts, as they do in a grade
    started = time.monotonic()
    with within(8.0, "a test's 8 s deadline") as budget:
        outcome = run("auth.jwt_forgery", ctx)
    assert time.monotonic() - started < 8.0 and not budget.overran
    assert outcome.status == "pass", outcome.summary  # judged on what was walked, not cut off mid-request
    assert "(the walk's share of the auth checks' deadline had run out)" in outcome.summary
