"""The sandbox a submission runs in: limits, read-only root, log caps, and no route out at run time.

SandboxConfig holds what a grader operator may change (defaults, then PORTFOLIO_GRADER_MEMORY / _CPUS /
_PIDS / _READ_ONLY / _EGRESS, then `--memory --cpus --pids` on the command line). The rest of this module
turns it into Docker settings and reads back what the limits did to the container, so the scorecard can
say "killed at its 64m memory limit" or "hit its pid limit" instead of "it crashed".

Egress at run time: each grade's container gets its own bridge network with IP masquerading switched
off. Published ports still reach it on 127.0.0.1 (Docker's proxy connects from the host), and the host
itself stays reachable (the grader's webhook receiver on the bridge gateway), but a packet bound for
the internet leaves with a private source address no router answers: no route out, DNS included.
It needs nothing beyond the Docker API (no root, no iptables on the grading machine). A manifest's
`egress: true` (or PORTFOLIO_GRADER_EGRESS=1) gives the container an ordinary network instead.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

ENV_PREFIX = "PORTFOLIO_GRADER_"
NO_MASQUERADE = {"com.docker.network.bridge.enable_ip_masquerade": "false"}
LOG_OPTIONS = {"max-size": "10m", "max-file": "2"}  # a log flood fills at most 20 MB of the host's disk
TMPFS_PATHS = ("/tmp", "/var/tmp", "/run")  # writable in memory under a read-only root (containers and stacks)
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")

# What a program prints when it writes to a read-only filesystem (errno EROFS), in the usual stacks.
READ_ONLY_SIGNS = re.compile(
    r"read-only file system|EROFS|readonly database|unable to open database file|errno 30\b|\[Errno 30\]", re.IGNORECASE
)
# What a process sees when its container is at the pid limit.
PIDS_SIGNS = re.compile(
    r"fork: (?:retry: )?resource temporarily unavailable|cannot fork|can't fork|can't start new thread|"
    r"pthread_create failed|fork failed",
    re.IGNORECASE,
)
IDLE_CPU = 0.05  # CPUs an API keeps busy with no request in flight before it is called a busy loop
LOG_FLOOD_RATE = 256 * 1024  # bytes of log per second, with no request in flight, that make a flood
_MEMORY_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmg]?)b?\s*$", re.IGNORECASE)


def memory_bytes(text: str) -> int | None:
    """`512m` -> 536870912; None when it is not a Docker memory size."""
    match = _MEMORY_RE.match(str(text))
    if not match:
        return None
    return int(float(match.group(1)) * {"": 1, "k": 2**10, "m": 2**20, "g": 2**30}[match.group(2).lower()])


@dataclass(frozen=True)
class SandboxConfig:
    """Limits of every container a grade starts (compose services included)."""

    memory: str = "1g"
    cpus: float = 1.0
    pids: int = 256
    read_only: bool = True  # read-only root with a tmpfs /tmp; falls back to writable when the app cannot run so
    tmpfs_size: str = "256m"
    egress: bool = False  # a route out at run time for every submission (a manifest can ask for its own)

    def __post_init__(self) -> None:
        if memory_bytes(self.memory) is None or memory_bytes(self.memory) < 6 * 2**20:
            raise ValueError(f"memory {self.memory!r}: give a Docker size of at least 6m, like 512m or 1g")
        if not 0.01 <= float(self.cpus) <= 64:
            raise ValueError(f"cpus {self.cpus!r}: give a number of CPUs between 0.01 and 64")
        if not 8 <= int(self.pids) <= 100_000:
            raise ValueError(f"pids {self.pids!r}: give a process limit between 8 and 100000")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SandboxConfig:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        if env.get(ENV_PREFIX + "MEMORY"):
            values["memory"] = env[ENV_PREFIX + "MEMORY"].strip()
        for name, kind in (("cpus", float), ("pids", int)):
            raw = env.get(ENV_PREFIX + name.upper())
            if raw:
                try:
                    values[name] = kind(raw)
                except ValueError:
                    raise ValueError(f"{ENV_PREFIX}{name.upper()}={raw!r} is not a number") from None
        for name in ("read_only", "egress"):
            raw = (env.get(ENV_PREFIX + name.upper()) or "").strip().lower()
            if raw in _TRUE:
                values[name] = True
            elif raw in _FALSE:
                values[name] = False
        return cls(**values)

    def with_overrides(self, **values: Any) -> SandboxConfig:
        """A copy with the given fields set (None values are ignored: flags that were not given)."""
        return replace(self, **{k: v for k, v in values.items() if v is not None})

    def runtime_options(self, run_id: str, **timing: Any) -> Any:
        """The RuntimeOptions of one grade: these limits plus its deadlines (build_timeout, start_timeout, ends)."""
        from . import RuntimeOptions

        return RuntimeOptions(run_id=run_id, memory=self.memory, cpus=float(self.cpus), pids=int(self.pids),
                              read_only=self.read_only, tmpfs_size=self.tmpfs_size, egress=self.egress, **timing)


# ---------------------------------------------------------------- Docker settings


def run_network(client: Any, options: Any, manifest: Any = None) -> tuple[str | None, str]:
    """Create this grade's network; (its name, a note for the scorecard). (None, note) keeps Docker's default.

    With egress off the network does not masquerade: no route out. ICC is off too: nothing else shares it.
    """
    from . import labels_for

    wants_egress = bool(getattr(options, "egress", False) or getattr(manifest, "egress", False))
    name = f"pg-{options.run_id}-net"
    driver_opts = {"com.docker.network.bridge.enable_icc": "false"}
    if not wants_egress:
        driver_opts |= NO_MASQUERADE
    try:
        client.networks.create(name, driver="bridge", labels=labels_for(options), options=driver_opts,
                               check_duplicate=True)
    except Exception as exc:  # address pools exhausted, a remote engine refusing the option
        text = " ".join(str(getattr(exc, "explanation", None) or exc).split())[:200]
        return None, (f"run-time egress could not be cut (the engine refused a private network: {text}); the "
                      "container ran on Docker's default network")
    if wants_egress:
        why = "the manifest asks for it (egress: true)" if getattr(manifest, "egress", False) else "the grader's setting"
        return name, f"the container could reach the internet at run time: {why}"
    return name, ""


def container_kwargs(options: Any, *, read_only: bool, workdir_volume: str | None = None,
                     workdir: str | None = None) -> dict[str, Any]:
    """The sandbox part of `containers.create(...)` beyond limits and capabilities."""
    from docker.types import LogConfig, Mount

    kwargs: dict[str, Any] = {
        "log_config": LogConfig(type="json-file", config=dict(LOG_OPTIONS)),
    }
    if read_only:
        kwargs["read_only"] = True
        kwargs["tmpfs"] = tmpfs_mounts(options)
        if workdir_volume and workdir:
            # The app's own folder stays writable (a sqlite file, uploads) on a volume filled from the image.
            kwargs["mounts"] = [Mount(target=workdir, source=workdir_volume, type="volume")]
    return kwargs


def tmpfs_mounts(options: Any) -> dict[str, str]:
    """{path: mount options} of the tmpfs mounts a read-only root gets."""
    size = getattr(options, "tmpfs_size", "256m")
    return {path: f"rw,nosuid,nodev,size={size}" for path in TMPFS_PATHS}


def workdir_of(image_attrs: Mapping[str, Any]) -> str | None:
    """The image's WORKDIR when it is a real folder (not / and not a system folder)."""
    workdir = ((image_attrs or {}).get("Config") or {}).get("WorkingDir") or ""
    norm = os.path.normpath(workdir) if workdir else ""
    if not norm.startswith("/") or norm in ("/", "/usr", "/etc", "/bin", "/sbin", "/lib", "/var", "/proc", "/sys",
                                            "/dev", "/tmp", "/run"):
        return None
    return norm


def mentions_read_only(log: str) -> str | None:
    """The first log line that says a write hit the read-only filesystem, None when there is none."""
    for line in (log or "").splitlines():
        if READ_ONLY_SIGNS.search(line):
            return " ".join(line.split())[:200]
    return None


def writable_fallback_note(line: str, who: str = "the app", where: str = "/tmp or the app's own folder") -> str:
    """The scorecard note of an app that ran again with a writable root (single containers and stacks alike)."""
    return (f"{who} could not run on a read-only root filesystem, so it ran on a writable one (its log: {line!r}); "
            f"write runtime files under {where}")


def rerun_writable_note(line: str, when: str, *, who: str = "the API", up: bool = True, detail: str = "") -> str:
    """The note of an API that came up on the read-only root and later wrote to it: it was run again writable."""
    again = ("it was started again on a writable root and graded from there (the test users and objects of "
             "the first run went with the old container)") if up else (
             f"it was started again on a writable root but did not come up ({detail})")
    return (f"{who} wrote to the read-only root filesystem {when} (its log: {line!r}); {again}; write runtime "
            "files under /tmp or the app's own folder")


# ---------------------------------------------------------------- what the limits did


def _stats(container: Any) -> dict[str, Any]:
    try:
        return container.stats(stream=False, one_shot=True)
    except TypeError:  # an SDK without one_shot
        try:
            return container.stats(stream=False)
        except Exception:
            return {}
    except Exception:
        return {}


def _cpu_seconds(stats: Mapping[str, Any]) -> float | None:
    total = ((stats.get("cpu_stats") or {}).get("cpu_usage") or {}).get("total_usage")
    return total / 1e9 if total is not None else None


def log_rate(container: Any, lines: int = 1000) -> float | None:
    """Bytes per second of the container's latest log lines, when they are still coming (else None)."""
    from datetime import datetime, timezone

    try:
        data = container.logs(stdout=True, stderr=True, tail=lines, timestamps=True)
    except Exception:
        return None
    entries = data.split(b"\n") if isinstance(data, bytes) else []
    stamps = []
    for entry in (entries[0], entries[-2] if len(entries) > 1 else b""):
        try:
            text = entry.split(b" ", 1)[0].decode()
            stamps.append(datetime.fromisoformat(text[:26] + "+00:00"))
        except (ValueError, IndexError, UnicodeDecodeError):
            return None
    first, last = stamps
    if (datetime.now(timezone.utc) - last).total_seconds() > 5:
        return None  # the log has gone quiet
    return len(data) / max((last - first).total_seconds(), 0.001)


def usage(container: Any, sample: float = 0.0) -> dict[str, Any]:
    """Memory, pids and CPU of a container as far as the engine reports them ({} when it is gone).

    With `sample` > 0, CPU is measured twice that many seconds apart while the grader sends nothing:
    `idle_cpu` is how many CPUs the API kept busy on its own (a busy loop), and `log_rate` how fast it logs.
    """
    stats = _stats(container)
    if not stats:
        return {}
    memory = stats.get("memory_stats") or {}
    cpu = (stats.get("cpu_stats") or {}).get("throttling_data") or {}
    out = {
        "memory_max": memory.get("max_usage") or memory.get("usage"),
        "memory_limit": memory.get("limit"),
        "pids": (stats.get("pids_stats") or {}).get("current"),
        "throttled_periods": cpu.get("throttled_periods") or 0,
        "periods": cpu.get("periods") or 0,
    }
    if sample > 0:
        first, started = _cpu_seconds(stats), time.monotonic()
        time.sleep(sample)
        second = _cpu_seconds(_stats(container))
        if first is not None and second is not None:
            out["idle_cpu"] = max(0.0, second - first) / max(time.monotonic() - started, 0.001)
        out["log_rate"] = log_rate(container)
    return out


def limit_notes(observed: Mapping[str, Any], log: str, options: Any) -> list[str]:
    """Plain sentences about the limits the container ran into (empty when it stayed inside them)."""
    notes: list[str] = []
    pids = observed.get("pids")
    pids_sign = PIDS_SIGNS.search(log or "")
    if (pids is not None and pids >= options.pids - 2) or pids_sign:
        seen = f"{pids} processes" if pids is not None else "its log says processes could not be created"
        notes.append(f"the container hit its limit of {options.pids} processes ({seen}): a fork bomb or a process "
                     "or thread leak")
    peak, limit = observed.get("memory_max"), memory_bytes(options.memory)
    if peak and limit and peak >= 0.95 * limit:
        notes.append(f"the container used all of its {options.memory} of memory (peak {peak // 2**20} MiB)")
    periods, throttled = observed.get("periods") or 0, observed.get("throttled_periods") or 0
    idle = observed.get("idle_cpu")
    if idle is not None and idle >= IDLE_CPU:
        notes.append(f"the API kept {idle:.2f} CPU busy while no request was being made (its limit is "
                     f"{options.cpus:g} CPU): a busy loop or runaway background work")
    elif periods >= 10 and throttled >= 0.5 * periods:
        notes.append(f"the container was held at its limit of {options.cpus:g} CPU in {throttled} of {periods} "
                     "scheduling periods: it kept the processor busy")
    rate = observed.get("log_rate")
    if rate is not None and rate >= LOG_FLOOD_RATE:
        notes.append(f"the API was writing about {rate / 2**20:.1f} MB of log per second (a log flood); the scorecard "
                     f"keeps its last lines and Docker at most {LOG_OPTIONS['max-size']} x {LOG_OPTIONS['max-file']} "
                     "on disk")
    return notes


def manifest_env_note(who: str, env: dict[str, str]) -> str:
    """The scorecard's line for variables the manifest gave, secret-looking values masked."""
    shown = ", ".join(f"{k}={'***' if _SECRET_ENV_NAME.search(k) else v}" for k, v in env.items())
    return f"portfolio-grader.yaml's env set for {who}: {shown}"


_SECRET_ENV_NAME = re.compile(r"SECRET|PASSW(OR)?D|TOKEN|KEY|CREDENTIAL|DATABASE_URL|_URI$|_DSN$", re.I)
