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
from . import RuntimeOptions, RuntimeUnavailable, labels_for, sandbox, tail_log
from .builders import (
    BuildRequest,
    BuildResult,
    build_image,
    detect_builder,
    engine_env,
    remove_build,
    run_command,
)
from .compose_file import example_note, fill_empty_secrets, load_yaml
from .compose_rewrite import ComposePlan, _inside, project_name, rewrite_compose
from .compose_tool import ComposeTool, detect_compose
from .diagnose import DATABASE_NOT_READY, diagnose
from .docker import (
    WatcherCrash,
    container_log_text,
    exec_in,
    health_path,
    host_ports_from_attrs,
    shield_interrupts,
    sweep,
    wait_for_http,
)
from .env_standin import dotenv_for

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
    filled = fill_empty_secrets(env) if example else {}
    plan = rewrite_compose(
        doc, compose_path, root, options, workspace_name=workspace.name, manifest=facts.manifest,
        env={**env, **filled},
    )
    if example and example not in plan.example_env_files:  # said once, where services use it
        plan.notes.insert(0, example_note(example, env, filled))
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
        self.notes: list[str] = []  # sandbox notes for the scorecard (the read-only fallback), as DockerHandle's
        self.read_only = False  # did the services built from the repo end on a read-only root
        # the build context of the API service's image (None when it runs an image the grader did not build)
        self.api_context: Path | None = next((spec.context for spec in plan.builds if plan.api_service in spec.services),
                                             None)
        self._relaunch_writable: Any = None  # set once the stack is up

    def timed_out(self) -> bool:
        return any(build.timed_out for build in self.builds)

    def limit_notes(self) -> list[str]:
        return []  # the stack's services are not watched for their limits (the single container's are)

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

    def restart_writable(self, line: str, when: str) -> list[str]:
        """The API service wrote to its read-only root after it had come up (`line` from its log, `when` in the
        grade): bring the stack down and up again with writable roots. Everything in it is new (a database volume
        too), so the caller starts its grade over. The scorecard's notes; [] when nothing ran read-only."""
        if not self.read_only or self._relaunch_writable is None:
            return []
        before = len(self.notes)
        self._relaunch_writable()
        note = sandbox.rerun_writable_note(line, when, who=f"the API service '{self.plan.api_service}'",
                                           up=self.service.up, detail=self.service.detail)
        self.compose_log += f"\n[portfolio-grader] {note}"
        return [note, *self.notes[before:]]

    def api_log(self, timestamps: bool = False, tail: int = 400) -> str:
        """The API service's latest log lines ('' when it has no container), with docker timestamps if asked."""
        container = self.api_container()
        return container_log_text(container, tail=tail, timestamps=timestamps) if container is not None else ""

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
    handle.notes.extend(plan.notes)  # what the compose file asked for that the sandbox changed: the scorecard says so
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
        if plan.read_only:  # as for a single container: the working folder stays writable (a sqlite file beside the code)
            plan.writable_workdirs(_image_workdirs(client, plan))

        # 2. up and wait for the API; once more with writable roots when the read-only one stopped the stack
        compose_file.write_text(plan.dump(), "utf-8")
        empty_env.write_text("", "utf-8")
        t1 = time.monotonic()
        started_up = True
        while True:
            service = _up_and_wait(client, handle, tool, base, env, str(tmp), facts, options, builder_name)
            culprit = _read_only_culprit(handle, api_up=service.up) if plan.read_only else None
            if culprit is None:
                break
            name, line = culprit
            others = [f"'{n}'" for n in plan.read_only if n != name]
            handle.notes.append(
                sandbox.writable_fallback_note(line, who=f"the service '{name}'", where="/tmp or a volume")
                + (f"; the stack's other services built from the repo ({', '.join(others)}) ran writable too"
                   if others else "")
            )
            handle.compose_log += f"\n[portfolio-grader] {handle.notes[-1]}"
            _down(handle, tool, base, env, str(tmp))
            plan.writable()
            compose_file.write_text(plan.dump(), "utf-8")
        handle.timings["start"] = time.monotonic() - t1
        handle.read_only = bool(plan.read_only)
        handle.service = service

        def relaunch_writable() -> None:
            _down(handle, tool, base, env, str(tmp))
            plan.writable()
            compose_file.write_text(plan.dump(), "utf-8")
            handle.service = _up_and_wait(client, handle, tool, base, env, str(tmp), facts, options, builder_name)
            handle.read_only = False

        handle._relaunch_writable = relaunch_writable
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
                _down(handle, tool, base, env, str(tmp))
            for result in handle.builds:
                remove_build(client, result)
            sweep(client, options, project=plan.project, volumes=volumes)
            shutil.rmtree(tmp, ignore_errors=True)
            handle.timings["teardown"] = time.monotonic() - t2


MAX_DATABASE_RESTARTS = 20  # within the start deadline, which bounds the wait anyway


def _restart_for_database(container: Any, state: dict[str, Any]) -> bool:
    """The API exited because its database was not up yet ("connection refused", "the database system is
    starting up"): start it again, as a healthcheck-gated depends_on would have waited. False when it exited for
    another reason, or too often."""
    if state["restarts"] >= MAX_DATABASE_RESTARTS:
        return False
    found = diagnose(container_log_text(container, tail=60))
    if found is None or found.kind != DATABASE_NOT_READY:
        return False
    time.sleep(1.0)  # the database is starting: give it a moment before the next try
    try:
        container.start()
    except Exception:
        return False
    state["restarts"] += 1
    return True


def _image_workdirs(client: Any, plan: ComposePlan) -> dict[str, str]:
    """{service: the WORKDIR of the image the grader built for it}, for the folders worth keeping writable."""
    out: dict[str, str] = {}
    for spec in plan.builds:
        try:
            workdir = sandbox.workdir_of(client.images.get(spec.tag).attrs)
        except Exception:
            continue
        if workdir:
            out.update({name: workdir for name in spec.services})
    return out


def _down(handle: ComposeHandle, tool: ComposeTool, base: list[str], env: dict[str, str], cwd: str) -> None:
    """SIGKILL the stack, then `down -v` it (containers, networks, volumes)."""
    _kill_project(handle)
    down = run_command(tool.down(base), timeout=120, env=env, cwd=cwd)
    handle.compose_log += f"\n$ {' '.join(tool.down(base))}\n{down.output}"


def _read_only_culprit(handle: ComposeHandle, *, api_up: bool) -> tuple[str, str] | None:
    """(service, log line) when a read-only service is down and its log shows a write to the read-only root.

    The API counts when it did not come up; another service built from the repo (a worker) when it exited or
    restarted. None when no read-only root is to blame (or nothing runs read-only).
    """
    api = handle.plan.api_service
    by_service = {c.labels.get("com.docker.compose.service"): c for c in handle.containers()}
    for name in sorted(handle.plan.read_only, key=lambda n: n != api):
        container = by_service.get(name)
        if container is None:
            continue
        if name == api:
            if api_up:
                continue
        else:
            try:
                container.reload()
            except Exception:
                continue
            if container.status == "running" and not container.attrs.get("RestartCount"):
                continue
        line = sandbox.mentions_read_only(container_log_text(container))
        if line:
            return name, line
    return None


def _up_and_wait(
    client: Any,
    handle: ComposeHandle,
    tool: ComposeTool,
    base: list[str],
    env: dict[str, str],
    cwd: str,
    facts: RepoFacts,
    options: RuntimeOptions,
    builder_name: str,
) -> RunningService:
    """`up -d` the written compose file and wait for the API: the service it ended as."""
    plan = handle.plan
    up = run_command(tool.up(base), timeout=options.start_timeout + 120, env=env, cwd=cwd)
    handle.compose_log += f"{chr(10) if handle.compose_log else ''}$ {' '.join(tool.up(base))}\n{up.output}"
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
        api = handle.api_container()
        return RunningService(kind="compose", status="start_failed", builder=builder_name, detail=detail,
                              api_container=api.id if api is not None else None)

    # readiness
    api_name = plan.api_service
    watch_read_only = api_name in plan.read_only
    state: dict[str, Any] = {"container": None, "attrs": {}, "polls": 0, "restarts": 0}
    watcher = WatcherCrash()

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
            gave_up = name in ("", "no") or name == "on-failure" and (
                (policy.get("MaximumRetryCount") or 0) and (attrs.get("RestartCount") or 0) >= policy["MaximumRetryCount"]
                or (attrs.get("State") or {}).get("ExitCode") == 0)
            if gave_up and not _restart_for_database(container, state):
                return "exited"
        # a restart policy or a hung start would hold the wait to the deadline: EROFS in the log ends it now
        state["polls"] += 1
        if watch_read_only and state["polls"] % 4 == 0 and sandbox.mentions_read_only(
                container_log_text(container, tail=50)):
            return "read-only"
        if state["polls"] % 4 == 2 and status == "running" and watcher.check(container):
            return "watching"
        return None

    budget = options.start_budget()
    outcome = wait_for_http(ports, health_path(facts.manifest), time.monotonic() + budget, stopped,
                            order=plan.api_ports)
    container = state["container"] or handle.api_container()
    attrs = state["attrs"]
    cid = container.id if container is not None else None
    if isinstance(outcome, tuple) and state["restarts"]:
        handle.notes.append(
            f"the API service '{api_name}' exited {state['restarts']} time(s) because its database was not accepting "
            "connections yet; the grader started it again until the database answered, as `depends_on: condition: "
            "service_healthy` with a healthcheck on the database would")
    if isinstance(outcome, tuple):
        cport, hport = outcome
        return RunningService(
            kind="compose",
            status="running",
            base_url=f"http://127.0.0.1:{hport}",
            builder=builder_name,
            detail=f"the API service '{api_name}' answered on container port {cport}",
            api_container=cid,
        )
    if container is None:
        return RunningService(
            kind="compose",
            status="start_failed",
            builder=builder_name,
            detail=f"compose created no container for the API service '{api_name}' (is it in a profile?)",
        )
    st = attrs.get("State") or {}
    restarts = attrs.get("RestartCount") or 0
    found = diagnose(container_log_text(container, tail=400))
    cause = found.detail() if found else ""
    code = st.get("ExitCode")
    if outcome == "watching":
        return RunningService(kind="compose", status="container_crashed", builder=builder_name,
                              detail=watcher.detail(f"the API service '{api_name}'") + cause
                              + _missing_env_files(plan) + f"; look at the {api_name} log tail", api_container=cid)
    if outcome == "exited":
        detail = f"the API service '{api_name}' exited with code {code} before it answered HTTP"
        if st.get("OOMKilled"):
            detail = f"the API service '{api_name}' was killed for using more than {options.memory} of memory"
        return RunningService(
            kind="compose",
            status="container_crashed",
            builder=builder_name,
            detail=detail + cause + f"; look at the {api_name} log tail",
            api_container=cid,
        )
    if restarts or container.status in ("restarting", "exited", "dead"):
        return RunningService(
            kind="compose",
            status="container_crashed",
            builder=builder_name,
            detail=(
                f"the API service '{api_name}' kept crashing (restarted {restarts} times, last exit code {code})"
                f" and never answered HTTP within {int(budget)} s; look at the {api_name} log"
                " tail" + (cause or " (a database it needs may be missing or misconfigured)")
            ),
            api_container=cid,
        )
    ports_text = ", ".join(map(str, plan.api_ports))
    no_answer = (f"the API service '{api_name}' kept running but gave no HTTP answer on container port"
                 f"{'s' if len(plan.api_ports) > 1 else ''} {ports_text} within {int(budget)} s")
    # a cause in the log comes first: the "listen on 0.0.0.0" advice is for a server that runs but hides
    advice = (f"; look at the {api_name} log tail" + cause + _missing_env_files(plan) if cause else
              "; make the server listen on 0.0.0.0 and on one of these ports, or set `port:` in"
              f" portfolio-grader.yaml; look at the {api_name} log tail")
    return RunningService(kind="compose", status="start_failed", builder=builder_name, detail=no_answer + advice,
                          api_container=cid)


def _missing_env_files(plan: ComposePlan) -> str:
    """The compose file's env_files the repo does not commit: a crash at start is most often one of their variables."""
    if not plan.missing_env_files:
        return ""
    return (f"; the compose file reads {', '.join(plan.missing_env_files)}, which the repository does not commit (and "
            "no .env.example beside it): commit a `.env.example` with safe values, or give them to the grader in "
            "portfolio-grader.yaml (`env:` for the API, `services: {db: {env: ...}}` for the others)")
