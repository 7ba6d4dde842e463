import json
import logging
import os
import re
import secrets
import sqlite3
import string
import time
import uuid
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from typing import Annotated

import redis
from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request, Response
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.routing import APIRoute
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from . import cache
from .db import get_conn, init_db
from .ratelimit import RateLimitMiddleware
from .schemas import ErrorModel, LinkCreate, LinkOut, LinkPatch, LinkStats, LoginRequest, Page, Token, UserCreate, UserOut
from .security import (ACCESS_TOKEN_MINUTES, create_access_token, get_current_user, hash_password, login_limiter,
                       require_admin, unauthorized, verify_password)

log = logging.getLogger("app")
PUBLIC_BASE_URL = os.environ.get("PUBLIC_BASE_URL", "http://localhost:8000").rstrip("/")
CODE_ALPHABET = "".join(c for c in string.ascii_letters + string.digits if c not in "0O1lI")  # unambiguous

LinkId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The id returned when the link was created")]
Code = Annotated[str, Path(max_length=64, description="The short code")]
CODE_SHAPE = re.compile(r"[A-Za-z0-9]{4,16}")  # checked in the handler: any other path is a 404
CurrentUser = Annotated[dict, Depends(get_current_user)]
Limit = Annotated[int, Query(ge=1, le=100, description="Page size (max 100)")]
Offset = Annotated[int, Query(ge=0, le=1_000_000, description="Number of items to skip")]

REQUESTS = Counter("http_requests_total", "HTTP requests served", ["method", "route", "status"])
LATENCY = Histogram("http_request_duration_seconds", "Time to serve a request", ["method", "route"])
REDIRECTS = Counter("shortener_redirects_total", "Short links followed")
LINKS_CREATED = Counter("shortener_links_created_total", "Short links created")


def doc(status_code: int, description: str, **extra) -> dict:
    return {status_code: {"model": ErrorModel, "description": description, **extra}}


BAD_BODY = doc(400, "Request body could not be parsed")
UNAUTHORIZED = doc(401, "Missing, invalid or expired token")
NOT_FOUND = doc(404, "Link not found (or owned by another user)")


@asynccontextmanager
async def lifespan(app: FastAPI):
    init_db()
    seed_admin()
    log.info("api started", extra={"redis": cache.REDIS_URL.rsplit("@", 1)[-1]})
    yield


app = FastAPI(title="Shortly — URL shortener API", version="2.0.0", lifespan=lifespan,
              description="Shorten URLs, follow short links, and see how often each one was clicked.")

# per-client limit on the API; added before `observe`, so `observe` (outermost) logs and counts the 429s too
app.add_middleware(RateLimitMiddleware, routes=app.router.routes, exempt={"follow", "health", "metrics"})


@app.middleware("http")
async def observe(request: Request, call_next):
    """One JSON log line and two metrics per request, labelled by route template (not raw path)."""
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
                                   "duration_ms": round(elapsed * 1000, 2), "request_id": request_id})
    return response


@app.exception_handler(StarletteHTTPException)
async def allow_header_on_405(request: Request, exc: StarletteHTTPException):
    if exc.status_code == 405:  # list every method of the path, not just those of the first matching route
        methods = set()
        for route in app.routes:
            if isinstance(route, APIRoute) and route.path_regex.match(request.url.path):
                methods |= route.methods
        exc.headers = {"Allow": ", ".join(sorted(methods))}
    return await http_exception_handler(request, exc)


@app.exception_handler(RequestValidationError)
async def validation_error(request: Request, exc: RequestValidationError):
    # FastAPI's 422 body minus the "input" echo: a submitted password is never sent back
    errors = [{"type": e["type"], "loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()]
    return JSONResponse({"detail": errors}, status_code=422)


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat()


def user_out(row) -> UserOut:
    return UserOut(id=row["id"], email=row["email"], full_name=row["full_name"], role=row["role"],
                   created_at=row["created_at"])


def link_out(row) -> LinkOut:
    return LinkOut(id=row["id"], code=row["code"], short_url=f"{PUBLIC_BASE_URL}/{row['code']}", url=row["url"],
                   title=row["title"], owner_id=row["owner_id"], created_at=row["created_at"],
                   updated_at=row["updated_at"])


def seed_admin() -> None:
    """ADMIN_EMAIL + ADMIN_PASSWORD create the admin account: the only way to get role=admin."""
    email, password = os.environ.get("ADMIN_EMAIL"), os.environ.get("ADMIN_PASSWORD")
    if email and password:
        with get_conn() as conn:
            conn.execute("INSERT INTO users (email, full_name, password_hash, role, created_at)"
                         " VALUES (?, 'Admin', ?, 'admin', ?) ON CONFLICT (email) DO UPDATE SET role = 'admin'",
                         (email.lower(), hash_password(password), now_iso()))


# ---------- auth ----------

@app.post("/auth/register", status_code=201, response_model=UserOut, tags=["auth"],
          responses=doc(409, "Email already registered") | BAD_BODY)
def register(body: UserCreate):
    password_hash = hash_password(body.password)
    with get_conn() as conn:
        try:
            cur = conn.execute("INSERT INTO users (email, full_name, password_hash, role, created_at)"
                               " VALUES (?, ?, ?, 'user', ?)", (body.email, body.full_name, password_hash, now_iso()))
        except sqlite3.IntegrityError:
            raise HTTPException(409, "Email already registered") from None
        return user_out(conn.execute("SELECT * FROM users WHERE id = ?", (cur.lastrowid,)).fetchone())


@app.post("/auth/login", response_model=Token, tags=["auth"], responses=doc(401, "Incorrect email or password")
          | BAD_BODY | doc(429, "Too many failed logins", headers={"Retry-After": {"schema": {"type": "integer"}}}))
def login(body: LoginRequest, request: Request):
    key = (request.client.host if request.client else "-", body.email.strip().lower())
    wait = login_limiter.retry_after(key)
    if wait:
        raise HTTPException(429, "Too many failed login attempts, try again later", headers={"Retry-After": str(wait)})
    with get_conn() as conn:
        row = conn.execute("SELECT id, password_hash FROM users WHERE email = ?", (key[1],)).fetchone()
    if not verify_password(body.password, row["password_hash"] if row else None):  # same answer for both cases
        login_limiter.record_failure(key)
        raise unauthorized("Incorrect email or password")
    login_limiter.reset(key)
    return Token(access_token=create_access_token(row["id"]), expires_in=ACCESS_TOKEN_MINUTES * 60)


@app.get("/users/me", response_model=UserOut, tags=["users"], responses=UNAUTHORIZED)
def read_me(user: CurrentUser):
    return user_out(user)


# ---------- links: every query is scoped to the current user ----------

def fetch_link(conn, link_id: int, user: dict):
    row = conn.execute("SELECT * FROM links WHERE id = ? AND owner_id = ?", (link_id, user["id"])).fetchone()
    if row is None:  # 404, not 403: don't reveal that another user's link exists
        raise HTTPException(404, f"Link {link_id} not found")
    return row


@app.post("/links", status_code=201, response_model=LinkOut, tags=["links"], responses=UNAUTHORIZED | BAD_BODY)
def create_link(body: LinkCreate, user: CurrentUser):
    now = now_iso()
    with get_conn() as conn:
        for _ in range(5):  # a random 7-character code; retry on the (rare) collision
            code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(7))
            try:
                cur = conn.execute("INSERT INTO links (owner_id, code, url, title, created_at, updated_at)"
                                   " VALUES (?, ?, ?, ?, ?, ?)", (user["id"], code, body.url, body.title, now, now))
                break
            except sqlite3.IntegrityError:
                continue
        else:
            raise HTTPException(503, "Could not allocate a short code, try again")
        LINKS_CREATED.inc()
        return link_out(fetch_link(conn, cur.lastrowid, user))


@app.get("/links", response_model=Page[LinkOut], tags=["links"], responses=UNAUTHORIZED)
def list_links(user: CurrentUser, limit: Limit = 20, offset: Offset = 0):
    with get_conn() as conn:
        total = conn.execute("SELECT COUNT(*) FROM links WHERE owner_id = ?", (user["id"],)).fetchone()[0]
        rows = conn.execute("SELECT * FROM links WHERE owner_id = ? ORDER BY id LIMIT ? OFFSET ?",
                            (user["id"], limit, offset)).fetchall()
    return Page[LinkOut](items=[link_out(r) for r in rows], total=total, limit=limit, offset=offset)


@app.get("/links/{link_id}", response_model=LinkOut, tags=["links"], responses=UNAUTHORIZED | NOT_FOUND)
def get_link(link_id: LinkId, user: CurrentUser):
    with get_conn() as conn:
        return link_out(fetch_link(conn, link_id, user))


@app.patch("/links/{link_id}", response_model=LinkOut, tags=["links"], responses=UNAUTHORIZED | NOT_FOUND | BAD_BODY)
def update_link(link_id: LinkId, body: LinkPatch, user: CurrentUser):
    with get_conn() as conn:
        row = fetch_link(conn, link_id, user)  # ownership check before any write
        changes = {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None}
        conn.execute("UPDATE links SET url = ?, title = ?, updated_at = ? WHERE id = ? AND owner_id = ?",
                     (changes.get("url", row["url"]), changes.get("title", row["title"]), now_iso(), link_id,
                      user["id"]))
        try:
            cache.uncache(row["code"])  # the next redirect reads the new URL
        except redis.RedisError:
            log.warning("cache not cleared", extra={"code": row["code"]})
        return link_out(fetch_link(conn, link_id, user))


@app.delete("/links/{link_id}", status_code=204, response_class=Response, tags=["links"],
            responses=UNAUTHORIZED | NOT_FOUND)
def delete_link(link_id: LinkId, user: CurrentUser):
    with get_conn() as conn:
        row = fetch_link(conn, link_id, user)
        conn.execute("DELETE FROM links WHERE id = ? AND owner_id = ?", (link_id, user["id"]))
    try:
        cache.forget_link(row["code"], link_id)
    except redis.RedisError:
        log.warning("cache not cleared", extra={"code": row["code"]})
    return Response(status_code=204)


@app.get("/links/{link_id}/stats", response_model=LinkStats, tags=["links"], responses=UNAUTHORIZED | NOT_FOUND
         | doc(503, "The statistics store is unavailable"))
def link_stats(link_id: LinkId, user: CurrentUser):
    with get_conn() as conn:
        row = fetch_link(conn, link_id, user)
    try:
        count, last = cache.clicks(link_id)
    except redis.RedisError:
        raise HTTPException(503, "Statistics are unavailable right now") from None
    return LinkStats(link_id=link_id, code=row["code"], clicks=count,
                     last_clicked_at=datetime.fromtimestamp(last, timezone.utc) if last else None)


# ---------- admin ----------

@app.get("/admin/users", response_model=Page[UserOut], tags=["admin"],
         responses=UNAUTHORIZED | doc(403, "Only admins may list users"))
def list_users(admin: Annotated[dict, Depends(require_admin)], limit: Limit = 20, offset: Offset = 0):
    with get_conn() as conn:
        total = conn.execute("SELECT COUNT(*) FROM users").fetchone()[0]
        rows = conn.execute("SELECT * FROM users ORDER BY id LIMIT ? OFFSET ?", (limit, offset)).fetchall()
    return Page[UserOut](items=[user_out(r) for r in rows], total=total, limit=limit, offset=offset)


# ---------- operations ----------

@app.get("/health", tags=["meta"], responses={503: {"description": "A dependency is down"}})
def health():
    checks = {}
    try:
        with get_conn() as conn:
            conn.execute("SELECT 1")
        checks["database"] = "ok"
    except sqlite3.Error as exc:
        checks["database"] = f"error: {exc.__class__.__name__}"
    try:
        cache.client.ping()
        checks["redis"] = "ok"
    except redis.RedisError as exc:
        checks["redis"] = f"error: {exc.__class__.__name__}"
    healthy = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ok" if healthy else "degraded", "checks": checks},
                        status_code=200 if healthy else 503)


@app.get("/metrics", tags=["meta"], response_class=Response,
         responses={200: {"content": {CONTENT_TYPE_LATEST.split(";")[0]: {}}, "description": "Prometheus metrics"}})
def metrics():
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


# ---------- the redirect: last, so it never shadows the routes above ----------

@app.get("/{code}", status_code=302, response_class=RedirectResponse, tags=["redirect"],
         responses={302: {"description": "Redirect to the long URL (Location header)"},
                    404: {"model": ErrorModel, "description": "Unknown short code"}})
def follow(code: Code):
    if not CODE_SHAPE.fullmatch(code):
        raise HTTPException(404, "Unknown short link")
    link = None
    try:
        link = cache.cached_link(code)
    except redis.RedisError:
        log.warning("cache unavailable, reading the database", extra={"code": code})
    if link is None:
        with get_conn() as conn:
            row = conn.execute("SELECT id, url FROM links WHERE code = ?", (code,)).fetchone()
        if row is None:
            raise HTTPException(404, "Unknown short link")
        link = {"id": row["id"], "url": row["url"]}
        try:
            cache.cache_link(code, row["id"], row["url"])
        except redis.RedisError:
            pass
    try:
        cache.record_click(link["id"])  # counted by the worker, off the request path
    except redis.RedisError:
        log.warning("click not recorded", extra={"code": code})
    REDIRECTS.inc()
    # 302, not 301: browsers cache 301s and the clicks would never reach us again
    return RedirectResponse(link["url"], status_code=302)
