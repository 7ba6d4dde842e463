"""Fixtures shared by the test suites: in-process apps served on loopback for fast probe tests."""

from __future__ import annotations

import socket
import textwrap
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ENGINE_SUITES = ("e2e", "hostile")  # they build and run containers


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the groups
def pytest_collection_modifyitems(config, items):
    """With pytest-xdist (`-n 2 --dist loadgroup`, the README's test command) each Docker suite stays on one
    worker, its tests one after another as without xdist (they share builds and session fixtures: the graded
    samples, the hostile grades), while the in-process suites fill the other worker."""
    for item in items:
        suite = item.path.parent.name
        if suite in ENGINE_SUITES:
            item.add_marker(pytest.mark.xdist_group(f"engine-{suite}"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve_asgi(app) -> Iterator[str]:
    """Serve an ASGI app (FastAPI) with uvicorn in a thread; yields its base URL."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextmanager
def serve_wsgi(app) -> Iterator[str]:
    """Serve a WSGI app (Flask) with werkzeug in a thread; yields its base URL."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


@pytest.fixture
def serve():
    """serve(app) -> base URL; picks ASGI or WSGI by the app's type and stops it after the test."""
    stack = []

    def _serve(app) -> str:
        cm = serve_wsgi(app) if hasattr(app, "wsgi_app") or not _is_asgi(app) else serve_asgi(app)
        stack.append(cm)
        return cm.__enter__()

    yield _serve
    for cm in reversed(stack):
        cm.__exit__(None, None, None)


def _is_asgi(app) -> bool:
    import inspect

    call = getattr(app, "__call__", None)
    return inspect.iscoroutinefunction(app) or inspect.iscoroutinefunction(call)


def make_context(base_url: str | None, facts=None, **service_kw):
    """A CheckContext for a service at base_url, discovered the way the pipeline does it."""
    from portfolio_grader.checks import CheckContext, Settings
    from portfolio_grader.discover import discover
    from portfolio_grader.models import RepoFacts, RunningService, Source, Workspace
    from portfolio_grader.probe import Prober

    facts = facts or RepoFacts()
    prober = Prober(base_url) if base_url else None
    service = RunningService(kind="external", base_url=base_url, status="running" if base_url else "start_failed",
                             **service_kw)
    return CheckContext(workspace=Workspace(name="test", source=Source()), facts=facts, service=service,
                        api=discover(facts, prober), prober=prober, settings=Settings(max_examples=5))


def run(check_id: str, ctx):
    """Run one registered check the way the runner does (needs are honoured)."""
    from portfolio_grader.checks.registry import REGISTRY, import_builtin_checks, run_check

    import_builtin_checks()
    return run_check(REGISTRY[check_id], ctx)


def kinds(outcome) -> set[str]:
    return {f.kind for f in outcome.findings}


def write_files(root: Path, files: dict[str, str]) -> Path:
    """A repository in `root` holding `files` ({relative path: text, dedented}); returns root."""
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root
