"""Image builders: find one that speaks BuildKit, fall back to the classic builder, say which.

Learner Dockerfiles use `RUN --mount=type=cache` (BuildKit only); the docker SDK's build API
is the classic builder. Detection, once per process:

1. a docker CLI with the buildx plugin      -> `docker buildx build --load`   "docker buildx (BuildKit)"
2. a docker CLI older than 23 (BuildKit is   -> `DOCKER_BUILDKIT=1 docker build` "docker CLI 20.10 (BuildKit)"
   built in; 23+ needs the buildx plugin)
3. the docker SDK                            -> classic builder              "docker SDK (classic builder, no BuildKit)"

Every docker CLI candidate is probed (`shutil.which("docker")`, /usr/bin/docker,
/usr/local/bin/docker): a machine can have a new client without buildx first on PATH and an old
one with built-in BuildKit elsewhere. Builds always go to the engine the SDK talks to
(DOCKER_HOST, else the default socket).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CLI_CANDIDATES = ("/usr/bin/docker", "/usr/local/bin/docker")
DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"
SDK_BUILDER = "docker SDK (classic builder, no BuildKit)"

# ---------------------------------------------------------------- subprocesses


@dataclass(frozen=True)
class CommandResult:
    returncode: int | None  # None when killed on timeout
    output: str  # stdout and stderr, interleaved
    timed_out: bool = False
    seconds: float = 0.0
    error: str | None = None  # the command could not be started at all

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out and self.error is None


def _kill_group(proc: subprocess.Popen) -> None:
    """Stop a process and its children (it runs in its own session)."""
    if proc.poll() is not None:
        return
    try:
        if os.name == "posix":
            os.killpg(proc.pid, signal.SIGTERM)
        else:  # pragma: no cover
            proc.terminate()
        proc.wait(timeout=5)
    except (ProcessLookupError, subprocess.TimeoutExpired, PermissionError):
        pass
    if proc.poll() is None:
        try:
            if os.name == "posix":
                os.killpg(proc.pid, signal.SIGKILL)
            else:  # pragma: no cover
                proc.kill()
            proc.wait(timeout=5)
        except (ProcessLookupError, subprocess.TimeoutExpired, PermissionError):
            pass


def run_command(
    args: Sequence[str],
    *,
    timeout: float,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    max_chars: int = 4_000_000,
) -> CommandResult:
    """Run `args` with a deadline; kill its whole process group on timeout or Ctrl-C.

    Output is kept up to `max_chars` (the oldest lines are dropped first); the process runs in
    its own session so a terminal Ctrl-C reaches the grader, which then stops it here.
    """
    started = time.monotonic()
    try:
        proc = subprocess.Popen(
            list(args),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=(os.name == "posix"),
        )
    except OSError as exc:
        return CommandResult(None, "", error=f"{args[0]}: {exc.strerror or exc}", seconds=0.0)

    lines: deque[str] = deque()
    size = [0]
    dropped = [False]

    def reader() -> None:
        assert proc.stdout is not None
        for raw in iter(proc.stdout.readline, b""):
            line = raw.decode("utf-8", "replace")
            lines.append(line)
            size[0] += len(line)
            while size[0] > max_chars and len(lines) > 1:
                size[0] -= len(lines.popleft())
                dropped[0] = True
        proc.stdout.close()

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    timed_out = False
    try:
        try:
            proc.wait(timeout=max(timeout, 0.1))
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_group(proc)
    except BaseException:  # KeyboardInterrupt, SystemExit: never leave the child behind
        while True:
            try:
                _kill_group(proc)
                break
            except KeyboardInterrupt:  # a second Ctrl-C: the child is stopped first all the same
                continue
        raise
    thread.join(timeout=5)
    output = "".join(lines)
    if dropped[0]:
        output = "[... earlier output dropped ...]\n" + output
    return CommandResult(
        None if timed_out else proc.returncode,
        output,
        timed_out=timed_out,
        seconds=time.monotonic() - started,
    )


def engine_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for docker CLI / compose: pointed at the engine the SDK talks to."""
    env = dict(os.environ if base is None else base)
    env["DOCKER_HOST"] = env.get("DOCKER_HOST") or DEFAULT_DOCKER_HOST
    env.pop("DOCKER_CONTEXT", None)  # DOCKER_HOST wins; a context could point elsewhere
    return env


# ---------------------------------------------------------------- detection


@dataclass(frozen=True)
class CliProbe:
    """What one docker CLI binary can do."""

    path: str
    version: tuple[int, int] | None  # client version, None when `docker --version` failed
    version_text: str = ""
    has_buildx: bool = False
    has_compose: bool = False
    compose_version: str = ""


@dataclass(frozen=True)
class Builder:
    kind: str  # "buildx" | "cli" | "sdk"
    name: str  # stated in the scorecard
    cli: str | None = None  # the docker binary for buildx / cli

    @property
    def buildkit(self) -> bool:
        return self.kind in ("buildx", "cli")


_VERSION_RE = re.compile(r"(?:version\s+)?v?(\d+)\.(\d+)(?:\.(\d+))?", re.IGNORECASE)


def parse_docker_version(text: str) -> tuple[int, int] | None:
    """`Docker version 20.10.24+dfsg1, build 297e128` -> (20, 10)."""
    match = re.search(r"version\s+v?(\d+)\.(\d+)", text or "", re.IGNORECASE) or _VERSION_RE.search(text or "")
    if not match:
        return None
    return int(match.group(1)), int(match.group(2))


def parse_compose_version(text: str) -> tuple[int, str] | None:
    """(major, version) from `docker compose version` / `docker-compose version` output.

    `Docker Compose version v2.24.6` -> (2, "2.24.6"); `docker-compose version 1.29.2, build unknown`
    -> (1, "1.29.2").
    """
    match = re.search(r"compose version:?\s+v?(\d+)\.(\d+)(?:\.(\d+))?", text or "", re.IGNORECASE)
    if not match:
        return None
    parts = [p for p in match.groups() if p is not None]
    return int(match.group(1)), ".".join(parts)


def choose_builder(probes: Sequence[CliProbe]) -> Builder:
    """The best builder among the probed CLIs (pure: unit-tested without Docker)."""
    for probe in probes:
        if probe.has_buildx:
            return Builder("buildx", "docker buildx (BuildKit)", probe.path)
    for probe in probes:
        if probe.version is not None and probe.version[0] < 23:
            major, minor = probe.version
            return Builder("cli", f"docker CLI {major}.{minor:02d} (BuildKit)", probe.path)
    return Builder("sdk", SDK_BUILDER)


def cli_candidates() -> list[str]:
    """Every docker CLI on this machine, PATH first, each real binary once."""
    found: list[str] = []
    seen: set[str] = set()
    for cand in (shutil.which("docker"), *CLI_CANDIDATES):
        if not cand or not os.path.isfile(cand) or not os.access(cand, os.X_OK):
            continue
        real = os.path.realpath(cand)
        if real in seen:
            continue
        seen.add(real)
        found.append(cand)
    return found


def probe_cli(path: str) -> CliProbe:
    env = engine_env()
    version = run_command([path, "--version"], timeout=15, env=env)
    buildx = run_command([path, "buildx", "version"], timeout=15, env=env)
    compose = run_command([path, "compose", "version"], timeout=15, env=env)
    compose_parsed = parse_compose_version(compose.output) if compose.ok else None
    return CliProbe(
        path=path,
        version=parse_docker_version(version.output) if version.ok else None,
        version_text=version.output.strip(),
        has_buildx=buildx.ok,
        has_compose=compose_parsed is not None,
        compose_version=compose_parsed[1] if compose_parsed else "",
    )


_LOCK = threading.Lock()
_PROBES: list[CliProbe] | None = None
_BUILDER: Builder | None = None


def cli_probes(refresh: bool = False) -> list[CliProbe]:
    """Probe every docker CLI once per process."""
    global _PROBES
    with _LOCK:
        if _PROBES is None or refresh:
            _PROBES = [probe_cli(p) for p in cli_candidates()]
        return list(_PROBES)


def detect_builder(refresh: bool = False) -> Builder:
    """The builder this process uses (detected once, cached)."""
    global _BUILDER
    probes = cli_probes(refresh)
    with _LOCK:
        if _BUILDER is None or refresh:
            _BUILDER = choose_builder(probes)
        return _BUILDER


# ---------------------------------------------------------------- Dockerfile facts


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    buf = ""
    for raw in (text or "").splitlines():
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if buf and line.startswith("#"):
            continue
        if line.endswith("\\"):
            buf += line[:-1].rstrip() + " "
            continue
        buf += line
        parts = buf.strip().split(None, 1)
        if parts:
            out.append((parts[0].upper(), parts[1] if len(parts) > 1 else ""))
        buf = ""
    if buf.strip():
        parts = buf.strip().split(None, 1)
        out.append((parts[0].upper(), parts[1] if len(parts) > 1 else ""))
    return out


def dockerfile_exposed_ports(text: str) -> list[int]:
    """Numeric ports of EXPOSE lines (`8000`, `8000/tcp`); variables and ranges skipped."""
    ports: list[int] = []
    for instr, args in dockerfile_instructions(text):
        if instr != "EXPOSE":
            continue
        for token in args.split():
            number = token.split("/", 1)[0]
            if number.isdigit() and 0 < int(number) < 65536 and int(number) not in ports:
                ports.append(int(number))
    return ports


def dockerfile_env_port(text: str) -> int | None:
    """The port an `ENV PORT=5005` (or `ENV PORT 5005`) line sets, None when none sets a number."""
    port = None
    for instr, args in dockerfile_instructions(text):
        if instr == "ENV":
            match = re.search(r"(?:^|\s)PORT(?:=|\s+)[\"']?(\d{1,5})\b", args)
            port = int(match.group(1)) if match and 0 < int(match.group(1)) < 65536 else port
    return port


def dockerfile_uses_mount(text: str) -> bool:
    """Does a RUN line use `--mount=` (BuildKit only)?"""
    return any(instr == "RUN" and "--mount=" in args for instr, args in dockerfile_instructions(text))


def _copy_sources(text: str) -> list[str]:
    sources: list[str] = []
    for instr, args in dockerfile_instructions(text):
        if instr not in ("COPY", "ADD"):
            continue
        tokens = [t for t in args.split() if not t.startswith("--")]
        if any(t.startswith("--from") for t in args.split()) or len(tokens) < 2 or tokens[0].startswith("["):
            continue
        for src in tokens[:-1]:
            if "://" in src or src.startswith("$"):
                continue
            sources.append(src)
    return sources


def choose_context(root: Path, dockerfile: Path) -> Path:
    """The build context of a Dockerfile not at the repo root: its own folder or the root.

    `backend/Dockerfile` with `COPY requirements.txt .` usually means `docker build backend`;
    `docker/Dockerfile` with `COPY src/ ./src` means `docker build -f docker/Dockerfile .`.
    The folder where more COPY sources exist wins; a tie goes to the Dockerfile's folder.
    """
    here = dockerfile.parent
    if here.resolve() == root.resolve():
        return root
    try:
        text = dockerfile.read_text("utf-8", "replace")
    except OSError:
        return root
    sources = [s for s in _copy_sources(text) if s not in (".", "./")]
    if not sources:
        return here

    def hits(base: Path) -> int:
        n = 0
        for src in sources:
            if any(ch in src for ch in "*?["):
                n += bool(list(base.glob(src.lstrip("/"))))
            elif (base / src.lstrip("/")).exists():
                n += 1
        return n

    return root if hits(root) > hits(here) else here


# ---------------------------------------------------------------- naming


def _component(text: str) -> str:
    text = re.sub(r"[^a-z0-9._-]+", "-", (text or "").lower())
    text = re.sub(r"[._-]{2,}", "-", text).strip("._-")
    return text[:60].strip("._-")


def image_tag(workspace_name: str, run_id: str, service: str | None = None) -> str:
    """`portfolio-grader/<name>[-<service>]:<run_id>`, lowercase and valid for Docker."""
    name = _component(workspace_name) or "submission"
    if service:
        name = f"{name}-{_component(service) or 'service'}"
    tag = re.sub(r"[^A-Za-z0-9_.-]+", "-", run_id or "run").lstrip(".-")[:128] or "run"
    return f"portfolio-grader/{name}:{tag}"


# ---------------------------------------------------------------- failure description

_STEP_RE = re.compile(r"^\s*>\s*\[(?P<stage>[^\]]*?)\s*(?P<n>\d+/\d+)\]\s*(?P<step>.+?):?\s*$")
_STEP_INTERNAL_RE = re.compile(r"^\s*>\s*\[internal\]\s*(?P<what>.+?):?\s*$")
_CLASSIC_STEP_RE = re.compile(r"^Step\s+\d+/\d+\s*:\s*(?P<step>.+?)\s*$")
_EXIT_RE = re.compile(r"(?:exit code|returned a non-zero code):\s*(\d+)")


def _short(text: str, limit: int = 120) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def failing_step(log: str) -> tuple[str | None, int | None]:
    """(the Dockerfile step that failed, its exit code) from a BuildKit or classic build log."""
    step: str | None = None
    lines = (log or "").splitlines()
    for line in reversed(lines):
        match = _STEP_RE.match(line)
        if match:
            stage = match.group("stage").strip()
            step = _strip_run_flags(match.group("step").strip())
            if stage and not re.fullmatch(r"stage-\d+", stage):
                step = f"{step} (stage {stage})"
            break
    if step is None:
        for line in reversed(lines):
            match = _CLASSIC_STEP_RE.match(line.strip())
            if match:
                step = match.group("step")
                break
    codes = _EXIT_RE.findall(log or "")
    code = int(codes[-1]) if codes else None
    return (_short(_strip_run_flags(step)) if step else None), code


# The line of a failed step's output that says why, best first: a compiler's missing header, a requirement no index
# has, a package apt does not know, npm's engine or registry refusal; else the step's first error line that is not
# a tool's boilerplate around it.
_TELLING_RES = (
    re.compile(r"fatal error: .+"),
    re.compile(r"Error: pg_config executable not found.*|ERROR: (?:Could not find a version|No matching distribution|"
               r"Could not open requirements file|Cannot install|ResolutionImpossible).*"),
    re.compile(r"E: (?:Unable to locate package|Package .+ has no installation candidate).*"),
    re.compile(r"npm ERR! (?:notsup Not compatible|notsup Required|404 |ERESOLVE|peer ).*|npm error (?:notsup|404).*"),
)
_ERROR_LINE = re.compile(r"(?:^|\s)(?:(?:error|fatal|failed)\b|err!)", re.IGNORECASE)
_BOILERPLATE = re.compile(
    r"npm (?:ERR!|error) (?:code |errno |A complete log|syscall |$)|npm (?:ERR!|error)\s*$|"
    r"subprocess-exited-with-error|legacy-install-failure|metadata-generation-failed|^note: |^hint: |^×|^╰─>|"
    r"executor failed running|did not complete successfully|failed to solve|^ERROR: failed to|"
    r"error: command '[^']+' failed with exit code|Removing intermediate container", re.IGNORECASE)
_BUILDKIT_OUTPUT = re.compile(r"^#(\d+) \d+(?:\.\d+)? (.*)$")
_BUILDKIT_FAILED = re.compile(r"^#(\d+) ERROR\b")


def step_output(log: str) -> list[str]:
    """What the failed step printed: its `#N 1.234 ...` lines in a BuildKit log (N: the step marked ERROR last),
    or the lines after the last `Step k/n :` of a classic one."""
    lines = (log or "").splitlines()
    failed = next((m.group(1) for m in map(_BUILDKIT_FAILED.match, reversed(lines)) if m), None)
    if failed is not None:
        return [m.group(2) for m in map(_BUILDKIT_OUTPUT.match, lines) if m and m.group(1) == failed]
    start = next((i for i in range(len(lines) - 1, -1, -1) if _CLASSIC_STEP_RE.match(lines[i].strip())), None)
    return lines[start + 1:] if start is not None else []


def telling_line(output: list[str]) -> str | None:
    """The line of a failed step's output that says why it failed (see _TELLING_RES), None when none does."""
    cleaned = [" ".join(line.split()) for line in output if line.strip()]
    for pattern in _TELLING_RES:
        found = next((m.group(0) for m in map(pattern.search, cleaned) if m), None)
        if found:
            return found
    return next((line for line in cleaned if _ERROR_LINE.search(line) and not _BOILERPLATE.search(line)), None)


def _strip_run_flags(step: str) -> str:
    """`RUN --mount=type=cache,target=/x pip install ...` -> `RUN pip install ...` (what the learner wrote matters)."""
    match = re.match(r"^(RUN)\s+((?:--[\w-]+(?:=\S+)?\s+)+)(.*)$", step, re.IGNORECASE | re.DOTALL)
    return f"{match.group(1)} {match.group(3)}" if match else step


_BASE_IMAGE_RES = (
    re.compile(r"pull access denied for ([^\s,]+)", re.IGNORECASE),
    re.compile(r"manifest for ([^\s,]+) not found", re.IGNORECASE),
    re.compile(r"load metadata for ([\w./:@-]+)"),
    re.compile(r"Step 1/\d+\s*:\s*FROM\s+(?:--platform=\S+\s+)?(\S+)", re.IGNORECASE),
)
_BASE_IMAGE_SIGNS = (
    "pull access denied",
    "failed to resolve source metadata",
    "failed to create llb definition",
    "repository does not exist",
)


def _missing_base_image(log: str) -> str | None:
    """The base image a build could not get, "?" when unnamed, None when that was not the problem."""
    lowered = log.lower()
    internal = [m.group("what") for m in map(_STEP_INTERNAL_RE.match, log.splitlines()) if m]
    metadata_failed = any(w.startswith("load metadata for ") for w in internal)
    if not (
        metadata_failed
        or any(sign in lowered for sign in _BASE_IMAGE_SIGNS)
        or re.search(r"manifest for \S+ not found", lowered)
    ):
        return None
    for what in reversed(internal):
        if what.startswith("load metadata for "):
            return _strip_library(what.removeprefix("load metadata for ").strip())
    for regex in _BASE_IMAGE_RES:
        found = regex.findall(log)
        if found:
            return _strip_library(found[-1])
    return "?"


def _strip_library(ref: str) -> str:
    ref = ref.strip().strip("'\"")
    for prefix in ("docker.io/library/", "docker.io/"):
        if ref.startswith(prefix):
            return ref[len(prefix) :]
    return ref


def describe_build_failure(
    log: str,
    *,
    timed_out: bool = False,
    timeout: float | None = None,
    builder: Builder | None = None,
    uses_mount: bool = False,
    subject: str = "the image",
) -> str:
    """One sentence for the learner: which step failed and how."""
    log = log or ""
    if timed_out:
        return (
            f"{subject} did not build within {int(timeout or 0)} s (the build timeout); the build was stopped"
            " — look at the build log tail for the step that hangs or is slow"
        )
    lowered = log.lower()
    sentence: str
    parse = re.search(r"dockerfile parse error[^\n]*", log, re.IGNORECASE) or re.search(
        r"unknown instruction:[^\n]*", log, re.IGNORECASE
    )
    missing_dockerfile = re.search(r"(cannot locate specified dockerfile|failed to read dockerfile)[^\n]*", log, re.I)
    base = _missing_base_image(log)
    step, code = failing_step(log)
    if base is None and step and step.upper().startswith("FROM "):
        base = _strip_library(step.split()[-1] if " AS " not in step.upper() else step.split()[-3])
    if missing_dockerfile:
        sentence = f"{subject} did not build: the Dockerfile could not be read ({_short(missing_dockerfile.group(0), 100)})"
    elif parse:
        sentence = f"{subject} did not build: the Dockerfile has a syntax error ({_short(parse.group(0), 100)})"
    elif "--mount" in lowered and ("buildkit" in lowered or "unknown flag: mount" in lowered):
        sentence = f"{subject} did not build: the Dockerfile uses `RUN --mount=`, which needs BuildKit"
        if builder is not None and not builder.buildkit:
            sentence += f", and the grader could only use the {builder.name} (install the docker buildx plugin)"
        uses_mount = False  # said already
    elif step and ("not found" in lowered or "no such file" in lowered) and step.upper().startswith(("COPY", "ADD")):
        sentence = f"{subject} did not build: step '{step}' failed: a file it copies is not in the build context (check the path and .dockerignore)"
    elif step and not step.lower().startswith(("from ", "load metadata")):
        sentence = f"{subject} did not build: step '{step}' failed" + (f" (exit {code})" if code is not None else "")
        why = telling_line(step_output(log))
        if why:
            sentence += f": {_short(why, 200)}"
    elif base:
        sentence = (
            f"{subject} did not build: the base image '{base}' could not be found or pulled"
            if base != "?"
            else f"{subject} did not build: its base image could not be found or pulled"
        )
    else:
        last = next(
            (line.strip() for line in reversed(log.splitlines()) if re.search(r"error|failed", line, re.I)), ""
        )
        sentence = f"{subject} did not build" + (f": {_short(last, 160)}" if last else "")
    if uses_mount and builder is not None and not builder.buildkit:
        sentence += (
            f"; note: the Dockerfile uses `RUN --mount=`, which needs BuildKit, and the grader could only use the"
            f" {builder.name} (install the docker buildx plugin)"
        )
    return sentence


# ---------------------------------------------------------------- building


@dataclass(frozen=True)
class BuildRequest:
    context: Path
    dockerfile: Path  # absolute
    tag: str
    labels: dict[str, str]
    build_args: dict[str, str] = field(default_factory=dict)
    target: str | None = None
    timeout: float = 900.0


@dataclass
class BuildResult:
    ok: bool
    tag: str
    builder: Builder
    log: str
    detail: str = ""
    seconds: float = 0.0
    timed_out: bool = False
    fresh_images: list[str] = field(default_factory=list)  # classic builder intermediates to remove


_SYNTAX_RE = re.compile(r"^\s*#\s*syntax\s*=.*$", re.IGNORECASE | re.MULTILINE)


def _frontend_unreachable(log: str) -> bool:
    """A `# syntax=` frontend image could not be fetched (an offline machine)."""
    lowered = log.lower()
    return "docker/dockerfile" in lowered and any(
        s in lowered
        for s in ("failed to resolve", "failed to solve with frontend gateway", "pull access denied", "dial tcp", "lookup ", "no such host", "failed to do request", "i/o timeout")
    )


def _cli_command(builder: Builder, req: BuildRequest, dockerfile: Path) -> tuple[list[str], dict[str, str]]:
    env = engine_env()
    assert builder.cli is not None
    if builder.kind == "buildx":
        cmd = [builder.cli, "buildx", "build", "--load"]
    else:
        cmd = [builder.cli, "build"]
        env["DOCKER_BUILDKIT"] = "1"
    cmd += ["--progress=plain", "-t", req.tag, "-f", str(dockerfile)]
    for key, value in req.labels.items():
        cmd += ["--label", f"{key}={value}"]
    for key, value in req.build_args.items():
        cmd += ["--build-arg", f"{key}={value}"]
    if req.target:
        cmd += ["--target", req.target]
    cmd.append(str(req.context))
    return cmd, env


def build_cli_command(builder: Builder, req: BuildRequest) -> list[str]:
    """The command line a BuildKit build runs (for tests and the build log header)."""
    return _cli_command(builder, req, req.dockerfile)[0]


def _build_cli(builder: Builder, req: BuildRequest) -> BuildResult:
    started = time.monotonic()
    cmd, env = _cli_command(builder, req, req.dockerfile)
    result = run_command(cmd, timeout=req.timeout, env=env)
    log = f"$ {' '.join(cmd)}\n{result.output}"
    text = _read(req.dockerfile)
    if not result.ok and not result.timed_out and _SYNTAX_RE.search(text) and _frontend_unreachable(result.output):
        # Offline machines cannot fetch the `# syntax=docker/dockerfile:1` frontend image; the
        # built-in frontend understands the same Dockerfile, so build once more without the line.
        with tempfile.TemporaryDirectory(prefix="pg-dockerfile-") as tmp:
            copy = Path(tmp) / "Dockerfile"
            copy.write_text(_SYNTAX_RE.sub("", text, count=1), "utf-8")
            ignore = req.dockerfile.with_name(req.dockerfile.name + ".dockerignore")
            if ignore.is_file():
                shutil.copy(ignore, Path(tmp) / "Dockerfile.dockerignore")
            remaining = max(req.timeout - (time.monotonic() - started), 1.0)
            cmd2, env2 = _cli_command(builder, req, copy)
            retry = run_command(cmd2, timeout=remaining, env=env2)
        log += (
            "\n[portfolio-grader] the `# syntax=` frontend image could not be fetched; "
            "building again with the engine's built-in Dockerfile frontend\n"
            f"$ {' '.join(cmd2)}\n{retry.output}"
        )
        result = CommandResult(retry.returncode, retry.output, retry.timed_out, retry.seconds, retry.error)
    ok = result.ok
    detail = ""
    if result.error:
        detail = f"the image did not build: the builder could not be started ({result.error})"
    elif not ok:
        detail = describe_build_failure(
            result.output, timed_out=result.timed_out, timeout=req.timeout, builder=builder
        )
    return BuildResult(ok, req.tag, builder, log, detail, time.monotonic() - started, result.timed_out)


def _read(path: Path) -> str:
    try:
        return path.read_text("utf-8", "replace")
    except OSError:
        return ""


def _response_socket_closer(holder: dict[str, Any]):
    def hook(response, *args, **kwargs):
        holder["response"] = response
        return response

    return hook


def _close_response(response: Any) -> None:
    """Break a blocked streaming read from another thread (shutdown wakes recv, close does not)."""
    import socket

    raw = getattr(response, "raw", None)
    sock = None
    for path in (("_connection", "sock"), ("_fp", "fp", "raw", "_sock"), ("_original_response", "fp", "raw", "_sock")):
        obj = raw
        for attr in path:
            obj = getattr(obj, attr, None)
            if obj is None:
                break
        if obj is not None:
            sock = obj
            break
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
    try:
        response.close()
    except Exception:
        pass


def _build_sdk(client: Any, builder: Builder, req: BuildRequest) -> BuildResult:
    """The classic builder through the engine API, streamed, with a deadline."""
    import docker

    started = time.monotonic()
    lines: list[str] = []
    fresh: list[str] = []
    error: list[str] = []
    state = {"running_step": False}
    holder: dict[str, Any] = {}
    api = docker.APIClient(
        **{**docker.utils.kwargs_from_env(), "version": client.api.api_version, "timeout": None}
    )
    api.hooks["response"].append(_response_socket_closer(holder))
    uses_mount = dockerfile_uses_mount(_read(req.dockerfile))

    def pump() -> None:
        try:
            for chunk in api.build(
                path=str(req.context),
                dockerfile=str(req.dockerfile),
                tag=req.tag,
                labels=req.labels,
                buildargs=req.build_args or None,
                target=req.target,
                rm=True,
                forcerm=True,
                pull=False,
                decode=True,
            ):
                if "stream" in chunk:
                    text = chunk["stream"]
                    lines.append(text)
                    stripped = text.strip()
                    if stripped.startswith("Step "):
                        state["running_step"] = False
                    elif stripped.startswith("---> Running in"):
                        state["running_step"] = True
                    elif stripped.startswith("---> ") and state["running_step"]:
                        fresh.append(stripped[5:].strip())
                        state["running_step"] = False
                if "error" in chunk:
                    error.append(str(chunk["error"]))
                    lines.append(str(chunk["error"]) + "\n")
        except Exception as exc:  # a closed stream on timeout, an API error
            if not state.get("closed"):
                error.append(str(exc))
                lines.append(f"{exc}\n")

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    timed_out = False
    try:
        thread.join(timeout=req.timeout)
        if thread.is_alive():
            timed_out = True
            state["closed"] = True
            if "response" in holder:
                _close_response(holder["response"])
            thread.join(timeout=15)
    except BaseException:
        state["closed"] = True
        if "response" in holder:
            _close_response(holder["response"])
        _remove_fresh(client, fresh, wait=10.0)
        raise
    finally:
        try:
            api.close()
        except Exception:
            pass
    log = "".join(lines)
    ok = not timed_out and not error
    detail = ""
    if not ok:
        detail = describe_build_failure(
            log, timed_out=timed_out, timeout=req.timeout, builder=builder, uses_mount=uses_mount
        )
    if not ok:
        # the engine stops a cancelled step a moment later: its intermediate container holds the image
        _remove_fresh(client, fresh, wait=10.0 if timed_out else 0.0)
        fresh = []
    return BuildResult(ok, req.tag, builder, log, detail, time.monotonic() - started, timed_out, fresh)


def _remove_fresh(client: Any, image_ids: Sequence[str], wait: float = 0.0) -> None:
    """Remove intermediate images a classic build created (never tagged ones, never with force).

    `wait`: keep retrying the ones still in use for up to that long (a cancelled step's container).
    """
    import docker

    pending = list(reversed(list(image_ids)))
    deadline = time.monotonic() + wait
    while pending:
        left = []
        for image_id in pending:
            try:
                image = client.images.get(image_id)
                if image.tags:
                    continue
                client.images.remove(image.id, force=False, noprune=False)
            except docker.errors.ImageNotFound:
                continue
            except Exception:
                left.append(image_id)
        pending = left
        if not pending or time.monotonic() >= deadline:
            return
        time.sleep(0.5)


def build_image(client: Any, req: BuildRequest, builder: Builder | None = None) -> BuildResult:
    """Build `req` with the detected builder; never raises for a failed build."""
    builder = builder or detect_builder()
    if not req.dockerfile.is_file():
        return BuildResult(
            False,
            req.tag,
            builder,
            "",
            f"the image did not build: the Dockerfile {req.dockerfile.name} was not found",
        )
    if builder.kind == "sdk":
        return _build_sdk(client, builder, req)
    result = _build_cli(builder, req)
    if not result.ok:
        text = _read(req.dockerfile)
        if dockerfile_uses_mount(text) and not builder.buildkit:  # pragma: no cover - CLI builders are BuildKit
            result.detail += "; the Dockerfile uses `RUN --mount=`, which needs BuildKit"
    return result


def remove_build(client: Any, result: BuildResult) -> None:
    """Remove the image a build tagged (and classic-builder intermediates of other stages)."""
    try:
        client.images.remove(result.tag, force=False, noprune=False)
    except Exception as exc:  # not found (failed build) or still in use
        if "No such image" not in str(exc) and "not found" not in str(exc).lower():
            try:
                client.images.remove(result.tag, force=True, noprune=False)
            except Exception:
                pass
    _remove_fresh(client, result.fresh_images)
