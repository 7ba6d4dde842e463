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
    ("ModuleNotFoundError: No module named 'flask_cors'", d.MISSING_MODULE, "flask_cors"),
    ("Error: Cannot find module 'express'\nRequire stack:", d.MISSING_MODULE, "express"),
    ("INFO:     Uvicorn running on http://127.0.0.1:8000 (Press CTRL+C to quit)", d.LOCALHOST_ONLY, "127.0.0.1"),
    ("Listening on localhost:3000", d.LOCALHOST_ONLY, "localhost"),
    ("sqlite3.OperationalError: attempt to write a readonly database", d.READ_ONLY_WRITE, "readonly"),
    ("OSError: [Errno 30] Read-only file system: '/app/uploads'", d.READ_ONLY_WRITE, "Read-only"),
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
