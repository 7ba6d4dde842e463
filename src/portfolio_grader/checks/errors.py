"""Error handling: bad input gets a 4xx JSON error, never a 5xx, a stack trace or an HTML page."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from ..models import CheckOutcome, Finding, Operation
from ..payloads import invalid_types
from ..probe import Exchange
from .registry import CheckContext, check

MAX_OPERATIONS = 5
MAX_FINDINGS = 5

# Tracebacks of the common stacks, also when JSON-escaped inside a string ("File \"/app/x.py\", line 3").
STACK_TRACE = re.compile(
    r"Traceback \(most recent call last\)"
    r"|File \\?\"[^\"\\]+\\?\", line \d+, in "
    r"|(?:^|\\n|\n)\s*at [^\n()]{1,160} \([^\n()]*:\d+:\d+\)"
    r"|(?:&nbsp;\s*)+at [^<(]{1,160} \("
    r"|node:internal/"
    r"|\bat [\w$]+(?:\.[\w$]+)+\([\w$]+\.(?:java|kt|scala):\d+\)"
    r"|Exception Value:|You're seeing this error because you have <code>DEBUG = True"
    r"|Werkzeug Debugger|werkzeug\.exceptions\.\w+|\.rb:\d+:in `|PHP (?:Fatal|Parse) error|Stack trace:\s*(?:\\n|\n)\s*#0 "
    r"|System\.\w+Exception:.*(?:\\n|\n)\s+at ",
    re.MULTILINE,
)
_MALFORMED = '{"title": "unterminated", '


def _json_body_operations(ctx: CheckContext) -> tuple[list[Operation], dict[str, str]]:
    """Operations with a JSON body and no path parameters (no existing object needed), and the credentials
    to send: secured operations are included when a test user could log in."""
    headers = ctx.auth_headers() if any(op.security for op in ctx.api.operations) else {}
    ops = [op for op in ctx.api.operations if op.method in ("POST", "PUT", "PATCH") and op.request_schema
           and "{" not in op.path and (headers or not op.security)]
    return ops[:MAX_OPERATIONS], headers


def _judge_bad_input(ctx: CheckContext, op: Operation, exchange: Exchange, what: str) -> Finding | None:
    label = op.label
    if exchange.status is None:
        return ctx.fail("server_error", "high", f"{label} with {what}: no answer ({exchange.error}).",
                        operation=label, evidence=[exchange.evidence(f"{what}: expected a 4xx JSON error")],
                        hint="A bad request must never hang or kill the server.")
    if exchange.status >= 500:
        return ctx.fail("server_error", "high", f"{label} with {what} crashed the handler: {exchange.status}.",
                        operation=label, evidence=[exchange.evidence(f"{what}: expected 400 or 422")],
                        hint="Validate and parse input before using it: FastAPI/pydantic models, Flask "
                             "`request.get_json(silent=True)` plus a schema (marshmallow, pydantic), Express "
                             "`express.json()` with an error handler that answers 400 JSON.")
    if exchange.status < 400:
        return ctx.fail("negative_data_accepted", "medium", f"{label} accepted {what} with {exchange.status}.",
                        operation=label, evidence=[exchange.evidence(f"{what}: expected 400 or 422")],
                        hint="Reject input that does not match the documented schema with 400/422 and say which "
                             "field is wrong; never store it.")
    if exchange.body and not exchange.is_json:
        return ctx.fail("non_json_error", "low", f"{label} answered {what} with a {exchange.status} that is not "
                        f"JSON ({exchange.content_type or 'no content type'}).", operation=label,
                        evidence=[exchange.evidence("an API error should be JSON")],
                        hint="Register error handlers that answer JSON, e.g. {\"detail\": \"...\"} or RFC 9457 "
                             "application/problem+json, for 400, 404, 405, 422 and 500.")
    return None


def _send_bad_input(ctx: CheckContext, ops: list[Operation], what: str, send) -> CheckOutcome:
    """Send each operation a bad body (`send(op) -> Exchange`) and judge the answers."""
    findings, evidence = [], []
    for op in ops:
        exchange = send(op)
        evidence.append(exchange.evidence(what))
        finding = _judge_bad_input(ctx, op, exchange, what)
        if finding:
            findings.append(finding)
    return ctx.verdict(f"sent {what} to {len(ops)} operation(s)", findings, evidence,
                       score=1 - len(findings) / len(ops))


@check("errors.malformed_json", area="errors", title="Malformed JSON gets a 4xx JSON error",
       needs=("service", "spec"))
def malformed_json(ctx: CheckContext):
    ops, headers = _json_body_operations(ctx)
    if not ops:
        return ctx.skip("no documented operation takes a JSON body without path parameters (or credentials "
                        "could not be obtained for the secured ones)")
    return _send_bad_input(ctx, ops, "a truncated JSON body", lambda op: ctx.prober.request(
        op.method, op.path, content=_MALFORMED, headers={**headers, "Content-Type": "application/json"}))


@check("errors.wrong_types", area="errors", title="Fields of the wrong type are rejected with a 4xx",
       needs=("service", "spec"))
def wrong_types(ctx: CheckContext):
    candidates, headers = _json_body_operations(ctx)
    ops = [op for op in candidates if invalid_types(op.request_schema)]
    if not ops:
        return ctx.skip("no documented JSON body with typed properties to send wrong types to")
    return _send_bad_input(ctx, ops, "every field of the wrong JSON type", lambda op: ctx.prober.request(
        op.method, op.path, json=invalid_types(op.request_schema), headers=headers))


def _route_of(exchange: Exchange) -> str:
    """METHOD /path with ids blanked, to report one finding per route rather than per request."""
    path = urlsplit(exchange.url).path
    path = re.sub(r"/(\d+|[0-9a-f-]{16,}|portfolio-grader-missing)(?=/|$)", "/{id}", path)
    return f"{exchange.method} {path}"


@check("errors.no_stack_traces", area="errors", title="No response leaks a stack trace",
       needs=("service",), order=100)
def no_stack_traces(ctx: CheckContext):
    leaks: dict[str, tuple[Exchange, str]] = {}
    for exchange in ctx.prober.exchanges:
        match = STACK_TRACE.search(exchange.text) if exchange.body else None
        if match and _route_of(exchange) not in leaks:
            leaks[_route_of(exchange)] = (exchange, match.group(0).strip())
    scanned = len(ctx.prober.exchanges)
    findings = [
        ctx.fail("stack_trace_leak", "high", f"{route} answered with a stack trace ({snippet[:60]!r}): it shows "
                 "attackers file paths, library versions and code.", operation=route,
                 evidence=[exchange.evidence("the body contains a stack trace")],
                 hint="Never return exception details to clients: log them server-side and answer a generic JSON "
                      "error (FastAPI/Starlette exception handlers, Flask errorhandler(Exception), Express error "
                      "middleware); turn debug mode off in the container.")
        for route, (exchange, snippet) in list(leaks.items())[:MAX_FINDINGS]
    ]
    errors = sorted((e for e in ctx.prober.exchanges if e.status and e.status >= 400), key=lambda e: -e.status)
    return ctx.verdict(f"scanned {scanned} responses seen during the grade", findings,
                       evidence=[e.evidence("an error response, without a stack trace") for e in errors[:2]],
                       score=0.0 if findings else 1.0)


@check("errors.json_errors", area="errors", title="Error responses are JSON", needs=("service",), order=100)
def json_errors(ctx: CheckContext):
    errors = [e for e in ctx.prober.exchanges
              if e.status is not None and e.status >= 400 and e.source != "discover" and e.method != "HEAD"]
    if not errors:
        return ctx.skip("no error response was seen during the grade")
    bad: dict[str, Exchange] = {}
    for exchange in errors:
        if exchange.body.strip() and not exchange.is_json:
            bad.setdefault(f"{_route_of(exchange)} -> {exchange.status}", exchange)
    findings = [
        ctx.fail("non_json_error", "low", f"{route} answered with {exchange.content_type or 'no content type'}, "
                 "not JSON: clients cannot parse the error.", operation=route.split(" -> ")[0],
                 evidence=[exchange.evidence("an error response that is not JSON")],
                 hint="Answer every error with JSON (a {\"detail\": ...} object or application/problem+json) — "
                      "including the framework's own 404/405/500 pages, which need explicit handlers in Flask and "
                      "Express.")
        for route, exchange in list(bad.items())[:MAX_FINDINGS]
    ]
    json_share = 1 - sum(1 for e in errors if e.body.strip() and not e.is_json) / len(errors)
    return ctx.verdict(f"{len(errors)} error responses seen, {json_share:.0%} of them JSON", findings,
                       evidence=[errors[0].evidence("an error response seen during the grade")], score=json_share)
