"""Per-client rate limit for the API: a fixed window counted in memory by the `limits` library.

In memory is right while one process serves the API (see the Dockerfile); with several workers or replicas the
counters move to Redis (`async+redis://...` as the storage) so that they are shared. Every counted answer states
the policy and what is left of it in the IETF RateLimit headers (draft-8+ form):
`RateLimit-Policy: "per-client";q=10000;w=60` and `RateLimit: "per-client";r=9999;t=60`; past the limit the answer
is 429 with Retry-After. /health and /metrics are exempt: the orchestrator's probes and the scraper must always get
through.
"""
import os
import time

from limits import parse
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import FixedWindowRateLimiter
from starlette.datastructures import MutableHeaders
from starlette.responses import JSONResponse
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

# Sized to what one API process serves (about 180 list requests a second with 10 clients, measured) and
# counted per minute, so an integration's nightly sync may burst: the limit stops a loop gone wrong or a scraper,
# not a busy customer. Tenants' plans are a different thing (see /usage).
LIMIT = parse(os.environ.get("RATE_LIMIT", "10000/minute"))
POLICY_NAME = "per-client"

limiter = FixedWindowRateLimiter(MemoryStorage())


class RateLimitMiddleware:
    """Pure ASGI (no BaseHTTPMiddleware): exempt requests pass straight through at no cost."""

    def __init__(self, app: ASGIApp, routes: list, exempt: set[str]) -> None:
        self.app, self.routes, self.exempt = app, routes, exempt

    def _is_exempt(self, scope: Scope) -> bool:
        # the route the router will pick: the first full match
        route = next((r for r in self.routes if r.matches(scope)[0] == Match.FULL), None)
        return route is not None and getattr(route, "name", None) in self.exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._is_exempt(scope):
            return await self.app(scope, receive, send)
        client = scope["client"][0] if scope.get("client") else "-"
        allowed = await limiter.hit(LIMIT, client)
        reset_at, remaining = await limiter.get_window_stats(LIMIT, client)
        reset = max(1, int(reset_at - time.time() + 0.999))
        headers = {"RateLimit-Policy": f'"{POLICY_NAME}";q={LIMIT.amount};w={LIMIT.get_expiry()}',
                   "RateLimit": f'"{POLICY_NAME}";r={remaining};t={reset}'}
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
