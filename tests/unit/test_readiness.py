"""Readiness: what counts as the API answering on a published port (real sockets on loopback)."""

from __future__ import annotations

import socket
import threading
import time

from portfolio_grader.runtime.docker import http_answers, wait_for_http


def _serve_raw(answer: bytes, hold: float = 0.0) -> tuple[int, threading.Event]:
    """A one-purpose TCP server on 127.0.0.1 that answers every connection with `answer`, then holds it open."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    stop = threading.Event()

    def run() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            with conn:
                conn.recv(1024)
                conn.sendall(answer)
                time.sleep(hold)
        listener.close()

    threading.Thread(target=run, daemon=True).start()
    return listener.getsockname()[1], stop


NODE_INSPECTOR = (b"HTTP/1.0 400 Bad Request\r\nContent-Type: text/html; charset=UTF-8\r\n\r\n"
                  b"WebSockets request was expected\r\n")


def test_a_node_inspector_port_is_not_the_api_but_any_http_answer_is():
    inspector, stop_inspector = _serve_raw(NODE_INSPECTOR)
    api, stop_api = _serve_raw(b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found")
    try:
        assert not http_answers(f"http://127.0.0.1:{inspector}/")
        assert http_answers(f"http://127.0.0.1:{api}/")
    finally:
        stop_inspector.set(), stop_api.set()


def test_the_wait_skips_the_debugger_port_and_takes_the_apps():
    inspector, stop_inspector = _serve_raw(NODE_INSPECTOR)
    api, stop_api = _serve_raw(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    try:
        found = wait_for_http(lambda: {9229: inspector, 3000: api}, "/", time.monotonic() + 5, lambda: None,
                              order=[9229, 3000])
        assert found == (3000, api)
    finally:
        stop_inspector.set(), stop_api.set()


def test_a_status_line_followed_by_a_body_that_never_ends_answers_at_once():
    port, stop = _serve_raw(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\nx", hold=5)
    try:
        started = time.monotonic()
        assert http_answers(f"http://127.0.0.1:{port}/", total=5)
        assert time.monotonic() - started < 4  # not the 5 s the body is held open
    finally:
        stop.set()
