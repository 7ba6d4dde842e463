"""Probe tests of the ownership checks (BOLA, mass assignment, data exposure, BFLA) against the task API:
the correct app passes every check, each planted flaw fails exactly the check and kind it should, and the
probes leave no object behind."""

from __future__ import annotations

import json

import pytest

from .auth_apps import tasks_app
from ..conftest import kinds, make_context, run

OWNERSHIP_CHECKS = ("ownership.bola", "ownership.mass_assignment", "ownership.data_exposure", "ownership.bfla")


def grade(serve, **flaws):
    return make_context(serve(tasks_app(**flaws)))


def tasks_left(ctx) -> dict[str, list]:
    """Every task user A and user B can still list: the probes must have deleted what they created."""
    users = ctx.identities(2)
    return {u.label: ctx.prober.request("GET", "/tasks", headers=u.headers(ctx.api.auth)).json() for u in users}


def test_correct_api_passes_every_ownership_check_with_evidence_and_cleans_up(serve):
    ctx = grade(serve)
    for check_id in OWNERSHIP_CHECKS:
        outcome = run(check_id, ctx)
        assert outcome.status == "pass", (check_id, outcome.summary, outcome.reason, outcome.findings)
        assert outcome.evidence, f"{check_id} passed without evidence"
        assert all(e.curl.startswith("curl ") and e.request is not None for e in outcome.evidence)
    assert tasks_left(ctx) == {"A": [], "B": []}


def test_bola_pass_is_judged_by_effect_on_every_operation(serve):
    ctx = grade(serve)
    outcome = run("ownership.bola", ctx)
    assert outcome.score == 1.0 and "4/4" in outcome.summary
    notes = [e.note for e in outcome.evidence]
    assert any("reads user A's object: refused (404)" in n for n in notes)
    assert any("user A reads its object back" in n for n in notes)
    b_get = outcome.evidence[0]
    assert b_get.request.method == "GET" and "Authorization: Bearer " in b_get.curl


@pytest.mark.parametrize(("flaw", "kind", "operation"), [
    ("bola_read", "bola_read", "GET /tasks/{task_id}"),
    ("bola_write", "bola_write", "PUT /tasks/{task_id}"),
    ("bola_delete", "bola_delete", "DELETE /tasks/{task_id}"),
    ("bola_list", "bola_list_leak", "GET /tasks"),
])
def test_each_bola_flaw_is_its_own_kind(serve, flaw, kind, operation):
    ctx = grade(serve, **{flaw: True})
    outcome = run("ownership.bola", ctx)
    assert outcome.status == "fail" and kinds(outcome) == {kind}, outcome.findings
    (finding,) = outcome.findings
    assert finding.operation == operation
    assert finding.severity == ("high" if kind == "bola_list_leak" else "critical")
    assert "OWASP API1:2023" in finding.message
    assert "FastAPI" in finding.hint and "Express" in finding.hint and "Flask" in finding.hint
    assert finding.evidence[0].note == "user A creates an object" and finding.evidence[0].response.status == 201
    assert all(e.request and e.response and e.curl for e in finding.evidence)
    # a critical hole leaves no partial credit; a list leak (high) keeps the share of probes that held
    assert outcome.score == 0 if finding.severity == "critical" else 0 < outcome.score < 1
    assert tasks_left(ctx)["A"] == []


def test_write_refused_with_403_but_applied_is_bola_write_by_effect(serve):
    ctx = grade(serve, write_despite_403=True)
    outcome = run("ownership.bola", ctx)
    assert kinds(outcome) == {"bola_write"}  # no bola_read, no bola_delete
    (finding,) = outcome.findings
    assert "answered 403" in finding.message
    attempt, reread = finding.evidence[1], finding.evidence[2]
    assert (attempt.request.method, attempt.response.status) == ("PUT", 403)
    sent_title = json.loads(attempt.request.body)["title"]
    assert json.loads(reread.response.body)["title"] == sent_title  # A sees B's change
    assert tasks_left(ctx)["A"] == []


def test_delete_refused_with_200_and_no_effect_is_no_bola(serve):
    ctx = grade(serve, soft_refuse_delete=True)
    outcome = run("ownership.bola", ctx)
    assert outcome.status == "pass" and "bola_delete" not in kinds(outcome), outcome.findings
    delete = next(e for e in outcome.evidence if e.request.method == "DELETE")
    assert delete.response.status == 200 and json.loads(delete.response.body) == {"deleted": False}
    assert tasks_left(ctx)["A"] == []


def test_sign_up_with_role_admin_is_mass_assignment_shown_by_the_admin_operation(serve):
    ctx = grade(serve, mass_assignment=True)
    outcome = run("ownership.mass_assignment", ctx)
    assert outcome.status == "fail" and kinds(outcome) == {"mass_assignment"}, outcome.findings
    (finding,) = outcome.findings
    assert finding.operation == "POST /auth/register" and finding.severity == "critical"
    assert "GET /admin/users" in finding.message and "OWASP API3:2023" in finding.message
    signup = finding.evidence[0]
    assert json.loads(signup.request.body)["role"] == "admin"
    accepted = [e for e in finding.evidence if e.request.url.endswith("/admin/users") and e.response.status == 200]
    refused = [e for e in finding.evidence if e.request.url.endswith("/admin/users") and e.response.status == 403]
    assert accepted and refused  # the new user gets in, ordinary user A does not
    assert "extra=\"forbid\"" in finding.hint


def test_test_users_sign_up_as_ordinary_users_with_their_own_unique_values(serve):
    """The schema's example says is_admin: true and phone +15550100 (unique): users A and B must still be two
    ordinary users, so the mass-assignment probe has an ordinary user to compare the admin sign-up with."""
    ctx = grade(serve, profile_signup=True)
    a, b = ctx.identities(2)
    assert "is_admin" not in a.signup_body and "is_admin" not in b.signup_body
    assert a.signup_body["phone"] != b.signup_body["phone"]
    assert a.signup_response["role"] == b.signup_response["role"] == "user"
    outcome = run("ownership.mass_assignment", ctx)
    assert outcome.status == "fail" and kinds(outcome) == {"mass_assignment"}, (outcome.summary, outcome.findings)
    assert "is_admin=true" in outcome.findings[0].message


def test_mass_assignment_sends_each_admin_field_alone_when_the_api_refuses_unknown_fields(serve):
    ctx = grade(serve, strict_fields=True, mass_assignment=True)
    outcome = run("ownership.mass_assignment", ctx)
    assert outcome.status == "fail" and kinds(outcome) == {"mass_assignment"}, (outcome.summary, outcome.findings)
    (finding,) = outcome.findings
    assert "role=admin made" in finding.message and json.loads(finding.evidence[0].request.body)["role"] == "admin"
    assert "is_admin" not in json.loads(finding.evidence[0].request.body)


def test_a_field_accepted_alone_without_effect_passes_and_the_probe_user_is_deleted(serve):
    ctx = grade(serve, strict_fields=True, delete_me=True)
    outcome = run("ownership.mass_assignment", ctx)
    assert outcome.status == "pass", (outcome.summary, outcome.findings)
    assert 'role=admin gained no privilege' in outcome.summary
    # users A and B and the probe's own sign-up: the ledger forgets none of them
    assert ctx.remove_test_users() == "3 of 3 test users deleted with DELETE /users/me"


def test_client_sent_owner_id_is_mass_assignment_and_the_objects_are_cleaned_up_by_their_new_owner(serve):
    ctx = grade(serve, owner_mass_assignment=True)
    outcome = run("ownership.mass_assignment", ctx)
    assert kinds(outcome) == {"mass_assignment"}
    assert sorted(f.operation for f in outcome.findings) == ["POST /tasks", "PUT /tasks/{task_id}"]
    assert "sign-up with role=admin" in outcome.summary  # the sign-up held
    assert tasks_left(ctx) == {"A": [], "B": []}


def test_password_hash_in_the_profile_is_sensitive_data_exposure(serve):
    ctx = grade(serve, hash_exposed=True)
    outcome = run("ownership.data_exposure", ctx)
    assert outcome.status == "fail" and kinds(outcome) == {"sensitive_data_exposure"}
    (finding,) = outcome.findings  # one per (route, field), though A's and B's profiles both leak it
    assert finding.operation == "GET /users/me" and finding.severity == "high"
    assert "password_hash" in finding.message and "OWASP API3:2023" in finding.message
    assert "password_hash" in finding.evidence[0].response.body


def test_data_exposure_scans_what_earlier_checks_provoked(serve):
    ctx = grade(serve, bola_read=True)
    run("ownership.bola", ctx)
    outcome = run("ownership.data_exposure", ctx)
    assert outcome.status == "pass"  # B read A's task, but a task holds no secret and no email
    scanned = int(outcome.summary.split("scanned ")[1].split()[0])
    assert scanned >= 10


def test_sensitive_fields_and_hash_values_are_recognised_and_echoes_are_not():
    from portfolio_grader.checks.ownership import _as_sent, _sensitive

    bcrypt = "$2b$12$" + "a" * 53
    body = {"items": [{"id": 1, "hashed_password": "x1"}, {"id": 2, "passwordHash": "y2"}],
            "profile": {"digest": bcrypt, "pw": "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA"},
            "legacy": "pbkdf2:sha256:600000$salt$abc", "refresh_token_hash": "z3", "content_hash": "ok",
            "password": "********"}
    fields = {f for f, _ in _sensitive(body, sent="", get=True)}
    assert fields == {"hashed_password", "passwordHash", "digest", "pw", "legacy", "refresh_token_hash"}
    # a validation error echoing the client's own password is no leak
    echo = {"detail": [{"loc": ["body", "title"], "input": {"password": "Grader-Pass-9x!Qv"}}]}
    assert _sensitive(echo, sent='{"password": "Grader-Pass-9x!Qv"}', get=False) == []
    # ... also when the request's JSON escaped what the error repeats decoded (a fuzzer's "\u00d6^?")
    fuzzed = json.dumps({"password": "\u00d6^?", "x": "\udb0b"})
    assert "\\u00d6" in fuzzed
    assert _sensitive({"detail": [{"input": {"password": "\u00d6^?"}}]}, sent=_as_sent(fuzzed), get=False) == []
    # a webhook's signing secret shown once on creation is fine; shown again on a GET it is not
    assert _sensitive({"secret": "whsec_abc"}, sent="", get=False) == []
    assert _sensitive({"secret": "whsec_abc"}, sent="", get=True) == [("secret", "a `secret` field")]


def test_admin_operation_open_to_ordinary_users_is_bfla(serve):
    ctx = grade(serve, bfla=True)
    outcome = run("ownership.bfla", ctx)
    assert outcome.status == "fail" and kinds(outcome) == {"bfla"}
    (finding,) = outcome.findings
    assert finding.operation == "GET /admin/users" and "OWASP API5:2023" in finding.message
    assert finding.evidence[0].response.status == 200
    assert "require_admin" in finding.hint


def test_an_open_admin_delete_is_found_on_an_object_that_exists_not_on_a_made_up_id(serve):
    ctx = grade(serve, bfla_delete=True)
    outcome = run("ownership.bfla", ctx)
    assert outcome.status == "fail" and kinds(outcome) == {"bfla"}, (outcome.summary, outcome.findings)
    (finding,) = outcome.findings
    assert finding.operation == "DELETE /admin/tasks/{task_id}"
    control, attack = finding.evidence
    assert control.response.status == 200 and control.request.url.endswith("/users/me")
    assert attack.response.status == 204  # user B's real task, deleted by ordinary user A


def test_a_refused_admin_delete_passes_with_the_control_and_the_existing_object_in_evidence(serve):
    ctx = grade(serve, admin_delete=True)
    outcome = run("ownership.bfla", ctx)
    assert outcome.status == "pass" and "2/2" in outcome.summary, outcome.summary
    notes = [e.note for e in outcome.evidence]
    assert notes[0].startswith("control: user A's token works (GET /users/me answered 200)")
    assert any("DELETE /admin/tasks/{task_id} on an existing object" in n and "refused (403)" in n for n in notes)
    assert tasks_left(ctx) == {"A": [], "B": []}  # B's task made for the probe is deleted again


def test_an_admin_operation_refusing_a_logged_in_user_with_401_is_a_warning_not_a_pass_or_a_failure(serve):
    outcome = run("ownership.bfla", grade(serve, admin_refuses_401=True))
    assert outcome.status == "warn" and outcome.score == 1.0, (outcome.status, outcome.summary)  # refused all the same
    assert kinds(outcome) == {"forbidden_answered_401"} and "1 with 401 where 403 is meant" in outcome.summary
    (finding,) = outcome.findings
    assert finding.operation == "GET /admin/users" and finding.severity == "low"
    control, refusal = finding.evidence
    assert control.response.status == 200 and refusal.response.status == 401
    assert "403" in finding.hint
    assert run("ownership.bfla", grade(serve)).status == "pass"  # 403: no warning


def test_bfla_refusals_after_the_test_users_were_wiped_are_not_a_pass(serve):
    ctx = grade(serve, admin_delete=True)
    ctx.identities(2)
    # the API under test drops the grader's users and lets no new ones in: they cannot be made again
    ctx.prober.request("POST", "/testing/reset", params={"close_registration": "true"})
    outcome = run("ownership.bfla", ctx)
    assert outcome.status == "not_evaluated", (outcome.summary, outcome.findings)
    assert "the control failed" in outcome.reason and "401" in outcome.reason


def test_bfla_without_admin_operations_is_not_evaluated_and_says_how_to_mark_them(serve):
    ctx = grade(serve)
    ctx.api = ctx.api.model_copy(update={
        "auth": ctx.api.auth.model_copy(update={"admin_operations": []}),
        "operations": [op for op in ctx.api.operations if not op.path.startswith("/admin")]})
    outcome = run("ownership.bfla", ctx)
    assert outcome.status == "not_evaluated" and "though the API has an admin role" in outcome.reason, outcome.reason
    assert "tags: [admin]" in outcome.manifest_hint and "/admin" in outcome.manifest_hint


def test_bfla_on_an_api_with_no_admin_role_at_all_is_not_applicable(serve):
    from .todo_apps import todo_app  # users sign up with a name and a password; nothing is privileged

    outcome = run("ownership.bfla", make_context(serve(todo_app())))
    assert outcome.status == "not_applicable" and "no admin role to protect" in outcome.reason, outcome


def test_ownership_checks_need_two_users(serve):
    from .apps import good_books_app  # no auth at all

    ctx = make_context(serve(good_books_app()))
    for check_id in OWNERSHIP_CHECKS:
        outcome = run(check_id, ctx)
        assert outcome.status == "not_evaluated", (check_id, outcome)


def test_another_users_email_in_a_response_to_user_a_is_sensitive_data_exposure(serve):
    ctx = grade(serve, user_directory=True)
    outcome = run("ownership.data_exposure", ctx)
    assert kinds(outcome) == {"sensitive_data_exposure"}
    (finding,) = outcome.findings
    assert finding.operation == "GET /users" and "user O's email" in finding.message and "to user V" in finding.message
    other = next(u for u in ctx._memo["disposable_identities"] if u.label == "O")
    assert other.login_value in finding.evidence[0].response.body


def test_the_email_exposure_probe_does_not_depend_on_user_b_still_existing(serve):
    """Earlier checks may rename or delete user B; the probe makes the pair it reads with right then."""
    ctx = grade(serve, user_directory=True, delete_me=True)
    a, b = ctx.identities(2)
    assert ctx.prober.request("DELETE", "/users/me", headers=b.headers(ctx.api.auth)).status == 204
    outcome = run("ownership.data_exposure", ctx)
    assert kinds(outcome) == {"sensitive_data_exposure"}, outcome.summary
    assert "GET /users returns user O's email" in outcome.findings[0].message


def _with_admin_manifest(ctx):
    from portfolio_grader.models import Manifest

    from .auth_apps import ADMIN

    manifest = Manifest.model_validate({"auth": {"admin": {"login": ADMIN[0], "password": ADMIN[1]}}})
    ctx.facts = ctx.facts.model_copy(update={"manifest": manifest})
    return ctx


def test_the_manifest_admin_is_the_control_of_admin_checks(serve):
    from .auth_apps import ADMIN

    ctx = _with_admin_manifest(grade(serve))
    outcome = run("ownership.bfla", ctx)
    assert outcome.status == "pass", outcome
    notes = [e.note for e in outcome.evidence]
    assert any(n.startswith("the admin calls GET /admin/users: allowed") for n in notes)
    assert ADMIN[1] not in outcome.model_dump_json()  # the seeded password is never shown


def test_an_admin_route_that_refuses_the_admin_too_is_not_a_pass(serve):
    ctx = _with_admin_manifest(grade(serve, admin_broken=True))
    outcome = run("ownership.bfla", ctx)
    assert outcome.status == "not_evaluated" and "refused the manifest's admin too" in outcome.reason


def test_every_owned_collection_is_walked_and_the_summary_says_which(serve):
    from .owned_apps import many_owned_app

    flawed = run("ownership.bola", make_context(serve(many_owned_app(5, unchecked="c5"))))
    assert flawed.status == "fail" and {f.operation for f in flawed.findings} >= {"GET /c5/{item_id}"}, flawed.summary
    assert "in 5 of 5 owned collection(s) (/c1, /c2, /c3, /c4, /c5)" in flawed.summary
    correct = run("ownership.bola", make_context(serve(many_owned_app(5))))
    assert correct.status == "pass" and "5 of 5 owned collection(s)" in correct.summary, correct.summary


def test_collections_a_walk_could_not_finish_before_the_deadline_are_named_not_passed(serve):
    from portfolio_grader import deadlines

    from .owned_apps import many_owned_app

    ctx = make_context(serve(many_owned_app(4, delay=0.1)))  # a walk takes over 1 s
    ctx.identities(2)
    with deadlines.within(8.0, "the ownership family's 8 s deadline"):  # one walk fits, then 2 x it + 5 s does not
        outcome = run("ownership.bola", ctx)
    assert outcome.status == "pass" and "not reached within the family's deadline: " in outcome.summary, outcome.summary
    assert "/c4" in outcome.summary.split("not reached within the family's deadline: ")[1]
    assert "of 4 owned collection(s)" in outcome.summary and "4 of 4" not in outcome.summary


def test_an_admin_operation_open_to_requests_without_credentials_is_auth_missing(serve):
    from .owned_apps import many_owned_app

    flawed = run("ownership.bfla", make_context(serve(many_owned_app(1, admin_open=True))))
    assert flawed.status == "fail" and kinds(flawed) == {"auth_missing"}, flawed.summary
    assert flawed.findings[0].operation == "GET /admin/stats" and "0/1" in flawed.summary
    correct = run("ownership.bfla", make_context(serve(many_owned_app(1))))
    assert correct.status == "pass" and "1/1" in correct.summary, correct.summary
    assert any("without any credentials: refused (401" in e.note for e in correct.evidence), correct.evidence
