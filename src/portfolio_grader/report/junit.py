"""JUnit XML: one testcase per criterion, so CI test reporters show the grade like a test run.

pass is a passing testcase; fail and partial are <failure> with the findings and their reproduction
commands as the text; not_evaluated and not_applicable are <skipped> with the reason. Hidden criteria are one testcase,
"n hidden checks", that fails without details when any of them lost points. ElementTree escapes the
markup; characters XML 1.0 cannot hold at all (ANSI escapes, NUL) are dropped first, because a
hostile response body must not make the report unparseable. Validated against Jenkins' junit-10.xsd.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from ..models import CriterionResult, Finding, Scorecard
from .html import format_points
from .learner import hidden_summary, visible_criteria

# Everything outside XML 1.0's Char production (and the discouraged C1 controls).
_NOT_XML = re.compile("[^\u0009\u000a\u000d\u0020-\u007e\u00a0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
MAX_TEXT = 20_000


def xml_text(text: object, limit: int = MAX_TEXT) -> str:
    value = _NOT_XML.sub("", str(text))
    return value if len(value) <= limit else value[: limit - 1] + "…"


def _seconds(value: float) -> str:
    return f"{max(value, 0.0):.3f}"  # the xsd's SUREFIRE_TIME: digits, at most three decimals


def _failure_text(criterion: CriterionResult, findings: list[Finding]) -> str:
    lines = [f"{criterion.title}: {format_points(criterion.points)}/{format_points(criterion.max_points)} points"]
    if criterion.hint:
        lines.append(f"How to fix: {criterion.hint}")
    for f in findings:
        lines += ["", f"[{f.severity.upper()}] {f.kind}" + (f" {f.operation}" if f.operation else ""), f.message]
        for ev in f.evidence[:3]:
            if ev.note:
                lines.append(f"  {ev.note}")
            if ev.request is not None and ev.response is not None:
                lines.append(f"  {ev.request.method} {ev.request.url} -> {ev.response.status or ev.response.error}")
            elif ev.file:
                lines.append(f"  {ev.file}")
            lines.append(f"  $ {ev.curl}")
    return "\n".join(lines)


def render_junit(scorecard: Scorecard) -> str:
    sc = scorecard
    findings = {f.id: f for f in sc.findings}
    shown = visible_criteria(sc)
    hidden = hidden_summary(sc)
    duration = sum(s.seconds for s in sc.stages)

    suite = ET.Element("testsuite", {
        "name": xml_text(f"portfolio-grader: {sc.name} ({sc.rubric.name} {sc.rubric.version})", 500),
        "tests": "0", "failures": "0", "errors": "0", "skipped": "0",
        "time": _seconds(duration),
    })
    if sc.graded_at:
        suite.set("timestamp", xml_text(sc.graded_at, 64))
    properties = ET.SubElement(suite, "properties")
    for name, value in (("score", format_points(sc.score)), ("pass_mark", format_points(sc.pass_mark)),
                        ("passed", str(sc.passed).lower()), ("gates_met", str(sc.gates_met).lower()),
                        ("tier", sc.tier), ("rubric", f"{sc.rubric.name} {sc.rubric.version}"),
                        ("grader_version", sc.grader_version), ("commit", sc.source.commit or ""),
                        ("hidden_checks", str(hidden.count))):
        ET.SubElement(properties, "property", {"name": name, "value": xml_text(value, 500)})

    tests = failures = skipped = 0
    for c in shown:
        case = ET.SubElement(suite, "testcase", {"classname": xml_text(f"portfolio_grader.{c.area}", 200),
                                                 "name": xml_text(f"{c.id}: {c.title}", 500), "time": "0"})
        tests += 1
        if c.status in ("fail", "partial"):
            failures += 1
            message = f"{c.status}: {format_points(c.points)}/{format_points(c.max_points)} points"
            failure = ET.SubElement(case, "failure", {"type": c.status, "message": xml_text(message, 500)})
            failure.text = xml_text(_failure_text(c, [findings[i] for i in c.finding_ids if i in findings]))
        elif c.status in ("not_evaluated", "not_applicable"):
            skipped += 1
            words = c.status.replace("_", " ")
            ET.SubElement(case, "skipped", {"message": xml_text(f"{words}: {c.reason or 'no reason recorded'}", 2000)})
    if hidden.count:
        tests += 1
        case = ET.SubElement(suite, "testcase", {"classname": "portfolio_grader.hidden",
                                                 "name": f"{hidden.count} hidden checks", "time": "0"})
        if hidden.points < hidden.max_points:
            failures += 1
            ET.SubElement(case, "failure", {"type": "hidden", "message": hidden.text()}).text = (
                "Hidden checks are graded but not described; your instructor sees the details.")
    suite.set("tests", str(tests))
    suite.set("failures", str(failures))
    suite.set("skipped", str(skipped))

    root = ET.Element("testsuites", {"name": "portfolio-grader", "tests": str(tests), "failures": str(failures),
                                     "errors": "0", "time": _seconds(duration)})
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
