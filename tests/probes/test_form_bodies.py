"""A catalogue API whose spec documents its bodies as forms only (`application/x-www-form-urlencoded`, as Express
specs for body-parser APIs write them): the CRUD walk sends its creates and updates form-encoded, and a JSON `{}`
the API would never read (seen: 406 "Category can't be added" on a working create) is not sent."""

from __future__ import annotations

import itertools

from fastapi import FastAPI, Form, HTTPException, Response

from ..conftest import make_context, run


def catalogue_app() -> FastAPI:
    app = FastAPI(title="catalogue")
    items: dict[int, dict] = {}
    ids = itertools.count(1)

    @app.post("/categories", status_code=201, responses={406: {}})
    def create(category_name: str = Form(max_length=80)):
        if any(c["category_name"] == category_name for c in items.values()):
            raise HTTPException(406, "Category can't be added")
        item = {"id": next(ids), "category_name": category_name}
        items[item["id"]] = item
        return item

    @app.get("/categories/{item_id}", responses={404: {}})
    def read(item_id: int):
        if item_id not in items:
            raise HTTPException(404, "No category found")
        return items[item_id]

    @app.put("/categories/{item_id}", responses={404: {}})
    def update(item_id: int, category_name: str = Form(max_length=80)):
        if item_id not in items:
            raise HTTPException(404, "No category found")
        items[item_id]["category_name"] = category_name
        return items[item_id]

    @app.delete("/categories/{item_id}", status_code=204, responses={404: {}})
    def delete(item_id: int):
        if items.pop(item_id, None) is None:
            raise HTTPException(404, "No category found")
        return Response(status_code=204)

    return app


def test_a_create_and_update_documented_as_forms_are_sent_form_encoded(serve):
    ctx = make_context(serve(catalogue_app()))
    assert ctx.api.operations and ctx.api.resources[0].create.request_schema is None  # a form only
    outcome = run("crud.lifecycle", ctx)
    assert outcome.status == "pass" and outcome.summary.startswith("6/6 "), (outcome.summary, outcome.findings)
    create = next(e for e in outcome.evidence if e.request.method == "POST")
    assert create.request.headers.get("Content-Type") == "application/x-www-form-urlencoded"
    assert create.request.body.startswith("category_name=") and create.response.status == 201
