"""Tiny SQLite helper. Uses the standard library only, no ORM."""

import os
import sqlite3
from contextlib import contextmanager

DB_PATH = os.environ.get("BOOKSHELF_DB", "/tmp/bookshelf.db")

SCHEMA = """
CREATE TABLE IF NOT EXISTS books (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    title  TEXT    NOT NULL,
    author TEXT    NOT NULL,
    year   INTEGER NOT NULL,
    read   INTEGER NOT NULL DEFAULT 0
)
"""


def init_db() -> None:
    with get_conn() as conn:
        conn.execute(SCHEMA)


@contextmanager
def get_conn():
    conn = sqlite3.connect(DB_PATH)
    conn.row_factory = sqlite3.Row
    try:
        yield conn
        conn.commit()
    finally:
        conn.close()
