"""Probe tests of the pagination checks against real in-process list APIs: every paging style walked, and each
planted flaw reported with its kind, its evidence and a curl line that reproduces it."""

from __future__ import annotations

import subprocess

import pytest

from portfolio_grader.checks import pagination

from ..conftest import kinds, make_context, run
from .auth_apps import tasks_app
from .list_apps import items_app

CHECKS = ("pagination.present", "pagination.walk", "pagination.limits", "pagination.filters")


def grade(serve, app) -> dict:
    ctx = make_context(serve(app))
    outcomes = {check_id: run(check_id, ctx) for check_id in CHECKS}
    outcomes["ctx"] = ctx
    return outcomes


@pytest.mark.parametrize("style", ["offset", "page", "cursor", "link", "drf"])
def test_every_paging_style_is_found_walked_and_passes(serve, style):
    app = items_app(style)
    out = grade(serve, app)
    for check_id in ("pagination.present", "pagination.walk", "pagination.limits"):
        assert out[check_id].status == "pass", (check_id, out[check_id])
        assert out[check_id].evidence and all(e.curl for e in out[check_id].evidence)
    assert f"{pagination.SEED_COUNT}/{pagination.SEED_COUNT} seeded found" in out["pagination.walk"].summary
    assert "to the end" in out["pagination.walk"].summary
    assert not app.state.db, "the seeded objects are deleted again"


def test_link_and_next_url_are_followed_on_the_service_under_grade(serve):
    """The Link header names http://0.0.0.0:8000 (where the app thinks it lives): the grader stays on its target."""
    out = grade(serve, items_app("link"))
    ctx = out["ctx"]
    assert "Link" in out["pagination.present"].summary
    base = ctx.prober.base_url
    assert all(e.url.startswith(base) for e in ctx.prober.exchanges)
    assert any("page=3" in e.url for e in ctx.prober.exchanges), "the third page was reached through the links"


def test_good_offset_api_passes_its_filters_and_sorts(serve):
    out = grade(serve, items_app("offset"))
    filters = out["pagination.filters"]
    assert filters.status == "pass", filters
    assert "(done, sort, q)" in filters.summary


def test_a_list_that_returns_everything_is_pagination_missing(serve):
    out = grade(serve, items_app("none"))
    present = out["pagination.present"]
    assert present.status == "fail" and kinds(present) == {"pagination_missing"}
    finding = present.findings[0]
    assert f"all {pagination.SEED_COUNT} objects" in finding.message
    assert finding.evidence[0].response.status == 200 and finding.evidence[0].curl.startswith("curl ")
    # nothing to walk: the other checks say why instead of passing (not applicable: the beginner rubric then
    # leaves pagination out of the grade, the intermediate one grades pagination.present alone)
    for check in ("pagination.walk", "pagination.limits", "pagination.filters"):
        assert out[check].status == "not_applicable" and "no list endpoint offers a way to page" in out[check].reason


def test_a_limit_without_any_way_to_move_on_is_pagination_missing(serve):
    out = grade(serve, items_app("limit_only"))
    present = out["pagination.present"]
    assert kinds(present) == {"pagination_missing"}
    assert "cannot be reached" in present.findings[0].message


def test_secured_collection_is_seeded_and_listed_as_one_user(serve):
    """The auth task API lists a user's tasks without paging: seeded as user A, reported, cleaned up."""
    app = tasks_app()
    out = grade(serve, app)
    present = out["pagination.present"]
    assert kinds(present) == {"pagination_missing"}, present
    sent = present.findings[0].evidence[0].request.headers
    assert any(k.lower() == "authorization" for k in sent)


def test_overlapping_pages_are_inconsistent_with_a_replayable_curl(serve):
    out = grade(serve, items_app("offset", "duplicates"))
    walk = out["pagination.walk"]
    assert walk.status == "fail" and kinds(walk) == {"pagination_inconsistent"}
    finding = walk.findings[0]
    assert "appears on page" in finding.message
    replay = subprocess.run(["bash", "-c", finding.evidence[0].curl], capture_output=True, text=True, timeout=20)
    assert replay.stdout.startswith("HTTP/1.1 200")


def test_rows_in_random_order_are_inconsistent(serve):
    out = grade(serve, items_app("offset", "unstable"))
    walk = out["pagination.walk"]
    assert "pagination_inconsistent" in kinds(walk)
    message = walk.findings[0].message
    assert "never appear" in message or "appears on page" in message or "not stable" in message


def test_a_wrong_total_is_metadata_wrong(serve):
    out = grade(serve, items_app("offset", "wrong_total"))
    walk = out["pagination.walk"]
    assert kinds(walk) == {"pagination_metadata_wrong"}
    assert "the total says" in walk.findings[0].message
    assert 0 < walk.score < 1


@pytest.mark.parametrize("style", ["cursor", "drf"])
def test_a_last_page_that_announces_another_is_metadata_wrong(serve, style):
    out = grade(serve, items_app(style, "next_on_last"))
    walk = out["pagination.walk"]
    assert "pagination_metadata_wrong" in kinds(walk)
    assert "still announces a next page" in walk.findings[0].message


def test_no_maximum_page_size_is_pagination_no_cap(serve):
    out = grade(serve, items_app("offset", "no_cap"))
    limits = out["pagination.limits"]
    assert limits.status == "fail" and kinds(limits) == {"pagination_no_cap"}
    messages = " ".join(f.message for f in limits.findings)
    assert "limit=100000" in messages and "limit=-1" in messages  # -1 reads as "no limit", like SQLite


def test_a_bad_page_size_that_crashes_is_a_server_error(serve):
    out = grade(serve, items_app("offset", "crash"))
    limits = out["pagination.limits"]
    assert kinds(limits) == {"server_error"}
    assert limits.findings[0].evidence[0].response.status == 500


def test_ignored_filters_and_sorts_are_reported(serve):
    out = grade(serve, items_app("offset", "filter_ignored", "sort_ignored"))
    filters = out["pagination.filters"]
    assert kinds(filters) == {"filter_ignored", "sort_ignored"}
    by_kind = {f.kind: f for f in filters.findings}
    assert "`done`" in by_kind["filter_ignored"].message
    assert "did not sort by title" in by_kind["sort_ignored"].message
    assert filters.score == pytest.approx(1 / 3)


def test_the_survey_is_bounded_and_stays_on_the_target(serve):
    out = grade(serve, items_app("offset"))
    ctx = out["ctx"]
    posts = [e for e in ctx.prober.exchanges if e.method == "POST"]
    assert len(posts) == pagination.SEED_COUNT <= 30
    assert len(ctx.prober.exchanges) <= 2 * pagination.SEED_COUNT + pagination.MAX_PAGES + 20
    assert all(e.url.startswith(ctx.prober.base_url) for e in ctx.prober.exchanges)


def test_a_count_of_the_items_on_the_page_is_not_taken_for_a_wrong_total(serve):
    """{"count": 10, "items": [...]} counts the page, not the collection: no metadata finding for it."""
    from fastapi import Query

    app = items_app("none")
    app.router.routes = [r for r in app.router.routes if not (getattr(r, "path", "") == "/items" and "GET" in r.methods)]

    @app.get("/items")
    def page(limit: int = Query(10, ge=1, le=100), offset: int = Query(0, ge=0)):
        chunk = list(app.state.db.values())[offset:offset + limit]
        return {"count": len(chunk), "items": chunk}

    app.openapi_schema = None
    walk = grade(serve, app)["pagination.walk"]
    assert walk.status == "pass", walk
