"""The sandbox rewrite of a learner's compose file (pure: reads files, runs no Docker).

It refuses what would reach the host (privileged, host namespaces, devices, the Docker socket,
host paths outside the repo), and rewrites the rest — every `build:` becomes `image: <our tag>`
(built first by builders.py), every port is published on 127.0.0.1 with a random host port,
every object carries the run labels, names are project-scoped, limits are set. The services built
from the repo get a read-only root with the single container's tmpfs mounts (sandbox.py); datastores
keep a writable one, their images write outside their volumes.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from . import RuntimeOptions, labels_for, sandbox
from ..dockerfile import base_image, parse_dockerfile
from .builders import dockerfile_env_port, dockerfile_exposed_ports, image_tag
from .compose_file import (ComposeRefused, _escape_dollars, _interpolate_tree, example_note, fill_empty_secrets,
                           parse_dotenv)
from .docker import COMMON_PORTS, candidate_ports
from .env_standin import stand_in
from .sandbox import LOG_OPTIONS, NO_MASQUERADE, tmpfs_mounts

if TYPE_CHECKING:  # pragma: no cover
    from ..models import Manifest

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
    # the services running on a read-only root -> the learner's own `tmpfs` entries (given back by writable())
    read_only: dict[str, list[str]] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)  # put on the volumes the grader adds
    missing_env_files: list[str] = field(default_factory=list)  # env_files the repo does not commit (dropped)
    example_env_files: list[str] = field(default_factory=list)  # examples used for such env_files

    def dump(self) -> str:
        return yaml.safe_dump(_escape_dollars(self.doc or {}), sort_keys=False, default_flow_style=False)

    def writable(self) -> list[str]:
        """Give the read-only services a writable root again (only their own tmpfs); their names."""
        names = list(self.read_only)
        services = (self.doc or {}).get("services") or {}
        for name, own in self.read_only.items():
            services[name].pop("read_only", None)
            services[name].pop("tmpfs", None)
            if own:
                services[name]["tmpfs"] = own
        self.read_only = {}
        return names

    def writable_workdirs(self, workdirs: dict[str, str]) -> list[str]:
        """Mount a private volume, seeded from the image, on each read-only service's working folder (a sqlite
        file or uploads beside the code, as on a laptop); {service: WORKDIR} of the built images. Their names."""
        services = (self.doc or {}).get("services") or {}
        added = []
        for name, workdir in workdirs.items():
            svc = services.get(name)
            if name not in self.read_only or svc is None or _target(workdir) in _mount_targets(svc):
                continue
            volume = f"pg-work-{re.sub(r'[^a-zA-Z0-9_.-]+', '-', name)}"
            svc["volumes"] = list(svc.get("volumes") or []) + [f"{volume}:{workdir}"]
            self.doc.setdefault("volumes", {})[volume] = {"labels": dict(self.labels)}
            added.append(name)
        return added


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
        self.standin_env: dict[str, dict[str, str]] = {}  # service -> what an env file's stand-in adds to its environment
        self.missing_env_files: list[str] = []
        self.example_env_files: list[str] = []

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
        built_from: dict[str, BuildSpec] = {}  # every service that runs an image built from the repo
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
            if self.standin_env.get(where):  # below its own environment: a README's values, the empty secrets filled
                svc["environment"] = {**self.standin_env[where], **(svc.get("environment") or {})}
            given = self.manifest.services.get(name) if self.manifest else None
            if given is not None and given.env:
                svc["environment"] = {**(svc.get("environment") or {}), **given.env}
                self.notes.append(sandbox.manifest_env_note(where, given.env))
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
        same_image = {spec.tag: spec for spec in builds.values()}
        for name, svc in services.items():
            if name not in built and str(svc.get("image") or "") in image_alias:
                svc["image"] = image_alias[str(svc["image"])]
                svc.pop("pull_policy", None)
                built_from[name] = same_image[svc["image"]]
        built_from.update(built)

        api = self._api_service(services, built, had_ports)
        api_ports: list[int] = []
        restart = None
        if api is not None:
            svc = services[api]
            if self.manifest and self.manifest.env:
                svc["environment"] = {**(svc.get("environment") or {}), **self.manifest.env}
                self.notes.append(sandbox.manifest_env_note(f"the API service '{api}'", self.manifest.env))
            restart = svc.get("restart")
            if restart is None and isinstance(svc.get("deploy"), dict):
                restart = (svc["deploy"].get("restart_policy") or {}).get("condition")
            mport = self.manifest.port if self.manifest else None
            published = [p for p, proto in had_ports.get(api, []) if proto == "tcp"]
            spec = built.get(api)
            own_port = dockerfile_env_port(_dockerfile_text(spec)) if spec is not None else None
            if mport:
                api_ports = [int(mport)]
            elif published:
                api_ports = published
            else:
                exposed = _service_image_ports(svc)
                if spec is not None:
                    exposed += [p for p in dockerfile_exposed_ports(_dockerfile_text(spec)) if p not in exposed]
                if own_port:  # the project's own `ENV PORT`: it listens there, and PORT stays as it is
                    exposed = [own_port, *[p for p in exposed if p != own_port]]
                api_ports = candidate_ports(None, exposed, COMMON_PORTS)
            # PORT for apps that read it (process.env.PORT, Heroku style): the container port the grader publishes
            # first, unless the project sets PORT itself (environment, env_file, the Dockerfile's ENV)
            if not self._env_has(svc, "PORT") and not own_port:
                svc["environment"] = {**(svc.get("environment") or {}), "PORT": str(api_ports[0])}
                self.notes.append(f"the API service '{api}' ran with PORT={api_ports[0]}, the container port the "
                                  "grader publishes, as a hosting platform sets it (the project does not set PORT)")
            svc["ports"] = list(svc.get("ports") or [])
            for port in api_ports:
                if loopback_port(port) not in svc["ports"]:
                    svc["ports"].append(loopback_port(port))
        read_only: dict[str, list[str]] = {}
        for name, svc in services.items():
            self._limits(svc, api=(name == api), built=(name in built))
            if self.options.read_only and name in built_from:
                base = base_image(parse_dockerfile(_dockerfile_text(built_from[name])), built_from[name].target)
                if is_datastore_image(base):
                    self.notes.append(f"service '{name}' is built on {base}, a datastore image: its root stays writable")
                else:
                    read_only[name] = self._read_only_root(svc)
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
            read_only=read_only,
            labels=dict(self.labels),
            missing_env_files=sorted(set(self.missing_env_files)),
            example_env_files=sorted(set(self.example_env_files)),
        )

    def _refuse_host_access(self, svc: dict[str, Any], where: str) -> None:
        # More privilege than Docker's defaults is withheld, not refused: the sandbox is stricter, never looser,
        # and an API that truly needs it says so by failing to start, with this note beside it.
        if svc.get("privileged") in (True, "true", "True"):
            self.notes.append(f"{where} asks for `privileged: true`; it ran unprivileged (the grader never runs "
                              "privileged containers)")
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
            self.notes.append(f"{where} adds the capabilit{'ies' if len(dangerous) > 1 else 'y'} "
                              f"{', '.join(dangerous)}; it ran without (the grader grants no more than Docker's "
                              "defaults)")
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
                found = stand_in(Path(resolved), dict.fromkeys([Path(resolved).parent, self.root]))
                if found is not None:  # an example beside it, the block a README shows for it, or both
                    filled = fill_empty_secrets(found.values)
                    # the environment wins over env_file: what the example file alone does not give goes there
                    self.standin_env.setdefault(where, {}).update({**found.beyond_example(), **filled})
                    self.notes.append(f"{where}: {example_note(found.label, found.values, filled)}")
                    self.example_env_files.append(found.label)
                    if found.example is not None:
                        out.append(str(found.example))
                elif required:
                    self.notes.append(f"{where}: env_file {path} is not in the repo (dropped)")
                    self.missing_env_files.append(path)
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

    def _read_only_root(self, svc: dict[str, Any]) -> list[str]:
        """`read_only: true` and the sandbox's tmpfs mounts where nothing of the learner's is mounted; the
        learner's own tmpfs entries are kept (and returned, for writable())."""
        own = svc.get("tmpfs")
        own = [str(own)] if isinstance(own, str) else [str(t) for t in own or []]
        taken = {_target(t.split(":", 1)[0]) for t in own} | _mount_targets(svc)
        svc["read_only"] = True
        svc["tmpfs"] = own + [f"{path}:{opts}" for path, opts in tmpfs_mounts(self.options).items() if path not in taken]
        return own

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


def _target(path: str) -> str:
    return os.path.normpath(path.strip()) if path.strip() else ""


def _mount_targets(svc: dict[str, Any]) -> set[str]:
    """Container paths the service's volumes mount on (a tmpfs on the same path would clash)."""
    targets: set[str] = set()
    for entry in svc.get("volumes") or []:
        if isinstance(entry, dict):
            targets.add(_target(str(entry.get("target") or "")))
        else:
            parts = str(entry).split(":")
            targets.add(_target(parts[0] if len(parts) == 1 else parts[1]))
    return targets


def _dockerfile_text(spec: BuildSpec) -> str:
    if spec.inline is not None:
        return spec.inline
    try:
        return spec.dockerfile.read_text("utf-8", "replace") if spec.dockerfile else ""
    except OSError:
        return ""


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
