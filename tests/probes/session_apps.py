"""A cookie-session notes API with CSRF protection, in the two shapes learner projects have:

- `django`: DRF's SessionAuthentication as Django does it: the login sets `sessionid` and `csrftoken`; an
  authenticated unsafe request passes only with `X-CSRFToken` equal to the `csrftoken` cookie (403 "CSRF Failed"
  otherwise); no session is 403 "Authentication credentials were not provided." (no WWW-Authenticate).
- `csurf`: Express' csurf: the login sets `connect.sid` and a `_csrf` secret cookie; the token is handed out by
  `GET /api/csrf-token` ({"csrfToken": ...}, not the cookie's value) and read from `CSRF-Token`-style headers.

`owner_check=False` plants BOLA (any session reads and changes any note)."""

from __future__ import annotations

import hashlib
import secrets

from flask import Flask, jsonify, make_response, request


def session_notes_app(shape: str = "django", *, owner_check: bool = True) -> Flask:
    app = Flask(__name__)
    users: dict[str, str] = {}
    sessions: dict[str, str] = {}  # session id -> username
    secrets_of: dict[str, str] = {}  # session id -> csurf secret
    notes: dict[int, dict] = {}
    session_cookie = "sessionid" if shape == "django" else "connect.sid"

    def error(status: int, detail: str):
        return jsonify(detail=detail), status

    def current() -> str | None:
        return sessions.get(request.cookies.get(session_cookie, ""))

    def csrf_ok() -> bool:
        if shape == "django":
            cookie = request.cookies.get("csrftoken")
            return bool(cookie) and request.headers.get("X-CSRFToken") == cookie
        secret = secrets_of.get(request.cookies.get(session_cookie, ""))
        given = request.headers.get("CSRF-Token") or request.headers.get("X-CSRF-Token")
        return bool(secret) and given == hashlib.sha256(secret.encode()).hexdigest()[:24]

    @app.before_request
    def guard():
        if request.path.startswith("/api/notes"):
            if current() is None:
                return error(403, "Authentication credentials were not provided.")
            if request.method not in ("GET", "HEAD", "OPTIONS") and not csrf_ok():
                return error(403, "CSRF Failed: CSRF token missing or incorrect.")
        return None

    @app.get("/openapi.json")
    def spec():
        return jsonify(SPEC | {"components": SPEC["components"] | {"securitySchemes": {"cookieAuth": {
            "type": "apiKey", "in": "cookie", "name": session_cookie}}}})

    @app.post("/api/register")
    def register():
        body = request.get_json(silent=True) or {}
        name, password = body.get("username"), body.get("password")
        if not isinstance(name, str) or not isinstance(password, str) or len(password) < 8 or name in users:
            return error(400, "username taken or password too short")
        users[name] = password
        return jsonify(username=name), 201

    @app.post("/api/login")
    def login():
        body = request.get_json(silent=True) or {}
        if users.get(body.get("username")) != body.get("password") or not body.get("password"):
            return error(400, "Unable to log in with the credentials given.")
        sid = secrets.token_hex(16)
        sessions[sid] = body["username"]
        answer = make_response(jsonify(detail="logged in"))
        answer.set_cookie(session_cookie, sid, httponly=True)
        if shape == "django":
            answer.set_cookie("csrftoken", secrets.token_hex(16))
        else:
            secrets_of[sid] = secrets.token_hex(12)
            answer.set_cookie("_csrf", secrets_of[sid], httponly=True)
        return answer

    @app.get("/api/csrf-token")
    def csrf_token():
        secret = secrets_of.get(request.cookies.get(session_cookie, ""))
        if shape != "csurf" or not secret:
            return error(404, "no CSRF token here")
        return jsonify(csrfToken=hashlib.sha256(secret.encode()).hexdigest()[:24])

    @app.get("/api/notes")
    def mine():
        return jsonify([n for n in notes.values() if n["owner"] == current()])

    @app.post("/api/notes")
    def create():
        body = request.get_json(silent=True) or {}
        if not isinstance(body.get("text"), str) or not body["text"]:
            return error(400, "text is required")
        note = {"id": len(notes) + 1, "text": body["text"], "owner": current()}
        notes[note["id"]] = note
        return jsonify(note), 201

    def mine_or_404(note_id: int):
        note = notes.get(note_id)
        return note if note is not None and (note["owner"] == current() or not owner_check) else None

    @app.get("/api/notes/<int:note_id>")
    def read(note_id: int):
        note = mine_or_404(note_id)
        return jsonify(note) if note else error(404, "Not found.")

    @app.put("/api/notes/<int:note_id>")
    def update(note_id: int):
        note = mine_or_404(note_id)
        body = request.get_json(silent=True) or {}
        if note is None:
            return error(404, "Not found.")
        if not isinstance(body.get("text"), str) or not body["text"]:
            return error(400, "text is required")
        note["text"] = body["text"]
        return jsonify(note)

    @app.delete("/api/notes/<int:note_id>")
    def delete(note_id: int):
        if mine_or_404(note_id) is None:
            return error(404, "Not found.")
        del notes[note_id]
        return "", 204

    return app


_NOTE = {"type": "object", "properties": {"id": {"type": "integer"}, "text": {"type": "string"},
                                          "owner": {"type": "string"}}}
_NOTE_IN = {"type": "object", "properties": {"text": {"type": "string", "minLength": 1, "maxLength": 200}},
            "required": ["text"]}
_CREDENTIALS = {"type": "object", "required": ["username", "password"],
                "properties": {"username": {"type": "string", "minLength": 3, "maxLength": 40},
                               "password": {"type": "string", "minLength": 8, "maxLength": 64}}}


def _json(schema):
    return {"content": {"application/json": {"schema": schema}}}


_SECURE = [{"cookieAuth": []}]
_ID = [{"name": "note_id", "in": "path", "required": True, "schema": {"type": "integer"}}]
SPEC = {
    "openapi": "3.0.3", "info": {"title": "Session notes", "version": "1"}, "components": {},
    "paths": {
        "/api/register": {"post": {"requestBody": _json(_CREDENTIALS), "responses": {
            "201": {"description": "registered"}, "400": {"description": "refused"}}}},
        "/api/login": {"post": {"requestBody": _json(_CREDENTIALS), "responses": {
            "200": {"description": "session cookie set"}, "400": {"description": "refused"}}}},
        "/api/csrf-token": {"get": {"security": _SECURE, "responses": {"200": {"description": "token"}}}},
        "/api/notes": {
            "get": {"security": _SECURE, "responses": {"200": {"description": "own notes",
                                                               **_json({"type": "array", "items": _NOTE})},
                                                       "403": {"description": "no session"}}},
            "post": {"security": _SECURE, "requestBody": _json(_NOTE_IN), "responses": {
                "201": {"description": "made", **_json(_NOTE)}, "400": {"description": "invalid"},
                "403": {"description": "no session or CSRF"}}}},
        "/api/notes/{note_id}": {
            "parameters": _ID,
            "get": {"security": _SECURE, "responses": {"200": {"description": "one", **_json(_NOTE)},
                                                       "403": {"description": "no session"},
                                                       "404": {"description": "missing"}}},
            "put": {"security": _SECURE, "requestBody": _json(_NOTE_IN), "responses": {
                "200": {"description": "changed", **_json(_NOTE)}, "400": {"description": "invalid"},
                "403": {"description": "no session or CSRF"}, "404": {"description": "missing"}}},
            "delete": {"security": _SECURE, "responses": {"204": {"description": "gone"},
                                                          "403": {"description": "no session or CSRF"},
                                                          "404": {"description": "missing"}}}},
    },
}
