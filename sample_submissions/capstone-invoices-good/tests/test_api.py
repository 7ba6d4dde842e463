"""API tests against a real Postgres (DATABASE_URL; CI starts one as a service)."""
import hashlib
import hmac
import uuid

import pytest
from fastapi.testclient import TestClient

from app import main, workers

INVOICE = {"customer_name": "Acme Ltd", "amount_cents": 125000, "currency": "EUR"}


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
    assert client.get("/invoices", headers=key).status_code == 200
    assert client.delete(f"/api-keys/{made['id']}", headers=user).status_code == 204
    assert client.get("/invoices", headers=key).status_code == 401


def test_organisations_do_not_see_each_other(client):
    a, b = api_key(client, signup(client)), api_key(client, signup(client))
    invoice = client.post("/invoices", json=INVOICE, headers=a).json()
    assert client.get(f"/invoices/{invoice['id']}", headers=b).status_code == 404
    assert client.patch(f"/invoices/{invoice['id']}", json={"amount_cents": 1}, headers=b).status_code == 404
    assert client.delete(f"/invoices/{invoice['id']}", headers=b).status_code == 404
    assert invoice["id"] not in [item["id"] for item in client.get("/invoices", headers=b).json()["items"]]
    assert client.get(f"/invoices/{invoice['id']}", headers=a).json()["amount_cents"] == 125000


def test_invoice_numbers_count_per_organisation(client):
    a, b = api_key(client, signup(client)), api_key(client, signup(client))
    numbers = [client.post("/invoices", json=INVOICE, headers=h).json()["number"] for h in (a, a, b)]
    assert numbers == ["INV-000001", "INV-000002", "INV-000001"]


def test_paid_invoices_are_final(client):
    key = api_key(client, signup(client))
    invoice = client.post("/invoices", json=INVOICE, headers=key).json()
    paid = client.patch(f"/invoices/{invoice['id']}", json={"status": "paid"}, headers=key).json()
    assert paid["status"] == "paid" and paid["paid_at"] and paid["sent_at"]
    assert client.patch(f"/invoices/{invoice['id']}", json={"amount_cents": 1}, headers=key).status_code == 409
    assert client.delete(f"/invoices/{invoice['id']}", headers=key).status_code == 409


def test_filters(client):
    key = api_key(client, signup(client))
    client.post("/invoices", json=INVOICE, headers=key)
    usd = client.post("/invoices", json=INVOICE | {"currency": "USD"}, headers=key).json()
    client.patch(f"/invoices/{usd['id']}", json={"status": "sent"}, headers=key)
    assert [i["id"] for i in client.get("/invoices?currency=USD", headers=key).json()["items"]] == [usd["id"]]
    assert [i["id"] for i in client.get("/invoices?status=sent", headers=key).json()["items"]] == [usd["id"]]


def test_amounts_are_whole_cents(client):
    key = api_key(client, signup(client))
    for amount in (12.5, "100", True, 0, -5):
        assert client.post("/invoices", json=INVOICE | {"amount_cents": amount}, headers=key).status_code == 422
    made = client.post("/invoices", json=INVOICE | {"amount_cents": 1250.0}, headers=key)
    assert made.status_code == 201 and made.json()["amount_cents"] == 1250, "1250.0 is the JSON number 1250"


def test_idempotency_key_makes_one_invoice(client):
    key = api_key(client, signup(client)) | {"Idempotency-Key": str(uuid.uuid4())}
    first = client.post("/invoices", json=INVOICE, headers=key)
    second = client.post("/invoices", json=INVOICE, headers=key)
    assert first.status_code == second.status_code == 201 and first.json()["id"] == second.json()["id"]
    assert client.post("/invoices", json=INVOICE | {"amount_cents": 1}, headers=key).status_code == 409
    assert client.get("/invoices", headers={"Authorization": key["Authorization"]}).json()["total"] == 1


def test_paying_an_invoice_queues_a_signed_event(client):
    key = api_key(client, signup(client))
    hook = client.post("/webhooks", json={"url": "https://example.com/hooks", "events": ["invoice.paid"]},
                       headers=key).json()
    invoice = client.post("/invoices", json=INVOICE, headers=key).json()
    client.patch(f"/invoices/{invoice['id']}", json={"status": "paid"}, headers=key)
    with main.get_conn() as conn:
        events = [r["event"] for r in conn.execute("SELECT event FROM deliveries WHERE webhook_id = %s",
                                                    (hook["id"],)).fetchall()]
    assert events == ["invoice.paid"], "only the subscribed event is queued"


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
    answers = [client.get("/invoices") for _ in range(4)]
    assert [a.status_code for a in answers] == [401, 401, 401, 429]
    assert [a.headers["RateLimit"].split(";")[1] for a in answers] == ["r=2", "r=1", "r=0", "r=0"]
    assert answers[0].headers["RateLimit-Policy"] == '"per-client";q=3;w=60'
    assert int(answers[-1].headers["Retry-After"]) > 0
    assert client.get("/health").status_code == 200, "health checks are not limited"
