"""scoring: a rubric and the checks' outcomes give criterion results, a score, the gates and the top fixes.

A criterion's share of its points is the mean score of its evaluated checks; it passes when every
evaluated check passes. A check that only warns (user enumeration, weak passwords accepted) keeps
half its share: a warning is worth fixing, but it is not a failure. A criterion none of whose checks could run is `not_evaluated` and earns
nothing: a grade can only be earned by evidence. A criterion the rubric applies `when_offered` whose every check
found nothing to examine (`not_applicable`: the API does not paginate) leaves the grade: its max_points is 0.
"""

from __future__ import annotations

from dataclasses import dataclass

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
        top_fixes=_top_fixes(results, total),
    )


def _criterion(criterion: Criterion, outcomes: list[CheckOutcome]) -> CriterionResult:
    evaluated = [o for o in outcomes if o.status not in ("not_evaluated", "not_applicable")]
    common = dict(id=criterion.id, title=criterion.title, area=criterion.area, max_points=criterion.points,
                  gate=criterion.gate, owasp=criterion.owasp, hint=criterion.hint, checks=list(criterion.checks),
                  visibility=criterion.visibility)
    reasons = "; ".join(dict.fromkeys(o.reason or "" for o in outcomes if o.reason)) or "no check could run"
    if (criterion.applies == "when_offered" and outcomes
            and all(o.status == "not_applicable" for o in outcomes)):
        return CriterionResult(status="not_applicable", points=0.0, reason=reasons,
                               **{**common, "max_points": 0.0})
    if not evaluated:
        return CriterionResult(status="not_evaluated", points=0.0, reason=reasons, **common)
    findings = [f.id for o in evaluated for f in o.findings]
    if all(o.status == "pass" for o in evaluated):
        return CriterionResult(status="pass", points=criterion.points, finding_ids=findings, **common)
    share = sum(o.score * (WARNING_SHARE if o.status == "warn" else 1.0) for o in evaluated) / len(evaluated)
    points = round(criterion.points * share, 1)
    return CriterionResult(status="partial" if points > 0 else "fail", points=points, finding_ids=findings, **common)


def _top_fixes(results: list[CriterionResult], total: float) -> list[Fix]:
    """The criteria that lose the most points, gates first on ties, each with its hint."""
    lost = [r for r in results if r.status not in ("pass", "not_applicable")]
    lost.sort(key=lambda r: (-(r.max_points - r.points), not r.gate))
    return [Fix(criterion=r.id, title=r.title, points=round(100 * (r.max_points - r.points) / total, 1),
                hint=r.reason if r.status == "not_evaluated" and r.reason else r.hint) for r in lost[:5]]


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
