"""A sign-up rate limit (DRF's ScopedRateThrottle, express-rate-limit on /register) that the fuzzer would spend:
the mass-assignment sign-up runs before the contract checks, so it is judged rather than refused with 429."""

from __future__ import annotations

import secrets

from fastapi import FastAPI, Header, HTTPException
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from portfolio_grader.checks.registry import import_builtin_checks, run_checks

from ..conftest import make_context

SIGNUPS_ALLOWED = 4  # user A, the mass-assignment user, and a little room; the fuzzer alone sends more


class SignUp(BaseModel):
    username: str = Field(min_length=3, max_length=40)
    password: str = Field(min_length=8, max_length=64)


def throttled_signup_app() -> FastAPI:
    app = FastAPI(title="Throttled sign-up")
    users: dict[str, dict] = {}
    tokens: dict[str, str] = {}
    spent = {"signups": 0}

    @app.middleware("http")
    async def throttle(request, call_next):
        if request.url.path == "/register":
            spent["signups"] += 1
            if spent["signups"] > SIGNUPS_ALLOWED:
                return JSONResponse({"detail": "Request was throttled."}, status_code=429,
                                    headers={"Retry-After": "60"})
        return await call_next(request)

    @app.post("/register", status_code=201)
    def register(body: SignUp):
        if body.username in users:
            raise HTTPException(400, "taken")
        users[body.username] = {"username": body.username, "password": body.password, "role": "user"}
        return {"username": body.username, "role": "user"}  # extra fields such as role are ignored

    @app.post("/login")
    def login(body: SignUp):
        user = users.get(body.username)
        if user is None or user["password"] != body.password:
            raise HTTPException(401, "wrong credentials")
        token = secrets.token_hex(16)
        tokens[token] = body.username
        return {"access_token": token}

    @app.get("/me")
    def me(authorization: str | None = Header(None)):
        name = tokens.get((authorization or "").removeprefix("Bearer "))
        if name is None:
            raise HTTPException(401, "not logged in")
        return {"username": name, "role": users[name]["role"]}

    return app


def test_the_mass_assignment_sign_up_comes_before_the_fuzzer_spends_the_limit(serve):
    import_builtin_checks()
    ctx = make_context(serve(throttled_signup_app()))
    ctx.identities(1)  # user A, made before any check as the pipeline does
    fuzzed, assigned = run_checks(["contract.no_server_errors", "ownership.mass_assignment"], ctx)
    assert assigned.check == "ownership.mass_assignment"
    assert assigned.status == "pass", assigned  # judged: role stayed "user"
    assert "429" not in (assigned.reason or "")
