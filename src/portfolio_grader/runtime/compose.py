"""Docker Compose stacks, sandboxed: the learner's compose file is never run as is.

`prepare(...)` loads the file and writes nothing: it interpolates variables (from the repo's
`.env` only, never the grader's environment), refuses what would reach the host (privileged,
host namespaces, devices, the Docker socket, host paths outside the repo), and rewrites the
rest — every `build:` becomes `image: <our tag>` (built first by builders.py), every port is
published on 127.0.0.1 with a random host port, every object carries the run labels, names are
project-scoped, limits are set. `run_stack(...)` builds, `up -d`s the rewritten copy from a
grader-owned temp dir, waits for the API to answer HTTP, and tears everything down.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from ..models import LogTail, RunningService
from . import RuntimeOptions, RuntimeUnavailable, labels_for, tail_log
from .builders import (
    BuildRequest,
    BuildResult,
    CliProbe,
    build_image,
    cli_probes,
    detect_builder,
    dockerfile_exposed_ports,
    engine_env,
    image_tag,
    parse_compose_version,
    remove_build,
    run_command,
)
from .sandbox import LOG_OPTIONS, NO_MASQUERADE
from .docker import (
    COMMON_PORTS,
    candidate_ports,
    container_log_text,
    exec_in,
    health_path,
    host_ports_from_attrs,
    shield_interrupts,
    sweep,
    wait_for_http,
)

if TYPE_CHECKING:  # pragma: no cover
    from ..models import Manifest, RepoFacts, Workspace

DATASTORE_IMAGES = frozenset(
    """postgres postgresql postgis mysql mariadb mongo mongodb redis redis-stack valkey keydb memcached rabbitmq
    elasticsearch opensearch kafka zookeeper cp-kafka cp-zookeeper nats minio mailhog mailpit adminer pgadmin4 pgadmin
    mongo-express redis-commander localstack cassandra influxdb clickhouse-server neo4j couchdb jaeger
    prometheus grafana mssql cockroach etcd consul vault dynamodb-local azurite""".split()
)
# What official datastore entrypoints need as root before they drop to their own user; KILL lets
# them stop the temporary server they start to initialise a database (postgres, mysql).
DATASTORE_CAPS = ("CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID")
DOCKER_DEFAULT_CAPS = frozenset(
    "AUDIT_WRITE CHOWN DAC_OVERRIDE FOWNER FSETID KILL MKNOD NET_BIND_SERVICE NET_RAW SETFCAP SETGID SETPCAP SETUID"
    " SYS_CHROOT".split()
)
HOST_NAMESPACE_KEYS = ("network_mode", "pid", "ipc", "userns_mode", "uts", "cgroup")
RESOURCE_KEYS = (
    "mem_limit",
    "memswap_limit",
    "mem_reservation",
    "cpus",
    "cpu_quota",
    "cpu_period",
    "cpu_count",
    "cpu_percent",
    "cpu_rt_runtime",
    "cpu_rt_period",
    "pids_limit",
)
DROPPED_KEYS = ("container_name", "external_links", "logging", "runtime", "isolation", "scale", "pull_policy")
ENV_FALLBACKS = (".env", ".env.example", ".env.sample", ".env.dist", "example.env", ".env.template")


class ComposeRefused(Exception):
    """The compose file asks for something the grader will not run (one sentence why)."""


# ---------------------------------------------------------------- compose CLI detection


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


# ---------------------------------------------------------------- loading and interpolation


class _Loader(yaml.SafeLoader):
    """YAML 1.2-ish scalars, like Compose v2: `22:22` stays a string, `on`/`yes` stay strings."""


_Loader.yaml_implicit_resolvers = {
    key: [(tag, regex) for tag, regex in resolvers if tag not in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float", "tag:yaml.org,2002:bool")]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
_Loader.add_implicit_resolver("tag:yaml.org,2002:int", re.compile(r"^[-+]?(?:0|[1-9][0-9]*|0x[0-9a-fA-F]+|0o[0-7]+)$"), list("-+0123456789"))
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
    list("-+0123456789."),
)


def load_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass


def parse_dotenv(text: str) -> dict[str, str]:
    """KEY=VALUE lines (`export`, quotes, comments) as Compose reads `.env`."""
    env: dict[str, str] = {}
    for raw in (text or "").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[7:].lstrip()
        if "=" not in line:
            continue
        key, value = line.split("=", 1)
        key = key.strip()
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", key):
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            quote, value = value[0], value[1:-1]
            if quote == '"':
                value = value.replace("\\n", "\n").replace('\\"', '"')
        else:
            value = re.split(r"\s+#", value, maxsplit=1)[0].rstrip()
        env[key] = value
    return env


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Compose variable substitution: $$, $VAR, ${VAR}, ${VAR:-d}, ${VAR-d}, ${VAR:?e}, ${VAR?e}, ${VAR:+a}, ${VAR+a}."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch != "$" or i + 1 >= n:
            out.append(ch)
            i += 1
            continue
        nxt = text[i + 1]
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "{":
            depth, j = 1, i + 2
            while j < n and depth:
                if text[j] == "{":
                    depth += 1
                elif text[j] == "}":
                    depth -= 1
                j += 1
            if depth:
                raise ComposeRefused(f"the compose file has an unclosed variable: {text[i:i + 40]!r}")
            out.append(_expand(text[i + 2 : j - 1], env))
            i = j
        elif nxt == "_" or nxt.isalpha():
            j = i + 1
            while j < n and (text[j] == "_" or text[j].isalnum()):
                j += 1
            out.append(env.get(text[i + 1 : j], ""))
            i = j
        else:
            out.append("$")
            i += 1
    return "".join(out)


def _expand(expr: str, env: Mapping[str, str]) -> str:
    match = re.match(r"([A-Za-z_][A-Za-z0-9_]*)(:?[-?+])?(.*)$", expr, re.DOTALL)
    if not match:
        raise ComposeRefused(f"the compose file has an invalid variable: ${{{expr}}}")
    name, op, word = match.group(1), match.group(2), match.group(3)
    value = env.get(name)
    if not op:
        return value or ""
    colon = op.startswith(":")
    kind = op[-1]
    missing = value is None or (colon and value == "")
    if kind == "-":
        return interpolate(word, env) if missing else (value or "")
    if kind == "+":
        return "" if missing else interpolate(word, env)
    if missing:  # "?"
        message = interpolate(word, env) or "required"
        raise ComposeRefused(
            f"the compose file requires the variable {name} ({message}); commit a .env.example that sets it"
        )
    return value or ""


def _interpolate_tree(node: Any, env: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [_interpolate_tree(v, env) for v in node]
    if isinstance(node, dict):
        return {k: _interpolate_tree(v, env) for k, v in node.items()}
    return node


def _escape_dollars(node: Any) -> Any:
    """After our interpolation, what compose sees must be literal: `$` -> `$$`."""
    if isinstance(node, str):
        return node.replace("$", "$$")
    if isinstance(node, list):
        return [_escape_dollars(v) for v in node]
    if isinstance(node, dict):
        return {k: _escape_dollars(v) for k, v in node.items()}
    return node


# ---------------------------------------------------------------- the plan


@dataclass
class BuildSpec:
    services: list[str]
    context: Path
    dockerfile: Path | None
    tag: str
    args: dict[str, str] = field(default_factory=dict)
    target: str | None = None
    inline: str | None = None  # dockerfile_inline

    def key(self) -> tuple:
        return (str(self.context), str(self.dockerfile), self.inline, tuple(sorted(self.args.items())), self.target)


@dataclass
class ComposePlan:
    compose_path: Path | None = None
    doc: dict[str, Any] | None = None  # the rewritten file, ready to dump
    builds: list[BuildSpec] = field(default_factory=list)
    api_service: str | None = None
    api_ports: list[int] = field(default_factory=list)
    api_restart: str | None = None
    service_names: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    refusal: str | None = None
    project: str = ""

    def dump(self) -> str:
        return yaml.safe_dump(_escape_dollars(self.doc or {}), sort_keys=False, default_flow_style=False)


def project_name(run_id: str) -> str:
    name = re.sub(r"[^a-z0-9_-]+", "-", f"pg-{run_id}".lower()).strip("-_")
    return name or "pg-run"


def _inside(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
        return True
    except ValueError:
        return False


def _image_words(image: str) -> set[str]:
    ref = (image or "").lower().split("@", 1)[0]
    last = ref.rsplit("/", 1)[-1]
    repo = last.split(":", 1)[0]
    words = {repo, *ref.split(":", 1)[0].split("/")}
    words |= set(re.split(r"[-_]", repo))
    return words


def is_datastore_image(image: str | None) -> bool:
    """postgres:16, bitnami/redis, mongo, mcr.microsoft.com/mssql/server ... (not an API)."""
    if not image:
        return False
    words = _image_words(image)
    return bool(words & DATASTORE_IMAGES) and not {"python", "node", "golang", "openjdk", "eclipse-temurin"} & words


def parse_port_entry(entry: Any) -> tuple[int | None, str, str | None]:
    """(container port, protocol, note) of one `ports:` entry, short or long syntax.

    `8000`, "8000", "8080:8000", "127.0.0.1:8080:8000/tcp", "[::1]:80:80", {"target": 8000, "published": 80}.
    Ranges ("8000-8005:8000-8005") give (None, proto, note).
    """
    if isinstance(entry, bool):
        return None, "tcp", f"ignored the port entry {entry!r}"
    if isinstance(entry, int):
        return entry, "tcp", None
    if isinstance(entry, dict):
        target = entry.get("target")
        proto = str(entry.get("protocol") or "tcp").lower()
        try:
            return int(target), proto, None
        except (TypeError, ValueError):
            text = str(target or "")
            if "-" in text:
                return None, proto, f"dropped the port range {text} (ranges are not published by the grader)"
            return None, proto, f"ignored the port entry {entry!r}"
    text = str(entry).strip()
    proto = "tcp"
    if "/" in text:
        text, proto = text.rsplit("/", 1)
        proto = proto.lower() or "tcp"
    text = re.sub(r"^\[[^\]]*\]:", "", text)  # [::1]:8080:80
    container = text.rsplit(":", 1)[-1]
    if "-" in container:
        return None, proto, f"dropped the port range {entry} (ranges are not published by the grader)"
    if not container.isdigit() or not 0 < int(container) < 65536:
        return None, proto, f"ignored the port entry {entry!r}"
    return int(container), proto, None


def loopback_port(port: int, proto: str = "tcp") -> str:
    return f"127.0.0.1::{port}" + ("" if proto == "tcp" else f"/{proto}")


def _labels_dict(value: Any) -> dict[str, str]:
    if isinstance(value, dict):
        return {str(k): "" if v is None else str(v) for k, v in value.items()}
    out: dict[str, str] = {}
    for item in value or []:
        key, _, val = str(item).partition("=")
        out[key] = val
    return out


def _caps(value: Any) -> list[str]:
    return [str(c).upper().removeprefix("CAP_") for c in (value or [])]


def _service_image_ports(service: dict[str, Any]) -> list[int]:
    ports: list[int] = []
    for entry in service.get("expose") or []:
        number = str(entry).split("/", 1)[0]
        if number.isdigit() and int(number) not in ports:
            ports.append(int(number))
    return ports


class _Rewriter:
    def __init__(
        self,
        compose_path: Path,
        repo_root: Path,
        options: RuntimeOptions,
        workspace_name: str,
        manifest: Manifest | None,
        env: Mapping[str, str],
    ) -> None:
        self.compose_path = compose_path
        self.compose_dir = compose_path.parent.resolve()
        self.root = repo_root.resolve()
        self.options = options
        self.workspace_name = workspace_name
        self.manifest = manifest
        self.env = dict(env)
        self.labels = labels_for(options)
        self.notes: list[str] = []

    # ---- paths
    def _host_path(self, source: str, where: str, *, relative_escape_drops: bool = True) -> str | None:
        """An absolute host path inside the repo, None to drop; refuses what reaches the host."""
        raw = source
        expanded = os.path.expanduser(source) if source.startswith("~") else source
        is_abs = expanded.startswith("/") or re.match(r"^[A-Za-z]:[\\/]", expanded) is not None
        if is_abs:
            norm = os.path.normpath(expanded)
            if norm == "/" or re.fullmatch(r"[A-Za-z]:[\\/]?", norm):
                raise ComposeRefused(f"{where} mounts the host's root directory ({raw}); the grader does not run that")
            if norm.endswith("docker.sock") or "docker_engine" in norm:
                raise ComposeRefused(
                    f"{where} mounts the Docker socket ({raw}); a container with it controls the host's Docker, "
                    "so the grader does not run it"
                )
            resolved = Path(norm).resolve()
            if not _inside(resolved, self.root):
                raise ComposeRefused(
                    f"{where} mounts the host path {raw}, outside the repository; use a path inside the repo "
                    "(./data) or a named volume"
                )
            return str(resolved)
        resolved = (self.compose_dir / expanded).resolve()
        if not _inside(resolved, self.root):
            if relative_escape_drops:
                self.notes.append(f"dropped {where}'s mount of {raw}: it points outside the repository")
                return None
            raise ComposeRefused(f"{where} uses {raw}, outside the repository")
        if resolved.name == "docker.sock":
            raise ComposeRefused(f"{where} mounts a Docker socket ({raw}); the grader does not run that")
        return str(resolved)

    def _volume(self, entry: Any, where: str) -> Any | None:
        if isinstance(entry, dict):
            kind = entry.get("type", "volume")
            if kind == "npipe":
                raise ComposeRefused(f"{where} mounts a named pipe of the host; the grader does not run that")
            if kind == "bind":
                source = str(entry.get("source") or "")
                path = self._host_path(source, where)
                if path is None:
                    return None
                return {**entry, "source": path}
            return entry
        text = str(entry)
        parts = text.split(":")
        if re.match(r"^[A-Za-z]:[\\/]", text):  # C:\path:/target
            parts = [parts[0] + ":" + parts[1], *parts[2:]]
        if len(parts) == 1:
            return text  # anonymous volume
        source, rest = parts[0], parts[1:]
        if source.startswith((".", "/", "~")) or "\\" in source or re.match(r"^[A-Za-z]:", source):
            path = self._host_path(source, where)
            if path is None:
                return None
            return ":".join([path, *rest])
        return text  # a named volume

    # ---- the whole file
    def rewrite(self, doc: Any) -> ComposePlan:
        if not isinstance(doc, dict) or not isinstance(doc.get("services"), dict) or not doc["services"]:
            raise ComposeRefused(f"{self.compose_path.name} has no `services:`")
        if "include" in doc:
            raise ComposeRefused("the compose file uses `include:`; the grader runs one self-contained compose file")
        doc = _interpolate_tree(doc, self.env)
        out: dict[str, Any] = {}
        services: dict[str, dict[str, Any]] = {}
        builds: dict[tuple, BuildSpec] = {}
        built: dict[str, BuildSpec] = {}
        image_alias: dict[str, str] = {}
        had_ports: dict[str, list[tuple[int, str]]] = {}
        for name, raw in doc["services"].items():
            name = str(name)
            svc = dict(raw or {})
            where = f"service '{name}'"
            self._refuse_host_access(svc, where)
            # mounts
            if "volumes" in svc:
                svc["volumes"] = [v for v in (self._volume(e, where) for e in svc["volumes"] or []) if v is not None]
            for key in ("env_file",):
                if key in svc:
                    svc[key] = self._env_files(svc[key], where)
            if "environment" in svc:
                svc["environment"] = self._environment(svc["environment"])
            # build -> image
            if "build" in svc:
                spec = self._build_spec(name, svc.pop("build"), where)
                existing = builds.get(spec.key())
                if existing:
                    existing.services.append(name)
                    spec = existing
                else:
                    builds[spec.key()] = spec
                built[name] = spec
                if svc.get("image"):
                    image_alias[str(svc["image"])] = spec.tag
                svc["image"] = spec.tag
                svc.pop("pull_policy", None)
            # ports -> loopback, random host port
            entries: list[tuple[int, str]] = []
            rewritten: list[str] = []
            for entry in svc.get("ports") or []:
                cport, proto, note = parse_port_entry(entry)
                if note:
                    self.notes.append(f"{where}: {note}")
                if cport is None:
                    continue
                if (cport, proto) not in entries:
                    entries.append((cport, proto))
                    rewritten.append(loopback_port(cport, proto))
            had_ports[name] = entries
            if "ports" in svc:
                svc["ports"] = rewritten
            # names: project-scoped, the old container name kept as a network alias
            old_name = svc.get("container_name")
            for key in DROPPED_KEYS:
                if key in svc and key != "pull_policy":
                    if key == "logging":
                        self.notes.append(f"{where}: removed `logging` so the grader can read the logs")
                    elif key == "external_links":
                        self.notes.append(f"{where}: removed `external_links` (containers outside the stack)")
                    svc.pop(key)
            if old_name:
                self._add_alias(svc, str(old_name))
            deploy = svc.get("deploy")
            if isinstance(deploy, dict):
                deploy = {k: v for k, v in deploy.items() if k not in ("resources", "replicas", "placement")}
                if deploy:
                    svc["deploy"] = deploy
                else:
                    svc.pop("deploy")
            svc["labels"] = {**_labels_dict(svc.get("labels")), **self.labels}
            services[name] = svc
        # services that used the image a built service tags now use our tag
        for name, svc in services.items():
            if name not in built and str(svc.get("image") or "") in image_alias:
                svc["image"] = image_alias[str(svc["image"])]
                svc.pop("pull_policy", None)

        api = self._api_service(services, built, had_ports)
        api_ports: list[int] = []
        restart = None
        if api is not None:
            svc = services[api]
            restart = svc.get("restart")
            if restart is None and isinstance(svc.get("deploy"), dict):
                restart = (svc["deploy"].get("restart_policy") or {}).get("condition")
            mport = self.manifest.port if self.manifest else None
            published = [p for p, proto in had_ports.get(api, []) if proto == "tcp"]
            if mport:
                api_ports = [int(mport)]
            elif published:
                api_ports = published
            else:
                exposed = _service_image_ports(svc)
                spec = built.get(api)
                if spec is not None:
                    exposed += [p for p in dockerfile_exposed_ports(_dockerfile_text(spec)) if p not in exposed]
                api_ports = candidate_ports(None, exposed, COMMON_PORTS)
                if not self._env_has(svc, "PORT"):
                    env = svc.get("environment") or {}
                    svc["environment"] = {**env, "PORT": str(exposed[0] if exposed else 8000)}
            svc["ports"] = list(svc.get("ports") or [])
            for port in api_ports:
                if loopback_port(port) not in svc["ports"]:
                    svc["ports"].append(loopback_port(port))
        for name, svc in services.items():
            self._limits(svc, api=(name == api), built=(name in built))
            if name == api or name in built:  # the learner's code reaches the grader's webhook receiver on the host
                hosts = svc.get("extra_hosts") or []
                hosts = [f"{k}:{v}" for k, v in hosts.items()] if isinstance(hosts, dict) else list(hosts)
                svc["extra_hosts"] = [h for h in hosts if not str(h).startswith("host.docker.internal")] + [
                    "host.docker.internal:host-gateway"]

        out["services"] = services
        uses_default = any(
            "network_mode" not in s and (not s.get("networks") or "default" in (s.get("networks") or []))
            for s in services.values()
        )
        networks = self._top_level(doc.get("networks"), "network")
        if uses_default:
            networks.setdefault("default", {})
            networks["default"] = {**(networks["default"] or {}), "labels": {**_labels_dict((networks["default"] or {}).get("labels")), **self.labels}}
        networks = self._cut_egress(services, networks)
        if networks:
            out["networks"] = networks
        volumes = self._top_level(doc.get("volumes"), "volume")
        if volumes:
            out["volumes"] = volumes
        for key in ("configs", "secrets"):
            if doc.get(key):
                out[key] = self._files_section(doc[key], key)
        return ComposePlan(
            compose_path=self.compose_path,
            doc=out,
            builds=list(builds.values()),
            api_service=api,
            api_ports=api_ports,
            api_restart=None if restart is None else str(restart),
            service_names=list(services),
            notes=self.notes,
            project=project_name(self.options.run_id),
        )

    def _refuse_host_access(self, svc: dict[str, Any], where: str) -> None:
        if svc.get("privileged") in (True, "true", "True"):
            raise ComposeRefused(f"{where} asks for `privileged: true`; the grader does not run privileged containers")
        for key in HOST_NAMESPACE_KEYS:
            value = str(svc.get(key) or "")
            if value == "host":
                raise ComposeRefused(f"{where} uses `{key}: host`; the grader does not share the host's namespaces")
            if key == "network_mode" and value.startswith("container:"):
                raise ComposeRefused(f"{where} joins a container outside the stack (`network_mode: {value}`)")
        for key in ("devices", "device_cgroup_rules", "gpus"):
            if svc.get(key):
                raise ComposeRefused(f"{where} asks for host devices (`{key}`); the grader does not pass devices")
        if svc.get("cgroup_parent"):
            raise ComposeRefused(f"{where} sets `cgroup_parent`; the grader does not run that")
        dangerous = [c for c in _caps(svc.get("cap_add")) if c not in DOCKER_DEFAULT_CAPS]
        if dangerous:
            raise ComposeRefused(
                f"{where} adds the capabilit{'ies' if len(dangerous) > 1 else 'y'} {', '.join(dangerous)}; "
                "the grader does not grant more than Docker's defaults"
            )
        for opt in svc.get("security_opt") or []:
            text = str(opt).lower().replace("=", ":")
            if "unconfined" in text or "label:disable" in text or text.startswith("no-new-privileges:false"):
                raise ComposeRefused(f"{where} weakens the sandbox (`security_opt: {opt}`); the grader does not run that")
        for ref in svc.get("volumes_from") or []:
            if str(ref).startswith("container:"):
                raise ComposeRefused(f"{where} mounts volumes of a container outside the stack ({ref})")
        extends = svc.get("extends")
        if isinstance(extends, dict) and extends.get("file"):
            raise ComposeRefused(
                f"{where} extends a service of another file ({extends['file']}); put it in the one compose file"
            )

    def _env_files(self, value: Any, where: str) -> list[str]:
        items = value if isinstance(value, list) else [value]
        out: list[str] = []
        for item in items:
            path = str(item.get("path") if isinstance(item, dict) else item)
            required = not (isinstance(item, dict) and item.get("required") is False)
            resolved = self._host_path(path, where)
            if resolved is None:
                continue
            if not Path(resolved).is_file():
                alt = next(
                    (Path(resolved).with_name(Path(resolved).name + s) for s in (".example", ".sample", ".dist", ".template")
                     if Path(resolved).with_name(Path(resolved).name + s).is_file()),
                    None,
                )
                if alt is not None:
                    self.notes.append(f"{where}: {path} is not in the repo, used {alt.name} instead")
                    out.append(str(alt))
                elif required:
                    self.notes.append(f"{where}: env_file {path} is not in the repo (dropped)")
                continue
            out.append(resolved)
        return out

    def _environment(self, value: Any) -> dict[str, str]:
        """A dict; value-less entries come from the repo's .env only, never from the grader's environment."""
        items: dict[str, Any] = {}
        if isinstance(value, dict):
            items = dict(value)
        else:
            for entry in value or []:
                key, sep, val = str(entry).partition("=")
                items[key] = val if sep else None
        out: dict[str, str] = {}
        for key, val in items.items():
            if val is None:
                if key in self.env:
                    out[str(key)] = self.env[key]
                continue
            if isinstance(val, bool):
                val = "true" if val else "false"
            out[str(key)] = str(val)
        return out

    def _env_has(self, svc: dict[str, Any], key: str) -> bool:
        if key in (svc.get("environment") or {}):
            return True
        for path in svc.get("env_file") or []:
            try:
                if key in parse_dotenv(Path(path).read_text("utf-8", "replace")):
                    return True
            except OSError:
                continue
        return False

    def _build_spec(self, service: str, build: Any, where: str) -> BuildSpec:
        section = {"context": build} if isinstance(build, str) else dict(build or {})
        context = str(section.get("context") or ".")
        if "://" in context or context.startswith("git@") or re.match(r"^(github|gitlab)\.com/", context):
            raise ComposeRefused(f"{where} builds from a remote context ({context}); the grader builds only the repository")
        ctx = (self.compose_dir / os.path.expanduser(context)).resolve()
        if not _inside(ctx, self.root):
            raise ComposeRefused(f"{where} builds from {context}, outside the repository")
        inline = section.get("dockerfile_inline")
        dockerfile: Path | None = None
        if inline is None:
            dockerfile = (ctx / str(section.get("dockerfile") or "Dockerfile")).resolve()
            if not _inside(dockerfile, self.root):
                raise ComposeRefused(f"{where} uses a Dockerfile outside the repository ({section.get('dockerfile')})")
        args: dict[str, str] = {}
        raw_args = section.get("args") or {}
        if isinstance(raw_args, list):
            raw_args = {k: (v if sep else None) for k, sep, v in (str(a).partition("=") for a in raw_args)}
        for key, val in raw_args.items():
            if val is None:
                if key in self.env:
                    args[str(key)] = self.env[key]
                continue
            args[str(key)] = str(val).lower() if isinstance(val, bool) else str(val)
        for key in ("ssh", "secrets"):
            if section.get(key):
                self.notes.append(f"{where}: build `{key}` are not passed to the build by the grader")
        return BuildSpec(
            services=[service],
            context=ctx,
            dockerfile=dockerfile,
            tag=image_tag(self.workspace_name, self.options.run_id, service),
            args=args,
            target=str(section["target"]) if section.get("target") else None,
            inline=str(inline) if inline is not None else None,
        )

    def _add_alias(self, svc: dict[str, Any], alias: str) -> None:
        if "network_mode" in svc:
            return
        nets = svc.get("networks")
        if not nets:
            svc["networks"] = {"default": {"aliases": [alias]}}
            return
        if isinstance(nets, list):
            nets = {str(n): None for n in nets}
        nets = dict(nets)
        for key, conf in nets.items():
            conf = dict(conf or {})
            conf["aliases"] = [*(conf.get("aliases") or []), alias]
            nets[key] = conf
        svc["networks"] = nets

    def _api_service(
        self,
        services: dict[str, dict[str, Any]],
        built: dict[str, BuildSpec],
        had_ports: dict[str, list[tuple[int, str]]],
    ) -> str | None:
        return choose_api_service(
            services,
            built=set(built),
            publishing={n for n, p in had_ports.items() if p},
            manifest_service=self.manifest.service if self.manifest else None,
            notes=self.notes,
        )

    def _cut_egress(self, services: dict[str, dict[str, Any]], networks: dict[str, Any]) -> dict[str, Any]:
        """No route out at run time (sandbox.py): the stack's networks do not masquerade, unless asked to."""
        if self.options.egress or (self.manifest is not None and getattr(self.manifest, "egress", False)):
            return networks
        for name, svc in services.items():
            if str(svc.get("network_mode") or "") == "bridge":
                svc.pop("network_mode")
                self.notes.append(f"service '{name}': `network_mode: bridge` replaced by the stack's own network")
                networks.setdefault("default", {"labels": dict(self.labels)})
        return {name: {**(conf or {}), "driver_opts": dict(NO_MASQUERADE)} for name, conf in networks.items()}

    def _limits(self, svc: dict[str, Any], *, api: bool, built: bool) -> None:
        svc["logging"] = {"driver": "json-file", "options": dict(LOG_OPTIONS)}  # a log flood stays small on disk
        for key in RESOURCE_KEYS:
            svc.pop(key, None)
        svc["mem_limit"] = self.options.memory
        svc["cpus"] = float(self.options.cpus)
        svc["pids_limit"] = int(self.options.pids)
        opts = [str(o) for o in svc.get("security_opt") or [] if not str(o).startswith("no-new-privileges")]
        svc["security_opt"] = [*opts, "no-new-privileges:true"]
        learner_caps = [c for c in _caps(svc.get("cap_add")) if c in DOCKER_DEFAULT_CAPS]
        caps = learner_caps if api else sorted({*DATASTORE_CAPS, *learner_caps})
        svc["cap_drop"] = ["ALL"]
        if caps:
            svc["cap_add"] = caps
        else:
            svc.pop("cap_add", None)
        svc.pop("privileged", None)

    def _top_level(self, section: Any, kind: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, conf in (section or {}).items():
            conf = dict(conf or {})
            if conf.get("external"):
                raise ComposeRefused(
                    f"the compose file uses an external {kind} '{name}' that exists outside the stack; "
                    f"declare it in the file instead"
                )
            if "name" in conf:
                conf.pop("name")
                self.notes.append(f"{kind} '{name}': removed its fixed `name:` so it is private to this grade")
            if kind == "volume" and (conf.get("driver_opts") or conf.get("driver") not in (None, "local")):
                conf.pop("driver_opts", None)
                conf.pop("driver", None)
                self.notes.append(f"volume '{name}': driver options removed (a plain volume is used)")
            if kind == "network":
                for key in ("driver_opts", "ipam"):
                    conf.pop(key, None)
                if conf.get("driver") not in (None, "bridge"):
                    self.notes.append(f"network '{name}': driver {conf.get('driver')} replaced by bridge")
                    conf.pop("driver", None)
            conf["labels"] = {**_labels_dict(conf.get("labels")), **self.labels}
            out[str(name)] = conf
        return out

    def _files_section(self, section: Any, key: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, conf in (section or {}).items():
            conf = dict(conf or {})
            if conf.get("external"):
                raise ComposeRefused(f"the compose file uses an external {key[:-1]} '{name}'")
            if conf.get("file"):
                path = self._host_path(str(conf["file"]), f"{key[:-1]} '{name}'")
                if path is None:
                    continue
                conf["file"] = path
            if conf.get("environment"):
                self.notes.append(f"{key[:-1]} '{name}' from the environment was dropped")
                continue
            out[str(name)] = conf
        return out


def choose_api_service(
    services: Mapping[str, Mapping[str, Any]],
    *,
    built: set[str],
    publishing: set[str],
    manifest_service: str | None = None,
    notes: list[str] | None = None,
) -> str | None:
    """The API: manifest `service`, else a built service that publishes a port, else the first
    built one, else the first publishing service that is not a datastore image."""
    names = list(services)
    if manifest_service:
        if manifest_service in services:
            return manifest_service
        if notes is not None:
            notes.append(
                f"portfolio-grader.yaml names the service '{manifest_service}', which the compose file does not have"
            )
    for name in names:
        if name in built and name in publishing:
            return name
    for name in names:
        if name in built:
            return name
    for name in names:
        if name in publishing and not is_datastore_image(str(services[name].get("image") or "")):
            return name
    return None


def _dockerfile_text(spec: BuildSpec) -> str:
    if spec.inline is not None:
        return spec.inline
    try:
        return spec.dockerfile.read_text("utf-8", "replace") if spec.dockerfile else ""
    except OSError:
        return ""


def dotenv_for(compose_dir: Path, root: Path) -> tuple[dict[str, str], str | None]:
    """The variables compose would read: `.env` beside the compose file (or at the root), else an example file."""
    for folder in dict.fromkeys([compose_dir, root]):
        for name in ENV_FALLBACKS:
            path = folder / name
            if path.is_file():
                try:
                    return parse_dotenv(path.read_text("utf-8", "replace")), (None if name == ".env" else name)
                except OSError:
                    continue
    return {}, None


def rewrite_compose(
    doc: Any,
    compose_path: Path,
    repo_root: Path,
    options: RuntimeOptions,
    *,
    workspace_name: str = "submission",
    manifest: Manifest | None = None,
    env: Mapping[str, str] | None = None,
) -> ComposePlan:
    """The sandboxed plan for a loaded compose document (no Docker; refusals in `plan.refusal`)."""
    rewriter = _Rewriter(compose_path, repo_root, options, workspace_name, manifest, env or {})
    try:
        return rewriter.rewrite(doc)
    except ComposeRefused as exc:
        names = list((doc or {}).get("services") or {}) if isinstance(doc, dict) else []
        return ComposePlan(
            compose_path=compose_path,
            refusal=str(exc),
            service_names=[str(n) for n in names],
            notes=rewriter.notes,
            project=project_name(options.run_id),
        )


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
