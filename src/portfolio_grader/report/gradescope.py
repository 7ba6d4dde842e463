"""Gradescope's autograder `results.json`: one test per criterion, in the rubric's points.

Gradescope shows `tests[]` to learners by each test's `visibility`; hidden criteria get `hidden`
(or `after_published`, when the instructor wants them revealed once grades are published) and the
top-level output summarises them as "n hidden checks". Text is `text` format, which Gradescope
escapes, so nothing a submission returned is ever rendered as markup.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from ..models import CriterionResult, Finding, Scorecard
from .html import format_points, points_text
from .fixes import fixes, see_more
from .stack import for_stack
from .learner import hidden_summary
from .verdict import verdict_of

MAX_OUTPUT = 8_000
STATUS_WORDS = {"pass": "passed", "partial": "partially met", "fail": "failed", "not_evaluated": "not evaluated",
                "not_applicable": "not applicable"}


def _bounded(text: str, limit: int = MAX_OUTPUT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _test_output(c: CriterionResult, findings: list[Finding]) -> str:
    lines = [f"{STATUS_WORDS.get(c.status, c.status)}: {format_points(c.points)}/{format_points(c.max_points)} points"]
    if c.status in ("not_evaluated", "not_applicable"):
        lines.append(f"{STATUS_WORDS[c.status].capitalize()}: {c.reason or 'no reason recorded'}")
    elif c.status != "pass" and c.hint:
        lines.append(f"How to fix: {c.hint}")
    for f in findings:
        lines += ["", f"[{f.severity.upper()}] {f.kind}" + (f" {f.operation}" if f.operation else ""), f.message]
        if f.evidence:
            lines.append(f"Reproduce: {f.evidence[0].curl}")
    return _bounded("\n".join(lines))


def render_gradescope(scorecard: Scorecard,
                      hidden_visibility: Literal["hidden", "after_published"] = "hidden") -> str:
    sc = for_stack(scorecard)  # hints fitted to the detected stack
    findings = {f.id: f for f in sc.findings}
    tests: list[dict[str, Any]] = []
    for number, c in enumerate(sc.criteria, 1):
        tests.append({
            "name": f"{c.title}" + (" (gate)" if c.gate else ""),
            "number": str(number),
            "score": round(c.points, 2),
            "max_score": round(c.max_points, 2),
            "status": "passed" if c.status == "pass" else "failed",
            "output": _test_output(c, [findings[i] for i in c.finding_ids if i in findings]),
            "output_format": "text",
            "name_format": "text",
            "tags": [t for t in (c.area, c.owasp, c.id) if t],
            "visibility": hidden_visibility if c.visibility == "hidden" else "visible",
        })
    hidden = hidden_summary(sc)
    judged = verdict_of(sc, learner=True)
    summary = [f"{sc.name}: {format_points(sc.score)}/100 on the {sc.rubric.name} rubric {sc.rubric.version} "
               f"(pass mark {format_points(sc.pass_mark)}, {judged.distance}"
               f"{' it' if judged.distance == 'at' else ''}): {judged.sentence}."]
    if not judged.gates_met:
        summary.append("A tier is reached only when every gate criterion passes.")
    summary.append(f"Criteria: {points_text(sc.criteria)}.")
    if hidden.count:
        summary.append(f"{hidden.text()}.")
    items = fixes(sc, learner=True)
    if items:
        summary.append("Fix these first:")
        for number, item in enumerate(items[:3], 1):
            fix = item.fix
            where = f"{fix.operation}: " if fix.operation else ""
            summary.append(f"{number}. {fix.title}{' (gate)' if fix.gate else ''} (+{format_points(fix.points)}): "
                           f"{where}{fix.problem}" if fix.problem else
                           f"{number}. {fix.title} (+{format_points(fix.points)})")
    unseen = see_more(sc, learner=True)
    if unseen:
        summary.append("Help the grader see more (not evaluated, no points either way; the scorecard has the "
                       "portfolio-grader.yaml lines): " + "; ".join(i.criterion.title for i in unseen))
    results = {
        "score": round(sum(c.points for c in sc.criteria), 2),  # the same units as tests[].score
        "output": _bounded("\n".join(summary)),
        "output_format": "text",
        "test_output_format": "text",
        "test_name_format": "text",
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "execution_time": round(sum(s.seconds for s in sc.stages)),
        "tests": tests,
        "extra_data": {"percent": sc.score, "passed": sc.passed, "verdict": judged.headline, "gates_met": sc.gates_met, "tier": sc.tier,
                       "rubric": f"{sc.rubric.name} {sc.rubric.version}", "grader_version": sc.grader_version,
                       "commit": sc.source.commit, "hidden_checks": hidden.count},
    }
    return json.dumps(results, indent=2, ensure_ascii=False) + "\n"
