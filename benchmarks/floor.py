"""A sample's floor: the least any grader must spend on it, measured without the grader's code.

Cached `DOCKER_BUILDKIT=1 docker build`, `docker run` publishing on 127.0.0.1 (a compose sample: its
images built the same way, then `up -d` with the compose tool the grader uses), wait until the spec
answers, then a raw `schemathesis run --max-examples 15 -c all --seed S`, with a test user's bearer
token when the spec has a sign-up and a login. Removing what was started comes after the clock stops.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml

LABEL = "portfolio-grader-benchmark"
SPEC_PATHS = ("/openapi.json", "/swagger.json", "/api-docs", "/v3/api-docs")
READY_POLL = 0.1  # seconds between readiness polls: a floor waits no longer than it must


class FloorError(RuntimeError):
    """The floor could not be measured (a build or start failed): the benchmark says which and goes on."""


@dataclass
class Floor:
    seconds: float = 0.0  # build + start + spec + token + Schemathesis
    parts: dict[str, float] = field(default_factory=dict)  # build, start, spec, token, schemathesis
    schemathesis_exit: int | None = None


def _sh(cmd: list[str], *, cwd: str | Path | None = None, env: dict[str, str] | None = None,
        timeout: float = 900) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise FloorError(f"`{' '.join(cmd[:4])} ...` exited {proc.returncode}: {(proc.stderr or proc.stdout)[-400:]}")
    return proc.stdout


def docker_build_command() -> list[str]:
    """The BuildKit build the grader's builder uses on this machine (`docker buildx build --load`, or
    `DOCKER_BUILDKIT=1 docker build` with a CLI older than 23, which has BuildKit built in)."""
    from portfolio_grader.runtime.builders import detect_builder  # which CLI, not how the grader builds

    builder = detect_builder()
    if builder.kind == "buildx":
        return [builder.cli, "buildx", "build", "--load"]
    return [builder.cli if builder.kind == "cli" else "docker", "build"]


def _build(context: Path, dockerfile: Path, tag: str) -> None:
    env = {**os.environ, "DOCKER_BUILDKIT": "1"}
    _sh([*docker_build_command(), "-q", "--label", LABEL, "-f", str(dockerfile), "-t", tag, str(context)], env=env)


def _manifest(sample: Path) -> dict:
    path = sample / "portfolio-grader.yaml"
    return (yaml.safe_load(path.read_text("utf-8")) or {}) if path.is_file() else {}


def _exposed_port(dockerfile: Path) -> int:
    for line in dockerfile.read_text("utf-8").splitlines():
        words = line.split()
        if words and words[0].upper() == "EXPOSE" and len(words) > 1:
            return int(words[1].split("/")[0])
    return 8000


def _compose_file(sample: Path) -> Path | None:
    for name in ("docker-compose.yml", "docker-compose.yaml", "compose.yml", "compose.yaml"):
        if (sample / name).is_file():
            return sample / name
    return None


def wait_for_spec(base: str, spec_path: str | None, deadline: float = 120.0) -> tuple[str, dict]:
    """Poll until a spec answers; returns its URL and the document."""
    paths = [spec_path] if spec_path else list(SPEC_PATHS)
    ends = time.monotonic() + deadline
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < ends:
            for path in paths:
                try:
                    answer = client.get(base + path)
                    if answer.status_code == 200:
                        return base + path, answer.json()
                except (httpx.HTTPError, ValueError):
                    pass
            time.sleep(READY_POLL)
    raise FloorError(f"no spec answered at {base} within {deadline:g} s")


# ---------------------------------------------------------------- a test user's token


def _resolve(spec: dict, schema: dict | None) -> dict:
    while schema and "$ref" in schema:
        node: object = spec
        for part in schema["$ref"].lstrip("#/").split("/"):
            node = node[part]  # type: ignore[index]
        schema = node  # type: ignore[assignment]
    return schema or {}


def _body_schema(spec: dict, operation: dict) -> tuple[str, dict]:
    content = (operation.get("requestBody") or {}).get("content") or {}
    for kind in ("application/json", "application/x-www-form-urlencoded"):
        if kind in content:
            return kind, _resolve(spec, content[kind].get("schema"))
    return "application/json", {}


def _value(name: str, schema: dict, email: str, password: str) -> object:
    lowered = name.lower()
    if "password" in lowered:
        return password
    if "email" in lowered or lowered == "username":
        return email
    if schema.get("type") == "integer":
        return 1
    return "Bench User"


def _find(spec: dict, words: tuple[str, ...]) -> tuple[str, dict] | None:
    for path, item in (spec.get("paths") or {}).items():
        if "post" in item and any(w in path.lower() for w in words):
            return path, item["post"]
    return None


def bearer_token(base: str, spec: dict) -> str | None:
    """Sign a test user up and log it in, from the spec alone; None when the spec has no sign-up and login."""
    signup, login = _find(spec, ("register", "signup", "sign-up")), _find(spec, ("login", "token", "session"))
    if signup is None or login is None:
        return None
    email, password = f"bench-{uuid.uuid4().hex[:8]}@example.com", "Bench-pass-12345!"
    with httpx.Client(base_url=base, timeout=10.0) as client:
        kind, schema = _body_schema(spec, signup[1])
        body = {name: _value(name, _resolve(spec, prop), email, password)
                for name, prop in (schema.get("properties") or {}).items()
                if name in schema.get("required", []) or name in ("email", "password", "username")}
        client.post(signup[0], json=body)
        kind, schema = _body_schema(spec, login[1])
        fields = {name: _value(name, {}, email, password) for name in (schema.get("properties") or {})}
        answer = (client.post(login[0], data=fields) if kind.endswith("urlencoded")
                  else client.post(login[0], json=fields))
        if answer.status_code >= 300:
            raise FloorError(f"the floor's test user could not log in ({answer.status_code} {answer.text[:200]})")
        payload = answer.json()
        return payload.get("access_token") or payload.get("token")


# ---------------------------------------------------------------- the floor


def _schemathesis(spec_url: str, seed: int, max_examples: int, token: str | None) -> int:
    cmd = ["schemathesis", "run", spec_url, "--max-examples", str(max_examples), "-c", "all", "--seed", str(seed)]
    if token:
        cmd += ["-H", f"Authorization: Bearer {token}"]
    with tempfile.TemporaryDirectory(prefix="pgbench-st-") as cwd:  # no schemathesis.toml, no report folder left
        return subprocess.run(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              timeout=900).returncode


def measure(sample: Path, *, seed: int, max_examples: int = 15, compose_cmd: tuple[str, ...] = ("docker-compose",)
            ) -> Floor:
    """One floor measurement of `sample` (a folder with a Dockerfile or a compose file)."""
    floor = Floor()
    run_id = uuid.uuid4().hex[:8]
    manifest = _manifest(sample)
    compose = _compose_file(sample)
    with ExitStack() as cleanup:
        started = time.monotonic()
        if compose is None:
            base = _single(sample, run_id, manifest, floor, cleanup)
        else:
            base = _stack(sample, compose, run_id, manifest, floor, cleanup, compose_cmd)
        t = time.monotonic()
        spec_url, spec = wait_for_spec(base, manifest.get("spec") if str(manifest.get("spec", "")).startswith("/")
                                       else None)
        floor.parts["spec"] = time.monotonic() - t
        t = time.monotonic()
        token = bearer_token(base, spec)
        floor.parts["token"] = time.monotonic() - t
        t = time.monotonic()
        floor.schemathesis_exit = _schemathesis(spec_url, seed, max_examples, token)
        floor.parts["schemathesis"] = time.monotonic() - t
        floor.seconds = time.monotonic() - started
    return floor


def _single(sample: Path, run_id: str, manifest: dict, floor: Floor, cleanup: ExitStack) -> str:
    tag = f"pgbench-floor/{sample.name}:{run_id}"
    dockerfile = sample / "Dockerfile"
    t = time.monotonic()
    _build(sample, dockerfile, tag)
    cleanup.callback(lambda: subprocess.run(["docker", "rmi", "-f", tag], capture_output=True))
    floor.parts["build"] = time.monotonic() - t
    port = int(manifest.get("port") or _exposed_port(dockerfile))
    t = time.monotonic()
    name = f"pgbench-floor-{run_id}"
    _sh(["docker", "run", "-d", "--label", LABEL, "--name", name, "-p", f"127.0.0.1::{port}", tag])
    cleanup.callback(lambda: subprocess.run(["docker", "rm", "-f", name], capture_output=True))
    host = _sh(["docker", "port", name, f"{port}/tcp"]).split()[0]
    floor.parts["start"] = time.monotonic() - t
    return f"http://{host.replace('0.0.0.0', '127.0.0.1')}"


def _stack(sample: Path, compose: Path, run_id: str, manifest: dict, floor: Floor, cleanup: ExitStack,
           compose_cmd: tuple[str, ...]) -> str:
    """Build the stack's images with BuildKit, `up -d` a copy of the file with those images and loopback ports."""
    document = yaml.safe_load(compose.read_text("utf-8"))
    services: dict = document["services"]
    api = manifest.get("service") or next(name for name, svc in services.items() if svc.get("ports"))
    tmp = Path(tempfile.mkdtemp(prefix="pgbench-compose-"))
    cleanup.callback(shutil.rmtree, tmp, True)
    built: dict[tuple[str, str], str] = {}
    t = time.monotonic()
    for name, svc in services.items():
        build = svc.pop("build", None)
        if build is None:
            continue
        build = {"context": build} if isinstance(build, str) else build
        context = (sample / build.get("context", ".")).resolve()
        dockerfile = context / build.get("dockerfile", "Dockerfile")
        key = (str(context), str(dockerfile))
        if key not in built:  # services built alike share one image, as the grader's plan does
            tag = f"pgbench-floor/{sample.name}-{len(built)}:{run_id}"
            _build(context, dockerfile, tag)
            cleanup.callback(lambda tag=tag: subprocess.run(["docker", "rmi", "-f", tag], capture_output=True))
            built[key] = tag
        svc["image"] = built[key]
    floor.parts["build"] = time.monotonic() - t
    port = int(manifest.get("port") or _exposed_port(sample / "Dockerfile"))
    for name, svc in services.items():
        svc.pop("ports", None)
        svc.setdefault("labels", {})
        if isinstance(svc["labels"], dict):
            svc["labels"][LABEL] = "1"
    services[api]["ports"] = [f"127.0.0.1::{port}"]
    (tmp / "compose.yml").write_text(yaml.safe_dump(document), "utf-8")
    base_cmd = [*compose_cmd, "-f", str(tmp / "compose.yml"), "--project-directory", str(sample), "-p",
                f"pgbenchfloor{run_id}"]
    t = time.monotonic()
    cleanup.callback(lambda: subprocess.run([*base_cmd, "down", "-v", "--remove-orphans", "--timeout", "5"],
                                            capture_output=True))
    _sh([*base_cmd, "up", "-d", "--no-build"], cwd=tmp)
    host = _sh([*base_cmd, "port", api, str(port)], cwd=tmp).strip().splitlines()[-1]
    floor.parts["start"] = time.monotonic() - t
    return f"http://{host.replace('0.0.0.0', '127.0.0.1')}"


def to_json(floor: Floor) -> str:
    return json.dumps({"seconds": floor.seconds, "parts": floor.parts, "schemathesis_exit": floor.schemathesis_exit})
