"""Does the API rate-limit at all? A bounded burst against one ordinary GET (`rate_limit_missing`).

At most MAX_REQUESTS sequential requests within BURST_SECONDS, to the service under grade only, stopping at the
first 429. RateLimit / X-RateLimit headers count as a declared limit even when the burst stays under it. It runs
late (order 160), after the other probes, so a limit it trips cannot starve them.
"""

from __future__ import annotations

import re
import time

from ..models import Operation
from ..probe import Exchange
from .registry import CheckContext, check

MAX_REQUESTS = 100
BURST_SECONDS = 10.0
MIN_ANSWERED = 50  # ordinary answers needed to call the API "not rate limited"
_RATE_HEADERS = ("ratelimit", "x-ratelimit", "x-rate-limit")
_NOT_ORDINARY = re.compile(r"openapi|swagger|api-docs|/docs|health|ready|live|metrics|status|version|/$", re.I)

HINT = (
    "Without a limit one client can take the whole server — scraping, brute force, or a loop gone wrong "
    "(OWASP API4:2023 Unrestricted Resource Consumption). Limit requests per client (and per user once logged "
    "in) and answer 429 Too Many Requests with Retry-After and RateLimit headers: FastAPI slowapi "
    "(`Limiter(key_func=get_remote_address, default_limits=[\"100/minute\"])` plus `SlowAPIMiddleware`), Express "
    "`app.use(rateLimit({ windowMs: 60_000, limit: 100, standardHeaders: 'draft-7' }))`, Flask-Limiter "
    "`Limiter(get_remote_address, app=app, default_limits=[\"100 per minute\"])`; keep the counters in Redis when "
    "several workers serve the API, or rate-limit at the reverse proxy (nginx `limit_req`).")


def _target(ctx: CheckContext) -> tuple[Operation, dict[str, str]] | None:
    """One ordinary GET without path parameters: a resource's list first, never docs or health endpoints."""
    lists = [r.list for r in ctx.api.resources if r.list is not None and "{" not in r.list.path]
    others = [op for op in ctx.api.operations if op.method == "GET" and "{" not in op.path
              and not _NOT_ORDINARY.search(op.path) and op not in lists]
    admin = {op.path for op in (ctx.api.auth.admin_operations if ctx.api.auth else [])}
    for op in lists + others:
        if op.path in admin:
            continue
        headers = ctx.auth_headers() if op.security else {}
        if op.security and not headers:
            continue
        return op, headers
    return None


def _rate_headers(exchange: Exchange) -> dict[str, str]:
    return {k: v for k, v in exchange.headers.items() if k.lower().startswith(_RATE_HEADERS)}


@check("ratelimit.burst", area="ratelimit", title="The API rate-limits a burst of requests",
       needs=("service", "spec"), order=160)
def burst(ctx: CheckContext):
    chosen = _target(ctx)
    if chosen is None:
        return ctx.skip("no ordinary GET operation without path parameters to send a burst to (or it needs "
                        "credentials the grader could not obtain)")
    op, headers = chosen
    sent: list[Exchange] = []
    started = time.monotonic()
    refusal: Exchange | None = None
    declared: Exchange | None = None
    while len(sent) < MAX_REQUESTS and time.monotonic() - started < BURST_SECONDS:
        exchange = ctx.prober.request("GET", op.path, headers=headers)
        exchange.source = "burst"
        sent.append(exchange)
        if exchange.status == 429:
            refusal = exchange
            break
        if declared is None and _rate_headers(exchange):
            declared = exchange
        if exchange.status is None:
            break
    seconds = time.monotonic() - started
    done = f"{len(sent)} GET {op.path} in {seconds:.2f} s"
    if refusal is not None:
        shown = ", ".join(f"{k}: {v}" for k, v in _rate_headers(refusal).items()) or "no RateLimit headers"
        retry = next((v for k, v in refusal.headers.items() if k.lower() == "retry-after"), None)
        return ctx.verdict(f"{done}: request {len(sent)} was refused with 429 (Retry-After: {retry or 'none'}; {shown})",
                           evidence=[sent[0].evidence("request 1"), refusal.evidence(f"request {len(sent)}: 429")])
    if declared is not None:
        shown = ", ".join(f"{k}: {v}" for k, v in _rate_headers(declared).items())
        return ctx.verdict(f"{done}: no 429 within the burst, but the API declares a limit ({shown})",
                           evidence=[declared.evidence("rate-limit headers")])
    answered = [e for e in sent if e.status is not None and e.status < 500]
    if len(answered) >= MIN_ANSWERED:
        statuses = ", ".join(sorted({str(e.status) for e in answered}))
        finding = ctx.fail(
            "rate_limit_missing", "medium",
            f"{len(answered)} requests to GET {op.path} in {seconds:.2f} s were all answered ({statuses}): no 429, no "
            "RateLimit headers — nothing limits how fast one client may call the API (OWASP API4:2023).",
            operation=op.label, hint=HINT,
            evidence=[sent[0].evidence("request 1"), sent[-1].evidence(f"request {len(sent)}: still answered")])
        return ctx.verdict(f"{done}: none refused", [finding], finding.evidence)
    last = sent[-1]
    return ctx.skip(f"could not judge rate limiting: {done}, only {len(answered)} ordinary answer(s)"
                    + (f" (last: {last.status or last.error})" if sent else ""))
