"""API tests without a server or a real Redis: TestClient + fakeredis."""
import fakeredis
import pytest
from fastapi.testclient import TestClient


@pytest.fixture
def client(tmp_path, monkeypatch):
    monkeypatch.setenv("LINKS_DB", str(tmp_path / "links.db"))
    from app import cache, db, main

    monkeypatch.setattr(db, "DB_PATH", str(tmp_path / "links.db"))
    monkeypatch.setattr(cache, "client", fakeredis.FakeRedis(decode_responses=True))
    with TestClient(main.app) as test_client:
        yield test_client


def login(client, email="ada@example.com"):
    client.post("/auth/register", json={"email": email, "password": "correct-horse-42", "full_name": "Ada"})
    token = client.post("/auth/login", json={"email": email, "password": "correct-horse-42"}).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def test_shorten_and_follow(client):
    headers = login(client)
    link = client.post("/links", json={"url": "https://example.com/some/long/path"}, headers=headers).json()
    answer = client.get(f"/{link['code']}", follow_redirects=False)
    assert answer.status_code == 302 and answer.headers["location"] == "https://example.com/some/long/path"


def test_links_are_private(client):
    link = client.post("/links", json={"url": "https://example.com/mine"}, headers=login(client)).json()
    other = login(client, "bob@example.com")
    assert client.get(f"/links/{link['id']}", headers=other).status_code == 404


def test_links_need_a_token(client):
    assert client.post("/links", json={"url": "https://example.com/x"}).status_code == 401
