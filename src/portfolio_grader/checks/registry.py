"""The check registry: a check is one function registered with @check; the runner knows none of them.

A check declares what it needs from the grade (a running service, a spec, a CRUD resource, the repo).
When a need is missing the runner reports the check `not_evaluated` with the reason and the manifest
lines that would fix it, and never calls the function.
"""

from __future__ import annotations

import copy
import itertools
import contextvars
import secrets
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from ..models import ApiModel, CheckOutcome, Evidence, Finding, RepoFacts, RunningService, Severity, Workspace
from ..authflow import calibrate_carrier, has_password
from ..discover import PLUMBING
from ..identities import Identity, IdentityError, create_identity, login, token_from
from ..probe import Prober
from ..deadlines import Deadlines, binding, run_with_deadline, seconds_text


@dataclass(frozen=True)
class Settings:
    """Knobs of the checks; bounded by default so a grade always ends."""

    seed: int = 20261121
    max_examples: int = 15  # Schemathesis examples per operation
    contract_time_budget: float = 60.0  # seconds for the whole Schemathesis run
    request_timeout: float = 10.0
    deadlines: Deadlines = field(default_factory=Deadlines.from_env)  # every stage's and check family's
    load_duration: float = 10.0  # seconds of the bounded load probe (advanced tier)
    load_concurrency: int = 10  # parallel clients of the load probe
    load_max_requests: int = 5000  # the load probe stops at this many requests, whatever the time


def ok_status(status: int | None) -> bool:
    return status is not None and 200 <= status < 300


@dataclass
class CheckContext:
    workspace: Workspace
    facts: RepoFacts
    service: RunningService
    api: ApiModel
    prober: Prober | None
    settings: Settings = field(default_factory=Settings)
    alive: Callable[[], bool] = lambda: True  # is the API still running (crash detection)
    current: CheckSpec | None = None  # the check being run, set by the runner
    check_params: dict[str, dict[str, Any]] = field(default_factory=dict)  # rubric params by check id
    logs: Callable[[], str] | None = None  # the API's own log output, when the runtime offers it
    run_tag: str = field(default_factory=lambda: secrets.token_hex(2))  # keeps test users unique per grade
    _memo: dict[str, Any] = field(default_factory=dict)
    _finding_counter: int = 0

    def params(self) -> dict[str, Any]:
        """The rubric's params for the check being run (thresholds live in the rubric, not in code)."""
        return dict(self.check_params.get(self.current.id, {})) if self.current is not None else {}

    def memo(self, key: str, compute: Callable[[], Any]) -> Any:
        """Share one expensive computation (the Schemathesis run) between the checks that read it, computed
        once even when checks of the side lane ask for it at the same time."""
        if key not in self._memo:
            with self._lock(key):
                if key not in self._memo:
                    self._memo[key] = compute()
        return self._memo[key]

    def _lock(self, key: str) -> threading.RLock:
        locks: dict[str, threading.RLock] = self._memo.setdefault("_locks", {})  # setdefault is atomic
        return locks.setdefault(key, threading.RLock())

    def identities(self, count: int) -> list[Identity]:
        """The first `count` test users, registered and logged in once per grade (IdentityError if impossible)."""
        with self._lock("identities"):  # both lanes ask: each user is made once, with its own label
            return self._identities(count)

    def _identities(self, count: int) -> list[Identity]:
        users: list[Identity] = self._memo.setdefault("identities", [])
        failure = self._memo.get("identities_error")
        if failure is not None and len(users) < count:
            raise failure
        while len(users) < count:
            try:
                users.append(create_identity(self.prober, self.api.auth, "AB"[len(users)] if len(users) < 2 else
                                             f"U{len(users)}", self.run_tag))
            except IdentityError as exc:
                self._memo["identities_error"] = exc
                raise
            if len(users) == 1 and users[0].token:  # the header the token travels in, when the spec is silent
                flow = calibrate_carrier(self.prober, self.api.auth, self.api.spec or {}, self.api.operations,
                                         users[0].token)
                if flow is not self.api.auth:
                    self.api = self.api.model_copy(update={"auth": flow})
        self._revive_lost(users, count)
        return users[:count]

    def _control(self, user: Identity) -> int | None:
        """The status of the user's own profile (`GET /users/me`) read with its credentials; None when the API
        has no profile operation to read."""
        me = self.api.auth.me if self.api.auth else None
        if me is None or "{" in me.path or self.prober is None:
            return None
        answer = self.prober.request("GET", me.path, headers=user.headers(self.api.auth))
        answer.source = "control"
        return answer.status

    def _revive_lost(self, users: list[Identity], count: int) -> None:
        """A test user the API lost mid-grade (a reset wiped it, a token expired or was revoked) is logged in again
        or made anew before the next check uses it, so that check judges the API rather than a dead user. Checked
        once per check and user, and only where the user's own profile read worked when the user was made."""
        check = self.current.id if self.current else None
        checked: set = self._memo.setdefault("identities_checked", set())
        baseline: dict = self._memo.setdefault("identities_baseline", {})
        for index, user in enumerate(users[:count]):
            if user.label not in baseline:
                baseline[user.label] = self._control(user)
                checked.add((check, user.label))
            if check is None or (check, user.label) in checked or not (200 <= (baseline[user.label] or 0) < 300):
                continue
            checked.add((check, user.label))
            status = self._control(user)
            if status is None or 200 <= status < 300:
                continue
            answer = None if self.api.auth.issues_keys else login(self.prober, self.api.auth, user.login_value,
                                                                   user.password)
            token, cookie = token_from(answer, self.api.auth) if answer and ok_status(answer.status) else (None, None)
            if token is not None or cookie is not None:
                users[index] = replace(user, token=token, cookie=cookie)
                how = "logged it in again (its token had stopped working)"
            else:
                try:
                    users[index] = create_identity(self.prober, self.api.auth, user.label,
                                                   self.run_tag + secrets.token_hex(1))
                except IdentityError:
                    continue  # the checks' own controls then say why nothing could be judged
                how = f"made a new one ({users[index].login_value}): the API no longer knew the old one"
            self._memo.setdefault("identity_notes", []).append(
                f"test user {user.label} stopped working before {check} (its profile {self.api.auth.me.label} "
                f"answered {status}); the grader {how}")

    def identity_notes(self) -> list[str]:
        """What happened to the test users during the grade (lost and revived), for the scorecard's notes."""
        return list(self._memo.get("identity_notes", []))

    def admin_identity(self) -> Identity | None:
        """The manifest's seeded admin, logged in once per grade (None when not named or the login fails)."""
        named = self.facts.manifest.auth.admin if self.facts.manifest and self.facts.manifest.auth else None
        if named is None or self.api.auth is None or self.prober is None:
            return None

        def log_in() -> Identity | None:
            self.prober.secrets = tuple({*self.prober.secrets, named.password})  # never shown in evidence
            answer = login(self.prober, self.api.auth, named.login, named.password)
            token, cookie = token_from(answer, self.api.auth) if answer.status and answer.status < 300 else (None, None)
            if token is None and cookie is None:
                return None
            return Identity(label="admin", login_value=named.login, password=named.password, token=token,
                            cookie=cookie, exchanges=[answer])

        return self.memo("admin_identity", log_in)

    def keep_disposable(self, identity: Identity) -> None:
        """A user a probe made for itself (the mass-assignment sign-up): deleted with the test users."""
        self._memo.setdefault("disposable_identities", []).append(identity)

    def known_identities(self) -> list[Identity]:
        """Every user the grade made so far: the test users, then the disposable ones."""
        return self._memo.get("identities", []) + self._memo.get("disposable_identities", [])

    def remove_test_users(self) -> str | None:
        """Delete the test users where the API lets a user delete their own account; says what happened."""
        users = self.known_identities()
        flow = self.api.auth
        if not users or flow is None or self.prober is None:
            return None
        delete_me = next((op for op in self.api.operations
                          if op.method == "DELETE" and flow.me is not None and op.path == flow.me.path), None)
        if delete_me is None:
            return (f"the {len(users)} test users ({', '.join(u.login_value for u in users)}) remain in the API: "
                    "it offers no way to delete one's own account")
        removed = sum(self.prober.request("DELETE", delete_me.path, headers=u.headers(flow)).status in (200, 202, 204)
                      for u in users)
        return f"{removed} of {len(users)} test users deleted with {delete_me.label}"

    def disposable_identity(self, label: str) -> Identity:
        """A fresh user a probe may harm (delete, rename, promote), deleted with the test users (IdentityError
        when none can be made). User A is made first: it finds the header the token travels in."""
        self.identities(1)
        identity = create_identity(self.prober, self.api.auth, label, self.run_tag)
        self.keep_disposable(identity)
        return identity

    def fuzz_headers(self) -> dict[str, str]:
        """Credentials for the fuzzer: a disposable user of its own, so that whatever its generated requests
        change or delete (`DELETE /users/{username}`) is never user A or B. User A's when none can be made."""
        peers = self.fuzz_peers()
        return peers[0] if peers else {}

    def fuzz_peers(self) -> list[dict[str, str]]:
        """The fuzzer's identities: two disposable users (F, G) when both can be made, so Schemathesis can see
        one read the other's objects; one (F, else user A) when not; none without a login."""
        def make() -> list[dict[str, str]]:
            if self.api.auth is None or self.prober is None:
                return []
            peers: list[dict[str, str]] = []
            for label in ("F", "G"):
                try:
                    peers.append(self.disposable_identity(label).headers(self.api.auth))
                except IdentityError:
                    break
            return peers or [h for h in (self.auth_headers(),) if h]
        return self.memo("fuzz_peers", make)

    def auth_headers(self) -> dict[str, str]:
        """User A's credentials when the API has a login and a user could be made, else none."""
        if self.api.auth is None or self.prober is None:
            return {}
        try:
            return self.identities(1)[0].headers(self.api.auth)
        except IdentityError:
            return {}

    def finding(self, check: str, kind: str, severity: Severity, message: str, **extra: Any) -> Finding:
        # The counter lives in the shared memo: each check runs on its own copy of the context.
        number = next(self._memo.setdefault("_finding_ids", itertools.count(self._finding_counter + 1)))
        return Finding(id=f"F{number:03d}", check=check, kind=kind, severity=severity,
                       message=message, **extra)

    def fail(self, kind: str, severity: Severity, message: str, **extra: Any) -> Finding:
        """A finding of the check being run."""
        assert self.current is not None, "fail() is for use inside a check"
        return self.finding(self.current.id, kind, severity, message, **extra)

    def verdict(self, summary: str, findings: list[Finding] = (), evidence: list[Evidence] = (),
                score: float | None = None, warn_only: bool = False) -> CheckOutcome:
        """The outcome of the check being run: it fails when it has findings, else it passes.
        A `warn_only` check reports its findings as warnings. A critical finding (another user's data, a
        forgeable token, a build that fails) leaves the check no partial credit: one such hole is the hole."""
        assert self.current is not None, "verdict() is for use inside a check"
        findings = list(findings)
        if score is None or any(f.severity == "critical" for f in findings):
            score = 0.0 if findings and not warn_only else 1.0
        status = ("warn" if warn_only else "fail") if findings else "pass"
        return CheckOutcome(check=self.current.id, area=self.current.area, status=status,
                            summary=summary, findings=findings, evidence=list(evidence)[:5],
                            score=max(0.0, min(1.0, score)))

    def resources_hint(self, why: str) -> str:
        return resources_hint(self.api, why)

    def skip(self, reason: str, manifest_hint: str | None = None) -> CheckOutcome:
        """The check being run cannot judge this submission: not evaluated, with the reason."""
        assert self.current is not None, "skip() is for use inside a check"
        return not_evaluated(self.current, reason, manifest_hint)

    def not_applicable(self, reason: str, manifest_hint: str | None = None) -> CheckOutcome:
        """The check looked and the submission offers nothing it examines (no paginated list, no short links).
        Scoring drops a criterion made only of such outcomes when the rubric says it applies `when_offered`;
        elsewhere it counts as not evaluated."""
        assert self.current is not None, "not_applicable() is for use inside a check"
        return CheckOutcome(check=self.current.id, area=self.current.area, status="not_applicable",
                            summary=self.current.title, reason=reason, manifest_hint=manifest_hint, score=0.0)


Need = str  # "service", "spec", "resource", "repo", "auth", "user", "two_users"

_AUTH_HINT = ("auth:\n  register: POST /api/v1/accounts   # how a new user signs up\n"
              "  login: POST /api/v1/sessions      # where a user logs in\n"
              "  token: access_token              # where the token is in the login response")


def _users(count: int):
    def holds(ctx: CheckContext) -> bool:
        if not (ctx.service.up and ctx.prober is not None and ctx.api.auth is not None):
            return False
        try:
            ctx.identities(count)
            return True
        except IdentityError:
            return False

    def reason(ctx: CheckContext) -> str:
        if not (ctx.service.up and ctx.prober is not None):
            return "the API is not running"
        if ctx.api.auth is None:
            return f"no way to log in was found ({ctx.api.auth_problem or 'no spec'})"
        return f"test users could not be created: {ctx._memo.get('identities_error')}"

    return holds, reason, _AUTH_HINT

_NEED_REASONS: dict[Need, tuple[Callable[[CheckContext], bool], Callable[[CheckContext], str], str | None]] = {
    "repo": (
        lambda c: c.facts.root is not None,
        lambda c: "there is no repository to read (a live URL was graded)",
        None,
    ),
    "service": (
        lambda c: c.service.up and c.prober is not None,
        lambda c: f"the API is not running ({c.service.status.replace('_', ' ')}: {c.service.detail or 'see the runtime log'})",
        "port: 8000          # the port the API listens on inside the container\nhealth: /healthz     # a path that answers when the API is ready",
    ),
    "spec": (
        lambda c: c.api.spec is not None,
        lambda c: f"no OpenAPI document could be loaded ({c.api.spec_problem or 'none found'})",
        "spec: /openapi.json   # where the API serves its OpenAPI document, or a file in the repo",
    ),
    "auth": (
        lambda c: c.api.auth is not None,
        lambda c: f"no way to log in was found ({c.api.auth_problem or 'no spec'})",
        _AUTH_HINT,
    ),
    "user": _users(1),
    "two_users": _users(2),
    "resource": (
        lambda c: bool(c.api.resources),
        lambda c: "no resource with create/read-by-id operations was found in the spec",
        lambda c: resources_hint(c.api, "collections a client can POST to and GET /{id} from"),
    ),
}


@dataclass(frozen=True)
class CheckSpec:
    id: str
    area: str
    title: str
    needs: tuple[Need, ...]
    func: Callable[[CheckContext], CheckOutcome]
    order: int = 0  # checks that read what other checks recorded run later
    judges_refusals: bool = False  # its pass means "the attack was refused": it must show a control that worked
    waits: str | None = None  # what it deliberately waits for; such a check runs in the side lane
    params: tuple[tuple[str, type], ...] = ()  # the rubric params it reads, and their types (checked at load)


REGISTRY: dict[str, CheckSpec] = {}

# Checks from this order on flood the API (bursts of failed logins and requests, after which a rate limiter may
# refuse every client for a while) or judge the whole grade (the API stayed up): the side lane ends before them.
SIDE_LANE_ENDS_AT = 150


def check(id: str, *, area: str, title: str, needs: tuple[Need, ...] = (), order: int = 0,
          judges_refusals: bool = False, waits: str | None = None, params: dict[str, type] | None = None):
    """Register a check. The function receives a CheckContext and returns its CheckOutcome. A check whose pass
    means an attack was refused says `judges_refusals=True`: a test holds each to a control in its evidence.
    A check that mostly waits (for a webhook retry, a background job's effect) names what it waits for in `waits`:
    it then runs in the side lane, beside the other checks, and must not be disturbed by their traffic (it judges
    only objects and events of its own) nor disturb it (a few requests, then waiting). `params` names the rubric
    params the check reads ({"deadline_s": float}): a rubric giving it another, or another type, does not load."""

    def register(func: Callable[[CheckContext], CheckOutcome]) -> Callable[[CheckContext], CheckOutcome]:
        if id in REGISTRY and REGISTRY[id].func.__qualname__ != func.__qualname__:
            raise ValueError(f"check {id!r} is registered twice")
        unknown = set(needs) - set(_NEED_REASONS)
        if unknown:
            raise ValueError(f"check {id!r} needs unknown things: {sorted(unknown)}")
        if waits is not None and order >= SIDE_LANE_ENDS_AT:
            raise ValueError(f"check {id!r} waits, so it runs in the side lane, which ends before order "
                             f"{SIDE_LANE_ENDS_AT}")
        REGISTRY[id] = CheckSpec(id, area, title, tuple(needs), func, order, judges_refusals, waits,
                                 tuple((params or {}).items()))
        return func

    return register


def resources_hint(api: ApiModel, why: str) -> str:
    """The manifest's `resources:` line for this API: its own collections (those a client POSTs to), so that the
    hint names real paths (`/tarefa/criar`), not an example."""
    collections = [op.path for op in api.operations if op.method == "POST" and "{" not in op.path
                   and not PLUMBING.search(op.path) and not has_password(op)][:2]
    return f"resources: [{', '.join(collections or ['/api/v1/tasks'])}]   # {why}"


def not_evaluated(spec: CheckSpec, reason: str, manifest_hint: str | None = None) -> CheckOutcome:
    return CheckOutcome(check=spec.id, area=spec.area, status="not_evaluated", summary=spec.title,
                        reason=reason, manifest_hint=manifest_hint, score=0.0)


def run_check(spec: CheckSpec, ctx: CheckContext) -> CheckOutcome:
    for need in spec.needs:
        holds, reason, hint = _NEED_REASONS[need]
        if not holds(ctx):
            return not_evaluated(spec, reason(ctx), hint(ctx) if callable(hint) else hint)
    ctx.current = spec
    try:
        return spec.func(ctx)
    except Exception as exc:  # a grader bug must not cost the learner the rest of the grade
        where = traceback.extract_tb(exc.__traceback__)[-1]
        return not_evaluated(spec, f"the grader failed while running this check ({type(exc).__name__}: {exc} "
                                   f"at {where.filename.rsplit('/', 1)[-1]}:{where.lineno}); please report it")
    finally:
        ctx.current = None


def run_checks(ids: list[str], ctx: CheckContext,
               on_check: Callable[[CheckSpec, float], None] | None = None) -> list[CheckOutcome]:
    """Run the named checks, ordered by `order` then as named; unknown ids are reported, not skipped.
    `on_check(spec, seconds)` is told of each check before it runs, with what is left of its family's deadline.

    Checks that deliberately wait (`waits`) run in a side lane, one after another in a thread of their own,
    while the others go on; the side lane has ended before the first check of order SIDE_LANE_ENDS_AT.
    Findings are numbered as if every check had run in order, so the numbers do not depend on the lanes' timing.
    """
    import_builtin_checks()
    from ..bodycap import install as bound_schemathesis_bodies

    bound_schemathesis_bodies()  # 50 MB or dripping bodies must not hold the grader's memory or time
    outcomes: dict[str, CheckOutcome] = {}
    known = sorted((REGISTRY[i] for i in dict.fromkeys(ids) if i in REGISTRY), key=lambda s: s.order)
    spent: dict[str, float] = {}  # seconds used by each check family (area) so far

    def run(spec: CheckSpec, alongside: bool = False) -> None:
        if on_check is not None:
            on_check(spec, ctx.settings.deadlines.family - spent.get(spec.area, 0.0))
        outcome = run_check_within_family(spec, ctx, spent)
        outcomes[spec.id] = outcome.model_copy(update={"alongside": True}) if alongside else outcome

    side = [spec for spec in known if spec.waits]
    lane = _side_lane(lambda: [run(spec, alongside=True) for spec in side]) if side else None
    for spec in known:
        if spec.waits:
            continue
        if lane is not None and spec.order >= SIDE_LANE_ENDS_AT:
            lane.join()
        run(spec)
    if lane is not None:
        lane.join()
    for missing in (i for i in dict.fromkeys(ids) if i not in REGISTRY):
        outcomes[missing] = CheckOutcome(check=missing, area="unknown", status="not_evaluated", summary=missing,
                                         reason=f"the rubric names a check {missing!r} this grader does not have",
                                         score=0.0)
    _number_findings_in_order(outcomes, [s.id for s in known], ctx._finding_counter)
    return [outcomes[i] for i in dict.fromkeys(ids)]


def _side_lane(work: Callable[[], Any]) -> threading.Thread:
    """Start `work` in a thread that keeps the grade's deadline (its context) and dies with the grader."""
    context = contextvars.copy_context()
    lane = threading.Thread(target=context.run, args=(work,), name="pg-side-lane", daemon=True)
    lane.start()
    return lane


def _number_findings_in_order(outcomes: dict[str, CheckOutcome], order: list[str], counter: int) -> None:
    """F001, F002, … in check order: the lanes interleave the order findings were made in. A finding two
    checks share keeps one number."""
    numbers = itertools.count(counter + 1)
    renamed: dict[str, str] = {}
    for check_id in order:
        outcome = outcomes[check_id]
        findings = [f.model_copy(update={"id": renamed.setdefault(f.id, f"F{next(numbers):03d}")})
                    for f in outcome.findings]
        outcomes[check_id] = outcome.model_copy(update={"findings": findings})


_SPENT = threading.Lock()


def run_check_within_family(spec: CheckSpec, ctx: CheckContext, spent: dict[str, float]) -> CheckOutcome:
    """Run one check under what is left of its family's deadline (and the grade's, when one is in force).

    The check runs in a worker thread on its own copy of the context; the Prober refuses requests past
    the deadline, so a check against a slow API winds down by itself. A check that overran is reported
    not evaluated: a verdict built from cut-off requests would not be fair either way.
    """
    limit = ctx.settings.deadlines.family
    family = f"the '{spec.area}' check family"
    left = limit - spent.get(spec.area, 0.0)
    grade = binding()  # the grade's deadline, set by the pipeline
    if grade is not None and grade.expired:
        return not_evaluated(spec, f"not run: {grade.label} had passed")
    if left <= 0:
        return not_evaluated(spec, f"not run: {family} ran out of its {seconds_text(limit)} deadline")
    seconds, label = left, f"{family}'s {seconds_text(limit)} deadline"
    if grade is not None and grade.remaining() < left:
        seconds, label = grade.remaining(), grade.label
    worker = copy.copy(ctx)  # `current` is per check; memo, prober and the finding counter are shared
    # Schemathesis keeps its own clock: it must stop before the family's deadline does.
    worker.settings = replace(ctx.settings, contract_time_budget=max(1.0, min(ctx.settings.contract_time_budget,
                                                                              seconds - 2.0)))
    finished = run_with_deadline(lambda: run_check(spec, worker), seconds, label)
    with _SPENT:  # the side lane adds to the same families' time
        spent[spec.area] = spent.get(spec.area, 0.0) + finished.seconds
    outcome = finished.value
    if finished.overran:
        outcome = not_evaluated(spec, f"ran out of {label}: the API answered too slowly (or not at all) for this "
                                      "check to finish")
    return outcome.model_copy(update={"seconds": round(finished.seconds, 3)})  # where a grade's time went


def import_builtin_checks() -> None:
    """Importing the check modules registers their checks."""
    from . import accounts, contract, crud, errors, http, injection, jwt, login, ownership, pagination, ratelimit  # noqa: F401
    from . import command_injection, redos, repo, runtime, spec, ssrf  # noqa: F401
    from . import idempotency, load, observability, redirects, tenancy, usage, webhooks  # noqa: F401  (advanced, capstone)
