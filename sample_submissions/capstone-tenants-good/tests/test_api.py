"""API tests against a real Postgres (DATABASE_URL; CI starts one as a service)."""
import hashlib
import hmac
import uuid

import pytest
from fastapi.testclient import TestClient

from app import main, workers


@pytest.fixture(scope="module")
def client():
    with TestClient(main.app) as test_client:
        yield test_client


def signup(client):
    email = f"{uuid.uuid4().hex[:8]}@example.com"
    client.post("/auth/register", json={"email": email, "password": "correct-horse-42", "full_name": "Ada"})
    token = client.post("/auth/login", json={"email": email, "password": "correct-horse-42"}).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def api_key(client, user):
    return {"Authorization": f"Bearer {client.post('/api-keys', json={'name': 'ci'}, headers=user).json()['key']}"}


def test_revoked_keys_stop_working(client):
    user = signup(client)
    made = client.post("/api-keys", json={"name": "ci"}, headers=user).json()
    key = {"Authorization": f"Bearer {made['key']}"}
    assert client.get("/links", headers=key).status_code == 200
    assert client.delete(f"/api-keys/{made['id']}", headers=user).status_code == 204
    assert client.get("/links", headers=key).status_code == 401


def test_organisations_do_not_see_each_other(client):
    a, b = api_key(client, signup(client)), api_key(client, signup(client))
    link = client.post("/links", json={"url": "https://example.com/private"}, headers=a).json()
    assert client.get(f"/links/{link['id']}", headers=b).status_code == 404
    assert client.delete(f"/links/{link['id']}", headers=b).status_code == 404
    assert link["id"] not in [item["id"] for item in client.get("/links", headers=b).json()["items"]]


def test_idempotency_key_makes_one_link(client):
    key = api_key(client, signup(client)) | {"Idempotency-Key": str(uuid.uuid4())}
    first = client.post("/links", json={"url": "https://example.com/once"}, headers=key)
    second = client.post("/links", json={"url": "https://example.com/once"}, headers=key)
    assert first.status_code == second.status_code == 201 and first.json()["id"] == second.json()["id"]
    assert client.post("/links", json={"url": "https://example.com/other"}, headers=key).status_code == 409


def test_signature_is_hmac_of_timestamp_and_body():
    expected = "sha256=" + hmac.new(b"secret-secret-secret", b"1700000000.{}", hashlib.sha256).hexdigest()
    assert workers.sign("secret-secret-secret", "1700000000", b"{}") == expected


def test_rate_limit_counts_down_then_answers_429(client, monkeypatch):
    from limits import parse
    from limits.aio.storage import MemoryStorage
    from limits.aio.strategies import FixedWindowRateLimiter

    from app import ratelimit

    monkeypatch.setattr(ratelimit, "LIMIT", parse("3/minute"))
    monkeypatch.setattr(ratelimit, "limiter", FixedWindowRateLimiter(MemoryStorage()))
    answers = [client.get("/links") for _ in range(4)]
    assert [a.status_code for a in answers] == [401, 401, 401, 429]
    assert [a.headers["RateLimit"].split(";")[1] for a in answers] == ["r=2", "r=1", "r=0", "r=0"]
    assert answers[0].headers["RateLimit-Policy"] == '"per-client";q=3;w=60'
    assert int(answers[-1].headers["Retry-After"]) > 0
    assert client.get("/abcdefg", follow_redirects=False).status_code == 404, "the redirect is not limited"
