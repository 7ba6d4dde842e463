"""Which Docker Compose command this machine has, and the command lines it takes.

Prefer Compose v2 (a CLI plugin, or a v2 `docker-compose`), then v1 `docker-compose`; detected
once per process and cached. `ComposeTool` spells `up`/`down`/`logs`/`port` for either.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from .builders import CliProbe, cli_probes, engine_env, parse_compose_version, run_command


@dataclass(frozen=True)
class ComposeTool:
    major: int  # 2 or 1
    version: str
    command: tuple[str, ...]  # ("/usr/bin/docker", "compose") or ("docker-compose",)

    @property
    def label(self) -> str:
        """How a learner types it: `docker compose` or `docker-compose`."""
        return "docker compose" if self.major >= 2 and self.command[-1] == "compose" else "docker-compose"

    @property
    def name(self) -> str:
        if self.command[-1] == "compose" and len(self.command) == 2:
            return f"docker compose v{self.version}"
        return f"docker-compose {self.version}" + (" (v1)" if self.major == 1 else "")

    def base(self, file: str | os.PathLike[str], project_dir: str | os.PathLike[str], project: str, env_file: str | None = None) -> list[str]:
        cmd = [*self.command, "-f", str(file), "--project-directory", str(project_dir), "-p", project]
        if env_file:
            cmd += ["--env-file", env_file]
        return cmd

    def up(self, base: Sequence[str]) -> list[str]:
        return [*base, "up", "-d", "--no-build", "--remove-orphans"]

    def down(self, base: Sequence[str], timeout: int = 5) -> list[str]:
        return [*base, "down", "-v", "--remove-orphans", "--timeout", str(timeout)]

    def logs(self, base: Sequence[str], service: str, tail: int = 200) -> list[str]:
        return [*base, "logs", "--no-color", "--tail", str(tail), service]

    def port(self, base: Sequence[str], service: str, port: int) -> list[str]:
        return [*base, "port", service, str(port)]


def choose_compose(probes: Sequence[CliProbe], standalone: tuple[str, str] | None) -> ComposeTool | None:
    """Prefer Compose v2 (a CLI plugin, or a v2 `docker-compose`), then v1 `docker-compose` (pure)."""
    parsed = parse_compose_version(standalone[1]) if standalone else None
    for probe in probes:
        if probe.has_compose and probe.compose_version and int(probe.compose_version.split(".")[0]) >= 2:
            return ComposeTool(2, probe.compose_version, (probe.path, "compose"))
    if standalone and parsed and parsed[0] >= 2:
        return ComposeTool(parsed[0], parsed[1], (standalone[0],))
    if standalone and parsed:
        return ComposeTool(parsed[0], parsed[1], (standalone[0],))
    return None


_COMPOSE_LOCK = threading.Lock()
_COMPOSE: list[ComposeTool | None] = []


def detect_compose(refresh: bool = False) -> ComposeTool | None:
    """The compose command this process uses (detected once, cached); None when there is none."""
    with _COMPOSE_LOCK:
        if _COMPOSE and not refresh:
            return _COMPOSE[0]
    probes = cli_probes()
    standalone = None
    path = shutil.which("docker-compose")
    if path:
        result = run_command([path, "version"], timeout=20, env=engine_env())
        if result.ok:
            standalone = (path, result.output)
    tool = choose_compose(probes, standalone)
    with _COMPOSE_LOCK:
        _COMPOSE[:] = [tool]
    return tool
