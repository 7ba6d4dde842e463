"""Per-client rate limit for the API: a fixed window counted in Redis by the `limits` library.

Every counted answer carries RateLimit-Limit / -Remaining / -Reset and RateLimit-Policy, so a client can pace
itself; past the limit the answer is 429 with Retry-After. The redirect, /health and /metrics are exempt: the
redirect is the hot, cached, public read path (scrapers of it are for the CDN / reverse proxy to stop), and
the probes must always get through. If Redis is down the API stays up, unlimited, and logs a warning.
"""
import logging
import os
import time

from limits import parse
from limits.aio.storage import RedisStorage
from limits.aio.strategies import FixedWindowRateLimiter
from redis.exceptions import RedisError
from starlette.datastructures import MutableHeaders
from starlette.responses import JSONResponse
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

from .cache import REDIS_URL

# Generous on purpose: a busy dashboard or a CI job stays well under it; a loop gone wrong or a scraper does not.
LIMIT = parse(os.environ.get("RATE_LIMIT", "2000/minute"))
POLICY = f"{LIMIT.amount};w={LIMIT.get_expiry()}"

log = logging.getLogger("app.ratelimit")
limiter = FixedWindowRateLimiter(RedisStorage(f"async+{REDIS_URL}", implementation="redispy", key_prefix="ratelimit",
                                              socket_timeout=1, socket_connect_timeout=1))


class RateLimitMiddleware:
    """Pure ASGI (no BaseHTTPMiddleware): exempt requests pass straight through at no cost."""

    def __init__(self, app: ASGIApp, routes: list, exempt: set[str]) -> None:
        self.app, self.routes, self.exempt = app, routes, exempt

    def _is_exempt(self, scope: Scope) -> bool:
        # the route the router will pick: the first full match (GET /links must not look like GET /{code})
        route = next((r for r in self.routes if r.matches(scope)[0] == Match.FULL), None)
        return route is not None and getattr(route, "name", None) in self.exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._is_exempt(scope):
            return await self.app(scope, receive, send)
        client = scope["client"][0] if scope.get("client") else "-"
        try:
            allowed = await limiter.hit(LIMIT, client)
            reset_at, remaining = await limiter.get_window_stats(LIMIT, client)
        except RedisError:
            log.warning("rate limit not applied: Redis unavailable", extra={"client": client})
            return await self.app(scope, receive, send)
        reset = max(1, int(reset_at - time.time() + 0.999))
        headers = {"RateLimit-Limit": str(LIMIT.amount), "RateLimit-Remaining": str(remaining),
                   "RateLimit-Reset": str(reset), "RateLimit-Policy": POLICY}
        if not allowed:
            refusal = JSONResponse({"detail": f"Too many requests: at most {LIMIT.amount} per {LIMIT.get_expiry()} s, "
                                              f"try again in {reset} s"},
                                   status_code=429, headers=headers | {"Retry-After": str(reset)})
            return await refusal(scope, receive, send)

        async def send_with_headers(message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).update(headers)
            await send(message)

        await self.app(scope, receive, send_with_headers)
