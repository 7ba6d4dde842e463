"""Contract checks: one bounded, seeded Schemathesis run per grade, read by several small checks.

The run (`contract_run`) drives Schemathesis' engine in-process against the running service, feeds
every exchange it made into the grade's Prober, and condenses what failed into groups of
(kind, operation). Each check below reads the shared run and judges one kind of failure.

Schemathesis 4.32.5 facts this module relies on (verified against the installed package, see
/work/shared/notes/schemathesis-4.md):
- `schemathesis.openapi.from_dict(spec, config=...)` + `schemathesis.engine.from_schema(schema).execute()`
  yields events; `ScenarioFinished.recorder` holds cases, interactions and check results, and a
  failing check's `failure_info.code_sample` is the curl text the CLI prints.
- The run mutates the spec dict it is given (inferred `links` are written into the responses), so it
  gets a deep copy: `ctx.api.spec` is shared with the other checks.
- `max-time` is a time *budget to spend*, not a cap: fuzzing and stateful testing repeat until it is
  used up, so every grade would last the whole budget and the request stream would depend on the
  machine's speed. The run is count-bound (max-examples) and the budget is enforced as a hard cap
  from here instead, by stopping the event stream.
- Hypothesis fixes its `.hypothesis/` home to the working directory *at import time*, so changing
  the cwd is not enough: the home is set explicitly for the run and restored afterwards.
"""

from __future__ import annotations

import copy
import json
import os
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple

from ..evidence import decode_body
from ..models import CheckOutcome, Evidence, Finding, Severity
from ..probe import SCAN_LIMIT, Exchange
from .pagination_survey import CURSOR_NAMES, OFFSET_NAMES, PAGE_NAMES, SIZE_NAMES
from .registry import REGISTRY, CheckContext, check

AREA = "contract"
NEEDS = ("service", "spec")
MEMO_KEY = "schemathesis"
MAX_FAILURES = 500  # distinct failures (kind x operation) before Schemathesis stops; high, but bounded
MAX_EVIDENCE = 4  # per finding: the failing request plus the steps that led to it
SAMPLES_PER_TAG = 3
UNKNOWN_ROUTE = "/__portfolio-grader__/no-such-route"  # what the API answers for a path it does not have
_HTTP_METHODS = ("get", "put", "post", "delete", "patch", "options", "head", "trace")

# Schemathesis checks that no grader check reads, switched off rather than silently dropped.
# allow_header_conformance (ST205): Starlette's 405 lists only the methods of the first matching
# route in `Allow`, so every plain FastAPI app fails it; the rubric does not ask for it.
_UNGRADED_CHECKS = ("allow_header_conformance",)


# ---------------------------------------------------------------- kinds: the one table of text


class Kind(NamedTuple):
    severity: Severity
    title: str
    why: str  # why it matters, for the learner
    hint: str  # how to fix it in FastAPI / Flask / Express terms


KINDS: dict[str, Kind] = {
    "server_error": Kind(
        "high", "Server error (5xx)",
        "A 5xx means input that any client can send crashed the API: the client learns nothing about "
        "what to fix, internals may leak, and it is the first thing a reviewer's fuzzer finds.",
        "Validate input at the edge so it never reaches code that cannot handle it (FastAPI: pydantic models "
        "with Field(max_length=..., ge=..., le=...); Flask: marshmallow or pydantic; Express: zod, Joi or "
        "express-validator), and turn the errors a client can cause (bad values, duplicates, missing rows) into "
        "4xx responses (HTTPException / abort(4xx) / res.status(4xx).json(...)) instead of letting them escape.",
    ),
    "schema_violation": Kind(
        "medium", "Response does not match its documented schema",
        "Clients and generated SDKs trust the document: a field typed integer that arrives as a string, or a "
        "required field that is missing, breaks them at runtime.",
        "Return exactly what the spec promises. FastAPI: declare response_model= (or a return type) and return "
        "the model, so the framework converts and checks it; Flask/Express: serialise every response through "
        "one schema (marshmallow, pydantic, zod) or correct the document. Keep ids and counts integers.",
    ),
    "status_code_undocumented": Kind(
        "low", "Undocumented status code",
        "A status the document does not list is one a client was not written to handle; documenting it "
        "is part of the contract (and the reviewer reads the docs first).",
        "List every status an operation can return: FastAPI `responses={404: {\"model\": ErrorOut}}` on the "
        "route decorator; Flask/Express: add it to openapi.yaml (or the apispec / swagger-jsdoc comment). If "
        "the status is not intended, stop returning it.",
    ),
    "content_type_mismatch": Kind(
        "low", "Content-Type differs from the documented one",
        "A client that was promised JSON calls .json() on the body; a text/plain or HTML error breaks it "
        "exactly when it needs the error message.",
        "Answer with the documented media type, errors included: FastAPI: raise HTTPException (JSON) rather "
        "than returning PlainTextResponse; Flask: return jsonify(...) and register JSON error handlers "
        "(@app.errorhandler(404)); Express: res.status(n).json({...}) instead of res.send(text).",
    ),
    "negative_data_accepted": Kind(
        "medium", "Invalid request accepted",
        "Data that violates the documented schema was accepted (2xx): the API stores garbage, later reads "
        "break, and the document is not telling the truth about what the API enforces.",
        "Validate every request body, query and path parameter against the documented constraints and answer "
        "400/422 with the offending field: FastAPI does it when the body is a pydantic model (add Field "
        "constraints, extra='forbid' for additionalProperties: false); Flask: marshmallow/pydantic; Express: "
        "zod, Joi, celebrate or express-validator.",
    ),
    "positive_data_rejected": Kind(
        "low", "Valid request rejected",
        "A request the document allows was refused, so a client that follows the document cannot use the API.",
        "Make the validation and the document agree: loosen the validator or tighten the schema (pattern, "
        "minLength, enum, format) so that what the spec allows, the API accepts.",
    ),
    "required_header_ignored": Kind(
        "low", "Missing required header accepted",
        "The document says the header is required, but requests without it succeed: either the API does not "
        "need it (fix the document) or it silently runs without it.",
        "Reject requests that lack a required header with 400/401/422: FastAPI `x_token: str = Header()` "
        "without a default; Flask/Express: check request.headers / req.get(...) and abort.",
    ),
    "unsupported_method_allowed": Kind(
        "low", "Undocumented method not answered with 405",
        "HTTP says a method a resource does not support gets 405 Method Not Allowed with an Allow header; "
        "anything else misleads clients and hides routing mistakes.",
        "Register routes with explicit methods (FastAPI @app.get/@app.post, Flask methods=[...], Express "
        "router.get/post) and avoid catch-alls (api_route without methods, app.all, a wildcard handler that "
        "answers 200 or 404 for every method).",
    ),
    "use_after_free": Kind(
        "medium", "Deleted resource still served",
        "DELETE answered success, yet the resource can still be read: clients cannot trust deletes, and "
        "data the user removed stays exposed.",
        "Actually remove the row (or, for soft deletes, filter deleted rows out of every read and answer 404); "
        "commit the transaction before answering 204.",
    ),
    "resource_unavailable": Kind(
        "medium", "Created resource not found",
        "The API confirmed a creation, but the id it returned does not lead to the resource: clients following "
        "the document cannot use what they created.",
        "Return the real id (and a Location header) in the create response, commit before responding, and look "
        "the resource up by the same key type (int vs str ids are a classic).",
    ),
    "auth_missing": Kind(
        "high", "Authentication not enforced",
        "The document marks the operation as requiring credentials, but it answered success without valid "
        "ones: anyone on the internet can call it (OWASP API2:2023 Broken Authentication).",
        "Enforce auth on every secured operation: FastAPI `Depends(get_current_user)` on the route or "
        "`dependencies=[Depends(...)]` on the router; Flask: @login_required / a before_request check; Express: "
        "the auth middleware mounted before the router. Answer 401 without valid credentials.",
    ),
    "bola_read": Kind(
        "critical", "Object-level authorization bypass",
        "One user could read an object that belongs to another user (OWASP API1:2023 BOLA), the most common "
        "and most damaging API vulnerability.",
        "Check ownership on every access by id: query with `WHERE id = :id AND owner_id = :current_user` "
        "(or compare owner and caller) and answer 404 (or 403) when the object is not the caller's.",
    ),
}

# Schemathesis failure code -> kind (the codes are stable: Schemathesis never renumbers them).
KIND_BY_CODE: dict[str, str] = {
    "ST101": "server_error", "ST102": "server_error",
    "ST103": "status_code_undocumented",
    "ST104": "content_type_mismatch", "ST105": "content_type_mismatch", "ST106": "content_type_mismatch",
    "ST107": "schema_violation", "ST108": "schema_violation", "ST109": "schema_violation",
    "ST110": "schema_violation", "ST111": "schema_violation",
    "ST201": "negative_data_accepted",
    "ST202": "positive_data_rejected",
    "ST203": "required_header_ignored",
    "ST204": "unsupported_method_allowed",
    "ST301": "use_after_free",
    "ST302": "resource_unavailable",
    "ST401": "auth_missing",
    "ST402": "bola_read",
}


# ---------------------------------------------------------------- what one run leaves behind


@dataclass
class Occurrence:
    """One failing Schemathesis check on one request."""

    code: str
    title: str
    message: str
    status: int | None
    target: str  # the operation the failing request called (a chain can fail on another operation's request)
    exchange: Exchange  # the failing request and response
    curl: str  # Schemathesis' code sample: one curl per line, oldest first for chains
    chain: list[Exchange]  # the earlier requests a chain needs, oldest first
    curl_warnings: list[str]

    @property
    def cost(self) -> tuple[int, int]:
        """Simpler reproductions first: fewer steps, then a shorter command."""
        return len(self.chain), len(self.curl)


@dataclass
class FailureGroup:
    """All occurrences of one kind on one operation (and one status, for undocumented statuses)."""

    kind: str
    operation: str
    status: int | None
    requests: set[str] = field(default_factory=set)  # ids of the failing cases
    codes: Counter = field(default_factory=Counter)
    targets: set[str] = field(default_factory=set)  # operations the failing requests called
    best: Occurrence | None = None

    def add(self, case_id: str, occurrence: Occurrence) -> None:
        self.requests.add(case_id)
        self.codes[occurrence.code] += 1
        self.targets.add(occurrence.target)
        if self.best is None or occurrence.cost < self.best.cost:
            self.best = occurrence


@dataclass
class ContractRun:
    """What the Schemathesis run exercised, what failed, and what stopped it from testing more."""

    seed: int
    version: str
    operations: list[str]  # every operation in the spec, "METHOD /path"
    secured: set[str]  # operations whose spec requires credentials
    fatal: str | None = None  # why nothing could run at all
    requests: int = 0  # answered requests Schemathesis generated
    answered: Counter = field(default_factory=Counter)  # answered requests per operation
    reached: Counter = field(default_factory=Counter)  # ... of which did not look like an unknown route
    groups: dict[tuple[str, str, int | None], FailureGroup] = field(default_factory=dict)
    issues: Counter = field(default_factory=Counter)  # (where, title, message) of non-fatal engine errors
    samples: dict[str, list[tuple[str, Exchange]]] = field(default_factory=dict)  # (operation, exchange) by tag
    stateful_requests: int = 0
    stateful_skip: str | None = None  # why the stateful phase did not run
    set_aside: Counter = field(default_factory=Counter)  # (kind, why) -> failing requests not counted (_excused)
    unknown_route: tuple[int, str] | None = None
    stop: str = "completed"
    budget: float = 0.0  # seconds the run may take
    cut_by_budget: bool = False
    peers: int = 0  # the users the run acted as (2: Schemathesis could replay one's reads as the other)
    elapsed: float = 0.0

    @property
    def exercised(self) -> list[str]:
        """Operations that answered at least one request unlike an unknown route, in spec order."""
        known = [op for op in self.operations if self.reached[op]]
        return known + sorted(op for op in self.reached if self.reached[op] and op not in self.operations)

    @property
    def unreached(self) -> list[str]:
        """Operations that answered every request exactly like a path the API does not have."""
        return [op for op in self.answered if self.answered[op] and not self.reached[op]]

    @property
    def stamp(self) -> str:
        return f"seed {self.seed}, Schemathesis {self.version}"

    def wants_sample(self, tag: str, operation: str) -> bool:
        """Representative means a few, from different operations (a stateful chain may repeat one)."""
        bucket = self.samples.get(tag, [])
        return len(bucket) < SAMPLES_PER_TAG and (tag == "stateful" or all(op != operation for op, _ in bucket))


# ---------------------------------------------------------------- running Schemathesis


def contract_run(ctx: CheckContext) -> ContractRun:
    """The grade's one Schemathesis run, computed on first use and shared by every contract check."""
    return ctx.memo(MEMO_KEY, lambda: _run(ctx))


def schemathesis_config(ctx: CheckContext, peers_file: Path | None = None) -> dict[str, Any]:
    """The complete Schemathesis configuration; always passed explicitly, never discovered from a file.

    `peers_file`: a Web Fuzzing Commons document naming two fuzzing users (`fuzz_peers`), so Schemathesis'
    object_level_authorization check replays one user's reads as the other; without it, one user's headers."""
    settings = ctx.settings
    secured = bool(secured_operations(ctx.api.spec or {}))
    auth: dict[str, Any] = {"auto-signup": False}
    if peers_file is not None:
        auth["wfc"] = {"path": str(peers_file), "peers": list(PEERS)}
    return {
        "seed": settings.seed,
        "base-url": ctx.api.base_url or ctx.service.base_url,
        "request-timeout": settings.request_timeout,
        "workers": 1,
        "continue-on-failure": True,  # each operation reports every kind of failure, not only its first
        "max-failures": MAX_FAILURES,
        "cache": {"enabled": False},  # no crash cache replayed from an earlier learner's run
        "generation": {"max-examples": settings.max_examples, "database": "none"},
        "output": {"sanitization": {"enabled": False}},  # curl lines must reproduce; Evidence redacts secrets
        "phases": {name: {"enabled": True} for name in ("examples", "coverage", "fuzzing", "stateful")},
        "checks": {name: {"enabled": False} for name in _UNGRADED_CHECKS},
        # Secured operations are exercised as a disposable user of the fuzzer's own (what it deletes is not
        # user A or B); Schemathesis must not sign up users of its own (they would skew rate limits).
        "headers": ctx.fuzz_headers() if secured and peers_file is None else {},
        "auth": auth,
    }


PEERS = ("F", "G")  # the fuzzing users' names in Schemathesis' curl comments ("# as G")


@contextmanager
def _peers_document(ctx: CheckContext, folder: Path) -> Iterator[Path | None]:
    """A private WFC document with the two fuzzing users' headers, removed after the run (it holds tokens);
    None when the spec secures nothing or two users could not be made."""
    peers = ctx.fuzz_peers() if secured_operations(ctx.api.spec or {}) else []
    if len(peers) < 2:
        yield None
        return
    document = {"auth": [{"name": name, "fixedHeaders": [{"name": k, "value": v} for k, v in headers.items()]}
                         for name, headers in zip(PEERS, peers)]}
    path = folder / f"peers-{ctx.run_tag}-{os.getpid()}.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(document, out)
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


def _run(ctx: CheckContext) -> ContractRun:
    import schemathesis

    spec = without_operations(ctx.api.spec or {}, {**ctx.api.held_out, **ctx.api.not_fuzzed})
    run = ContractRun(seed=ctx.settings.seed, version=schemathesis.__version__, operations=spec_operations(spec),
                      secured=secured_operations(spec), budget=ctx.settings.contract_time_budget)
    started = time.monotonic()
    try:
        if not run.operations:
            run.fatal = "the OpenAPI document lists no operations"
            return run
        preflight = ctx.prober.request("GET", UNKNOWN_ROUTE)  # recorded like any probe
        if preflight.status is None:
            run.fatal = f"the API did not answer at {ctx.prober.base_url} ({preflight.error})"
            return run
        run.unknown_route = (preflight.status, _fingerprint_text(preflight.body))
        _execute(ctx, run, spec)
    finally:
        run.elapsed = time.monotonic() - started
    return run


def _execute(ctx: CheckContext, run: ContractRun, spec: dict[str, Any]) -> None:
    import schemathesis
    from schemathesis.config import SchemathesisConfig
    from schemathesis.engine import from_schema, events
    from schemathesis.engine.run import PhaseName

    budget = ctx.settings.contract_time_budget
    with _grader_workdir() as workdir, _peers_document(ctx, workdir) as peers_file:
        run.peers = len(PEERS) if peers_file else min(1, len(ctx.fuzz_peers()))
        config = SchemathesisConfig.from_dict(schemathesis_config(ctx, peers_file))
        try:
            # a deep copy: the run writes inferred links into the document it is given
            schema = schemathesis.openapi.from_dict(copy.deepcopy(spec), config=config)
        except Exception as exc:  # LoaderError and friends: an unsupported or broken document
            run.fatal = f"Schemathesis could not load the OpenAPI document ({_one_line(exc)})"
            return
        stream = from_schema(schema).execute()
        budget_spent = threading.Event()

        def stop_at_budget() -> None:
            budget_spent.set()
            stream.stop()

        timer = threading.Timer(budget, stop_at_budget)
        timer.daemon = True
        timer.start()
        interrupted = False
        try:
            for event in stream:
                if isinstance(event, events.ScenarioFinished):
                    _read_scenario(ctx, run, event)
                elif isinstance(event, events.NonFatalError):
                    run.issues[(event.label, event.info.title, _one_line(event.info.message))] += 1
                elif isinstance(event, events.PhaseFinished) and event.phase.name == PhaseName.STATEFUL_TESTING:
                    if event.phase.skip_reason is not None:
                        run.stateful_skip = str(event.phase.skip_reason.value).replace("_", " ")
                elif isinstance(event, events.Interrupted):
                    interrupted = True
                elif isinstance(event, events.FatalError):
                    run.issues[("run", "Schemathesis failed", _one_line(event.exception))] += 1
                    if not run.requests:
                        run.fatal = f"Schemathesis failed before testing anything ({_one_line(event.exception)})"
                elif isinstance(event, events.EngineFinished):
                    run.stop = event.stop_reason.value
                    for failure in event.failures:
                        run.issues[("run", failure.title, _one_line(failure.message))] += 1
        except Exception as exc:  # an engine bug must not lose what was already recorded
            run.issues[("run", "Schemathesis crashed", _one_line(exc))] += 1
            if not run.requests:
                run.fatal = f"Schemathesis crashed before testing anything ({type(exc).__name__}: {_one_line(exc)})"
        finally:
            timer.cancel()
        run.cut_by_budget = budget_spent.is_set()
        if interrupted and not run.cut_by_budget:
            raise KeyboardInterrupt  # the engine swallows Ctrl-C; the grade must still stop


def _read_scenario(ctx: CheckContext, run: ContractRun, event: Any) -> None:
    """Record every exchange of one scenario, count what it exercised, and group its failures."""
    from schemathesis.engine import Status
    from schemathesis.engine.run import PhaseName

    recorder = event.recorder
    counted = event.is_test_scenario  # sign-up/login calls of auth bootstrap are not tests
    stateful = event.phase == PhaseName.STATEFUL_TESTING

    # curl per case: the reproduction steps of failures carry them, single-request failures only the sample
    failing: list[tuple[str, Any]] = []
    curls: dict[str, str] = {}
    for case_id, nodes in recorder.checks.items():
        for node in nodes:
            if node.status != Status.FAILURE or node.failure_info is None:
                continue
            info = node.failure_info
            target = info.failure.case_id or case_id
            failing.append((target, info))
            for step in info.steps:
                curls.setdefault(step.case_id, _curl_lines(step.curl)[0])
            if not info.steps:
                curls.setdefault(target, _curl_lines(info.code_sample)[0])

    exchanges: dict[str, Exchange] = {}
    for case_id, interaction in recorder.interactions.items():
        node = recorder.cases.get(case_id)
        case = node.value if node is not None else None
        exchange = _exchange(interaction, curls.get(case_id))
        ctx.prober.record(exchange)
        exchanges[case_id] = exchange
        if interaction.response is None or not counted:
            continue
        label = case.operation.label if case is not None else recorder.label
        run.requests += 1
        run.answered[label] += 1
        if _looks_unknown(run, exchange):
            continue
        run.reached[label] += 1
        if stateful:
            run.stateful_requests += 1
        _keep_sample(run, label, case, exchange, stateful, interaction)

    for case_id, info in failing:
        failure = info.failure
        kind = KIND_BY_CODE.get(failure.code)
        exchange = exchanges.get(case_id)
        node = recorder.cases.get(case_id)
        if kind is None or exchange is None or node is None:
            continue
        excuse = _excused(failure.code, node.value, exchange, ctx)
        if excuse is not None:
            run.set_aside[(kind, excuse)] += 1
            continue
        operation = failure.operation or recorder.label
        status = getattr(failure, "status_code", None) or exchange.status
        lines, warnings = _curl_lines(info.code_sample)
        chain = [exchanges[step.case_id] for step in info.steps
                 if step.case_id != case_id and step.case_id in exchanges]
        occurrence = Occurrence(code=failure.code, title=failure.title, message=failure.message, status=status,
                                target=node.value.operation.label, exchange=exchange, curl=lines, chain=chain,
                                curl_warnings=warnings)
        key = (kind, operation, status if kind == "status_code_undocumented" else None)
        run.groups.setdefault(key, FailureGroup(kind, operation, key[2])).add(case_id, occurrence)


def _keep_sample(run: ContractRun, label: str, case: Any, exchange: Exchange, stateful: bool, interaction: Any) -> None:
    status = exchange.status or 0
    negative = case is not None and case.meta is not None and case.meta.generation.mode.is_negative
    tag = None
    if stateful and 200 <= status < 300:
        tag = "stateful"
    elif 200 <= status < 300 and not negative:
        tag = "ok"
    elif negative and status in (400, 422):
        tag = "rejected"
    elif status == 405:
        tag = "method"
    elif status in (401, 403) and label in run.secured:
        tag = "refused"
    if tag is None or not run.wants_sample(tag, label):
        return
    if exchange.curl is None and case is not None:
        try:
            headers = {name: values[0] for name, values in interaction.request.headers.items()}
            exchange.curl = _curl_lines(case.as_curl_command(headers=headers))[0]
        except Exception:  # the grader's own curl line is the fallback
            pass
    run.samples.setdefault(tag, []).append((label, exchange))


def _exchange(interaction: Any, curl: str | None) -> Exchange:
    request, response = interaction.request, interaction.response
    body = request.body.decode("utf-8", errors="replace")[:SCAN_LIMIT] if request.body is not None else None
    headers = {name: values[0] if len(values) == 1 else ", ".join(values) for name, values in request.headers.items()}
    if response is None:
        return Exchange(request.method.upper(), request.uri, headers, body, None, {}, b"",
                        error="no response (network error or timeout)", source="schemathesis", curl=curl)
    return Exchange(
        request.method.upper(), request.uri, headers, body, response.status_code,
        {name: ", ".join(values) for name, values in response.headers.items()},
        bytes(response.content[:SCAN_LIMIT]), elapsed_ms=response.elapsed * 1000,
        truncated=response.content_size > SCAN_LIMIT, source="schemathesis", curl=curl,
    )


def _fingerprint_text(body: bytes) -> str:
    return " ".join(body[:300].decode("utf-8", errors="replace").split())


def _looks_unknown(run: ContractRun, exchange: Exchange) -> bool:
    if run.unknown_route is None:
        return False
    status, text = run.unknown_route
    return exchange.status == status and _fingerprint_text(exchange.body) == text


@contextmanager
def _grader_workdir() -> Iterator[Path]:
    """Run with a working directory and a Hypothesis home that belong to the grader; restore both after.

    The chdir keeps anything written relative to the cwd out of the learner's checkout and the user's
    directory; Hypothesis needs its home set explicitly, because it fixed `cwd/.hypothesis` when it was
    imported. The home is kept between grades: its charmap cache saves seconds per run and holds no
    examples (the example database is off). One lock: cwd and the Hypothesis home are process-wide.
    """
    from hypothesis import configuration

    with _WORKDIR_LOCK:
        base = _private_dir()
        previous_home = getattr(configuration, "__hypothesis_home_directory", None)
        try:
            previous_cwd: str | None = os.getcwd()
        except OSError:  # the cwd was deleted under us
            previous_cwd = None
        configuration.set_hypothesis_home_dir(base / "hypothesis")
        os.chdir(base)
        try:
            yield base
        finally:
            if previous_cwd is not None:
                os.chdir(previous_cwd)
            configuration.set_hypothesis_home_dir(previous_home)


_WORKDIR_LOCK = threading.Lock()


def _private_dir() -> Path:
    """A directory only this user can write: reused when it is ours, a fresh one otherwise."""
    uid = os.getuid() if hasattr(os, "getuid") else None
    path = Path(tempfile.gettempdir()) / f"portfolio-grader-{uid if uid is not None else 'user'}"
    try:
        path.mkdir(mode=0o700, exist_ok=True)
        info = os.lstat(path)
        if not path.is_symlink() and path.is_dir() and (uid is None or info.st_uid == uid):
            return path
    except OSError:
        pass
    return Path(tempfile.mkdtemp(prefix="portfolio-grader-"))


def _curl_lines(code_sample: str) -> tuple[str, list[str]]:
    """Schemathesis' code sample split into its runnable lines (curl, `# as alice` comments) and its warnings."""
    lines, warnings = [], []
    for line in code_sample.splitlines():
        stripped = line.strip()
        if stripped.startswith("curl "):
            # -i shows the status line and headers, so the learner sees what the verdict saw
            lines.append("curl -sS -i " + stripped[len("curl "):] if " -i " not in stripped else stripped)
        elif stripped.startswith("#"):
            lines.append(stripped)
        elif stripped:  # "⚠️  Request body contains ...": the line cannot reproduce the request byte for byte
            warnings.append(stripped.lstrip("⚠\ufe0f ").strip())
    return "\n".join(lines), warnings


def _one_line(value: object, limit: int = 300) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ---------------------------------------------------------------- reading the spec


def spec_operations(spec: dict[str, Any]) -> list[str]:
    """Every operation of an OpenAPI document as Schemathesis labels it: "METHOD /path"."""
    labels = []
    for path, item in (spec.get("paths") or {}).items():
        if isinstance(item, dict):
            labels += [f"{method.upper()} {path}" for method in _HTTP_METHODS if isinstance(item.get(method), dict)]
    return labels


def without_operations(spec: dict[str, Any], labels: Iterable[str]) -> dict[str, Any]:
    """The document without the operations named "METHOD /path" (a shallow copy: the shared one is untouched)."""
    drop = set(labels)
    if not drop:
        return spec
    paths = {}
    for path, item in (spec.get("paths") or {}).items():
        if isinstance(item, dict):
            item = {k: v for k, v in item.items() if f"{k.upper()} {path}" not in drop}
            if not any(k in _HTTP_METHODS for k in item):
                continue
        paths[path] = item
    return {**spec, "paths": paths}


def secured_operations(spec: dict[str, Any]) -> set[str]:
    """Operations whose effective security requirement demands credentials (an empty `{}` makes it optional)."""
    default = spec.get("security")
    secured = set()
    for path, item in (spec.get("paths") or {}).items():
        if not isinstance(item, dict):
            continue
        for method in _HTTP_METHODS:
            operation = item.get(method)
            if not isinstance(operation, dict):
                continue
            requirements = operation.get("security", default)
            if requirements and all(isinstance(r, dict) and r for r in requirements):
                secured.add(f"{method.upper()} {path}")
    return secured


# ---------------------------------------------------------------- turning the run into verdicts


class _Judged(NamedTuple):
    kinds: tuple[str, ...]
    clean: str  # what a pass says was not found
    samples: tuple[str, ...]  # representative exchanges a pass shows


_CHECKS: dict[str, _Judged] = {
    "contract.no_server_errors": _Judged(("server_error",), "no 5xx", ("ok", "rejected")),
    "contract.response_schema": _Judged(("schema_violation",), "every response matched its documented schema",
                                        ("ok", "rejected")),
    "contract.status_codes": _Judged(("status_code_undocumented",), "every status code was documented",
                                     ("ok", "rejected")),
    "contract.content_types": _Judged(("content_type_mismatch",), "every Content-Type was the documented one",
                                      ("ok", "rejected")),
    "contract.input_validation": _Judged(("negative_data_accepted",), "every schema-violating request was rejected",
                                         ("rejected",)),
    "contract.stateful": _Judged(("use_after_free", "resource_unavailable"),
                                 "created resources were readable and deleted ones were gone", ("stateful",)),
    "contract.http_semantics": _Judged(
        ("positive_data_rejected", "required_header_ignored", "unsupported_method_allowed"),
        "valid requests were accepted, required headers enforced and undocumented methods refused",
        ("method", "ok")),
    "contract.auth_enforced": _Judged(("auth_missing", "bola_read"),
                                      "every secured operation refused requests without valid credentials",
                                      ("refused",)),
}


@check("contract.no_server_errors", area=AREA, title="No generated request makes the API answer 5xx", needs=NEEDS)
def no_server_errors(ctx: CheckContext) -> CheckOutcome:
    return _verdict(ctx, "contract.no_server_errors")


@check("contract.response_schema", area=AREA, title="Responses match their documented schemas", needs=NEEDS)
def response_schema(ctx: CheckContext) -> CheckOutcome:
    return _verdict(ctx, "contract.response_schema")


@check("contract.status_codes", area=AREA, title="Every status code returned is documented", needs=NEEDS)
def status_codes(ctx: CheckContext) -> CheckOutcome:
    return _verdict(ctx, "contract.status_codes")


@check("contract.content_types", area=AREA, title="Responses use their documented Content-Type", needs=NEEDS)
def content_types(ctx: CheckContext) -> CheckOutcome:
    return _verdict(ctx, "contract.content_types")


@check("contract.input_validation", area=AREA, title="Requests that violate the schema are rejected", needs=NEEDS)
def input_validation(ctx: CheckContext) -> CheckOutcome:
    return _verdict(ctx, "contract.input_validation")


@check("contract.stateful", area=AREA, title="Created resources can be read and deleted ones stay deleted",
       needs=NEEDS)
def stateful(ctx: CheckContext) -> CheckOutcome:
    run = contract_run(ctx)
    if run.fatal is None and run.exercised and not run.stateful_requests:
        if run.cut_by_budget:
            return _not_evaluated("contract.stateful", run, f"the run was stopped at its time budget "
                                  f"({run.budget:g} s) before it could chain requests")
        why = f" ({run.stateful_skip})" if run.stateful_skip else ""
        return _not_evaluated(
            "contract.stateful", run,
            "Schemathesis could not chain requests: it found no links between operations (such as a POST that "
            f"returns an id a GET /{{id}} accepts), or none of its chained requests got an answer{why}",
            "resources: [/books]   # a collection created with POST and read with GET /books/{id}")
    return _verdict(ctx, "contract.stateful")


@check("contract.http_semantics", area=AREA, title="Valid requests are accepted and HTTP method rules hold",
       needs=NEEDS)
def http_semantics(ctx: CheckContext) -> CheckOutcome:
    return _verdict(ctx, "contract.http_semantics")


@check("contract.auth_enforced", area=AREA, title="Secured operations refuse requests without valid credentials",
       needs=NEEDS)
def auth_enforced(ctx: CheckContext) -> CheckOutcome:
    spec = ctx.api.spec or {}
    if not secured_operations(spec):
        return _not_evaluated("contract.auth_enforced", None,
                              "the spec declares no security (no operation requires credentials), so there is no "
                              "authentication to test")
    run = contract_run(ctx)
    if run.fatal is None and run.exercised and not set(run.exercised) & run.secured:
        return _not_evaluated("contract.auth_enforced", run,
                              f"none of the {len(run.secured)} secured operations could be exercised")
    note = (f"object-level authorization was checked with two users ({' and '.join(PEERS)}): each one's reads "
            "replayed as the other" if run.peers >= 2 else
            "object-level authorization (BOLA) needs two user identities, which this run did not have")
    return _verdict(ctx, "contract.auth_enforced", among=run.secured, note=note)


def _verdict(ctx: CheckContext, check_id: str, among: set[str] | None = None, note: str | None = None) -> CheckOutcome:
    run = contract_run(ctx)
    judged = _CHECKS[check_id]
    if run.fatal is not None:
        return _not_evaluated(check_id, run, f"the contract run could not start: {run.fatal}")
    exercised = [op for op in run.exercised if among is None or op in among]
    if not exercised:
        return _not_evaluated(check_id, run, _why_nothing_exercised(run))

    groups, set_aside = _groups_for(run, judged.kinds, set(exercised))
    failing_ops = {group.operation for group in groups}
    requests = sum(run.answered[op] for op in exercised)
    scope = (f"{requests} generated request{'s' if requests != 1 else ''} over {len(exercised)} "
             f"{'secured ' if among is not None else ''}operation{'s' if len(exercised) != 1 else ''}")
    extras = [text for text in (set_aside, note, _coverage_note(run)) if text]
    tail = (" " + " ".join(f"{text[0].upper()}{text[1:]}." for text in extras) if extras else "") + f" ({run.stamp})"
    if not groups:
        evidence = [exchange.evidence(note=f"representative exchange ({run.stamp})", secrets=ctx.prober.secrets)
                    for tag in judged.samples for _, exchange in run.samples.get(tag, ())][:2]
        return CheckOutcome(check=check_id, area=AREA, status="pass", summary=f"{scope}: {judged.clean}.{tail}",
                            evidence=evidence, score=1.0)

    findings = [_finding(ctx, check_id, group, run) for group in groups]
    titles = sorted({KINDS[group.kind].title for group in groups})
    summary = (f"{scope}: {len(failing_ops)} of {len(exercised)} operations fail — {'; '.join(titles)} "
               f"({len(findings)} finding{'s' if len(findings) != 1 else ''}).{tail}")
    score = round((len(exercised) - len(failing_ops & set(exercised))) / len(exercised), 3)
    return CheckOutcome(check=check_id, area=AREA, status="fail", summary=summary, findings=findings, score=score)


def _groups_for(run: ContractRun, kinds: tuple[str, ...], exercised: set[str]) -> tuple[list[FailureGroup], str | None]:
    """The failure groups a check reports, and what it set aside on purpose (said in the summary)."""
    chosen, anonymous, server = [], [], 0
    for (kind, operation, status), group in sorted(run.groups.items(), key=lambda item: (item[0][1], item[0][0],
                                                                                         item[0][2] or 0)):
        if kind not in kinds or operation not in exercised:
            continue
        if group.targets <= set(run.unreached):
            continue  # failed only on a documented path the API does not have: contract.routes_match's finding
        if kind == "status_code_undocumented" and status is not None:
            if status >= 500:  # the no_server_errors check owns 5xx; one bug, one place
                server += 1
                continue
            if status in (401, 403) and operation in run.secured:
                # the run sends no valid credentials, so refusing is the right answer on a secured operation
                anonymous.append(f"{status} on {operation}")
                continue
        chosen.append(group)
    notes = []
    notes += [f"set aside: {count} request(s) {why}" for (kind, why), count in sorted(run.set_aside.items())
              if kind in kinds]
    if anonymous:
        notes.append("set aside: " + ", ".join(anonymous) + ", the correct refusal of requests without valid "
                     "credentials, not counted; list it with responses={401: ...} for a complete contract")
    if server:
        notes.append(f"undocumented 5xx answers are reported by contract.no_server_errors, not here ({server})")
    return chosen, "; ".join(notes) or None


_PAGING_PARAMETERS = frozenset(n.lower() for n in (*SIZE_NAMES, *OFFSET_NAMES, *PAGE_NAMES, *CURSOR_NAMES))


def _excused(code: str, case: Any, exchange: Exchange, ctx: CheckContext) -> str | None:
    """Why a Schemathesis failure is not the contract break its kind names (None: it is one)."""
    flow = ctx.api.auth
    if (code == "ST202" and flow is not None and flow.login is not None and not flow.issues_keys
            and case.operation.label == flow.login.label and exchange.status in (400, 401, 403)):
        return ("to the login with schema-valid credentials of no account were refused: a login must refuse "
                "them (auth.user_enumeration and the login rate limit judge how)")
    if code == "ST202" and _carries_nul(exchange):
        return ("with text holding a NUL character (\\u0000) were refused: refusing NUL is a deliberate safety rule "
                "(Django REST framework's CharField, PostgreSQL text), not a valid request rejected")
    if code == "ST201" and _only_paging_parameters(case):
        return ("with an invalid paging value were answered with the default page (lenient parsing, as Django REST "
                "framework's paginators do): the pagination checks judge paging values")
    return None


def _carries_nul(exchange: Exchange) -> bool:
    body = exchange.request_body or ""
    return "\\u0000" in body or "\x00" in body or "%00" in exchange.url


def _only_paging_parameters(case: Any) -> bool:
    """Did the negative case break nothing but query parameters that page a list (page, page_size, limit ...)?"""
    from schemathesis.core.parameters import ParameterLocation

    meta = getattr(case, "meta", None)
    if meta is None:
        return False
    data = meta.phase.data
    named = [(m.parameter_location, m.parameter) for m in getattr(data, "mutations", ()) if m.parameter]
    if getattr(data, "parameter", None):
        named.append((data.parameter_location, data.parameter))
    if not named:  # the whole query was negated at once: every parameter sent counts
        negative = {location for location, info in meta.components.items() if info.mode.is_negative}
        if negative != {ParameterLocation.QUERY}:
            return False
        named = [(ParameterLocation.QUERY, name) for name in (case.query or {})]
    return bool(named) and all(location == ParameterLocation.QUERY and str(name).lower() in _PAGING_PARAMETERS
                               for location, name in named)


def _coverage_note(run: ContractRun) -> str | None:
    notes = []
    untested = [op for op in run.operations if not run.answered[op]]
    if run.unreached:
        notes.append(f"{len(run.unreached)} operation(s) answered every request like a path the API does not have "
                     f"and were left out: {', '.join(run.unreached[:5])}")
    if untested:
        notes.append(f"{len(untested)} operation(s) were not tested (no request to them got an answer): "
                     f"{', '.join(untested[:5])}")
    if run.cut_by_budget:
        notes.append(f"the run was stopped at its time budget ({run.budget:g} s), so later phases were cut short")
    if run.issues:
        notes.append(f"{sum(run.issues.values())} Schemathesis error(s), first: {_issue_text(next(iter(run.issues)))}")
    return "; ".join(notes) or None


def _why_nothing_exercised(run: ContractRun) -> str:
    causes = []
    if run.unreached:
        status, text = run.unknown_route or (None, "")
        causes.append(f"every answer looked exactly like the answer to a path the API does not have ({status} "
                      f"{text[:80]!r}), so the documented paths do not match the server's routes")
    if run.issues:
        causes.append("errors: " + "; ".join(f"{_issue_text(issue)} (x{count})"
                                             for issue, count in run.issues.most_common(3)))
    if not causes:
        causes.append("no request got an answer")
    return f"Schemathesis could not exercise any of the {len(run.operations)} operations: {'; '.join(causes)}"


def _issue_text(issue: tuple[str, str, str]) -> str:
    where, title, message = issue
    return f"{where}: {title} — {message}" if message else f"{where}: {title}"


def _not_evaluated(check_id: str, run: ContractRun | None, reason: str,
                   manifest_hint: str | None = None) -> CheckOutcome:
    title = REGISTRY[check_id].title if check_id in REGISTRY else check_id
    if run is not None and run.fatal is None and run.stamp not in reason:
        reason = f"{reason} ({run.stamp})"
    return CheckOutcome(check=check_id, area=AREA, status="not_evaluated", summary=title, reason=reason,
                        manifest_hint=manifest_hint, score=0.0)


def _finding(ctx: CheckContext, check_id: str, group: FailureGroup, run: ContractRun) -> Finding:
    kind = KINDS[group.kind]
    best = group.best
    assert best is not None
    sent = best.exchange
    count = len(group.requests)
    what = f"{kind.title} on {group.operation}"
    if group.status is not None:
        what = f"{group.operation} answered {group.status}, which its documented responses do not list"
    body = _excerpt(sent.request_body)
    answer = _excerpt(sent.text) or "(empty body)"
    message = (
        f"{what}: seen in {count} generated request{'s' if count != 1 else ''}. "
        f"Sent {sent.method} {sent.url}{' with body ' + body if body else ''}; "
        f"got {sent.status if sent.status is not None else 'no answer'}"
        f"{' (' + sent.content_type + ')' if sent.content_type else ''}: {answer}. "
        f"Schemathesis ({best.code}): {_explanation(best)}. {kind.why}"
    )
    note = f"{best.code} {best.title} ({run.stamp})"
    if best.chain:
        note += "; run the curl lines in order on a fresh server: the ids come from the earlier answers"
    if best.curl_warnings:
        note += "; " + " ".join(best.curl_warnings)
    evidence: list[Evidence] = [replace(sent, curl=best.curl or sent.curl).evidence(note=note,
                                                                                   secrets=ctx.prober.secrets)]
    for step, exchange in enumerate(best.chain[: MAX_EVIDENCE - 1], start=1):
        note = f"step {step} of {len(best.chain) + 1} (the failing request is the last)"
        evidence.append(exchange.evidence(note=note, secrets=ctx.prober.secrets))
    return ctx.finding(check_id, group.kind, kind.severity, message, evidence=evidence, hint=kind.hint,
                       operation=group.operation)


def _explanation(occurrence: Occurrence) -> str:
    """The prose of Schemathesis' failure message (its indented schema and value dumps left out), or its title."""
    lines = []
    for line in occurrence.message.splitlines():
        if not line.strip() or line[:1].isspace() or line.strip() in ("Value:", "Schema:"):
            continue
        lines.append(line.strip().rstrip(":"))
    return _one_line(" / ".join(lines[:4]) if lines else occurrence.title, 400).rstrip(".")


def _excerpt(text: str | None, limit: int = 160) -> str:
    """A one-line excerpt of a body for a message (the Evidence keeps the body itself)."""
    return _one_line(decode_body(text, limit) or "", limit + 40)
