"""Probe tests of the spec, CRUD and error-handling checks against real in-process apps."""

from __future__ import annotations

import subprocess

import pytest
from .apps import flawed_recipes_app, good_books_app
from ..conftest import kinds, make_context, run

from portfolio_grader.models import RepoFacts
from pydantic import BaseModel


@pytest.fixture
def good(serve):
    routes = [("POST", "/books", "app.py:6"), ("GET", "/books", "app.py:12"), ("GET", "/books/{book_id}", "app.py:16"),
              ("PUT", "/books/{book_id}", "app.py:22"), ("DELETE", "/books/{book_id}", "app.py:29")]
    return make_context(serve(good_books_app()), facts=RepoFacts(routes_in_code=routes))


@pytest.fixture
def flawed(serve):
    facts = RepoFacts(routes_in_code=[("POST", "/recipes", "app.py:10"), ("GET", "/recipes/<int:recipe_id>", "app.py:20"),
                                      ("GET", "/recipes/search", "app.py:40")])
    return make_context(serve(flawed_recipes_app()), facts=facts)


def test_good_api_passes_every_spec_crud_and_error_check(good):
    for check_id in ("contract.spec_present", "contract.spec_valid", "contract.routes_match", "crud.lifecycle",
                     "errors.malformed_json", "errors.wrong_types", "errors.no_stack_traces", "errors.json_errors"):
        outcome = run(check_id, good)
        assert outcome.status == "pass", (check_id, outcome)
        assert outcome.evidence, f"{check_id} passed without evidence"


def test_discovery_finds_the_resource_and_its_operations(good):
    (resource,) = good.api.resources
    assert (resource.collection, resource.item, resource.id_field) == ("/books", "/books/{book_id}", "id")
    assert resource.update.method == "PUT" and resource.delete is not None and resource.list is not None


def test_crud_lifecycle_catches_updates_and_deletes_without_effect(flawed):
    outcome = run("crud.lifecycle", flawed)
    assert outcome.status == "fail" and kinds(outcome) == {"crud_lifecycle_broken"}
    message = outcome.findings[0].message
    assert "after PUT" in message or "after DELETE" in message
    assert 0 < outcome.score < 1
    notes = [e.note for e in outcome.findings[0].evidence]
    assert any("read after delete" in n for n in notes)


def test_malformed_json_500_with_trace_is_reported_with_a_working_curl(flawed):
    outcome = run("errors.malformed_json", flawed)
    assert "server_error" in kinds(outcome)
    evidence = outcome.findings[0].evidence[0]
    assert evidence.response.status == 500
    replay = subprocess.run(["bash", "-c", evidence.curl], capture_output=True, text=True, timeout=20)
    assert replay.stdout.startswith("HTTP/1.1 500"), replay.stdout[:200]


def test_stack_trace_scan_sees_responses_of_earlier_checks(flawed):
    run("errors.malformed_json", flawed)
    outcome = run("errors.no_stack_traces", flawed)
    assert outcome.status == "fail" and kinds(outcome) == {"stack_trace_leak"}
    assert "Traceback" in outcome.findings[0].evidence[0].response.body


def test_wrong_types_accepted_is_negative_data_accepted(flawed):
    outcome = run("errors.wrong_types", flawed)
    assert kinds(outcome) == {"negative_data_accepted"}
    assert outcome.findings[0].evidence[0].response.status == 201


def test_plain_text_errors_are_non_json(flawed):
    run("contract.routes_match", flawed)  # asks for ids that do not exist: text/plain 404s
    outcome = run("errors.json_errors", flawed)
    assert "non_json_error" in kinds(outcome)
    assert outcome.score < 1


def test_route_drift_both_ways(flawed):
    outcome = run("contract.routes_match", flawed)
    messages = " | ".join(f.message for f in outcome.findings)
    assert kinds(outcome) == {"spec_route_drift"}
    assert "GET /recipes/{recipe_id}/ratings is documented but not implemented" in messages
    assert "GET /recipes/search is implemented" in messages
    assert "POST /recipes" not in messages  # documented and implemented: no drift


def test_route_comparison_with_no_route_found_in_the_code_is_not_a_pass(serve):
    outcome = run("contract.routes_match", make_context(serve(good_books_app())))
    assert outcome.status == "not_evaluated" and "no route was found in the code" in outcome.reason, outcome


def test_checks_without_a_running_service_are_not_evaluated():
    ctx = make_context(None)
    for check_id in ("crud.lifecycle", "errors.malformed_json", "errors.no_stack_traces", "contract.spec_valid"):
        outcome = run(check_id, ctx)
        assert outcome.status == "not_evaluated" and outcome.reason, check_id
        assert outcome.score == 0


def test_missing_spec_fails_spec_present_and_points_to_the_manifest(serve):
    from fastapi import FastAPI

    app = FastAPI(openapi_url=None)
    ctx = make_context(serve(app))
    outcome = run("contract.spec_present", ctx)
    assert outcome.status == "fail" and kinds(outcome) == {"spec_missing"}
    crud = run("crud.lifecycle", ctx)
    assert crud.status == "not_evaluated" and "spec:" in crud.manifest_hint


def test_a_spec_that_could_have_been_served_is_not_called_missing_when_the_api_never_ran():
    outcome = run("contract.spec_present", make_context(None))
    assert outcome.status == "not_evaluated" and "did not run" in outcome.reason


def test_a_served_spec_larger_than_the_scan_limit_is_read_whole(serve):
    """Big APIs serve megabyte documents; the 256 KB cap on scanned bodies must not cut the spec."""
    from portfolio_grader.probe import SCAN_LIMIT

    app = good_books_app()
    app.description = "A" * (SCAN_LIMIT + 100_000)  # ~356 KB of spec
    ctx = make_context(serve(app))
    assert ctx.api.spec is not None and ctx.api.spec_problem is None
    assert len(ctx.api.spec["info"]["description"]) > SCAN_LIMIT
    assert run("contract.spec_present", ctx).status == "pass"
    assert run("crud.lifecycle", ctx).status == "pass"


def test_code_routes_under_the_spec_s_server_path_are_documented_ones(serve):
    """Django's urls.py spell the whole path (/api/projects/); the document says `servers: [{url: /api}]` and
    /projects/. Only the route the document truly lacks is drift."""
    from fastapi import FastAPI

    api = FastAPI(title="projects", servers=[{"url": "/api"}])

    @api.get("/projects/")
    def projects():
        return []

    @api.get("/projects/{pk}/")
    def project(pk: int):
        return {"id": pk}

    root = FastAPI(openapi_url=None)
    root.mount("/api", api)
    root.get("/openapi.json", include_in_schema=False)(lambda: api.openapi())
    routes = [("GET", "/api/projects/", "projects/urls.py:6"), ("GET", "/api/projects/<int:pk>/", "projects/urls.py:6"),
              ("GET", "/api/debug/", "debug/urls.py:3")]
    outcome = run("contract.routes_match", make_context(serve(root), facts=RepoFacts(routes_in_code=routes)))
    hidden = [f.operation for f in outcome.findings if "is implemented" in f.message]
    assert hidden == ["GET /api/debug/"], [f.message for f in outcome.findings]


class ProjectIn(BaseModel):
    name: str
    owner: int


def _projects_app(reason: str):
    from fastapi import FastAPI, HTTPException

    app = FastAPI(title="projects")

    @app.post("/projects/", status_code=201, responses={400: {}})
    def create(body: ProjectIn):
        if reason == "reference":  # Django REST framework's answer to a primary key that names nothing
            raise HTTPException(400, {"owner": [f'Invalid pk "{body.owner}" - object does not exist.']})
        raise HTTPException(400, {"name": ["This field is broken."]})

    @app.get("/projects/{pk}/", responses={404: {}})
    def read(pk: int):
        raise HTTPException(404, "Not found.")

    return app


def test_a_create_refused_for_the_grader_s_made_up_reference_is_not_evaluated_not_failed(serve):
    outcome = run("crud.lifecycle", make_context(serve(_projects_app("reference"))))
    assert outcome.status == "not_evaluated", (outcome.summary, outcome.reason)
    assert "made-up `owner`" in outcome.reason and "object does not exist" in outcome.reason


def test_a_create_refused_for_another_reason_still_fails(serve):
    outcome = run("crud.lifecycle", make_context(serve(_projects_app("other"))))
    assert outcome.status == "fail" and kinds(outcome) == {"crud_lifecycle_broken"}, (outcome.summary, outcome.reason)
