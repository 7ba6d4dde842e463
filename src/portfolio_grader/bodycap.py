"""A bound on every response body Schemathesis reads: size and time, like the Prober's.

Schemathesis 4.32.5 (pinned) reads each body whole (`transport.requests._request` -> `response.content`),
so a hostile API answering 50 MB bodies, or one that drips a byte a second forever, would hold the
grader's memory or its contract run hostage. `install()` wraps that one function: the session it is
handed returns responses whose body stream stops after MAX_BODY bytes or once the request's timeout
has passed in total. What was read is judged as usual; the evidence says the body was cut.
"""

from __future__ import annotations

import time
from typing import Any

MAX_BODY = 1 << 20  # bytes: four times what the Prober keeps, enough for any schema check
_MARK = "_portfolio_grader_capped"


def cap(response: Any, timeout: Any = None, **_: Any) -> Any:
    """Make `response` stop reading its body at MAX_BODY bytes or `timeout` seconds (a requests hook)."""
    limit = timeout[-1] if isinstance(timeout, tuple) else timeout
    deadline = time.monotonic() + float(limit) if limit else None
    raw = getattr(response, "raw", None)
    stream = getattr(raw, "stream", None)
    if raw is None or stream is None or getattr(stream, _MARK, False):
        return response

    read1 = getattr(raw, "read1", None)

    def pieces(amt: int, decode_content: Any):
        if read1 is None:
            yield from stream(amt, decode_content=decode_content)
            return
        while True:  # read1 returns what has arrived: a drip is seen byte by byte, not after `amt` bytes
            chunk = read1(amt, decode_content=decode_content)
            if not chunk:
                return
            yield chunk

    def capped(amt: int = 2**16, decode_content: Any = None):
        total = 0
        for chunk in pieces(amt, decode_content):
            total += len(chunk)
            yield chunk
            if total >= MAX_BODY or (deadline is not None and time.monotonic() > deadline):
                setattr(response, _MARK, True)
                try:
                    raw.close()  # the rest is never read; the connection is not reused
                except Exception:
                    pass
                return

    setattr(capped, _MARK, True)
    raw.stream = capped
    return response


class _CappedSession:
    """A requests.Session stand-in whose responses stop reading at the size and time bounds."""

    def __init__(self, session: Any) -> None:
        self._session = session

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)

    def request(self, *args: Any, **kwargs: Any) -> Any:
        return cap(self._session.request(*args, **kwargs), kwargs.get("timeout"))


def install() -> None:
    """Bound Schemathesis' response bodies for the rest of the process (idempotent)."""
    try:
        from schemathesis.engine import context
        from schemathesis.transport import requests as transport
    except ImportError:  # pragma: no cover - Schemathesis is a dependency
        return
    original = transport._request
    if getattr(original, _MARK, False):
        return

    def _request(session: Any, data: dict[str, Any], max_stream_events: int) -> Any:
        # a duck-typed stand-in for the requests.Session Schemathesis annotates
        return original(_CappedSession(session), data, max_stream_events)  # type: ignore[arg-type]

    make_session = context.make_session

    def capped_session(*args: Any, **kwargs: Any) -> Any:  # the engine's probes send through these sessions
        session = make_session(*args, **kwargs)
        session.hooks.setdefault("response", []).append(cap)
        return session

    setattr(_request, _MARK, True)
    transport._request = _request
    context.make_session = capped_session
