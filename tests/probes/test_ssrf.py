"""The server-side request forgery probe against real in-process APIs that take an avatar URL: one fetches it
(the receiver records the fetch: a finding with both requests as evidence), one in a background thread, one only
stores it (pass, since the receiver was reachable and nothing came), one refuses every body (not evaluated: no
request was accepted), and one whose only URL is a webhook registration (not applicable)."""

from __future__ import annotations

import threading

import httpx
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

from ..conftest import kinds, make_context, run

FAST = {"ssrf.client_urls": {"wait_s": 2.0}}


class ProfileIn(BaseModel):
    name: str
    avatar_url: str


class HookIn(BaseModel):
    url: str


def profiles_app(mode: str) -> FastAPI:
    app = FastAPI(title="Profiles")
    stored: list[dict] = []

    def fetch(url: str) -> None:
        try:
            httpx.get(url, timeout=2.0)
        except httpx.HTTPError:
            pass

    @app.post("/profiles", status_code=201)
    def create(body: ProfileIn):
        if mode == "refuse":
            raise HTTPException(422, "avatars are disabled")
        if mode == "fetch":
            fetch(body.avatar_url)  # "check the image exists"
        elif mode == "background":
            threading.Thread(target=fetch, args=(body.avatar_url,), daemon=True).start()
        stored.append({"id": len(stored) + 1, **body.model_dump()})
        return stored[-1]

    @app.get("/profiles")
    def profiles():
        return stored

    return app


def webhooks_app() -> FastAPI:
    app = FastAPI(title="Hooks")

    @app.post("/webhooks", status_code=201)
    def register(body: HookIn):
        return {"id": 1, "url": body.url}

    return app


def context(serve, app):
    ctx = make_context(serve(app))
    ctx.check_params = FAST
    return ctx


def test_an_api_fetching_the_clients_avatar_url_fails_with_both_requests_as_evidence(serve):
    outcome = run("ssrf.client_urls", context(serve, profiles_app("fetch")))
    assert outcome.status == "fail" and kinds(outcome) == {"ssrf"}, outcome
    [finding] = outcome.findings
    assert finding.severity == "high" and "avatar_url" in finding.message and "API7:2023" in finding.message
    sent, fetched = finding.evidence
    assert sent.request.method == "POST" and "/ssrf/0/avatar_url" in sent.request.body
    assert fetched.request.method == "GET" and fetched.request.url.endswith("/ssrf/0/avatar_url")
    assert "http.server" in fetched.curl


def test_a_fetch_made_in_the_background_is_caught_too(serve):
    outcome = run("ssrf.client_urls", context(serve, profiles_app("background")))
    assert outcome.status == "fail" and kinds(outcome) == {"ssrf"}, outcome


def test_an_api_that_stores_the_url_only_passes_and_says_how_long_it_waited(serve):
    outcome = run("ssrf.client_urls", context(serve, profiles_app("store")))
    assert outcome.status == "pass", outcome
    assert "POST /profiles" in outcome.summary and "none fetched it within 2.0 s" in outcome.summary
    assert "127.0.0.1" in outcome.summary  # where the receiver listened: the API could have reached it


def test_nothing_accepted_is_not_evaluated_not_a_pass(serve):
    outcome = run("ssrf.client_urls", context(serve, profiles_app("refuse")))
    assert outcome.status == "not_evaluated", outcome
    assert "POST /profiles answered 422" in outcome.reason


def test_a_webhook_registration_is_not_an_ssrf_candidate(serve):
    outcome = run("ssrf.client_urls", context(serve, webhooks_app()))
    assert outcome.status == "not_applicable", outcome
