"""What an operator needs to run the service (advanced tier): a health endpoint that reports on the
service's dependencies, Prometheus metrics, and structured (JSON) logs.

- `observability.health`: GET /health (or the manifest's `health:`) answers 200 JSON naming the state of
  the database, cache or queue it depends on.
- `observability.metrics`: GET /metrics (or the manifest's `metrics:`) answers the Prometheus text format.
- `observability.logs`: the API container's log lines are JSON objects (read after the probes ran).
"""

from __future__ import annotations

import json
import re
import shlex
from typing import Any

from ..models import Evidence
from ..probe import Exchange
from .operations import get, ok, status_text
from .registry import CheckContext, check

HEALTH_PATHS = ("/health", "/healthz", "/health/ready", "/readyz", "/ready", "/status", "/api/health",
                "/api/v1/health", "/actuator/health", "/_health", "/livez")
METRICS_PATHS = ("/metrics", "/prometheus", "/actuator/prometheus", "/api/metrics", "/metrics/prometheus")
DEPENDENCY_WORDS = re.compile(r"^(db|database|databases|postgres|postgresql|pg|mysql|mariadb|sqlite|mongo|mongodb|"
                              r"redis|cache|queue|broker|rabbitmq|kafka|worker|workers|storage|dependencies|checks|"
                              r"components|services|details|elasticsearch|memcached)$", re.I)
_SAMPLE_LINE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*(\{(?:[^\"}]|\"(?:[^\"\\]|\\.)*\")*\})?\s+[-+]?(\d+(\.\d*)?([eE][-+]?\d+)?|NaN|[-+]?Inf)"
                          r"(\s+-?\d+)?$")
_TYPE_LINE = re.compile(r"^# TYPE [a-zA-Z_:][a-zA-Z0-9_:]* (counter|gauge|histogram|summary|untyped|info|stateset|"
                        r"gaugehistogram|unknown)$")
LOG_LINES = 400
MIN_JSON_SHARE = 0.8  # of the non-empty log lines


def _paths(ctx: CheckContext, manifest_path: str | None, defaults: tuple[str, ...], word: str) -> list[str]:
    documented = [op.path for op in ctx.api.operations if op.method == "GET" and "{" not in op.path
                  and re.search(word, op.path, re.I)]
    named = [manifest_path] if manifest_path else []
    return list(dict.fromkeys(named + documented + list(defaults)))


def _dependency_keys(body: Any, depth: int = 0) -> list[str]:
    """Keys of a health document that name a dependency or a list of checks."""
    if depth > 4:
        return []
    found: list[str] = []
    items = body.items() if isinstance(body, dict) else enumerate(body) if isinstance(body, list) else ()
    for key, value in items:
        if isinstance(key, str) and DEPENDENCY_WORDS.match(key):
            found.append(key)
        if isinstance(value, dict) and isinstance(value.get("name"), str) and DEPENDENCY_WORDS.match(value["name"]):
            found.append(value["name"])
        found += _dependency_keys(value, depth + 1)
    return list(dict.fromkeys(found))


_HEALTH_HINT = ("Serve GET /health that checks what the service needs and says so, e.g. "
                "`{\"status\": \"ok\", \"checks\": {\"database\": \"ok\", \"redis\": \"ok\"}}` — run `SELECT 1` and "
                "Redis `PING` with a short timeout — and answer 503 when one of them is down, so an orchestrator "
                "stops routing traffic to it. Keep it public and cheap.")


@check("observability.health", area="observability", title="A health endpoint reports the state of its dependencies",
       needs=("service",))
def health(ctx: CheckContext):
    manifest = ctx.facts.manifest.health if ctx.facts.manifest else None
    tried: list[Exchange] = []
    for path in _paths(ctx, manifest, HEALTH_PATHS, r"health|ready|live|status"):
        answer = get(ctx, path)
        tried.append(answer)
        if ok(answer) or answer.status == 503:
            break
    found = tried[-1]
    if not (ok(found) or found.status == 503):
        finding = ctx.fail("health_missing", "medium",
                           f"No health endpoint answered: tried {', '.join(_path_of(e) for e in tried)} "
                           f"(last answer {status_text(found)}).",
                           evidence=[e.evidence("a health endpoint: expected 200 JSON") for e in tried[:3]],
                           hint=_HEALTH_HINT)
        return ctx.verdict(finding.message, [finding])
    body = found.json()
    keys = _dependency_keys(body) if found.is_json else []
    note = f"GET {_path_of(found)} answered {found.status}"
    if keys:
        return ctx.verdict(f"{note} and reports {', '.join(keys[:5])}",
                           evidence=[found.evidence("the health document names its dependencies")])
    problem = "is not JSON" if not found.is_json or body is None else "names no dependency (database, cache, queue)"
    finding = ctx.fail("health_missing", "low", f"{note}, but its answer {problem}: it says the process is up, not "
                       "that the service works.", operation=f"GET {_path_of(found)}",
                       evidence=[found.evidence("expected the state of each dependency")], hint=_HEALTH_HINT)
    return ctx.verdict(finding.message, [finding], score=0.5)


def _path_of(exchange: Exchange) -> str:
    from urllib.parse import urlsplit

    return urlsplit(exchange.url).path


def prometheus_samples(text: str) -> tuple[int, int]:
    """(# TYPE lines, sample lines) of a Prometheus / OpenMetrics text exposition; (0, 0) when it is not one."""
    types = samples = 0
    for line in text.splitlines():
        line = line.strip()
        if not line or line == "# EOF" or line.startswith("# HELP") or line.startswith("# UNIT"):
            continue
        if line.startswith("#"):
            if not _TYPE_LINE.match(line):
                return 0, 0
            types += 1
        elif _SAMPLE_LINE.match(line):
            samples += 1
        else:
            return 0, 0
    return types, samples


_METRICS_HINT = ("Expose Prometheus metrics on GET /metrics: prometheus-fastapi-instrumentator or prometheus_client "
                 "(`make_asgi_app()`), prom-client's `register.metrics()` in Express, prometheus-flask-exporter. At "
                 "least request counts and latency histograms by route and status, plus what the business cares "
                 "about (links created, redirects).")


@check("observability.metrics", area="observability", title="Prometheus metrics are exposed", needs=("service",))
def metrics(ctx: CheckContext):
    manifest = ctx.facts.manifest.metrics if ctx.facts.manifest else None
    tried: list[Exchange] = []
    for path in _paths(ctx, manifest, METRICS_PATHS, r"metric|prometheus"):
        answer = get(ctx, path, headers={"Accept": "text/plain;version=0.0.4, */*;q=0.1"})
        tried.append(answer)
        if ok(answer) and prometheus_samples(answer.text)[1]:
            types, samples = prometheus_samples(answer.text)
            return ctx.verdict(f"GET {_path_of(answer)} serves {samples} samples of {types} typed metric families "
                               "in the Prometheus text format",
                               evidence=[answer.evidence("Prometheus text exposition")])
    served = [e for e in tried if ok(e)]
    message = (f"GET {_path_of(served[0])} answers {served[0].status} but not in the Prometheus text format "
               f"({served[0].content_type or 'no content type'})" if served else
               f"No metrics endpoint answered: tried {', '.join(_path_of(e) for e in tried)}")
    finding = ctx.fail("metrics_missing", "low", message + ".", hint=_METRICS_HINT,
                       evidence=[e.evidence("expected Prometheus metrics") for e in (served or tried)[:3]])
    return ctx.verdict(finding.message, [finding])


# ---------------------------------------------------------------- logs


def _container_log(ctx: CheckContext) -> str | None:
    """The API's log: the context's source when given (tests, the pipeline), else the container's."""
    if ctx.logs is not None:
        return ctx.logs()
    if not ctx.service.api_container:
        return None
    from ..runtime.docker import connect_engine, container_log_text

    try:
        client = connect_engine()
    except Exception:
        return None
    try:
        container = client.containers.get(ctx.service.api_container)
        return container_log_text(container, tail=LOG_LINES)
    except Exception:
        return None
    finally:
        client.close()


def _is_json_object(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


@check("observability.logs", area="observability", title="The service logs structured (JSON) lines",
       needs=("service",), order=90)
def logs(ctx: CheckContext):
    text = _container_log(ctx)
    if text is None:
        return ctx.skip("the API's log output cannot be read (a live URL was graded, or the container is gone)")
    lines = [line.strip() for line in text.splitlines() if line.strip()][-LOG_LINES:]
    if not lines:
        return ctx.skip("the API printed nothing to stdout/stderr during the grade")
    structured = [line for line in lines if _is_json_object(line)]
    share = len(structured) / len(lines)
    plain = [line for line in lines if not _is_json_object(line)]
    command = (f"docker logs --tail {LOG_LINES} {shlex.quote(ctx.service.api_container)}"
               if ctx.service.api_container else "read the API process's stdout")
    sample = "\n".join((structured if share >= MIN_JSON_SHARE else plain)[:5])
    evidence = [Evidence(curl=command, file="(container log)", excerpt=sample[:2000],
                         note=f"{len(structured)} of the last {len(lines)} log lines are JSON objects")]
    if share >= MIN_JSON_SHARE:
        return ctx.verdict(f"{len(structured)}/{len(lines)} log lines are JSON objects", evidence=evidence)
    finding = ctx.fail("logs_unstructured", "low",
                       f"Only {len(structured)} of the last {len(lines)} log lines are JSON objects ({share:.0%}); "
                       "plain text lines cannot be searched or aggregated by field.", evidence=evidence,
                       hint="Log one JSON object per line with timestamp, level, message and request fields "
                            "(method, path, status, duration_ms, request_id): python-json-logger or structlog, and "
                            "uvicorn's `--log-config` with a JSON formatter (its access log too); pino in Node. Send "
                            "them to stdout and let the platform collect them.")
    return ctx.verdict(finding.message, [finding], evidence, score=share)
