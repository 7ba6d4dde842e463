"""The shortener probes on APIs that are not URL shorteners: a capstone platform reaches its tier without short
links, so the redirect and click criteria must find nothing to grade there (not_applicable), not fail.

The trap: an invoicing API registers webhook endpoints at `POST /subscriptions {url}` (a POST taking a URL) and
serves an invoice's PDF through `GET /invoices/{id}/pdf` documented as a 302 to the file store, and "sign in with
GitHub" through `GET /auth/{provider}`, a 302 too. None is a short link; graded as one, the "redirect" of a
subscription id answers 404 and the load probe measures that 404.
A shortener whose redirect sits under its own collection (`GET /links/{code}/go`) is still found."""

from __future__ import annotations

import itertools
import secrets

from fastapi import FastAPI, HTTPException
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, Field

from portfolio_grader.checks import Settings

from ..conftest import make_context, run

URL = {"json_schema_extra": {"format": "uri"}, "min_length": 10, "max_length": 2000}


class SubscriptionIn(BaseModel):
    url: str = Field(**URL)


class InvoiceIn(BaseModel):
    customer_name: str = Field(min_length=1, max_length=100)
    amount_cents: int = Field(ge=1)


def invoicing_app() -> FastAPI:
    app = FastAPI()
    ids = itertools.count(1)
    invoices: dict[int, dict] = {}

    @app.post("/subscriptions", status_code=201)
    def subscribe(body: SubscriptionIn):
        return {"id": next(ids), "url": body.url, "secret": secrets.token_hex(16)}

    @app.post("/invoices", status_code=201)
    def create_invoice(body: InvoiceIn):
        invoice = {"id": next(ids), **body.model_dump()}
        invoices[invoice["id"]] = invoice
        return invoice

    @app.get("/invoices")
    def list_invoices():
        return list(invoices.values())

    @app.get("/invoices/{invoice_id}")
    def get_invoice(invoice_id: int):
        if invoice_id not in invoices:
            raise HTTPException(404, "no such invoice")
        return invoices[invoice_id]

    @app.get("/invoices/{invoice_id}/pdf", status_code=302, response_class=RedirectResponse,
             responses={302: {"description": "To the rendered PDF in the file store"}, 404: {"description": "Unknown"}})
    def invoice_pdf(invoice_id: int):
        if invoice_id not in invoices:
            raise HTTPException(404, "no such invoice")
        return RedirectResponse(f"https://files.example.com/invoices/{invoice_id}.pdf", status_code=302)

    @app.get("/auth/{provider}", status_code=302, response_class=RedirectResponse,
             responses={302: {"description": "Sign in with the provider"}, 404: {"description": "Unknown provider"}})
    def sign_in(provider: str):
        if provider != "github":
            raise HTTPException(404, "unknown provider")
        return RedirectResponse("https://github.com/login/oauth/authorize?client_id=invoicing", status_code=302)

    return app


class LinkIn(BaseModel):
    url: str = Field(**URL)


def nested_shortener_app() -> FastAPI:
    app = FastAPI()
    links: dict[str, dict] = {}
    ids = itertools.count(1)

    @app.post("/links", status_code=201)
    def shorten(body: LinkIn):
        link = {"id": next(ids), "code": secrets.token_hex(4), "url": body.url}
        links[link["code"]] = link
        return link

    @app.get("/links/{code}/go", status_code=302, response_class=RedirectResponse,
             responses={302: {"description": "To the long URL"}, 404: {"description": "Unknown code"}})
    def go(code: str):
        if code not in links:
            raise HTTPException(404, "unknown code")
        return RedirectResponse(links[code]["url"], status_code=302)

    return app


def test_a_platform_without_short_links_is_not_graded_as_a_shortener(serve):
    ctx = make_context(serve(invoicing_app()))
    outcome = run("shortener.redirect", ctx)
    assert outcome.status == "not_applicable", outcome
    assert not outcome.findings
    assert run("shortener.background_job", ctx).status == "not_applicable"


def test_the_load_probe_of_a_platform_reads_its_list_not_a_download(serve):
    ctx = make_context(serve(invoicing_app()))
    ctx.settings = Settings(max_examples=5, load_duration=1.0, load_concurrency=4, load_max_requests=200)
    ctx.check_params = {"load.latency": {"p95_ms": 1000, "max_error_rate": 0.01}}
    outcome = run("load.latency", ctx)
    assert outcome.status == "pass", outcome
    assert "the list GET /invoices" in outcome.summary


def test_a_shortener_whose_redirect_sits_under_its_collection_is_still_found(serve):
    ctx = make_context(serve(nested_shortener_app()))
    outcome = run("shortener.redirect", ctx)
    assert outcome.status == "pass", outcome
    assert "GET /links/{code}/go" in outcome.summary
