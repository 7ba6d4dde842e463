"""ownership.bfla on an admin operation that only its summary marks admin-only ("(Only Admins)"), addressed by
username (roster_apps.py): it is judged on an existing, disposable user, after a control with user A's token."""

from __future__ import annotations

from ..conftest import kinds, make_context, run
from .roster_apps import roster_app


def test_a_delete_its_summary_says_only_admins_may_call_is_an_admin_operation_refused_with_the_control(serve):
    ctx = make_context(serve(roster_app()))
    outcome = run("ownership.bfla", ctx)
    assert outcome.status == "warn", (outcome.summary, outcome.reason)  # refused, with 401 where 403 is meant
    assert kinds(outcome) == {"forbidden_answered_401"} and "1/1 admin operation(s) refused" in outcome.summary
    assert outcome.evidence[0].response.status == 200 and "control" in outcome.evidence[0].note
    refused = next(e for e in outcome.evidence if "DELETE" == e.request.method)
    victim = refused.request.url.rsplit("/", 1)[-1]
    assert victim.startswith("pg") and victim not in {u.login_value for u in ctx.identities(2)}  # a disposable user


def test_any_user_deleting_other_users_by_username_is_bfla(serve):
    ctx = make_context(serve(roster_app(open_delete=True)))
    outcome = run("ownership.bfla", ctx)
    assert outcome.status == "fail" and kinds(outcome) == {"bfla"}, (outcome.summary, outcome.reason)
    assert outcome.findings[0].operation == "DELETE /users/v1/{username}"
    a, b = ctx.identities(2)
    for user in (a, b):  # the victim was a disposable user: the test users are still there
        assert ctx.prober.request("GET", "/me", headers=user.headers(ctx.api.auth)).status == 200


def test_a_sign_up_that_answers_500_after_making_the_account_still_gives_test_users(serve):
    """The account exists (its login works): the grade goes on with it, and the 500 itself stays the learner's."""
    ctx = make_context(serve(roster_app(crash_after_signup=True)))
    a, b = ctx.identities(2)
    for user in (a, b):
        assert user.exchanges[0].status == 500
        assert ctx.prober.request("GET", "/me", headers=user.headers(ctx.api.auth)).status == 200
    assert run("ownership.bfla", ctx).status == "warn"  # judged like the sign-up that answers 201


def test_a_sign_up_that_answers_500_and_makes_nothing_gives_no_test_user(serve):
    import pytest

    from portfolio_grader.identities import IdentityError

    app = roster_app()

    @app.middleware("http")
    async def crash(request, call_next):  # a sign-up that fails before it stores anything
        from fastapi.responses import PlainTextResponse
        if request.url.path.endswith("/register"):
            return PlainTextResponse("Internal Server Error", status_code=500)
        return await call_next(request)

    ctx = make_context(serve(app))
    with pytest.raises(IdentityError, match="failed: 500"):
        ctx.identities(1)


def test_a_login_answering_simplejwt_s_refresh_and_access_pair_logs_in_with_the_access_token(serve):
    ctx = make_context(serve(roster_app(simplejwt_login=True)))
    a = ctx.identities(1)[0]
    assert a.token == a.exchanges[-1].json()["access"]
    assert ctx.prober.request("GET", "/me", headers=a.headers(ctx.api.auth)).status == 200


def test_a_weak_password_whose_sign_up_answers_500_but_makes_the_account_is_accepted(serve):
    """'123456' is refused (422, too short); 'password' makes the account, then the sign-up answers 500: its login
    works, so the weak password was accepted."""
    outcome = run("auth.weak_password", make_context(serve(roster_app(crash_after_signup=True))))
    assert outcome.status == "warn" and kinds(outcome) == {"weak_password_accepted"}, (outcome.summary, outcome.reason)
    assert "'password'" in outcome.findings[0].message and "'123456'" not in outcome.findings[0].message
    signup, logged_in = outcome.findings[0].evidence
    assert signup.response.status == 500 and logged_in.response.status == 200 and "logs in" in logged_in.note
