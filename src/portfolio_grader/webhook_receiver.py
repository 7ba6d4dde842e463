"""A webhook receiver the grader hosts for the duration of one probe: it records every delivery.

The API under grade must be able to reach it, and nothing else should:
- an API in a container reaches the host as `host.docker.internal` (the runtime maps it to the
  engine's host gateway), so the receiver binds the Docker bridge's gateway address on the host —
  reachable from containers, not from the network outside;
- an API on the loopback (in-process tests, `--url http://127.0.0.1:...`) reaches it on 127.0.0.1.

Every delivery is kept with its headers and body (bounded), and the receiver can be told to answer
500 to the next deliveries, to see whether the API retries.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

MAX_DELIVERIES = 200
MAX_BODY = 256 * 1024
CONTAINER_HOST = "host.docker.internal"  # the name the runtime maps to the host gateway in every container


@dataclass(frozen=True)
class Delivery:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    received_at: float  # time.monotonic()
    answered: int  # the status the receiver gave

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers.items() if k.lower() == name.lower()), None)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


class _Handler(BaseHTTPRequestHandler):
    """The receiver's request handler: its answer to every request, and no log lines."""

    protocol_version = "HTTP/1.1"

    def _answer(self, status: int) -> None:
        body = b'{"received": true}' if status < 300 else b'{"error": "receiver said no"}'
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format, *args) -> None:  # the grader's output stays quiet
        pass


@dataclass
class WebhookReceiver:
    """An HTTP server on `bind` that records POSTs to /hooks/<token>/...; use as a context manager."""

    bind: str = "127.0.0.1"
    url_host: str | None = None  # the host name the API is given (default: the bind address)
    token: str = field(default_factory=lambda: secrets.token_hex(8))
    deliveries: list[Delivery] = field(default_factory=list)
    fetches: list[Delivery] = field(default_factory=list)  # GETs of its URLs: never deliveries, kept apart
    _fail: list[int] = field(default_factory=list)  # statuses to answer next, one per delivery
    _server: ThreadingHTTPServer | None = None
    _changed: threading.Condition = field(default_factory=threading.Condition)

    # ---- lifecycle
    def __enter__(self) -> WebhookReceiver:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        receiver = self

        class Handler(_Handler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                receiver._receive(self)

            do_PUT = do_PATCH = do_POST  # noqa: N815

            def do_GET(self) -> None:  # noqa: N802 - a URL check before saving a webhook, or a server-side fetch
                receiver._fetch(self)

            do_HEAD = do_GET  # noqa: N815

        self._server = ThreadingHTTPServer((self.bind, 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="webhook-receiver", daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    # ---- what the API is given
    @property
    def port(self) -> int:
        assert self._server is not None, "the receiver is not running"
        return self._server.server_address[1]

    def url(self, suffix: str = "") -> str:
        return f"http://{self.url_host or self.bind}:{self.port}/hooks/{self.token}{suffix}"

    # ---- control and reading
    def fail_next(self, count: int = 1, status: int = 500) -> None:
        """Answer `status` to the next `count` deliveries (the API should retry them)."""
        with self._changed:
            self._fail = [status] * count

    def received(self, since: float = 0.0) -> list[Delivery]:
        with self._changed:
            return [d for d in self.deliveries if d.received_at >= since]

    def fetched(self, since: float = 0.0) -> list[Delivery]:
        """The GET (and HEAD) requests made to the receiver's URLs, e.g. by an API fetching a client's URL."""
        with self._changed:
            return [d for d in self.fetches if d.received_at >= since]

    def wait(self, ready: Callable[[list[Delivery]], bool], timeout: float, since: float = 0.0) -> list[Delivery]:
        """Block until `ready(deliveries since)` holds or the timeout passes; the deliveries either way."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                got = [d for d in self.deliveries if d.received_at >= since]
                left = deadline - time.monotonic()
                if ready(got) or left <= 0:
                    return got
                self._changed.wait(min(left, 0.5))

    def _receive(self, request: _Handler) -> None:
        path = urlsplit(request.path).path
        if not path.startswith(f"/hooks/{self.token}"):
            request._answer(404)  # someone else's request: not recorded
            return
        body = _read_body(request)
        with self._changed:
            status = self._fail.pop(0) if self._fail else 200
            if len(self.deliveries) < MAX_DELIVERIES:
                self.deliveries.append(Delivery(request.command, path, dict(request.headers.items()), body,
                                                time.monotonic(), status))
            self._changed.notify_all()
        request._answer(status)

    def _fetch(self, request: _Handler) -> None:
        path = urlsplit(request.path).path
        ours = path.startswith(f"/hooks/{self.token}")
        if ours:
            with self._changed:
                if len(self.fetches) < MAX_DELIVERIES:
                    self.fetches.append(Delivery(request.command, path, dict(request.headers.items()), b"",
                                                 time.monotonic(), 200))
                self._changed.notify_all()
        request._answer(200 if ours else 404)


def _read_body(request: BaseHTTPRequestHandler) -> bytes:
    """The request body, bounded: Content-Length or chunked transfer encoding."""
    length = request.headers.get("Content-Length")
    if length is not None and length.isdigit():
        data = request.rfile.read(min(int(length), MAX_BODY))
        request.close_connection = int(length) > MAX_BODY or request.close_connection
        return data
    if "chunked" in (request.headers.get("Transfer-Encoding") or "").lower():
        chunks, size = [], 0
        while size <= MAX_BODY:
            line = request.rfile.readline(64).strip()
            chunk_size = int(line.split(b";")[0] or b"0", 16)
            if chunk_size == 0:
                request.rfile.readline(64)
                break
            chunks.append(request.rfile.read(chunk_size))
            request.rfile.readline(64)
            size += chunk_size
        return b"".join(chunks)[:MAX_BODY]
    return b""


def docker_bridge_gateway() -> str | None:
    """The host's address on Docker's default bridge: where `host-gateway` points containers to."""
    try:
        from .runtime.docker import connect_engine

        client = connect_engine()
        try:
            configs = (client.networks.get("bridge").attrs.get("IPAM") or {}).get("Config") or []
        finally:
            client.close()
        for config in configs:
            if config.get("Gateway") and ":" not in config["Gateway"]:
                return config["Gateway"]
            if config.get("Subnet") and ":" not in config["Subnet"]:  # engines that omit it use the first address
                import ipaddress

                return str(next(ipaddress.ip_network(config["Subnet"], strict=False).hosts()))
        return None
    except Exception:  # no engine, no bridge: the caller falls back to the loopback
        return None


def receiver_for(service_kind: str, base_url: str | None) -> tuple[WebhookReceiver | None, str]:
    """A receiver the API under grade can reach, and how it is reached; (None, why) when it cannot."""
    host = urlsplit(base_url or "").hostname or ""
    if service_kind in ("docker", "compose"):
        gateway = docker_bridge_gateway()
        if gateway and _bindable(gateway):
            return WebhookReceiver(bind=gateway, url_host=CONTAINER_HOST), (
                f"the grader's receiver listens on the Docker bridge gateway {gateway}, reached from the container "
                f"as {CONTAINER_HOST}")
        # Docker Desktop and similar: the gateway lives in a VM and forwards to the host's loopback
        return WebhookReceiver(bind="127.0.0.1", url_host=CONTAINER_HOST), (
            f"the grader's receiver listens on 127.0.0.1, reached from the container as {CONTAINER_HOST}")
    if host in ("127.0.0.1", "localhost", "::1") or host.startswith("127."):
        return WebhookReceiver(bind="127.0.0.1"), "the grader's receiver listens on 127.0.0.1 next to the API"
    return None, (f"the API runs at {host or 'an unknown host'}, which cannot reach a receiver on the grading "
                  "machine; grade the repository (not --url) to test webhooks")


def _bindable(address: str) -> bool:
    import socket

    try:
        with socket.socket() as probe:
            probe.bind((address, 0))
        return True
    except OSError:
        return False
