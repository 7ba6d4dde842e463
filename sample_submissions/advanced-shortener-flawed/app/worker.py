"""The background job: moves click events from the Redis queue into the per-link counters."""
import json
import logging
import time

import redis

from . import cache

log = logging.getLogger("worker")
# no socket timeout here: BRPOP blocks on purpose
queue = redis.Redis.from_url(cache.REDIS_URL, decode_responses=True)


def run() -> None:
    logging.basicConfig(level=logging.INFO)
    print("worker started, waiting for clicks...")
    while True:
        try:
            item = queue.brpop(cache.CLICK_QUEUE, timeout=5)
            if item is None:
                continue
            event = json.loads(item[1])
            pipe = queue.pipeline()
            pipe.hincrby(cache.CLICKS, event["link_id"], 1)
            pipe.hset(cache.LAST_CLICK, event["link_id"], event["at"])
            pipe.execute()
        except redis.RedisError as exc:  # Redis restarting: wait and carry on
            log.warning("redis unavailable", extra={"error": str(exc)})
            time.sleep(1)
        except (ValueError, KeyError) as exc:
            log.error("bad click event dropped", extra={"error": str(exc)})


if __name__ == "__main__":
    run()
