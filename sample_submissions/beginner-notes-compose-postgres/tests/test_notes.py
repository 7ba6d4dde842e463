"""Integration tests: start the stack first with `docker compose up -d --build`."""

import os

import httpx
import pytest

BASE_URL = os.getenv("API_URL", "http://localhost:8000")


@pytest.fixture()
def api():
    with httpx.Client(base_url=BASE_URL, timeout=10) as client:
        yield client


@pytest.fixture()
def note(api):
    r = api.post("/notes", json={"title": "Shopping", "content": "milk, eggs"})
    assert r.status_code == 201
    yield r.json()
    api.delete(f"/notes/{r.json()['id']}")


def test_create_note(note):
    assert isinstance(note["id"], int)
    assert note["title"] == "Shopping"
    assert note["pinned"] is False


def test_get_and_list(api, note):
    assert api.get(f"/notes/{note['id']}").json() == note
    assert note["id"] in [n["id"] for n in api.get("/notes").json()]


def test_update(api, note):
    r = api.put(f"/notes/{note['id']}", json={"title": "Shopping", "content": "milk", "pinned": True})
    assert r.status_code == 200
    assert r.json()["pinned"] is True


def test_delete(api, note):
    assert api.delete(f"/notes/{note['id']}").status_code == 204
    assert api.get(f"/notes/{note['id']}").status_code == 404


def test_not_found(api):
    r = api.get("/notes/999999")
    assert r.status_code == 404
    assert r.json() == {"detail": "Note not found"}


def test_validation(api):
    assert api.post("/notes", json={"title": ""}).status_code == 422
    assert api.post("/notes", json={"content": "no title"}).status_code == 422
    assert api.post("/notes", json={"title": "x", "pinned": "yes"}).status_code == 422
