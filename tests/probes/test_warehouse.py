"""Auth beyond the spec's word (warehouse_apps.py): prefixed form fields are the login's, and the header the
token travels in is found by trying it on a GET that refuses an anonymous request."""

from __future__ import annotations

from ..conftest import make_context, run
from .warehouse_apps import warehouse_app


def test_prefixed_form_fields_log_in_and_the_undocumented_token_header_is_found(serve):
    ctx = make_context(serve(warehouse_app()))
    flow = ctx.api.auth
    assert (flow.login.label, flow.identity_field, flow.password_field, flow.login_form) == (
        "POST /login", "user_login", "user_password", True)
    a, b = ctx.identities(2)
    assert a.login_value != b.login_value  # the login field got a fresh value per user
    assert (ctx.api.auth.send_header, ctx.api.auth.send_prefix) == ("x-access-token", "")
    assert "GET /products refused an anonymous request (403)" in ctx.api.auth.evidence[-1]
    assert ctx.prober.request("GET", "/products", headers=a.headers(ctx.api.auth)).status == 200


def test_auth_required_judges_an_api_whose_spec_declares_no_security(serve):
    outcome = run("auth.required", make_context(serve(warehouse_app())))
    assert outcome.status == "pass", (outcome.summary, outcome.reason)
    assert "undocumented protected operation(s) found by a garbage token" in outcome.summary
    assert "(the control)" in outcome.summary
