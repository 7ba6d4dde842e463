import hashlib
import json
import logging
import os
import secrets
import time
import uuid
from contextlib import asynccontextmanager
from datetime import date
from typing import Annotated

import psycopg
from fastapi import Depends, FastAPI, Header, HTTPException, Path, Query, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from . import workers
from .db import get_conn, init_db, pool
from .ratelimit import RateLimitMiddleware
from .schemas import (EVENTS, ApiKeyCreate, ApiKeyCreated, ApiKeyOut, Currency, ErrorModel, InvoiceCreate, InvoiceOut,
                      InvoicePatch, LoginRequest, Page, Status, Token, Usage, UserCreate, UserOut, WebhookCreate,
                      WebhookCreated, WebhookOut)
from .security import (ACCESS_TOKEN_MINUTES, Principal, create_access_token, get_current_user, get_principal,
                       hash_password, login_limiter, new_api_key, require_admin, unauthorized, verify_password)

log = logging.getLogger("app")

Id = Annotated[int, Path(ge=1, le=2**63 - 1)]
Org = Annotated[Principal, Depends(get_principal)]
CurrentUser = Annotated[dict, Depends(get_current_user)]
Limit = Annotated[int, Query(ge=1, le=100, description="Page size (max 100)")]
Offset = Annotated[int, Query(ge=0, le=1_000_000, description="Number of items to skip")]
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=255,
                                              description="Send the same key again to retry safely: one invoice")]

REQUESTS = Counter("http_requests_total", "HTTP requests served", ["method", "route", "status"])
LATENCY = Histogram("http_request_duration_seconds", "Time to serve a request", ["method", "route"])
INVOICES = Counter("invoicely_invoices_total", "Invoices created or paid", ["event"])


def doc(status_code: int, description: str, **extra) -> dict:
    return {status_code: {"model": ErrorModel, "description": description, **extra}}


BAD_BODY = doc(400, "Request body could not be parsed")
UNAUTHORIZED = doc(401, "Missing, invalid or revoked credentials")
NOT_FOUND = doc(404, "Not found (or another organisation's)")
PEOPLE_ONLY = doc(403, "Needs a logged-in user, not an API key")
PAID_IS_FINAL = doc(409, "The invoice is paid: it can no longer change")


@asynccontextmanager
async def lifespan(app: FastAPI):
    init_db()
    seed_admin()
    workers.start()
    log.info("api started")
    yield
    workers.stop()
    pool.close()


app = FastAPI(title="Invoicely — invoicing for teams", version="1.0.0", lifespan=lifespan,
              description="Multi-tenant invoicing API: organisations, API keys, invoices, signed webhooks, idempotent "
                          "creates and usage metering.")


# per-client limit on the API; added before `observe`, so `observe` (outermost) logs and counts the 429s too
app.add_middleware(RateLimitMiddleware, routes=app.router.routes, exempt={"health", "metrics"})


@app.middleware("http")
async def observe(request: Request, call_next):
    request_id = request.headers.get("X-Request-ID") or uuid.uuid4().hex
    started = time.perf_counter()
    response = await call_next(request)
    elapsed = time.perf_counter() - started
    route = request.scope.get("route")
    template = route.path if route is not None else "unmatched"
    REQUESTS.labels(request.method, template, str(response.status_code)).inc()
    LATENCY.labels(request.method, template).observe(elapsed)
    response.headers["X-Request-ID"] = request_id
    if template not in ("/metrics", "/health"):
        log.info("request", extra={"method": request.method, "route": template, "status": response.status_code,
                                   "duration_ms": round(elapsed * 1000, 2), "request_id": request_id,
                                   "org_id": getattr(request.state, "org_id", None)})
    return response


@app.exception_handler(StarletteHTTPException)
async def allow_header_on_405(request: Request, exc: StarletteHTTPException):
    if exc.status_code == 405:
        methods = set()
        for route in app.routes:
            if isinstance(route, APIRoute) and route.path_regex.match(request.url.path):
                methods |= route.methods
        exc.headers = {"Allow": ", ".join(sorted(methods))}
    return await http_exception_handler(request, exc)


@app.exception_handler(RequestValidationError)
async def validation_error(request: Request, exc: RequestValidationError):
    errors = [{"type": e["type"], "loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()]
    return JSONResponse({"detail": errors}, status_code=422)


def user_out(row) -> UserOut:
    return UserOut(**{k: row[k] for k in UserOut.model_fields})


def invoice_out(row) -> InvoiceOut:
    return InvoiceOut(**{k: row[k] for k in InvoiceOut.model_fields})


def seed_admin() -> None:
    email, password = os.environ.get("ADMIN_EMAIL"), os.environ.get("ADMIN_PASSWORD")
    if email and password:
        with get_conn() as conn:
            org = conn.execute("INSERT INTO orgs (name) VALUES ('Invoicely staff') RETURNING id").fetchone()["id"]
            conn.execute("INSERT INTO users (org_id, email, full_name, password_hash, role) VALUES (%s, %s, 'Admin', "
                         "%s, 'admin') ON CONFLICT (email) DO UPDATE SET role = 'admin'",
                         (org, email.lower(), hash_password(password)))


# ---------- accounts: signing up makes an organisation ----------

@app.post("/auth/register", status_code=201, response_model=UserOut, tags=["auth"],
          responses=doc(409, "Email already registered") | BAD_BODY)
def register(body: UserCreate):
    password_hash = hash_password(body.password)
    try:
        with get_conn() as conn:
            org = conn.execute("INSERT INTO orgs (name) VALUES (%s) RETURNING id",
                               (body.org_name or f"{body.full_name}'s team",)).fetchone()["id"]
            row = conn.execute("INSERT INTO users (org_id, email, full_name, password_hash) VALUES (%s, %s, %s, %s) "
                               "RETURNING *", (org, body.email, body.full_name, password_hash)).fetchone()
    except psycopg.errors.UniqueViolation:
        raise HTTPException(409, "Email already registered") from None
    return user_out(row)


@app.post("/auth/login", response_model=Token, tags=["auth"], responses=doc(401, "Incorrect email or password")
          | BAD_BODY | doc(429, "Too many failed logins", headers={"Retry-After": {"schema": {"type": "integer"}}}))
def login(body: LoginRequest, request: Request):
    key = (request.client.host if request.client else "-", body.email.strip().lower())
    wait = login_limiter.retry_after(key)
    if wait:
        raise HTTPException(429, "Too many failed login attempts, try again later", headers={"Retry-After": str(wait)})
    with get_conn() as conn:
        row = conn.execute("SELECT id, password_hash FROM users WHERE email = %s", (key[1],)).fetchone()
    if not verify_password(body.password, row["password_hash"] if row else None):
        login_limiter.record_failure(key)
        raise unauthorized("Incorrect email or password")
    login_limiter.reset(key)
    return Token(access_token=create_access_token(row["id"]), expires_in=ACCESS_TOKEN_MINUTES * 60)


@app.get("/users/me", response_model=UserOut, tags=["users"], responses=UNAUTHORIZED | PEOPLE_ONLY)
def read_me(user: CurrentUser):
    return user_out(user)


# ---------- API keys: managed by people, used by programs ----------

@app.post("/api-keys", status_code=201, response_model=ApiKeyCreated, tags=["api keys"],
          responses=UNAUTHORIZED | PEOPLE_ONLY | BAD_BODY)
def create_api_key(body: ApiKeyCreate, user: CurrentUser):
    key, hashed = new_api_key()
    with get_conn() as conn:
        row = conn.execute("INSERT INTO api_keys (org_id, name, prefix, key_hash) VALUES (%s, %s, %s, %s) RETURNING *",
                           (user["org_id"], body.name, key[:8], hashed)).fetchone()
    return ApiKeyCreated(key=key, **{k: row[k] for k in ApiKeyOut.model_fields})


@app.get("/api-keys", response_model=Page[ApiKeyOut], tags=["api keys"], responses=UNAUTHORIZED | PEOPLE_ONLY)
def list_api_keys(user: CurrentUser, limit: Limit = 20, offset: Offset = 0):
    with get_conn() as conn:
        total = conn.execute("SELECT count(*) AS n FROM api_keys WHERE org_id = %s", (user["org_id"],)).fetchone()["n"]
        rows = conn.execute("SELECT * FROM api_keys WHERE org_id = %s ORDER BY id LIMIT %s OFFSET %s",
                            (user["org_id"], limit, offset)).fetchall()
    return Page[ApiKeyOut](items=[ApiKeyOut(**{k: r[k] for k in ApiKeyOut.model_fields}) for r in rows], total=total,
                           limit=limit, offset=offset)


@app.delete("/api-keys/{key_id}", status_code=204, response_class=Response, tags=["api keys"],
            responses=UNAUTHORIZED | PEOPLE_ONLY | NOT_FOUND)
def revoke_api_key(key_id: Id, user: CurrentUser):
    with get_conn() as conn:
        row = conn.execute("UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = %s AND org_id = %s "
                           "RETURNING id", (key_id, user["org_id"])).fetchone()
    if row is None:
        raise HTTPException(404, f"API key {key_id} not found")
    return Response(status_code=204)


# ---------- invoices: every query is scoped to the caller's organisation ----------

def fetch_invoice(conn, invoice_id: int, org_id: int, lock: bool = False):
    row = conn.execute("SELECT * FROM invoices WHERE id = %s AND org_id = %s" + (" FOR UPDATE" if lock else ""),
                       (invoice_id, org_id)).fetchone()
    if row is None:  # 404, not 403: another organisation's ids reveal nothing
        raise HTTPException(404, f"Invoice {invoice_id} not found")
    return row


def _request_hash(body: InvoiceCreate) -> str:
    return hashlib.sha256(json.dumps(body.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()


def _replay(seen, body: InvoiceCreate) -> JSONResponse:
    if seen["request_hash"] != _request_hash(body):
        raise HTTPException(409, "This Idempotency-Key was already used with a different request")
    return JSONResponse(json.loads(seen["response"]), status_code=seen["status_code"])


@app.post("/invoices", status_code=201, response_model=InvoiceOut, tags=["invoices"],
          responses=UNAUTHORIZED | BAD_BODY | doc(409, "The Idempotency-Key was used with a different body"))
def create_invoice(body: InvoiceCreate, org: Org, idempotency_key: IdempotencyKey = None):
    with get_conn() as conn:
        if idempotency_key:
            seen = conn.execute("SELECT request_hash, status_code, response FROM idempotency_keys WHERE org_id = %s "
                                "AND key = %s", (org.org_id, idempotency_key)).fetchone()
            if seen is not None:
                return _replay(seen, body)
        # the per-org counter row is locked until commit: invoice numbers have no gaps and no duplicates
        seq = conn.execute("UPDATE orgs SET invoice_seq = invoice_seq + 1 WHERE id = %s RETURNING invoice_seq",
                           (org.org_id,)).fetchone()["invoice_seq"]
        row = conn.execute("INSERT INTO invoices (org_id, number, customer_name, customer_email, description, "
                           "amount_cents, currency, due_date) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING *",
                           (org.org_id, f"INV-{seq:06d}", body.customer_name, body.customer_email, body.description,
                            body.amount_cents, body.currency, body.due_date)).fetchone()
        out = invoice_out(row)
        if idempotency_key:
            try:
                with conn.transaction():
                    conn.execute("INSERT INTO idempotency_keys (org_id, key, request_hash, status_code, response) "
                                 "VALUES (%s, %s, %s, 201, %s)", (org.org_id, idempotency_key, _request_hash(body),
                                                                  out.model_dump_json()))
            except psycopg.errors.UniqueViolation:  # a concurrent retry won: undo ours, answer what it answered
                conn.rollback()
                seen = conn.execute("SELECT request_hash, status_code, response FROM idempotency_keys "
                                    "WHERE org_id = %s AND key = %s", (org.org_id, idempotency_key)).fetchone()
                return _replay(seen, body)
        workers.enqueue_event(conn, org.org_id, "invoice.created", jsonable_encoder(out))
    INVOICES.labels("created").inc()
    return out


@app.get("/invoices", response_model=Page[InvoiceOut], tags=["invoices"], responses=UNAUTHORIZED)
def list_invoices(org: Org, limit: Limit = 20, offset: Offset = 0,
                  status: Annotated[Status | None, Query(description="Only invoices in this status")] = None,
                  currency: Annotated[Currency | None, Query(description="Only invoices in this currency")] = None):
    where, params = "org_id = %s", [org.org_id]
    if status is not None:
        where, params = where + " AND status = %s", params + [status]
    if currency is not None:
        where, params = where + " AND currency = %s", params + [currency]
    with get_conn() as conn:
        total = conn.execute(f"SELECT count(*) AS n FROM invoices WHERE {where}", params).fetchone()["n"]
        rows = conn.execute(f"SELECT * FROM invoices WHERE {where} ORDER BY id LIMIT %s OFFSET %s",
                            params + [limit, offset]).fetchall()
    return Page[InvoiceOut](items=[invoice_out(r) for r in rows], total=total, limit=limit, offset=offset)


@app.get("/invoices/{invoice_id}", response_model=InvoiceOut, tags=["invoices"], responses=UNAUTHORIZED | NOT_FOUND)
def get_invoice(invoice_id: Id, org: Org):
    with get_conn() as conn:
        return invoice_out(fetch_invoice(conn, invoice_id, org.org_id))


NULLABLE = {"customer_email", "due_date"}  # null clears these; null for any other field means "leave it"


@app.patch("/invoices/{invoice_id}", response_model=InvoiceOut, tags=["invoices"],
           responses=UNAUTHORIZED | NOT_FOUND | BAD_BODY | PAID_IS_FINAL)
def update_invoice(invoice_id: Id, body: InvoicePatch, org: Org):
    with get_conn() as conn:
        row = fetch_invoice(conn, invoice_id, org.org_id, lock=True)
        if row["status"] == "paid":
            raise HTTPException(409, f"Invoice {row['number']} is paid: it can no longer change")
        changes = {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None or k in NULLABLE}
        old_status, new_status = row["status"], changes.get("status", row["status"])
        values = {**row, **changes}
        row = conn.execute(
            "UPDATE invoices SET customer_name = %s, customer_email = %s, description = %s, amount_cents = %s, "
            "currency = %s, due_date = %s, status = %s, updated_at = now(), "
            "sent_at = CASE WHEN %s <> 'draft' THEN coalesce(sent_at, now()) END, "
            "paid_at = CASE WHEN %s = 'paid' THEN now() END WHERE id = %s AND org_id = %s RETURNING *",
            (values["customer_name"], values["customer_email"], values["description"], values["amount_cents"],
             values["currency"], values["due_date"], new_status, new_status, new_status, invoice_id,
             org.org_id)).fetchone()
        out = invoice_out(row)
        event = ("invoice.paid" if new_status == "paid"
                 else "invoice.sent" if (old_status, new_status) == ("draft", "sent") else "invoice.updated")
        workers.enqueue_event(conn, org.org_id, event, jsonable_encoder(out))
    if new_status == "paid":
        INVOICES.labels("paid").inc()
    return out


@app.delete("/invoices/{invoice_id}", status_code=204, response_class=Response, tags=["invoices"],
            responses=UNAUTHORIZED | NOT_FOUND | PAID_IS_FINAL)
def delete_invoice(invoice_id: Id, org: Org):
    with get_conn() as conn:
        row = fetch_invoice(conn, invoice_id, org.org_id, lock=True)
        if row["status"] == "paid":  # kept for the books: paid invoices are never deleted
            raise HTTPException(409, f"Invoice {row['number']} is paid: it cannot be deleted")
        conn.execute("DELETE FROM invoices WHERE id = %s AND org_id = %s", (invoice_id, org.org_id))
        workers.enqueue_event(conn, org.org_id, "invoice.deleted", {"id": invoice_id, "number": row["number"]})
    return Response(status_code=204)


# ---------- webhooks ----------

@app.post("/webhooks", status_code=201, response_model=WebhookCreated, tags=["webhooks"],
          responses=UNAUTHORIZED | BAD_BODY)
def create_webhook(body: WebhookCreate, org: Org):
    secret = body.secret or "whsec_" + secrets.token_urlsafe(24)
    with get_conn() as conn:
        row = conn.execute("INSERT INTO webhooks (org_id, url, secret, events) VALUES (%s, %s, %s, %s) RETURNING *",
                           (org.org_id, body.url, secret, list(body.events or EVENTS))).fetchone()
    return WebhookCreated(secret=secret, **{k: row[k] for k in WebhookOut.model_fields})


@app.get("/webhooks", response_model=Page[WebhookOut], tags=["webhooks"], responses=UNAUTHORIZED)
def list_webhooks(org: Org, limit: Limit = 20, offset: Offset = 0):
    with get_conn() as conn:
        total = conn.execute("SELECT count(*) AS n FROM webhooks WHERE org_id = %s", (org.org_id,)).fetchone()["n"]
        rows = conn.execute("SELECT * FROM webhooks WHERE org_id = %s ORDER BY id LIMIT %s OFFSET %s",
                            (org.org_id, limit, offset)).fetchall()
    return Page[WebhookOut](items=[WebhookOut(**{k: r[k] for k in WebhookOut.model_fields}) for r in rows],
                            total=total, limit=limit, offset=offset)


@app.delete("/webhooks/{webhook_id}", status_code=204, response_class=Response, tags=["webhooks"],
            responses=UNAUTHORIZED | NOT_FOUND)
def delete_webhook(webhook_id: Id, org: Org):
    with get_conn() as conn:
        row = conn.execute("DELETE FROM webhooks WHERE id = %s AND org_id = %s RETURNING id",
                           (webhook_id, org.org_id)).fetchone()
    if row is None:
        raise HTTPException(404, f"Webhook {webhook_id} not found")
    return Response(status_code=204)


# ---------- usage and admin ----------

@app.get("/usage", response_model=Usage, tags=["usage"], responses=UNAUTHORIZED)
def usage(org: Org):
    with get_conn() as conn:
        rows = conn.execute("SELECT day, requests FROM usage WHERE org_id = %s ORDER BY day DESC LIMIT 30",
                            (org.org_id,)).fetchall()
        total = conn.execute("SELECT coalesce(sum(requests), 0) AS n FROM usage WHERE org_id = %s",
                             (org.org_id,)).fetchone()["n"]
    today = next((r["requests"] for r in rows if r["day"] == date.today()), 0)
    return Usage(org_id=org.org_id, requests_today=today, requests_total=total, days=rows)


@app.get("/admin/orgs", tags=["admin"], responses=UNAUTHORIZED | doc(403, "Only admins may list organisations"))
def list_orgs(admin: Annotated[dict, Depends(require_admin)], limit: Limit = 20, offset: Offset = 0):
    with get_conn() as conn:
        rows = conn.execute("SELECT id, name, created_at FROM orgs ORDER BY id LIMIT %s OFFSET %s",
                            (limit, offset)).fetchall()
    return {"items": jsonable_encoder(rows), "limit": limit, "offset": offset}


# ---------- operations ----------

@app.get("/health", tags=["meta"], responses={503: {"description": "The database is down"}})
def health():
    try:
        with get_conn() as conn:
            conn.execute("SELECT 1")
        checks = {"database": "ok"}
    except Exception as exc:
        checks = {"database": f"error: {exc.__class__.__name__}"}
    checks["webhook_worker"] = "ok" if workers.running() else "stopped"
    healthy = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ok" if healthy else "degraded", "checks": checks},
                        status_code=200 if healthy else 503)


@app.get("/metrics", tags=["meta"], response_class=Response,
         responses={200: {"content": {"text/plain": {}}, "description": "Prometheus metrics"}})
def metrics():
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
