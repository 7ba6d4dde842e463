"""The one HTTP client the checks use: bounded, pinned to the service under grade, and recording.

Every exchange is kept (bodies bounded) so that whole-grade checks, like the stack-trace scan,
see every response any check provoked, and every verdict can cite its request as a curl line.
"""

from __future__ import annotations

import json as jsonlib
import time
from http.cookiejar import CookieJar, DefaultCookiePolicy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from . import deadlines
from .evidence import make_evidence
from .models import Evidence

SCAN_LIMIT = 256 * 1024  # bytes of a response body kept for scanning
_UNSET: Any = object()


def _origin(url: str) -> tuple[str, str | None, int | None]:
    parts = urlsplit(url)
    return parts.scheme, parts.hostname, parts.port


class ProbeTargetError(ValueError):
    """A request aimed anywhere but the service under grade."""


@dataclass
class Exchange:
    """One request and its response (or the error instead of one)."""

    method: str
    url: str
    request_headers: dict[str, str]
    request_body: str | None
    status: int | None
    headers: dict[str, str]
    body: bytes  # at most SCAN_LIMIT bytes (a served spec: up to discover's MAX_SPEC_BYTES)
    elapsed_ms: float | None = None
    error: str | None = None
    truncated: bool = False
    source: str = "probe"  # "probe" or "schemathesis"
    curl: str | None = None
    secrets: tuple[str, ...] = ()  # values never shown in evidence (the manifest's admin password)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    @property
    def seconds(self) -> float:
        """How long the answer took (0 when unknown)."""
        return (self.elapsed_ms or 0.0) / 1000

    @property
    def content_type(self) -> str:
        return next((v for k, v in self.headers.items() if k.lower() == "content-type"), "")

    @property
    def is_json(self) -> bool:
        ct = self.content_type.lower()
        return "json" in ct

    def json(self) -> Any:
        """The parsed body, or None when it is not JSON."""
        try:
            return jsonlib.loads(self.body)
        except ValueError:
            return None

    def evidence(self, note: str | None = None, secrets: tuple[str, ...] = ()) -> Evidence:
        return make_evidence(
            self.method, self.url, self.request_headers, self.request_body, self.status, self.headers,
            self.body, elapsed_ms=self.elapsed_ms, error=self.error, note=note, secrets=(*self.secrets, *secrets),
            curl=self.curl,
        )


@dataclass
class Prober:
    """httpx with a deadline on every request, a bound on every body, and one allowed origin."""

    base_url: str
    timeout: float = 10.0
    secrets: tuple[str, ...] = ()
    exchanges: list[Exchange] = field(default_factory=list)
    max_exchanges: int = 5000
    on_exchange: Callable[[Exchange], None] | None = None  # told of every exchange recorded (grade -v shows them)
    _client: httpx.Client | None = None

    def __post_init__(self) -> None:
        self.base_url = self.base_url.rstrip("/")
        self._origin = _origin(self.base_url)

    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            # no cookie jar: a session cookie one answer set would go out with every later request, the
            # "anonymous" ones and the other user's included; credentials travel only as each request says
            self._client = httpx.Client(timeout=self.timeout, follow_redirects=False, trust_env=False,
                                        cookies=CookieJar(policy=_KeepNoCookies()))
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def url_for(self, path: str) -> str:
        url = urljoin(self.base_url + "/", path.lstrip("/")) if not path.startswith("http") else path
        if _origin(url) != self._origin:
            raise ProbeTargetError(f"refusing to send a request to {url}: only {self.base_url} is under grade")
        return url

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = _UNSET,
        content: str | bytes | None = None,
        headers: dict[str, str] | None = None,
        params: dict[str, Any] | None = None,
        read_limit: int = SCAN_LIMIT,
    ) -> Exchange:
        """One request to the service under grade; at most `read_limit` bytes of the body are read."""
        url = self.url_for(path)
        if params:
            url = str(httpx.URL(url, params=params))
        req_headers = dict(headers or {})
        body_text: str | None = None
        if json is not _UNSET:
            content = jsonlib.dumps(json)
            req_headers.setdefault("Content-Type", "application/json")
        if content is not None:
            body_text = content.decode("utf-8", errors="replace") if isinstance(content, bytes) else content
        # The stage's deadline (deadlines.within) caps every request; past it nothing more is sent.
        budget = deadlines.remaining()
        if budget is not None and budget <= 0:
            deadlines.mark_overrun()
            return Exchange(method.upper(), url, req_headers, body_text, None, {}, b"", 0.0,
                            error="not sent: the stage's deadline had passed")
        timeout = self.timeout if budget is None else max(0.05, min(self.timeout, budget))
        cut_by_stage = timeout < self.timeout
        for attempt in (1, 2):
            started = time.monotonic()
            deadline = started + timeout
            try:
                with self.client.stream(method, url, headers=req_headers, content=content, timeout=timeout) as response:
                    chunks, size, truncated = [], 0, False
                    for chunk in response.iter_bytes():
                        chunks.append(chunk)
                        size += len(chunk)
                        if size >= read_limit:
                            truncated = True
                            break
                        if time.monotonic() > deadline:  # a body that drips in slowly
                            truncated = True
                            if cut_by_stage:
                                deadlines.mark_overrun()
                            break
                    body = b"".join(chunks)[:read_limit]
                    exchange = Exchange(
                        method.upper(), url, req_headers, body_text, response.status_code, dict(response.headers),
                        body, (time.monotonic() - started) * 1000, truncated=truncated,
                    )
            except httpx.HTTPError as exc:
                if cut_by_stage and isinstance(exc, httpx.TimeoutException):
                    deadlines.mark_overrun()
                exchange = Exchange(
                    method.upper(), url, req_headers, body_text, None, {}, b"", (time.monotonic() - started) * 1000,
                    error=f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__,
                )
            # A server that answered 500 may close the kept-alive connection the next request goes out on:
            # that stale connection is the pool's, not the API's answer, so the request is sent once more.
            if not (attempt == 1 and (exchange.error or "").startswith("RemoteProtocolError")):
                break
        self.record(exchange)
        return exchange

    def record(self, exchange: Exchange) -> None:
        exchange.secrets = self.secrets
        if len(self.exchanges) < self.max_exchanges:
            self.exchanges.append(exchange)
        if self.on_exchange is not None:
            self.on_exchange(exchange)


class _KeepNoCookies(DefaultCookiePolicy):
    """A cookie policy that stores nothing: every Set-Cookie stays in its answer's headers, for who asked."""

    def set_ok(self, cookie, request) -> bool:
        return False
