"""What changed since a previous grade: the score delta, criteria whose points or status moved, finding kinds new and gone.

`grade --baseline previous/result.json` stores the diff on the Scorecard as `baseline` (a plain dict in
result.json), so the terminal, the HTML scorecard and the Markdown summary all render the same
"Since last grade" section from the JSON alone. Hidden criteria keep their visibility here, so
learner-facing formats can count them without naming them.
"""

from __future__ import annotations

from collections import Counter
from typing import Literal

from pydantic import BaseModel

from ..models import CriterionStatus, Scorecard

_RANK = {"not_applicable": 0, "not_evaluated": 0, "fail": 1, "partial": 2, "pass": 3}


class CriterionChange(BaseModel):
    id: str
    title: str
    visibility: Literal["visible", "hidden"] = "visible"
    before: CriterionStatus
    after: CriterionStatus
    points_before: float
    points_after: float
    max_points: float

    @property
    def delta(self) -> float:
        return round(self.points_after - self.points_before, 1)


class KindChange(BaseModel):
    kind: str
    before: int  # findings of this kind in the previous grade
    after: int
    hidden: bool = False  # every such finding belongs to hidden criteria


class BaselineDiff(BaseModel):
    previous_score: float
    previous_passed: bool
    previous_graded_at: str = ""
    previous_commit: str | None = None
    previous_rubric: str  # "intermediate 2025.1"
    same_rubric: bool
    score_delta: float
    improved: list[CriterionChange] = []  # more points (or the same points and a better status)
    regressed: list[CriterionChange] = []
    new_criteria: list[str] = []  # ids graded now but not then (a different rubric version)
    dropped_criteria: list[str] = []
    new_kinds: list[KindChange] = []  # problems that appeared
    fixed_kinds: list[KindChange] = []  # problems that are gone

    @property
    def unchanged(self) -> bool:
        return not (self.score_delta or self.improved or self.regressed or self.new_kinds or self.fixed_kinds)


def compare(previous: Scorecard, current: Scorecard) -> BaselineDiff:
    before = {c.id: c for c in previous.criteria}
    improved, regressed = [], []
    for c in current.criteria:
        old = before.get(c.id)
        if old is None or (old.status == c.status and old.points == c.points):
            continue
        change = CriterionChange(id=c.id, title=c.title, visibility=c.visibility, before=old.status, after=c.status,
                                 points_before=old.points, points_after=c.points, max_points=c.max_points)
        better = (change.delta, _RANK[c.status] - _RANK[old.status])
        if better > (0, 0):
            improved.append(change)
        elif better < (0, 0):
            regressed.append(change)
    improved.sort(key=lambda ch: -ch.delta)
    regressed.sort(key=lambda ch: ch.delta)

    kinds_before, hidden_before = _kinds(previous)
    kinds_after, hidden_after = _kinds(current)
    new_kinds = [KindChange(kind=k, before=0, after=n, hidden=k in hidden_after)
                 for k, n in sorted(kinds_after.items()) if k not in kinds_before]
    fixed_kinds = [KindChange(kind=k, before=n, after=0, hidden=k in hidden_before)
                   for k, n in sorted(kinds_before.items()) if k not in kinds_after]
    now = {c.id for c in current.criteria}
    return BaselineDiff(
        previous_score=previous.score,
        previous_passed=previous.passed,
        previous_graded_at=previous.graded_at,
        previous_commit=previous.source.commit,
        previous_rubric=f"{previous.rubric.name} {previous.rubric.version}",
        same_rubric=previous.rubric == current.rubric,
        score_delta=round(current.score - previous.score, 1),
        improved=improved,
        regressed=regressed,
        new_criteria=[i for i in now if i not in before],
        dropped_criteria=[i for i in before if i not in now],
        new_kinds=new_kinds,
        fixed_kinds=fixed_kinds,
    )


def with_baseline(current: Scorecard, previous: Scorecard) -> Scorecard:
    """`current` with its `baseline` field set to what changed since `previous`."""
    return current.model_copy(update={"baseline": compare(previous, current).model_dump(mode="json")})


def baseline_of(scorecard: Scorecard) -> BaselineDiff | None:
    """The stored diff, typed; None when the grade had no baseline (or an unreadable one)."""
    if not scorecard.baseline:
        return None
    try:
        return BaselineDiff.model_validate(scorecard.baseline)
    except ValueError:
        return None


def _kinds(scorecard: Scorecard) -> tuple[Counter[str], set[str]]:
    """Finding kinds of the graded criteria, and those kinds only hidden criteria report."""
    by_id = {f.id: f for f in scorecard.findings}
    seen: dict[str, str] = {}  # finding id -> kind; a finding two criteria share counts once
    visible_kinds: set[str] = set()
    for criterion in scorecard.criteria:
        for fid in criterion.finding_ids:
            finding = by_id.get(fid)
            if finding is None:
                continue
            seen[fid] = finding.kind
            if criterion.visibility == "visible":
                visible_kinds.add(finding.kind)
    counts = Counter(seen.values())
    return counts, set(counts) - visible_kinds
