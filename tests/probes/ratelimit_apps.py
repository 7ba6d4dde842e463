"""In-process APIs behind real rate-limit middleware, for the burst and load probes.

`limited_app(style)`: GET /reports (the burst's target) and GET /health behind a tiny fixed-window limiter per
client that counts every request and answers 429 with Retry-After when the window is used up. `style` says which
headers it sends: "x-ratelimit" (X-RateLimit-Limit/Remaining/Reset), "draft-7" (`RateLimit: limit=.., remaining=..,
reset=..` + `RateLimit-Policy`), "draft-8" (`RateLimit: "default";r=..;t=..` + `RateLimit-Policy: "default";q=..;w=..`),
"policy-only" (`RateLimit-Policy` and nothing that counts). `static=True`: the headers are hard-coded — the same
remaining value on every answer — and nothing is counted or refused (decorative headers).

`allow_first(n, delay_ms)`: GET /health answers 200 to the first n requests (after `delay_ms`), then 429 at once:
a limiter that refuses the rest of the load.
"""

from __future__ import annotations

import threading
import time
from typing import Literal

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

Style = Literal["x-ratelimit", "draft-7", "draft-8", "policy-only"]


def rate_headers(style: Style, limit: int, remaining: int, reset: int, window: int) -> dict[str, str]:
    if style == "x-ratelimit":
        return {"X-RateLimit-Limit": str(limit), "X-RateLimit-Remaining": str(remaining),
                "X-RateLimit-Reset": str(reset)}
    if style == "draft-7":
        return {"RateLimit": f"limit={limit}, remaining={remaining}, reset={reset}",
                "RateLimit-Policy": f"{limit};w={window}"}
    if style == "draft-8":
        return {"RateLimit": f'"default";r={remaining};t={reset}', "RateLimit-Policy": f'"default";q={limit};w={window}'}
    return {"RateLimit-Policy": f"{limit};w={window}"}


def limited_app(style: Style, *, limit: int = 1000, window: int = 60, static: bool = False) -> FastAPI:
    app = FastAPI(title=f"reports ({style}{', static headers' if static else ''})")
    windows: dict[str, tuple[float, int]] = {}  # client -> (window start, requests counted)
    lock = threading.Lock()
    app.state.refused = 0

    @app.middleware("http")
    async def rate_limit(request: Request, call_next):
        if static:  # what a copied snippet does: headers without a limiter behind them
            response = await call_next(request)
            response.headers.update(rate_headers(style, limit, limit - 1, window, window))
            return response
        client, now = request.client.host if request.client else "-", time.monotonic()
        with lock:
            start, used = windows.get(client, (now, 0))
            if now - start >= window:
                start, used = now, 0
            used += 1
            windows[client] = (start, used)
        reset = max(1, int(start + window - now))
        headers = rate_headers(style, limit, max(0, limit - used), reset, window)
        if used > limit:
            app.state.refused += 1
            return JSONResponse({"detail": "Too many requests"}, status_code=429,
                                headers=headers | {"Retry-After": str(reset)})
        response = await call_next(request)
        response.headers.update(headers)
        return response

    @app.get("/reports")
    def reports():
        return [{"id": 1, "title": "Q1"}]

    @app.get("/health")
    def health():
        return {"status": "ok"}

    return app


def allow_first(n: int, delay_ms: float = 0) -> FastAPI:
    app = FastAPI(title=f"health served {n} times, then throttled")
    lock = threading.Lock()
    app.state.served = app.state.refused = 0

    @app.middleware("http")
    async def refuse_after_n(request: Request, call_next):
        with lock:
            refuse = app.state.served >= n
            if refuse:
                app.state.refused += 1
            else:
                app.state.served += 1
        if refuse:
            return JSONResponse({"detail": "Too many requests"}, status_code=429, headers={"Retry-After": "60"})
        return await call_next(request)

    @app.get("/health")
    def health():
        time.sleep(delay_ms / 1000)  # a sync handler: uvicorn's thread pool serves the load in parallel
        return {"status": "ok"}

    return app
