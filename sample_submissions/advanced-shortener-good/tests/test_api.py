"""API tests without a server or a real Redis: TestClient + fakeredis (the rate limiter counts in memory)."""
import fakeredis
import pytest
from fastapi.testclient import TestClient
from limits import parse
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import FixedWindowRateLimiter


@pytest.fixture
def client(tmp_path, monkeypatch):
    monkeypatch.setenv("LINKS_DB", str(tmp_path / "links.db"))
    from app import cache, db, main, ratelimit

    monkeypatch.setattr(db, "DB_PATH", str(tmp_path / "links.db"))
    monkeypatch.setattr(cache, "client", fakeredis.FakeRedis(decode_responses=True))
    monkeypatch.setattr(ratelimit, "limiter", FixedWindowRateLimiter(MemoryStorage()))
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


def test_unknown_code_is_404(client):
    assert client.get("/abcdefg", follow_redirects=False).status_code == 404


def test_links_are_private(client):
    link = client.post("/links", json={"url": "https://example.com/mine"}, headers=login(client)).json()
    other = login(client, "bob@example.com")
    assert client.get(f"/links/{link['id']}", headers=other).status_code == 404


def test_links_need_a_token(client):
    assert client.post("/links", json={"url": "https://example.com/x"}).status_code == 401


def test_rate_limit_counts_down_then_answers_429(client, monkeypatch):
    from app import ratelimit

    monkeypatch.setattr(ratelimit, "LIMIT", parse("3/minute"))
    answers = [client.get("/links") for _ in range(4)]
    assert [a.status_code for a in answers] == [401, 401, 401, 429]
    assert [a.headers["RateLimit-Remaining"] for a in answers] == ["2", "1", "0", "0"]
    assert int(answers[-1].headers["Retry-After"]) > 0
    assert client.get("/abcdefg", follow_redirects=False).status_code == 404, "the redirect is not limited"
    assert client.get("/health").status_code in (200, 503) and "RateLimit-Remaining" not in client.get("/metrics").headers
