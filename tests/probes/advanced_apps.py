"""In-process apps for the advanced and capstone probes, each flaw switchable on its own.

`shortener_app()` is a correct URL shortener (redirects, a background click counter, health with its
dependencies, Prometheus metrics, JSON logs); `shortener_app(unknown_500=True)` plants one flaw.
`tenant_app()` is a correct multi-tenant API (API keys, isolation, signed webhooks with retries,
idempotency keys, usage); `tenant_app(unsigned=True)` plants one flaw. Both use opaque bearer tokens:
the probes under test do not depend on JWTs.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import secrets
import time
from collections import defaultdict
from dataclasses import dataclass, field

import httpx
from fastapi import Depends, FastAPI, Header, HTTPException, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field


class RegisterIn(BaseModel):
    email: str = Field(min_length=3, max_length=100, json_schema_extra={"format": "email"})
    password: str = Field(min_length=8, max_length=72)


class LoginIn(BaseModel):
    email: str
    password: str


class _Accounts:
    """Users and opaque tokens; each user is one tenant (its organisation is made at sign-up)."""

    def __init__(self) -> None:
        self.users: dict[str, tuple[int, str]] = {}
        self.tokens: dict[str, int] = {}
        self.ids = itertools.count(1)

    def mount(self, app: FastAPI) -> None:
        @app.post("/auth/register", status_code=201)
        def register(body: RegisterIn):
            if body.email in self.users:
                raise HTTPException(409, "taken")
            self.users[body.email] = (next(self.ids), body.password)
            return {"id": self.users[body.email][0], "email": body.email}

        @app.post("/auth/login")
        def login(body: LoginIn):
            user = self.users.get(body.email)
            if user is None or user[1] != body.password:
                raise HTTPException(401, "bad credentials")
            token = secrets.token_hex(16)
            self.tokens[token] = user[0]
            return {"access_token": token, "token_type": "bearer"}


# ---------------------------------------------------------------- the shortener


class LinkIn(BaseModel):
    url: str = Field(min_length=8, max_length=2000, json_schema_extra={"format": "uri"})
    title: str = Field(default="", max_length=100)


@dataclass
class ShortenerState:
    requests: int = 0
    log: list[str] = field(default_factory=list)


def shortener_app(*, status: int = 302, no_location: bool = False, unknown_500: bool = False,
                  no_worker: bool = False, health_deps: bool = True, metrics: str = "prometheus",
                  json_logs: bool = True, block_ms: float = 0.0, error_every: int = 0,
                  state: ShortenerState | None = None) -> FastAPI:
    state = state if state is not None else ShortenerState()
    accounts = _Accounts()
    links: dict[str, dict] = {}
    clicks: dict[int, int] = defaultdict(int)
    queue: asyncio.Queue = asyncio.Queue()
    ids = itertools.count(1)
    bearer = HTTPBearer(auto_error=False)

    async def worker() -> None:  # the background job: folds click events into the counts
        while True:
            link_id = await queue.get()
            await asyncio.sleep(0.2)
            clicks[link_id] += 1

    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(app):
        task = None if no_worker else asyncio.create_task(worker())
        yield
        if task:
            task.cancel()

    app = FastAPI(lifespan=lifespan)
    accounts.mount(app)

    @app.middleware("http")
    async def log_requests(request: Request, call_next):
        state.requests += 1
        started = time.monotonic()
        response = await call_next(request)
        ms = (time.monotonic() - started) * 1000
        state.log.append(json.dumps({"level": "info", "method": request.method, "path": request.url.path,
                                     "status": response.status_code, "duration_ms": round(ms, 1)})
                         if json_logs else f"INFO:     {request.method} {request.url.path} {response.status_code}")
        return response

    def user(creds: HTTPAuthorizationCredentials | None = Depends(bearer)) -> int:
        if creds is None or creds.credentials not in accounts.tokens:
            raise HTTPException(401, "not authenticated")
        return accounts.tokens[creds.credentials]

    @app.post("/links", status_code=201)
    def create_link(body: LinkIn, owner: int = Depends(user)):
        link = {"id": next(ids), "code": secrets.token_urlsafe(5), "url": body.url, "title": body.title, "owner": owner}
        links[link["code"]] = link
        return {**link, "short_url": f"http://testserver/{link['code']}"}

    @app.get("/links/{link_id}/stats")
    def stats(link_id: int, owner: int = Depends(user)):
        link = next((l for l in links.values() if l["id"] == link_id and l["owner"] == owner), None)
        if link is None:
            raise HTTPException(404, "no such link")
        return {"link_id": link_id, "code": link["code"], "clicks": clicks[link_id]}

    @app.get("/health")
    def health():
        return {"status": "ok", "checks": {"database": "ok", "redis": "ok"}} if health_deps else {"status": "ok"}

    if metrics == "prometheus":
        @app.get("/metrics", response_class=PlainTextResponse)
        def prometheus():
            return ("# HELP http_requests_total Requests served.\n# TYPE http_requests_total counter\n"
                    f'http_requests_total{{route="/{{code}}",detail="a \\"quoted\\" }} brace"}} {state.requests}\n'
                    "# TYPE links_total gauge\n" f"links_total {len(links)}\n")
    elif metrics == "json":
        @app.get("/metrics")
        def json_metrics():
            return {"requests": state.requests}

    @app.get("/{code}", status_code=status, responses={status: {"description": "Redirect to the long URL"},
                                                       404: {"description": "Unknown code"}})
    async def follow(code: str):
        if block_ms:
            time.sleep(block_ms / 1000)  # a blocking call inside async def: every request waits
        if error_every and state.requests % error_every == 0:
            return JSONResponse({"detail": "overloaded"}, status_code=503)
        link = links.get(code)
        if link is None:
            if unknown_500:
                return PlainTextResponse("Internal Server Error", status_code=500)
            raise HTTPException(404, "unknown code")
        queue.put_nowait(link["id"])
        if status == 200:
            return {"url": link["url"]}
        if no_location:
            return Response(status_code=status)
        return RedirectResponse(link["url"], status_code=status)

    return app


# ---------------------------------------------------------------- the multi-tenant API


class KeyIn(BaseModel):
    name: str = Field(default="default", max_length=50)


class ProjectIn(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    description: str = Field(default="", max_length=500)


class ProjectPatch(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    description: str | None = Field(default=None, max_length=500)


class WebhookIn(BaseModel):
    url: str = Field(min_length=8, max_length=500, json_schema_extra={"format": "uri"})
    secret: str | None = Field(default=None, min_length=16, max_length=100)
    events: list[str] | None = None


@dataclass(frozen=True)
class TenantFlaws:
    revocation_ignored: bool = False  # keys are cached forever: revoking changes nothing
    any_key: bool = False  # any pk_ key is accepted for tenant 1
    leak_read: bool = False  # GET /projects/{id} ignores the tenant
    leak_list: bool = False  # GET /projects lists every tenant's projects
    leak_write: bool = False  # PATCH /projects/{id} ignores the tenant
    leak_delete: bool = False  # DELETE /projects/{id} ignores the tenant
    cross_revoke: bool = False  # DELETE /api-keys/{id} ignores the tenant
    no_delivery: bool = False  # webhooks are stored, never sent
    unsigned: bool = False  # deliveries carry no signature
    wrong_signature: bool = False  # signed with the wrong key
    no_retry: bool = False  # one attempt only
    no_idempotency: bool = False  # Idempotency-Key is ignored
    no_usage: bool = False  # /usage never changes
    secret_generated: bool = False  # the API makes the secret and returns it (instead of taking the client's)
    thin_events: bool = False  # an event names its project by id only: {"event", "project_id", "org_id"}
    broadcast: bool = False  # every hook receives every tenant's events


def tenant_app(**flaws: bool) -> FastAPI:
    f = TenantFlaws(**flaws)
    accounts = _Accounts()
    keys: dict[int, dict] = {}
    key_cache: dict[str, int] = {}
    projects: dict[int, dict] = {}
    hooks: dict[int, dict] = {}
    seen_keys: dict[tuple[int, str], tuple[int, dict]] = {}
    usage: dict[int, int] = defaultdict(int)
    ids = itertools.count(1)
    outbox: asyncio.Queue = asyncio.Queue()
    bearer = HTTPBearer(auto_error=False)

    async def deliver() -> None:
        async with httpx.AsyncClient(timeout=3, trust_env=False) as client:
            async def attempt(hook: dict, body: bytes, tries: int) -> None:
                for n in range(tries):
                    stamp = str(int(time.time()))
                    headers = {"Content-Type": "application/json", "X-Webhook-Timestamp": stamp}
                    if not f.unsigned:
                        key = b"not-the-secret" if f.wrong_signature else hook["secret"].encode()
                        headers["X-Signature"] = "sha256=" + hmac.new(key, stamp.encode() + b"." + body,
                                                                      hashlib.sha256).hexdigest()
                    try:
                        if (await client.post(hook["url"], content=body, headers=headers)).status_code < 300:
                            return
                    except httpx.HTTPError:
                        pass
                    await asyncio.sleep(0.5 * 2 ** n)

            while True:
                org, event, data = await outbox.get()
                payload = ({"event": event, "project_id": data["id"], "org_id": org} if f.thin_events
                           else {"event": event, "data": data})
                body = json.dumps(payload).encode()
                for hook in [h for h in hooks.values() if h["org"] == org or f.broadcast]:
                    asyncio.create_task(attempt(hook, body, 1 if f.no_retry else 4))

    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(app):
        task = None if f.no_delivery else asyncio.create_task(deliver())
        yield
        if task:
            task.cancel()

    app = FastAPI(lifespan=lifespan)
    accounts.mount(app)

    def tenant(request: Request, creds: HTTPAuthorizationCredentials | None = Depends(bearer)) -> int:
        token = creds.credentials if creds else ""
        if token.startswith("pk_"):
            org = key_cache.get(token) if f.revocation_ignored else None
            if org is None:
                key = next((k for k in keys.values() if k["key"] == token and not k["revoked"]), None)
                org = key["org"] if key else (1 if f.any_key else None)
                if org is not None:
                    key_cache[token] = org
        else:
            org = accounts.tokens.get(token)
        if org is None:
            raise HTTPException(401, "invalid credentials")
        usage[org] += 1
        return org

    def user(creds: HTTPAuthorizationCredentials | None = Depends(bearer)) -> int:
        if creds is None or creds.credentials not in accounts.tokens:
            raise HTTPException(401, "log in to manage keys")
        return accounts.tokens[creds.credentials]

    @app.post("/api-keys", status_code=201)
    def create_key(body: KeyIn, org: int = Depends(user)):
        key = {"id": next(ids), "org": org, "name": body.name, "key": "pk_" + secrets.token_hex(16), "revoked": False}
        keys[key["id"]] = key
        return {k: key[k] for k in ("id", "name", "key")}

    @app.delete("/api-keys/{key_id}", status_code=204)
    def revoke_key(key_id: int, org: int = Depends(user)):
        key = keys.get(key_id)
        if key is None or (key["org"] != org and not f.cross_revoke):
            raise HTTPException(404, "no such key")
        key["revoked"] = True
        return Response(status_code=204)

    def owned(project_id: int, org: int, leak: bool) -> dict:
        project = projects.get(project_id)
        if project is None or (project["org"] != org and not leak):
            raise HTTPException(404, "no such project")
        return project

    @app.post("/projects", status_code=201)
    def create_project(body: ProjectIn, org: int = Depends(tenant),
                       idempotency_key: str | None = Header(default=None, alias="Idempotency-Key")):
        if idempotency_key and not f.no_idempotency and (org, idempotency_key) in seen_keys:
            return JSONResponse(seen_keys[(org, idempotency_key)][1], status_code=201)
        project = {"id": next(ids), "org": org, **body.model_dump()}
        projects[project["id"]] = project
        if idempotency_key:
            seen_keys[(org, idempotency_key)] = (project["id"], project)
        outbox.put_nowait((org, "project.created", project))
        return project

    @app.get("/projects")
    def list_projects(org: int = Depends(tenant)):
        return {"items": [p for p in projects.values() if p["org"] == org or f.leak_list]}

    @app.get("/projects/{project_id}")
    def read_project(project_id: int, org: int = Depends(tenant)):
        return owned(project_id, org, f.leak_read)

    @app.patch("/projects/{project_id}")
    def update_project(project_id: int, body: ProjectPatch, org: int = Depends(tenant)):
        project = owned(project_id, org, f.leak_write)
        project.update(body.model_dump(exclude_none=True))
        return project

    @app.delete("/projects/{project_id}", status_code=204)
    def delete_project(project_id: int, org: int = Depends(tenant)):
        owned(project_id, org, f.leak_delete)
        projects.pop(project_id)
        return Response(status_code=204)

    @app.post("/webhooks", status_code=201)
    def register_hook(body: WebhookIn, org: int = Depends(tenant)):
        secret = "whsec-" + secrets.token_hex(16) if f.secret_generated or not body.secret else body.secret
        hook = {"id": next(ids), "org": org, "url": body.url, "secret": secret}
        hooks[hook["id"]] = hook
        return {"id": hook["id"], "url": body.url, "secret": secret}

    @app.delete("/webhooks/{webhook_id}", status_code=204)
    def drop_hook(webhook_id: int, org: int = Depends(tenant)):
        if hooks.get(webhook_id, {}).get("org") != org:
            raise HTTPException(404, "no such webhook")
        hooks.pop(webhook_id)
        return Response(status_code=204)

    @app.get("/usage")
    def read_usage(org: int = Depends(tenant)):
        return {"org": org, "requests": 0 if f.no_usage else usage[org]}

    return app
