import json
from contextlib import asynccontextmanager

from fastapi import FastAPI, HTTPException, Path, Request, Response, status
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from .db import get_conn, init_db
from .models import Book, BookCreate, BookPatch, BookUpdate, ErrorModel

# SQLite INTEGER is 64-bit, so keep ids inside that range (bigger ids can't exist anyway)
MAX_ID = 2**63 - 1
BookId = Path(ge=1, le=MAX_ID, description="The id returned when the book was created")

NOT_FOUND = {404: {"model": ErrorModel, "description": "Book not found"}}
# FastAPI answers 400 (not 422) when the body isn't even valid UTF-8
BAD_BODY = {400: {"model": ErrorModel, "description": "Request body could not be parsed"}}


@asynccontextmanager
async def lifespan(app: FastAPI):
    init_db()
    yield


app = FastAPI(
    title="Bookshelf API",
    version="1.0.0",
    description="Keep track of the books you own and the ones you have read.",
    lifespan=lifespan,
)


@app.exception_handler(StarletteHTTPException)
async def allow_header_on_405(request: Request, exc: StarletteHTTPException):
    # by default the Allow header only lists the methods of the first matching route
    # (e.g. "Allow: GET" for /books), so list every method this path supports
    if exc.status_code == 405:
        methods = set()
        for route in app.routes:
            if isinstance(route, APIRoute) and route.path_regex.match(request.url.path):
                methods |= route.methods
        exc.headers = {"Allow": ", ".join(sorted(methods))}
    return await http_exception_handler(request, exc)


@app.exception_handler(RequestValidationError)
async def validation_error(request: Request, exc: RequestValidationError):
    # same 422 body as FastAPI's default, minus the "input" echo: echoing the input
    # crashed with a 500 on NaN or broken unicode in the request (found by fuzzing)
    errors = [{"type": e["type"], "loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()]
    # json.dumps escapes non-ASCII, so even odd keys in "loc" can always be encoded
    return Response(json.dumps({"detail": errors}), status_code=422, media_type="application/json")


def row_to_book(row) -> Book:
    return Book(id=row["id"], title=row["title"], author=row["author"], year=row["year"], read=bool(row["read"]))


def fetch_book(conn, book_id: int) -> Book:
    row = conn.execute("SELECT * FROM books WHERE id = ?", (book_id,)).fetchone()
    if row is None:
        raise HTTPException(status_code=404, detail=f"Book {book_id} not found")
    return row_to_book(row)


@app.get("/health", tags=["meta"])
def health() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/books", response_model=list[Book], tags=["books"])
def list_books():
    with get_conn() as conn:
        rows = conn.execute("SELECT * FROM books ORDER BY id").fetchall()
    return [row_to_book(r) for r in rows]


@app.post("/books", response_model=Book, status_code=status.HTTP_201_CREATED, responses=BAD_BODY, tags=["books"])
def create_book(book: BookCreate):
    with get_conn() as conn:
        cur = conn.execute(
            "INSERT INTO books (title, author, year, read) VALUES (?, ?, ?, ?)",
            (book.title, book.author, book.year, int(book.read)),
        )
        return fetch_book(conn, cur.lastrowid)


@app.get("/books/{book_id}", response_model=Book, responses=NOT_FOUND, tags=["books"])
def get_book(book_id: int = BookId):
    with get_conn() as conn:
        return fetch_book(conn, book_id)


@app.put("/books/{book_id}", response_model=Book, responses=NOT_FOUND | BAD_BODY, tags=["books"])
def replace_book(book: BookUpdate, book_id: int = BookId):
    with get_conn() as conn:
        fetch_book(conn, book_id)
        conn.execute(
            "UPDATE books SET title = ?, author = ?, year = ?, read = ? WHERE id = ?",
            (book.title, book.author, book.year, int(book.read), book_id),
        )
        return fetch_book(conn, book_id)


@app.patch("/books/{book_id}", response_model=Book, responses=NOT_FOUND | BAD_BODY, tags=["books"])
def update_book(changes: BookPatch, book_id: int = BookId):
    with get_conn() as conn:
        current = fetch_book(conn, book_id)
        # fields sent as null are ignored, same as fields that are left out
        data = current.model_dump() | {k: v for k, v in changes.model_dump(exclude_unset=True).items() if v is not None}
        conn.execute(
            "UPDATE books SET title = ?, author = ?, year = ?, read = ? WHERE id = ?",
            (data["title"], data["author"], data["year"], int(data["read"]), book_id),
        )
        return fetch_book(conn, book_id)


@app.delete(
    "/books/{book_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=NOT_FOUND,
    tags=["books"],
)
def delete_book(book_id: int = BookId):
    with get_conn() as conn:
        fetch_book(conn, book_id)
        conn.execute("DELETE FROM books WHERE id = ?", (book_id,))
    return Response(status_code=status.HTTP_204_NO_CONTENT)
