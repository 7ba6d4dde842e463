"""grade(request) -> Scorecard: fetch -> inspect -> runtime -> discover -> checks -> scoring, timed per stage.

Whatever happens inside a stage, the stages after it still run with what is known, and everything the
grade created (workspace copy, containers, images) is removed on the way out.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

from . import __version__
from .checks import CheckContext, Settings, run_checks
from .deadlines import GradeClock, run_with_deadline
from .discover import discover
from .fetch import discard, fetch, safe_name
from .identities import IdentityError
from .inspect import inspect_repo
from .models import (ApiModel, LadderStep, RepoFacts, RubricRef, RunningService, Scorecard, Source, StageResult,
                     StageStatus, Workspace)
from .observations import notes as observation_notes
from .probe import Prober
from .progress import Progress
from .rubric import Rubric, load_rubric, tiers
from .runtime import ServiceHandle
from .runtime.sandbox import SandboxConfig
from .runtime.sandbox import mentions_read_only as sandbox_mentions_read_only
from .scoring import ladder, score


class GradeError(Exception):
    """Nothing could be graded (bad arguments, unreachable repo, no Docker engine): exit 2, no scorecard."""


@dataclass(frozen=True)
class GradeRequest:
    source: str | None = None  # git URL or local folder
    url: str | None = None  # a live deployment: graded without a build
    ref: str | None = None
    tier: str | None = None  # rubric name or path; default: the manifest's tier, else beginner
    settings: Settings = field(default_factory=Settings)
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:10])
    sandbox: SandboxConfig = field(default_factory=SandboxConfig.from_env)  # container limits, read-only, egress


class _Stages:
    def __init__(self, progress: Progress) -> None:
        self.results: list[StageResult] = []
        self.notes: list[str] = []
        self.progress = progress
        self.sent_held_out: set[str] = set()  # held-out operations sent once anyway (an init that makes the schema)

    def begin(self, name: str, deadline: float | None = None) -> float:
        """A stage starts (shown with its deadline, when known); `record` ends it. Returns its start time."""
        self.progress.stage_started(name, deadline)
        return time.monotonic()

    @contextmanager
    def __call__(self, name: str, deadline: float | None = None) -> Iterator[None]:
        started = self.begin(name, deadline)
        self._marked: tuple[StageStatus, str] | None = None
        try:
            yield
        except GradeError:
            self.record(name, started, "failed")
            raise
        self.record(name, started, *(self._marked or ("ok",)))

    def mark(self, status: StageStatus, detail: str = "") -> None:
        """The stage being run ends `failed` or `timeout` (with what happened) rather than `ok`."""
        self._marked = (status, detail)

    def record(self, name: str, started: float, status: StageStatus = "ok", detail: str = "") -> None:
        self.results.append(StageResult(name=name, status=status, seconds=round(time.monotonic() - started, 2),
                                        detail=detail))
        self.progress.stage_ended(name, status, self.results[-1].seconds, detail)


def grade(request: GradeRequest, progress: Progress | None = None) -> Scorecard:
    """`progress` is told each stage's start and end and each check's start (default: nothing is shown)."""
    from .fetch import FetchError, FetchLimit
    from .rubric import RubricError
    from .runtime import RuntimeUnavailable, start

    if not request.source and not request.url:
        raise GradeError("nothing to grade: give a repository URL, a folder, or --url")
    clock = GradeClock(request.settings.deadlines)  # every stage's deadline is capped by the grade's
    stages = _Stages(progress or Progress())
    not_fetched: str | None = None  # why the repository could not be fetched (over a limit): nothing is judged
    with stages("fetch", clock.budget("clone") if request.source else None):
        try:
            workspace = fetch(request.source, request.ref, timeout=clock.budget("clone")) if request.source else Workspace(
                name=safe_name(urlsplit(request.url or "").hostname or "deployment"), source=Source(url=request.url))
        except FetchLimit as exc:  # the submission itself is too big or too slow to fetch: the scorecard says so
            workspace = Workspace(name=safe_name(request.source or ""), source=Source(repo=request.source, ref=request.ref))
            stages.mark("timeout" if exc.timed_out else "failed", str(exc))
            stages.notes.append(f"the repository was not graded: {exc}")
            not_fetched = str(exc)
        except FetchError as exc:
            raise GradeError(str(exc)) from None
    try:
        with stages("inspect"):
            facts = inspect_repo(workspace.path) if workspace.path else RepoFacts()
            if facts.manifest_error:
                stages.notes.append(facts.manifest_error)  # each problem names the file, the key and its line
        tier = request.tier or (facts.manifest.tier if facts.manifest and facts.manifest.tier else "beginner")
        try:
            ladder_rubrics = [load_rubric(t) for t in tiers()]
            # `auto` runs the top tier's checks once, then grades against the highest tier whose gates hold
            rubric = ladder_rubrics[-1] if tier == "auto" else load_rubric(tier)
        except RubricError as exc:
            raise GradeError(str(exc)) from None
        if request.url:  # a deployment nobody answers at is not graded: one line, not minutes of waiting, then 0/100
            from .runtime.external import unreachable

            reason = unreachable(request.url)
            if reason:
                raise GradeError(f"{request.url} does not answer: {reason}; check the address and that the "
                                 "deployment is running")

        options = request.sandbox.runtime_options(request.run_id, build_timeout=clock.budget("build"),
                                                  start_timeout=request.settings.deadlines.start, ends=clock.ends)
        builds = 0.0 if request.url else options.build_timeout  # a live URL is only waited for
        runtime_started = stages.begin("runtime", min(builds + options.start_timeout, clock.remaining()))
        try:
            with start(workspace, facts, options, url=request.url) as handle:
                service = handle.service
                if not_fetched:
                    service = RunningService(kind="none", status="not_started",
                                             detail=f"the repository was not fetched: {not_fetched}")
                stages.record("runtime", runtime_started, *_runtime_stage(handle, service))
                stages.notes.extend(handle.notes)
                while True:  # once more, from setup on, when the API's writes hit the read-only root (_wrote_read_only)
                    prober = Prober(service.base_url, timeout=request.settings.request_timeout,
                                    on_exchange=stages.progress.exchange) if service.up and service.base_url else None
                    try:
                        if prober is not None:
                            _setup(facts, handle, prober, stages, clock)
                        with stages("discover", clock.budget("discover")):
                            api = _discover(facts, prober, clock, stages)
                            stages.notes.extend(n for n in api.notes if n not in stages.notes)  # once on a rerun
                            if prober is not None and api.base_url:
                                prober.base_url = api.base_url  # the spec's mount point (servers: [{url: /api/v1}])
                        if prober is not None:
                            _ensure_schema(facts, handle, api, stages, clock, request.settings)
                        with stages("checks", clock.remaining()), clock.running():  # the Prober keeps the deadline
                            ctx = CheckContext(workspace=workspace, facts=facts, service=service, api=api,
                                               prober=prober, settings=request.settings, alive=handle.alive,
                                               check_params=rubric.check_params)
                            _make_test_users(ctx)
                            if prober is not None and _wrote_read_only(handle, stages, None, "after the grader's "
                                                                       "first reads and writes, before any check"):
                                service = handle.service
                                continue
                            checks_started = time.monotonic()
                            if not_fetched:
                                outcomes = _unjudged(rubric.check_ids, f"the repository was not fetched: {not_fetched}")
                            else:
                                outcomes = run_checks(rubric.check_ids, ctx, on_check=_shown_to(stages.progress, clock))
                            if prober is not None and _wrote_read_only(
                                    handle, stages, clock, "during the checks",
                                    again_needs=2 * (time.monotonic() - checks_started) + options.start_timeout):
                                service = handle.service
                                continue
                            stages.notes.extend(ctx.identity_notes())
                            replay_auth = _replay_auth(ctx)  # before the test users are removed
                            removal = ctx.remove_test_users()
                            if removal:
                                stages.notes.append(removal)
                            _mark_overruns(outcomes, stages)
                        stages.notes.extend(_sandbox_notes(handle, prober, request.settings))
                        service = service.model_copy(update={"logs": handle.logs()})
                    finally:
                        if prober is not None:
                            prober.close()
                    break
                cleanup_started = stages.begin("cleanup")
        except RuntimeUnavailable as exc:
            raise GradeError(str(exc)) from None
        stages.record("cleanup", cleanup_started)
        with stages("scoring"):
            steps = ladder(ladder_rubrics, outcomes)
            if tier == "auto":
                reached = [r for r, step in zip(ladder_rubrics, steps) if step.status == "reached"]
                rubric = reached[-1] if reached else ladder_rubrics[0]
            return _scorecard(workspace, facts, rubric, service, api, outcomes, stages, steps, replay_auth)
    finally:
        discard(workspace)


def _shown_to(progress: Progress, clock: GradeClock):
    """run_checks' hook: each check's family and the deadline left to it (the family's, or the grade's)."""
    return lambda spec, left: progress.check_started(spec.area, spec.id, min(left, clock.remaining()))


def _make_test_users(ctx: CheckContext) -> None:
    """Register the two test users before any probe: fuzzed and burst logins may rate-limit the client later."""
    if ctx.api.auth is not None and ctx.prober is not None:
        try:
            ctx.identities(2)
        except IdentityError:
            pass  # each check that needs users reports why they could not be made


def _replay_auth(ctx: CheckContext) -> dict | None:
    """result.json's `api.auth`: how users register and log in and whose tokens were genuine (`replay` needs it)."""
    from .replay import auth_block

    if ctx.api.auth is None or ctx.prober is None:
        return None
    return auth_block(ctx.api.auth, ctx.known_identities(), ctx.prober.url_for)


def _runtime_stage(handle: ServiceHandle, service: RunningService) -> tuple[StageStatus, str]:
    """ok; or failed / timeout (a build or start that ran out of its deadline) with what happened."""
    if service.up:
        return ("ok", "")
    return ("timeout" if handle.timed_out() else "failed", f"{service.status}: {service.detail}")


def _discover(facts: RepoFacts, prober: Prober | None, clock: GradeClock, stages: _Stages) -> ApiModel:
    """discover() under its deadline; a discovery that ran out says so, and the grade goes on without a spec."""
    label = clock.label("discover")
    finished = run_with_deadline(lambda: discover(facts, prober), clock.budget("discover"), label)
    if finished.timed_out:
        stages.mark("timeout", f"ran out of {label}")
        return ApiModel(base_url=prober.base_url if prober else None,
                        spec_problem=f"discovery ran out of {label}: the API answered too slowly or not at all")
    if finished.overran:
        stages.mark("timeout", f"requests were cut at {label}; discovery went on with what had arrived")
    assert finished.value is not None  # discover() returned (an ApiModel) within the deadline
    return finished.value


def _unjudged(check_ids: list[str], reason: str) -> list:
    """Every check not evaluated, for the same reason (a repository that could not be fetched)."""
    from .checks.registry import REGISTRY, import_builtin_checks
    from .models import CheckOutcome

    import_builtin_checks()
    return [CheckOutcome(check=i, area=REGISTRY[i].area if i in REGISTRY else "unknown", status="not_evaluated",
                         summary=REGISTRY[i].title if i in REGISTRY else i, reason=reason, score=0.0)
            for i in dict.fromkeys(check_ids)]


def _mark_overruns(outcomes, stages: _Stages) -> None:
    """The checks stage ends `timeout` when a check family ran out of its deadline (or the grade did)."""
    cut = [o for o in outcomes if o.status == "not_evaluated" and o.reason
           and ("ran out of" in o.reason or "deadline had passed" in o.reason)]
    if cut:
        families = sorted({o.area for o in cut})
        stages.mark("timeout", f"{len(cut)} check{'s' if len(cut) > 1 else ''} ran out of their deadline "
                               f"(families: {', '.join(families)})")


def _sandbox_notes(handle: ServiceHandle, prober: Prober | None, settings: Settings) -> list[str]:
    """What the sandbox's limits did to the API and what its answers looked like as a whole."""
    notes = handle.limit_notes()
    if prober is not None:
        notes += observation_notes(prober.exchanges, settings.request_timeout)
    return notes


def _setup(facts: RepoFacts, handle: ServiceHandle, prober: Prober, stages: _Stages, clock: GradeClock) -> None:
    """The manifest's setup steps (migrations, seeding) between start and probes, under the setup deadline."""
    steps = facts.manifest.setup if facts.manifest else []
    if not steps:
        return
    with stages("setup", clock.budget("setup")):
        label = clock.label("setup")
        finished = run_with_deadline(lambda: _run_setup_steps(steps, handle, prober, stages), clock.budget("setup"),
                                     label)
        if finished.overran:
            stages.mark("timeout", f"ran out of {label}")
            stages.notes.append(f"the setup steps ran out of {label}; the grade went on without them")


MAX_SCHEMA_READS = 5


def _harmless_reads(api: ApiModel, base_url: str, timeout: float) -> Callable[[], str]:
    """reads() -> "GET /books 500, GET /authors 500": a few GETs of the API's lists (no path parameter, the
    collections first), from a prober of their own, so that these diagnostic answers are no evidence of the grade."""
    lists = [r.collection for r in api.resources]
    lists += [op.path for op in api.operations if op.method == "GET" and "{" not in op.path and op.path not in lists]
    paths = lists[:MAX_SCHEMA_READS] or ["/"]

    def reads() -> str:
        reader = Prober(api.base_url or base_url, timeout=timeout)
        try:
            answers = [reader.request("GET", path) for path in paths]
        finally:
            reader.close()
        return ", ".join(f"GET {p} {a.status or a.error}" for p, a in zip(paths, answers))

    return reads


def _ensure_schema(facts: RepoFacts, handle: ServiceHandle, api: ApiModel, stages: _Stages, clock: GradeClock,
                   settings: Settings) -> None:
    """An API whose log says its tables do not exist after a few reads: the project's migrations, run once
    (runtime/migrations.py), under the setup deadline; the scorecard's notes say what was run and what it did."""
    from .runtime.migrations import ensure_schema

    base_url = handle.service.base_url
    if handle.service.kind not in ("docker", "compose") or base_url is None:
        return  # a live deployment: no log to read, no container to enter (or nothing answers)
    reads = _harmless_reads(api, base_url, settings.request_timeout)
    folders = [f for f in (handle.api_context, facts.root) if f is not None]
    budget = clock.budget("setup")
    label = clock.label("setup")

    def send(op: str) -> str:  # the API's own init operation (GET /createdb), once, before any test user exists
        method, path = op.split(" ", 1)
        stages.sent_held_out.add(op)
        sender = Prober(api.base_url or base_url, timeout=settings.request_timeout)
        try:
            answer = sender.request(method, path)
        finally:
            sender.close()
        return str(answer.status or answer.error)

    finished = run_with_deadline(lambda: ensure_schema(handle, folders, reads, timeout=max(1.0, budget - 15),
                                                       setup_given=bool(facts.manifest and facts.manifest.setup),
                                                       held_out=list(api.held_out), send=send),
                                 budget, label)
    if finished.timed_out:
        stages.notes.append(f"checking the API's database schema ran out of {label}; the grade went on")
    elif finished.value is not None:
        stages.notes.append(finished.value.note)


READ_ONLY_LOG_LINES = 5000  # how far back the API's log is read for writes its read-only root refused


def _wrote_read_only(handle: ServiceHandle, stages: _Stages, clock: GradeClock | None, when: str, again_needs: float = 0.0) -> bool:
    """Did the API, which came up on a read-only root, write to it since? Then it is started again on a writable
    root (runtime: restart_writable) and the grade starts over from setup: True.

    Where this is safe: a restart loses the grade's state (the test users, the objects the probes made, a database
    in the container), so it happens only at two points: before any check (after discovery, the schema reads and
    the test users' sign-up, the first writes), where nothing has been judged yet; and after all the checks, when
    the grade's deadline leaves room to grade again (`again_needs` seconds, with `clock`), the first run's verdicts
    then being discarded since they rest on writes the sandbox refused. Never between check families: the rest
    would run without the users and objects they rely on. Writes refused after the checks with no time left to
    grade again are named in a note and the verdicts stand. Once writable, never again."""
    if not handle.read_only:
        return False
    line = sandbox_mentions_read_only(handle.api_log(tail=READ_ONLY_LOG_LINES))
    if not line:
        return False
    if clock is not None and clock.remaining() < again_needs:
        stages.notes.append(f"the API wrote to the read-only root filesystem {when} (its log: {line!r}), and the "
                            "grade's deadline left too little time to grade it again on a writable root: failures "
                            "of those writes count against it; write runtime files under /tmp or the app's own "
                            "folder")
        return False
    stages.notes.extend(handle.restart_writable(line, when))
    return True


def _run_setup_steps(steps, handle, prober: Prober, stages: _Stages) -> None:
    for step in steps:
        if step.exec:
            code, output = handle.exec(step.exec)
            if code != 0:
                stages.notes.append(f"setup step `{step.exec}` exited {code}: {output[-300:]}")
        elif step.request:
            method, _, path = step.request.partition(" ")
            exchange = prober.request(method.upper(), path.strip() or "/")
            exchange.source = "discover"
            if exchange.status is None or exchange.status >= 400:
                stages.notes.append(f"setup request `{step.request}` answered {exchange.status or exchange.error}")


def _scorecard(workspace: Workspace, facts: RepoFacts, rubric: Rubric, service: RunningService, api: ApiModel,
               outcomes, stages: _Stages, steps: list[LadderStep], replay_auth: dict | None = None) -> Scorecard:
    result = score(rubric, outcomes)
    notes = list(stages.notes)
    if api.spec_problem:
        notes.append(f"No OpenAPI document: {api.spec_problem}")
    notes += [f"`{label}` was sent once, before any test user existed, to make the missing tables, and never by a "
              f"check: {why}" if label in stages.sent_held_out else f"`{label}` was never called: {why}"
              for label, why in api.held_out.items()]
    notes += [f"`{label}` was left out of the generated (fuzz) requests: {why}" for label, why in api.not_fuzzed.items()]
    return Scorecard(
        grader_version=__version__,
        rubric=RubricRef(name=rubric.name, version=rubric.version),
        source=workspace.source,
        name=workspace.name,
        tier=rubric.name,
        score=result.score,
        pass_mark=rubric.pass_mark,
        passed=result.passed,
        gates_met=result.gates_met,
        criteria=result.criteria,
        findings=result.findings,
        checks=outcomes,
        stages=stages.results,
        top_fixes=result.top_fixes,
        ladder=steps,
        runtime={"kind": service.kind, "builder": service.builder, "status": service.status,
                 "detail": service.detail, "base_url": service.base_url},
        logs=service.logs,
        api={"spec_source": api.spec_source, "spec_version": api.spec_version, "operations": len(api.operations),
             "spec_errors": len(api.spec_errors), "resources": [r.collection for r in api.resources]}
        | ({"auth": replay_auth} if replay_auth else {}),
        facts=facts.model_dump(mode="json", exclude={"root", "readme_text", "manifest_error"})
        | {"routes_in_code": [list(route) for route in facts.routes_in_code]},  # SARIF locates findings at handlers
        notes=notes,
        graded_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )


def report_dir(out: Path, scorecard: Scorecard) -> Path:
    return out / scorecard.name
