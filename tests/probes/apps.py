"""Small in-process APIs for probe tests: one well-behaved, and flawed ones with known, planted bugs."""

from __future__ import annotations

import json
import traceback

from fastapi import FastAPI, HTTPException, Response
from pydantic import BaseModel, Field


class BookIn(BaseModel):
    title: str = Field(min_length=1, max_length=100)
    year: int = Field(ge=1000, le=2100)


class Book(BookIn):
    id: int


def good_books_app() -> FastAPI:
    """A correct CRUD API: 201/200/204/404, validation by pydantic, JSON errors, documented 404s."""
    app = FastAPI(title="books")
    db: dict[int, dict] = {}

    @app.post("/books", status_code=201, response_model=Book)
    def create(book: BookIn):
        new_id = max(db, default=0) + 1
        db[new_id] = {"id": new_id, **book.model_dump()}
        return db[new_id]

    @app.get("/books", response_model=list[Book])
    def list_books():
        return list(db.values())

    @app.get("/books/{book_id}", response_model=Book, responses={404: {"description": "no such book"}})
    def read(book_id: int):
        if book_id not in db:
            raise HTTPException(404, "Book not found")
        return db[book_id]

    @app.put("/books/{book_id}", response_model=Book, responses={404: {"description": "no such book"}})
    def update(book_id: int, book: BookIn):
        if book_id not in db:
            raise HTTPException(404, "Book not found")
        db[book_id] = {"id": book_id, **book.model_dump()}
        return db[book_id]

    @app.delete("/books/{book_id}", status_code=204, responses={404: {"description": "no such book"}})
    def delete(book_id: int):
        if book_id not in db:
            raise HTTPException(404, "Book not found")
        del db[book_id]
        return Response(status_code=204)

    return app


RECIPES_SPEC = {
    "openapi": "3.0.3",
    "info": {"title": "recipes", "version": "1.0"},
    "paths": {
        "/recipes": {"post": {
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["title", "servings"],
                "properties": {"title": {"type": "string", "minLength": 1}, "servings": {"type": "integer", "minimum": 1}},
            }}}},
            "responses": {"201": {"description": "created", "content": {"application/json": {"schema": {
                "$ref": "#/components/schemas/Recipe"}}}}},
        }},
        "/recipes/{recipe_id}": {
            "parameters": [{"name": "recipe_id", "in": "path", "required": True, "schema": {"type": "integer"}}],
            "get": {"responses": {"200": {"description": "ok", "content": {"application/json": {"schema": {
                "$ref": "#/components/schemas/Recipe"}}}}, "404": {"description": "missing"}}},
            "put": {"requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "properties": {"title": {"type": "string"}, "servings": {"type": "integer"}}}}}},
                "responses": {"200": {"description": "ok"}}},
            "delete": {"responses": {"204": {"description": "deleted"}}},
        },
        "/recipes/{recipe_id}/ratings": {
            "parameters": [{"name": "recipe_id", "in": "path", "required": True, "schema": {"type": "integer"}}],
            "get": {"responses": {"200": {"description": "ratings"}}},
        },
    },
    "components": {"schemas": {"Recipe": {"type": "object", "properties": {
        "id": {"type": "integer"}, "title": {"type": "string"}, "servings": {"type": "integer"}}}}},
}


def flawed_recipes_app():
    """Flask, hand-written spec; planted: ghost route, hidden route, 500 + traceback on malformed JSON,
    no validation, PUT that does not persist, DELETE that does not delete, text/plain 404s."""
    from flask import Flask, jsonify, request

    app = Flask("recipes")
    db: dict[int, dict] = {}

    @app.errorhandler(Exception)
    def crash(exc):
        if hasattr(exc, "code") and isinstance(exc.code, int) and exc.code < 500:
            return f"{exc.code} error", exc.code, {"Content-Type": "text/plain"}
        return jsonify({"error": str(exc), "trace": traceback.format_exc()}), 500

    @app.get("/openapi.json")
    def spec():
        return jsonify(RECIPES_SPEC)

    @app.post("/recipes")
    def create():
        data = json.loads(request.data)  # planted: no validation, 500 on malformed JSON
        new_id = max(db, default=0) + 1
        db[new_id] = {"id": new_id, **data}
        return jsonify(db[new_id]), 201

    @app.get("/recipes/<int:recipe_id>")
    def read(recipe_id):
        if recipe_id not in db:
            return "not found", 404, {"Content-Type": "text/plain"}
        return jsonify(db[recipe_id])

    @app.put("/recipes/<int:recipe_id>")
    def update(recipe_id):
        return jsonify(db.get(recipe_id, {}))  # planted: accepts but never stores the change

    @app.delete("/recipes/<int:recipe_id>")
    def delete(recipe_id):
        return "", 204  # planted: nothing is deleted

    @app.get("/recipes/search")
    def search():  # planted: not in the spec
        return jsonify([r for r in db.values() if request.args.get("q", "") in str(r.get("title"))])

    return app
