"""An Express-tutorial-shaped warehouse API written in FastAPI: a form-encoded sign-up and login whose fields are
prefixed (`user_login`, `user_password`), a spec that declares no security at all, and a token read from the
`x-access-token` header (a missing one is answered 403 "No token provided")."""

from __future__ import annotations

import itertools
import secrets

from fastapi import FastAPI, Form, Header, HTTPException


def warehouse_app() -> FastAPI:
    users: dict[str, dict] = {}
    tokens: dict[str, str] = {}
    products: dict[int, dict] = {}
    ids = itertools.count(1)
    app = FastAPI(title="warehouse")

    def current(token: str | None) -> dict:
        if not token:
            raise HTTPException(403, "No token provided.")
        if token not in tokens:
            raise HTTPException(400, "Failed to authenticate token.")
        return users[tokens[token]]

    @app.post("/register", status_code=201, responses={400: {}})
    def register(user_name: str = Form(), user_login: str = Form(), user_password: str = Form()):
        if user_login in users:
            raise HTTPException(400, "User can't be created")
        users[user_login] = {"name": user_name, "login": user_login, "password": user_password}
        return {"authentication": True}

    @app.post("/login", responses={401: {}})
    def login(user_login: str = Form(), user_password: str = Form()):
        user = users.get(user_login)
        if user is None or user["password"] != user_password:
            raise HTTPException(401, "Wrong login or password")
        token = secrets.token_urlsafe(16)
        tokens[token] = user_login
        return {"authentication": True, "token": token}

    @app.get("/products", responses={400: {}, 403: {}})
    def list_products(x_access_token: str | None = Header(default=None)):
        user = current(x_access_token)
        return [p for p in products.values() if p["owner"] == user["login"]]

    @app.post("/products", status_code=201, responses={400: {}, 403: {}})
    def add_product(name: str = Form(), x_access_token: str | None = Header(default=None)):
        user = current(x_access_token)
        product = {"id": next(ids), "name": name, "owner": user["login"]}
        products[product["id"]] = product
        return product

    return app
