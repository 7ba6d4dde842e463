"""runtime/diagnose.py: a start failure's cause from realistic log excerpts."""

import pytest

from portfolio_grader.runtime import diagnose as d

TB = '''Traceback (most recent call last):
  File "/app/main.py", line 3, in <module>
    from app import create
  File "/app/app/__init__.py", line 10, in create
    db.init()
  File "/app/app/db.py", line 22, in init
    load()
  File "/app/app/db.py", line 30, in load
    raise ValueError("bad config")
ValueError: bad config
'''

CASES = [
    ('  File "/app/config.py", line 4\nKeyError: \'DATABASE_URL\'', d.MISSING_ENV, "DATABASE_URL"),
    ("Error: JWT_SECRET is not set", d.MISSING_ENV, "JWT_SECRET"),
    ("Missing required environment variable MONGO_URI", d.MISSING_ENV, "MONGO_URI"),
    ("pydantic_core._pydantic_core.ValidationError: 1 validation error for Settings\nsecret_key\n  Field required "
     "[type=missing, input_value={}, input_type=dict]", d.MISSING_ENV, "SECRET_KEY"),
    ("sqlalchemy.exc.OperationalError: (psycopg2.OperationalError) connection to server at \"db\" (172.18.0.2), "
     "port 5432 failed: Connection refused", d.DATABASE_NOT_READY, "Connection refused"),
    ("Error: connect ECONNREFUSED 172.18.0.2:5432", d.DATABASE_NOT_READY, "ECONNREFUSED"),
    ("FATAL:  the database system is starting up", d.DATABASE_NOT_READY, "starting up"),
    ("sqlite3.OperationalError: no such table: users", d.MISSING_TABLE, "users"),
    ('error: relation "todos" does not exist', d.MISSING_TABLE, "todos"),
    # the schema a learner must migrate, as each stack says it
    ("django.db.utils.OperationalError: no such table: catalog_book", d.MISSING_TABLE, "catalog_book"),
    ('django.db.utils.ProgrammingError: relation "catalog_book" does not exist\nLINE 1: ...', d.MISSING_TABLE,
     "catalog_book"),
    ('psycopg.errors.UndefinedTable: relation "recipes" does not exist', d.MISSING_TABLE, "recipes"),
    ("sqlalchemy.exc.OperationalError: (sqlite3.OperationalError) no such table: recipe\n[SQL: SELECT recipe.id]",
     d.MISSING_TABLE, "recipe"),
    ('SequelizeDatabaseError: relation "Books" does not exist', d.MISSING_TABLE, "Books"),
    ("Error: SQLITE_ERROR: no such table: Books", d.MISSING_TABLE, "Books"),
    ("QueryFailedError: relation \"user\" does not exist", d.MISSING_TABLE, "user"),
    ("Error: ER_NO_SUCH_TABLE: Table 'library.books' doesn't exist", d.MISSING_TABLE, "library.books"),
    ("PrismaClientKnownRequestError: Invalid `prisma.book.findMany()` invocation: The table `public.Book` does not "
     "exist in the current database. code: 'P2021'", d.MISSING_TABLE, "public.Book"),
    ("ModuleNotFoundError: No module named 'flask_cors'", d.MISSING_MODULE, "flask_cors"),
    ("Error: Cannot find module 'express'\nRequire stack:", d.MISSING_MODULE, "express"),
    ("INFO:     Uvicorn running on http://127.0.0.1:8000 (Press CTRL+C to quit)", d.LOCALHOST_ONLY, "127.0.0.1"),
    ("Listening on localhost:3000", d.LOCALHOST_ONLY, "localhost"),
    ("sqlite3.OperationalError: attempt to write a readonly database", d.READ_ONLY_WRITE, "readonly"),
    ("OSError: [Errno 30] Read-only file system: '/app/uploads'", d.READ_ONLY_WRITE, "Read-only"),
    ("sqlalchemy.exc.OperationalError: (sqlite3.OperationalError) unable to open database file", d.READ_ONLY_WRITE,
     "unable to open database file"),
    ("Error: EROFS: read-only file system, open '/srv/uploads/cover.png'", d.READ_ONLY_WRITE, "EROFS"),
    (TB, d.TRACEBACK, "db.py:22 in init -> db.py:30 in load: ValueError: bad config"),
]


@pytest.mark.parametrize("log,kind,needle", CASES)
def test_cause(log, kind, needle):
    found = d.diagnose("starting...\n" + log + "\n")
    assert found is not None and found.kind == kind
    assert needle in found.explanation
    assert found.hint and found.detail().startswith("; cause: ")


def test_traceback_keeps_last_three_frames():
    summary = d.traceback_summary(TB)
    assert summary.startswith("__init__.py:10 in create") and "main.py" not in summary


def test_generic_fallback():
    assert d.diagnose("INFO: starting\nINFO: Uvicorn running on http://0.0.0.0:8000\n") is None
    assert d.diagnose("") is None


def test_missing_table_names_the_table_and_its_line():
    log = ("INFO: 172.18.0.1 - GET /books 500\nERROR in app: Exception on /books [GET]\n"
           'psycopg2.errors.UndefinedTable: relation "books" does not exist\nLINE 1: SELECT * FROM books\n')
    assert d.missing_table(log) == ("books", 'psycopg2.errors.UndefinedTable: relation "books" does not exist')
    # a table that exists, and a database that is not up, are no missing schema
    assert d.missing_table("GET /books 200\nsqlite3.OperationalError: database is locked") is None
    assert d.missing_table("Error: connect ECONNREFUSED 172.18.0.2:5432") is None


def test_a_missing_table_is_named_before_the_operational_error_around_it():
    found = d.diagnose("sqlalchemy.exc.OperationalError: (sqlite3.OperationalError) no such table: notes")
    assert found.kind == d.MISSING_TABLE and "notes" in found.explanation and "migrations" in found.hint
