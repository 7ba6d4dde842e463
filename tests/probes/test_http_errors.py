"""Probe tests of the HTTP-semantics checks: unknown routes, wrong methods, wrong content types, oversized bodies
and one error shape, each against a real in-process app that handles it well and one that does not."""

from __future__ import annotations

import subprocess

import pytest
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..conftest import kinds, make_context, run
from .list_apps import items_app, notes_flask_app

CHECKS = ("http.unknown_route", "http.method_not_allowed", "http.content_type", "http.oversized_body",
          "http.error_shape")


def grade(serve, app) -> dict:
    ctx = make_context(serve(app))
    run("crud.lifecycle", ctx)  # an ordinary grade's traffic: a 404 after the delete, for the error-shape scan
    out = {check_id: run(check_id, ctx) for check_id in CHECKS}
    out["ctx"] = ctx
    return out


@pytest.mark.parametrize("make", [lambda: items_app("offset"), lambda: notes_flask_app()], ids=["fastapi", "flask"])
def test_well_behaved_apps_pass_every_http_check(serve, make):
    out = grade(serve, make())
    for check_id in CHECKS:
        assert out[check_id].status == "pass", (check_id, out[check_id])
        assert out[check_id].evidence and all(e.curl for e in out[check_id].evidence), check_id


def test_flask_answers_the_precise_statuses(serve):
    out = grade(serve, notes_flask_app())
    assert "405, Allow:" in out["http.method_not_allowed"].summary
    assert "with 415" in out["http.content_type"].summary
    assert "with 413" in out["http.oversized_body"].summary


def test_a_catch_all_route_is_unknown_route_not_404(serve):
    out = grade(serve, notes_flask_app("catch_all"))
    outcome = out["http.unknown_route"]
    assert kinds(outcome) == {"unknown_route_not_404"}
    assert outcome.findings[0].evidence[0].response.status == 200


def test_an_html_404_page_is_non_json_error(serve):
    outcome = grade(serve, notes_flask_app("html_404"))["http.unknown_route"]
    assert kinds(outcome) == {"non_json_error"}
    evidence = outcome.findings[0].evidence[0]
    headers = {k.lower(): v for k, v in evidence.response.headers.items()}
    assert evidence.response.status == 404 and "text/html" in headers["content-type"]
    replay = subprocess.run(["bash", "-c", evidence.curl], capture_output=True, text=True, timeout=20)
    assert replay.stdout.startswith("HTTP/1.1 404")


def test_a_wrong_method_answered_404_is_method_not_allowed_wrong(serve):
    outcome = grade(serve, notes_flask_app("no_405"))["http.method_not_allowed"]
    assert kinds(outcome) == {"method_not_allowed_wrong"}
    assert "answered 404 instead of 405" in outcome.findings[0].message
    assert outcome.findings[0].evidence[0].request.url.endswith("/notes/999999999"), "no real object is touched"


def test_a_405_without_allow_is_method_not_allowed_wrong_with_partial_credit(serve):
    outcome = grade(serve, notes_flask_app("no_allow"))["http.method_not_allowed"]
    assert kinds(outcome) == {"method_not_allowed_wrong"} and outcome.score == 0.5
    assert "Allow header" in outcome.findings[0].message


def test_a_text_plain_body_parsed_as_json_is_content_type_not_checked(serve):
    app = notes_flask_app("force_json")
    outcome = grade(serve, app)["http.content_type"]
    assert kinds(outcome) == {"content_type_not_checked"}
    assert outcome.findings[0].evidence[0].request.headers["Content-Type"] == "text/plain"
    assert not app.notes, "the note the probe created was deleted again"


def test_an_unbounded_body_is_oversized_body_accepted_and_its_curl_rebuilds_the_body(serve):
    app = notes_flask_app("no_body_limit")
    outcome = grade(serve, app)["http.oversized_body"]
    assert kinds(outcome) == {"oversized_body_accepted"}
    evidence = outcome.findings[0].evidence[0]
    assert len(evidence.request.body) < 200, "the evidence describes the 2 MiB body instead of holding it"
    assert not app.notes
    replay = subprocess.run(["bash", "-c", evidence.curl], capture_output=True, text=True, timeout=30)
    assert replay.stdout.startswith("HTTP/1.1 201"), replay.stdout[:200] + replay.stderr[:200]
    assert len(next(iter(app.notes.values()))["title"]) == 2 * 1024 * 1024


def test_errors_in_two_shapes_are_error_shape_inconsistent(serve):
    outcome = grade(serve, notes_flask_app("mixed_errors"))["http.error_shape"]
    assert kinds(outcome) == {"error_shape_inconsistent"}
    assert "{message}" in outcome.findings[0].message and "{error}" in outcome.findings[0].message
    assert len(outcome.findings[0].evidence) == 2 and 0 < outcome.score < 1


def problem_details_app() -> FastAPI:
    """RFC 9457 errors whose optional members differ (a 404 with `instance`, a 422 with an `errors` extension)."""
    app = items_app("offset")

    def problem(status: int, title: str, request: Request, **extra) -> JSONResponse:
        return JSONResponse({"type": "about:blank", "title": title, "status": status, "instance": request.url.path,
                             **extra}, status_code=status, media_type="application/problem+json")

    @app.exception_handler(StarletteHTTPException)  # the router's own 404/405 too
    async def http_problem(request: Request, exc: StarletteHTTPException):
        return problem(exc.status_code, str(exc.detail), request)

    @app.exception_handler(RequestValidationError)
    async def validation_problem(request: Request, exc: RequestValidationError):
        return problem(422, "Validation failed", request, errors=[e["msg"] for e in exc.errors()])

    return app


def test_rfc9457_problem_details_are_one_shape(serve):
    outcome = grade(serve, problem_details_app())["http.error_shape"]
    assert outcome.status == "pass", outcome
    assert "RFC 9457" in outcome.summary


def test_a_server_that_crashes_on_a_wrong_content_type_is_a_server_error(serve):
    app = FastAPI()

    @app.post("/things", status_code=201)
    async def create(request: Request):
        if request.headers.get("content-type") != "application/json":
            raise RuntimeError("expected JSON")  # an unhandled exception: 500
        return {"id": 1, **(await request.json())}

    spec = app.openapi()
    spec["paths"]["/things"]["post"]["requestBody"] = {"content": {"application/json": {"schema": {
        "type": "object", "properties": {"name": {"type": "string"}}}}}}
    app.openapi_schema = spec
    outcome = run("http.content_type", make_context(serve(app)))
    assert kinds(outcome) == {"server_error"}


def test_the_wrong_method_probe_uses_an_id_of_the_documented_type(serve):
    """A uuid route (Flask `<uuid:...>`) matches only a uuid: the probe's id must be one, or it measures a 404."""
    from flask import Flask, jsonify

    app = Flask("things")
    spec = {"openapi": "3.0.3", "info": {"title": "t", "version": "1"}, "paths": {"/things/{thing_id}": {"get": {
        "parameters": [{"name": "thing_id", "in": "path", "required": True,
                        "schema": {"type": "string", "format": "uuid"}}],
        "responses": {"200": {"description": "ok"}, "404": {"description": "missing"}}}}}}

    @app.get("/openapi.json")
    def openapi():
        return jsonify(spec)

    @app.get("/things/<uuid:thing_id>")
    def thing(thing_id):
        return jsonify(error="not found"), 404

    @app.errorhandler(405)
    def not_allowed(exc):
        return jsonify(error="method not allowed"), 405, {"Allow": ", ".join(exc.valid_methods)}

    outcome = run("http.method_not_allowed", make_context(serve(app)))
    assert outcome.status == "pass", outcome
    assert "/things/00000000-0000-4000-8000-00000000f00d" in outcome.evidence[0].request.url


def throttled_app(*, everything_throttled: bool = False) -> FastAPI:
    """DRF's shape: routes end in a slash, and a spent rate limit answers 429 before routing, whatever the method
    (here the login's, or every API path's); otherwise an undocumented method is 405 with Allow."""
    app = FastAPI()

    @app.middleware("http")
    async def throttle(request: Request, call_next):
        throttled = "/auth/login/" if not everything_throttled else "/auth/login/ /todos/"
        if request.url.path.startswith(tuple(throttled.split())):
            return JSONResponse({"detail": "Request was throttled."}, status_code=429, headers={"Retry-After": "60"})
        return await call_next(request)

    @app.post("/auth/login/")
    def login():
        return {"token": "t"}

    @app.get("/todos/{todo_id}/")
    def todo(todo_id: int):
        return JSONResponse({"detail": "Not found."}, status_code=404)

    return app


def test_a_rate_limit_answering_before_routing_is_not_a_wrong_405(serve):
    outcome = run("http.method_not_allowed", make_context(serve(throttled_app())))
    assert outcome.status == "pass", outcome  # the item path with its trailing slash is tried first
    assert outcome.evidence[0].request.url.endswith("/todos/999999999/") and "405, Allow:" in outcome.summary


def test_only_429s_leave_the_method_check_not_evaluated(serve):
    outcome = run("http.method_not_allowed", make_context(serve(throttled_app(everything_throttled=True))))
    assert outcome.status == "not_evaluated", outcome
    assert "429 Too Many Requests" in outcome.reason and not outcome.findings


def powered_by_app() -> FastAPI:
    """Express' default, in FastAPI: every answer says `X-Powered-By: Express`."""
    app = items_app("offset")

    @app.middleware("http")
    async def powered_by(request: Request, call_next):
        answer = await call_next(request)
        answer.headers["X-Powered-By"] = "Express"
        return answer

    return app


@pytest.mark.parametrize(("make", "told"), [
    (lambda: items_app("offset"), None),  # uvicorn's bare `server: uvicorn` names no version
    (powered_by_app, "x-powered-by: Express"),
    (lambda: notes_flask_app(), "Werkzeug/"),  # the Werkzeug server says its version and Python's
], ids=["uvicorn", "x-powered-by", "werkzeug"])
def test_answers_that_advertise_the_stack_are_a_warning(serve, make, told):
    ctx = make_context(serve(make()))
    run("crud.lifecycle", ctx)  # some traffic to read the headers of
    outcome = run("http.stack_disclosure", ctx)
    if told is None:
        assert outcome.status == "pass" and outcome.evidence, outcome
        return
    assert outcome.status == "fail" and outcome.score == 0.5 and kinds(outcome) == {"stack_disclosed"}, outcome
    assert told in outcome.findings[0].message and outcome.findings[0].severity == "low"
