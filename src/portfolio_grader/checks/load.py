"""A short, bounded load probe on a read endpoint (advanced tier): latency percentiles and error rate
against the rubric's thresholds.

Bounded three ways: `Settings.load_concurrency` clients (10), `Settings.load_duration` seconds (10) and
`Settings.load_max_requests` requests (5000), whichever ends first. Every request goes to the service
under grade through the prober's origin check; none is recorded as an exchange (only one sample is).

A 429 is a limiter doing its job, not a server failure: throttled requests are counted apart and left out of
the error rate and the latency percentiles. When the limiter refuses so much that fewer than MIN_SERVED requests
were served, the check cannot judge latency and says so.
"""

from __future__ import annotations

import math
import shlex
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx

from .operations import data_resources, fill, get, ok, status_text, time_left
from .redirects import create_link, find_shortener
from .registry import CheckContext, check

MIN_SERVED = 50  # un-throttled answers needed to judge latency percentiles
MANIFEST_HINT = ("shortener:\n  redirect: GET /{code}   # the hot read path the grader puts under load\n"
                 "resources: [/api/v1/links]   # or a collection whose list it reads")


@dataclass
class LoadResult:
    latencies_ms: list[float] = field(default_factory=list)  # of the served (not throttled) requests
    errors: int = 0
    throttled: int = 0  # answered 429: refused by a rate limiter, neither served nor an error
    statuses: dict[int, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def count(self) -> int:
        """Requests served: every answer but a 429, and every request that got no answer."""
        return len(self.latencies_ms)

    @property
    def sent(self) -> int:
        return self.count + self.throttled

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))] if ordered else 0.0

    @property
    def error_rate(self) -> float:
        return self.errors / self.count if self.count else 1.0


def run_load(url: str, headers: dict[str, str], *, concurrency: int, duration: float, max_requests: int,
             timeout: float) -> LoadResult:
    """GET `url` from `concurrency` threads until `duration` seconds or `max_requests` requests have passed.
    An error is no answer or a 5xx: the endpoint failed the request. A 429 is throttled, apart from both."""
    result = LoadResult()
    lock = threading.Lock()
    budget = [max_requests]
    deadline = time.monotonic() + duration
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    with httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False, limits=limits) as client:
        def worker() -> None:
            while time.monotonic() < deadline:
                with lock:
                    if budget[0] <= 0:
                        return
                    budget[0] -= 1
                started = time.monotonic()
                try:
                    status = client.get(url, headers=headers).status_code
                except httpx.HTTPError:
                    status = None
                elapsed = (time.monotonic() - started) * 1000
                with lock:
                    result.statuses[status or 0] = result.statuses.get(status or 0, 0) + 1
                    if status == 429:
                        result.throttled += 1
                        continue
                    result.latencies_ms.append(elapsed)
                    if status is None or status >= 500:
                        result.errors += 1

        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="load") as pool:
            for future in [pool.submit(worker) for _ in range(concurrency)]:
                future.result()
        result.seconds = time.monotonic() - started
    return result


def _target(ctx: CheckContext) -> tuple[str, dict[str, str], str] | None:
    """(path, headers, why) of the read endpoint to load: the shortener's redirect, else a list, else health."""
    s = find_shortener(ctx)
    if s is not None and s.redirect is not None:
        link = create_link(ctx, s)
        if link.code is not None:
            return fill(s.redirect.path, link.code), {}, f"the redirect of a new short link ({s.redirect.label})"
    for resource in data_resources(ctx):
        if resource.list is not None:
            headers = ctx.auth_headers() if resource.list.security else {}
            if headers or not resource.list.security:
                return resource.collection, headers, f"the list {resource.list.label}"
    health = ctx.facts.manifest.health if ctx.facts.manifest and ctx.facts.manifest.health else None
    for path in ([health] if health else []) + ["/health", "/healthz"]:
        if ok(get(ctx, path)):
            return path, {}, f"the health endpoint GET {path}"
    return None


@check("load.latency", area="performance", title="A read endpoint stays fast under a short, bounded load",
       needs=("service",), order=80, params={"p95_ms": float, "max_error_rate": float})
def latency(ctx: CheckContext):
    params = ctx.params()
    if "p95_ms" not in params or "max_error_rate" not in params:
        return ctx.skip("the rubric sets no latency thresholds for this check (params: p95_ms, max_error_rate)")
    p95_limit, error_limit = float(params["p95_ms"]), float(params["max_error_rate"])
    target = _target(ctx)
    if target is None:
        return ctx.skip("no read endpoint to put under load was found (no shortener redirect, no list operation "
                        "that a test user can read, no health endpoint)", MANIFEST_HINT)
    path, headers, why = target
    sample = get(ctx, path, headers=headers)
    if sample.status is None or sample.status >= 400:
        return ctx.skip(f"{why} answered {status_text(sample)} before any load; nothing to measure", MANIFEST_HINT)
    url = ctx.prober.url_for(path)  # refuses anything but the service under grade
    settings = ctx.settings
    left = time_left()  # the stage's deadline, when one is in force, bounds the load too
    duration = settings.load_duration if left is None else max(1.0, min(settings.load_duration, left - 5))
    result = run_load(url, headers, concurrency=settings.load_concurrency, duration=duration,
                      max_requests=settings.load_max_requests, timeout=settings.request_timeout)
    p50, p95, p99 = (result.percentile(q) for q in (0.5, 0.95, 0.99))
    rate = f"{result.sent / max(result.seconds, 1e-9):.0f}/s"
    sent = (f"{result.sent} GET requests in {result.seconds:.1f} s at concurrency {settings.load_concurrency} ({rate}), "
            f"{result.throttled} throttled (429)")
    statuses = f"statuses {dict(sorted(result.statuses.items()))}"
    if result.throttled and result.count < MIN_SERVED:
        return ctx.skip(f"could not judge latency under load on {why}: {sent} and only {result.count} served — "
                        f"fewer than {MIN_SERVED}. The rate limiter refused most of the load; exempt the hot read path "
                        f"from it (or raise its limit there) so its latency can be measured. {statuses}")
    stats = (f"{sent}: of {result.count} served, p50 {p50:.0f} ms, p95 {p95:.0f} ms, p99 {p99:.0f} ms, "
             f"errors {result.error_rate:.1%} (limits: p95 ≤ {p95_limit:g} ms, errors ≤ {error_limit:.1%}); {statuses}")
    header_args = " ".join(f"-H {shlex.quote(f'{k}: {v}')}" for k, v in headers.items())
    command = (f"seq {min(result.sent, 1000) or 100} | xargs -P {settings.load_concurrency} -I{{}} curl -s -o /dev/null "
               f"-w '%{{http_code}} %{{time_total}}\\n' {header_args + ' ' if header_args else ''}{shlex.quote(url)}")
    evidence = [sample.evidence(f"load on {why}: {stats}").model_copy(update={"curl": command})]
    problems = []
    if p95 > p95_limit:
        problems.append(f"p95 latency {p95:.0f} ms is over {p95_limit:g} ms")
    if result.error_rate > error_limit:
        problems.append(f"{result.error_rate:.1%} of the served requests failed (limit {error_limit:.1%})")
    if not problems:
        return ctx.verdict(f"{why}: {stats}", evidence=evidence)
    finding = ctx.fail("latency_slow", "medium", f"Under load, {why}: {'; '.join(problems)}. {stats}.",
                       operation=f"GET {path}", evidence=evidence,
                       hint="Find what the hot path waits on: a blocking call inside `async def` (time.sleep, "
                            "requests, a sync DB driver) stalls every request of the worker — use the async client "
                            "or a plain `def` handler; cache the code → URL lookup (Redis, with a TTL); move writes "
                            "such as click counting to a background job; add the missing index; run more than one "
                            "worker process.")
    return ctx.verdict(finding.message, [finding], evidence, score=(2 - len(problems)) / 2)
