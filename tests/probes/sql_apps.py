"""A tiny book lookup on a real SQLite database, addressed by title and searched by a query string.

`injectable`: the title and the search are pasted into the SQL (the flaw); otherwise they are bound parameters.
`leak_errors`: a database error is answered with its message (error-based evidence)."""

from __future__ import annotations

import sqlite3

from fastapi import FastAPI, HTTPException
from fastapi.responses import JSONResponse


def books_sql_app(injectable: bool = False, leak_errors: bool = False) -> FastAPI:
    db = sqlite3.connect(":memory:", check_same_thread=False)
    db.execute("CREATE TABLE books (title TEXT, author TEXT)")
    db.executemany("INSERT INTO books VALUES (?, ?)", [("Dune", "Herbert"), ("Emma", "Austen")])
    app = FastAPI(title="books-sql")

    def query(sql: str, args: tuple = ()) -> list[dict]:
        try:
            return [{"title": t, "author": a} for t, a in db.execute(sql, args).fetchall()]
        except sqlite3.Error as exc:
            if leak_errors:
                raise HTTPException(500, f"sqlite3.OperationalError: {exc}") from exc
            raise HTTPException(500, "internal error") from exc

    @app.get("/books/{title}", responses={404: {}})
    def by_title(title: str):
        rows = (query(f"SELECT title, author FROM books WHERE title = '{title}'") if injectable
                else query("SELECT title, author FROM books WHERE title = ?", (title,)))
        if not rows:
            return JSONResponse({"detail": "not found"}, status_code=404)
        return rows[0]

    @app.get("/books")
    def search(q: str = ""):
        if injectable:
            return query(f"SELECT title, author FROM books WHERE author LIKE '%{q}%'")
        return query("SELECT title, author FROM books WHERE author LIKE ?", (f"%{q}%",))

    return app
