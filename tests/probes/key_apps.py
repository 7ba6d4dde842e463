"""An API without passwords, for the API-key identity tests: clients get a key from `POST /api/keys`
({"api_key": ...}) and send it in `X-API-Key` (the spec's apiKey scheme); `owner_check=False` plants BOLA."""

from __future__ import annotations

import secrets

from fastapi import FastAPI, Header, HTTPException
from pydantic import BaseModel, Field


class KeyIn(BaseModel):
    name: str = Field(min_length=1, max_length=60)


class KeyOut(BaseModel):
    id: int
    name: str
    api_key: str


class NoteIn(BaseModel):
    text: str = Field(min_length=1, max_length=200)


class Note(NoteIn):
    id: int


def keyed_notes_app(*, owner_check: bool = True) -> FastAPI:
    app = FastAPI(title="Keyed notes")
    keys: dict[str, int] = {}
    notes: dict[int, dict] = {}

    def client(key: str | None) -> int:
        if key not in keys:
            raise HTTPException(401, "a valid X-API-Key is required")
        return keys[key]

    @app.post("/api/keys", status_code=201, response_model=KeyOut)
    def issue(body: KeyIn):
        key = secrets.token_urlsafe(24)
        keys[key] = len(keys) + 1
        return KeyOut(id=keys[key], name=body.name, api_key=key)

    def mine(note_id: int, owner: int) -> dict:
        note = notes.get(note_id)
        if note is None or (owner_check and note["owner"] != owner):
            raise HTTPException(404, "no such note")
        return note

    @app.get("/api/notes", response_model=list[Note])
    def listing(x_api_key: str | None = Header(None)):
        owner = client(x_api_key)
        return [n for n in notes.values() if n["owner"] == owner]

    @app.post("/api/notes", status_code=201, response_model=Note)
    def create(body: NoteIn, x_api_key: str | None = Header(None)):
        note = {"id": len(notes) + 1, "text": body.text, "owner": client(x_api_key)}
        notes[note["id"]] = note
        return note

    @app.get("/api/notes/{note_id}", response_model=Note)
    def read(note_id: int, x_api_key: str | None = Header(None)):
        return mine(note_id, client(x_api_key))

    @app.put("/api/notes/{note_id}", response_model=Note)
    def update(note_id: int, body: NoteIn, x_api_key: str | None = Header(None)):
        note = mine(note_id, client(x_api_key))
        note["text"] = body.text
        return note

    @app.delete("/api/notes/{note_id}", status_code=204)
    def delete(note_id: int, x_api_key: str | None = Header(None)):
        mine(note_id, client(x_api_key))
        del notes[note_id]

    def openapi():
        spec = FastAPI.openapi(app)
        spec["components"]["securitySchemes"] = {"ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}}
        for path, item in spec["paths"].items():
            for op in item.values():
                op["parameters"] = [p for p in op.get("parameters", []) if p["name"] != "x-api-key"]
                if path.startswith("/api/notes"):
                    op["security"] = [{"ApiKey": []}]
        return spec

    app.openapi = openapi
    return app
