import pytest
from fastapi.testclient import TestClient


@pytest.fixture
def client(tmp_path, monkeypatch):
    monkeypatch.setenv("ADMIN_EMAIL", "admin@example.com")
    monkeypatch.setenv("ADMIN_PASSWORD", "admin-pass-1")
    from app import db

    monkeypatch.setattr(db, "DB_PATH", str(tmp_path / "test.db"))
    from app.main import app

    with TestClient(app) as c:
        yield c


@pytest.fixture
def make_user(client):
    def make(email: str, password: str = "s3cret-pass") -> dict:
        r = client.post("/auth/register", json={"email": email, "password": password, "full_name": email})
        assert r.status_code == 201, r.text
        token = client.post("/auth/login", json={"email": email, "password": password}).json()["access_token"]
        return {"Authorization": f"Bearer {token}"}

    return make
