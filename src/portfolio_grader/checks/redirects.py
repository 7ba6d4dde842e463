"""A URL shortener's behaviour (advanced tier): redirects that follow HTTP's rules, and click analytics a
background job keeps up to date.

- `shortener.redirect`: a short code answers 301/302/307/308 with the long URL in `Location`; an unknown
  code answers 404 (not a 500, not a redirect).
- `shortener.background_job`: redirects show up in the link's statistics within a deadline.

The operations are found in the spec (a POST taking a URL, a GET on one path parameter documented with a
3xx answer, a GET on statistics) or named in the manifest's `shortener:` lines.
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from ..models import Evidence, Operation
from ..probe import Exchange
from .objects import find_id
from .operations import (dig, fill, first_field, get, named_operation, new_marker, numbers, ok, path_params, send,
                         status_text)
from .registry import CheckContext, check

REDIRECTS = (301, 302, 307, 308)
URL_FIELDS = ("url", "long_url", "longUrl", "target_url", "targetUrl", "original_url", "originalUrl", "destination",
              "destination_url", "target", "link", "href", "full_url", "fullUrl", "redirect_url", "location")
CODE_FIELDS = ("code", "short_code", "shortCode", "slug", "alias", "key", "short_id", "shortId", "hash", "token")
SHORT_URL_FIELDS = ("short_url", "shortUrl", "short_link", "shortLink", "short")
CLICK_FIELDS = ("clicks", "click_count", "clickCount", "clicks_count", "total_clicks", "totalClicks", "visits",
                "visit_count", "hits", "redirects", "views", "count")
CLICKS = 3  # redirects the background-job probe makes
DEFAULT_DEADLINE = 10.0  # seconds, when the rubric names none
MANIFEST_HINT = ("shortener:\n"
                 "  create: POST /links          # takes the long URL, answers the short code\n"
                 "  redirect: GET /{code}        # answers 301/302/307/308 with Location\n"
                 "  stats: GET /links/{id}/stats # the click count the background job keeps")
_SHORT_WORDS = re.compile(r"link|url|short|shorten|slug", re.I)
_STATS_WORDS = re.compile(r"stat|analytic|click|visit|metric", re.I)
_REDIRECT_PATH = re.compile(r"^/(?:[a-z]{1,3}/)?\{[^}/]+\}/?$", re.I)  # /{code}, /r/{code}, /go/{code}
_SIGN_IN = re.compile(r"(?<![a-z])(?:o?auth2?|log-?in|log-?out|sign-?in|sso|callback)(?![a-z])", re.I)


@dataclass(frozen=True)
class Shortener:
    create: Operation
    url_field: str
    redirect: Operation | None = None
    stats: Operation | None = None
    code_field: str | None = None
    found: list[str] = field(default_factory=list)  # how each part was found, for the summary


@dataclass
class Link:
    """A short link the grader created."""

    created: Exchange
    target: str
    code: str | None
    obj: dict[str, Any]

    def value_for(self, param: str) -> Any:
        """What fills a path parameter: the object's field of that name, its code, or its id."""
        if param in self.obj and self.obj[param] not in (None, ""):
            return self.obj[param]
        if re.search(r"code|slug|alias|key|short|hash|token", param, re.I) and self.code:
            return self.code
        return find_id(self.obj, "id") or self.code


def _url_field(op: Operation) -> str | None:
    props = (op.request_schema or {}).get("properties") or {}
    named = next((p for p in URL_FIELDS if p in props), None)
    return named or next((p for p, s in props.items() if (s or {}).get("format") in ("uri", "url")), None)


def find_shortener(ctx: CheckContext) -> Shortener | None:
    """The shortener's operations, from the manifest's `shortener:` lines or the spec."""
    def compute() -> Shortener | None:
        named = ctx.facts.manifest.shortener if ctx.facts.manifest else None
        found: list[str] = []
        create = named_operation(ctx, named.create if named else None)
        if create is not None:
            found.append(f"create: {create.label} (manifest)")
        else:
            candidates = [op for op in ctx.api.operations if op.method == "POST" and _url_field(op)
                          and not re.search(r"webhook|hook|callback", op.path, re.I)]
            candidates.sort(key=lambda op: (not _SHORT_WORDS.search(op.path), len(op.path)))
            create = candidates[0] if candidates else None
            if create is None:
                return None
            found.append(f"create: {create.label}")
        url_field = (named.url_field if named and named.url_field else None) or _url_field(create) or "url"
        redirect = named_operation(ctx, named.redirect if named else None)
        if redirect is not None:
            found.append(f"redirect: {redirect.label} (manifest)")
        else:
            redirect = _find_redirect(ctx, create)
            if redirect is not None:
                found.append(f"redirect: {redirect.label}")
        stats = named_operation(ctx, named.stats if named else None)
        if stats is not None:
            found.append(f"stats: {stats.label} (manifest)")
        else:
            stats = _find_stats(ctx, create, redirect)
            if stats is not None:
                found.append(f"stats: {stats.label}")
        return Shortener(create=create, url_field=url_field, redirect=redirect, stats=stats,
                         code_field=named.code_field if named else None, found=found)

    return ctx.memo("shortener", compute)


def _find_redirect(ctx: CheckContext, create: Operation) -> Operation | None:
    gets = [op for op in ctx.api.operations if op.method == "GET" and len(path_params(op.path)) == 1
            and not _not_a_short_link(op, create)]
    documented = [op for op in gets if any(s in op.responses for s in map(str, (*REDIRECTS, 303)))]
    if documented:
        return min(documented, key=lambda op: len(op.path))
    shaped = [op for op in gets if _REDIRECT_PATH.match(op.path) and not op.path.startswith(create.path.rstrip("/") + "/")]
    return min(shaped, key=lambda op: len(op.path)) if shaped else None


def _not_a_short_link(op: Operation, create: Operation) -> bool:
    """Redirects a platform has that are no short links: signing in (`GET /auth/{provider}` to GitHub), or an action
    on another collection's object (`GET /invoices/{id}/pdf` to a file store). A short link's redirect ends in its
    code (`/{code}`, `/r/{code}`) or sits under the create's own collection (`/links/{code}/go`)."""
    if _SIGN_IN.search(op.path):
        return True
    after_param = op.path.rsplit("}", 1)[-1].strip("/")
    return bool(after_param) and not op.path.startswith(create.path.rstrip("/") + "/")


def _find_stats(ctx: CheckContext, create: Operation, redirect: Operation | None) -> Operation | None:
    gets = [op for op in ctx.api.operations if op.method == "GET" and path_params(op.path)
            and (redirect is None or op.path != redirect.path)]
    worded = [op for op in gets if _STATS_WORDS.search(op.path.rsplit("}", 1)[-1])]
    if worded:
        return min(worded, key=lambda op: len(op.path))
    # the link itself, when its representation carries a click count
    item = create.path.rstrip("/") + "/{"
    for op in gets:
        if op.path.startswith(item) and len(path_params(op.path)) == 1:
            schema = next((r.get("schema") for s, r in op.responses.items() if s.startswith("2") and r.get("schema")), None)
            if any(f in ((schema or {}).get("properties") or {}) for f in CLICK_FIELDS):
                return op
    return None


def _headers_for(ctx: CheckContext, op: Operation | None) -> dict[str, str]:
    return ctx.auth_headers() if op is not None and (op.security or ctx.api.auth) else {}


def create_link(ctx: CheckContext, s: Shortener) -> Link:
    """A new short link to a unique target URL (the grader never follows it)."""
    from ..payloads import valid_example

    target = f"https://example.com/{new_marker(ctx, 'target')}?from=portfolio-grader"
    body = valid_example(s.create.request_schema) if s.create.request_schema else {}
    body = body if isinstance(body, dict) else {}
    body[s.url_field] = target
    for name, sub in ((s.create.request_schema or {}).get("properties") or {}).items():
        if name in CODE_FIELDS and name not in ((s.create.request_schema or {}).get("required") or []):
            body.pop(name, None)  # a custom alias is optional: let the API make the code
    created = send(ctx, s.create.method, s.create.path, json=body, headers=_headers_for(ctx, s.create))
    obj = created.json() if ok(created) else None
    obj = obj.get("data") if isinstance(obj, dict) and isinstance(obj.get("data"), dict) else obj
    obj = obj if isinstance(obj, dict) else {}
    return Link(created, target, _code_of(s, obj), obj)


def _code_of(s: Shortener, obj: dict[str, Any]) -> str | None:
    if s.code_field and dig(obj, s.code_field) not in (None, ""):
        return str(dig(obj, s.code_field))
    param = path_params(s.redirect.path)[0] if s.redirect else None
    names = ((param,) if param else ()) + CODE_FIELDS
    hit = first_field(obj, names, (str, int))
    if hit:
        return str(hit[1])
    short = first_field(obj, SHORT_URL_FIELDS)
    if short:
        return short[1].rstrip("/").rsplit("/", 1)[-1] or None
    found = find_id(obj, "id")
    return str(found) if found is not None else None


def _same_url(a: str | None, b: str) -> bool:
    if not a:
        return False
    try:
        return httpx.URL(a) == httpx.URL(b) or a.rstrip("/") == b.rstrip("/")
    except Exception:
        return False


def _redirect(ctx: CheckContext, s: Shortener, code: str) -> Exchange:
    path = fill(s.redirect.path, code)
    answer = get(ctx, path)
    if answer.status in (401, 403) and s.redirect.security:  # a redirect behind a login: send one
        answer = get(ctx, path, headers=ctx.auth_headers())
    return answer


def _location(exchange: Exchange) -> str | None:
    return next((v for k, v in exchange.headers.items() if k.lower() == "location"), None)


_REDIRECT_HINT = ("Answer a known code with a redirect — `RedirectResponse(url, status_code=302)` (FastAPI), "
                  "`res.redirect(302, url)` (Express), `redirect(url, code=302)` (Flask) — with the long URL in "
                  "`Location`; use 302/307 when every click must reach the server (analytics), 301/308 only for "
                  "links that never change. Look the code up with a query that can miss, and answer a miss with "
                  "404 JSON: `link = db.get(code)`, `if link is None: raise HTTPException(404, \"unknown code\")` — a "
                  "KeyError or None dereference becomes a 500.")


@check("shortener.redirect", area="shortener", title="Short codes redirect (301/302/307/308 + Location); unknown codes 404",
       needs=("service", "spec"))
def redirect(ctx: CheckContext):
    s = find_shortener(ctx)
    if s is None:
        return ctx.not_applicable("no shortener-like operation was found (a POST taking a URL field such as `url` or "
                        "`long_url`)", MANIFEST_HINT)
    if s.redirect is None:
        return ctx.not_applicable(f"no redirect operation was found (a GET on one path parameter documented with a 3xx "
                        f"answer, like GET /{{code}}); {'; '.join(s.found)}", MANIFEST_HINT)
    link = create_link(ctx, s)
    if link.code is None:
        return ctx.skip(f"creating a short link failed: {s.create.label} answered {status_text(link.created)}"
                        + ("" if not ok(link.created) else " without a code or id"), MANIFEST_HINT)
    findings, evidence = [], [link.created.evidence("create a short link to a unique URL")]
    hit = _redirect(ctx, s, link.code)
    location = _location(hit)
    right = hit.status in REDIRECTS and _same_url(location, link.target)
    evidence.append(hit.evidence(f"the short code: expected 301/302/307/308 to {link.target}"))
    if not right:
        problem = (f"answered {status_text(hit)}" + (f" with Location {location!r}" if location else " without a Location")
                   if hit.status not in REDIRECTS else f"redirects ({hit.status}) to {location!r}, not to {link.target}")
        findings.append(ctx.fail("redirect_wrong", "high", f"GET {fill(s.redirect.path, link.code)} {problem}: "
                                 "a short link must answer 301/302/307/308 with the long URL in Location.",
                                 operation=s.redirect.label, evidence=evidence[-2:], hint=_REDIRECT_HINT))
    unknown_code = "pg" + secrets.token_hex(4)
    miss = _redirect(ctx, s, unknown_code)
    evidence.append(miss.evidence("an unknown code: expected 404"))
    if miss.status not in (404, 410):
        what = ("crashed" if miss.status is not None and miss.status >= 500 else
                "redirected" if miss.status in REDIRECTS else "answered")
        findings.append(ctx.fail("redirect_wrong", "medium" if what != "crashed" else "high",
                                 f"GET {fill(s.redirect.path, unknown_code)} (a code that does not exist) {what} "
                                 f"{status_text(miss)} instead of 404.", operation=s.redirect.label,
                                 evidence=[evidence[-1]], hint=_REDIRECT_HINT))
    summary = (f"{'; '.join(s.found)}: a new code answered {status_text(hit)}"
               f"{' to ' + location if location else ''}, an unknown code {status_text(miss)}")
    return ctx.verdict(summary, findings, evidence, score=1 - len(findings) / 2)


# ---------------------------------------------------------------- the click counter


def _clicks(body: Any) -> tuple[str, float] | None:
    """(path, value) of the click counter in a statistics response."""
    leaves = numbers(body)
    for name in CLICK_FIELDS:
        for path, value in leaves.items():
            if path.rsplit(".", 1)[-1].lower() == name.lower():
                return path, value
    return None


@check("shortener.background_job", area="shortener", title="Clicks reach the statistics within a deadline (a background job)",
       needs=("service", "spec"), order=10, waits="polling until a new link's clicks reach its statistics",
       params={"deadline_s": float})
def background_job(ctx: CheckContext):
    s = find_shortener(ctx)
    if s is None or s.redirect is None or s.stats is None:
        missing = "shortener" if s is None else "redirect" if s.redirect is None else "statistics"
        return ctx.not_applicable(f"no {missing} operation was found, so click analytics cannot be probed"
                        + (f" ({'; '.join(s.found)})" if s else ""), MANIFEST_HINT)
    deadline_s = float(ctx.params().get("deadline_s", DEFAULT_DEADLINE))
    link = create_link(ctx, s)
    if link.code is None:
        return ctx.skip(f"creating a short link failed: {s.create.label} answered {status_text(link.created)}",
                        MANIFEST_HINT)
    stats_path = fill(s.stats.path, *[link.value_for(p) for p in path_params(s.stats.path)])
    headers = _headers_for(ctx, s.stats)
    before = get(ctx, stats_path, headers=headers)
    counter = _clicks(before.json()) if ok(before) else None
    if counter is None:
        return ctx.skip(f"GET {stats_path} answered {status_text(before)}"
                        + (" without a click counter (a field such as `clicks`)" if ok(before) else ""), MANIFEST_HINT)
    path, start = counter
    for _ in range(CLICKS):
        _redirect(ctx, s, link.code)
    started = time.monotonic()
    polls: list[Exchange] = []
    value = start
    while True:
        polls.append(get(ctx, stats_path, headers=headers))
        seen = numbers(polls[-1].json()).get(path) if ok(polls[-1]) else None
        value = seen if seen is not None else value
        waited = time.monotonic() - started
        if value >= start + CLICKS or waited >= deadline_s:
            break
        time.sleep(min(0.5, max(0.0, deadline_s - waited)))
    evidence: list[Evidence] = [link.created.evidence("create a short link"),
                                before.evidence(f"statistics before: `{path}` = {start:g}"),
                                polls[-1].evidence(f"statistics {waited:.1f} s after {CLICKS} redirects: "
                                                   f"`{path}` = {value:g}")]
    if value >= start + CLICKS:
        return ctx.verdict(f"{CLICKS} redirects of a new link showed in GET {s.stats.path} (`{path}`) after "
                           f"{waited:.1f} s (deadline {deadline_s:g} s)", evidence=evidence)
    finding = ctx.fail("background_job_missing", "medium",
                       f"{CLICKS} redirects of a new link did not reach its statistics within {deadline_s:g} s: "
                       f"`{path}` went from {start:g} to {value:g} ({len(polls)} reads of GET {stats_path}).",
                       operation=s.stats.label, evidence=evidence,
                       hint="Record each click cheaply on the redirect path (push an event to a Redis list or "
                            "stream, or a queue table) and let a background worker (RQ, Celery, arq, a BullMQ "
                            "worker, or an asyncio task) fold the events into the counts the statistics endpoint "
                            "reads. Make sure the worker runs in the container set (a `worker` service in compose) "
                            "and reads the same queue the API writes.")
    return ctx.verdict(finding.message, [finding], evidence)
