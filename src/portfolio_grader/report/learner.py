"""The learner's view of a Scorecard: criteria marked `visibility: hidden` are graded but only counted.

Instructors who do not want learners to tune to the tests hide criteria in the rubric. The HTML
scorecard is the instructor's view and shows everything; the learner-facing formats (Markdown
summary, PR comment, JUnit, Gradescope's visible tests) name only visible criteria, their findings
and fixes, and summarise the rest as "n hidden checks".
"""

from __future__ import annotations

from dataclasses import dataclass

from ..models import CriterionResult, Finding, Fix, Scorecard
from .html import format_points


@dataclass(frozen=True)
class HiddenSummary:
    count: int
    passed: int
    points: float
    max_points: float

    def text(self) -> str:
        """"3 hidden checks: 2 passed, 7/10 points" (empty when nothing is hidden)."""
        if not self.count:
            return ""
        noun = "check" if self.count == 1 else "checks"
        return (f"{self.count} hidden {noun}: {self.passed} passed, "
                f"{format_points(self.points)}/{format_points(self.max_points)} points")


def hidden_ids(scorecard: Scorecard) -> set[str]:
    return {c.id for c in scorecard.criteria if c.visibility == "hidden"}


def visible_criteria(scorecard: Scorecard) -> list[CriterionResult]:
    return [c for c in scorecard.criteria if c.visibility != "hidden"]


def hidden_summary(scorecard: Scorecard) -> HiddenSummary:
    hidden = [c for c in scorecard.criteria if c.visibility == "hidden"]
    return HiddenSummary(count=len(hidden), passed=sum(c.status == "pass" for c in hidden),
                         points=sum(c.points for c in hidden), max_points=sum(c.max_points for c in hidden))


def visible_findings(scorecard: Scorecard) -> list[Finding]:
    """Findings at least one visible criterion rests on: a finding only hidden criteria use stays hidden."""
    shown = {fid for c in visible_criteria(scorecard) for fid in c.finding_ids}
    return [f for f in scorecard.findings if f.id in shown]


def visible_fixes(scorecard: Scorecard) -> list[Fix]:
    hidden = hidden_ids(scorecard)
    return [fix for fix in scorecard.top_fixes if fix.criterion not in hidden]


def learner_copy(scorecard: Scorecard) -> Scorecard:
    """The scorecard with hidden criteria, the findings only they rest on and their fixes removed (the
    score is unchanged): for output learners read that has no 'n hidden checks' line of its own, such
    as the terminal summary in a CI log."""
    hidden = hidden_ids(scorecard)
    if not hidden:
        return scorecard
    baseline = scorecard.baseline
    if baseline:
        baseline = dict(baseline)
        for key in ("improved", "regressed"):
            baseline[key] = [ch for ch in baseline.get(key) or [] if ch.get("visibility") != "hidden"]
        for key in ("new_kinds", "fixed_kinds"):
            baseline[key] = [k for k in baseline.get(key) or [] if not k.get("hidden")]
    return scorecard.model_copy(update={
        "criteria": visible_criteria(scorecard),
        "findings": visible_findings(scorecard),
        "top_fixes": visible_fixes(scorecard),
        "baseline": baseline,
    })
