"""Cookie sessions with CSRF protection are graded like token APIs: the grader keeps no cookie jar (a request
without credentials carries none), sends each user's session cookie with its CSRF cookie, and the CSRF token in
the header each framework reads (Django's double submit, csurf's token from its endpoint)."""

from __future__ import annotations

import pytest

from portfolio_grader.identities import set_cookies
from portfolio_grader.probe import Exchange

from ..conftest import kinds, make_context, run
from .session_apps import session_notes_app


@pytest.mark.parametrize("shape", ["django", "csurf"])
def test_a_csrf_protected_session_api_is_graded_like_a_token_one(serve, shape):
    ctx = make_context(serve(session_notes_app(shape)))
    assert ctx.api.auth.send_header == "Cookie"
    crud = run("crud.lifecycle", ctx)
    assert crud.status == "pass", crud
    required = run("auth.required", ctx)
    assert required.status == "pass", required  # no session: 403 (the anonymous request carried no cookie)
    assert run("ownership.bola", ctx).status == "pass"


@pytest.mark.parametrize("shape", ["django", "csurf"])
def test_bola_behind_a_csrf_protected_session_is_found(serve, shape):
    outcome = run("ownership.bola", make_context(serve(session_notes_app(shape, owner_check=False))))
    assert outcome.status == "fail" and {"bola_read", "bola_write"} <= kinds(outcome), outcome


def test_a_request_without_credentials_carries_no_cookie_an_earlier_answer_set(serve):
    ctx = make_context(serve(session_notes_app()))
    [user] = ctx.identities(1)
    assert ctx.prober.request("GET", "/api/notes", headers=user.headers(ctx.api.auth)).status == 200
    anonymous = ctx.prober.request("GET", "/api/notes")
    assert anonymous.status == 403 and "cookie" not in {k.lower() for k in anonymous.request_headers}


def test_set_cookies_splits_folded_headers_at_new_names_only():
    folded = ("sessionid=abc; expires=Thu, 01 Jan 2027 00:00:00 GMT; HttpOnly; Path=/, "
              "csrftoken=XyZ; Max-Age=31449600; Path=/")
    exchange = Exchange("POST", "http://127.0.0.1/login", {}, None, 200, {"set-cookie": folded}, b"", 1.0)
    assert set_cookies(exchange) == [("sessionid", "abc"), ("csrftoken", "XyZ")]
