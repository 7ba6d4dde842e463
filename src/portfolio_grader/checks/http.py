"""HTTP semantics of errors: unknown routes, wrong methods, wrong content types, oversized bodies, one error shape.

Kinds (besides the shared `server_error` and `non_json_error`):
- `unknown_route_not_404`: a route that surely does not exist is answered with something other than 404;
- `method_not_allowed_wrong`: a method a path does not support gets something other than 405 with `Allow`;
- `content_type_not_checked`: a JSON operation accepts a body sent as text/plain;
- `oversized_body_accepted`: a 2 MiB JSON body is accepted rather than refused with 413 (or another 4xx);
- `error_shape_inconsistent`: the API's JSON errors come in more than one shape (RFC 9457 problem+json is
  recognised as one shape whatever its optional members; Django REST framework's field errors go with its
  {"detail": ...} errors).
"""

from __future__ import annotations

import json
import re
import secrets
import shlex
from collections import Counter
from typing import Any
from urllib.parse import urlsplit

from ..models import Evidence, Operation
from ..payloads import valid_example
from ..probe import Exchange
from .objects import find_id
from .registry import CheckContext, check

OVERSIZED_BYTES = 2 * 1024 * 1024  # over the common 1 MiB proxy limit (nginx client_max_body_size, Express 100 kB)
_PROBLEM_MEMBERS = {"type", "title", "status", "detail", "instance"}
_NEEDS = ("service",)
_ID_IN_TEXT = re.compile(r'"(?:id|_id|uuid)"\s*:\s*("[^"]{1,64}"|\d+)')
SCAN_HEAD = 4096

HINTS = {
    "unknown_route_not_404": (
        "A route that does not exist must answer 404 so clients and monitoring can tell a typo from success: do "
        "not mount a catch-all that answers 200 (serve a frontend under its own prefix), and give the framework's "
        "404 a JSON body (Flask `@app.errorhandler(404)`, Express a last `app.use((req, res) => "
        "res.status(404).json({ error: 'Not found' }))`)."),
    "method_not_allowed_wrong": (
        "A method a route does not support must answer 405 Method Not Allowed with an `Allow` header listing the "
        "methods it does support (RFC 9110 §15.5.6). FastAPI and Flask do this by themselves; Express answers 404 "
        "unless each route ends with `.all((req, res) => res.set('Allow', 'GET, POST').status(405).json(...))` "
        "(router.route('/notes').get(...).post(...).all(methodNotAllowed))."),
    "content_type_not_checked": (
        "A JSON operation must refuse bodies that are not declared as JSON — 415 Unsupported Media Type (or 400) "
        "— instead of guessing: guessing is how CSRF through simple `text/plain` form posts works. Flask: "
        "`request.get_json()` without `force=True`; Express: `express.json()` only parses application/json, so "
        "check `req.is('application/json')` and answer 415; FastAPI refuses non-JSON bodies for models itself."),
    "oversized_body_accepted": (
        "Bound request bodies so one client cannot exhaust memory (OWASP API4:2023): Flask "
        "`app.config['MAX_CONTENT_LENGTH'] = 1024 * 1024` (413), Express `express.json({ limit: '100kb' })` (the "
        "default; raising it is the bug), FastAPI/uvicorn behind a proxy with `client_max_body_size 1m` or a "
        "middleware that checks Content-Length, plus `max_length` on every string field."),
    "error_shape_inconsistent": (
        "Clients parse errors once: give every error the same JSON shape — RFC 9457 `application/problem+json` "
        "({type, title, status, detail}) or one object such as {\"detail\": ...} — by routing all of them "
        "(validation, 404/405, auth, unexpected exceptions) through one set of exception handlers."),
}


def _fill(path: str, value: str) -> str:
    return re.sub(r"\{[^}]+\}", value, path)


def _fill_missing(path: str, op: Operation) -> str:
    """The path with ids that match their parameter's type (so the route matches) but surely do not exist."""
    schemas = {p.get("name"): (p.get("schema") or {}) for p in op.parameters if p.get("in") == "path"}

    def missing(match: re.Match) -> str:
        schema = schemas.get(match.group(1)) or {}
        if schema.get("type") in ("integer", "number"):
            return "999999999"
        if schema.get("format") == "uuid":
            return "00000000-0000-4000-8000-00000000f00d"
        return "ffffffffffffffffffffffff"  # also a valid, unused Mongo ObjectId

    return re.sub(r"\{([^}]+)\}", missing, path)


def _credentials(ctx: CheckContext, op: Operation | None = None) -> dict[str, str]:
    secured = op.security if op is not None else any(o.security for o in ctx.api.operations)
    return ctx.auth_headers() if secured else {}


# ---------------------------------------------------------------- unknown route


@check("http.unknown_route", area="errors", title="An unknown route answers 404 with a JSON body", needs=_NEEDS)
def unknown_route(ctx: CheckContext):
    path = f"/portfolio-grader-no-such-route-{secrets.token_hex(3)}"
    answer = ctx.prober.request("GET", path, headers={"Accept": "application/json"})
    note = "a route that surely does not exist: expected 404 with a JSON body"
    if answer.status is None or answer.status >= 500:
        finding = ctx.fail("server_error", "high", f"GET {path} (no such route) got {answer.status or answer.error}.",
                           operation=f"GET {path}", evidence=[answer.evidence(note)],
                           hint="An unknown route is the most ordinary request there is: let the router answer 404.")
        return ctx.verdict("an unknown route crashed the server", [finding])
    if answer.status != 404:
        finding = ctx.fail("unknown_route_not_404", "medium" if answer.status < 300 else "low",
                           f"GET {path}, a route that does not exist, answered {answer.status} instead of 404.",
                           operation=f"GET {path}", evidence=[answer.evidence(note)],
                           hint=HINTS["unknown_route_not_404"])
        return ctx.verdict(f"an unknown route answered {answer.status}", [finding])
    if answer.body.strip() and not answer.is_json:
        finding = ctx.fail("non_json_error", "low", f"GET {path} answered 404 with "
                           f"{answer.content_type or 'no content type'}, not JSON.", operation=f"GET {path}",
                           evidence=[answer.evidence(note)], hint=HINTS["unknown_route_not_404"])
        return ctx.verdict("the unknown-route 404 is not JSON", [finding], score=0.5)
    return ctx.verdict(f"an unknown route answered 404 ({answer.content_type or 'empty body'})",
                       evidence=[answer.evidence(note)])


# ---------------------------------------------------------------- method not allowed


def _unsupported_methods(ctx: CheckContext) -> list[tuple[str, str, Operation, dict[str, str]]]:
    """(method, concrete path, a documented operation on that path, credentials), best first: an item path, with
    an id that does not exist, so that even a route that does exist after all changes nothing real; the login and
    sign-up paths last (their rate limits may be spent by the grade). Paths that need credentials the grader has
    not got are passed over: an auth middleware's 401 says nothing about 405."""
    by_path: dict[str, dict[str, Operation]] = {}
    for op in ctx.api.operations:
        by_path.setdefault(op.path, {})[op.method] = op
    candidates = [("POST", _fill_missing(p, next(iter(ops.values()))), next(iter(ops.values())))
                  for p, ops in by_path.items() if p.rstrip("/").endswith("}") and "POST" not in ops]
    candidates += [(method, p, next(iter(ops.values()))) for p, ops in by_path.items()
                   if "{" not in p and ops.keys() <= {"GET", "POST"}
                   for method in ("PATCH", "PUT", "DELETE")][:3]
    auth = ctx.api.auth
    throttled = {op.path for op in (auth.login, auth.signup) if op is not None} if auth else set()
    candidates.sort(key=lambda c: c[2].path in throttled)
    chosen = []
    for method, path, sibling in candidates:
        headers = _credentials(ctx, sibling)
        if not sibling.security or headers:
            chosen.append((method, path, sibling, headers))
    return chosen


MAX_METHOD_TRIES = 3


@check("http.method_not_allowed", area="errors", title="An unsupported method answers 405 with an Allow header",
       needs=("service", "spec"))
def method_not_allowed(ctx: CheckContext):
    candidates = _unsupported_methods(ctx)
    if not candidates:
        return ctx.skip("every documented path supports every method the grader would try (or needs credentials "
                        "the grader could not obtain)")
    limited = []
    for method, path, sibling, headers in candidates[:MAX_METHOD_TRIES]:
        kwargs: dict[str, Any] = {"json": {}} if method in ("POST", "PUT", "PATCH") else {}
        answer = ctx.prober.request(method, path, headers=headers, **kwargs)
        if answer.status != 429:  # a rate limit answers before routing (DRF's throttles): it says nothing of 405
            break
        limited.append(f"{method} {sibling.path}")
    else:
        return ctx.skip(f"{', '.join(limited)} answered 429 Too Many Requests (a rate limit the grade's earlier "
                        "requests spent), which says nothing about 405")
    documented = sorted(op.method for op in ctx.api.operations if op.path == sibling.path)
    label = f"{method} {sibling.path}"
    note = f"{method} is not documented for {sibling.path} ({', '.join(documented)} are): expected 405"
    if answer.status is None or answer.status >= 500:
        finding = ctx.fail("server_error", "high", f"{label}, an undocumented method, got "
                           f"{answer.status or answer.error}.", operation=label, evidence=[answer.evidence(note)],
                           hint=HINTS["method_not_allowed_wrong"])
        return ctx.verdict(f"{label} crashed the server", [finding])
    if answer.status != 405:
        finding = ctx.fail("method_not_allowed_wrong", "medium" if answer.status < 300 else "low",
                           f"{label} answered {answer.status} instead of 405 Method Not Allowed"
                           + (": a method the API does not document was accepted" if answer.status < 300 else ""),
                           operation=label, evidence=[answer.evidence(note)], hint=HINTS["method_not_allowed_wrong"])
        return ctx.verdict(f"{label} answered {answer.status}", [finding])
    allow = next((v for k, v in answer.headers.items() if k.lower() == "allow"), None)
    if not allow:
        finding = ctx.fail("method_not_allowed_wrong", "low", f"{label} answered 405 but without the Allow header "
                           "that RFC 9110 requires: clients cannot learn which methods work.", operation=label,
                           evidence=[answer.evidence(note)], hint=HINTS["method_not_allowed_wrong"])
        return ctx.verdict(f"{label} answered 405 without Allow", [finding], score=0.5)
    return ctx.verdict(f"{label} answered 405, Allow: {allow}", evidence=[answer.evidence(note)])


# ---------------------------------------------------------------- bodies: content type and size


def _json_create(ctx: CheckContext) -> tuple[Operation, dict[str, str]] | None:
    """A POST without path parameters that takes a JSON object, and the credentials it needs."""
    for op in ctx.api.operations:
        if op.method != "POST" or "{" in op.path or not isinstance(op.request_schema, dict):
            continue
        if not (op.request_schema.get("properties") or op.request_schema.get("type") == "object"):
            continue
        if ctx.api.auth is not None and op in (ctx.api.auth.signup, ctx.api.auth.login):
            continue  # no throwaway accounts, and logins are rate limited
        headers = _credentials(ctx, op)
        if op.security and not headers:
            continue
        return op, headers
    return None


def _delete_created(ctx: CheckContext, op: Operation, answer: Exchange, headers: dict[str, str]) -> None:
    """An accepted probe created something: delete it when the API documents how."""
    body = answer.json()
    item_id = find_id(body if isinstance(body, dict) else None, "id")
    if item_id is None:  # a body cut at the scan limit (it echoes the 2 MiB field): the id is near the start
        match = _ID_IN_TEXT.search(answer.text[:SCAN_HEAD])
        item_id = match.group(1).strip('"') if match else None
    if item_id is None:
        return
    for other in ctx.api.operations:
        if other.method == "DELETE" and re.fullmatch(re.escape(op.path.rstrip("/")) + r"/\{[^}/]+\}/?", other.path):
            ctx.prober.request("DELETE", _fill(other.path, str(item_id)), headers=headers).source = "cleanup"
            return


@check("http.content_type", area="errors", title="A JSON operation refuses a body that is not declared as JSON",
       needs=("service", "spec"))
def content_type(ctx: CheckContext):
    found = _json_create(ctx)
    if found is None:
        return ctx.skip("no documented POST takes a JSON object without path parameters (or credentials could not "
                        "be obtained for it)")
    op, headers = found
    text = json.dumps(valid_example(op.request_schema, variant=3))
    answer = ctx.prober.request("POST", op.path, content=text, headers={**headers, "Content-Type": "text/plain"})
    note = "a schema-valid JSON body declared as text/plain: expected 415 (or 400/422)"
    if answer.status is None or answer.status >= 500:
        finding = ctx.fail("server_error", "high", f"{op.label} with a text/plain body got "
                           f"{answer.status or answer.error}.", operation=op.label, evidence=[answer.evidence(note)],
                           hint=HINTS["content_type_not_checked"])
        return ctx.verdict(f"{op.label} crashed on a text/plain body", [finding])
    if answer.status < 300:
        _delete_created(ctx, op, answer, headers)
        finding = ctx.fail("content_type_not_checked", "low", f"{op.label} accepted a body declared as text/plain "
                           f"({answer.status}): it parses JSON whatever the Content-Type says.", operation=op.label,
                           evidence=[answer.evidence(note)], hint=HINTS["content_type_not_checked"])
        return ctx.verdict(f"{op.label} accepted text/plain", [finding])
    return ctx.verdict(f"{op.label} refused a text/plain body with {answer.status}"
                       + ("" if answer.status == 415 else " (415 Unsupported Media Type says it most precisely)"),
                       evidence=[answer.evidence(note)])


def _oversized(schema: dict) -> tuple[str, str]:
    """A body shaped like a valid one, its first string field padded to OVERSIZED_BYTES; and the field name."""
    body = valid_example(schema, variant=4)
    body = body if isinstance(body, dict) else {}
    name = next((k for k, v in body.items() if isinstance(v, str)), None) or "padding"
    body[name] = "x" * OVERSIZED_BYTES
    return json.dumps(body), name


@check("http.oversized_body", area="errors", title="A 2 MiB request body is refused", needs=("service", "spec"))
def oversized_body(ctx: CheckContext):
    found = _json_create(ctx)
    if found is None:
        return ctx.skip("no documented POST takes a JSON object without path parameters (or credentials could not "
                        "be obtained for it)")
    op, headers = found
    text, name = _oversized(op.request_schema)
    answer = ctx.prober.request("POST", op.path, content=text, headers={**headers, "Content-Type": "application/json"})
    # The evidence keeps a description of the body, and a curl that builds the same body again.
    size = len(text.encode())
    answer.request_body = f"<{size} bytes of JSON: field {name!r} is {OVERSIZED_BYTES} 'x' characters>"
    prefix, _, suffix = text.partition("x" * OVERSIZED_BYTES)
    build = f"import sys; sys.stdout.write({prefix!r} + 'x' * {OVERSIZED_BYTES} + {suffix!r})"
    sent = "".join(f" -H {shlex.quote(f'{k}: {v}')}" for k, v in headers.items())
    answer.curl = (f"python3 -c {shlex.quote(build)} | curl -sS -i -X POST {shlex.quote(answer.url)} "
                   f"-H 'Content-Type: application/json' -H 'Expect:'{sent} --data-binary @-")
    note = f"a {size // 1024} KiB JSON body: expected 413 Payload Too Large (or another 4xx)"
    if answer.status is None:
        return ctx.verdict(f"{op.label}: the server closed the connection on a {size // 1024} KiB body without an "
                           "answer (refused; 413 would tell the client why)", evidence=[answer.evidence(note)])
    if answer.status >= 500:
        finding = ctx.fail("server_error", "high", f"{op.label} with a {size // 1024} KiB body got {answer.status}.",
                           operation=op.label, evidence=[answer.evidence(note)], hint=HINTS["oversized_body_accepted"])
        return ctx.verdict(f"{op.label} crashed on an oversized body", [finding])
    if answer.status < 300:
        _delete_created(ctx, op, answer, headers)
        finding = ctx.fail("oversized_body_accepted", "medium", f"{op.label} accepted a {size // 1024} KiB body "
                           f"({answer.status}) with a {OVERSIZED_BYTES // 1024} KiB `{name}`: nothing bounds what a "
                           "client may upload (OWASP API4:2023).", operation=op.label,
                           evidence=[answer.evidence(note)], hint=HINTS["oversized_body_accepted"])
        return ctx.verdict(f"{op.label} accepted an oversized body", [finding])
    return ctx.verdict(f"{op.label} refused a {size // 1024} KiB body with {answer.status}",
                       evidence=[answer.evidence(note)])


# ---------------------------------------------------------------- one error shape


# Django REST framework's documented error format is a pair: {"detail": "..."} for 404/405/415/parse errors, and
# for validation a map of field -> messages ({"title": ["This field is required."]}); one convention, so the map
# counts as the {detail} family (a subset of its shape).
FIELD_ERRORS = frozenset({"detail", "<field: [messages]>"})
_ENVELOPE_KEYS = {"error", "errors", "message", "messages", "detail", "details"}  # a list of messages, not a field


def _field_errors(body: dict) -> bool:
    """A validation error map: every key a field (or `non_field_errors`), every value its messages, or the field
    errors of a nested object (or of a list of them, `{}` for the valid ones)."""
    def messages(value: Any) -> bool:
        if isinstance(value, dict):
            return _field_errors(value)
        return isinstance(value, list) and bool(value) and all(
            isinstance(v, str) or (isinstance(v, dict) and (not v or _field_errors(v))) for v in value)

    return bool(body) and not body.keys() & _ENVELOPE_KEYS and all(messages(v) for v in body.values())


def error_shape(exchange: Exchange) -> frozenset[str] | None:
    """The shape of a JSON error body: its top-level keys, `problem` for RFC 9457, FIELD_ERRORS for a map of field
    messages; None when not a JSON error."""
    body = exchange.json()
    if body is None:
        return None
    if "problem+json" in exchange.content_type.lower() or (
            isinstance(body, dict) and {"title", "status"} <= body.keys() and body.keys() & {"type", "detail"}):
        return frozenset({"<rfc9457 problem>"})
    if isinstance(body, dict) and _field_errors(body):
        return FIELD_ERRORS
    if isinstance(body, dict):
        return frozenset(body.keys())
    return frozenset({f"<{type(body).__name__}>"})


def _families(shapes: Counter) -> list[list[frozenset[str]]]:
    """Shapes grouped when one's keys contain the other's ({error} and {error, details} are one family)."""
    groups: list[list[frozenset[str]]] = []
    for shape, _ in shapes.most_common():
        home = next((g for g in groups if any(shape <= s or s <= shape for s in g)), None)
        if home is None:
            groups.append([shape])
        else:
            home.append(shape)
    return groups


@check("http.error_shape", area="errors", title="Every JSON error has the same shape", needs=_NEEDS, order=100)
def error_shape_consistent(ctx: CheckContext):
    errors = [(e, error_shape(e)) for e in ctx.prober.exchanges
              if e.status is not None and e.status >= 400 and e.method != "HEAD" and e.body.strip()]
    errors = [(e, s) for e, s in errors if s is not None]
    if len(errors) < 2:
        return ctx.skip(f"{len(errors)} JSON error response(s) seen during the grade: nothing to compare")
    shapes = Counter(s for _, s in errors)
    families = _families(shapes)
    sizes = [sum(shapes[s] for s in family) for family in families]
    problem = any("<rfc9457 problem>" in s for s in shapes)
    described = [" | ".join("{" + ", ".join(sorted(s)) + "}" for s in family[:2]) for family in families]
    summary = (f"{len(errors)} JSON error responses seen, in {len(families)} shape(s): "
               + "; ".join(f"{d} ({n})" for d, n in zip(described, sizes))
               + ("; RFC 9457 problem details recognised" if problem else ""))
    examples = {}
    for exchange, shape in errors:
        family = next(i for i, f in enumerate(families) if shape in f)
        examples.setdefault(family, exchange)
    evidence: list[Evidence] = [examples[i].evidence(f"error shape {described[i]}") for i in sorted(examples)][:3]
    if len(families) == 1:
        return ctx.verdict(summary, evidence=evidence)
    finding = ctx.fail("error_shape_inconsistent", "low",
                       f"The API's errors come in {len(families)} shapes ("
                       + " vs ".join(described[:3]) + "): a client needs a different parser per error.",
                       evidence=evidence, hint=HINTS["error_shape_inconsistent"])
    return ctx.verdict(summary, [finding], evidence, score=sizes[0] / sum(sizes))


# ---------------------------------------------------------------- what the answers say about the stack

# `X-Powered-By: Express`, `Server: Werkzeug/3.0.1 Python/3.11.7`, `X-AspNet-Version: 4.0`: a free inventory of the
# stack for whoever looks for a known CVE. A bare `Server: uvicorn` names no version, so it passes.
_STACK_HEADERS: dict[str, re.Pattern[str] | None] = {"x-powered-by": None, "x-aspnet-version": None, "x-aspnetmvc-version": None,
                  "server": re.compile(r"/\s*\d|\b\d+\.\d+")}
_STACK_HINT = ("Do not advertise the stack in every answer: Express `app.disable('x-powered-by')` (or helmet()), "
               "gunicorn/uvicorn `--no-server-header` or a proxy that strips `Server`, Django/Flask behind a server "
               "that sends no version, ASP.NET `<httpRuntime enableVersionHeader=\"false\">`.")


@check("http.stack_disclosure", area="errors", title="Answers do not advertise the framework and its version",
       needs=_NEEDS, order=100)
def stack_disclosure(ctx: CheckContext):
    answered = [e for e in ctx.prober.exchanges if e.status is not None]
    if not answered:
        return ctx.skip("no answer of the API was seen during the grade")
    told: dict[str, Exchange] = {}
    for exchange in answered:
        for name, value in exchange.headers.items():
            key = name.lower()
            if key in _STACK_HEADERS and (_STACK_HEADERS[key] is None or _STACK_HEADERS[key].search(value)):
                told.setdefault(f"{name}: {value}", exchange)
    if not told:
        return ctx.verdict(f"none of the {len(answered)} answers seen carries X-Powered-By or a versioned Server "
                           "header", evidence=[answered[0].evidence("an answer's headers: no stack advertised")])
    first = next(iter(told.values()))
    finding = ctx.fail("stack_disclosed", "low",
                       f"answers carry {'; '.join(f'`{h}`' for h in list(told)[:3])}: every client, an attacker "
                       "looking for a known vulnerability included, is told the framework"
                       + (" and its version" if any(re.search(r"\d", h) for h in told) else "")
                       + " (OWASP API8:2023 Security Misconfiguration)",
                       operation=f"{first.method} {urlsplit(first.url).path}", hint=_STACK_HINT,
                       evidence=[e.evidence(f"the answer carries `{h}`") for h, e in list(told.items())[:2]])
    return ctx.verdict(f"answers advertise the stack ({', '.join(list(told)[:3])})", [finding], score=0.5)
