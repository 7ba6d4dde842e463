"""A user roster addressed by username, as connexion/Flask APIs write it: `DELETE /users/{username}` is admin-only
only by what its summary says ("Deletes user by username (Only Admins)"): no admin tag, no /admin path, no
operationId, and the profile (`GET /me`) shows no id. `open_delete` lets any logged-in user delete any user;
`crash_after_signup`: the sign-up makes the account, then answers 500 (a Django view reading the user back from
another model)."""

from __future__ import annotations

import secrets

from fastapi import Depends, FastAPI, HTTPException, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field


class Signup(BaseModel):
    username: str = Field(min_length=3, max_length=40)
    password: str = Field(min_length=8)
    email: str = Field(max_length=80)


class Login(BaseModel):
    username: str
    password: str


def roster_app(open_delete: bool = False, crash_after_signup: bool = False, simplejwt_login: bool = False) -> FastAPI:
    """`simplejwt_login`: the login answers {"refresh": ..., "access": ...} (djangorestframework-simplejwt's shape,
    two JWT-shaped strings under names no token list has); only the access one opens the API."""
    users: dict[str, dict] = {"admin": {"username": "admin", "password": "Admin-Pass-1", "email": "a@example.com",
                                        "admin": True}}
    tokens: dict[str, str] = {}
    app = FastAPI(title="roster")
    bearer = HTTPBearer(auto_error=False)

    def current(creds: HTTPAuthorizationCredentials | None = Depends(bearer)) -> dict:
        user = users.get(tokens.get(creds.credentials, "")) if creds else None
        if user is None:
            raise HTTPException(401, "Invalid token. Please log in again.")
        return user

    @app.post("/users/v1/register", status_code=201, responses={400: {}})
    def register(body: Signup):
        if body.username in users:
            raise HTTPException(400, "User already exists")
        users[body.username] = {**body.model_dump(), "admin": False}
        if crash_after_signup:
            raise HTTPException(500, "DoesNotExist: CustomUser matching query does not exist.")
        return {"message": "Successfully registered"}

    @app.post("/users/v1/login", responses={401: {}})
    def login(body: Login):
        user = users.get(body.username)
        if user is None or user["password"] != body.password:
            raise HTTPException(401, "Username or password is not correct")
        value = secrets.token_urlsafe(16)
        if simplejwt_login:
            value = f"eyJhbGciOiJIUzI1NiJ9.{secrets.token_urlsafe(12)}.{secrets.token_urlsafe(12)}"
            tokens[value] = body.username
            return {"refresh": f"eyJhbGciOiJIUzI1NiJ9.{secrets.token_urlsafe(12)}.x", "access": value}
        tokens[value] = body.username
        return {"auth_token": value}

    @app.get("/me", responses={401: {}})
    def me(user: dict = Depends(current)):
        return {"username": user["username"], "email": user["email"], "admin": user["admin"]}

    @app.delete("/users/v1/{username}", summary="Deletes user by username (Only Admins)", status_code=204,
                responses={401: {}, 404: {}})
    def delete(username: str, user: dict = Depends(current)):
        if not (user["admin"] or open_delete):
            raise HTTPException(401, "Only Admins may delete users!")
        if users.pop(username, None) is None:
            raise HTTPException(404, "User not found")
        return Response(status_code=204)

    return app
