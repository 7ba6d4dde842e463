import time

import jwt

from app import security


def test_register_never_returns_password_and_ignores_role(client):
    r = client.post("/auth/register", json={"email": "ann@example.com", "password": "s3cret-pass",
                                            "full_name": "Ann", "role": "admin", "is_admin": True})
    assert r.status_code == 201
    assert r.json()["role"] == "user"
    assert "password" not in r.text and "hash" not in r.text


def test_weak_passwords_are_rejected(client):
    for weak in ["123456", "password", "12345678", "abcdefgh"]:
        r = client.post("/auth/register", json={"email": "w@example.com", "password": weak, "full_name": "W"})
        assert r.status_code == 422, weak


def test_form_login(client, make_user):
    make_user("f@example.com")
    r = client.post("/auth/token", data={"username": "f@example.com", "password": "s3cret-pass"})
    assert r.status_code == 200 and r.json()["token_type"] == "bearer"


def test_task_crud_and_ownership(client, make_user):
    alice, bob = make_user("alice@example.com"), make_user("bob@example.com")
    task = client.post("/tasks", json={"title": "Write tests"}, headers=alice).json()
    url = f"/tasks/{task['id']}"
    assert client.get(url, headers=alice).status_code == 200
    for method, body in [("GET", None), ("PUT", {"title": "x"}), ("PATCH", {"done": True}), ("DELETE", None)]:
        assert client.request(method, url, json=body, headers=bob).status_code == 404
    assert client.get(url, headers=alice).json()["title"] == "Write tests"
    assert client.get("/tasks", headers=bob).json()["total"] == 0
    assert client.patch(url, json={"done": True}, headers=alice).json()["done"] is True
    assert client.delete(url, headers=alice).status_code == 204
    assert client.get(url, headers=alice).status_code == 404


def test_pagination(client, make_user):
    alice = make_user("p@example.com")
    for i in range(5):
        client.post("/tasks", json={"title": f"t{i}"}, headers=alice)
    page = client.get("/tasks?limit=2&offset=2", headers=alice).json()
    assert [t["title"] for t in page["items"]] == ["t2", "t3"] and page["total"] == 5
    assert client.get("/tasks?limit=1000", headers=alice).status_code == 422


def test_bad_tokens_are_refused(client, make_user):
    make_user("t@example.com")
    now = int(time.time())
    tokens = [
        jwt.encode({"sub": "1", "iat": now, "exp": now + 60}, None, algorithm="none"),
        jwt.encode({"sub": "1", "iat": now, "exp": now + 60}, "secret", algorithm="HS256"),
        jwt.encode({"sub": "1", "iat": now - 120, "exp": now - 60}, security.SECRET_KEY, algorithm="HS256"),
        jwt.encode({"sub": "1", "iat": now}, security.SECRET_KEY, algorithm="HS256"),
    ]
    for token in tokens:
        assert client.get("/users/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_admin_only(client, make_user):
    user = make_user("u@example.com")
    assert client.get("/admin/users", headers=user).status_code == 403
    tok = client.post("/auth/login", json={"email": "admin@example.com", "password": "admin-pass-1"}).json()
    r = client.get("/admin/users", headers={"Authorization": f"Bearer {tok['access_token']}"})
    assert r.status_code == 200 and "password" not in r.text


def test_login_rate_limit(client, make_user):
    make_user("r@example.com")
    bad = {"email": "r@example.com", "password": "wrong-pass-1"}
    assert [client.post("/auth/login", json=bad).status_code for _ in range(5)] == [401] * 5
    r = client.post("/auth/login", json={"email": "r@example.com", "password": "s3cret-pass"})
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
    unknown = client.post("/auth/login", json={"email": "nobody@example.com", "password": "x"})
    assert unknown.json() == {"detail": "Incorrect email or password"}
