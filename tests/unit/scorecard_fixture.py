"""A realistic, hand-built Scorecard: an intermediate task-manager API that misses its tier.

Criteria in every status, findings with evidence (request, response, curl), passing checks with the
evidence they rest on, a check not evaluated with the manifest lines that would make it run, logs,
stage timings and top fixes. `hostile_scorecard()` is the same grade with attacker-controlled text
(script tags, attribute breakouts, rich markup, ANSI escapes) everywhere a submission can reach.
"""

from __future__ import annotations

from typing import Any

from portfolio_grader.models import (
    CheckOutcome,
    CriterionResult,
    Evidence,
    Finding,
    Fix,
    LogTail,
    RequestRecord,
    ResponseRecord,
    RubricRef,
    Scorecard,
    Source,
    StageResult,
)

BASE = "http://127.0.0.1:49213"
JSON = {"Content-Type": "application/json"}
BEARER_A = {"Authorization": "Bearer [redacted]", "Content-Type": "application/json"}

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
HOSTILE = SCRIPT + IMG


def ev(method: str, path: str, status: int | None, body: str | None = None, *, req_body: str | None = None,
       req_headers: dict[str, str] | None = None, resp_headers: dict[str, str] | None = None,
       note: str | None = None, elapsed: float | None = 12.4, error: str | None = None) -> Evidence:
    """One exchange with a curl line built the way evidence.py builds it."""
    url = BASE + path
    req_headers = dict(JSON if req_headers is None else req_headers)
    parts = ["curl", "-sS", "-i", "-X", method, f"'{url}'"]
    for name, value in req_headers.items():
        parts += ["-H", f"'{name}: {value}'"]
    if req_body is not None:
        parts += ["--data-raw", f"'{req_body}'"]
    return Evidence(
        request=RequestRecord(method=method, url=url, headers=req_headers, body=req_body),
        response=ResponseRecord(status=status, headers=dict(resp_headers if resp_headers is not None else JSON),
                                body=body, elapsed_ms=elapsed, error=error),
        curl=" ".join(parts),
        note=note,
    )


def _findings() -> list[Finding]:
    return [
        Finding(
            id="F001", check="ownership.cross_user_read", kind="broken_object_level_authorization",
            severity="critical", operation="GET /api/v1/tasks/{task_id}",
            message="User B read a task that belongs to user A: GET /api/v1/tasks/17 with B's token returned 200 "
                    "and A's task instead of 404 or 403.",
            hint="Filter every query by the current user: Task.owner_id == current_user.id, and return 404 when "
                 "the row is not theirs.",
            evidence=[
                ev("POST", "/api/v1/tasks", 201, '{"id": 17, "title": "Quarterly report", "done": false, "owner_id": 1}',
                   req_body='{"title": "Quarterly report"}', req_headers=BEARER_A,
                   resp_headers={"Content-Type": "application/json", "Location": "/api/v1/tasks/17"},
                   note="user A creates a task"),
                ev("GET", "/api/v1/tasks/17", 200, '{"id": 17, "title": "Quarterly report", "done": false, "owner_id": 1}',
                   req_headers={"Authorization": "Bearer [redacted]"},
                   note="user B reads it with B's own token: expected 404 or 403"),
            ],
        ),
        Finding(
            id="F002", check="ownership.cross_user_write", kind="broken_object_level_authorization",
            severity="critical", operation="DELETE /api/v1/tasks/{task_id}",
            message="User B deleted user A's task: DELETE /api/v1/tasks/18 with B's token returned 204.",
            hint="Check ownership before deleting, in the same query: DELETE ... WHERE id = :id AND owner_id = :me.",
            evidence=[
                ev("DELETE", "/api/v1/tasks/18", 204, None, req_headers={"Authorization": "Bearer [redacted]"},
                   resp_headers={}, note="user B deletes user A's task: expected 404 or 403", elapsed=8.1),
            ],
        ),
        Finding(
            id="F003", check="errors.json_errors", kind="non_json_error", severity="medium",
            operation="POST /api/v1/tasks",
            message="A server error came back as an HTML page, not JSON: POST /api/v1/tasks with a 10 000 "
                    "character title returned 500 text/html.",
            hint="Add an exception handler that returns {\"detail\": ...} with application/json for every error, "
                 "and validate the title length (max_length) so this is a 422.",
            evidence=[
                ev("POST", "/api/v1/tasks", 500,
                   "<!doctype html>\n<html><head><title>500 Internal Server Error</title></head>\n"
                   "<body><h1>Internal Server Error</h1><p>sqlalchemy.exc.DataError: (psycopg.errors."
                   "StringDataRightTruncation) value too long for type character varying(200)</p></body></html>",
                   req_body='{"title": "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx... [9960 more characters]"}',
                   req_headers=BEARER_A,
                   resp_headers={"Content-Type": "text/html; charset=utf-8", "Content-Length": "291"},
                   note="a title longer than the column", elapsed=41.0),
            ],
        ),
        Finding(
            id="F004", check="auth.login_rate_limit", kind="no_rate_limit", severity="high",
            operation="POST /api/v1/auth/login",
            message="30 wrong-password logins in 4.2 s were all answered 401; none was refused with 429.",
            hint="Limit failed logins per account and per IP (for example slowapi: @limiter.limit(\"5/minute\")) "
                 "and answer 429 with a Retry-After header.",
            evidence=[
                ev("POST", "/api/v1/auth/login", 401, '{"detail": "Incorrect username or password"}',
                   req_body="username=alice%40example.com&password=[redacted]",
                   req_headers={"Content-Type": "application/x-www-form-urlencoded"},
                   resp_headers={"Content-Type": "application/json", "WWW-Authenticate": "Bearer"},
                   note="attempt 30 of 30: still 401, expected 429 by now", elapsed=96.3),
            ],
        ),
        Finding(
            id="F005", check="contract.response_schema", kind="response_schema_violation", severity="medium",
            operation="GET /api/v1/tasks/{task_id}",
            message="The response does not match the documented schema: 'due_date' is required by TaskRead but "
                    "missing from the body.",
            hint="Either return due_date (null when unset) or make it optional in the TaskRead schema.",
            evidence=[
                ev("GET", "/api/v1/tasks/21", 200, '{"id": 21, "title": "0", "done": false, "owner_id": 3}',
                   req_headers={"Authorization": "Bearer [redacted]"}, elapsed=6.7),
            ],
        ),
    ]


def _checks() -> list[CheckOutcome]:
    return [
        CheckOutcome(check="repo.dockerfile", area="repo", status="pass", summary="Dockerfile present and it builds",
                     evidence=[]),
        CheckOutcome(check="repo.readme", area="repo", status="pass",
                     summary="README explains setup, running and testing"),
        CheckOutcome(check="repo.tests", area="repo", status="warn", score=0.5,
                     summary="Tests exist (tests/, 14 files) but no CI workflow runs them"),
        CheckOutcome(check="runtime.health", area="runtime", status="pass", summary="GET /healthz answers 200",
                     evidence=[ev("GET", "/healthz", 200, '{"status": "ok"}', req_headers={}, elapsed=2.2)]),
        CheckOutcome(check="contract.spec_valid", area="contract", status="pass",
                     summary="OpenAPI 3.1.0 document served at /openapi.json is valid",
                     evidence=[ev("GET", "/openapi.json", 200, '{"openapi": "3.1.0", "info": {"title": "Task API", '
                                  '"version": "0.3.0"}, "paths": {"/api/v1/tasks": {...}}} ... [18211 more characters]',
                                  req_headers={}, elapsed=4.9)]),
        CheckOutcome(check="contract.response_schema", area="contract", status="fail", score=0.6,
                     summary="Responses match the documented schemas (12 of 20 operations held)",
                     findings=[]),
        CheckOutcome(check="errors.json_errors", area="errors", status="fail", score=0.0,
                     summary="Error responses are JSON"),
        CheckOutcome(check="errors.validation", area="errors", status="pass",
                     summary="Invalid bodies are rejected with 422 and a JSON detail",
                     evidence=[ev("POST", "/api/v1/tasks", 422,
                                  '{"detail": [{"type": "missing", "loc": ["body", "title"], "msg": "Field required"}]}',
                                  req_body='{"done": "maybe"}', req_headers=BEARER_A, elapsed=5.5,
                                  note="a body without the required title")]),
        CheckOutcome(check="auth.register_login", area="auth", status="pass",
                     summary="Register returns 201, login returns a bearer token",
                     evidence=[
                         ev("POST", "/api/v1/auth/register", 201,
                            '{"id": 1, "email": "alice@example.com", "created_at": "2025-03-14T10:21:52Z"}',
                            req_body='{"email": "alice@example.com", "password": "[redacted]"}', elapsed=212.0),
                         ev("POST", "/api/v1/auth/login", 200,
                            '{"access_token": "[redacted]", "token_type": "bearer"}',
                            req_body="username=alice%40example.com&password=[redacted]",
                            req_headers={"Content-Type": "application/x-www-form-urlencoded"}, elapsed=198.4),
                     ]),
        CheckOutcome(check="auth.no_secret_leak", area="auth", status="pass",
                     summary="No response contains a password or password hash"),
        CheckOutcome(check="auth.protected_routes", area="auth", status="pass",
                     summary="12 protected operations reject a missing, an expired and a forged token with 401",
                     evidence=[ev("GET", "/api/v1/tasks", 401, '{"detail": "Not authenticated"}', req_headers={},
                                  resp_headers={"Content-Type": "application/json", "WWW-Authenticate": "Bearer"},
                                  note="no Authorization header")]),
        CheckOutcome(check="auth.login_rate_limit", area="auth", status="fail", score=0.0,
                     summary="Repeated failed logins are throttled"),
        CheckOutcome(check="ownership.cross_user_read", area="ownership", status="fail", score=0.0,
                     summary="Another user's task cannot be read"),
        CheckOutcome(check="ownership.cross_user_write", area="ownership", status="fail", score=0.0,
                     summary="Another user's task cannot be changed or deleted"),
        CheckOutcome(check="pagination.limits", area="pagination", status="not_evaluated", score=0.0,
                     summary="List endpoints paginate and cap the page size",
                     reason="no list endpoint could be paired with a collection: GET /api/v1/tasks/mine does not "
                            "share a path with POST /api/v1/tasks",
                     manifest_hint="resources: [/api/v1/tasks]   # collections a client can POST to and GET /{id} from"),
    ]


def _criteria() -> list[CriterionResult]:
    C = CriterionResult
    return [
        C(id="repo.dockerfile", title="Ships a Dockerfile that builds", area="repo", status="pass", points=5,
          max_points=5, gate=True, checks=["repo.dockerfile"]),
        C(id="repo.readme", title="README explains how to run and test the API", area="repo", status="pass",
          points=4, max_points=4, checks=["repo.readme"]),
        C(id="repo.tests", title="Automated tests run in CI", area="repo", status="partial", points=3,
          max_points=6, hint="Add a GitHub Actions workflow that runs pytest on every push.",
          checks=["repo.tests"]),
        C(id="runtime.health", title="Exposes a health check", area="runtime", status="pass", points=4,
          max_points=4, checks=["runtime.health"]),
        C(id="contract.spec", title="Publishes a valid OpenAPI document", area="contract", status="pass", points=6,
          max_points=6, gate=True, checks=["contract.spec_valid"]),
        C(id="contract.conformance", title="Responses match the documented schemas", area="contract",
          status="partial", points=7, max_points=12, finding_ids=["F005"], checks=["contract.response_schema"],
          hint="Make the response models and the handlers agree: run schemathesis locally against /openapi.json."),
        C(id="errors.json", title="Errors are JSON with a consistent shape", area="errors", status="fail",
          points=0, max_points=6, owasp="API8:2023", finding_ids=["F003"], checks=["errors.json_errors"],
          hint="Register exception handlers so 4xx and 5xx responses are application/json with a detail field."),
        C(id="errors.validation", title="Invalid input is rejected with 422", area="errors", status="pass",
          points=8, max_points=8, checks=["errors.validation"]),
        C(id="auth.register_login", title="Registration and login issue a bearer token", area="auth",
          status="pass", points=10, max_points=10, gate=True, owasp="API2:2023", checks=["auth.register_login"]),
        C(id="auth.no_secret_leak", title="Responses never include passwords or hashes", area="auth",
          status="pass", points=5, max_points=5, owasp="API3:2023", checks=["auth.no_secret_leak"]),
        C(id="auth.protected", title="Protected endpoints reject missing and forged tokens", area="auth",
          status="pass", points=8, max_points=8, gate=True, owasp="API2:2023", checks=["auth.protected_routes"]),
        C(id="auth.rate_limit", title="Login is rate limited", area="auth", status="fail", points=0, max_points=6,
          owasp="API4:2023", finding_ids=["F004"], checks=["auth.login_rate_limit"],
          hint="Throttle failed logins and answer 429 with Retry-After."),
        C(id="ownership.bola", title="Users cannot read or change each other's tasks", area="ownership",
          status="fail", points=0, max_points=12, gate=True, owasp="API1:2023", finding_ids=["F001", "F002"],
          checks=["ownership.cross_user_read", "ownership.cross_user_write"],
          hint="Scope every read, update and delete to the current user and answer 404 for other users' rows."),
        C(id="pagination.limits", title="List endpoints paginate and cap the page size", area="pagination",
          status="not_evaluated", points=0, max_points=8, owasp="API4:2023", checks=["pagination.limits"],
          reason="no list endpoint could be paired with a collection; add `resources` to portfolio-grader.yaml",
          hint="Support limit/offset (or page/size) with a maximum page size."),
    ]


def _logs() -> list[LogTail]:
    build = "\n".join([
        "#1 [internal] load build definition from Dockerfile",
        "#5 [1/6] FROM docker.io/library/python:3.12-slim@sha256:2b00...",
        "#8 [4/6] RUN pip install --no-cache-dir -r requirements.txt",
        "#8 12.41 Successfully installed alembic-1.13.1 bcrypt-4.1.2 fastapi-0.110.0 psycopg-3.1.18 ...",
        "#10 [6/6] COPY . .",
        "#11 exporting to image",
        "#11 naming to docker.io/library/pg-task-api-3f9c2e1:latest done",
    ])
    api = "\n".join([
        "INFO:     Started server process [1]",
        "INFO:     Waiting for application startup.",
        "INFO:     Application startup complete.",
        "INFO:     Uvicorn running on http://0.0.0.0:8000 (Press CTRL+C to quit)",
        'INFO:     172.18.0.1:51234 - "POST /api/v1/tasks HTTP/1.1" 500 Internal Server Error',
        "ERROR:    Exception in ASGI application",
        "Traceback (most recent call last):",
        '  File "/app/app/routers/tasks.py", line 41, in create_task',
        "    db.commit()",
        "sqlalchemy.exc.DataError: (psycopg.errors.StringDataRightTruncation) value too long for type "
        "character varying(200)",
    ])
    db = "\n".join([
        "PostgreSQL init process complete; ready for start up.",
        "2025-03-14 10:21:47.120 UTC [1] LOG:  database system is ready to accept connections",
    ])
    return [LogTail(name="build", text=build, truncated=True), LogTail(name="api", text=api, truncated=True),
            LogTail(name="db", text=db)]


def sample_scorecard(**overrides: Any) -> Scorecard:
    """The sample grade; keyword arguments replace top-level Scorecard fields (validated)."""
    criteria = _criteria()
    fields: dict[str, Any] = dict(
        grader_version="0.1.0",
        rubric=RubricRef(name="intermediate", version="2025.1"),
        source=Source(repo="https://github.com/alice-dev/task-api", ref="main",
                      commit="3f9c2e1d8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d"),
        name="alice-dev/task-api",
        tier="intermediate",
        score=sum(c.points for c in criteria),
        pass_mark=70,
        passed=False,
        gates_met=False,
        criteria=criteria,
        findings=_findings(),
        checks=_checks(),
        stages=[
            StageResult(name="fetch", status="ok", seconds=1.84, detail="git clone --depth 1 (2.1 MB)"),
            StageResult(name="inspect", status="ok", seconds=0.21),
            StageResult(name="runtime", status="ok", seconds=48.3, detail="compose: api, db; healthy after 6.2 s"),
            StageResult(name="discover", status="ok", seconds=0.62),
            StageResult(name="checks", status="ok", seconds=21.4),
            StageResult(name="scoring", status="ok", seconds=0.004),
        ],
        top_fixes=[  # as scoring makes them: gates first, then points; each leads with what broke
            Fix(criterion="ownership.bola", title="Users cannot read or change each other's tasks", points=12,
                hint="Scope every read, update and delete to the current user and answer 404 for other users' rows.",
                gate=True, problem=_findings()[0].message, operation="GET /api/v1/tasks/{task_id}",
                finding_ids=["F001", "F002"], criteria=["ownership.bola"]),
            Fix(criterion="errors.json", title="Errors are JSON with a consistent shape", points=6,
                hint="Register exception handlers so 4xx and 5xx responses are application/json with a detail field.",
                problem=_findings()[2].message, operation="POST /api/v1/tasks", finding_ids=["F003"],
                criteria=["errors.json"]),
            Fix(criterion="auth.rate_limit", title="Login is rate limited", points=6,
                hint="Throttle failed logins and answer 429 with Retry-After.", problem=_findings()[3].message,
                operation="POST /api/v1/auth/login", finding_ids=["F004"], criteria=["auth.rate_limit"]),
            Fix(criterion="contract.conformance", title="Responses match the documented schemas", points=5,
                hint="Make the response models and the handlers agree: run schemathesis locally against "
                     "/openapi.json.", problem=_findings()[4].message, operation="GET /api/v1/tasks/{task_id}",
                finding_ids=["F005"], criteria=["contract.conformance"]),
            Fix(criterion="repo.tests", title="Automated tests run in CI", points=3,
                hint="Add a GitHub Actions workflow that runs pytest on every push.",
                problem="Tests exist (tests/, 14 files) but no CI workflow runs them", criteria=["repo.tests"]),
        ],
        runtime={"kind": "compose", "builder": "docker buildx 0.17.1 (BuildKit)", "status": "running",
                 "detail": "service api healthy on /healthz after 6.2 s", "base_url": BASE},
        logs=_logs(),
        api={"spec_source": "served at /openapi.json", "spec_version": "3.1.0", "operations": 14,
             "resources": ["/api/v1/tasks", "/api/v1/projects"]},
        facts={
            "stack": "python", "frameworks": ["fastapi", "sqlalchemy", "alembic"], "dockerfile": "Dockerfile",
            "compose_file": "docker-compose.yml", "exposed_ports": [8000], "readme": "README.md",
            "readme_text": "# Task API\n\nA task manager with JWT auth, built with FastAPI and PostgreSQL.\n\n"
                           "## Run\n\n    docker compose up --build\n\nThen open http://localhost:8000/docs.",
            "test_paths": ["tests/"], "ci_configs": [], "spec_files": [], "manifest": None,
            "routes_in_code": [["POST", "/api/v1/tasks", "app/routers/tasks.py:28"],
                               ["GET", "/api/v1/tasks/mine", "app/routers/tasks.py:47"],
                               ["GET", "/api/v1/tasks/{task_id}", "app/routers/tasks.py:61"],
                               ["DELETE", "/api/v1/tasks/{task_id}", "app/routers/tasks.py:88"]],
        },
        notes=["Pagination was not evaluated: no list endpoint could be paired with a collection.",
               "Schemathesis stopped after 15 examples per operation (time budget 60 s)."],
        graded_at="2025-03-14T10:23:05+00:00",
    )
    fields.update(overrides)
    return Scorecard(**fields)


def hostile_scorecard() -> Scorecard:
    """The sample grade with attacker-controlled text wherever a submission can put text."""
    base = sample_scorecard()
    findings = list(base.findings)
    findings[0] = findings[0].model_copy(update={
        "message": "Reflected: " + HOSTILE,
        "operation": "GET /" + HOSTILE,
        "evidence": [ev("GET", "/api/v1/tasks/" + IMG, 200, HOSTILE + " body",
                        req_headers={"X-Probe": HOSTILE},
                        resp_headers={"Content-Type": "text/html", "X-Evil": HOSTILE, IMG: "header-name"},
                        note="note " + HOSTILE)],
    })
    checks = list(base.checks)
    checks[-1] = checks[-1].model_copy(update={"manifest_hint": "resources: [" + HOSTILE + "]",
                                              "reason": "reason " + HOSTILE})
    return sample_scorecard(
        name="[bold red]evil[/] " + HOSTILE + "\x1b[31mred\x1b[0m",
        source=Source(repo="javascript:alert(1)//" + HOSTILE, ref=IMG, commit=HOSTILE),
        findings=findings,
        checks=checks,
        logs=[LogTail(name="api " + IMG, text="log line " + HOSTILE + "\n</pre><script>alert(2)</script>")],
        runtime={**base.runtime, "builder": "builder " + HOSTILE, "detail": HOSTILE},
        facts={**base.facts, "readme_text": "# Readme\n" + HOSTILE + "\n" + "x" * 300, "stack": IMG},
        api={**base.api, "resources": [HOSTILE, "/api/v1/tasks"]},
        notes=["note " + HOSTILE],
        stages=[*base.stages, StageResult(name="report " + IMG, status="ok", seconds=0.1, detail=HOSTILE)],
        top_fixes=[Fix(criterion=IMG, title="fix " + HOSTILE, points=12, hint="[link=https://evil.example]x[/link] "
                       + HOSTILE, problem="problem " + HOSTILE, operation="GET /" + HOSTILE),
                   *base.top_fixes[1:]],
    )


def gate_missed_scorecard(**overrides: Any) -> Scorecard:
    """The sample grade with JSON errors, rate limiting and conformance fixed: 77/100, above the pass mark 70,
    but the ownership gate still fails. Points add up (77 of 100), the verdict is "not passed: a gate is not met"."""
    base = sample_scorecard()
    fixed = {"errors.json", "auth.rate_limit", "contract.conformance"}
    criteria = [c.model_copy(update={"status": "pass", "points": c.max_points, "finding_ids": []})
                if c.id in fixed else c for c in base.criteria]
    kept = {f for c in criteria for f in c.finding_ids}
    fields: dict[str, Any] = dict(
        criteria=criteria,
        findings=[f for f in base.findings if f.id in kept],
        score=sum(c.points for c in criteria),
        top_fixes=[f for f in base.top_fixes if f.criterion not in fixed],
    )
    fields.update(overrides)
    return sample_scorecard(**fields)
