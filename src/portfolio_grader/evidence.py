"""Turning HTTP exchanges into Evidence a learner can reproduce: excerpts, redaction, curl lines."""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable, Mapping
from typing import overload

from .models import Evidence, RequestRecord, ResponseRecord

BODY_EXCERPT = 2000  # characters of a body kept as evidence
_HEADERS_KEPT = {"content-type", "location", "allow", "retry-after", "www-authenticate", "content-length"}
_ALWAYS_SECRET = {"cookie", "set-cookie", "x-api-key"}
REDACTED = "[redacted]"


def decode_body(data: bytes | str | None, limit: int = BODY_EXCERPT) -> str | None:
    """A printable excerpt of a body: invalid UTF-8 is replaced, binary is summarised, length is bounded."""
    if data is None:
        return None
    if isinstance(data, str):
        text = data
    else:
        if b"\x00" in data[:1024]:
            return f"<{len(data)} bytes of binary data>"
        text = data.decode("utf-8", errors="replace")
    if len(text) > limit:
        return text[:limit] + f"... [{len(text) - limit} more characters]"
    return text


@overload
def redact(text: str, secrets: Iterable[str]) -> str: ...
@overload
def redact(text: str | None, secrets: Iterable[str]) -> str | None: ...
def redact(text: str | None, secrets: Iterable[str]) -> str | None:
    if text is None:
        return None
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, REDACTED)
    return text


def keep_headers(headers: Mapping[str, str], secrets: Iterable[str] = ()) -> dict[str, str]:
    """Response headers worth showing; cookies and API keys are never shown in full."""
    kept = {}
    for name, value in headers.items():
        low = name.lower()
        if low in _ALWAYS_SECRET:
            kept[name] = value[:12] + "..." if len(value) > 12 else value
        elif low in _HEADERS_KEPT or low.startswith(("x-ratelimit", "ratelimit", "access-control")):
            kept[name] = redact(value, secrets) or ""
    return kept


def curl_command(method: str, url: str, headers: Mapping[str, str] | None = None, body: str | None = None) -> str:
    """A shell-safe curl line that sends the same request."""
    parts = ["curl", "-sS", "-i", "-X", method.upper(), shlex.quote(url)]
    for name, value in (headers or {}).items():
        if name.lower() in {"host", "content-length", "accept-encoding", "connection", "user-agent"}:
            continue
        parts += ["-H", shlex.quote(f"{name}: {value}")]
    if body is not None:
        parts += ["--data-raw", shlex.quote(body)]
    return " ".join(parts)


def json_text(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def make_evidence(
    method: str,
    url: str,
    request_headers: Mapping[str, str] | None,
    request_body: str | None,
    status: int | None,
    response_headers: Mapping[str, str] | None,
    response_body: bytes | str | None,
    *,
    elapsed_ms: float | None = None,
    error: str | None = None,
    note: str | None = None,
    secrets: Iterable[str] = (),
    curl: str | None = None,
) -> Evidence:
    secrets = list(secrets)
    req_headers = {k: redact(v, secrets) or "" for k, v in (request_headers or {}).items()
                   if k.lower() not in {"host", "content-length", "accept-encoding", "connection", "user-agent"}}
    body = redact(decode_body(request_body), secrets)
    return Evidence(
        request=RequestRecord(method=method.upper(), url=url, headers=req_headers, body=body),
        response=ResponseRecord(
            status=status,
            headers=keep_headers(response_headers or {}, secrets),
            body=redact(decode_body(response_body), secrets),
            elapsed_ms=round(elapsed_ms, 1) if elapsed_ms is not None else None,
            error=error,
        ),
        curl=redact(curl, secrets) if curl else curl_command(method, url, req_headers, body),
        note=note,
    )
