"""scoring: a rubric and the checks' outcomes give criterion results, a score, the gates and the top fixes.

A criterion's share of its points is the mean score of its evaluated checks; it passes when every
evaluated check passes. A check that only warns (user enumeration, weak passwords accepted) keeps
half its share: a warning is worth fixing, but it is not a failure. A criterion none of whose checks could run is `not_evaluated` and earns
nothing: a grade can only be earned by evidence. A criterion the rubric applies `when_offered` whose every check
found nothing to examine (`not_applicable`: the API does not paginate) leaves the grade: its max_points is 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypedDict

from .models import CheckOutcome, CriterionResult, Finding, Fix, LadderStep
from .rubric import Criterion, Rubric


WARNING_SHARE = 0.5


@dataclass(frozen=True)
class Score:
    criteria: list[CriterionResult]
    findings: list[Finding]
    score: float  # 0..100
    passed: bool
    gates_met: bool
    top_fixes: list[Fix]


def score(rubric: Rubric, outcomes: list[CheckOutcome]) -> Score:
    by_check = {o.check: o for o in outcomes}
    results = [_criterion(c, [by_check[i] for i in c.checks if i in by_check]) for c in rubric.criteria]
    earned = sum(r.points for r in results)
    total = sum(r.max_points for r in results) or 1
    value = round(100 * earned / total, 1)
    gates_met = not any(r.gate_failed for r in results)
    used = {f for r in results for f in r.finding_ids}
    findings = [f for o in outcomes for f in o.findings if f.id in used]
    return Score(
        criteria=results,
        findings=findings,
        score=value,
        passed=value >= rubric.pass_mark and gates_met,
        gates_met=gates_met,
        top_fixes=_top_fixes(results, outcomes, total),
    )


class _Common(TypedDict):
    """The fields a criterion's result copies from the rubric, whatever its status."""

    id: str
    title: str
    area: str
    max_points: float
    gate: bool
    owasp: str | None
    hint: str
    checks: list[str]
    visibility: Literal["visible", "hidden"]


def _criterion(criterion: Criterion, outcomes: list[CheckOutcome]) -> CriterionResult:
    evaluated = [o for o in outcomes if o.status not in ("not_evaluated", "not_applicable")]
    common = _Common(id=criterion.id, title=criterion.title, area=criterion.area, max_points=criterion.points,
                     gate=criterion.gate, owasp=criterion.owasp, hint=criterion.hint, checks=list(criterion.checks),
                     visibility=criterion.visibility)
    reasons = "; ".join(dict.fromkeys(o.reason or "" for o in outcomes if o.reason)) or "no check could run"
    if (criterion.applies == "when_offered" and outcomes
            and all(o.status == "not_applicable" for o in outcomes)):
        return CriterionResult(status="not_applicable", points=0.0, reason=reasons,
                               **(common | {"max_points": 0.0}))
    if not evaluated:
        return CriterionResult(status="not_evaluated", points=0.0, reason=reasons, **common)
    findings = [f.id for o in evaluated for f in o.findings]
    if all(o.status == "pass" for o in evaluated):
        return CriterionResult(status="pass", points=criterion.points, finding_ids=findings, **common)
    share = sum(o.score * (WARNING_SHARE if o.status == "warn" else 1.0) for o in evaluated) / len(evaluated)
    points = round(criterion.points * share, 1)
    return CriterionResult(status="partial" if points > 0 else "fail", points=points, finding_ids=findings, **common)


_SEVERITY_ORDER = {"critical": 0, "high": 1, "medium": 2, "low": 3, "info": 4}
# a check skipped for one of these reasons could not run because the API itself did not: the cause is the
# build or the start, a fix for the learner, not something the grader could be told in the manifest
_SERVICE_DOWN = ("the API is not running", "the container was never started")
_SERVICE_KINDS = {"build_failed", "start_failed", "container_crashed"}
MAX_FIXES = 5


def blocked_by_the_service(criterion: CriterionResult, outcomes: dict[str, CheckOutcome]) -> bool:
    """A criterion not evaluated only because the API did not build or start."""
    skipped = [outcomes[c] for c in criterion.checks if c in outcomes and outcomes[c].status == "not_evaluated"]
    return (criterion.status == "not_evaluated" and bool(skipped)
            and all((o.reason or "").startswith(_SERVICE_DOWN) for o in skipped))


def _top_fixes(results: list[CriterionResult], outcomes: list[CheckOutcome], total: float) -> list[Fix]:
    """"Fix these first": the causes that cost points, gates first, then by the points fixing them is worth.

    Each item leads with what broke on this API (the most severe finding of the criterion, else the failing
    check's summary). Criteria that share a finding are one item, and so is a failed build or start with every
    criterion it left not evaluated. Criteria the grader could not evaluate for other reasons are not fixes:
    the report lists them apart ("Help the grader see more", report/fixes.py)."""
    by_check = {o.check: o for o in outcomes}
    findings = {f.id: f for o in outcomes for f in o.findings}
    failing = [r for r in results if r.status in ("fail", "partial")]
    groups: list[list[CriterionResult]] = []
    for r in failing:  # criteria resting on a common finding are one cause
        ids = set(r.finding_ids)
        joined = [g for g in groups if ids & {i for c in g for i in c.finding_ids}]
        merged = [c for g in joined for c in g] + [r]
        groups = [g for g in groups if g not in joined] + [merged]
    groups.sort(key=lambda g: results.index(g[0]))
    blocked = [r for r in results if blocked_by_the_service(r, by_check)]
    if blocked:
        home = next((g for g in groups if any(findings[i].kind in _SERVICE_KINDS for c in g for i in c.finding_ids
                                              if i in findings)), None)
        if home is None:
            groups.append(blocked)
        else:
            home.extend(blocked)
    fixes = [_fix(g, by_check, findings, total) for g in groups]
    fixes.sort(key=lambda f: (not f.gate, -f.points))
    return fixes[:MAX_FIXES]


def _fix(group: list[CriterionResult], by_check: dict[str, CheckOutcome], findings: dict, total: float) -> Fix:
    lead = group[0]
    own = sorted((findings[i] for c in group for i in c.finding_ids if i in findings),
                 key=lambda f: _SEVERITY_ORDER.get(f.severity, 9))
    if own:
        problem, operation = own[0].message, own[0].operation
    else:  # no finding: the checks that did not hold say what they saw (a skip reason when nothing ran)
        seen = [by_check[c] for c in lead.checks if c in by_check]
        held_back = [o.summary for o in seen if o.status in ("fail", "warn")]
        problem = "; ".join(dict.fromkeys(held_back)) or lead.reason or ""
        operation = None
    lost = sum(c.max_points - c.points for c in group)
    return Fix(criterion=lead.id, title=lead.title, points=round(100 * lost / total, 1), hint=lead.hint,
               problem=problem, operation=operation, gate=any(c.gate for c in group),
               finding_ids=list(dict.fromkeys(f.id for f in own)), criteria=[c.id for c in group])


def ladder(rubrics: list[Rubric], outcomes: list[CheckOutcome]) -> list[LadderStep]:
    """Each tier scored from the same outcomes; a tier whose checks did not all run is `not_graded`.
    A tier is reached when all its gates pass. Its gates are those of the tiers it includes too, except where it
    redefines one on purpose: a capstone platform need not be a URL shortener to reach the capstone tier."""
    ran = {o.check for o in outcomes}
    steps: list[LadderStep] = []
    for rubric in rubrics:
        if not set(rubric.check_ids) <= ran:
            steps.append(LadderStep(tier=rubric.name, status="not_graded"))
            continue
        result = score(rubric, outcomes)
        missing = [c.title for c in result.criteria if c.gate_failed]
        steps.append(LadderStep(tier=rubric.name, status="missed" if missing else "reached", score=result.score,
                                missing_gates=missing))
    return steps
