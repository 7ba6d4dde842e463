"""Webhook delivery, in a thread of the API process.

Events are written to the `deliveries` table (an outbox) in the same transaction as the invoice change;
this worker sends what is due, signs each delivery, and retries failures with exponential backoff
(1, 2, 4, 8, 16 s, then gives up).
"""
import hashlib
import hmac
import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from .db import get_conn

log = logging.getLogger("app.workers")
MAX_ATTEMPTS = 6
_stop = threading.Event()


def enqueue_event(conn, org_id: int, event: str, data: dict) -> None:
    """Write one delivery per subscribed webhook, in the caller's transaction (the outbox pattern)."""
    payload = json.dumps({"event": event, "data": data}, default=str)
    conn.execute("INSERT INTO deliveries (webhook_id, event, payload) SELECT id, %s, %s FROM webhooks "
                 "WHERE org_id = %s AND %s = ANY (events)", (event, payload, org_id, event))


def sign(secret: str, timestamp: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def _send(client: httpx.Client, delivery: dict) -> None:
    body = delivery["payload"].encode()
    timestamp = str(int(time.time()))
    headers = {"Content-Type": "application/json", "User-Agent": "invoicely-webhooks/1.0",
               "X-Webhook-Id": str(delivery["id"]), "X-Webhook-Event": delivery["event"],
               "X-Webhook-Timestamp": timestamp, "X-Webhook-Signature": sign(delivery["secret"], timestamp, body)}
    status = None
    try:
        status = client.post(delivery["url"], content=body, headers=headers).status_code
    except httpx.HTTPError as exc:
        log.info("delivery failed", extra={"delivery_id": delivery["id"], "error": type(exc).__name__})
    attempts = delivery["attempts"] + 1
    done = status is not None and 200 <= status < 300
    state = "delivered" if done else ("failed" if attempts >= MAX_ATTEMPTS else "pending")
    with get_conn() as conn:
        conn.execute("UPDATE deliveries SET attempts = %s, status = %s, last_status = %s, "
                     "next_attempt_at = now() + make_interval(secs => %s) WHERE id = %s",
                     (attempts, state, status, 2 ** (attempts - 1), delivery["id"]))
    log.info("delivery attempt", extra={"delivery_id": delivery["id"], "attempt": attempts, "status": status,
                                        "state": state})


PER_ORG = 2  # deliveries of one organisation in flight at a time: a dead endpoint never starves the others


def _deliver() -> None:
    in_flight: dict[int, int] = {}  # delivery id -> org id
    lock = threading.Lock()
    with httpx.Client(timeout=httpx.Timeout(3.0, connect=2.0), follow_redirects=False) as client, \
            ThreadPoolExecutor(16) as senders:
        def run(delivery: dict) -> None:
            try:
                _send(client, delivery)
            finally:
                with lock:
                    in_flight.pop(delivery["id"], None)

        while not _stop.is_set():
            try:
                with get_conn() as conn:  # the oldest due deliveries, at most PER_ORG per organisation
                    due = conn.execute(
                        "SELECT * FROM (SELECT d.id, d.event, d.payload, d.attempts, d.next_attempt_at, w.url, "
                        "w.secret, w.org_id, row_number() OVER (PARTITION BY w.org_id ORDER BY d.next_attempt_at) "
                        "AS n FROM deliveries d JOIN webhooks w ON w.id = d.webhook_id WHERE d.status = 'pending' "
                        "AND d.next_attempt_at <= now()) due WHERE n <= %s ORDER BY next_attempt_at LIMIT 100",
                        (PER_ORG,)).fetchall()
                for delivery in due:
                    with lock:
                        busy = sum(1 for org in in_flight.values() if org == delivery["org_id"])
                        if delivery["id"] in in_flight or busy >= PER_ORG:
                            continue
                        in_flight[delivery["id"]] = delivery["org_id"]
                    senders.submit(run, delivery)  # one slow receiver never holds up the others
            except Exception:
                log.exception("delivery loop error")
            _stop.wait(0.25)


def start() -> None:
    threading.Thread(target=_deliver, name="deliver", daemon=True).start()


def running() -> bool:
    return not _stop.is_set()


def stop() -> None:
    _stop.set()
