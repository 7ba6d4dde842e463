"""Observations: what the grader noticed about the API's answers as a whole, in plain sentences.

A hostile or broken service (a redirect on every path, 50 MB bodies, bodies that drip in a byte a
second, binary garbage, a server that dies after its first answer) makes many checks end "not
evaluated" or fail for one shared reason. These notes put that reason at the top of the scorecard,
read from the exchanges the Prober recorded; nothing here sends a request.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

from .probe import SCAN_LIMIT, Exchange

MIN_EXCHANGES = 3  # fewer answers say nothing about the API as a whole


def _label(exchange: Exchange) -> str:
    parts = urlsplit(exchange.url)
    return f"{exchange.method} {parts.path or '/'}{'?' + parts.query if parts.query else ''}"


def _header(exchange: Exchange, name: str) -> str | None:
    return next((v for k, v in exchange.headers.items() if k.lower() == name), None)


def _is_utf8(body: bytes, cut: bool) -> bool:
    try:
        body.decode("utf-8")
        return True
    except UnicodeDecodeError as exc:
        return cut and exc.start >= len(body) - 3  # a multi-byte character cut at the read limit is fine


def notes(exchanges: Sequence[Exchange], request_timeout: float) -> list[str]:
    """Sentences for the scorecard's notes (empty for an ordinary API)."""
    answered = [e for e in exchanges if e.status is not None]
    out: list[str] = []

    redirects = [e for e in answered if e.status is not None and 300 <= e.status < 400]
    if len(answered) >= MIN_EXCHANGES and len(redirects) >= 0.8 * len(answered):
        first = redirects[0]
        target = _header(first, "location") or "(no Location)"
        loop = urlsplit(target).path in ("", urlsplit(first.url).path) if target != "(no Location)" else False
        out.append(
            f"the API answered {len(redirects)} of {len(answered)} requests with a redirect (e.g. {_label(first)} -> "
            f"{first.status} Location: {target[:200]}{', to itself: a redirect loop' if loop else ''}); the grader "
            "does not follow redirects, so most checks could not see the API itself"
        )

    big = [e for e in answered if e.truncated and len(e.body) >= SCAN_LIMIT]
    if big:
        example = big[0]
        length = _header(example, "content-length")
        out.append(
            f"{len(big)} response{'s were' if len(big) > 1 else ' was'} larger than {SCAN_LIMIT // 1024} KB; the "
            f"grader read only the first {SCAN_LIMIT // 1024} KB of each (e.g. {_label(example)}"
            f"{f', Content-Length {length}' if length else ''})"
        )

    slow = [e for e in answered if e.truncated and len(e.body) < SCAN_LIMIT]
    if slow:
        example = slow[0]
        seconds = example.seconds
        out.append(
            f"{len(slow)} response bod{'ies' if len(slow) > 1 else 'y'} arrived so slowly that the grader stopped "
            f"reading after its deadline (e.g. {_label(example)}: {len(example.body)} bytes in {seconds:.0f} s; the "
            f"request timeout is {request_timeout:g} s)"
        )

    binary = [e for e in answered if e.body and not _is_utf8(e.body, e.truncated)]
    if binary:
        example = binary[0]
        kind = _header(example, "content-type") or "no Content-Type"
        out.append(
            f"{len(binary)} response bod{'ies were' if len(binary) > 1 else 'y was'} not valid UTF-8 (binary or "
            f"mis-encoded, e.g. {_label(example)} with {kind[:80]}); the scorecard shows them with replacement "
            "characters"
        )

    if answered:
        last_ok = max(i for i, e in enumerate(exchanges) if e.status is not None)
        first_ok = min(i for i, e in enumerate(exchanges) if e.status is not None)
        after = [e for e in exchanges[first_ok:] if e.status is None and not (e.error or "").startswith("not sent")]
        if after and last_ok < len(exchanges) - 1 and len(after) >= MIN_EXCHANGES and \
                all(e.status is None for e in exchanges[last_ok + 1:]):
            count = sum(1 for e in exchanges[: last_ok + 1] if e.status is not None)
            out.append(
                f"the API stopped answering after {count} answered request{'s' if count != 1 else ''}: the "
                f"{len(exchanges) - last_ok - 1} requests after that got no response ({(after[-1].error or '')[:120]})"
            )
    return out
