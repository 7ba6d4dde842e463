"""An in-process task API with JWT auth whose security flaws can be switched on one at a time.

`tasks_app()` is a correct intermediate-tier API; `tasks_app(bola_read=True)` plants exactly one flaw,
so each security probe is tested against the same real app for its pass and its fail case.
"""

from __future__ import annotations

import hashlib
import itertools
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
from fastapi import Depends, FastAPI, Form, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from fastapi.security import OAuth2PasswordBearer
from pydantic import BaseModel, ConfigDict, Field

WEAK_SECRET = "secret"


@dataclass(frozen=True)
class Flaws:
    bola_read: bool = False  # GET /tasks/{id} has no owner check
    bola_write: bool = False  # PUT /tasks/{id} has no owner check
    bola_delete: bool = False  # DELETE /tasks/{id} has no owner check
    bola_list: bool = False  # GET /tasks lists every user's tasks
    write_despite_403: bool = False  # PUT by another user answers 403 but applies the change
    weak_secret: bool = False  # HS256 with "secret"
    alg_none: bool = False  # accepts unsigned tokens
    no_signature_check: bool = False  # decodes without verifying the signature
    unverified_delete: bool = False  # DELETE /tasks/{id} alone decodes without verifying (verify_signature False)
    unverified_put: bool = False  # PUT /tasks/{id} alone decodes without verifying the signature
    expired_ok_on_delete: bool = False  # DELETE /tasks/{id} alone ignores exp and nbf (verifies the signature)
    expired_ok: bool = False  # ignores exp and nbf
    no_exp: bool = False  # issues tokens without exp
    mass_assignment: bool = False  # register stores a client-sent role / is_admin
    hash_exposed: bool = False  # /users/me returns the password hash
    no_rate_limit: bool = False  # unlimited failed logins
    enumeration: bool = False  # different errors for unknown user and wrong password
    weak_password_ok: bool = False  # registration accepts "123456"
    bfla: bool = False  # /admin/users open to every logged-in user
    # knobs and variants, not flaws
    rate_limit_max: int = 5  # failed logins a client may make per window
    rate_limit_window: float = 60.0  # seconds; Retry-After counts down to the window's end
    lockout_401: bool = False  # refuse a locked-out client with 401 "Account locked ..." and no Retry-After
    json_login: bool = False  # POST /auth/login with a JSON body {email, password} -> {"token"}; no /auth/token
    delete_me: bool = False  # DELETE /users/me closes the account
    soft_refuse_delete: bool = False  # DELETE by another user answers 200 {"deleted": false} and changes nothing
    owner_mass_assignment: bool = False  # POST/PUT /tasks store a client-sent owner_id (flaw)
    user_directory: bool = False  # GET /users lists every user's email to any logged-in user (flaw)
    open_list: bool = False  # GET /tasks answers without a token (all users' tasks) yet declares security
    strict_fields: bool = False  # register refuses unknown fields by name (400) but accepts `role`
    profile_signup: bool = False  # register requires a unique phone and declares is_admin (example true), stored as given
    admin_delete: bool = False  # DELETE /admin/tasks/{id}, refused to ordinary users (403)
    bfla_delete: bool = False  # DELETE /admin/tasks/{id} open to every user; a missing id answers 404 (flaw)
    admin_refuses_401: bool = False  # /admin/users refuses logged-in ordinary users with 401, not 403
    refuse_with_200: bool = False  # a wrong password or unknown user gets 200 {"status": "fail", "message": ...}
    global_limit: int = 0  # > 0: every request past this many is refused with 429 (a limit on all requests)


class RegisterIn(BaseModel):
    model_config = ConfigDict(extra="allow")
    email: str = Field(min_length=3, max_length=100, json_schema_extra={"format": "email"})
    password: str = Field(min_length=6, max_length=72)
    full_name: str = Field(default="", max_length=100)


class RegisterProfileIn(RegisterIn):
    phone: str = Field(pattern=r"^\+?[0-9]{7,15}$", json_schema_extra={"example": "+15550100"})
    is_admin: bool = Field(default=False, json_schema_extra={"example": True})


class LoginIn(BaseModel):
    email: str
    password: str


class UserOut(BaseModel):
    id: int
    email: str
    full_name: str
    role: str


class TaskIn(BaseModel):
    title: str = Field(min_length=1, max_length=100)
    done: bool = False


class Task(TaskIn):
    id: int
    owner_id: int


def _hash(password: str) -> str:
    salt = secrets.token_hex(8)
    return f"pbkdf2${salt}${hashlib.pbkdf2_hmac('sha256', password.encode(), salt.encode(), 1000).hex()}"


def _verify(password: str, stored: str) -> bool:
    _, salt, digest = stored.split("$")
    return secrets.compare_digest(hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), 1000).hex(), digest)


ADMIN = ("admin@example.com", "Seeded-Admin-Pass-1")


def tasks_app(jwt_secret: str | None = None, admin_broken: bool = False, **flags: bool) -> FastAPI:
    """`jwt_secret` signs the tokens instead of a random one (a secret a test commits to a fake repo);
    an admin (ADMIN) is seeded; `admin_broken` makes /admin/users refuse everyone, the admin too."""
    flaws = Flaws(**flags)
    secret = jwt_secret or (WEAK_SECRET if flaws.weak_secret else secrets.token_urlsafe(32))
    users: dict[int, dict] = {0: {"id": 0, "email": ADMIN[0], "full_name": "Admin", "role": "admin",
                                  "password_hash": _hash(ADMIN[1])}}
    tasks: dict[int, dict] = {}
    failures: dict[str, list[float]] = {}
    user_ids = itertools.count(1)
    task_ids = itertools.count(1)  # never reused after a delete
    app = FastAPI(title="tasks")
    served = itertools.count(1)

    if flaws.global_limit:
        @app.middleware("http")
        async def limit_every_request(request: Request, call_next):
            if next(served) > flaws.global_limit:
                return JSONResponse({"detail": "Too many requests"}, status_code=429, headers={"Retry-After": "60"})
            return await call_next(request)

    def issue(user_id: int) -> str:
        now = int(time.time())
        claims = {"sub": str(user_id), "iat": now}
        if not flaws.no_exp:
            claims["exp"] = now + 1800
        return jwt.encode(claims, secret, algorithm="HS256")

    bearer = OAuth2PasswordBearer(tokenUrl="auth/login" if flaws.json_login else "auth/token", auto_error=False)

    def current_user(token: str | None = Depends(bearer)) -> dict:
        return user_of(token)

    def user_of(token: str | None, unverified: bool = False, lax_times: bool = False) -> dict:
        if not token:
            raise HTTPException(401, "Not authenticated", headers={"WWW-Authenticate": "Bearer"})
        try:
            header = jwt.get_unverified_header(token)
            if flaws.alg_none and header.get("alg") == "none" or flaws.no_signature_check or unverified:
                claims = jwt.decode(token, options={"verify_signature": False, "verify_exp": not flaws.expired_ok,
                                                    "verify_nbf": not flaws.expired_ok})
            else:
                lax = flaws.expired_ok or lax_times
                claims = jwt.decode(token, secret, algorithms=["HS256"], options={"verify_exp": not lax,
                                                                                  "verify_nbf": not lax})
            user = users[int(claims["sub"])]
        except (jwt.PyJWTError, KeyError, ValueError):
            raise HTTPException(401, "Invalid token", headers={"WWW-Authenticate": "Bearer"}) from None
        return user

    def route_user(flawed: bool, lax_times: bool = False) -> Callable[..., dict]:
        """The caller of one route: that route alone decodes tokens without verifying them when `flawed`, or
        without checking their validity period when `lax_times`."""
        def caller(token: str | None = Depends(bearer)) -> dict:
            return user_of(token, unverified=flawed, lax_times=lax_times)
        return caller

    def owned(task_id: int, user: dict, flawed: bool) -> dict:
        task = tasks.get(task_id)
        if task is None or (task["owner_id"] != user["id"] and not flawed):
            raise HTTPException(404, "Task not found")
        return task

    closed: list[bool] = []

    def sign_up(body: RegisterIn) -> dict:
        if closed:
            raise HTTPException(403, "registration is closed")
        if not flaws.weak_password_ok and (len(body.password) < 8 or body.password.isdigit()
                                           or body.password.lower() == "password"):
            raise HTTPException(422, "password too weak: use 8+ characters with letters and digits")
        if any(u["email"] == body.email for u in users.values()):
            raise HTTPException(409, "email already registered")
        extra = body.model_extra or {}
        if flaws.strict_fields and set(extra) - {"role"}:  # marshmallow-style: unknown fields refused by name
            raise HTTPException(400, {k: ["Unknown field."] for k in sorted(set(extra) - {"role"})})
        profile = isinstance(body, RegisterProfileIn)
        phone = body.phone if profile else None
        if phone is not None and any(u.get("phone") == phone for u in users.values()):
            raise HTTPException(409, "phone number already registered")
        role = "user"
        if flaws.mass_assignment and (extra.get("role") == "admin" or extra.get("is_admin") is True):
            role = "admin"
        if profile and body.is_admin:  # profile_signup stores its declared is_admin as given (a flaw)
            role = "admin"
        user_id = next(user_ids)
        users[user_id] = {"id": user_id, "email": body.email, "full_name": body.full_name, "role": role,
                          "password_hash": _hash(body.password), "phone": phone}
        return users[user_id]

    if flaws.profile_signup:
        @app.post("/auth/register", status_code=201, response_model=UserOut, responses={409: {}, 422: {}})
        def register_profile(body: RegisterProfileIn):
            return sign_up(body)
    else:
        @app.post("/auth/register", status_code=201, response_model=UserOut, responses={409: {}, 422: {}})
        def register(body: RegisterIn):
            return sign_up(body)

    def check_login(request: Request, username: str, password: str) -> dict:
        key = request.client.host if request.client else "?"
        now = time.monotonic()
        window = flaws.rate_limit_window
        recent = [t for t in failures.get(key, []) if now - t < window]
        if not flaws.no_rate_limit and len(recent) >= flaws.rate_limit_max:
            if flaws.lockout_401:
                raise HTTPException(401, "Account locked: too many failed logins, try again later")
            raise HTTPException(429, "Too many failed logins",
                                headers={"Retry-After": str(int(window - (now - recent[0])) + 1)})
        user = next((u for u in users.values() if u["email"] == username), None)
        if user is None or not _verify(password, user["password_hash"]):
            failures[key] = recent + [now]
            if flaws.enumeration and user is None:
                raise HTTPException(404, "User not found")
            raise HTTPException(401, "Incorrect email or password")
        return user

    def logged_in(request: Request, username: str, password: str, answer: Callable[[str], dict]) -> Any:
        try:
            return answer(issue(check_login(request, username, password)["id"]))
        except HTTPException as exc:
            if flaws.refuse_with_200 and exc.status_code in (401, 404):
                return JSONResponse({"status": "fail", "message": exc.detail})
            raise

    if flaws.json_login:
        @app.post("/auth/login", responses={401: {}, 404: {}, 429: {}})
        def json_login(request: Request, body: LoginIn):
            return logged_in(request, body.email, body.password, lambda token: {"token": token})
    else:
        @app.post("/auth/token", responses={401: {}, 404: {}, 429: {}})
        def token(request: Request, username: str = Form(), password: str = Form()):
            return logged_in(request, username, password, lambda t: {"access_token": t, "token_type": "bearer"})

    @app.get("/users/me", responses={401: {}})
    def me(user: dict = Depends(current_user)):
        public = {k: v for k, v in user.items() if k != "password_hash"}
        return user if flaws.hash_exposed else public

    if flaws.delete_me:
        @app.delete("/users/me", status_code=204, responses={401: {}})
        def close_account(user: dict = Depends(current_user)):
            del users[user["id"]]
            return Response(status_code=204)

    if flaws.user_directory:
        @app.get("/users", responses={401: {}})
        def directory(user: dict = Depends(current_user)):
            return [{"id": u["id"], "email": u["email"], "full_name": u["full_name"]} for u in users.values()]

    @app.get("/admin/users", tags=["admin"], responses={401: {}, 403: {}})
    def admin_users(user: dict = Depends(current_user)):
        if admin_broken or user["role"] != "admin" and not flaws.bfla:
            raise HTTPException(401 if flaws.admin_refuses_401 else 403, "Admins only")
        return [{k: v for k, v in u.items() if k != "password_hash"} for u in users.values()]

    if flaws.admin_delete or flaws.bfla_delete:
        @app.delete("/admin/tasks/{task_id}", tags=["admin"], status_code=204, responses={403: {}, 404: {}})
        def admin_delete(task_id: int, user: dict = Depends(current_user)):
            if not flaws.bfla_delete and user["role"] != "admin":
                raise HTTPException(403, "Admins only")
            if tasks.pop(task_id, None) is None:  # the flawed shape: a missing id's 404 hides the open route
                raise HTTPException(404, "Task not found")
            return Response(status_code=204)

    @app.post("/testing/reset", include_in_schema=False)
    def reset(close_registration: bool = False):
        """Drops every user but the seeded admin, as a learner's undocumented "reset the database" route does
        (and, asked to, closes registration: no user can be made again)."""
        for user_id in [u for u in users if u != 0]:
            del users[user_id]
        if close_registration:
            closed.append(True)
        return {"reset": True}

    async def claimed_owner(request: Request, user: dict, current: int | None = None) -> int:
        """Who owns a created or updated task: the caller (or the owner so far), or, flawed, the client's owner_id."""
        owner = user["id"] if current is None else current
        if flaws.owner_mass_assignment:
            raw = await request.json()
            if isinstance(raw, dict) and isinstance(raw.get("owner_id"), int) and raw["owner_id"] in users:
                owner = raw["owner_id"]
        return owner

    @app.post("/tasks", status_code=201, response_model=Task, responses={401: {}})
    async def create(body: TaskIn, request: Request, user: dict = Depends(current_user)):
        task_id = next(task_ids)
        tasks[task_id] = {"id": task_id, "owner_id": await claimed_owner(request, user), **body.model_dump()}
        return tasks[task_id]

    def list_user(token: str | None = Depends(bearer)) -> dict | None:
        try:
            return current_user(token)
        except HTTPException:
            if flaws.open_list:
                return None
            raise

    @app.get("/tasks", response_model=list[Task], responses={401: {}})
    def list_tasks(user: dict | None = Depends(list_user)):
        return [t for t in tasks.values() if user is None or flaws.bola_list or t["owner_id"] == user["id"]]

    @app.get("/tasks/{task_id}", response_model=Task, responses={401: {}, 404: {}})
    def read(task_id: int, user: dict = Depends(current_user)):
        return owned(task_id, user, flaws.bola_read)

    @app.put("/tasks/{task_id}", response_model=Task, responses={401: {}, 403: {}, 404: {}})
    async def update(task_id: int, body: TaskIn, request: Request,
                     user: dict = Depends(route_user(flaws.unverified_put))):
        if flaws.write_despite_403 and task_id in tasks and tasks[task_id]["owner_id"] != user["id"]:
            tasks[task_id].update(body.model_dump())
            raise HTTPException(403, "Not your task")
        task = owned(task_id, user, flaws.bola_write)
        task.update(body.model_dump(), owner_id=await claimed_owner(request, user, task["owner_id"]))
        return task

    @app.delete("/tasks/{task_id}", status_code=204, responses={401: {}, 404: {}})
    def delete(task_id: int, user: dict = Depends(route_user(flaws.unverified_delete,
                                                                   flaws.expired_ok_on_delete))):
        if flaws.soft_refuse_delete and task_id in tasks and tasks[task_id]["owner_id"] != user["id"]:
            return JSONResponse({"deleted": False})
        owned(task_id, user, flaws.bola_delete)
        del tasks[task_id]
        return Response(status_code=204)

    return app
