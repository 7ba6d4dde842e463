"""A live deployment: nothing is built or started, the grader only checks that it answers HTTP.

Free hosting tiers sleep and take tens of seconds to wake, so the first answer is awaited up
to options.start_timeout. Any HTTP status counts as an answer.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httpx

from ..models import LogTail, RunningService
from . import RuntimeOptions

if TYPE_CHECKING:  # pragma: no cover
    from ..models import Manifest

RETRY_INTERVAL = 2.0
CONNECT_GRACE = 10.0  # seconds a refused connection is tried again (a deployment restarting) before giving up


def _describe(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {' '.join(text.split())[:200]}"


def normalise_url(url: str) -> str | None:
    """`https://api.example.com/` -> `https://api.example.com`; None when it is not an http(s) URL."""
    url = (url or "").strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return url.rstrip("/") if parts.path not in ("", "/") else f"{parts.scheme}://{parts.netloc}"


def first_answer(url: str, timeout: float, interval: float = RETRY_INTERVAL) -> tuple[int | None, str]:
    """(status of the first HTTP answer, "") or (None, the last error) once `timeout` has passed."""
    deadline = time.monotonic() + max(timeout, 0.1)
    last = "no attempt"
    with httpx.Client(timeout=httpx.Timeout(15.0, connect=10.0), follow_redirects=False) as client:
        while True:
            remaining = deadline - time.monotonic()
            try:
                # the status line is the answer: a body that is huge or drips in is never read
                with client.stream("GET", url, timeout=httpx.Timeout(max(min(15.0, remaining), 1.0))) as response:
                    return response.status_code, ""
            except httpx.HTTPError as exc:
                last = _describe(exc)
            if time.monotonic() + interval >= deadline:
                return None, last
            time.sleep(interval)


def unreachable(url: str, grace: float | None = None) -> str | None:
    """Why nothing could answer at `url` (its host does not resolve, nothing accepts a TCP connection for `grace`
    seconds), or None once a connection is accepted. A sleeping free-tier host accepts the connection and answers
    late: that is waited for by `first_answer`, not refused here."""
    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        return f"{host} does not resolve ({exc})"
    grace = CONNECT_GRACE if grace is None else grace
    deadline, last = time.monotonic() + grace, "no attempt"
    while True:
        for family, kind, proto, _, address in addresses:
            try:
                with socket.socket(family, kind, proto) as sock:
                    sock.settimeout(5.0)
                    sock.connect(address)
                    return None
            except OSError as exc:
                last = exc.strerror or type(exc).__name__
        if time.monotonic() + 1.0 >= deadline:
            return f"nothing accepts connections at {host}:{port} ({last.lower()}, tried for {grace:g} s)"
        time.sleep(1.0)


class ExternalHandle:
    def __init__(self, service: RunningService) -> None:
        self.service = service
        self.api_context = None  # nothing is built for a live deployment
        self.notes: list[str] = []
        self.read_only = False  # its filesystem is not the grader's

    def timed_out(self) -> bool:
        return False  # a deployment that does not answer is said in one line and the grade exits 2

    def limit_notes(self) -> list[str]:
        return []

    def alive(self) -> bool:
        if not self.service.base_url:
            return False
        status, _ = first_answer(self.service.base_url, timeout=10.0, interval=1.0)
        return status is not None

    def exec(self, command: str, timeout: float = 120.0) -> tuple[int, str]:
        return 125, f"cannot run `{command}`: a live deployment has no container the grader can enter"

    def api_log(self, timestamps: bool = False, tail: int = 400) -> str:
        return ""  # a deployment's log is not the grader's to read

    def restart_writable(self, line: str, when: str) -> list[str]:
        return []  # nor is its filesystem

    def logs(self) -> list[LogTail]:
        return []


@contextmanager
def run_external(url: str, options: RuntimeOptions, manifest: Manifest | None = None) -> Iterator[ExternalHandle]:
    base = normalise_url(url)
    if base is None:
        yield ExternalHandle(
            RunningService(kind="external", status="start_failed", detail=f"{url!r} is not an http:// or https:// URL")
        )
        return
    path = (manifest.health if manifest and manifest.health else "") or ""
    probe = base + (path if path.startswith("/") or not path else "/" + path)
    budget = options.start_budget()
    status, error = first_answer(probe, budget)
    if status is None:
        service = RunningService(
            kind="external",
            base_url=base,
            status="start_failed",
            detail=f"no HTTP answer from {probe} within {int(budget)} s ({error})",
        )
    else:
        service = RunningService(
            kind="external", base_url=base, status="running", detail=f"the deployment answered (HTTP {status})"
        )
    yield ExternalHandle(service)
