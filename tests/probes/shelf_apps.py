"""A book-shelf API of the shape vulnerable-by-design Flask/connexion APIs have: books addressed by their title
(a natural key the client chooses), a create that answers only a message, a login that refuses with
`200 {"status": "fail"}`, and a documented `GET /createdb` that drops every user and book and seeds new ones.

`calls` counts the requests each route got, so a test can tell the grader never called the reset."""

from __future__ import annotations

import secrets
from collections import Counter

from fastapi import Depends, FastAPI, HTTPException
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field


class Account(BaseModel):
    username: str = Field(min_length=3, max_length=40)
    password: str = Field(min_length=8)
    email: str


class Login(BaseModel):
    username: str
    password: str


class Profile(BaseModel):
    username: str
    email: str | None = None


class NewPassword(BaseModel):
    password: str = Field(min_length=8)


class BookIn(BaseModel):
    book_title: str = Field(examples=["book99"], max_length=60)
    secret: str = Field(examples=["pass1secret"])


def shelf_app(bola_read: bool = False, open_accounts: bool = False, closed_after_reset: bool = False) -> FastAPI:
    """`bola_read`: any logged-in user reads any book and its secret (the flaw); `open_accounts`: any logged-in
    user changes any user's password and deletes any account (the flaw); `closed_after_reset`: after a reset,
    registration is closed. `app.state.tokens` lets a test expire every token at once."""
    users: dict[str, dict] = {}
    books: dict[str, dict] = {}
    tokens: dict[str, str] = {}
    calls: Counter[str] = Counter()
    app = FastAPI(title="shelf")
    app.state.calls = calls
    app.state.tokens = tokens
    resets: list[int] = []
    bearer = HTTPBearer(auto_error=False)

    def seed() -> None:
        users.clear(), books.clear(), tokens.clear()
        users["name1"] = {"username": "name1", "password": "pass1-seeded", "email": "mail1@mail.com"}
        books["bookTitle1"] = {"book_title": "bookTitle1", "secret": "secret for bookTitle1", "owner": "name1"}

    seed()

    def current(creds: HTTPAuthorizationCredentials | None = Depends(bearer)) -> dict:
        user = users.get(tokens.get(creds.credentials, "")) if creds else None
        if user is None:
            raise HTTPException(401, "Invalid token")
        return user

    @app.get("/createdb", summary="Creates and populates the database with dummy data")
    def createdb():
        calls["GET /createdb"] += 1
        resets.append(1)
        seed()
        return {"message": "Database populated."}

    @app.post("/users/register", responses={400: {}})
    def register(body: Account):
        if closed_after_reset and resets:
            return JSONResponse({"status": "fail", "message": "Registration is closed."}, status_code=403)
        if body.username in users:
            return JSONResponse({"status": "fail", "message": "User already exists."}, status_code=400)
        users[body.username] = body.model_dump()
        return {"status": "success", "message": "Successfully registered."}

    @app.post("/users/login")
    def login(body: Login):
        user = users.get(body.username)
        if user is None or user["password"] != body.password:
            return {"status": "fail", "message": "Username or password is incorrect."}
        token = secrets.token_urlsafe(16)
        tokens[token] = body.username
        return {"status": "success", "auth_token": token}

    @app.get("/me", responses={401: {}})
    def me(user: dict = Depends(current)):
        return {"username": user["username"], "email": user["email"]}

    def same_user(username: str, user: dict) -> None:
        if username not in users:
            raise HTTPException(404, "User not found")
        if username != user["username"] and not open_accounts:
            raise HTTPException(403, "Only the account's owner may do that")

    @app.put("/profile", responses={401: {}, 403: {}, 404: {}})
    def update_profile(body: Profile, user: dict = Depends(current)):
        same_user(body.username, user)  # the body names whose profile: checked like the path
        if body.email:
            users[body.username]["email"] = body.email
        return {"username": body.username, "email": users[body.username]["email"]}

    @app.put("/users/{username}/password", status_code=204, responses={401: {}, 403: {}, 404: {}})
    def change_password(username: str, body: NewPassword, user: dict = Depends(current)):
        same_user(username, user)
        users[username]["password"] = body.password

    @app.delete("/users/{username}", status_code=204, responses={401: {}, 403: {}, 404: {}})
    def delete_user(username: str, user: dict = Depends(current)):
        same_user(username, user)
        del users[username]

    @app.get("/books", responses={401: {}})
    def list_books(user: dict = Depends(current)):
        return [{"book_title": b["book_title"]} for b in books.values() if b["owner"] == user["username"]]

    @app.post("/books", responses={400: {}, 401: {}})
    def add_book(body: BookIn, user: dict = Depends(current)):
        if body.book_title in books:
            return JSONResponse({"status": "fail", "message": "Book Already exists!"}, status_code=400)
        books[body.book_title] = {**body.model_dump(), "owner": user["username"]}
        return {"status": "success", "message": "Book has been added."}

    @app.get("/books/{book_title}", responses={401: {}, 404: {}})
    def get_book(book_title: str, user: dict = Depends(current)):
        book = books.get(book_title)
        if book is None or (book["owner"] != user["username"] and not bola_read):
            raise HTTPException(404, "Book not found")
        return {"book_title": book["book_title"], "secret": book["secret"], "owner": book["owner"]}

    return app
