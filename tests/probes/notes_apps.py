"""An in-process notes API with JWT bearer auth whose routes can each, alone, decode tokens without verifying them.

The shape differs from auth_apps.tasks_app on purpose: a JSON login answering `{"token"}`, no profile GET (the
forgeries' first target is a list), projects with PATCH, notes nested in them, an account write and a logout.
`notes_app()` verifies the signature on every route; `notes_app(unverified={"DELETE /projects/{project_id}"})`
makes that one route call PyJWT with `options={"verify_signature": False}`, as the route seen on a real project did.
`extra_resources=N` adds N plain CRUD collections (five operations each), for the walk's bound; `delay` seconds are
slept before every answer (a slow free-tier host), for its deadline.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
import time
from collections.abc import Callable

import jwt
from fastapi import Depends, FastAPI, HTTPException, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field


class Credentials(BaseModel):
    username: str = Field(min_length=3, max_length=60)
    password: str = Field(min_length=8, max_length=72)


class ProjectIn(BaseModel):
    name: str = Field(min_length=1, max_length=80)


class ProjectPatch(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=80)


class NoteIn(BaseModel):
    text: str = Field(min_length=1, max_length=200)


class AccountIn(BaseModel):
    display_name: str = Field(min_length=1, max_length=60)


def notes_app(unverified: frozenset[str] | set[str] = frozenset(), extra_resources: int = 0,
              delay: float = 0.0) -> FastAPI:
    secret = secrets.token_urlsafe(32)
    users: dict[int, dict] = {}
    projects: dict[int, dict] = {}
    notes: dict[int, dict] = {}
    things: dict[tuple[int, int], dict] = {}
    ids = itertools.count(1)
    bearer = HTTPBearer(auto_error=False)
    app = FastAPI(title="notes")

    if delay:
        @app.middleware("http")
        async def slowly(request: Request, call_next):
            await asyncio.sleep(delay)
            return await call_next(request)

    def caller(route: str) -> Callable[..., dict]:
        """The user a route's token names; this route skips the signature check when it is one of `unverified`."""
        def dependency(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> dict:
            if credentials is None:
                raise HTTPException(401, "Not authenticated")
            try:
                if route in unverified:
                    claims = jwt.decode(credentials.credentials, options={"verify_signature": False})
                else:
                    claims = jwt.decode(credentials.credentials, secret, algorithms=["HS256"])
                return users[int(claims["sub"])]
            except (jwt.PyJWTError, KeyError, ValueError):
                raise HTTPException(401, "Invalid token") from None
        return dependency

    def mine(table: dict, key, user: dict) -> dict:
        row = table.get(key)
        if row is None or row["owner_id"] != user["id"]:
            raise HTTPException(404, "Not found")
        return row

    @app.post("/auth/signup", status_code=201)
    def signup(body: Credentials):
        if any(u["username"] == body.username for u in users.values()):
            raise HTTPException(409, "username taken")
        user_id = next(ids)
        users[user_id] = {"id": user_id, "username": body.username, "password": body.password, "display_name": ""}
        return {"id": user_id, "username": body.username}

    @app.post("/auth/login")
    def login(body: Credentials):
        user = next((u for u in users.values() if u["username"] == body.username), None)
        if user is None or not secrets.compare_digest(user["password"], body.password):
            raise HTTPException(401, "Incorrect username or password")
        now = int(time.time())
        return {"token": jwt.encode({"sub": str(user["id"]), "iat": now, "exp": now + 1800}, secret,
                                    algorithm="HS256")}

    @app.post("/auth/logout", status_code=204)
    def logout(user: dict = Depends(caller("POST /auth/logout"))):
        return Response(status_code=204)

    @app.put("/account")
    def account(body: AccountIn, user: dict = Depends(caller("PUT /account"))):
        user["display_name"] = body.display_name
        return {"id": user["id"], "username": user["username"], "display_name": user["display_name"]}

    @app.get("/projects")
    def list_projects(user: dict = Depends(caller("GET /projects"))):
        return [p for p in projects.values() if p["owner_id"] == user["id"]]

    @app.post("/projects", status_code=201)
    def create_project(body: ProjectIn, user: dict = Depends(caller("POST /projects"))):
        project_id = next(ids)
        projects[project_id] = {"id": project_id, "owner_id": user["id"], **body.model_dump()}
        return projects[project_id]

    @app.get("/projects/{project_id}")
    def read_project(project_id: int, user: dict = Depends(caller("GET /projects/{project_id}"))):
        return mine(projects, project_id, user)

    @app.patch("/projects/{project_id}")
    def patch_project(project_id: int, body: ProjectPatch,
                      user: dict = Depends(caller("PATCH /projects/{project_id}"))):
        project = mine(projects, project_id, user)
        project.update(body.model_dump(exclude_none=True))
        return project

    @app.delete("/projects/{project_id}", status_code=204)
    def delete_project(project_id: int, user: dict = Depends(caller("DELETE /projects/{project_id}"))):
        mine(projects, project_id, user)
        del projects[project_id]
        for note_id in [n for n, note in notes.items() if note["project_id"] == project_id]:
            del notes[note_id]
        return Response(status_code=204)

    @app.get("/projects/{project_id}/notes")
    def list_notes(project_id: int, user: dict = Depends(caller("GET /projects/{project_id}/notes"))):
        mine(projects, project_id, user)
        return [n for n in notes.values() if n["project_id"] == project_id]

    @app.post("/projects/{project_id}/notes", status_code=201)
    def create_note(project_id: int, body: NoteIn, user: dict = Depends(caller("POST /projects/{project_id}/notes"))):
        mine(projects, project_id, user)
        note_id = next(ids)
        notes[note_id] = {"id": note_id, "project_id": project_id, "owner_id": user["id"], **body.model_dump()}
        return notes[note_id]

    @app.get("/projects/{project_id}/notes/{note_id}")
    def read_note(project_id: int, note_id: int,
                  user: dict = Depends(caller("GET /projects/{project_id}/notes/{note_id}"))):
        note = mine(notes, note_id, user)
        if note["project_id"] != project_id:
            raise HTTPException(404, "Not found")
        return note

    @app.delete("/projects/{project_id}/notes/{note_id}", status_code=204)
    def delete_note(project_id: int, note_id: int,
                    user: dict = Depends(caller("DELETE /projects/{project_id}/notes/{note_id}"))):
        note = mine(notes, note_id, user)
        if note["project_id"] != project_id:
            raise HTTPException(404, "Not found")
        del notes[note_id]
        return Response(status_code=204)

    for number in range(extra_resources):
        _add_things(app, number, things, ids, caller, mine)
    return app


def _add_things(app: FastAPI, number: int, things: dict, ids, caller, mine) -> None:
    """A plain CRUD collection /things{number} (list, create, read, replace, delete), every route verifying."""
    base = f"/things{number}"

    @app.get(base, operation_id=f"list_things{number}")
    def list_things(user: dict = Depends(caller(f"GET {base}"))):
        return [t for (n, _), t in things.items() if n == number and t["owner_id"] == user["id"]]

    @app.post(base, status_code=201, operation_id=f"create_thing{number}")
    def create_thing(body: NoteIn, user: dict = Depends(caller(f"POST {base}"))):
        thing_id = next(ids)
        things[number, thing_id] = {"id": thing_id, "owner_id": user["id"], **body.model_dump()}
        return things[number, thing_id]

    @app.get(base + "/{thing_id}", operation_id=f"read_thing{number}")
    def read_thing(thing_id: int, user: dict = Depends(caller(f"GET {base}/{{thing_id}}"))):
        return mine(things, (number, thing_id), user)

    @app.put(base + "/{thing_id}", operation_id=f"replace_thing{number}")
    def replace_thing(thing_id: int, body: NoteIn, user: dict = Depends(caller(f"PUT {base}/{{thing_id}}"))):
        thing = mine(things, (number, thing_id), user)
        thing.update(body.model_dump())
        return thing

    @app.delete(base + "/{thing_id}", status_code=204, operation_id=f"delete_thing{number}")
    def delete_thing(thing_id: int, user: dict = Depends(caller(f"DELETE {base}/{{thing_id}}"))):
        mine(things, (number, thing_id), user)
        del things[number, thing_id]
        return Response(status_code=204)
