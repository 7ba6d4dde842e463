"""Does the API rate-limit at all? A bounded burst against one ordinary GET (`rate_limit_missing`).

At most MAX_REQUESTS sequential requests within BURST_SECONDS, to the service under grade only, stopping at the
first 429. Rate-limit headers count as a declared limit even when the burst stays under it, but only a limit that
counts: when the headers carry a remaining value it must go down during the burst, else they are decorative. Read:
RateLimit-* / X-RateLimit-* / X-Rate-Limit-* (Limit, Remaining, Reset), the IETF draft-7 dictionary
`RateLimit: limit=100, remaining=99, reset=50` and the draft-8+ list `RateLimit: "default";r=99;t=50` (with
`RateLimit-Policy: "default";q=100;w=60`). It runs late (order 160), after the other probes, so a limit it trips
cannot starve them.
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
DECORATIVE_HINT = (
    "Rate-limit headers are a promise to clients: send them from the limiter that counts, so that "
    "RateLimit-Remaining goes down with every request of the window and a 429 follows when it reaches 0 "
    "(never hard-coded values). " + HINT)


def ordinary_get(ctx: CheckContext) -> tuple[Operation, dict[str, str]] | None:
    """(operation, headers) of one ordinary GET without path parameters: a resource's list first, never docs or health endpoints."""
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


_INT = re.compile(r"-?\d+")


def remaining_values(headers: dict[str, str]) -> dict[str, int]:
    """Every "requests left" value the rate-limit headers state, by where it was read:
    `x-ratelimit-remaining: 99` → {"x-ratelimit-remaining": 99}; draft-7 `RateLimit: limit=100, remaining=99,
    reset=50` → {"ratelimit": 99}; draft-8+ `RateLimit: "burst";r=9;t=1, "day";r=999;t=3600` → {"ratelimit
    burst": 9, "ratelimit day": 999}."""
    found: dict[str, int] = {}
    for name, value in headers.items():
        name = name.lower()
        if name.endswith("-remaining") and name.startswith(_RATE_HEADERS):
            for i, number in enumerate(_INT.findall(value)):  # some send one value per window: "99, 999"
                found[f"{name}#{i}" if i else name] = int(number)
        elif name == "ratelimit":
            for member in (m.strip() for m in value.split(",")):
                head, _, params = member.partition(";")
                if params:  # draft-8+: an item named by its policy, with parameters r (remaining) and t (reset)
                    fields = dict(p.strip().partition("=")[::2] for p in params.split(";"))
                    if _INT.fullmatch(fields.get("r", "").strip()):
                        found[f"ratelimit {head.strip().strip(chr(34))}"] = int(fields["r"])
                else:  # draft-7: a dictionary of limit, remaining, reset
                    key, _, number = head.partition("=")
                    if key.strip().lower() == "remaining" and _INT.fullmatch(number.strip()):
                        found["ratelimit"] = int(number)
    return found


def _count_down(observed: list[dict[str, int]]) -> tuple[str, int, int] | None:
    """(where, first, lowest) of a remaining value that went down between two answers of the burst, else None."""
    for key in dict.fromkeys(k for values in observed for k in values):
        series = [values[key] for values in observed if key in values]
        if any(b < a for a, b in zip(series, series[1:])):
            return key, series[0], min(series)
    return None


def _shown(exchange: Exchange) -> str:
    return ", ".join(f"{k}: {v}" for k, v in _rate_headers(exchange).items())


@check("ratelimit.burst", area="ratelimit", title="The API rate-limits a burst of requests",
       needs=("service", "spec"), order=160)
def burst(ctx: CheckContext):
    chosen = ordinary_get(ctx)
    if chosen is None:
        return ctx.skip("no ordinary GET operation without path parameters to send a burst to (or it needs "
                        "credentials the grader could not obtain)")
    op, headers = chosen
    sent: list[Exchange] = []
    started = time.monotonic()
    refusal: Exchange | None = None
    declared: list[Exchange] = []  # answers that carry rate-limit headers
    while len(sent) < MAX_REQUESTS and time.monotonic() - started < BURST_SECONDS:
        exchange = ctx.prober.request("GET", op.path, headers=headers)
        exchange.source = "burst"
        sent.append(exchange)
        if exchange.status == 429:
            refusal = exchange
            break
        if _rate_headers(exchange):
            declared.append(exchange)
        if exchange.status is None:
            break
    seconds = time.monotonic() - started
    done = f"{len(sent)} GET {op.path} in {seconds:.2f} s"
    if refusal is not None:
        shown = _shown(refusal) or "no RateLimit headers"
        retry = next((v for k, v in refusal.headers.items() if k.lower() == "retry-after"), None)
        return ctx.verdict(f"{done}: request {len(sent)} was refused with 429 (Retry-After: {retry or 'none'}; {shown})",
                           evidence=[sent[0].evidence("request 1"), refusal.evidence(f"request {len(sent)}: 429")])
    answered = [e for e in sent if e.status is not None and e.status < 500]
    enough = len(answered) >= MIN_ANSWERED
    observed = [remaining_values(e.headers) for e in declared]
    counting = _count_down(observed)
    if declared and counting is not None:
        where, first, lowest = counting
        return ctx.verdict(f"{done}: no 429 within the burst, but the API declares a limit that counts "
                           f"({where} went from {first} to {lowest}; {_shown(declared[-1])})",
                           evidence=[declared[0].evidence("rate-limit headers at the start of the burst"),
                                     declared[-1].evidence("rate-limit headers at the end of the burst")])
    if declared and not any(observed):  # a limit and a window, but no count to watch
        return ctx.verdict(f"{done}: no 429 within the burst, but the API declares a limit ({_shown(declared[0])}; "
                           "no remaining count to follow)", evidence=[declared[0].evidence("rate-limit headers")])
    if enough:
        statuses = ", ".join(sorted({str(e.status) for e in answered}))
        if declared:  # remaining values that never went down over the whole burst
            seen = sorted({v for values in observed for v in values.values()})
            values = f"it stayed at {seen[0]}" if len(seen) == 1 else "values seen: " + ", ".join(map(str, seen[:5]))
            first, last = (next(i for i, x in enumerate(sent, 1) if x is e) for e in (declared[0], declared[-1]))
            finding = ctx.fail(
                "rate_limit_missing", "medium",
                f"{len(answered)} requests to GET {op.path} in {seconds:.2f} s were all answered ({statuses}) and "
                f"the API declares a limit ({_shown(declared[0])}), but the remaining count never went down "
                f"({values}): the rate-limit headers are decorative — nothing counts the requests, so nothing "
                "limits how fast one client may call the API (OWASP API4:2023).",
                operation=op.label, hint=DECORATIVE_HINT,
                evidence=[declared[0].evidence(f"request {first}: rate-limit headers"),
                          declared[-1].evidence(f"request {last}: the remaining count has not gone down")])
            return ctx.verdict(f"{done}: none refused, the remaining count never went down", [finding],
                               finding.evidence)
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
