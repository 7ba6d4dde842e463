import json
from contextlib import asynccontextmanager

from fastapi import FastAPI, HTTPException, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError

from . import database
from .schemas import Message, NoteIn, NoteOut


@asynccontextmanager
async def lifespan(app: FastAPI):
    database.wait_for_db()
    database.create_tables()
    yield


app = FastAPI(title="Notes API", version="0.2.0", lifespan=lifespan)

# ids are SERIAL (32-bit) in Postgres, bigger numbers made psycopg raise an error
NoteId = Path(ge=1, le=2_147_483_647)
RESPONSES_404 = {404: {"model": Message, "description": "Note not found"}}
RESPONSES_400 = {400: {"model": Message, "description": "Body is not valid JSON"}}


@app.exception_handler(RequestValidationError)
async def validation_exception_handler(request: Request, exc: RequestValidationError):
    # don't send the "input" back: it broke JSON encoding for inputs like NaN
    detail = [{"loc": list(err["loc"]), "msg": err["msg"], "type": err["type"]} for err in exc.errors()]
    return Response(json.dumps({"detail": detail}), status_code=422, media_type="application/json")


def get_note_or_404(conn, note_id: int) -> dict:
    note = conn.execute("SELECT * FROM notes WHERE id = %s", (note_id,)).fetchone()
    if note is None:
        raise HTTPException(status_code=404, detail="Note not found")
    return note


@app.get("/")
def root():
    return {"message": "Notes API, see /docs"}


@app.get("/notes", response_model=list[NoteOut])
def list_notes(limit: int = Query(20, ge=1, le=100), offset: int = Query(0, ge=0, le=2**63 - 1)):
    # id breaks ties so pages never repeat or skip a note
    with database.connect() as conn:
        return conn.execute("SELECT * FROM notes ORDER BY pinned DESC, id LIMIT %s OFFSET %s",
                            (limit, offset)).fetchall()


@app.post("/notes", response_model=NoteOut, status_code=201, responses=RESPONSES_400)
def create_note(note: NoteIn):
    with database.connect() as conn:
        return conn.execute(
            "INSERT INTO notes (title, content, pinned) VALUES (%s, %s, %s) RETURNING *",
            (note.title, note.content, note.pinned),
        ).fetchone()


@app.get("/notes/{note_id}", response_model=NoteOut, responses=RESPONSES_404)
def get_note(note_id: int = NoteId):
    with database.connect() as conn:
        return get_note_or_404(conn, note_id)


@app.put("/notes/{note_id}", response_model=NoteOut, responses=RESPONSES_404 | RESPONSES_400)
def update_note(note: NoteIn, note_id: int = NoteId):
    with database.connect() as conn:
        get_note_or_404(conn, note_id)
        return conn.execute(
            "UPDATE notes SET title = %s, content = %s, pinned = %s WHERE id = %s RETURNING *",
            (note.title, note.content, note.pinned, note_id),
        ).fetchone()


@app.delete("/notes/{note_id}", status_code=204, response_class=Response, responses=RESPONSES_404)
def delete_note(note_id: int = NoteId):
    with database.connect() as conn:
        get_note_or_404(conn, note_id)
        conn.execute("DELETE FROM notes WHERE id = %s", (note_id,))
    return Response(status_code=204)
