"""The values that flow through a grade: each stage receives one and returns the next.

fetch -> Workspace, inspect -> RepoFacts, runtime -> RunningService, discover -> ApiModel,
checks -> CheckOutcome (with Findings and Evidence), scoring -> Scorecard.
Field names of Scorecard and everything below it are the `result.json` contract: extend, never rename.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

SCHEMA_VERSION = "1.0"

Severity = Literal["critical", "high", "medium", "low", "info"]
# not_applicable: the check looked and found nothing of what it examines (no paginated list, no short links);
# a criterion that `applies: when_offered` then drops out of the grade, any other one is not_evaluated
CheckStatus = Literal["pass", "fail", "warn", "not_evaluated", "not_applicable"]
CriterionStatus = Literal["pass", "fail", "partial", "not_evaluated", "not_applicable"]
StageStatus = Literal["ok", "failed", "skipped", "timeout"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


# ---------------------------------------------------------------- fetch


class Source(_Frozen):
    """Where the graded code came from."""

    repo: str | None = None  # URL or local path as the user gave it
    ref: str | None = None
    commit: str | None = None
    url: str | None = None  # a live deployment graded without a build


class Workspace(_Frozen):
    """A private copy of the submission that the grader may read and build."""

    name: str  # a short, filesystem-safe name for reports
    source: Source
    path: Path | None = None  # None when grading a live URL only


# ---------------------------------------------------------------- inspect


class ManifestAdmin(_Frozen):
    model_config = ConfigDict(frozen=True, extra="forbid")
    login: str  # the seeded admin's email or username
    password: str


class ManifestResource(_Frozen):
    """A resource the manifest spells out, for one discovery cannot see (its item path is not `<collection>/{id}`:
    `/tasks/toggle/{id}`, `/getTask/{id}`). Operations are "METHOD /path" labels of the spec; each left out is the
    usual one (POST and GET on the collection, GET, PUT or PATCH, DELETE on the item)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    collection: str
    item: str
    id: str = "id"  # the created object's field that fills the item's path parameter
    create: str | None = None
    read: str | None = None
    update: str | None = None
    delete: str | None = None
    list: str | None = None


class ManifestAuth(_Frozen):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)
    # `register` would shadow ABCMeta.register on the model class, hence the alias.
    register_op: str | None = Field(default=None, alias="register")  # "POST /api/v1/accounts"
    login: str | None = None
    token: str | None = None  # where the token is in the login response
    admin_operations: list[str] = []  # "GET /api/v1/stats": admin-only operations inference cannot see
    admin: ManifestAdmin | None = None  # a seeded admin, the control for admin-only checks


class SetupStep(_Frozen):
    model_config = ConfigDict(frozen=True, extra="forbid")
    exec: str | None = None  # a command run inside the API container
    request: str | None = None  # "GET /createdb"


class ManifestShortener(_Frozen):
    """(advanced tier) A URL shortener's operations, as "METHOD /path" lines."""
    model_config = ConfigDict(frozen=True, extra="forbid")
    create: str | None = None  # "POST /links": takes the long URL, answers the short code
    redirect: str | None = None  # "GET /{code}": answers 301/302/307/308 with Location
    stats: str | None = None  # "GET /links/{id}/stats": the click count a background job keeps
    url_field: str | None = None  # the create body's field for the long URL
    code_field: str | None = None  # the create response's field holding the short code


class ManifestApiKeys(_Frozen):
    """(capstone tier) How API keys are made, revoked and sent."""
    model_config = ConfigDict(frozen=True, extra="forbid")
    create: str | None = None  # "POST /api-keys"
    revoke: str | None = None  # "DELETE /api-keys/{key_id}"
    key_field: str | None = None  # where the key is in the create response (dotted)
    header: str | None = None  # the header a key is sent in (default: the spec's apiKey scheme, else Authorization)
    prefix: str | None = None  # what goes before the key in that header ("Bearer ")


class ManifestTenants(_Frozen):
    """(capstone tier) How a tenant (organisation) is created; without it each test user is its own tenant."""
    model_config = ConfigDict(frozen=True, extra="forbid")
    create: str | None = None  # "POST /orgs"


class ManifestWebhooks(_Frozen):
    """(capstone tier) Webhook registration and the event the grader triggers."""
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)
    register_op: str | None = Field(default=None, alias="register")  # "POST /webhooks" (alias: see ManifestAuth)
    url_field: str | None = None  # the registration body's field for the receiver URL
    secret_field: str | None = None  # the body field the grader sets (or the response field it reads) the secret in
    signature_header: str | None = None  # "X-Signature": the HMAC of the body with the secret
    events: list[str] = []  # event names to subscribe to, when the registration needs them
    trigger: str | None = None  # "POST /projects": the operation whose success emits an event


class ManifestIdempotency(_Frozen):
    """(capstone tier) Which create operation honours an idempotency key, and in which header."""
    model_config = ConfigDict(frozen=True, extra="forbid")
    operation: str | None = None  # "POST /payments"
    header: str = "Idempotency-Key"


class ManifestService(_Frozen):
    """(compose) What the grader gives one service of the stack."""
    model_config = ConfigDict(frozen=True, extra="forbid")
    env: dict[str, str] = {}  # variables set in the service's environment (over its own)


class Manifest(_Frozen):
    """`portfolio-grader.yaml` in the learner repo: every key optional."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    tier: str | None = None
    service: str | None = None  # the compose service that is the API
    port: int | None = Field(default=None, ge=1, le=65535)
    health: str | None = None
    spec: str | None = None  # a URL path ("/openapi.json") or a file in the repo
    setup: list[SetupStep] = []
    auth: ManifestAuth | None = None
    resources: list[str] = []  # the collections to probe (those of declared_resources among them)
    declared_resources: list[ManifestResource] = []  # `resources:` entries written as mappings
    # advanced and capstone tiers: what the grader cannot infer from the spec
    metrics: str | None = None  # "/metrics": where Prometheus metrics are served
    shortener: ManifestShortener | None = None
    api_keys: ManifestApiKeys | None = None
    tenants: ManifestTenants | None = None

    @model_validator(mode="before")
    @classmethod
    def _spelled_out_resources(cls, data: Any) -> Any:
        """`resources:` takes collections and mappings alike; a mapping is a declared resource, and its collection
        is one to probe like the others."""
        entries = data.get("resources") if isinstance(data, dict) else None
        if not isinstance(entries, list) or not any(isinstance(e, dict) for e in entries):
            return data
        return {**data, "resources": [e.get("collection") if isinstance(e, dict) else e for e in entries],
                "declared_resources": [*data.get("declared_resources", []), *(e for e in entries if isinstance(e, dict))]}
    webhooks: ManifestWebhooks | None = None
    idempotency: ManifestIdempotency | None = None
    usage: str | None = None  # "GET /usage": the caller's usage counters
    exclude: list[str] = []  # "GET /createdb": operations the grader never calls (setup: may still run one)
    env: dict[str, str] = {}  # variables for the API's environment (a `.env` that is not committed)
    services: dict[str, ManifestService] = {}  # (compose) per service: {db: {env: {POSTGRES_PASSWORD: ...}}}
    egress: bool = False  # the API needs the internet at run time (off: its network offers no route out)


class RepoFacts(_Frozen):
    """What can be known about the repo without running it."""

    root: Path | None = None
    stack: Literal["python", "node", "other", "unknown"] = "unknown"
    frameworks: list[str] = []
    dockerfile: str | None = None  # paths relative to root
    compose_file: str | None = None
    exposed_ports: list[int] = []
    spec_files: list[str] = []
    readme: str | None = None
    readme_text: str = ""
    test_paths: list[str] = []
    ci_configs: list[str] = []
    manifest: Manifest | None = None
    manifest_error: str | None = None
    routes_in_code: list[tuple[str, str, str]] = []  # (METHOD or "*", path template, "file:line")


# ---------------------------------------------------------------- runtime


class LogTail(_Frozen):
    name: str  # "build", "api", "db", ...
    text: str
    truncated: bool = False


class RunningService(_Frozen):
    """The outcome of the runtime stage: a base URL when the API is up, or why it is not."""

    kind: Literal["docker", "compose", "external", "none"]
    base_url: str | None = None
    builder: str | None = None  # which builder built the image, stated in the scorecard
    status: Literal["running", "build_failed", "start_failed", "container_crashed", "not_started"]
    detail: str = ""
    logs: list[LogTail] = []
    api_container: str | None = None  # the container id of the API, for `exec` setup steps

    @property
    def up(self) -> bool:
        return self.status == "running" and self.base_url is not None


# ---------------------------------------------------------------- discover


class Operation(_Frozen):
    method: str  # upper case
    path: str  # the spec's template, e.g. /books/{book_id}
    operation_id: str | None = None
    tags: list[str] = []
    summary: str = ""
    parameters: list[dict[str, Any]] = []
    request_schema: dict[str, Any] | None = None  # JSON body schema, refs resolved
    request_form_schema: dict[str, Any] | None = None  # form-encoded body schema (OAuth2 password flow)
    request_content_types: list[str] = []
    responses: dict[str, dict[str, Any]] = {}  # status -> {"schema": ..., "content_types": [...]}
    security: bool = False  # does the spec require credentials

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"


class Resource(_Frozen):
    """A collection the API lets clients create items in and address them by id."""

    collection: str  # /books
    item: str  # /books/{book_id}
    id_param: str  # book_id
    id_field: str = "id"  # field of the created object that holds the id
    create: Operation
    read: Operation | None = None
    update: Operation | None = None  # PUT preferred, else PATCH
    delete: Operation | None = None
    list: Operation | None = None
    parents: dict[str, str] = {}  # path parameters of a nested collection, filled with parents the grader made


class AuthFlow(_Frozen):
    """How a client gets and sends credentials, as inferred from the spec (or named by the manifest)."""

    signup: Operation | None = None  # the registration operation
    login: Operation | None = None
    login_form: bool = False  # form-encoded (OAuth2 password flow) rather than JSON
    identity_field: str = "username"  # the login body's user field: email, username ...
    password_field: str = "password"
    token_path: str | None = "access_token"  # dotted path in the login response; None: a session cookie
    send_header: str = "Authorization"
    send_prefix: str = "Bearer "  # "" for an API-key header
    me: Operation | None = None  # GET /users/me or similar
    csrf: Operation | None = None  # a GET that hands a cookie session its CSRF token (`GET /api/csrf/`)
    issues_keys: bool = False  # no passwords: `signup` (also `login`) hands out an API key, one per identity
    admin_operations: list[Operation] = []
    evidence: list[str] = []  # why the grader believes this, for the scorecard


class SpecIssue(_Frozen):
    message: str
    path: str | None = None


class ApiModel(_Frozen):
    """What the grader knows about the API's surface."""

    base_url: str | None = None
    spec: dict[str, Any] | None = None
    spec_source: str | None = None  # "served at /openapi.json" or "file openapi.yaml"
    spec_version: str | None = None
    spec_errors: list[SpecIssue] = []
    spec_problem: str | None = None  # why no spec could be loaded
    operations: list[Operation] = []
    resources: list[Resource] = []
    unknown_route_fingerprint: tuple[int, str] | None = None  # status, body excerpt of a surely unknown route
    auth: AuthFlow | None = None
    auth_problem: str | None = None  # why no way to log in was inferred
    # documented operations the grader does not call -> why ("its name says it resets the data: createdb");
    # they are not in `operations`, and Schemathesis never sees them
    held_out: dict[str, str] = {}
    # operations only the fuzzer leaves alone (a bulk delete would wipe the test users' objects) -> why
    not_fuzzed: dict[str, str] = {}
    notes: list[str] = []  # what discovery could not use, for the scorecard (a declared resource left out)


# ---------------------------------------------------------------- evidence and findings


class RequestRecord(_Frozen):
    method: str
    url: str
    headers: dict[str, str] = {}
    body: str | None = None


class ResponseRecord(_Frozen):
    status: int | None = None  # None: no response (timeout, connection refused)
    headers: dict[str, str] = {}
    body: str | None = None  # an excerpt, decoded leniently
    elapsed_ms: float | None = None
    error: str | None = None


class Evidence(_Frozen):
    """An HTTP exchange, or for repository verdicts a file excerpt; `curl` is the command that reproduces it."""

    request: RequestRecord | None = None
    response: ResponseRecord | None = None
    curl: str = Field(min_length=1)  # every verdict can be reproduced
    note: str | None = None  # what this exchange shows ("expected 404 after DELETE")
    file: str | None = None  # repository evidence: the file, relative to the repo root
    excerpt: str | None = None


class Finding(_Frozen):
    id: str
    check: str
    kind: str
    severity: Severity
    message: str
    evidence: list[Evidence] = []
    hint: str = ""
    operation: str | None = None  # "POST /books" when it belongs to one


class CheckOutcome(_Frozen):
    """One check's verdict. Passing verdicts carry evidence too."""

    check: str
    area: str
    status: CheckStatus
    summary: str
    reason: str | None = None  # why not evaluated
    manifest_hint: str | None = None  # the portfolio-grader.yaml lines that would let it run
    score: float = 1.0  # 0..1, share of what was examined that held (partial credit)
    findings: list[Finding] = []
    evidence: list[Evidence] = []  # what a pass rests on
    seconds: float | None = None  # wall-clock time the runner gave the check (None: not run, a deadline had passed)
    alongside: bool = False  # ran in the side lane (it deliberately waits): its seconds overlap other checks'


# ---------------------------------------------------------------- scorecard


class RubricRef(_Frozen):
    name: str
    version: str


class CriterionResult(_Frozen):
    id: str
    title: str
    area: str
    status: CriterionStatus
    points: float
    max_points: float
    gate: bool = False
    owasp: str | None = None
    hint: str = ""
    finding_ids: list[str] = []
    checks: list[str] = []
    reason: str | None = None  # for not_evaluated and not_applicable (whose max_points is 0: it does not count)
    visibility: Literal["visible", "hidden"] = "visible"  # hidden: graded, summarised to learners as a count

    @property
    def gate_failed(self) -> bool:
        """A gate that holds back the tier: one that applies and did not pass."""
        return self.gate and self.status not in ("pass", "not_applicable")


class StageResult(_Frozen):
    name: str
    status: StageStatus
    seconds: float
    detail: str = ""


class LadderStep(_Frozen):
    """One tier of the ladder: reached when every gate of it (its own and those it inherits) holds."""

    tier: str
    status: Literal["reached", "missed", "not_graded"]
    score: float | None = None
    missing_gates: list[str] = []  # titles of the gate criteria that did not pass


class Fix(_Frozen):
    """One item of "Fix these first": what broke on this API, then the rubric's hint. One cause that costs
    several criteria (a failed build leaves every probe not evaluated) is one item covering them all."""

    criterion: str
    title: str
    points: float  # how many points fixing it is worth
    hint: str
    problem: str = ""  # what broke on this API: the leading finding's message, else the failing check's summary
    operation: str | None = None  # the operation it broke on ("POST /books"), when it belongs to one
    gate: bool = False  # one of the criteria it covers is a gate of the tier
    finding_ids: list[str] = []
    criteria: list[str] = []  # every criterion this cause costs, `criterion` first


class Scorecard(BaseModel):
    """Everything a report shows; serialised as result.json."""

    schema_version: str = SCHEMA_VERSION
    grader_version: str
    rubric: RubricRef
    source: Source
    name: str
    tier: str
    score: float
    pass_mark: float
    passed: bool
    gates_met: bool
    criteria: list[CriterionResult]
    findings: list[Finding]
    checks: list[CheckOutcome] = []
    stages: list[StageResult]
    top_fixes: list[Fix] = []
    ladder: list[LadderStep] = []  # beginner -> capstone: which tiers' gates hold
    runtime: dict[str, Any] = {}  # kind, builder, status, detail, base_url
    logs: list[LogTail] = []
    api: dict[str, Any] = {}  # spec source, version, operation count, resources
    facts: dict[str, Any] = {}
    notes: list[str] = []  # grader-level messages: what could not be done and why
    graded_at: str = ""
    baseline: dict[str, Any] | None = None  # report/baseline.py: what changed since a previous grade
