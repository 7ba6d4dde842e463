"""Redis: the code -> URL cache in front of SQLite, the click queue, and the click counters."""
import json
import os
import time

import redis

REDIS_URL = os.environ.get("REDIS_URL", "redis://localhost:6379/0")
CLICK_QUEUE = "queue:clicks"
CLICKS = "stats:clicks"  # hash: link id -> clicks
LAST_CLICK = "stats:last_click"  # hash: link id -> unix time
CACHE_TTL = 3600

client = redis.Redis.from_url(REDIS_URL, socket_timeout=1, socket_connect_timeout=1, decode_responses=True)


def cached_link(code: str) -> dict | None:
    value = client.get(f"link:{code}")
    return json.loads(value) if value else None


def cache_link(code: str, link_id: int, url: str) -> None:
    client.set(f"link:{code}", json.dumps({"id": link_id, "url": url}), ex=CACHE_TTL)


def uncache(code: str) -> None:
    client.delete(f"link:{code}")


def forget_link(code: str, link_id: int) -> None:
    uncache(code)
    client.hdel(CLICKS, link_id)
    client.hdel(LAST_CLICK, link_id)


def record_click(link_id: int) -> None:
    """O(1) on the redirect path: the worker does the counting."""
    client.lpush(CLICK_QUEUE, json.dumps({"link_id": link_id, "at": time.time()}))


def clicks(link_id: int) -> tuple[int, float | None]:
    count, last = client.hget(CLICKS, link_id), client.hget(LAST_CLICK, link_id)
    return int(count or 0), float(last) if last else None
