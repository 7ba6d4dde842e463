"""Postgres through a small connection pool (psycopg 3); the schema is created at start-up."""
import logging
import os
import time
from contextlib import contextmanager

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

log = logging.getLogger("app.db")
DATABASE_URL = os.environ.get("DATABASE_URL", "postgresql://invoicely:invoicely@localhost:5432/invoicely")

SCHEMA = """
CREATE TABLE IF NOT EXISTS orgs (
    id BIGSERIAL PRIMARY KEY, name TEXT NOT NULL, invoice_seq BIGINT NOT NULL DEFAULT 0,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS users (
    id BIGSERIAL PRIMARY KEY, org_id BIGINT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    email TEXT NOT NULL UNIQUE, full_name TEXT NOT NULL, password_hash TEXT NOT NULL,
    role TEXT NOT NULL DEFAULT 'user', created_at TIMESTAMPTZ NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS api_keys (
    id BIGSERIAL PRIMARY KEY, org_id BIGINT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name TEXT NOT NULL, prefix TEXT NOT NULL, key_hash TEXT NOT NULL UNIQUE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(), revoked_at TIMESTAMPTZ);
CREATE TABLE IF NOT EXISTS invoices (
    id BIGSERIAL PRIMARY KEY, org_id BIGINT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    number TEXT NOT NULL, customer_name TEXT NOT NULL, customer_email TEXT,
    description TEXT NOT NULL DEFAULT '', amount_cents BIGINT NOT NULL CHECK (amount_cents > 0),
    currency TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'draft', due_date DATE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(), updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    sent_at TIMESTAMPTZ, paid_at TIMESTAMPTZ, UNIQUE (org_id, number));
CREATE INDEX IF NOT EXISTS ix_invoices_org ON invoices (org_id, id);
CREATE INDEX IF NOT EXISTS ix_invoices_org_status ON invoices (org_id, status, id);
CREATE TABLE IF NOT EXISTS webhooks (
    id BIGSERIAL PRIMARY KEY, org_id BIGINT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    url TEXT NOT NULL, secret TEXT NOT NULL, events TEXT[] NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS deliveries (
    id BIGSERIAL PRIMARY KEY, webhook_id BIGINT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event TEXT NOT NULL, payload TEXT NOT NULL, attempts INT NOT NULL DEFAULT 0,
    status TEXT NOT NULL DEFAULT 'pending', last_status INT,
    next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(), created_at TIMESTAMPTZ NOT NULL DEFAULT now());
CREATE INDEX IF NOT EXISTS ix_deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending';
CREATE TABLE IF NOT EXISTS idempotency_keys (
    org_id BIGINT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE, key TEXT NOT NULL,
    request_hash TEXT NOT NULL, status_code INT NOT NULL, response TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(), PRIMARY KEY (org_id, key));
CREATE TABLE IF NOT EXISTS usage (
    org_id BIGINT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE, day DATE NOT NULL,
    requests BIGINT NOT NULL DEFAULT 0, PRIMARY KEY (org_id, day));
"""

pool = ConnectionPool(DATABASE_URL, min_size=1, max_size=10, open=False,
                      kwargs={"row_factory": dict_row, "autocommit": False})


def init_db(attempts: int = 30) -> None:
    """Open the pool and create the schema, waiting for Postgres to accept connections."""
    for attempt in range(attempts):
        try:
            pool.open(wait=True, timeout=5)
            with pool.connection() as conn:
                conn.execute("SELECT pg_advisory_lock(42)")  # one process creates the schema at a time
                conn.execute(SCHEMA)
                conn.execute("SELECT pg_advisory_unlock(42)")
            return
        except (psycopg.OperationalError, TimeoutError) as exc:
            log.warning("database not ready", extra={"attempt": attempt + 1, "error": str(exc)})
            time.sleep(1)
    raise RuntimeError("the database never became available")


@contextmanager
def get_conn():
    """A pooled connection in a transaction: committed on success, rolled back on an error."""
    with pool.connection() as conn:
        yield conn
