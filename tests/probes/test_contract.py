"""The Schemathesis-driven contract checks against real in-process apps: a clean one, a flawed one, and
specs that cannot be exercised. No mocks: the apps are served on 127.0.0.1 by the `serve` fixture."""

import copy
import logging
import os
import socket
import subprocess
import time
from typing import Annotated

import httpx
import pytest

from portfolio_grader.checks import contract
from portfolio_grader.checks.registry import REGISTRY, CheckContext, Settings, run_check
from portfolio_grader.models import ApiModel, CheckOutcome, RepoFacts, RunningService, Source, Workspace
from portfolio_grader.probe import Prober

CONTRACT_CHECKS = sorted(check_id for check_id in REGISTRY if check_id.startswith("contract.")
                         and REGISTRY[check_id].func.__module__ == contract.__name__)
SETTINGS = Settings(seed=20261121, max_examples=5, contract_time_budget=40.0, request_timeout=5.0)


@pytest.fixture(autouse=True)
def _quiet_servers():
    # the flawed app crashes on purpose; its tracebacks and werkzeug's access log are noise here
    for name in ("werkzeug", "flawed", "uvicorn.error"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    yield


def make_ctx(url: str, spec: dict | None = None) -> CheckContext:
    spec = spec if spec is not None else httpx.get(f"{url}/openapi.json").json()
    return CheckContext(
        workspace=Workspace(name="t", source=Source()),
        facts=RepoFacts(),
        service=RunningService(kind="external", base_url=url, status="running"),
        api=ApiModel(base_url=url, spec=spec),
        prober=Prober(url),
        settings=SETTINGS,
    )


def grade(ctx: CheckContext) -> tuple[dict[str, CheckOutcome], float]:
    started = time.monotonic()
    outcomes = {check_id: run_check(REGISTRY[check_id], ctx) for check_id in CONTRACT_CHECKS}
    return outcomes, time.monotonic() - started


# ---------------------------------------------------------------- the apps


def clean_app():
    """A FastAPI CRUD app that documents what it returns, validates what it accepts, and locks /me."""
    from fastapi import Depends, FastAPI, HTTPException, Path, Query, Response
    from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
    from pydantic import BaseModel, ConfigDict, Field

    app = FastAPI(title="clean bookshelf")
    books: dict[int, dict] = {}
    next_id = iter(range(1, 10**9))

    class BookIn(BaseModel):
        model_config = ConfigDict(extra="forbid")
        title: str = Field(min_length=1, max_length=100)
        pages: int = Field(ge=1, le=10_000)

    class Book(BookIn):
        id: int

    class ErrorOut(BaseModel):
        detail: str

    class Me(BaseModel):
        name: str

    not_found = {404: {"model": ErrorOut, "description": "No such book"}}
    # FastAPI answers 400 (not 422) to a body that is not even JSON, so a truthful spec lists it
    bad_body = {400: {"model": ErrorOut, "description": "The body could not be parsed"}}
    BookId = Annotated[int, Path(ge=1, le=2**31)]
    bearer = HTTPBearer(auto_error=False)

    def current_user(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> str:
        if credentials is None or credentials.credentials != "secret-token-of-alice":
            raise HTTPException(401, "Not authenticated", headers={"WWW-Authenticate": "Bearer"})
        return "alice"

    @app.post("/books", response_model=Book, status_code=201, responses=bad_body)
    def create_book(book: BookIn):
        book_id = next(next_id)
        books[book_id] = {"id": book_id, **book.model_dump()}
        return books[book_id]

    @app.get("/books", response_model=list[Book])
    def list_books(limit: Annotated[int, Query(ge=1, le=100)] = 10,
                   offset: Annotated[int, Query(ge=0, le=10**6)] = 0):
        return list(books.values())[offset:offset + limit]

    @app.get("/books/{book_id}", response_model=Book, responses=not_found)
    def read_book(book_id: BookId):
        if book_id not in books:
            raise HTTPException(404, "no such book")
        return books[book_id]

    @app.put("/books/{book_id}", response_model=Book, responses=not_found | bad_body)
    def replace_book(book_id: BookId, book: BookIn):
        if book_id not in books:
            raise HTTPException(404, "no such book")
        books[book_id] = {"id": book_id, **book.model_dump()}
        return books[book_id]

    @app.delete("/books/{book_id}", status_code=204, response_class=Response, responses=not_found)
    def delete_book(book_id: BookId):
        if books.pop(book_id, None) is None:
            raise HTTPException(404, "no such book")
        return Response(status_code=204)

    @app.get("/me", response_model=Me, responses={401: {"model": ErrorOut, "description": "No valid token"}})
    def me(user: str = Depends(current_user)):
        return {"name": user}

    return app


FLAWED_SPEC = {
    "openapi": "3.0.3",
    "info": {"title": "flawed bookshelf", "version": "1.0"},
    "paths": {
        "/books": {
            "post": {
                "operationId": "createBook",
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/BookIn"}}}},
                "responses": {
                    "201": {"description": "Created", "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/Book"}}}},
                    "422": {"description": "Invalid", "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/Error"}}}},
                },
            },
        },
        "/books/{book_id}": {
            "parameters": [{"name": "book_id", "in": "path", "required": True,
                            "schema": {"type": "integer", "minimum": 1}}],
            "get": {
                "operationId": "getBook",
                "responses": {
                    "200": {"description": "The book", "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/Book"}}}},
                    "404": {"description": "No such book", "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/Error"}}}},
                },
            },
            "delete": {
                "operationId": "deleteBook",
                "responses": {
                    "204": {"description": "Deleted"},
                    "404": {"description": "No such book", "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/Error"}}}},
                },
            },
        },
    },
    "components": {"schemas": {
        "BookIn": {"type": "object", "required": ["title", "pages"], "additionalProperties": False, "properties": {
            "title": {"type": "string", "minLength": 1, "maxLength": 100},
            "pages": {"type": "integer", "minimum": 1, "maximum": 10000}}},
        "Book": {"type": "object", "required": ["id", "title", "pages"], "properties": {
            "id": {"type": "integer"}, "title": {"type": "string"}, "pages": {"type": "integer"}}},
        "Error": {"type": "object", "required": ["detail"], "properties": {"detail": {"type": "string"}}},
    }},
}


def flawed_app():
    """A Flask app with a hand-written spec and one planted flaw per contract check."""
    from flask import Flask, jsonify, request

    app = Flask("flawed")
    books: dict[int, dict] = {}
    next_id = iter(range(1, 10**9))

    @app.get("/openapi.json")
    def openapi():
        return jsonify(FLAWED_SPEC)

    @app.post("/books")
    def create_book():
        data = request.get_json(silent=True)
        if not isinstance(data, dict):
            return jsonify(detail="the body must be a JSON object"), 422
        title = data.get("title")
        if isinstance(title, str) and len(title) > 20:
            raise RuntimeError("title column is VARCHAR(20)")  # planted: a 500 on long titles
        book_id = next(next_id)  # planted: nothing else is validated, negative data is stored
        books[book_id] = {"id": book_id, "title": title, "pages": data.get("pages")}
        return jsonify(books[book_id]), 201

    def parse_id(raw: str) -> int | None:
        try:
            return int(raw)
        except ValueError:
            return None

    @app.get("/books/<raw_id>")
    def read_book(raw_id: str):
        book_id = parse_id(raw_id)
        if book_id is None:
            return jsonify(detail="the id must be an integer"), 400  # planted: 400 is not documented
        if book_id not in books:
            return "no such book", 404, {"Content-Type": "text/plain"}  # planted: JSON is documented
        book = books[book_id]
        return jsonify(id=book["id"], title=book["title"], pages=str(book["pages"]))  # planted: pages as a string

    @app.delete("/books/<raw_id>")
    def delete_book(raw_id: str):
        book_id = parse_id(raw_id)
        if book_id is None or book_id not in books:
            return jsonify(detail="no such book"), 404
        return "", 204  # planted: answers 204 but never deletes

    return app


# ---------------------------------------------------------------- the tests


def test_clean_app_passes_every_contract_check(serve):
    url = serve(clean_app())
    ctx = make_ctx(url)
    spec_before = copy.deepcopy(ctx.api.spec)
    cwd_before = os.getcwd()

    outcomes, seconds = grade(ctx)
    print(f"clean FastAPI app: contract checks took {seconds:.1f} s")

    assert set(CONTRACT_CHECKS) >= {"contract.no_server_errors", "contract.response_schema", "contract.status_codes",
                                    "contract.content_types", "contract.input_validation", "contract.stateful",
                                    "contract.http_semantics", "contract.auth_enforced"}
    for check_id, outcome in outcomes.items():
        assert outcome.status == "pass", (check_id, outcome.summary, outcome.reason,
                                          [f.message for f in outcome.findings])
        assert outcome.score == 1.0
        assert f"seed {SETTINGS.seed}" in outcome.summary and "Schemathesis 4.32.5" in outcome.summary
    assert "generated requests over 6 operations: no 5xx" in outcomes["contract.no_server_errors"].summary
    assert outcomes["contract.no_server_errors"].evidence, "a pass shows representative exchanges"

    recorded = ctx.prober.exchanges
    assert len(recorded) > 0
    from_schemathesis = [e for e in recorded if e.source == "schemathesis"]
    assert len(from_schemathesis) > 50
    assert {e.method for e in from_schemathesis} >= {"GET", "POST", "PUT", "DELETE"}
    assert all(e.status is not None and len(e.body) <= contract.SCAN_LIMIT for e in from_schemathesis)

    # one run per grade, shared through the memo
    assert contract.contract_run(ctx) is ctx._memo[contract.MEMO_KEY]
    # the run neither edits the shared spec (Schemathesis writes inferred links into the dict it gets)
    # nor leaves the grader's working directory changed
    assert ctx.api.spec == spec_before
    assert os.getcwd() == cwd_before


def test_flawed_app_fails_each_check_with_the_right_kind(serve):
    url = serve(flawed_app())
    ctx = make_ctx(url)

    outcomes, seconds = grade(ctx)
    print(f"flawed Flask app: contract checks took {seconds:.1f} s")

    def findings(check_id: str, kind: str, operation: str):
        outcome = outcomes[check_id]
        assert outcome.status == "fail", (check_id, outcome.summary, outcome.reason)
        assert 0.0 <= outcome.score < 1.0
        hits = [f for f in outcome.findings if f.kind == kind and f.operation == operation]
        assert hits, (check_id, [(f.kind, f.operation) for f in outcome.findings])
        return hits

    crash = findings("contract.no_server_errors", "server_error", "POST /books")
    assert len(crash) == 1 and crash[0].severity == "high"
    assert findings("contract.response_schema", "schema_violation", "GET /books/{book_id}")[0].severity == "medium"
    undocumented = findings("contract.status_codes", "status_code_undocumented", "GET /books/{book_id}")
    assert any("answered 400" in f.message for f in undocumented)
    assert not any("answered 500" in f.message for f in outcomes["contract.status_codes"].findings), \
        "5xx belong to no_server_errors"
    findings("contract.content_types", "content_type_mismatch", "GET /books/{book_id}")
    findings("contract.input_validation", "negative_data_accepted", "POST /books")
    use_after_free = findings("contract.stateful", "use_after_free", "DELETE /books/{book_id}")[0]
    assert len(use_after_free.evidence[0].curl.splitlines()) >= 2, "a stateful failure keeps its curl chain"

    # one finding per (kind, operation); undocumented statuses one per (operation, status)
    for outcome in outcomes.values():
        keys = [(f.kind, f.operation, f.message.split(" answered ")[1][:3] if f.kind == "status_code_undocumented"
                 else None) for f in outcome.findings]
        assert len(keys) == len(set(keys)), keys
        for finding in outcome.findings:
            assert finding.hint == contract.KINDS[finding.kind].hint
            assert finding.evidence and finding.evidence[0].request.url.startswith(url)
            assert f"seed {SETTINGS.seed}" in (finding.evidence[0].note or "")

    assert outcomes["contract.auth_enforced"].status == "not_evaluated"
    assert "declares no security" in outcomes["contract.auth_enforced"].reason

    # the server-error evidence teaches and reproduces: its curl line gets the same 500 from the live app
    evidence = crash[0].evidence[0]
    assert evidence.response.status == 500
    assert "POST" in crash[0].message and "500" in crash[0].message
    statuses = []
    for line in evidence.curl.splitlines():
        if line.startswith("curl "):
            done = subprocess.run(["bash", "-c", line + " -s -o /dev/null -w '%{http_code}'"],
                                  capture_output=True, text=True, timeout=30)
            statuses.append(done.stdout.strip())
    assert statuses and statuses[-1] == "500", (evidence.curl, statuses)


def test_spec_whose_paths_the_server_does_not_have_is_not_evaluated(serve):
    url = serve(clean_app())
    spec = httpx.get(f"{url}/openapi.json").json()
    spec["paths"] = {f"/api/v9{path}": item for path, item in spec["paths"].items()}
    ctx = make_ctx(url, spec)

    outcomes, seconds = grade(ctx)
    print(f"spec with paths the server lacks: contract checks took {seconds:.1f} s")

    for check_id, outcome in outcomes.items():
        assert outcome.status == "not_evaluated", (check_id, outcome.status, outcome.summary)
        assert outcome.reason and "could not" in outcome.reason, (check_id, outcome.reason)
    assert "path the API does not have" in outcomes["contract.no_server_errors"].reason


def test_service_down_is_not_evaluated():
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
    ctx = make_ctx(url, copy.deepcopy(FLAWED_SPEC))
    outcomes, seconds = grade(ctx)
    print(f"service down: contract checks took {seconds:.1f} s")
    assert seconds < 10
    for check_id, outcome in outcomes.items():
        assert outcome.status == "not_evaluated", (check_id, outcome.status)
        assert outcome.reason
    assert "did not answer" in outcomes["contract.no_server_errors"].reason


def auth_app():
    """Two operations that declare Bearer auth: /me enforces it (with an undocumented 401), /stats ignores it."""
    from fastapi import Depends, FastAPI, HTTPException
    from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

    app = FastAPI(title="auth")
    enforced, ignored = HTTPBearer(), HTTPBearer(auto_error=False)

    @app.get("/me")
    def me(credentials: HTTPAuthorizationCredentials = Depends(enforced)) -> dict[str, str]:
        if credentials.credentials != "secret-token-of-alice":  # a bearer token is checked, not just present
            raise HTTPException(401, "Invalid token", headers={"WWW-Authenticate": "Bearer"})
        return {"name": "alice"}

    @app.get("/stats")
    def stats(credentials: HTTPAuthorizationCredentials | None = Depends(ignored)) -> dict[str, int]:
        return {"books": 3}  # planted: declares Bearer auth, never checks it

    return app


def test_auth_is_judged_only_where_the_spec_declares_it(serve):
    url = serve(auth_app())
    ctx = make_ctx(url)

    outcomes, seconds = grade(ctx)
    print(f"FastAPI auth app: contract checks took {seconds:.1f} s")

    auth = outcomes["contract.auth_enforced"]
    assert auth.status == "fail", (auth.summary, auth.reason)
    assert [(f.kind, f.operation, f.severity) for f in auth.findings] == [("auth_missing", "GET /stats", "high")]
    assert auth.score == 0.5  # one of the two secured operations holds
    assert "BOLA" in auth.summary  # says what it could not test
    # FastAPI's undocumented 401 on /me is the right answer to Schemathesis' anonymous requests: not counted
    codes = outcomes["contract.status_codes"]
    assert not [f for f in codes.findings if f.operation == "GET /me"], codes.findings
    assert "Set aside: 401 on GET /me" in codes.summary
