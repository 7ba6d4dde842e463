"""A Django REST framework API set up the way DRF's and drf-spectacular's docs show: the grader must judge its
standard behaviours fairly (served in-process over WSGI; see drf_library)."""

from __future__ import annotations

import logging

import pytest

from portfolio_grader import payloads
from tests.conftest import kinds, make_context, run, serve_wsgi

from .drf_library import library_app


@pytest.fixture(autouse=True)
def quiet_werkzeug():
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access-log line per request otherwise


def test_spectacular_security_with_an_empty_requirement_leaves_operations_public(serve):
    """drf-spectacular writes `security: [{}]` (credentials optional) on every operation of an API without
    authentication classes: nothing needs a login, so CRUD is probed anonymously."""
    ctx = make_context(serve(library_app()))
    assert ctx.api.spec_source == "served at /api/schema/"  # YAML, drf-spectacular's default
    assert ctx.api.spec["paths"]["/api/books/"]["post"]["security"] == [{}]
    assert not any(op.security for op in ctx.api.operations)
    outcome = run("crud.lifecycle", ctx)
    assert outcome.status == "pass" and outcome.summary.startswith("6/6 "), outcome


def test_a_page_size_cap_the_spec_does_not_document_is_seen_past_the_cap(serve):
    """DRF's max_page_size caps `?page_size=100000` silently and drf-spectacular documents no maximum: the cap
    shows only when the collection is larger than it."""
    ctx = make_context(serve(library_app()))
    searches = payloads._from_pattern.cache_info()
    walk, limits = run("pagination.walk", ctx), run("pagination.limits", ctx)
    # 126 objects made with the ISBN pattern's example: one Hypothesis search (a second or more each), not one per
    # object, which took minutes
    cached = payloads._from_pattern.cache_info()
    assert cached.hits - searches.hits >= 100 and cached.misses - searches.misses <= 2
    assert walk.status == "pass", walk
    assert "3 page(s) of 10 walked (to the end)" in walk.summary  # DRF's absolute `next` links, followed
    assert limits.status == "pass", limits
    assert "page_size=100000 -> 200, capped at 100 of 101 object(s)" in limits.summary
    assert "page_size=abc -> 200, 20 item(s)" in limits.summary  # DRF's fallback to the default page size
    books = ctx.prober.request("GET", "/api/books/").json()
    assert books["count"] == 0, "the objects made to see the cap are deleted"


def test_a_paginator_without_max_page_size_is_reported(serve):
    ctx = make_context(serve(library_app({"no_cap"})))
    outcome = run("pagination.limits", ctx)
    assert outcome.status == "fail" and kinds(outcome) == {"pagination_no_cap"}, outcome
    assert "page_size=100000 returned 101 objects in one page" in outcome.findings[0].message


@pytest.fixture(scope="module")
def contract_ctx():
    """One Schemathesis run against the DRF API, read by the contract tests below."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with serve_wsgi(library_app()) as url:
        ctx = make_context(url)
        outcomes = {check: run(check, ctx) for check in ("contract.http_semantics", "contract.input_validation")}
        yield ctx, outcomes


def test_refusing_text_with_a_nul_character_is_not_a_valid_request_rejected(contract_ctx):
    """DRF's CharField refuses NUL (ProhibitNullCharactersValidator) in a string the schema allows: a safety rule,
    not a contract break. The probe app documents an example with one, so Schemathesis surely sends it."""
    ctx, outcomes = contract_ctx
    refused = [e for e in ctx.prober.exchanges if e.method == "POST" and "Nul\\u0000Byte" in (e.request_body or "")]
    assert refused and not any(e.status < 300 for e in refused)
    assert any(e.status == 400 and e.json() == {"title": ["Null characters are not allowed."]} for e in refused)
    outcome = outcomes["contract.http_semantics"]
    assert "positive_data_rejected" not in kinds(outcome), outcome
    assert "holding a NUL character" in outcome.summary


def test_lenient_paging_values_are_left_to_the_pagination_checks(contract_ctx):
    """DRF answers `?page_size=AAA` with the default page; the pagination checks judge paging values, so the
    contract run does not count it. Bodies that violate the schema are still reported (DRF's BooleanField takes 0,
    its CharField takes a number)."""
    ctx, outcomes = contract_ctx
    assert any("page_size=AAA" in e.url and e.status == 200 for e in ctx.prober.exchanges)
    outcome = outcomes["contract.input_validation"]
    assert outcome.status == "fail" and kinds(outcome) == {"negative_data_accepted"}, outcome
    assert {f.operation for f in outcome.findings} == {"POST /api/books/", "PUT /api/books/{id}/",
                                                        "PATCH /api/books/{id}/"}
    assert "with an invalid paging value were answered with the default page" in outcome.summary


def _provoke_errors(ctx) -> None:
    """DRF's usual errors: field messages (400), {"detail": ...} for 404, 405 and malformed JSON, Django's 404."""
    for method, path, body in (("POST", "/api/books/", {}), ("POST", "/api/books/", {"title": "t", "author": "a",
                               "isbn": "12", "published_year": 99}), ("PATCH", "/api/books/1/", [{"x": 1}]),
                               ("GET", "/api/books/999999/", None), ("DELETE", "/api/books/", None),
                               ("GET", "/no-such-page/", None)):
        ctx.prober.request(method, path, **({"json": body} if body is not None else {}))
    ctx.prober.request("POST", "/api/books/", content='{"title": ', headers={"Content-Type": "application/json"})


def test_drf_field_errors_go_with_its_detail_errors(serve):
    """{"title": ["This field is required."]} and {"detail": "Not found."} are DRF's one documented error format."""
    ctx = make_context(serve(library_app()))
    _provoke_errors(ctx)
    outcome = run("http.error_shape", ctx)
    assert outcome.status == "pass", outcome
    assert "in 1 shape(s): {<field: [messages]>, detail} | {detail}" in outcome.summary \
        or "in 1 shape(s): {detail} | {<field: [messages]>, detail}" in outcome.summary, outcome.summary


def test_an_error_of_another_shape_beside_drfs_is_reported(serve):
    ctx = make_context(serve(library_app({"own_404"})))
    _provoke_errors(ctx)
    outcome = run("http.error_shape", ctx)
    assert outcome.status == "fail" and kinds(outcome) == {"error_shape_inconsistent"}, outcome
    assert "{error, path}" in outcome.findings[0].message
