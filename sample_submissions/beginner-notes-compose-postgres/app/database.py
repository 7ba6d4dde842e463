import logging
import os
import time

import psycopg
from psycopg.rows import dict_row

log = logging.getLogger("uvicorn.error")

DATABASE_URL = os.getenv("DATABASE_URL", "postgresql://notes:notes@localhost:5432/notes")

CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS notes (
    id         SERIAL PRIMARY KEY,
    title      VARCHAR(200) NOT NULL,
    content    TEXT NOT NULL DEFAULT '',
    pinned     BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
)
"""


def connect() -> psycopg.Connection:
    return psycopg.connect(DATABASE_URL, row_factory=dict_row)


def wait_for_db(timeout: float = 30) -> None:
    """Postgres takes a few seconds to start in docker compose, so retry for a while."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with connect() as conn:
                conn.execute("SELECT 1")
            return
        except psycopg.OperationalError as e:
            if time.monotonic() > deadline:
                raise
            log.info("database not ready yet (%s), retrying...", str(e).strip())
            time.sleep(1)


def create_tables() -> None:
    with connect() as conn:
        conn.execute(CREATE_TABLE)
