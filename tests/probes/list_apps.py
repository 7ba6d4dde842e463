"""In-process list APIs for the pagination, HTTP-error and rate-limit probes: one correct app per paging style,
and flaws switched on one at a time, so each check is tested against a real server for its pass and its fail."""

from __future__ import annotations

import random
import time
from typing import Literal

from fastapi import FastAPI, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

Style = Literal["offset", "page", "cursor", "link", "drf", "none", "limit_only"]


class ItemIn(BaseModel):
    title: str = Field(min_length=1, max_length=200)
    done: bool = False


class Item(ItemIn):
    id: int


def items_app(style: Style = "offset", *flaws: str, rate_limit: int | None = None,
              rate_headers: bool = False) -> FastAPI:
    """A collection at /items with POST, GET /items/{id}, DELETE, and a list paged the given way.

    Flaws: duplicates (offset pages overlap by one), unstable (rows in random order), wrong_total (total is
    off by 3), no_cap (no maximum page size; -1 means everything), crash (a negative page size is a 500),
    filter_ignored (`done` is documented but not applied), sort_ignored (`sort` is documented but not applied),
    next_on_last (the last page still announces a next one).
    `rate_limit`: answer 429 after that many list requests (per app); `rate_headers`: send RateLimit headers.
    """
    unknown = set(flaws) - {"duplicates", "unstable", "wrong_total", "no_cap", "crash", "filter_ignored",
                            "sort_ignored", "next_on_last"}
    assert not unknown, unknown
    app = FastAPI(title=f"items ({style})")
    db: dict[int, dict] = {}
    app.state.db = db
    app.state.list_calls = 0
    cap = None if "no_cap" in flaws else 100

    def rows(done: bool | None, sort: str | None, q: str | None) -> list[dict]:
        out = list(db.values())
        if done is not None and "filter_ignored" not in flaws:
            out = [r for r in out if r["done"] == done]
        if q:
            out = [r for r in out if q.lower() in r["title"].lower()]
        if sort and "sort_ignored" not in flaws:
            out.sort(key=lambda r: r[sort.lstrip("-")], reverse=sort.startswith("-"))
        if "unstable" in flaws:
            random.shuffle(out)
        return out

    def window(all_rows: list[dict], start: int, size: int) -> list[dict]:
        if "crash" in flaws and size < 0:
            raise RuntimeError("negative slice")  # becomes a 500
        if "duplicates" in flaws and start > 0:
            start -= 1
        if size < 0:
            return all_rows[start:]  # like SQLite's LIMIT -1
        return all_rows[start:start + size]

    def counted(request: Request) -> JSONResponse | None:
        app.state.list_calls += 1
        if rate_limit is not None and app.state.list_calls > rate_limit:
            return JSONResponse({"detail": "Too many requests"}, status_code=429, headers={"Retry-After": "30"})
        return None

    def limited(body, headers: dict[str, str] | None = None) -> JSONResponse:
        headers = dict(headers or {})
        if rate_headers:
            headers |= {"RateLimit-Limit": "1000", "RateLimit-Remaining": "990", "RateLimit-Reset": "60"}
        return JSONResponse(body, headers=headers)

    size_q = Query(10, ge=-1 if cap is None or "crash" in flaws else 1, le=cap)
    done_q = Query(None, description="only done / open items")
    sort_q = Query(None, description="sort by a field", json_schema_extra={"enum": ["title", "-title", "id"]})
    q_q = Query(None, description="search in titles")

    if style == "offset":
        @app.get("/items")
        def list_offset(request: Request, limit: int = size_q, offset: int = Query(0, ge=0),
                        done: bool | None = done_q, sort: str | None = sort_q, q: str | None = q_q):
            if (refused := counted(request)) is not None:
                return refused
            all_rows = rows(done, sort, q)
            total = len(all_rows) + (3 if "wrong_total" in flaws else 0)
            return limited({"items": window(all_rows, offset, limit), "total": total, "limit": limit,
                            "offset": offset})
    elif style == "page":
        @app.get("/items")
        def list_page(request: Request, page: int = Query(1, ge=1), size: int = size_q,
                      done: bool | None = done_q, sort: str | None = sort_q):
            if (refused := counted(request)) is not None:
                return refused
            all_rows = rows(done, sort, None)
            total = len(all_rows) + (3 if "wrong_total" in flaws else 0)
            pages = max(1, -(-total // size)) if size > 0 else 1
            return limited({"items": window(all_rows, (page - 1) * size, size), "page": page, "size": size,
                            "total": total, "pages": pages})
    elif style == "cursor":
        @app.get("/items")
        def list_cursor(request: Request, cursor: str | None = None, limit: int = size_q):
            if (refused := counted(request)) is not None:
                return refused
            all_rows = rows(None, None, None)
            if cursor is not None and not cursor.isdigit():
                raise HTTPException(400, "bad cursor")
            start = int(cursor) if cursor else 0
            chunk = window(all_rows, start, limit)
            more = start + len(chunk) < len(all_rows) or "next_on_last" in flaws
            return limited({"items": chunk, "next_cursor": str(start + len(chunk)) if more else None})
    elif style == "link":
        @app.get("/items")
        def list_link(request: Request, page: int = Query(1, ge=1), per_page: int = size_q):
            if (refused := counted(request)) is not None:
                return refused
            all_rows = rows(None, None, None)
            chunk = window(all_rows, (page - 1) * per_page, per_page)
            headers = {"X-Total-Count": str(len(all_rows) + (3 if "wrong_total" in flaws else 0))}
            if page * per_page < len(all_rows):
                # an absolute URL with the host the app thinks it has: the grader must keep to its own target
                headers["Link"] = f'<http://0.0.0.0:8000/items?page={page + 1}&per_page={per_page}>; rel="next"'
            return limited(chunk, headers)
    elif style == "drf":
        @app.get("/items")
        def list_drf(request: Request, page: int = Query(1, ge=1), page_size: int = size_q):
            if (refused := counted(request)) is not None:
                return refused
            all_rows = rows(None, None, None)
            chunk = window(all_rows, (page - 1) * page_size, page_size)
            last = page * page_size >= len(all_rows)
            nxt = None if last and "next_on_last" not in flaws else f"/items?page={page + 1}&page_size={page_size}"
            prev = None if page == 1 else f"/items?page={page - 1}&page_size={page_size}"
            return limited({"count": len(all_rows) + (3 if "wrong_total" in flaws else 0), "next": nxt,
                            "previous": prev, "results": chunk})
    elif style == "limit_only":
        @app.get("/items", response_model=list[Item])
        def list_limited(request: Request, limit: int = Query(100, ge=1, le=1000)):
            if (refused := counted(request)) is not None:
                return refused
            return rows(None, None, None)[:limit]
    else:
        @app.get("/items", response_model=list[Item])
        def list_all(request: Request):
            if (refused := counted(request)) is not None:
                return refused
            return rows(None, None, None)

    @app.post("/items", status_code=201, response_model=Item)
    def create(body: ItemIn):
        new_id = max(db, default=0) + 1
        db[new_id] = {"id": new_id, **body.model_dump(), "created": time.monotonic()}
        return db[new_id]

    @app.get("/items/{item_id}", response_model=Item, responses={404: {"description": "no such item"}})
    def read(item_id: int):
        if item_id not in db:
            raise HTTPException(404, "Item not found")
        return db[item_id]

    @app.delete("/items/{item_id}", status_code=204, responses={404: {"description": "no such item"}})
    def delete(item_id: int):
        if db.pop(item_id, None) is None:
            raise HTTPException(404, "Item not found")
        return Response(status_code=204)

    return app


NOTES_SPEC = {
    "openapi": "3.0.3",
    "info": {"title": "notes", "version": "1.0"},
    "paths": {
        "/notes": {
            "get": {"responses": {"200": {"description": "all notes"}}},
            "post": {"requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["title"], "properties": {"title": {"type": "string"}}}}}},
                "responses": {"201": {"description": "created"}, "400": {"description": "bad body"}}},
        },
        "/notes/{note_id}": {
            "parameters": [{"name": "note_id", "in": "path", "required": True, "schema": {"type": "integer"}}],
            "get": {"responses": {"200": {"description": "a note"}, "404": {"description": "missing"}}},
            "delete": {"responses": {"204": {"description": "deleted"}, "404": {"description": "missing"}}},
        },
    },
}


def notes_flask_app(*flaws: str):
    """A small Flask notes API that handles HTTP errors the way the checks expect, unless flawed:
    catch_all (unknown routes answer 200), html_404 (Flask's own HTML 404 page), no_405 (wrong methods get 404,
    as in Express), no_allow (a custom 405 handler that drops the Allow header), force_json (parses any body as
    JSON), no_body_limit (no MAX_CONTENT_LENGTH), mixed_errors (404s say {"message"}, the rest {"error"})."""
    from flask import Flask, abort, jsonify, request
    from werkzeug.exceptions import HTTPException as WerkzeugHTTPException

    unknown = set(flaws) - {"catch_all", "html_404", "no_405", "no_allow", "force_json", "no_body_limit",
                            "mixed_errors"}
    assert not unknown, unknown
    app = Flask("notes")
    if "no_body_limit" not in flaws:
        app.config["MAX_CONTENT_LENGTH"] = 1024 * 1024
    notes: dict[int, dict] = {}
    app.notes = notes

    @app.errorhandler(WerkzeugHTTPException)
    def as_json(exc):
        if exc.code == 404 and "html_404" in flaws:
            return exc
        if exc.code == 405 and "no_405" in flaws:
            return jsonify(error="Not found"), 404
        key = "message" if exc.code == 404 and "mixed_errors" in flaws else "error"
        response = jsonify({key: exc.description})
        response.status_code = exc.code
        if exc.code == 405 and "no_allow" not in flaws:
            response.headers["Allow"] = ", ".join(exc.valid_methods or [])
        return response

    @app.get("/openapi.json")
    def spec():
        return jsonify(NOTES_SPEC)

    @app.get("/notes")
    def list_notes():
        return jsonify(list(notes.values()))

    @app.post("/notes")
    def create():
        body = request.get_json(force="force_json" in flaws)
        if not isinstance(body, dict) or not isinstance(body.get("title"), str):
            return jsonify(error="title is required"), 400
        note_id = max(notes, default=0) + 1
        notes[note_id] = {"id": note_id, "title": body["title"]}
        return jsonify(notes[note_id]), 201

    @app.get("/notes/<int:note_id>")
    def read(note_id: int):
        if note_id not in notes:
            abort(404, "note not found")
        return jsonify(notes[note_id])

    @app.delete("/notes/<int:note_id>")
    def delete(note_id: int):
        if notes.pop(note_id, None) is None:
            abort(404, "note not found")
        return "", 204

    if "catch_all" in flaws:
        @app.get("/<path:anything>")
        def frontend(anything: str):
            return "<!doctype html><title>my app</title><div id=root></div>", 200

    return app
