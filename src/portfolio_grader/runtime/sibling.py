"""A one-off container beside the API's: the same image, the same limits, no network, a deadline.

The project's own tests run here (the repo.tests check). The limits, the user, the working folder, the
environment and the grader's run labels are read from the API container itself, so whatever the grade's
sandbox was (docker run or a compose service), the sibling gets the same: memory, CPU and pid limits, every
capability dropped, no-new-privileges. It differs in two ways, on purpose: it has no network at all (tests
need none; a test that calls out fails the same way on a reviewer's laptop with the wifi off), and its root
filesystem is writable (test runners write caches and SQLite files next to the code; the container is
removed when the command ends). The entrypoint is replaced by the command, so an entrypoint script that
migrates a database or starts a server does not run. Removed on success, failure, timeout or Ctrl-C; the
run label also puts it in the grade's final sweep.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from . import sandbox


@dataclass(frozen=True)
class OneOff:
    """What the command did: its exit code (None when it did not finish), the last of its output, its time."""

    exit_code: int | None
    output: str
    seconds: float
    timed_out: bool = False
    error: str = ""  # the engine refused to create or start it (no such image, no such executable)


_GRADER_LABEL = "portfolio-grader"
OUTPUT_BYTES = 200_000  # the log tail read back (a test run that prints megabytes keeps its end)


def run_beside(api_container: str, argv: list[str], *, timeout: float, env: dict[str, str] | None = None,
               client: Any = None) -> OneOff:
    """Run `argv` in a new container of the API container's image, sandboxed like it; wait at most `timeout` s."""
    from .docker import connect_engine, shield_interrupts

    own = client is None
    client = client or connect_engine()
    started = time.monotonic()
    container = None
    try:
        try:
            api = client.containers.get(api_container)
        except Exception as exc:
            return OneOff(None, "", 0.0, error=f"the API container is gone: {_short(exc)}")
        config, host = api.attrs.get("Config") or {}, api.attrs.get("HostConfig") or {}
        labels = {k: v for k, v in (config.get("Labels") or {}).items() if k.startswith(_GRADER_LABEL)}
        environment = dict(str(e).partition("=")[::2] for e in config.get("Env") or [])
        environment.update(env or {})
        try:
            container = client.containers.create(
                api.attrs.get("Image") or api.image.id,
                entrypoint=[argv[0]],
                command=list(argv[1:]),
                name=f"{api.name}-tests-{int(started * 1000) % 100000}",
                labels=labels,
                environment=environment,
                working_dir=config.get("WorkingDir") or None,
                user=config.get("User") or None,
                network_mode="none",
                mem_limit=host.get("Memory") or "1g",
                nano_cpus=host.get("NanoCpus") or int(1e9),
                pids_limit=host.get("PidsLimit") or 256,
                cap_drop=["ALL"],
                security_opt=["no-new-privileges"],
                privileged=False,
                **sandbox.container_kwargs(None, read_only=False),
            )
            container.start()
        except Exception as exc:
            return OneOff(None, "", time.monotonic() - started, error=_short(exc))
        timed_out = False
        try:
            code = container.wait(timeout=max(1.0, timeout)).get("StatusCode")
        except Exception:  # requests' ReadTimeout / ConnectionError: the deadline passed
            timed_out, code = True, None
            try:
                container.kill()
            except Exception:
                pass
        try:
            raw = container.logs(stdout=True, stderr=True)
            output = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        except Exception as exc:
            output = f"[portfolio-grader] could not read the output: {_short(exc)}"
        return OneOff(code, output[-OUTPUT_BYTES:], time.monotonic() - started, timed_out=timed_out)
    finally:
        with shield_interrupts():
            if container is not None:
                try:
                    container.remove(force=True, v=True)
                except Exception:
                    pass
            if own:
                try:
                    client.close()
                except Exception:
                    pass


def _short(exc: Exception) -> str:
    text = getattr(exc, "explanation", None) or str(exc)
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return " ".join(str(text).split())[:300]
