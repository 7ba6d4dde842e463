"""API tests against a real Postgres (DATABASE_URL; CI starts one as a service)."""
import uuid

import pytest
from fastapi.testclient import TestClient

from app import main


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


def test_idempotency_key_makes_one_link(client):
    key = api_key(client, signup(client)) | {"Idempotency-Key": str(uuid.uuid4())}
    first = client.post("/links", json={"url": "https://example.com/once"}, headers=key)
    second = client.post("/links", json={"url": "https://example.com/once"}, headers=key)
    assert first.status_code == second.status_code == 201 and first.json()["id"] == second.json()["id"]
    assert client.post("/links", json={"url": "https://example.com/other"}, headers=key).status_code == 409
