"""An API without passwords: clients get an API key from `POST /api/keys` and send it in `X-API-Key`. Two keys are
two identities for every probe that needs users (CRUD, auth-required, ownership); the password checks (login rate
limit, user enumeration, weak passwords) and the JWT ones do not apply."""

from __future__ import annotations

import pytest

from ..conftest import kinds, make_context, run
from .key_apps import keyed_notes_app


def test_two_api_keys_are_two_identities_and_the_password_checks_do_not_apply(serve):
    ctx = make_context(serve(keyed_notes_app()))
    flow = ctx.api.auth
    assert flow.issues_keys and (flow.send_header, flow.token_path) == ("X-API-Key", "api_key"), ctx.api.auth_problem
    a, b = ctx.identities(2)
    assert a.token != b.token and a.password == ""
    for check_id in ("crud.lifecycle", "auth.required", "ownership.bola"):
        outcome = run(check_id, ctx)
        assert outcome.status == "pass", (check_id, outcome)
    for check_id in ("auth.login_rate_limit", "auth.user_enumeration", "auth.weak_password", "auth.jwt_forgery"):
        assert run(check_id, ctx).status == "not_applicable", check_id


def test_one_key_reaching_anothers_notes_is_bola(serve):
    outcome = run("ownership.bola", make_context(serve(keyed_notes_app(owner_check=False))))
    assert outcome.status == "fail" and "bola_read" in kinds(outcome), outcome


@pytest.mark.parametrize("scheme", [None, "cookie"])
def test_without_an_api_key_header_scheme_no_key_flow_is_guessed(serve, scheme):
    app = keyed_notes_app()
    made = app.openapi

    def other():
        spec = made()
        spec["components"]["securitySchemes"] = {} if scheme is None else {
            "ApiKey": {"type": "apiKey", "in": "cookie", "name": "key"}}
        return spec

    app.openapi = other
    ctx = make_context(serve(app))
    assert ctx.api.auth is None and ctx.api.auth_problem
