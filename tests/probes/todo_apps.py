"""A to-do API of the shape many learner projects have: no `GET /todos/{id}` — the list is the only way to see a
to-do again — while `PATCH` and `DELETE /todos/{todo_id}` change one. Each user sees only their own to-dos.

- `shared_writes`: any logged-in user may change or delete anyone's to-do (the flaw: BOLA through the writes);
- `create_answer`: "object" (the to-do with its id), "message" (`{"message": "created"}` only: the grader must
  find it in the list by what it sent), or "location" (the message and a `Location` header);
- `page_size`: the list shows at most this many, oldest first, with a `next` link when there are more;
- `delete_keeps`: DELETE answers 204 but the to-do stays (a broken delete);
- `query_update`: the update is `PUT /todos?todo_id=5` (the id in the query) instead of `PATCH /todos/{todo_id}`;
- `toggle`: the only update is `PATCH /todos/toggle/{todo_id}`, no body, flipping `done`;
- `anonymous_writes`: PATCH and DELETE read no credentials at all (the spec declares none for them) and act on
  any to-do (the flaw: anyone changes or deletes users' to-dos)."""

from __future__ import annotations

import itertools
import secrets
from typing import Literal

from fastapi import Depends, FastAPI, Header, HTTPException, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field


class Signup(BaseModel):
    username: str = Field(min_length=3, max_length=40)
    password: str = Field(min_length=8)


class TodoIn(BaseModel):
    title: str = Field(min_length=1, max_length=80)
    done: bool = False


class TodoPatch(BaseModel):
    title: str | None = Field(default=None, max_length=80)
    done: bool | None = None


def accounts(app: FastAPI):
    """Sign-up and bearer login on `app`; returns the dependency that answers the caller's username (or 401)."""
    users: dict[str, str] = {}
    tokens: dict[str, str] = {}
    bearer = HTTPBearer(auto_error=False)

    def current(creds: HTTPAuthorizationCredentials | None = Depends(bearer)) -> str:
        name = tokens.get(creds.credentials, "") if creds else ""
        if name not in users:
            raise HTTPException(401, "Not authenticated")
        return name

    @app.post("/auth/register", status_code=201, responses={409: {}})
    def register(body: Signup):
        if body.username in users:
            raise HTTPException(409, "taken")
        users[body.username] = body.password
        return {"username": body.username}

    @app.post("/auth/login", responses={401: {}})
    def login(body: Signup):
        if users.get(body.username) != body.password:
            raise HTTPException(401, "Incorrect username or password")
        value = secrets.token_urlsafe(16)
        tokens[value] = body.username
        return {"access_token": value, "token_type": "bearer"}

    return current


def todo_app(shared_writes: bool = False, create_answer: Literal["object", "message", "location"] = "object",
             page_size: int | None = None, delete_keeps: bool = False, query_update: bool = False,
             anonymous_writes: bool = False, toggle: bool = False) -> FastAPI:
    todos: dict[int, dict] = {}
    ids = itertools.count(1)
    app = FastAPI(title="todos")
    current = accounts(app)

    def anyone() -> str:
        return ""

    writer = anyone if anonymous_writes else current

    def writable(todo_id: int, user: str) -> dict:
        todo = todos.get(todo_id)
        if todo is None or (todo["owner"] != user and not shared_writes and not anonymous_writes):
            raise HTTPException(404, "no such to-do")
        return todo

    @app.get("/todos", responses={401: {}})
    def listing(user: str = Depends(current), offset: int = 0):
        mine = [{k: v for k, v in t.items() if k != "owner"} for t in todos.values() if t["owner"] == user]
        if page_size is None:
            return mine
        page = mine[offset:offset + page_size]
        more = offset + page_size < len(mine)
        return {"items": page, "next": f"/todos?offset={offset + page_size}" if more else None}

    @app.post("/todos", status_code=201, responses={401: {}})
    def create(body: TodoIn, response: Response, user: str = Depends(current)):
        todo = {"id": next(ids), **body.model_dump(), "owner": user}
        todos[todo["id"]] = todo
        if create_answer == "object":
            return {k: v for k, v in todo.items() if k != "owner"}
        if create_answer == "location":
            response.headers["Location"] = f"/todos/{todo['id']}"
        return {"message": "created"}

    def update(todo_id: int, body: TodoPatch, user: str = Depends(writer)):
        todo = writable(todo_id, user)
        todo.update(body.model_dump(exclude_none=True))
        return {k: v for k, v in todo.items() if k != "owner"}

    if toggle:
        @app.patch("/todos/toggle/{todo_id}", responses={401: {}, 404: {}})
        def flip(todo_id: int, user: str = Depends(writer)):
            todo = writable(todo_id, user)
            todo["done"] = not todo["done"]
            return {k: v for k, v in todo.items() if k != "owner"}
    elif query_update:
        app.put("/todos", responses={401: {}, 404: {}})(update)
    else:
        app.patch("/todos/{todo_id}", responses={401: {}, 404: {}})(update)

    @app.delete("/todos/{todo_id}", status_code=204, responses={401: {}, 404: {}})
    def delete(todo_id: int, user: str = Depends(writer)):
        writable(todo_id, user)
        if not delete_keeps:
            todos.pop(todo_id)
        return Response(status_code=204)

    return app


class Note(BaseModel):
    text: str = Field(min_length=1, max_length=80)


def keyed_notes_app() -> FastAPI:
    """Notes that only an API key may create, and nothing in the spec says how to get one."""
    app = FastAPI(title="keyed notes")

    @app.post("/notes", status_code=201, responses={403: {}})
    def create(note: Note, x_api_key: str | None = Header(default=None)):
        raise HTTPException(403, "an API key is required")

    @app.get("/notes/{note_id}", responses={404: {}})
    def read(note_id: int):
        raise HTTPException(404, "no such note")

    return app
