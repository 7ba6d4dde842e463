"""grade(request) -> Scorecard: fetch -> inspect -> runtime -> discover -> checks -> scoring, timed per stage.

Whatever happens inside a stage, the stages after it still run with what is known, and everything the
grade created (workspace copy, containers, images) is removed on the way out.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

from . import __version__
from .checks import CheckContext, Settings, run_checks
from .discover import discover
from .fetch import discard, fetch, safe_name
from .identities import IdentityError
from .inspect import inspect_repo
from .models import ApiModel, LadderStep, RepoFacts, RubricRef, RunningService, Scorecard, Source, StageResult, Workspace
from .probe import Prober
from .rubric import Rubric, load_rubric, tiers
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


class _Stages:
    def __init__(self) -> None:
        self.results: list[StageResult] = []
        self.notes: list[str] = []

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
        except GradeError:
            self.record(name, started, "failed")
            raise
        self.record(name, started)

    def record(self, name: str, started: float, status: str = "ok", detail: str = "") -> None:
        self.results.append(StageResult(name=name, status=status, seconds=round(time.monotonic() - started, 2),
                                        detail=detail))


def grade(request: GradeRequest) -> Scorecard:
    from .fetch import FetchError
    from .rubric import RubricError
    from .runtime import RuntimeOptions, RuntimeUnavailable, start

    if not request.source and not request.url:
        raise GradeError("nothing to grade: give a repository URL, a folder, or --url")
    stages = _Stages()
    with stages("fetch"):
        try:
            workspace = fetch(request.source, request.ref) if request.source else Workspace(
                name=safe_name(urlsplit(request.url).hostname or "deployment"), source=Source(url=request.url))
        except FetchError as exc:
            raise GradeError(str(exc)) from None
    try:
        with stages("inspect"):
            facts = inspect_repo(workspace.path) if workspace.path else RepoFacts()
            if facts.manifest_error:
                stages.notes.append(f"portfolio-grader.yaml was ignored: {facts.manifest_error}")
        tier = request.tier or (facts.manifest.tier if facts.manifest and facts.manifest.tier else "beginner")
        try:
            ladder_rubrics = [load_rubric(t) for t in tiers()]
            # `auto` runs the top tier's checks once, then grades against the highest tier whose gates hold
            rubric = ladder_rubrics[-1] if tier == "auto" else load_rubric(tier)
        except RubricError as exc:
            raise GradeError(str(exc)) from None

        options = RuntimeOptions(run_id=request.run_id)
        runtime_started = time.monotonic()
        try:
            with start(workspace, facts, options, url=request.url) as handle:
                service = handle.service
                stages.record("runtime", runtime_started, *(("ok",) if service.up else
                                                            ("failed", f"{service.status}: {service.detail}")))
                prober = Prober(service.base_url, timeout=request.settings.request_timeout) if service.up else None
                try:
                    if prober is not None:
                        _setup(facts, handle, prober, stages)
                    with stages("discover"):
                        api = discover(facts, prober)
                        if prober is not None and api.base_url:
                            prober.base_url = api.base_url  # the spec's mount point (servers: [{url: /api/v1}])
                    with stages("checks"):
                        ctx = CheckContext(workspace=workspace, facts=facts, service=service, api=api, prober=prober,
                                           settings=request.settings, alive=handle.alive)
                        _make_test_users(ctx)
                        outcomes = run_checks(rubric.check_ids, ctx)
                        removal = ctx.remove_test_users()
                        if removal:
                            stages.notes.append(removal)
                    service = service.model_copy(update={"logs": handle.logs()})
                finally:
                    if prober is not None:
                        prober.close()
                cleanup_started = time.monotonic()
        except RuntimeUnavailable as exc:
            raise GradeError(str(exc)) from None
        stages.record("cleanup", cleanup_started)
        with stages("scoring"):
            steps = ladder(ladder_rubrics, outcomes)
            if tier == "auto":
                reached = [r for r, step in zip(ladder_rubrics, steps) if step.status == "reached"]
                rubric = reached[-1] if reached else ladder_rubrics[0]
            return _scorecard(workspace, facts, rubric, service, api, outcomes, stages, steps)
    finally:
        discard(workspace)


def _make_test_users(ctx: CheckContext) -> None:
    """Register the two test users before any probe: fuzzed and burst logins may rate-limit the client later."""
    if ctx.api.auth is not None and ctx.prober is not None:
        try:
            ctx.identities(2)
        except IdentityError:
            pass  # each check that needs users reports why they could not be made


def _setup(facts: RepoFacts, handle, prober: Prober, stages: _Stages) -> None:
    """The manifest's setup steps (migrations, seeding) between start and probes."""
    steps = facts.manifest.setup if facts.manifest else []
    if not steps:
        return
    with stages("setup"):
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
               outcomes, stages: _Stages, steps: list[LadderStep]) -> Scorecard:
    result = score(rubric, outcomes)
    notes = list(stages.notes)
    if api.spec_problem:
        notes.append(f"No OpenAPI document: {api.spec_problem}")
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
             "spec_errors": len(api.spec_errors), "resources": [r.collection for r in api.resources]},
        facts=facts.model_dump(mode="json", exclude={"root", "readme_text", "manifest_error"})
        | {"routes_in_code": len(facts.routes_in_code)},
        notes=notes,
        graded_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )


def report_dir(out: Path, scorecard: Scorecard) -> Path:
    return out / scorecard.name
