"""ownership.bfla on the menu API (menu_apps.py): staff-only writes that nothing in the spec marks as such are
found by the create's 403 to an ordinary user, and judged on an existing item from the list."""

from __future__ import annotations

from ..conftest import kinds, make_context, run
from .menu_apps import menu_app


def test_writes_on_a_collection_only_staff_may_add_to_are_admin_only_and_judged_on_an_existing_item(serve):
    outcome = run("ownership.bfla", make_context(serve(menu_app(open_writes=True))))
    assert outcome.status == "fail" and kinds(outcome) == {"bfla"}, outcome
    assert {f.operation for f in outcome.findings} == {"PUT /menu/{item_id}", "DELETE /menu/{item_id}"}
    sent = outcome.findings[0].evidence[-1]
    assert sent.request.url.rstrip("/").rsplit("/", 1)[-1] in ("1", "2")  # an item that exists, from the list
    assert "POST /menu refused ordinary user A with 403" in outcome.summary


def test_staff_only_writes_refused_to_customers_pass_with_the_control(serve):
    outcome = run("ownership.bfla", make_context(serve(menu_app())))
    assert outcome.status == "pass", (outcome.summary, outcome.reason)
    assert "3/3 admin operation(s) refused" in outcome.summary
    assert "control" in outcome.evidence[0].note and outcome.evidence[0].response.status == 200


def test_a_user_that_makes_itself_staff_is_privilege_escalation(serve):
    outcome = run("ownership.self_promotion", make_context(serve(menu_app(self_promotion=True))))
    assert outcome.status == "fail" and kinds(outcome) == {"mass_assignment"}, outcome
    [finding] = outcome.findings
    assert "from 'customer' to 'employee'" in finding.message and finding.operation == "PUT /users/update_role"
    assert finding.evidence[-1].response.status == 200 and '"employee"' in finding.evidence[-1].response.body


def test_role_changes_refused_to_ordinary_users_pass_read_back_from_the_profile(serve):
    ctx = make_context(serve(menu_app()))
    outcome = run("ownership.self_promotion", ctx)
    assert outcome.status == "pass", (outcome.summary, outcome.reason)
    assert "1/1" in outcome.summary and "GET /profile" in outcome.summary
    a = ctx.identities(1)[0]
    assert ctx.prober.request("GET", "/profile", headers=a.headers(ctx.api.auth)).json()["role"] == "customer"


def test_crud_on_a_collection_only_staff_create_in_is_not_failed_for_a_customer_and_walked_as_the_admin(serve):
    from portfolio_grader.models import Manifest, RepoFacts

    as_customer = run("crud.lifecycle", make_context(serve(menu_app())))
    assert as_customer.status == "not_evaluated", as_customer.summary
    assert "refuses user A's credentials (403)" in as_customer.reason and "auth: admin:" in as_customer.reason
    facts = RepoFacts(manifest=Manifest.model_validate({"auth": {"admin": {"login": "chef",
                                                                            "password": "Chef-Pass-123"}}}))
    as_chef = run("crud.lifecycle", make_context(serve(menu_app()), facts=facts))
    assert as_chef.status == "pass", (as_chef.summary, [f.message for f in as_chef.findings])
    assert "walked as the manifest's admin" in as_chef.summary


def test_a_delete_refused_with_409_for_the_items_own_sake_is_retried_on_other_existing_items(serve):
    """409 (the item is in past orders) says nothing about who may delete: the newest listed items are tried until
    one answers with allowed or refused (the older items are the ones orders name)."""
    outcome = run("ownership.bfla", make_context(serve(menu_app(open_writes=True, more_items=10, held=8))))
    assert outcome.status == "fail" and "DELETE /menu/{item_id}" in {f.operation for f in outcome.findings}, outcome
    deleted = next(f for f in outcome.findings if f.operation == "DELETE /menu/{item_id}").evidence[-1]
    assert deleted.response.status == 204 and int(deleted.request.url.rsplit("/", 1)[-1]) > 8


def test_held_items_refused_to_customers_still_pass(serve):
    outcome = run("ownership.bfla", make_context(serve(menu_app(more_items=10, held=8))))
    assert outcome.status == "pass", (outcome.summary, outcome.reason)


def test_an_optional_reference_to_another_object_is_left_out_of_the_grader_s_creates(serve):
    """An order may name a coupon; the example coupon id names none, so the create leaves it out and is not
    refused 404 "Coupon not found": CRUD and ownership get an object to work with."""
    ctx = make_context(serve(menu_app(with_orders=True, open_orders=True)))
    outcome = run("ownership.bola", ctx)
    assert outcome.status == "fail" and "bola_read" in kinds(outcome), (outcome.summary, outcome.reason)
    create = next(e for e in outcome.findings[0].evidence if e.request.method == "POST")
    assert "coupon_id" not in (create.request.body or "")


def test_orders_only_their_owner_reads_pass_the_ownership_walk(serve):
    outcome = run("ownership.bola", make_context(serve(menu_app(with_orders=True))))
    assert outcome.status == "pass", (outcome.summary, outcome.reason)


def _as_chef():
    from portfolio_grader.models import Manifest, RepoFacts

    return RepoFacts(manifest=Manifest.model_validate({"auth": {"admin": {"login": "chef",
                                                                           "password": "Chef-Pass-123"}}}))


def test_a_staff_only_create_that_fetches_its_image_url_is_ssrf_when_the_manifest_names_staff(serve):
    """Only staff may add to the menu, so user A's 403 tells nothing about the fetch: sent as the manifest's
    admin, the server fetches the image URL it was given."""
    ctx = make_context(serve(menu_app(fetch_images=True)), facts=_as_chef())
    ctx.check_params = {"ssrf.client_urls": {"wait_s": 2.0}}
    outcome = run("ssrf.client_urls", ctx)
    assert outcome.status == "fail" and kinds(outcome) == {"ssrf"}, (outcome.summary, outcome.reason)
    assert "the manifest's admin" in outcome.findings[0].evidence[0].note
    after = outcome.findings[0].message.split("reached the grader's receiver ")[1].split(" s after")[0]
    assert not after.startswith("-"), after  # timed from before the request: the fetch happens while it answers


def test_a_staff_only_create_that_stores_its_image_url_passes_and_without_staff_is_not_evaluated(serve):
    ctx = make_context(serve(menu_app()), facts=_as_chef())
    ctx.check_params = {"ssrf.client_urls": {"wait_s": 1.0}}
    assert run("ssrf.client_urls", ctx).status == "pass"
    alone = make_context(serve(menu_app(fetch_images=True)))
    alone.check_params = {"ssrf.client_urls": {"wait_s": 1.0}}
    outcome = run("ssrf.client_urls", alone)
    assert outcome.status == "not_evaluated" and "answered 403 to user A" in outcome.reason, outcome


def _fuzzed_delete(ctx, item_id: int):
    """User F, the fuzzer's ordinary user, deletes a menu item the way Schemathesis' requests are recorded."""
    peer = ctx.disposable_identity("F")
    sent = ctx.prober.request("DELETE", f"/menu/{item_id}", headers=peer.headers(ctx.api.auth))
    sent.source = "schemathesis"
    return sent


def test_a_staff_only_delete_the_fuzzer_s_ordinary_user_made_is_bfla_when_every_remaining_item_is_held(serve):
    """Every item left answers 409 to user A (they are in orders), so A's own attempt tells nothing; the fuzzer's
    ordinary user F deleted the one free item, and F is refused the staff-only create now: a finding."""
    ctx = make_context(serve(menu_app(open_writes=True, more_items=5, held=6)))
    assert _fuzzed_delete(ctx, 7).status == 204
    outcome = run("ownership.bfla", ctx)
    finding = next(f for f in outcome.findings if f.operation == "DELETE /menu/{item_id}")
    assert outcome.status == "fail" and finding.kind == "bfla", outcome
    control, sent = finding.evidence
    assert control.response.status == 403 and sent.response.status == 204 and sent.request.url.endswith("/menu/7")


def test_a_fuzzer_s_delete_refused_to_an_ordinary_user_is_no_finding(serve):
    ctx = make_context(serve(menu_app(more_items=5, held=6)))
    assert _fuzzed_delete(ctx, 7).status == 403
    outcome = run("ownership.bfla", ctx)
    assert outcome.status == "pass" and not outcome.findings, (outcome.summary, outcome.findings)
