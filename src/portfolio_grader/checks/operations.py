"""Small helpers the advanced and capstone probes share: operations named in the manifest or found by
their words, request bodies carrying a marker, values dug out of responses.

A marker is a unique string the grader puts in an object it creates, so that the object (or an
event about it) is unmistakable wherever it shows up again.
"""

from __future__ import annotations

import re
import secrets
from typing import Any
from urllib.parse import quote

from ..discover import PLUMBING
from ..identities import IdentityError
from ..models import Operation, Resource
from ..payloads import valid_example
from ..probe import Exchange
from .registry import CheckContext


def named_operation(ctx: CheckContext, label: str | None) -> Operation | None:
    """The documented operation a manifest line names ("POST /links"); None when absent or undocumented."""
    if not label:
        return None
    method, _, path = label.strip().partition(" ")
    wanted = f"{method.upper()} {path.strip()}"
    return next((op for op in ctx.api.operations if op.label == wanted), None) or (
        Operation(method=method.upper(), path=path.strip()) if path.strip().startswith("/") else None)


def path_params(path: str) -> list[str]:
    return re.findall(r"\{([^}/]+)\}", path)


def fill(template: str, *values: Any, **named: Any) -> str:
    """The path with its parameters filled: by name first, then in order."""
    queue = list(values)

    def value(match: re.Match) -> str:
        name = match.group(1)
        if name in named:
            return quote(str(named[name]), safe="")
        return quote(str(queue.pop(0) if queue else ""), safe="")

    return re.sub(r"\{([^}/]+)\}", value, template)


def send(ctx: CheckContext, method: str, path: str, **kwargs: Any) -> Exchange:
    """A request, sent once more when the server dropped a kept-alive connection without answering it: servers
    close the connection after an unhandled error, and the next request on it must not be charged to the probe
    that happens to send it (the request was never read, so sending it again cannot apply it twice)."""
    answer = ctx.prober.request(method, path, **kwargs)
    if answer.status is None and "Server disconnected without sending a response" in (answer.error or ""):
        answer = ctx.prober.request(method, path, **kwargs)
    return answer


def input_path(ctx: CheckContext, op: Operation) -> str:
    """The operation's path for a probe of one of its inputs: a user-named parameter holds user A's login
    (`/users/{username}/email`), any other "1"."""
    def fill(match: re.Match) -> str:
        if re.search(r"user|name|login|email", match.group(1), re.I) and ctx.api.auth is not None:
            try:
                return ctx.identities(1)[0].login_value
            except IdentityError:
                return "pg"
        return "1"

    return re.sub(r"\{([^}/]+)\}", fill, op.path)


def send_input(ctx: CheckContext, op: Operation, name: str, where: str, value: str, base: dict,
               headers: dict[str, str]) -> Exchange:
    """`op` with one input set to `value`: a query parameter of a GET (`where` "query"), or a field of the body
    `base` ("body")."""
    path = input_path(ctx, op)
    if where == "query":
        return send(ctx, "GET", path, params={name: value}, headers=headers)
    return send(ctx, op.method, path, json={**base, name: value}, headers=headers)


def get(ctx: CheckContext, path: str, **kwargs: Any) -> Exchange:
    return send(ctx, "GET", path, **kwargs)


def time_left() -> float | None:
    """Seconds left in the running stage's deadline, when one is in force."""
    try:
        from .. import deadlines

        return deadlines.remaining()
    except Exception:  # no deadline machinery: the check's own bounds hold
        return None


def ok(exchange: Exchange | None) -> bool:
    return exchange is not None and exchange.status is not None and 200 <= exchange.status < 300


def status_text(exchange: Exchange) -> str:
    return str(exchange.status) if exchange.status is not None else f"no answer ({exchange.error})"


def new_marker(ctx: CheckContext, what: str) -> str:
    return f"pg-{what}-{ctx.run_tag}{secrets.token_hex(3)}"


def marked_body(schema: dict | None, marker: str, variant: int = 0) -> Any:
    """A schema-valid body whose free-text string fields hold the marker (cut to their maxLength)."""
    body = valid_example(schema, variant=variant) if schema else {}
    if not isinstance(body, dict):
        return body
    props = (schema or {}).get("properties") or {}
    for name, sub in props.items():
        sub = sub or {}
        options = [s for s in sub.get("anyOf") or sub.get("oneOf") or [] if (s or {}).get("type") != "null"]
        sub = {**sub, **options[0]} if len(options) == 1 else sub  # `str | None` in pydantic
        free = (sub.get("type") == "string" and not sub.get("format") and not sub.get("enum")
                and not sub.get("pattern") and not sub.get("readOnly"))
        if free and name in body and (sub.get("maxLength") or 999) >= 12:
            body[name] = marker[: sub.get("maxLength") or len(marker)]
    return body


def dig(body: Any, dotted: str | None) -> Any:
    for part in (dotted or "").split("."):
        if not isinstance(body, dict) or not part:
            return None
        body = body.get(part)
    return body


def unwrap(body: Any) -> Any:
    """The object inside a `{"data": {...}}` envelope, else the body."""
    if isinstance(body, dict):
        for key in ("data", "result", "item"):
            if isinstance(body.get(key), dict) and len(body) <= 3:
                return body[key]
    return body


def first_field(body: Any, names: tuple[str, ...], kind: type | tuple[type, ...] = str) -> tuple[str, Any] | None:
    """(name, value) of the first of `names` present in the (unwrapped) object with a value of `kind`."""
    body = unwrap(body)
    if not isinstance(body, dict):
        return None
    lowered = {k.lower(): k for k in body}
    for name in names:
        key = lowered.get(name.lower())
        if key is not None and isinstance(body[key], kind) and not isinstance(body[key], bool) and body[key] != "":
            return key, body[key]
    return None


def numbers(body: Any, prefix: str = "", depth: int = 0) -> dict[str, float]:
    """Every numeric leaf of a JSON document by its dotted path (list items by index)."""
    out: dict[str, float] = {}
    if depth > 6:
        return out
    items = body.items() if isinstance(body, dict) else enumerate(body) if isinstance(body, list) else ()
    for key, value in items:
        path = f"{prefix}{key}"
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[path] = float(value)
        elif isinstance(value, (dict, list)):
            out.update(numbers(value, path + ".", depth + 1))
    return out


def data_resources(ctx: CheckContext) -> list[Resource]:
    """Top-level collections of the API's own data (not keys, webhooks, users or admin)."""
    return [r for r in ctx.api.resources if "{" not in r.collection and not PLUMBING.search(r.collection)]


def documented_header(op: Operation, pattern: str) -> str | None:
    """The name of a header parameter of the operation matching `pattern` (case-insensitive)."""
    return next((p.get("name") for p in op.parameters
                 if p.get("in") == "header" and re.search(pattern, str(p.get("name", "")), re.I)), None)
