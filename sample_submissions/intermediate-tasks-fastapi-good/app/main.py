import json
import os
import sqlite3
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from typing import Annotated

from fastapi import Depends, FastAPI, Form, HTTPException, Path, Query, Request, Response
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from .db import get_conn, init_db
from .schemas import ErrorModel, LoginRequest, Page, TaskCreate, TaskOut, TaskPatch, Token, UserCreate, UserOut
from .security import (ACCESS_TOKEN_MINUTES, create_access_token, get_current_user, hash_password, login_limiter,
                       require_admin, unauthorized, verify_password)

TaskId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The id returned when the task was created")]
CurrentUser = Annotated[dict, Depends(get_current_user)]
Limit = Annotated[int, Query(ge=1, le=100, description="Page size (max 100)")]
Offset = Annotated[int, Query(ge=0, le=1_000_000, description="Number of items to skip")]


def doc(status_code: int, description: str, **extra) -> dict:
    return {status_code: {"model": ErrorModel, "description": description, **extra}}


BAD_BODY = doc(400, "Request body could not be parsed")
UNAUTHORIZED = doc(401, "Missing, invalid or expired token")
NOT_FOUND = doc(404, "Task not found (or owned by another user)")
LOGIN_RESPONSES = doc(401, "Incorrect email or password") | BAD_BODY | doc(
    429, "Too many failed logins for this email from this address",
    headers={"Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}})


@asynccontextmanager
async def lifespan(app: FastAPI):
    init_db()
    seed_admin()
    yield


app = FastAPI(title="Task Manager API", version="1.2.0", lifespan=lifespan,
              description="Personal task lists: register, log in for a JWT, then manage your own tasks.")


@app.exception_handler(StarletteHTTPException)
async def allow_header_on_405(request: Request, exc: StarletteHTTPException):
    # by default Allow only lists the methods of the first matching route, so list them all
    if exc.status_code == 405:
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
    return Response(json.dumps({"detail": errors}), status_code=422, media_type="application/json")


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat()


def user_out(row) -> UserOut:
    # explicit fields: password_hash can never end up in a response
    return UserOut(id=row["id"], email=row["email"], full_name=row["full_name"], role=row["role"],
                   created_at=row["created_at"])


def task_out(row) -> TaskOut:
    return TaskOut(**{k: row[k] for k in TaskOut.model_fields})


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
                               " VALUES (?, ?, ?, 'user', ?)",
                               (body.email.lower(), body.full_name, password_hash, now_iso()))
        except sqlite3.IntegrityError:
            raise HTTPException(409, "Email already registered") from None
        return user_out(conn.execute("SELECT * FROM users WHERE id = ?", (cur.lastrowid,)).fetchone())


def authenticate(request: Request, email: str, password: str) -> Token:
    key = (request.client.host if request.client else "-", email.strip().lower())
    wait = login_limiter.retry_after(key)
    if wait:
        raise HTTPException(429, "Too many failed login attempts, try again later", headers={"Retry-After": str(wait)})
    with get_conn() as conn:
        row = conn.execute("SELECT id, password_hash FROM users WHERE email = ?", (key[1],)).fetchone()
    # same status and message whether the email is unknown or the password is wrong
    if not verify_password(password, row["password_hash"] if row else None):
        login_limiter.record_failure(key)
        raise unauthorized("Incorrect email or password")
    login_limiter.reset(key)
    return Token(access_token=create_access_token(row["id"]), expires_in=ACCESS_TOKEN_MINUTES * 60)


@app.post("/auth/login", response_model=Token, tags=["auth"], responses=LOGIN_RESPONSES)
def login(body: LoginRequest, request: Request):
    """Log in with a JSON body and get a bearer token."""
    return authenticate(request, body.email, body.password)


@app.post("/auth/token", response_model=Token, tags=["auth"], responses=LOGIN_RESPONSES)
def login_form(request: Request, username: Annotated[str, Form(min_length=1, max_length=254)],
               password: Annotated[str, Form(min_length=1, max_length=128)]):
    """OAuth2 password flow, form-encoded (`username` is the email): what OAuth2 clients and Swagger UI send."""
    return authenticate(request, username, password)


@app.get("/users/me", response_model=UserOut, tags=["users"], responses=UNAUTHORIZED)
def read_me(user: CurrentUser):
    return user_out(user)


# ---------- tasks: every query is scoped to the current user ----------

def fetch_task(conn, task_id: int, user: dict):
    row = conn.execute("SELECT * FROM tasks WHERE id = ? AND owner_id = ?", (task_id, user["id"])).fetchone()
    if row is None:  # 404, not 403: don't reveal that another user's task exists
        raise HTTPException(404, f"Task {task_id} not found")
    return row


def save_task(conn, task_id: int, user: dict, data: dict) -> TaskOut:
    conn.execute("UPDATE tasks SET title = ?, description = ?, priority = ?, done = ?, updated_at = ?"
                 " WHERE id = ? AND owner_id = ?",
                 (data["title"], data["description"], data["priority"], int(data["done"]), now_iso(),
                  task_id, user["id"]))
    return task_out(fetch_task(conn, task_id, user))


@app.post("/tasks", status_code=201, response_model=TaskOut, tags=["tasks"], responses=UNAUTHORIZED | BAD_BODY)
def create_task(body: TaskCreate, user: CurrentUser):
    now = now_iso()
    with get_conn() as conn:
        cur = conn.execute("INSERT INTO tasks (owner_id, title, description, priority, done, created_at, updated_at)"
                           " VALUES (?, ?, ?, ?, ?, ?, ?)",
                           (user["id"], body.title, body.description, body.priority, int(body.done), now, now))
        return task_out(fetch_task(conn, cur.lastrowid, user))


@app.get("/tasks", response_model=Page[TaskOut], tags=["tasks"], responses=UNAUTHORIZED)
def list_tasks(user: CurrentUser, limit: Limit = 20, offset: Offset = 0,
               done: Annotated[bool | None, Query(description="Only done / only open tasks")] = None):
    where, params = "owner_id = ?", [user["id"]]
    if done is not None:
        where, params = where + " AND done = ?", params + [int(done)]
    with get_conn() as conn:
        total = conn.execute(f"SELECT COUNT(*) FROM tasks WHERE {where}", params).fetchone()[0]
        rows = conn.execute(f"SELECT * FROM tasks WHERE {where} ORDER BY id LIMIT ? OFFSET ?",
                            params + [limit, offset]).fetchall()
    return Page[TaskOut](items=[task_out(r) for r in rows], total=total, limit=limit, offset=offset)


@app.get("/tasks/{task_id}", response_model=TaskOut, tags=["tasks"], responses=UNAUTHORIZED | NOT_FOUND)
def get_task(task_id: TaskId, user: CurrentUser):
    with get_conn() as conn:
        return task_out(fetch_task(conn, task_id, user))


@app.put("/tasks/{task_id}", response_model=TaskOut, tags=["tasks"], responses=UNAUTHORIZED | NOT_FOUND | BAD_BODY)
def replace_task(task_id: TaskId, body: TaskCreate, user: CurrentUser):
    with get_conn() as conn:
        fetch_task(conn, task_id, user)  # ownership check before any write
        return save_task(conn, task_id, user, body.model_dump())


@app.patch("/tasks/{task_id}", response_model=TaskOut, tags=["tasks"],
           responses=UNAUTHORIZED | NOT_FOUND | BAD_BODY)
def update_task(task_id: TaskId, body: TaskPatch, user: CurrentUser):
    with get_conn() as conn:
        current = task_out(fetch_task(conn, task_id, user)).model_dump()
        changes = {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None}
        return save_task(conn, task_id, user, current | changes)


@app.delete("/tasks/{task_id}", status_code=204, response_class=Response, tags=["tasks"],
            responses=UNAUTHORIZED | NOT_FOUND)
def delete_task(task_id: TaskId, user: CurrentUser):
    with get_conn() as conn:
        fetch_task(conn, task_id, user)
        conn.execute("DELETE FROM tasks WHERE id = ? AND owner_id = ?", (task_id, user["id"]))
    return Response(status_code=204)


# ---------- admin ----------

@app.get("/admin/users", response_model=Page[UserOut], tags=["admin"],
         responses=UNAUTHORIZED | doc(403, "Only admins may list users"))
def list_users(admin: Annotated[dict, Depends(require_admin)], limit: Limit = 20, offset: Offset = 0):
    with get_conn() as conn:
        total = conn.execute("SELECT COUNT(*) FROM users").fetchone()[0]
        rows = conn.execute("SELECT * FROM users ORDER BY id LIMIT ? OFFSET ?", (limit, offset)).fetchall()
    return Page[UserOut](items=[user_out(r) for r in rows], total=total, limit=limit, offset=offset)


@app.get("/health", tags=["meta"])
def health() -> dict[str, str]:
    return {"status": "ok"}
