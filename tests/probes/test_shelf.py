"""Probe tests on the shelf API (shelf_apps.py): a documented reset operation is never called, and objects
addressed by a natural key the client chooses (`/books/{book_title}`, a create that answers only a message)
are found again, so CRUD and ownership are judged on them."""

from __future__ import annotations

from portfolio_grader.discover import held_out_operations
from portfolio_grader.models import Operation

from ..conftest import kinds, make_context, run
from .shelf_apps import shelf_app


def test_a_reset_operation_is_held_out_of_every_probe_and_the_test_users_survive(serve):
    app = shelf_app()
    ctx = make_context(serve(app))
    assert "GET /createdb" in ctx.api.held_out and "resets or seeds" in ctx.api.held_out["GET /createdb"]
    assert "GET /createdb" not in {op.label for op in ctx.api.operations}
    for check_id in ("contract.no_server_errors", "contract.routes_match", "auth.required", "crud.lifecycle",
                     "ownership.bola"):
        run(check_id, ctx)
    assert app.state.calls["GET /createdb"] == 0
    a = ctx.identities(1)[0]
    assert ctx.prober.request("GET", "/me", headers=a.headers(ctx.api.auth)).status == 200  # A still exists


def test_objects_addressed_by_a_natural_key_are_read_back_by_the_key_the_grader_chose(serve):
    ctx = make_context(serve(shelf_app()))
    [resource] = ctx.api.resources
    assert (resource.item, resource.id_field) == ("/books/{book_title}", "book_title")
    outcome = run("crud.lifecycle", ctx)
    reads = [e for e in outcome.evidence + [x for f in outcome.findings for x in f.evidence]
             if e.request.method == "GET" and "/books/pg-" in e.request.url]
    assert reads and reads[0].response.status == 200, outcome
    # a second create does not collide with the first on the spec's example title
    assert "Already exists" not in str([f.message for f in outcome.findings])


def test_ownership_is_judged_on_natural_key_objects(serve):
    flawed = run("ownership.bola", make_context(serve(shelf_app(bola_read=True))))
    assert flawed.status == "fail" and kinds(flawed) == {"bola_read"}, flawed
    assert "/books/pg-" in flawed.findings[0].message
    correct = run("ownership.bola", make_context(serve(shelf_app())))
    assert correct.status == "pass", (correct.summary, correct.reason)


def test_reset_words_are_told_from_ordinary_operations():
    ops = [Operation(method="GET", path="/createdb", summary="Creates and populates the database with dummy data"),
           Operation(method="POST", path="/admin/reset", summary="Reset all data"),
           Operation(method="POST", path="/db/init", operation_id="initDatabase"),
           Operation(method="POST", path="/seed"),
           Operation(method="POST", path="/auth/reset-password", summary="Reset your password"),
           Operation(method="GET", path="/seeds/{id}", summary="A seed packet"),
           Operation(method="POST", path="/tasks", summary="Create a task and save it in the database"),
           Operation(method="DELETE", path="/tasks/completed", summary="Clear all completed tasks"),
           Operation(method="GET", path="/stats")]
    held = held_out_operations(ops, exclude=["GET /stats", "POST /not-documented"])
    assert set(held) == {"GET /createdb", "POST /admin/reset", "POST /db/init", "POST /seed", "GET /stats"}
    assert held["GET /stats"] == "the manifest's `exclude:` lists it"


def test_refusals_after_the_api_lost_the_test_users_are_not_a_pass(serve):
    """The API wiped its users (a reset reached by someone else) and closed registration, so no test user can
    be made again: every protected operation answers 401 to everyone, user A's genuine token included. That
    proves nothing about authentication."""
    ctx = make_context(serve(shelf_app(closed_after_reset=True)))
    ctx.identities(1)
    assert ctx.prober.request("GET", "/createdb").status == 200
    outcome = run("auth.required", ctx)
    assert outcome.status == "not_evaluated", outcome
    assert "user A's genuine credentials got 401" in outcome.reason


def test_auth_required_passes_with_the_control_as_evidence(serve):
    outcome = run("auth.required", make_context(serve(shelf_app())))
    assert outcome.status == "pass", outcome
    control = outcome.evidence[0]
    assert "the control" in control.note and control.response.status == 200 and "Bearer " in control.curl
    assert "(the control)" in outcome.summary


def test_another_users_password_and_account_are_taken_over_through_the_path(serve):
    ctx = make_context(serve(shelf_app(open_accounts=True)))
    outcome = run("ownership.user_accounts", ctx)
    assert outcome.status == "fail" and kinds(outcome) == {"bola_write", "bola_delete"}, outcome
    by_op = {f.operation: f for f in outcome.findings}
    assert "changed the victim's email" in by_op["PUT /profile"].message  # the body named the victim
    taken = by_op["PUT /users/{username}/password"]
    assert taken.severity == "critical" and "set the victim's password" in taken.message
    assert taken.evidence[1].request.url.endswith("/users/login") and taken.evidence[1].response.status == 200
    assert "deleted the victim's account" in by_op["DELETE /users/{username}"].message
    a, b = ctx.identities(2)
    for user in (a, b):  # the probe attacked its own victims, never the grade's test users
        assert ctx.prober.request("GET", "/me", headers=user.headers(ctx.api.auth)).status == 200


def test_account_operations_refused_to_others_pass_on_the_owners_control(serve):
    outcome = run("ownership.user_accounts", make_context(serve(shelf_app())))
    assert outcome.status == "pass", (outcome.summary, outcome.reason)
    assert "3/3 refused" in outcome.summary
    assert any("the control" in e.note and e.response.status == 204 for e in outcome.evidence)


def test_the_fuzzer_runs_as_a_disposable_user_of_its_own(serve):
    from portfolio_grader.checks.contract import schemathesis_config

    ctx = make_context(serve(shelf_app()))
    a, b = ctx.identities(2)
    headers = schemathesis_config(ctx)["headers"]
    assert headers and headers != a.headers(ctx.api.auth) and headers != b.headers(ctx.api.auth)
    assert ctx.prober.request("GET", "/me", headers=headers).json()["username"].startswith("pg")
    # F and G, the fuzzer's two users (Schemathesis replays one's reads as the other), removed with the test users
    assert [u.label for u in ctx._memo["disposable_identities"]] == ["F", "G"]


def test_test_users_the_api_lost_mid_grade_are_made_again_and_the_grade_says_so(serve):
    ctx = make_context(serve(shelf_app()))
    a, b = ctx.identities(2)
    assert ctx.prober.request("GET", "/createdb").status == 200  # every user and token gone
    outcome = run("ownership.bola", ctx)
    assert outcome.status == "pass", (outcome.summary, outcome.reason)
    notes = ctx.identity_notes()
    assert len(notes) == 2 and all("made a new one" in n and "GET /me answered 401" in n for n in notes), notes
    assert ctx.identities(1)[0].login_value != a.login_value


def test_expired_tokens_of_test_users_are_renewed_by_logging_in_again(serve):
    app = shelf_app()
    ctx = make_context(serve(app))
    a = ctx.identities(1)[0]
    app.state.tokens.clear()  # as if every token had expired
    outcome = run("auth.required", ctx)
    assert outcome.status == "pass", (outcome.summary, outcome.reason)
    assert ctx.identities(1)[0].login_value == a.login_value
    assert ["logged it in again" in n for n in ctx.identity_notes()] == [True]


def test_jwt_checks_do_not_apply_to_opaque_tokens_and_their_criteria_leave_the_grade(serve):
    from portfolio_grader.rubric import load_rubric
    from portfolio_grader.scoring import score

    ctx = make_context(serve(shelf_app()))  # its login answers a random session token, not a JWT
    outcomes = [run(check_id, ctx) for check_id in ("auth.jwt_forgery", "auth.jwt_secret", "auth.jwt_lifetime")]
    assert {o.status for o in outcomes} == {"not_applicable"}, [(o.check, o.status, o.reason) for o in outcomes]
    assert all("is not a JWT" in o.reason for o in outcomes)
    criteria = {c.id: c for c in score(load_rubric("intermediate"), outcomes).criteria}
    assert {criteria[i].status for i in ("jwt-integrity", "jwt-secret", "token-lifetime")} == {"not_applicable"}
    assert criteria["jwt-integrity"].max_points == 0 and not criteria["jwt-integrity"].gate_failed


def test_a_user_reading_back_the_secret_it_stored_is_no_exposure_another_user_reading_it_is(serve):
    for flawed in (False, True):
        ctx = make_context(serve(shelf_app(bola_read=flawed)))
        run("ownership.bola", ctx)  # A stores a book with its `secret` and reads it back; B tries to read it
        outcome = run("ownership.data_exposure", ctx)
        secret_reads = [f for f in outcome.findings if "`secret` field" in f.message]
        if flawed:  # B received A's secret: B never sent it, and the book's owner field names A
            assert secret_reads and secret_reads[0].operation == "GET /books/{book_title}", outcome.summary
            assert secret_reads[0].kind == "bola_read" and secret_reads[0].severity == "critical", secret_reads[0]
            assert "to another user" in secret_reads[0].message
        else:
            assert not secret_reads, [f.message for f in secret_reads]


def test_a_secret_in_an_object_whose_owner_field_names_the_reader_is_no_exposure(serve):
    import httpx

    base = serve(shelf_app())
    ctx = make_context(base)
    a, _ = ctx.identities(2)
    headers = a.headers(ctx.api.auth)
    # made outside the grader's record (as Schemathesis' own requests are): only the owner field says whose it is
    assert httpx.post(f"{base}/books", json={"book_title": "unrecorded", "secret": "s-3c"}, headers=headers).status_code == 200
    assert ctx.prober.request("GET", "/books/unrecorded", headers=headers).json()["owner"] == a.login_value
    outcome = run("ownership.data_exposure", ctx)
    assert not [f for f in outcome.findings if "`secret` field" in f.message], outcome.summary
