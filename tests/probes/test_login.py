"""Probe tests of the login-hardening checks (rate limit, user enumeration, weak passwords) against the
in-process task API, with form (OAuth2) and JSON logins."""

from __future__ import annotations

import subprocess
import time

import pytest

from portfolio_grader.checks import login as login_checks
from portfolio_grader.checks.login import MAX_ATTEMPTS, _is_refusal, _normalised, _retry_after
from portfolio_grader.identities import login
from portfolio_grader.probe import Exchange

from ..conftest import kinds, make_context, run
from .auth_apps import tasks_app

CHECKS = ("auth.user_enumeration", "auth.weak_password", "auth.login_rate_limit")  # in the order they run


@pytest.fixture
def context(serve):
    return lambda **flags: make_context(serve(tasks_app(**flags)))


def _probed(ctx, since: int) -> list[Exchange]:
    """The requests the check sent (the grader's check that its test user still works is not one of them)."""
    return [e for e in ctx.prober.exchanges[since:] if e.source != "control"]


def _logins(ctx, since: int) -> list[Exchange]:
    path = ctx.api.auth.login.path
    return [e for e in ctx.prober.exchanges[since:] if e.method == "POST" and e.url.endswith(path)]


@pytest.mark.parametrize("json_login", [False, True], ids=["form-login", "json-login"])
def test_a_hardened_login_passes_all_three(context, json_login):
    ctx = context(json_login=json_login)
    assert ctx.api.auth.login.path == ("/auth/login" if json_login else "/auth/token")
    assert ctx.api.auth.login_form is not json_login
    outcomes = {check_id: run(check_id, ctx) for check_id in CHECKS}
    for check_id, outcome in outcomes.items():
        assert outcome.status == "pass", (check_id, outcome)
        assert outcome.evidence and all(e.request and e.response and e.curl for e in outcome.evidence), check_id

    limited = outcomes["auth.login_rate_limit"]
    # the enumeration probe spent 2 of the 5 allowed failures, so the 4th attempt of the burst is refused
    assert "attempt 4 was refused with 429" in limited.summary and "Retry-After" in limited.summary
    assert "recovery was not checked" in limited.summary  # Retry-After ~60 s: longer than the grader waits
    refusal = limited.evidence[-1]
    assert refusal.response.status == 429 and "retry-after" in {k.lower() for k in refusal.response.headers}
    assert "'123456' -> 422; 'password' -> 422" in outcomes["auth.weak_password"].summary


def test_rate_limit_recovery_is_checked_when_retry_after_is_short(context):
    ctx = context(rate_limit_window=2)
    ctx.identities(1)
    started = time.monotonic()
    outcome = run("auth.login_rate_limit", ctx)
    assert outcome.status == "pass", outcome
    assert "attempt 6 was refused with 429" in outcome.summary
    assert "a correct login worked again" in outcome.summary
    assert outcome.evidence[-1].response.status == 200 and "recovered" in outcome.evidence[-1].note
    assert time.monotonic() - started < 8  # burst + a Retry-After of at most 3 s


def test_a_login_limit_used_up_by_earlier_logins_still_counts(context):
    ctx = context()
    user = ctx.identities(1)[0]
    for n in range(5):  # the app allows 5 failed logins per window: earlier probes used them all
        login(ctx.prober, ctx.api.auth, user.login_value, f"earlier-{n}")
    outcome = run("auth.login_rate_limit", ctx)
    assert outcome.status == "pass", outcome
    assert "attempt 1 was refused with 429" in outcome.summary and "earlier login attempts" in outcome.summary
    control = ctx.prober.exchanges[-1]
    assert control.method == "GET" and control.url.endswith("/tasks") and control.status == 200


def test_a_limit_on_all_requests_used_up_before_the_burst_is_not_a_login_verdict(context):
    """No login limit at all, but a limit on every request that earlier traffic used up: the first failed login
    meets a 429 that says nothing about logins, and an ordinary GET shows it."""
    ctx = context(no_rate_limit=True, global_limit=60)
    ctx.identities(1)
    while ctx.prober.request("GET", "/tasks", headers=ctx.auth_headers()).status != 429:
        pass
    outcome = run("auth.login_rate_limit", ctx)
    assert outcome.status == "not_evaluated", outcome
    assert "so was GET /tasks" in outcome.reason and "cannot be told" in outcome.reason


def test_lockout_signalled_by_a_401_body_counts_as_rate_limiting(context):
    ctx = context(json_login=True, lockout_401=True)
    outcome = run("auth.login_rate_limit", ctx)
    assert outcome.status == "pass", outcome
    assert "refused with 401" in outcome.summary and "no Retry-After" in outcome.summary


@pytest.mark.parametrize("json_login", [False, True], ids=["form-login", "json-login"])
def test_unlimited_login_is_reported_within_the_bound(context, json_login):
    ctx = context(no_rate_limit=True, json_login=json_login)
    ctx.identities(1)
    before = len(ctx.prober.exchanges)
    started = time.monotonic()
    outcome = run("auth.login_rate_limit", ctx)
    elapsed = time.monotonic() - started
    assert outcome.status == "fail" and kinds(outcome) == {"login_not_rate_limited"}
    sent = _logins(ctx, before)
    assert len(sent) == len(_probed(ctx, before)) == MAX_ATTEMPTS <= 30
    assert elapsed < 10
    (finding,) = outcome.findings
    assert finding.severity == "medium" and "API4" in finding.message
    assert all(lib in finding.hint for lib in ("slowapi", "express-rate-limit", "flask-limiter"))
    assert finding.evidence[-1].response.status == 401
    replay = subprocess.run(["bash", "-c", finding.evidence[-1].curl], capture_output=True, text=True, timeout=20)
    assert replay.stdout.startswith("HTTP/1.1 401"), replay.stdout[:200]


def test_a_burst_cut_short_by_its_time_budget_is_not_a_verdict(context, monkeypatch):
    monkeypatch.setattr(login_checks, "BURST_SECONDS", 0.005)
    ctx = context(no_rate_limit=True)
    ctx.identities(1)
    before = len(ctx.prober.exchanges)
    outcome = run("auth.login_rate_limit", ctx)
    assert 1 <= len(_logins(ctx, before)) < login_checks.MIN_ANSWERED
    assert outcome.status == "not_evaluated" and "could not judge" in outcome.reason, outcome


@pytest.mark.parametrize("json_login", [False, True], ids=["form-login", "json-login"])
def test_user_enumeration_is_a_warning_that_costs_no_points(context, json_login):
    ctx = context(enumeration=True, json_login=json_login)
    ctx.identities(1)
    before = len(ctx.prober.exchanges)
    outcome = run("auth.user_enumeration", ctx)
    assert len(_probed(ctx, before)) == 2
    assert outcome.status == "warn" and outcome.score == 1.0
    assert kinds(outcome) == {"user_enumeration"}
    (finding,) = outcome.findings
    assert finding.severity == "low" and "404" in finding.message and "401" in finding.message
    assert {e.response.status for e in finding.evidence} == {404, 401}


def test_a_login_that_refuses_with_200_and_a_fail_body_is_judged_by_what_it_says(context):
    """`200 {"status": "fail", "message": ...}` with no token is a refusal: unlimited guessing is reported, and
    different messages for an unknown user and a wrong password are enumeration, though both answers are 200."""
    ctx = context(refuse_with_200=True, no_rate_limit=True, enumeration=True, json_login=True)
    ctx.identities(1)
    limited = run("auth.login_rate_limit", ctx)
    assert limited.status == "fail" and kinds(limited) == {"login_not_rate_limited"}, limited
    assert "(200)" in limited.findings[0].message and "no token and a body saying so" in limited.summary
    enumerated = run("auth.user_enumeration", ctx)
    assert enumerated.status == "warn" and kinds(enumerated) == {"user_enumeration"}, enumerated
    assert "User not found" in enumerated.findings[0].message
    assert {e.response.status for e in enumerated.findings[0].evidence} == {200}


def test_a_login_that_refuses_with_200_but_limits_and_answers_alike_passes(context):
    ctx = context(refuse_with_200=True, json_login=True)
    ctx.identities(1)
    assert run("auth.user_enumeration", ctx).status == "pass"
    limited = run("auth.login_rate_limit", ctx)
    assert limited.status == "pass" and "refused with 429" in limited.summary, limited


def test_weak_passwords_accepted_are_a_warning_with_the_accepted_requests(context):
    ctx = context(weak_password_ok=True)
    outcome = run("auth.weak_password", ctx)
    assert outcome.status == "warn" and outcome.score == 1.0
    assert kinds(outcome) == {"weak_password_accepted"}
    (finding,) = outcome.findings
    assert finding.severity == "low"
    bodies = [e.request.body for e in finding.evidence]
    assert any('"123456"' in b for b in bodies) and any('"password"' in b for b in bodies)
    assert {e.response.status for e in finding.evidence} == {201}
    assert "remain" in outcome.summary


def test_weak_password_accounts_are_deleted_when_the_api_allows_it(context):
    ctx = context(weak_password_ok=True, delete_me=True, json_login=True)
    outcome = run("auth.weak_password", ctx)
    assert outcome.status == "warn" and "deleted the 2 test account(s) with DELETE /users/me" in outcome.summary
    created = [e for e in ctx.prober.exchanges if e.method == "POST" and e.url.endswith("/auth/register")]
    for registration in created:
        email = registration.json()["email"]
        password = "123456" if '"123456"' in registration.request_body else "password"
        assert login(ctx.prober, ctx.api.auth, email, password).status == 401  # the account is gone


def test_refusal_classification():
    def exchange(status, body=b"", headers=None):
        return Exchange("POST", "http://x/login", {}, None, status, headers or {}, body)

    assert _is_refusal(exchange(429)) and _is_refusal(exchange(423))
    assert _is_refusal(exchange(401, b'{"detail": "Account locked, try again later"}'))
    assert _is_refusal(exchange(403, b'{"error": "Too many login attempts"}'))
    assert not _is_refusal(exchange(401, b'{"detail": "Incorrect password, try again"}'))
    assert not _is_refusal(exchange(500, b"too many connections"))  # a crash is not a rate limit
    assert not _is_refusal(exchange(503, b"", {"Retry-After": "2"}))
    assert _retry_after(exchange(429, headers={"Retry-After": "3"})) == 3
    assert _retry_after(exchange(429, headers={"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"})) == 0
    assert _retry_after(exchange(429)) is None


def test_error_comparison_ignores_echoed_input_and_volatile_fields():
    def exchange(body: str):
        return Exchange("POST", "http://x/login", {}, None, 401, {"content-type": "application/json"}, body.encode())

    a = exchange('{"error": "Invalid credentials for a@x.io", "timestamp": "2026-01-01T00:00:00", "requestId": "1"}')
    b = exchange('{"error": "invalid credentials for b@x.io", "timestamp": "2026-01-01T00:00:09", "requestId": "2"}')
    assert _normalised(a, ("a@x.io",)) == _normalised(b, ("b@x.io",))
    c = exchange('{"error": "Wrong password"}')
    d = exchange('{"error": "No account with this email"}')
    assert _normalised(c, ()) != _normalised(d, ())
    coded = [exchange(f'{{"error": "x", "code": {code}}}') for code in (1001, 1002)]
    assert _normalised(coded[0], ()) != _normalised(coded[1], ())  # error codes tell the cases apart too


def test_test_users_are_deleted_when_the_api_allows_it(serve):
    ctx = make_context(serve(tasks_app(delete_me=True)))
    users = ctx.identities(2)
    assert ctx.remove_test_users() == "2 of 2 test users deleted with DELETE /users/me"
    gone = ctx.prober.request("GET", "/users/me", headers=users[0].headers(ctx.api.auth))
    assert gone.status == 401

    kept = make_context(serve(tasks_app()))
    kept.identities(1)
    assert "remain in the API" in kept.remove_test_users()
