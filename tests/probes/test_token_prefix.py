"""DRF's TokenAuthentication reads `Authorization: Token <key>`; drf-spectacular documents it as an apiKey on the
Authorization header whose description names the prefix, listed after basic and session (cookie) auth when those
classes are on too. The grader sends the token in the header with the prefix the description says, and when a spec
declares the apiKey on Authorization without saying, finds the scheme word a protected read takes."""

from __future__ import annotations

import secrets

import pytest
from fastapi import FastAPI, Header, HTTPException
from pydantic import BaseModel

from ..conftest import make_context, run


class Credentials(BaseModel):
    username: str
    password: str


class TodoIn(BaseModel):
    title: str


def token_app(description: str, *, session_too: bool = False) -> FastAPI:
    app = FastAPI(title="Token todos")
    users: dict[str, str] = {}
    tokens: dict[str, str] = {}
    todos: dict[int, dict] = {}

    def owner(authorization: str | None) -> str:
        scheme, _, key = (authorization or "").partition(" ")
        if scheme != "Token" or key not in tokens:
            raise HTTPException(401, "Invalid token.")
        return tokens[key]

    @app.post("/api/auth/register/", status_code=201)
    def register(body: Credentials):
        if body.username in users:
            raise HTTPException(400, "taken")
        users[body.username] = body.password
        return {"username": body.username}

    @app.post("/api/auth/login/")
    def login(body: Credentials):
        if users.get(body.username) != body.password:
            raise HTTPException(400, "Unable to log in with the username and password given.")
        key = secrets.token_hex(20)
        tokens[key] = body.username
        return {"token": key}

    @app.get("/api/todos/")
    def mine(authorization: str | None = Header(None)):
        user = owner(authorization)
        return [t for t in todos.values() if t["owner"] == user]

    @app.post("/api/todos/", status_code=201)
    def create(body: TodoIn, authorization: str | None = Header(None)):
        todo = {"id": len(todos) + 1, "title": body.title, "owner": owner(authorization)}
        todos[todo["id"]] = todo
        return {k: v for k, v in todo.items() if k != "owner"}

    def openapi():
        spec = FastAPI.openapi(app)
        # drf-spectacular lists every authentication class: basic and session (a cookie) before the token
        others = {"basicAuth": {"type": "http", "scheme": "basic"},
                  "cookieAuth": {"type": "apiKey", "in": "cookie", "name": "sessionid"}} if session_too else {}
        spec["components"]["securitySchemes"] = {**others, "tokenAuth": {
            "type": "apiKey", "in": "header", "name": "Authorization", "description": description}}
        for path, item in spec["paths"].items():
            for op in item.values():
                if path.startswith("/api/todos"):
                    op["security"] = [{"tokenAuth": []}]
                    op["parameters"] = [p for p in op.get("parameters", []) if p.get("name") != "authorization"]
        return spec

    app.openapi = openapi
    return app


@pytest.mark.parametrize(("description", "session_too"), [
    ('Token-based authentication with required prefix "Token"', False), ("A token.", False),
    ('Token-based authentication with required prefix "Token"', True)],
    ids=["prefix-said", "prefix-found", "beside-basic-and-session"])
def test_a_token_scheme_on_authorization_is_sent_with_its_prefix(serve, description, session_too):
    ctx = make_context(serve(token_app(description, session_too=session_too)))
    [user] = ctx.identities(1)
    assert ctx.api.auth.send_header == "Authorization" and ctx.api.auth.send_prefix == "Token ", ctx.api.auth
    assert ctx.prober.request("GET", "/api/todos/", headers=user.headers(ctx.api.auth)).status == 200
    outcome = run("auth.required", ctx)
    assert outcome.status == "pass", outcome


def test_the_login_refusing_credentials_of_no_account_is_no_valid_request_rejected(serve):
    """DRF's obtain-token view answers 400 to credentials that match no account, which Schemathesis' generated
    (schema-valid) logins always are: set aside with the reason, not positive_data_rejected on the login."""
    ctx = make_context(serve(token_app('required prefix "Token"')))
    outcome = run("contract.http_semantics", ctx)
    refused = [e for e in ctx.prober.exchanges if e.url.endswith("/api/auth/login/") and e.status == 400]
    assert refused, "the fuzzer sent no login the app refused"
    assert not [f for f in outcome.findings if f.kind == "positive_data_rejected"
                and f.operation == "POST /api/auth/login/"], outcome
    assert "to the login with schema-valid credentials of no account were refused" in outcome.summary
