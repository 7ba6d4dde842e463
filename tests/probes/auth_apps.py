"""An in-process task API with JWT auth whose security flaws can be switched on one at a time.

`tasks_app()` is a correct intermediate-tier API; `tasks_app(bola_read=True)` plants exactly one flaw,
so each security probe is tested against the same real app for its pass and its fail case.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

import jwt
from fastapi import Depends, FastAPI, Form, HTTPException, Request, Response
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
    expired_ok: bool = False  # ignores exp and nbf
    no_exp: bool = False  # issues tokens without exp
    mass_assignment: bool = False  # register stores a client-sent role / is_admin
    hash_exposed: bool = False  # /users/me returns the password hash
    no_rate_limit: bool = False  # unlimited failed logins
    enumeration: bool = False  # different errors for unknown user and wrong password
    weak_password_ok: bool = False  # registration accepts "123456"
    bfla: bool = False  # /admin/users open to every logged-in user


class RegisterIn(BaseModel):
    model_config = ConfigDict(extra="allow")
    email: str = Field(min_length=3, max_length=100, json_schema_extra={"format": "email"})
    password: str = Field(min_length=6, max_length=72)
    full_name: str = Field(default="", max_length=100)


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


def tasks_app(**flags: bool) -> FastAPI:
    flaws = Flaws(**flags)
    secret = WEAK_SECRET if flaws.weak_secret else secrets.token_urlsafe(32)
    users: dict[int, dict] = {}
    tasks: dict[int, dict] = {}
    failures: dict[str, list[float]] = {}
    app = FastAPI(title="tasks")

    def issue(user_id: int) -> str:
        now = int(time.time())
        claims = {"sub": str(user_id), "iat": now}
        if not flaws.no_exp:
            claims["exp"] = now + 1800
        return jwt.encode(claims, secret, algorithm="HS256")

    def current_user(token: str | None = Depends(OAuth2PasswordBearer(tokenUrl="auth/token", auto_error=False))) -> dict:
        if not token:
            raise HTTPException(401, "Not authenticated", headers={"WWW-Authenticate": "Bearer"})
        try:
            header = jwt.get_unverified_header(token)
            if flaws.alg_none and header.get("alg") == "none" or flaws.no_signature_check:
                claims = jwt.decode(token, options={"verify_signature": False, "verify_exp": not flaws.expired_ok,
                                                    "verify_nbf": not flaws.expired_ok})
            else:
                claims = jwt.decode(token, secret, algorithms=["HS256"],
                                    options={"verify_exp": not flaws.expired_ok, "verify_nbf": not flaws.expired_ok})
            user = users[int(claims["sub"])]
        except (jwt.PyJWTError, KeyError, ValueError):
            raise HTTPException(401, "Invalid token", headers={"WWW-Authenticate": "Bearer"}) from None
        return user

    def owned(task_id: int, user: dict, flawed: bool) -> dict:
        task = tasks.get(task_id)
        if task is None or (task["owner_id"] != user["id"] and not flawed):
            raise HTTPException(404, "Task not found")
        return task

    @app.post("/auth/register", status_code=201, response_model=UserOut, responses={409: {}, 422: {}})
    def register(body: RegisterIn):
        if not flaws.weak_password_ok and (len(body.password) < 8 or body.password.isdigit()
                                           or body.password.lower() == "password"):
            raise HTTPException(422, "password too weak: use 8+ characters with letters and digits")
        if any(u["email"] == body.email for u in users.values()):
            raise HTTPException(409, "email already registered")
        extra = body.model_extra or {}
        role = "user"
        if flaws.mass_assignment and (extra.get("role") == "admin" or extra.get("is_admin") is True):
            role = "admin"
        user_id = len(users) + 1
        users[user_id] = {"id": user_id, "email": body.email, "full_name": body.full_name, "role": role,
                          "password_hash": _hash(body.password)}
        return users[user_id]

    @app.post("/auth/token", responses={401: {}, 404: {}, 429: {}})
    def token(request: Request, response: Response, username: str = Form(), password: str = Form()):
        key = request.client.host if request.client else "?"
        now = time.monotonic()
        recent = [t for t in failures.get(key, []) if now - t < 60]
        if not flaws.no_rate_limit and len(recent) >= 5:
            raise HTTPException(429, "Too many failed logins", headers={"Retry-After": str(int(60 - (now - recent[0])) + 1)})
        user = next((u for u in users.values() if u["email"] == username), None)
        if user is None or not _verify(password, user["password_hash"]):
            failures[key] = recent + [now]
            if flaws.enumeration and user is None:
                raise HTTPException(404, "User not found")
            raise HTTPException(401, "Incorrect email or password")
        return {"access_token": issue(user["id"]), "token_type": "bearer"}

    @app.get("/users/me", responses={401: {}})
    def me(user: dict = Depends(current_user)):
        public = {k: v for k, v in user.items() if k != "password_hash"}
        return user if flaws.hash_exposed else public

    @app.get("/admin/users", tags=["admin"], responses={401: {}, 403: {}})
    def admin_users(user: dict = Depends(current_user)):
        if user["role"] != "admin" and not flaws.bfla:
            raise HTTPException(403, "Admins only")
        return [{k: v for k, v in u.items() if k != "password_hash"} for u in users.values()]

    @app.post("/tasks", status_code=201, response_model=Task, responses={401: {}})
    def create(body: TaskIn, user: dict = Depends(current_user)):
        task_id = len(tasks) + 1
        tasks[task_id] = {"id": task_id, "owner_id": user["id"], **body.model_dump()}
        return tasks[task_id]

    @app.get("/tasks", response_model=list[Task], responses={401: {}})
    def list_tasks(user: dict = Depends(current_user)):
        return [t for t in tasks.values() if flaws.bola_list or t["owner_id"] == user["id"]]

    @app.get("/tasks/{task_id}", response_model=Task, responses={401: {}, 404: {}})
    def read(task_id: int, user: dict = Depends(current_user)):
        return owned(task_id, user, flaws.bola_read)

    @app.put("/tasks/{task_id}", response_model=Task, responses={401: {}, 403: {}, 404: {}})
    def update(task_id: int, body: TaskIn, user: dict = Depends(current_user)):
        if flaws.write_despite_403 and task_id in tasks and tasks[task_id]["owner_id"] != user["id"]:
            tasks[task_id].update(body.model_dump())
            raise HTTPException(403, "Not your task")
        task = owned(task_id, user, flaws.bola_write)
        task.update(body.model_dump())
        return task

    @app.delete("/tasks/{task_id}", status_code=204, responses={401: {}, 404: {}})
    def delete(task_id: int, user: dict = Depends(current_user)):
        owned(task_id, user, flaws.bola_delete)
        del tasks[task_id]
        return Response(status_code=204)

    return app
