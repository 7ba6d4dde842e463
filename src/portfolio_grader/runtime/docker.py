"""One sandboxed container: build the learner's Dockerfile, run it, wait for HTTP, remove it all.

The container runs with memory, CPU and pid limits, every capability dropped,
no-new-privileges, no mounts, and its candidate ports published on 127.0.0.1 only (a random
host port each). The first candidate port that gives any HTTP answer is the API.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx

from ..models import LogTail, RunningService
from . import RuntimeOptions, RuntimeUnavailable, labels_for, sandbox, tail_log
from .diagnose import diagnose, waiting_for_a_change
from .builders import (
    DEFAULT_DOCKER_HOST,
    BuildRequest,
    BuildResult,
    build_image,
    choose_context,
    detect_builder,
    image_tag,
    remove_build,
)

if TYPE_CHECKING:  # pragma: no cover
    from ..models import RepoFacts, Workspace

COMMON_PORTS = (8000, 8080, 3000, 5000, 80)
MAX_CANDIDATES = 12
POLL_INTERVAL = 0.5


# ---------------------------------------------------------------- engine


def engine_host() -> str:
    return os.environ.get("DOCKER_HOST") or DEFAULT_DOCKER_HOST


def connect_engine() -> Any:
    """A docker SDK client whose engine answered a ping, else RuntimeUnavailable (one line)."""
    import docker

    host = engine_host()
    try:
        client = docker.from_env(timeout=120)
        client.ping()
        return client
    except Exception as exc:  # DockerException, requests errors, PermissionError
        text = str(exc)
        if "Permission denied" in text or isinstance(exc, PermissionError):
            raise RuntimeUnavailable(
                f"the Docker engine at {host} refused this user (permission denied): "
                "add the user to the docker group or run the grader where Docker is usable"
            ) from None
        raise RuntimeUnavailable(
            f"no Docker engine answered at {host}: start Docker Desktop or dockerd, or set DOCKER_HOST"
        ) from None


# ---------------------------------------------------------------- ports and readiness


def candidate_ports(manifest_port: int | None, exposed: Iterable[int] = (), common: Iterable[int] = COMMON_PORTS) -> list[int]:
    """The container ports to publish and probe: the manifest's alone, else EXPOSE + common ones."""
    if manifest_port:
        return [int(manifest_port)]
    out: list[int] = []
    for port in [*exposed, *common]:
        try:
            port = int(port)
        except (TypeError, ValueError):
            continue
        if 0 < port < 65536 and port not in out:
            out.append(port)
    return out[:MAX_CANDIDATES]


def port_env_value(manifest_port: int | None, exposed: Sequence[int]) -> int:
    """PORT for Heroku-style apps: the manifest port, else the first EXPOSE port, else 8000."""
    if manifest_port:
        return int(manifest_port)
    return int(exposed[0]) if exposed else 8000


def health_path(manifest: Any) -> str:
    path = getattr(manifest, "health", None) or "/"
    return path if path.startswith("/") else "/" + path


def host_ports_from_attrs(attrs: dict[str, Any]) -> dict[int, int]:
    """{container port: host port} of the tcp ports published on the loopback."""
    ports = ((attrs or {}).get("NetworkSettings") or {}).get("Ports") or {}
    out: dict[int, int] = {}
    for key, bindings in ports.items():
        if not bindings or not key.endswith("/tcp"):
            continue
        for binding in bindings:
            host_ip = binding.get("HostIp") or ""
            if host_ip not in ("127.0.0.1", "", "0.0.0.0") and not host_ip.startswith("127."):
                continue
            try:
                out[int(key.split("/")[0])] = int(binding.get("HostPort"))
                break
            except (TypeError, ValueError):
                continue
    return out


# A debugger's HTTP port is no API: Node's inspector (`--inspect=0.0.0.0:9229`, often published beside the app's
# port in compose files) answers every plain GET with this, and it starts before the app listens.
_DEBUGGER_ANSWER = b"WebSockets request was expected"
_HEAD_BYTES = 512


def http_answers(url: str, client: httpx.Client | None = None, total: float = 5.0) -> bool:
    """Did anything but a debugger answer HTTP at `url` (any status counts)?

    At most the first 512 bytes are read, within `total` seconds all told (and a moment once the status line is
    in): a 50 MB body or one that drips a byte a second must not stall (or bloat) the wait for readiness.
    `client` is accepted for compatibility.
    """
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    deadline = time.monotonic() + total
    try:
        with socket.create_connection((host, port), timeout=min(2.0, total)) as sock:
            sock.sendall(f"GET {target} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: portfolio-grader\r\n"
                         "Accept: */*\r\nConnection: close\r\n\r\n".encode("ascii", "replace"))
            head = b""
            while len(head) < _HEAD_BYTES and time.monotonic() < deadline:
                sock.settimeout(max(0.05, deadline - time.monotonic()))
                try:
                    chunk = sock.recv(_HEAD_BYTES)
                except OSError:
                    if len(head) >= 12:
                        break  # the status line is in; the rest is not worth waiting for
                    raise
                if not chunk:
                    break
                head += chunk
                if len(head) >= 12:
                    deadline = min(deadline, time.monotonic() + 0.3)
    except OSError:
        return False
    return re.match(rb"HTTP/\d(?:\.\d)? [1-5]\d\d", head) is not None and _DEBUGGER_ANSWER not in head


def wait_for_http(
    ports: Callable[[], dict[int, int]],
    path: str,
    deadline: float,
    stopped: Callable[[], str | None],
    order: Sequence[int] = (),
) -> tuple[int, int] | str:
    """Poll every published candidate until one answers HTTP.

    `ports()` -> {container port: host port} (re-read each round: restarts can move them);
    `stopped()` -> a reason string when waiting is pointless (the container exited).
    Returns (container port, host port) or the reason waiting ended ("timeout" or stopped()'s).
    """
    while True:
        mapping = ports()
        ordered = [p for p in order if p in mapping] + [p for p in mapping if p not in order]
        for cport in ordered:
            if http_answers(f"http://127.0.0.1:{mapping[cport]}{path}",
                            total=max(0.5, min(5.0, deadline - time.monotonic()))):
                return cport, mapping[cport]
        reason = stopped()  # checked after the ports were polled: a last answer still counts
        if reason:
            return reason
        if time.monotonic() >= deadline:
            return "timeout"
        time.sleep(POLL_INTERVAL)


# ---------------------------------------------------------------- container helpers


def container_name(run_id: str) -> str:
    """`pg-<run_id>`, made valid for Docker ([a-zA-Z0-9][a-zA-Z0-9_.-]+)."""
    return "pg-" + (re.sub(r"[^a-zA-Z0-9_.-]+", "-", run_id or "run").strip("-") or "run")



def container_log_text(container: Any, tail: int = 400, timestamps: bool = False) -> str:
    try:
        data = container.logs(stdout=True, stderr=True, tail=tail, timestamps=timestamps)
    except Exception as exc:
        return f"[portfolio-grader] could not read the container log: {exc}"
    return data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)


def exec_in(client: Any, container_id: str | None, command: str, timeout: float = 120.0) -> tuple[int, str]:
    """Run `sh -c command` in a running container; (exit code, output). 124 on timeout."""
    if not container_id:
        return 125, "no API container to run the command in"
    try:
        container = client.containers.get(container_id)
        container.reload()
    except Exception as exc:
        return 125, f"the API container is gone: {exc}"
    if container.status != "running":
        return 125, f"the API container is not running (status {container.status})"
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            exec_id = client.api.exec_create(container.id, ["sh", "-c", command], stdout=True, stderr=True)["Id"]
            result["id"] = exec_id
            output = client.api.exec_start(exec_id, stream=False, demux=False)
            result["output"] = output.decode("utf-8", "replace") if isinstance(output, bytes) else str(output or "")
            result["code"] = client.api.exec_inspect(exec_id).get("ExitCode")
        except Exception as exc:
            result["error"] = str(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        return 124, f"`{command}` did not finish within {int(timeout)} s"
    if "error" in result:
        return 126, f"could not run `{command}`: {result['error']}"
    code = result.get("code")
    return (int(code) if code is not None else 0), result.get("output", "")


@contextmanager
def shield_interrupts() -> Iterator[None]:
    """Let cleanup finish: a Ctrl-C during it is delayed until the end (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []

    def handler(signum, frame):  # noqa: ARG001
        pending.append(signum)

    try:
        previous = signal.signal(signal.SIGINT, handler)
    except (ValueError, OSError):  # pragma: no cover - not in the main interpreter
        yield
        return
    # SIGTERM too: a CI runner cancelling the job must not cut the teardown short either
    previous_term = signal.signal(signal.SIGTERM, handler) if os.name == "posix" else None
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if previous_term is not None:
            signal.signal(signal.SIGTERM, previous_term)
        if pending:
            raise KeyboardInterrupt


def sweep(client: Any, options: RuntimeOptions, project: str | None = None, volumes: Iterable[str] = ()) -> list[str]:
    """Remove every container, network, volume and image of this run that is still there.

    Objects are found by the run label (and the compose project label when given). Returns
    what had to be removed here (empty when the normal teardown already did everything).
    """
    run_filter = f"{options.label}.run={options.run_id}"
    filters = [{"label": run_filter}]
    if project:
        filters.append({"label": f"com.docker.compose.project={project}"})
    return _sweep(client, filters, {"label": run_filter}, volumes)


def sweep_all(client: Any, label: str = "portfolio-grader") -> list[str]:
    """Remove every container, network, volume and image carrying `label`, whichever grade made it."""
    return _sweep(client, [{"label": label}], {"label": label})


def _sweep(client: Any, filters: list[dict[str, str]], image_filter: dict[str, str],
           volumes: Iterable[str] = ()) -> list[str]:
    removed: list[str] = []
    volume_names = set(volumes)
    seen: set[str] = set()
    for flt in filters:
        try:
            containers = client.containers.list(all=True, filters=flt)
        except Exception:
            containers = []
        for container in containers:
            if container.id in seen:
                continue
            seen.add(container.id)
            for mount in container.attrs.get("Mounts") or []:
                if mount.get("Type") == "volume" and mount.get("Name"):
                    volume_names.add(mount["Name"])
            try:
                container.remove(force=True, v=True)
                removed.append(f"container {container.name}")
            except Exception:
                pass
    for flt in filters:
        try:
            networks = client.networks.list(filters=flt)
        except Exception:
            networks = []
        for network in networks:
            try:
                network.remove()
                removed.append(f"network {network.name}")
            except Exception:
                pass
    for flt in filters:
        try:
            for volume in client.volumes.list(filters=flt):
                volume_names.add(volume.name)
        except Exception:
            pass
    for name in sorted(volume_names):
        try:
            client.volumes.get(name).remove(force=True)
            removed.append(f"volume {name}")
        except Exception:
            pass
    try:
        images = client.images.list(filters=image_filter)
    except Exception:
        images = []
    for image in images:
        try:
            client.images.remove(image.id, force=True, noprune=False)
            removed.append(f"image {', '.join(image.tags) or image.short_id}")
        except Exception:
            pass
    return removed


# ---------------------------------------------------------------- the handle


class DockerHandle:
    """A single container built from the learner's Dockerfile."""

    def __init__(self, client: Any, service: RunningService, build: BuildResult | None = None,
                 options: RuntimeOptions | None = None) -> None:
        self._client = client
        self._options = options
        self.service = service
        self.build = build
        self.container: Any = None
        self.timings: dict[str, float] = {}
        self.notes: list[str] = []  # sandbox notes for the scorecard (egress, read-only fallback)
        self.read_only = False
        self.start_timed_out = False
        self.api_context: Path | None = None  # the build context of the API's image
        self._relaunch_writable: Callable[[], None] | None = None  # set once the container has been started

    def timed_out(self) -> bool:
        return bool(self.build is not None and self.build.timed_out) or self.start_timed_out

    def limit_notes(self) -> list[str]:
        """What the sandbox's limits did to the API while it was graded (memory, pids, CPU throttling)."""
        if self.container is None:
            return []
        if self._options is None:
            return []
        # sampled at the end of the grade, when the grader sends nothing: busy loops and log floods show
        return sandbox.limit_notes(sandbox.usage(self.container, sample=1.0),
                                   container_log_text(self.container, tail=200), self._options)

    def alive(self) -> bool:
        if self.container is None:
            return False
        try:
            self.container.reload()
            return self.container.status == "running"
        except Exception:
            return False

    def exec(self, command: str, timeout: float = 120.0) -> tuple[int, str]:
        return exec_in(self._client, self.container.id if self.container is not None else None, command, timeout)

    def restart_writable(self, line: str, when: str) -> list[str]:
        """The API wrote to its read-only root after it had come up (`line` from its log, `when` in the grade):
        run it again from a new container on a writable root. Its state (users, objects, a database in its folder)
        is lost, so the caller starts its grade over. The scorecard's notes; [] when it ran writable already."""
        if not self.read_only or self._relaunch_writable is None:
            return []
        self._relaunch_writable()
        return [sandbox.rerun_writable_note(line, when, up=self.service.up, detail=self.service.detail)]

    def api_log(self, timestamps: bool = False, tail: int = 400) -> str:
        """The API container's latest log lines ('' when there is none), each with its docker timestamp if asked."""
        return container_log_text(self.container, tail=tail, timestamps=timestamps) if self.container is not None else ""

    def logs(self) -> list[LogTail]:
        tails: list[LogTail] = []
        if self.build is not None:
            tails.append(tail_log("build", self.build.log))
        if self.container is not None:
            tails.append(tail_log("api", container_log_text(self.container)))
        for extra in self.service.logs:
            if extra.name not in {t.name for t in tails}:
                tails.append(extra)
        self.service = self.service.model_copy(update={"logs": tails})
        return tails


def _crash_detail(container: Any, attrs: dict[str, Any], memory: str) -> str:
    state = attrs.get("State") or {}
    code = state.get("ExitCode")
    # The engine may report the exit before the OOM event that explains it: look again, briefly.
    for _ in range(6):
        if code != 137 or state.get("OOMKilled"):
            break
        time.sleep(0.25)
        try:
            container.reload()
            state = container.attrs.get("State") or {}
        except Exception:
            break
    if state.get("OOMKilled"):
        return (
            f"the container was killed for using more than {memory} of memory (exit {code}) before it answered HTTP;"
            " look at the api log tail"
        )
    has_output = bool(container_log_text(container, tail=5).strip())
    if code == 0:
        return (
            "the container exited (exit 0) before it answered HTTP: its command finished instead of running a server;"
            " check CMD/ENTRYPOINT and look at the api log tail"
        )
    return f"the container exited with code {code} before it answered HTTP; look at the api log tail" + (
        "" if has_output else " (it printed nothing)"
    )


WATCHER_QUIET_SECONDS = 15.0  # how long a log that ended with a crash under a file watcher must stay unchanged


class WatcherCrash:
    """Follows the log of an API being waited for: `check(container)` gives the file watcher's line once the app
    crashed under it (diagnose.waiting_for_a_change) and the log stayed unchanged for `quiet` seconds. The container
    keeps running, so without this the wait lasts to the start deadline for an app that will never answer."""

    def __init__(self, quiet: float = WATCHER_QUIET_SECONDS) -> None:
        self.quiet = quiet
        self.line: str | None = None
        self._log: str | None = None
        self._since = 0.0

    def check(self, container: Any) -> str | None:
        text = container_log_text(container, tail=200)
        now = time.monotonic()
        if text != self._log:
            self._log, self._since = text, now
            return None
        if now - self._since < self.quiet:
            return None
        self.line = waiting_for_a_change(text)
        return self.line

    def detail(self, who: str = "the app") -> str:
        """The start failure's opening words for an app that crashed under its file watcher."""
        return (f"{who} crashed before it answered HTTP, and its file watcher keeps the container running, waiting "
                f"for a file change that never comes ({self.line!r})")


def _await_http(container: Any, candidates: Sequence[int], path: str, budget: float,
                watch_read_only: bool = False, watcher: WatcherCrash | None = None,
                ) -> tuple[tuple[int, int] | str, dict[str, Any]]:
    """Wait for the first HTTP answer; stop early when the container exits, (read-only) its log shows EROFS, or
    (`watcher`) the app crashed under a file watcher that keeps the container running."""
    attrs: dict[str, Any] = {}
    polls = [0]

    def ports() -> dict[int, int]:
        nonlocal attrs
        try:
            container.reload()
            attrs = container.attrs
        except Exception:
            return {}
        return host_ports_from_attrs(attrs)

    def stopped() -> str | None:
        if container.status in ("exited", "dead"):
            return "exited"
        polls[0] += 1
        if watch_read_only and polls[0] % 4 == 0 and sandbox.mentions_read_only(container_log_text(container, tail=50)):
            return "read-only"
        if watcher is not None and polls[0] % 4 == 2 and watcher.check(container):
            return "watching"
        return None

    outcome = wait_for_http(ports, path, time.monotonic() + budget, stopped, order=candidates)
    return outcome, attrs


def _cause(container: Any) -> str:
    """'; cause: ... (hint)' when the container log shows why the API did not start (diagnose.py), else ''."""
    found = diagnose(container_log_text(container, tail=400))
    return found.detail() if found else ""


def _limits_hit(container: Any, options: RuntimeOptions) -> str:
    """'; the container hit its limit of 64 processes ...' when a sandbox limit explains a failed start."""
    notes = sandbox.limit_notes(sandbox.usage(container), container_log_text(container, tail=200), options)
    return "".join(f"; {note}" for note in notes)


@contextmanager
def run_container(
    client: Any,
    workspace: Workspace,
    facts: RepoFacts,
    options: RuntimeOptions,
    note: str = "",
) -> Iterator[DockerHandle]:
    """Build facts.dockerfile, run it sandboxed, yield a handle; remove everything afterwards."""
    root = Path(facts.root or workspace.path or ".")
    dockerfile = (root / (facts.dockerfile or "Dockerfile")).resolve()
    labels = labels_for(options)
    builder = detect_builder()
    manifest = facts.manifest
    handle = DockerHandle(client, RunningService(kind="docker", status="not_started", builder=builder.name),
                          options=options)
    suffix = f" ({note})" if note else ""
    build: BuildResult | None = None
    try:
        t0 = time.monotonic()
        handle.api_context = choose_context(root, dockerfile)
        build = build_image(
            client,
            BuildRequest(
                context=handle.api_context,
                dockerfile=dockerfile,
                tag=image_tag(workspace.name, options.run_id),
                labels=labels,
                timeout=options.build_timeout,
            ),
            builder,
        )
        handle.build = build
        handle.timings["build"] = time.monotonic() - t0
        if not build.ok:
            handle.service = RunningService(
                kind="docker",
                status="build_failed",
                builder=build.builder.name,
                detail=build.detail + suffix,
                logs=[tail_log("build", build.log)],
            )
            yield handle
            return

        exposed = list(facts.exposed_ports)
        image_attrs: dict[str, Any] = {}
        try:
            image_attrs = client.images.get(build.tag).attrs
            image_ports = (image_attrs.get("Config") or {}).get("ExposedPorts") or {}
            for key in image_ports:
                number = key.split("/")[0]
                if key.endswith("/tcp") and number.isdigit() and int(number) not in exposed:
                    exposed.append(int(number))
        except Exception:
            pass
        mport = manifest.port if manifest else None
        image_env = dict(str(e).partition("=")[::2] for e in (image_attrs.get("Config") or {}).get("Env") or [])
        if not mport and str(image_env.get("PORT", "")).isdigit():  # the project's own PORT: listen there
            exposed = [int(image_env["PORT"]), *[p for p in exposed if p != int(image_env["PORT"])]]
        candidates = candidate_ports(mport, exposed)
        # PORT and HOST for apps that read them (process.env.PORT, Heroku style), unless the image sets them
        env = {key: value for key, value in (("PORT", str(port_env_value(mport, exposed))), ("HOST", "0.0.0.0"))
               if key not in image_env or (key == "PORT" and mport)}
        if manifest and manifest.env:
            env.update(manifest.env)
            handle.notes.append(sandbox.manifest_env_note("the API", manifest.env))
        network, network_note = sandbox.run_network(client, options, manifest)
        if network_note:
            handle.notes.append(network_note)
        read_only = options.read_only
        workdir = sandbox.workdir_of(image_attrs) if read_only else None
        volume = None
        if workdir:
            try:
                volume = client.volumes.create(f"pg-{options.run_id}-work", labels=labels).name
            except Exception:
                workdir = None
        budget = options.start_budget()
        watcher = WatcherCrash()

        def launch(read_only: bool) -> tuple[tuple[int, int] | str, dict[str, Any]]:
            """Create, start and wait for the API container; raises _LaunchFailed when the engine refuses."""
            nonlocal watcher
            watcher = WatcherCrash()
            try:
                container = client.containers.create(
                    build.tag,
                    name=container_name(options.run_id),
                    detach=True,
                    labels=labels,
                    environment=env,
                    ports={f"{p}/tcp": ("127.0.0.1", None) for p in candidates},
                    mem_limit=options.memory,
                    nano_cpus=int(options.cpus * 1e9),
                    pids_limit=options.pids,
                    cap_drop=["ALL"],
                    security_opt=["no-new-privileges"],
                    privileged=False,
                    extra_hosts={"host.docker.internal": "host-gateway"},  # reaches the grader's webhook receiver
                    network=network,
                    **sandbox.container_kwargs(options, read_only=read_only, workdir_volume=volume, workdir=workdir),
                )
            except Exception as exc:
                raise _LaunchFailed(f"the container could not be created: {_api_message(exc)}{suffix}") from None
            handle.container = container
            try:
                container.start()
            except Exception as exc:
                raise _LaunchFailed(f"the container could not start: {_api_message(exc)}{suffix}") from None
            handle.read_only = read_only
            return _await_http(container, candidates, health_path(manifest), options.start_budget(),
                               watch_read_only=read_only, watcher=watcher)

        def service_after(outcome: tuple[int, int] | str, attrs: dict[str, Any]) -> RunningService:
            container = handle.container
            if isinstance(outcome, tuple):
                cport, hport = outcome
                return RunningService(kind="docker", status="running", base_url=f"http://127.0.0.1:{hport}",
                                      builder=build.builder.name,
                                      detail=f"the API answered on container port {cport}{suffix}",
                                      api_container=container.id)
            if outcome == "exited":
                return RunningService(kind="docker", status="container_crashed", builder=build.builder.name,
                                      detail=_crash_detail(container, attrs, options.memory) + _cause(container)
                                      + _limits_hit(container, options) + suffix, api_container=container.id)
            if outcome == "watching":
                return RunningService(kind="docker", status="container_crashed", builder=build.builder.name,
                                      detail=watcher.detail() + _cause(container) + "; look at the api log tail"
                                      + suffix, api_container=container.id)
            handle.start_timed_out = True
            return RunningService(
                kind="docker",
                status="start_failed",
                builder=build.builder.name,
                detail=(
                    f"no HTTP answer on container port{'s' if len(candidates) > 1 else ''} "
                    f"{', '.join(map(str, candidates))} within {int(budget)} s (the start deadline) while the"
                    " container kept running; make the server listen on 0.0.0.0 (not 127.0.0.1) and on one of these"
                    " ports, or set `port:` in portfolio-grader.yaml; look at the api log tail"
                )
                + _cause(container)
                + _limits_hit(container, options)
                + suffix,
                api_container=container.id,
            )

        def relaunch_writable() -> None:
            """The API again, from a new container of the same image, on a writable root (its state is lost)."""
            if handle.container is not None:
                try:
                    handle.container.remove(force=True, v=True)
                except Exception:
                    pass
                handle.container = None
            handle.start_timed_out = False
            try:
                handle.service = service_after(*launch(False))
            except _LaunchFailed as exc:
                handle.service = RunningService(kind="docker", status="start_failed", builder=build.builder.name,
                                                detail=str(exc))

        t1 = time.monotonic()
        read_only = options.read_only
        try:
            outcome, attrs = launch(read_only)
            if not isinstance(outcome, tuple) and read_only:
                line = sandbox.mentions_read_only(container_log_text(handle.container))
                if line:  # the app needs to write outside /tmp: run it again with a writable root, and say so
                    handle.notes.append(sandbox.writable_fallback_note(line))
                    try:
                        handle.container.remove(force=True, v=True)
                    except Exception:
                        pass
                    handle.container = None
                    outcome, attrs = launch(False)
        except _LaunchFailed as exc:
            handle.service = RunningService(kind="docker", status="start_failed", builder=build.builder.name,
                                            detail=str(exc), logs=[tail_log("build", build.log)],
                                            api_container=handle.container.id if handle.container is not None
                                            else None)
            if handle.container is not None:
                handle.logs()
            yield handle
            return
        handle.timings["start"] = time.monotonic() - t1
        handle.service = service_after(outcome, attrs)
        handle._relaunch_writable = relaunch_writable
        handle.logs()
        yield handle
    finally:
        with shield_interrupts():
            t2 = time.monotonic()
            if handle.container is not None:
                try:
                    handle.logs()
                except Exception:
                    pass
                try:
                    handle.container.remove(force=True, v=True)
                except Exception:
                    pass
            if build is not None:
                remove_build(client, build)
            sweep(client, options)
            handle.timings["teardown"] = time.monotonic() - t2


class _LaunchFailed(Exception):
    """The engine refused to create or start the API container (the message says which, and why)."""


def _api_message(exc: Exception) -> str:
    text = getattr(exc, "explanation", None) or str(exc)
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return " ".join(str(text).split())[:300]
