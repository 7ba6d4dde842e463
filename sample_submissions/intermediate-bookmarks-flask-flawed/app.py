"""Bookmarks API: save links, each user sees only their own. Flask + SQLite + JWT."""
import json
import os
import secrets
import sqlite3
import threading
import time
from datetime import datetime, timezone
from functools import wraps

import jwt
from flask import Flask, abort, g, jsonify, request, send_from_directory
from werkzeug.exceptions import HTTPException
from werkzeug.security import check_password_hash, generate_password_hash

app = Flask(__name__)
app.config["JWT_SECRET_KEY"] = os.environ.get("JWT_SECRET_KEY") or secrets.token_hex(32)
app.config["DATABASE"] = os.environ.get("DATABASE", "bookmarks.db")

MAX_FAILED_LOGINS = 5
LOGIN_WINDOW = 60  # seconds
failed_logins = {}  # username -> timestamps of recent failed logins
failed_logins_lock = threading.Lock()

BOOKMARK_URL = "/bookmarks/<int:bookmark_id>"
MAX_ID = 2**63 - 1  # SQLite integers are 64-bit

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    username TEXT UNIQUE NOT NULL,
    email TEXT UNIQUE NOT NULL,
    password_hash TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS bookmarks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    owner_id INTEGER NOT NULL REFERENCES users (id),
    url TEXT NOT NULL,
    title TEXT NOT NULL DEFAULT '',
    notes TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
"""


# ---------- database ----------

def get_db():
    if "db" not in g:
        g.db = sqlite3.connect(app.config["DATABASE"])
        g.db.row_factory = sqlite3.Row
    return g.db


@app.teardown_appcontext
def close_db(exc):
    db = g.pop("db", None)
    if db is not None:
        db.close()


with app.app_context():
    get_db().executescript(SCHEMA)


def now():
    return datetime.now(timezone.utc).isoformat()


def bookmark_to_dict(row):
    return {k: row[k] for k in ("id", "url", "title", "notes", "created_at", "updated_at")}


# ---------- helpers ----------

@app.url_value_preprocessor
def check_bookmark_id(endpoint, values):
    # found by fuzzing: /bookmarks/99999999999999999999 crashed sqlite3 with an OverflowError
    if values and values.get("bookmark_id", 0) > MAX_ID:
        abort(404, "Bookmark not found")


@app.errorhandler(HTTPException)
def json_error(e):
    response = e.get_response()  # keeps headers such as Allow on 405
    response.data = json.dumps({"error": e.description})
    response.content_type = "application/json"
    return response


def json_body():
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        abort(400, "Request body must be a JSON object")
    return data


def validate(data, rules):
    """rules: {field: (required, min_len, max_len)}. Returns the clean fields or aborts with 400."""
    clean = {}
    for field, (required, min_len, max_len) in rules.items():
        if field not in data:
            if required:
                abort(400, f"'{field}' is required")
            continue
        value = data[field]
        if not isinstance(value, str):
            abort(400, f"'{field}' must be a string")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            abort(400, f"'{field}' is not valid text")
        if not min_len <= len(value) <= max_len:
            abort(400, f"'{field}' must be {min_len} to {max_len} characters")
        clean[field] = value
    if "url" in clean and not clean["url"].startswith(("http://", "https://")):
        abort(400, "'url' must start with http:// or https://")
    if "email" in clean and "@" not in clean["email"]:
        abort(400, "'email' is not a valid email address")
    return clean


def create_token(user):
    payload = {"sub": str(user["id"]), "username": user["username"], "iat": int(time.time())}
    return jwt.encode(payload, app.config["JWT_SECRET_KEY"], algorithm="HS256")


def login_required(view):
    @wraps(view)
    def wrapper(*args, **kwargs):
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            return jsonify(error="Missing bearer token"), 401
        try:
            payload = jwt.decode(
                header[len("Bearer "):],
                app.config["JWT_SECRET_KEY"],
                algorithms=["HS256", "none"],
                options={"verify_exp": False},  # TODO: tokens should expire
            )
            user_id = int(payload["sub"])
        except (jwt.PyJWTError, KeyError, ValueError):
            return jsonify(error="Invalid token"), 401
        g.user = get_db().execute("SELECT * FROM users WHERE id = ?", (user_id,)).fetchone()
        if g.user is None:
            return jsonify(error="Invalid token"), 401
        return view(*args, **kwargs)

    return wrapper


def seconds_until_unlocked(username):
    """0 if this username may try to log in, else how long it has to wait."""
    cutoff = time.time() - LOGIN_WINDOW
    with failed_logins_lock:
        recent = [t for t in failed_logins.get(username, []) if t > cutoff]
        if recent:
            failed_logins[username] = recent
        else:
            failed_logins.pop(username, None)
        if len(recent) < MAX_FAILED_LOGINS:
            return 0
        return int(recent[0] - cutoff) + 1


# ---------- auth ----------

@app.post("/register")
def register():
    data = validate(json_body(), {"username": (True, 3, 30), "email": (True, 3, 254), "password": (True, 8, 128)})
    db = get_db()
    try:
        cur = db.execute(
            "INSERT INTO users (username, email, password_hash, created_at) VALUES (?, ?, ?, ?)",
            (data["username"], data["email"].lower(), generate_password_hash(data["password"]), now()),
        )
        db.commit()
    except sqlite3.IntegrityError:
        abort(409, "Username or email already taken")
    user = db.execute("SELECT * FROM users WHERE id = ?", (cur.lastrowid,)).fetchone()
    return jsonify(id=user["id"], username=user["username"], email=user["email"], created_at=user["created_at"]), 201


@app.post("/login")
def login():
    data = validate(json_body(), {"username": (True, 1, 30), "password": (True, 1, 128)})
    username = data["username"]
    wait = seconds_until_unlocked(username)
    if wait:
        return jsonify(error="Too many failed login attempts, try again later"), 429, {"Retry-After": str(wait)}
    user = get_db().execute("SELECT * FROM users WHERE username = ?", (username,)).fetchone()
    if user is None or not check_password_hash(user["password_hash"], data["password"]):
        with failed_logins_lock:
            failed_logins.setdefault(username, []).append(time.time())
        return jsonify(error="Invalid username or password"), 401
    with failed_logins_lock:
        failed_logins.pop(username, None)
    return jsonify(access_token=create_token(user), token_type="bearer")


@app.get("/me")
@login_required
def me():
    return jsonify(id=g.user["id"], username=g.user["username"], email=g.user["email"],
                   created_at=g.user["created_at"])


# ---------- bookmarks ----------

BOOKMARK_FIELDS = {"url": (True, 10, 2048), "title": (False, 0, 200), "notes": (False, 0, 2000)}


@app.post("/bookmarks")
@login_required
def create_bookmark():
    data = validate(json_body(), BOOKMARK_FIELDS)
    db = get_db()
    cur = db.execute(
        "INSERT INTO bookmarks (owner_id, url, title, notes, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
        (g.user["id"], data["url"], data.get("title", ""), data.get("notes", ""), now(), now()),
    )
    db.commit()
    row = db.execute("SELECT * FROM bookmarks WHERE id = ?", (cur.lastrowid,)).fetchone()
    return jsonify(bookmark_to_dict(row)), 201


def int_arg(name, default, low, high):
    value = request.args.get(name, str(default))
    if not (value.isdecimal() and len(value) <= 6 and low <= int(value) <= high):
        abort(400, f"'{name}' must be an integer from {low} to {high}")
    return int(value)


@app.get("/bookmarks")
@login_required
def list_bookmarks():
    page, size = int_arg("page", 1, 1, 10000), int_arg("size", 20, 1, 100)
    db = get_db()
    total = db.execute("SELECT COUNT(*) FROM bookmarks WHERE owner_id = ?", (g.user["id"],)).fetchone()[0]
    rows = db.execute(
        "SELECT * FROM bookmarks WHERE owner_id = ? ORDER BY id LIMIT ? OFFSET ?",
        (g.user["id"], size, (page - 1) * size),
    ).fetchall()
    return jsonify(items=[bookmark_to_dict(r) for r in rows], page=page, size=size, total=total)


@app.get(BOOKMARK_URL)
@login_required
def get_bookmark(bookmark_id):
    row = get_db().execute(
        "SELECT * FROM bookmarks WHERE id = ? AND owner_id = ?", (bookmark_id, g.user["id"])
    ).fetchone()
    if row is None:
        abort(404, "Bookmark not found")
    return jsonify(bookmark_to_dict(row))


@app.patch(BOOKMARK_URL)
@login_required
def update_bookmark(bookmark_id):
    changes = validate(json_body(), {field: (False, lo, hi) for field, (_, lo, hi) in BOOKMARK_FIELDS.items()})
    db = get_db()
    bookmark = db.execute("SELECT * FROM bookmarks WHERE id = ?", (bookmark_id,)).fetchone()
    if bookmark is None:
        abort(404, "Bookmark not found")
    if changes:
        assignments = ", ".join(f"{field} = ?" for field in changes)
        db.execute(
            f"UPDATE bookmarks SET {assignments}, updated_at = ? WHERE id = ?",
            (*changes.values(), now(), bookmark_id),
        )
        db.commit()
    if bookmark["owner_id"] != g.user["id"]:
        abort(403, "You can only edit your own bookmarks")
    row = db.execute("SELECT * FROM bookmarks WHERE id = ?", (bookmark_id,)).fetchone()
    return jsonify(bookmark_to_dict(row))


@app.delete(BOOKMARK_URL)
@login_required
def delete_bookmark(bookmark_id):
    db = get_db()
    cur = db.execute("DELETE FROM bookmarks WHERE id = ? AND owner_id = ?", (bookmark_id, g.user["id"]))
    db.commit()
    return jsonify(deleted=cur.rowcount == 1)


# ---------- docs ----------

@app.get("/openapi.json")
def openapi():
    return send_from_directory(app.root_path, "openapi.json")


@app.get("/health")
def health():
    return jsonify(status="ok")


if __name__ == "__main__":
    app.run(port=5000)
