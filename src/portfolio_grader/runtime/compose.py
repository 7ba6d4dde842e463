"""Docker Compose stacks, sandboxed: the learner's compose file is never run as is.

`prepare(...)` loads the file (compose_file.py) and rewrites it into a sandboxed plan
(compose_rewrite.py); it writes nothing. `run_stack(...)` builds, `up -d`s the rewritten copy
from a grader-owned temp dir with the detected Compose command (compose_tool.py), waits for the
API to answer HTTP, and tears everything down.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from ..models import LogTail, RunningService
from . import RuntimeOptions, RuntimeUnavailable, labels_for, tail_log
from .builders import (
    BuildRequest,
    BuildResult,
    build_image,
    detect_builder,
    engine_env,
    remove_build,
    run_command,
)
from .compose_file import dotenv_for, load_yaml
from .compose_rewrite import ComposePlan, _inside, project_name, rewrite_compose
from .compose_tool import detect_compose
from .docker import (
    container_log_text,
    exec_in,
    health_path,
    host_ports_from_attrs,
    shield_interrupts,
    sweep,
    wait_for_http,
)

if TYPE_CHECKING:  # pragma: no cover
    from ..models import RepoFacts, Workspace


def prepare(workspace: Workspace, facts: RepoFacts, options: RuntimeOptions) -> ComposePlan:
    """Read, interpolate, validate and rewrite facts.compose_file (reads files, runs nothing)."""
    root = Path(facts.root or workspace.path or ".").resolve()
    compose_path = (root / str(facts.compose_file)).resolve()
    project = project_name(options.run_id)
    if not _inside(compose_path, root):
        return ComposePlan(compose_path=compose_path, refusal="the compose file is outside the repository", project=project)
    try:
        doc = load_yaml(compose_path.read_text("utf-8", "replace"))
    except OSError as exc:
        return ComposePlan(compose_path=compose_path, refusal=f"{facts.compose_file} could not be read: {exc.strerror}", project=project)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        return ComposePlan(
            compose_path=compose_path,
            refusal=f"{facts.compose_file} is not valid YAML{where}: {problem}",
            project=project,
        )
    env, example = dotenv_for(compose_path.parent, root)
    plan = rewrite_compose(
        doc, compose_path, root, options, workspace_name=workspace.name, manifest=facts.manifest, env=env
    )
    if example:
        plan.notes.insert(0, f"no .env in the repo: variables were taken from {example}")
    return plan


# ---------------------------------------------------------------- running the stack


def minimal_env() -> dict[str, str]:
    """What compose needs from the grader's environment, and nothing a stack could leak."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "USER", "DOCKER_HOST", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH",
            "DOCKER_CONFIG", "XDG_RUNTIME_DIR", "SYSTEMROOT", "USERPROFILE", "APPDATA")
    env = {k: v for k, v in os.environ.items() if k in keep}
    return engine_env(env)


class ComposeHandle:
    def __init__(self, client: Any, plan: ComposePlan, service: RunningService) -> None:
        self._client = client
        self.plan = plan
        self.service = service
        self.builds: list[BuildResult] = []
        self.compose_log = ""
        self.timings: dict[str, float] = {}

    # ---- containers of the project
    def containers(self) -> list[Any]:
        if self._client is None or not self.plan.project:
            return []
        try:
            return self._client.containers.list(
                all=True, filters={"label": f"com.docker.compose.project={self.plan.project}"}
            )
        except Exception:
            return []

    def api_container(self) -> Any | None:
        if not self.plan.api_service:
            return None
        for container in self.containers():
            if container.labels.get("com.docker.compose.service") == self.plan.api_service:
                return container
        return None

    def alive(self) -> bool:
        container = self.api_container()
        if container is None:
            return False
        try:
            container.reload()
        except Exception:
            return False
        return container.status == "running"

    def exec(self, command: str, timeout: float = 120.0) -> tuple[int, str]:
        container = self.api_container()
        return exec_in(self._client, container.id if container is not None else None, command, timeout)

    def logs(self) -> list[LogTail]:
        tails: list[LogTail] = []
        for build in self.builds:
            tails.append(tail_log("build", build.log) if len(self.plan.builds) <= 1 else tail_log(f"build {_services_of(self.plan, build.tag)}", build.log))
        by_service: dict[str, Any] = {}
        for container in self.containers():
            by_service.setdefault(container.labels.get("com.docker.compose.service", container.name), container)
        order = [self.plan.api_service] if self.plan.api_service in by_service else []
        order += sorted(n for n in by_service if n not in order)
        for name in order:
            tails.append(tail_log(str(name), container_log_text(by_service[name], tail=200)))
        notes = "\n".join(f"[portfolio-grader] {n}" for n in self.plan.notes)
        text = "\n".join(t for t in (notes, self.compose_log) if t)
        if text:
            tails.append(tail_log("compose", text))
        self.service = self.service.model_copy(update={"logs": tails})
        return tails


def _services_of(plan: ComposePlan, tag: str) -> str:
    for spec in plan.builds:
        if spec.tag == tag:
            return ", ".join(spec.services)
    return tag


def _last_error_line(output: str) -> str:
    lines = [line.strip() for line in (output or "").splitlines() if line.strip()]
    for line in reversed(lines):
        if re.search(r"error|failed|invalid|unsupported|not found|denied|cannot|can't", line, re.I):
            return " ".join(line.split())[:240]
    return " ".join(lines[-1].split())[:240] if lines else "no output"


def _missing_images(client: Any, plan: ComposePlan) -> list[tuple[str, str]]:
    """(service, image) of the stack's images the engine does not have (a failed pull)."""
    import docker

    missing: list[tuple[str, str]] = []
    for name, service in ((plan.doc or {}).get("services") or {}).items():
        image = service.get("image")
        if not image:
            continue
        try:
            client.images.get(image)
        except docker.errors.ImageNotFound:
            missing.append((name, image))
        except Exception:
            continue
    return missing


def _kill_project(handle: ComposeHandle) -> None:
    """SIGKILL the stack's containers (a grade keeps nothing; `down` then has nothing to wait for)."""
    for container in handle.containers():
        try:
            if container.status in ("running", "restarting", "paused"):
                container.kill()
        except Exception:
            pass


@contextmanager
def run_stack(
    client: Any,
    workspace: Workspace,
    facts: RepoFacts,
    options: RuntimeOptions,
    plan: ComposePlan,
) -> Iterator[ComposeHandle]:
    """Build the stack's images, `up -d` the rewritten file, wait for the API; remove it all after."""
    handle = ComposeHandle(client, plan, RunningService(kind="compose", status="not_started"))
    if plan.refusal is not None:
        handle.service = RunningService(
            kind="compose",
            status="start_failed",
            detail=f"the grader did not start the stack: {plan.refusal}",
            logs=[tail_log("compose", "\n".join(f"[portfolio-grader] {n}" for n in plan.notes))] if plan.notes else [],
        )
        yield handle
        return
    tool = detect_compose()
    if tool is None:
        raise RuntimeUnavailable(
            "Docker Compose is not installed: install the Compose plugin (`docker compose`) or docker-compose"
        )
    if plan.api_service is None:
        handle.service = RunningService(
            kind="compose",
            status="start_failed",
            builder=tool.name,
            detail=(
                f"could not tell which compose service is the API (services: {', '.join(plan.service_names)}); "
                "add `service: <name>` to portfolio-grader.yaml"
            ),
        )
        yield handle
        return
    builder = detect_builder() if plan.builds else None
    builder_name = f"{builder.name}, {tool.name}" if builder else tool.name
    handle.service = RunningService(kind="compose", status="not_started", builder=builder_name)
    tmp = Path(tempfile.mkdtemp(prefix="pg-compose-"))
    root = Path(facts.root or workspace.path or ".").resolve()
    compose_file = tmp / "compose.yml"
    empty_env = tmp / "empty.env"
    base = tool.base(compose_file, root, plan.project, env_file=str(empty_env))
    env = minimal_env()
    started_up = False
    try:
        # 1. our builds (one builder, one build log; compose never builds)
        t0 = time.monotonic()
        for spec in plan.builds:
            dockerfile = spec.dockerfile
            if spec.inline is not None:
                dockerfile = tmp / f"Dockerfile.{spec.services[0]}"
                dockerfile.write_text(spec.inline, "utf-8")
            result = build_image(
                client,
                BuildRequest(
                    context=spec.context,
                    dockerfile=dockerfile or spec.context / "Dockerfile",
                    tag=spec.tag,
                    labels=labels_for(options),
                    build_args=spec.args,
                    target=spec.target,
                    timeout=max(options.build_timeout - (time.monotonic() - t0), 1.0),
                ),
                builder,
            )
            handle.builds.append(result)
            if not result.ok:
                who = ", ".join(f"'{s}'" for s in spec.services)
                detail = result.detail.replace("the image", f"the image of service {who}", 1)
                handle.service = RunningService(
                    kind="compose", status="build_failed", builder=builder_name, detail=detail
                )
                handle.logs()
                yield handle
                return
        handle.timings["build"] = time.monotonic() - t0

        # 2. up
        compose_file.write_text(plan.dump(), "utf-8")
        empty_env.write_text("", "utf-8")
        t1 = time.monotonic()
        started_up = True
        up = run_command(tool.up(base), timeout=options.start_timeout + 120, env=env, cwd=str(tmp))
        handle.compose_log = f"$ {' '.join(tool.up(base))}\n{up.output}"
        if not up.ok:
            why = "timed out" if up.timed_out else _last_error_line(up.output)
            missing = _missing_images(client, plan)
            if missing and not up.timed_out:
                service_name, image = missing[0]
                detail = (
                    f"the image '{image}' of service '{service_name}' is not on the grading machine and could not be"
                    f" pulled ({why}); look at the compose log tail"
                )
            else:
                detail = f"`{tool.label} up` failed: {why}; look at the compose log tail"
            handle.service = RunningService(
                kind="compose", status="start_failed", builder=builder_name, detail=detail
            )
            api = handle.api_container()
            if api is not None:
                handle.service = handle.service.model_copy(update={"api_container": api.id})
            handle.logs()
            yield handle
            return

        # 3. readiness
        api_name = plan.api_service
        state: dict[str, Any] = {"container": None, "attrs": {}}

        def ports() -> dict[int, int]:
            container = state["container"] or handle.api_container()
            state["container"] = container
            if container is None:
                return {}
            try:
                container.reload()
                state["attrs"] = container.attrs
            except Exception:
                state["container"] = None
                return {}
            return host_ports_from_attrs(state["attrs"])

        def stopped() -> str | None:
            container = state["container"]
            if container is None:
                return None
            attrs = state["attrs"]
            policy = ((attrs.get("HostConfig") or {}).get("RestartPolicy") or {})
            name = policy.get("Name") or "no"
            status = container.status
            if status in ("exited", "dead"):
                if name in ("", "no"):
                    return "exited"
                if name == "on-failure":
                    limit = policy.get("MaximumRetryCount") or 0
                    if limit and (attrs.get("RestartCount") or 0) >= limit:
                        return "exited"
                    if (attrs.get("State") or {}).get("ExitCode") == 0:
                        return "exited"
            return None

        outcome = wait_for_http(
            ports, health_path(facts.manifest), time.monotonic() + options.start_timeout, stopped, order=plan.api_ports
        )
        handle.timings["start"] = time.monotonic() - t1
        container = state["container"] or handle.api_container()
        attrs = state["attrs"]
        cid = container.id if container is not None else None
        if isinstance(outcome, tuple):
            cport, hport = outcome
            handle.service = RunningService(
                kind="compose",
                status="running",
                base_url=f"http://127.0.0.1:{hport}",
                builder=builder_name,
                detail=f"the API service '{api_name}' answered on container port {cport}",
                api_container=cid,
            )
        elif container is None:
            handle.service = RunningService(
                kind="compose",
                status="start_failed",
                builder=builder_name,
                detail=f"compose created no container for the API service '{api_name}' (is it in a profile?)",
            )
        else:
            st = attrs.get("State") or {}
            restarts = attrs.get("RestartCount") or 0
            code = st.get("ExitCode")
            if outcome == "exited":
                detail = f"the API service '{api_name}' exited with code {code} before it answered HTTP"
                if st.get("OOMKilled"):
                    detail = f"the API service '{api_name}' was killed for using more than {options.memory} of memory"
                handle.service = RunningService(
                    kind="compose",
                    status="container_crashed",
                    builder=builder_name,
                    detail=detail + f"; look at the {api_name} log tail",
                    api_container=cid,
                )
            elif restarts or container.status in ("restarting", "exited", "dead"):
                handle.service = RunningService(
                    kind="compose",
                    status="container_crashed",
                    builder=builder_name,
                    detail=(
                        f"the API service '{api_name}' kept crashing (restarted {restarts} times, last exit code {code})"
                        f" and never answered HTTP within {int(options.start_timeout)} s; look at the {api_name} log"
                        " tail (a database it needs may be missing or misconfigured)"
                    ),
                    api_container=cid,
                )
            else:
                ports_text = ", ".join(map(str, plan.api_ports))
                handle.service = RunningService(
                    kind="compose",
                    status="start_failed",
                    builder=builder_name,
                    detail=(
                        f"the API service '{api_name}' kept running but gave no HTTP answer on container port"
                        f"{'s' if len(plan.api_ports) > 1 else ''} {ports_text} within {int(options.start_timeout)} s;"
                        " make the server listen on 0.0.0.0 and on one of these ports, or set `port:` in"
                        f" portfolio-grader.yaml; look at the {api_name} log tail"
                    ),
                    api_container=cid,
                )
        handle.logs()
        yield handle
    finally:
        with shield_interrupts():
            t2 = time.monotonic()
            volumes: set[str] = set()
            if started_up:
                try:
                    handle.logs()
                except Exception:
                    pass
                for container in handle.containers():
                    for mount in container.attrs.get("Mounts") or []:
                        if mount.get("Type") == "volume" and mount.get("Name"):
                            volumes.add(mount["Name"])
                _kill_project(handle)
                down = run_command(tool.down(base), timeout=120, env=env, cwd=str(tmp))
                handle.compose_log += f"\n$ {' '.join(tool.down(base))}\n{down.output}"
            for result in handle.builds:
                remove_build(client, result)
            sweep(client, options, project=plan.project, volumes=volumes)
            shutil.rmtree(tmp, ignore_errors=True)
            handle.timings["teardown"] = time.monotonic() - t2
