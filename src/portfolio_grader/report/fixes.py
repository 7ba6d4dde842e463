"""What the learner does next, as every format shows it: "Fix these first" and "Help the grader see more".

`fixes()` is the scorecard's `top_fixes` (scoring puts gates first, then points, one item per cause) with
the titles of the other criteria each one costs. `see_more()` is the criteria the grader could not evaluate
for a reason of its own (no spec found, no list endpoint paired, a live URL without a repository), each
with the reasons and the `portfolio-grader.yaml` lines the checks offer: they are not fixes worth points.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..models import CriterionResult, Fix, Scorecard


@dataclass(frozen=True)
class FixItem:
    fix: Fix
    also: tuple[str, ...] = ()  # titles of the other criteria this one cause costs

    @property
    def also_text(self) -> str:
        """"also costs: Title; Title" for a cause that costs several criteria, else ""."""
        return ("also costs " + "; ".join(self.also)) if self.also else ""


@dataclass(frozen=True)
class SeeMoreItem:
    criterion: CriterionResult
    reasons: tuple[str, ...]
    manifest_hints: tuple[str, ...]  # portfolio-grader.yaml lines that would let its checks run


def _shown(sc: Scorecard, learner: bool) -> list[CriterionResult]:
    return [c for c in sc.criteria if not (learner and c.visibility == "hidden")]


def fixes(sc: Scorecard, *, learner: bool = False) -> list[FixItem]:
    """The fix list. A Fix from an older result.json for a criterion that was only not evaluated is left to
    `see_more()`: there is nothing on the API to fix."""
    criteria = {c.id: c for c in sc.criteria}
    hidden = {c.id for c in sc.criteria if c.visibility == "hidden"} if learner else set()
    items = []
    for fix in sc.top_fixes:
        if fix.criterion in hidden:
            continue
        lead = criteria.get(fix.criterion)
        if not fix.criteria and lead is not None and lead.status not in ("fail", "partial"):
            continue
        also = tuple(criteria[i].title for i in fix.criteria[1:] if i in criteria and i not in hidden)
        items.append(FixItem(fix=fix, also=also))
    return items


def see_more(sc: Scorecard, *, learner: bool = False) -> list[SeeMoreItem]:
    """Criteria not evaluated that no fix covers, with why and the manifest lines that would let them run."""
    covered = {i for item in fixes(sc) for i in (item.fix.criteria or [item.fix.criterion])}
    checks = {o.check: o for o in sc.checks}
    items = []
    for c in _shown(sc, learner):
        if c.status != "not_evaluated" or c.id in covered:
            continue
        skipped = [checks[i] for i in c.checks if i in checks and checks[i].status == "not_evaluated"]
        reasons = tuple(dict.fromkeys(o.reason for o in skipped if o.reason)) or ((c.reason,) if c.reason else ())
        hints = tuple(dict.fromkeys(o.manifest_hint.strip() for o in skipped if o.manifest_hint))
        items.append(SeeMoreItem(criterion=c, reasons=reasons, manifest_hints=hints))
    return items
