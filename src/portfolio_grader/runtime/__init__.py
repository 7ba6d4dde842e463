"""runtime: turn a workspace into a running API (Docker image, compose stack, or a live URL).

`start(...)` is a context manager yielding a ServiceHandle; leaving it removes everything it
created (containers, networks, volumes, images it tagged), whatever happened inside.

    with runtime.start(workspace, facts, RuntimeOptions(run_id="ab12cd")) as handle:
        if handle.service.up:
            ...  # probe handle.service.base_url
        logs = handle.logs()

Which path runs:
- `url` given -> external.py: a live deployment, nothing is built;
- `facts.compose_file` -> compose.py (a rewritten, sandboxed copy of the learner's compose file);
- `facts.dockerfile` -> docker.py (one sandboxed container);
- neither -> a `not_started` service that says why.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from ..models import LogTail, RunningService

if TYPE_CHECKING:  # pragma: no cover
    from ..models import RepoFacts, Workspace


class RuntimeUnavailable(RuntimeError):
    """No Docker engine can be reached: the grade cannot happen at all (exit 2)."""


@dataclass(frozen=True)
class RuntimeOptions:
    run_id: str  # unique per grade: names containers, compose projects, image tags
    build_timeout: float = 900.0
    start_timeout: float = 90.0  # from `docker run` to the first HTTP answer
    memory: str = "1g"
    cpus: float = 1.0
    pids: int = 256
    label: str = "portfolio-grader"  # every object the grader creates carries this label
    read_only: bool = True  # read-only root filesystem, tmpfs /tmp (containers and the services a stack builds from the repo; writable again, once, if the app needs it)
    tmpfs_size: str = "256m"
    egress: bool = False  # a route out at run time (off: the container's network does not masquerade)
    ends: float | None = None  # time.monotonic() when the whole grade must be over

    def start_budget(self) -> float:
        """Seconds to wait for the first HTTP answer: the start deadline, capped by what the grade has left."""
        if self.ends is None:
            return self.start_timeout
        return max(1.0, min(self.start_timeout, self.ends - time.monotonic()))


class ServiceHandle(Protocol):
    service: RunningService
    api_context: Path | None  # the folder the API's image was built from (None: nothing was built)
    notes: list[str]  # what the sandbox did to run it (egress, a writable root, PORT), for the scorecard
    read_only: bool  # does the API run on a read-only root now

    def timed_out(self) -> bool:
        """Did the build or the start run out of its deadline (rather than fail)?"""

    def limit_notes(self) -> list[str]:
        """What the sandbox's limits did to the API while it was graded (memory, pids, CPU throttling)."""

    def alive(self) -> bool:
        """Is the API container still running?"""

    def exec(self, command: str, timeout: float = 120.0) -> tuple[int, str]:
        """Run `sh -c command` inside the API container (setup steps, migrations): (exit code, output); 124 when it
        did not finish within `timeout` s, 125 when there is no running API container."""

    def api_log(self, timestamps: bool = False, tail: int = 400) -> str:
        """The API container's latest log lines now ('' without one); `timestamps` prefixes docker's to each."""

    def restart_writable(self, line: str, when: str) -> list[str]:
        """The API came up on a read-only root and later wrote to it (`line`, `when`): run it again writable (its
        state is lost; `service` is the new one) and return the scorecard's notes; [] when nothing ran read-only."""

    def logs(self) -> list[LogTail]:
        """Build log and container log tails, collected as late as possible."""


# ---------------------------------------------------------------- shared helpers

LOG_TAIL_LINES = 200
LOG_TAIL_BYTES = 20_000


def labels_for(options: RuntimeOptions) -> dict[str, str]:
    """The labels every object of this grade carries (sweeps filter on the `.run` one)."""
    return {options.label: "1", f"{options.label}.run": options.run_id}


def tail_log(name: str, text: str, *, lines: int = LOG_TAIL_LINES, max_bytes: int = LOG_TAIL_BYTES) -> LogTail:
    """The last `lines` lines / `max_bytes` bytes of `text`, `truncated` when something was cut."""
    text = text or ""
    truncated = False
    parts = text.splitlines()
    if len(parts) > lines:
        parts = parts[-lines:]
        truncated = True
    out = "\n".join(parts)
    encoded = out.encode("utf-8", "replace")
    if len(encoded) > max_bytes:
        out = encoded[-max_bytes:].decode("utf-8", "ignore")
        # start on a whole line when one is available
        cut = out.find("\n")
        if 0 <= cut < len(out) - 1:
            out = out[cut + 1 :]
        truncated = True
    return LogTail(name=name, text=out, truncated=truncated)


class NoServiceHandle:
    """The handle of a grade whose service never started (nothing to run, refused, ...)."""

    def __init__(self, service: RunningService, extra_logs: list[LogTail] | None = None) -> None:
        self.service = service
        self.api_context: Path | None = None
        self.notes: list[str] = []
        self.read_only = False
        self._logs = list(extra_logs or service.logs)

    def alive(self) -> bool:
        return False

    def timed_out(self) -> bool:
        return False

    def limit_notes(self) -> list[str]:
        return []

    def exec(self, command: str, timeout: float = 120.0) -> tuple[int, str]:
        return 125, f"no API container to run `{command}` in: {self.service.detail or self.service.status}"

    def api_log(self, timestamps: bool = False, tail: int = 400) -> str:
        return ""

    def restart_writable(self, line: str, when: str) -> list[str]:
        return []

    def logs(self) -> list[LogTail]:
        return list(self._logs)


# ---------------------------------------------------------------- the stage


@contextmanager
def start(
    workspace: Workspace,
    facts: RepoFacts,
    options: RuntimeOptions,
    url: str | None = None,
) -> Iterator[ServiceHandle]:
    """Build and run the submission (or reach a live URL); remove everything on the way out.

    Raises RuntimeUnavailable when a Docker engine (or Compose) is needed and cannot be used.
    """
    if url is not None:
        from .external import run_external

        with run_external(url, options, facts.manifest) as handle:
            yield handle
        return

    root = facts.root or workspace.path
    if root is None or not (facts.compose_file or facts.dockerfile):
        yield NoServiceHandle(
            RunningService(
                kind="none", status="not_started", detail="no Dockerfile or compose file in the repository"
            )
        )
        return

    from . import compose as compose_mod
    from . import compose_tool
    from . import docker as docker_mod

    plan = None
    fallback_note = ""
    if facts.compose_file:
        plan = compose_mod.prepare(workspace, facts, options)
        if plan.refusal is None and plan.api_service is None and facts.dockerfile:
            fallback_note = (
                f"{facts.compose_file} has no service that looks like the API (only "
                f"{', '.join(plan.service_names) or 'nothing'}), so the Dockerfile was run alone"
            )
            plan = None
        elif plan.refusal is None and compose_tool.detect_compose() is None and facts.dockerfile:
            fallback_note = "Docker Compose is not installed on the grading machine, so the Dockerfile was run alone"
            plan = None

    if plan is not None and plan.refusal is not None:  # refused: nothing is started, no engine needed
        with compose_mod.run_stack(None, workspace, facts, options, plan) as handle:
            yield handle
        return

    client = docker_mod.connect_engine()  # RuntimeUnavailable when no engine answers
    try:
        if plan is not None:
            with compose_mod.run_stack(client, workspace, facts, options, plan) as handle:
                yield handle
        else:
            with docker_mod.run_container(client, workspace, facts, options, note=fallback_note) as handle:
                yield handle
    finally:
        try:
            client.close()
        except Exception:  # pragma: no cover - closing a client never matters
            pass


def cleanup(run_id: str, label: str = "portfolio-grader") -> list[str]:
    """Remove whatever a grade with this run id left behind (a killed grader never ran its `finally`).

    Finds containers, networks, volumes and images by the run label and the compose project
    `pg-<run_id>`; returns what it removed. Raises RuntimeUnavailable without an engine.
    """
    from . import compose_rewrite
    from . import docker as docker_mod

    client = docker_mod.connect_engine()
    try:
        options = RuntimeOptions(run_id=run_id, label=label)
        return docker_mod.sweep(client, options, project=compose_rewrite.project_name(run_id))
    finally:
        client.close()


def cleanup_all(label: str = "portfolio-grader") -> list[str]:
    """Remove every container, network, volume and image carrying the grader's label, whichever grade made it.

    For `portfolio-grader cleanup` after a grader was killed (SIGKILL, a lost machine). Do not run it while
    other grades are running on the same engine: their objects carry the label too.
    Raises RuntimeUnavailable without an engine.
    """
    from . import docker as docker_mod

    client = docker_mod.connect_engine()
    try:
        return docker_mod.sweep_all(client, label)
    finally:
        client.close()


__all__ = [
    "cleanup",
    "cleanup_all",
    "LogTail",
    "NoServiceHandle",
    "RuntimeOptions",
    "RuntimeUnavailable",
    "RunningService",
    "ServiceHandle",
    "labels_for",
    "start",
    "tail_log",
]
