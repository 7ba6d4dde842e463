DUNE = {"title": "Dune", "author": "Frank Herbert", "year": 1965}


def test_health(client):
    assert client.get("/health").json() == {"status": "ok"}


def test_create_and_get_book(client):
    r = client.post("/books", json=DUNE)
    assert r.status_code == 201
    book = r.json()
    assert isinstance(book["id"], int)
    assert book["title"] == "Dune"
    assert book["read"] is False

    r = client.get(f"/books/{book['id']}")
    assert r.status_code == 200
    assert r.json() == book


def test_list_books(client):
    assert client.get("/books").json() == []
    client.post("/books", json=DUNE)
    client.post("/books", json={"title": "Emma", "author": "Jane Austen", "year": 1815})
    titles = [b["title"] for b in client.get("/books").json()]
    assert titles == ["Dune", "Emma"]


def test_put_replaces_book(client):
    book_id = client.post("/books", json=DUNE).json()["id"]
    r = client.put(f"/books/{book_id}", json={**DUNE, "read": True, "year": 1966})
    assert r.status_code == 200
    assert r.json()["read"] is True
    assert r.json()["year"] == 1966


def test_patch_changes_only_sent_fields(client):
    book_id = client.post("/books", json=DUNE).json()["id"]
    r = client.patch(f"/books/{book_id}", json={"read": True})
    assert r.status_code == 200
    assert r.json() == {**DUNE, "id": book_id, "read": True}


def test_delete_book(client):
    book_id = client.post("/books", json=DUNE).json()["id"]
    r = client.delete(f"/books/{book_id}")
    assert r.status_code == 204
    assert r.content == b""
    assert client.get(f"/books/{book_id}").status_code == 404


def test_unknown_book_is_404_json(client):
    for method in ("get", "delete"):
        r = getattr(client, method)("/books/999")
        assert r.status_code == 404
        assert r.json() == {"detail": "Book 999 not found"}
    assert client.put("/books/999", json=DUNE).status_code == 404
    assert client.patch("/books/999", json={"read": True}).status_code == 404


def test_validation_errors(client):
    assert client.post("/books", json={**DUNE, "title": ""}).status_code == 422
    assert client.post("/books", json={**DUNE, "year": 99999}).status_code == 422
    assert client.post("/books", json={**DUNE, "year": "1965"}).status_code == 422
    assert client.post("/books", json={"title": "No author"}).status_code == 422
    assert client.get("/books/not-a-number").status_code == 422


def test_malformed_json_is_422(client):
    r = client.post("/books", content=b'{"title": "Dune",', headers={"Content-Type": "application/json"})
    assert r.status_code == 422
    assert "detail" in r.json()


def test_weird_input_is_422_not_500(client):
    # found with Schemathesis / manual fuzzing: these used to crash with a 500
    bad_bodies = [
        b'{"title": "\\ud800", "author": "x", "year": 1}',
        b'{"title": "Dune", "author": "x", "year": NaN}',
        b'{"title": "Dune", "author": "x", "year": 1, "\\udfff": 1}',
    ]
    for body in bad_bodies:
        r = client.post("/books", content=body, headers={"Content-Type": "application/json"})
        assert r.status_code == 422, body
        assert r.json()["detail"]


def test_405_lists_all_methods(client):
    r = client.request("OPTIONS", "/books/1")
    assert r.status_code == 405
    assert r.headers["allow"] == "DELETE, GET, PATCH, PUT"
