"""The class's GitHub Actions job summary: what `batch` and `merge` append to $GITHUB_STEP_SUMMARY, so a
teacher's workflow needs no script of its own to show how the class did.

It holds no student names or repositories (a job summary is visible to everyone who can read the workflow
runs); the dashboard artifact has those.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from ..github import append_summary
from ..report.markdown import md, prose

TEACH_NEXT = 5  # rows of "what to teach next week"


def class_summary_markdown(summary: dict) -> str:
    totals = summary["totals"]
    lines = [f"## {md(summary.get('assignment', 'Portfolio API'), 120)}: {totals['graded']} of "
             f"{totals['students']} graded, {totals['passed']} passed", ""]
    if totals.get("mean") is not None:
        lines.append(f"Scores: mean {totals['mean']:g}, median {totals['median']:g}, lowest {totals['min']:g}, "
                     f"highest {totals['max']:g}" + (f"; pass mark {summary['pass_mark']:g}"
                                                      if summary.get("pass_mark") is not None else "") + ".")
    trouble = [f"{totals['could_not_grade']} could not be graded" if totals.get("could_not_grade") else "",
               f"{totals['pending']} not graded yet" if totals.get("pending") else "",
               f"{totals['malformed_lines']} roster lines malformed" if totals.get("malformed_lines") else ""]
    if any(trouble):
        lines.append("Needs a look: " + ", ".join(t for t in trouble if t) + " (the dashboard says why).")
    failures = summary.get("common_failures", [])[:TEACH_NEXT]
    if failures:
        lines += ["", "| what to teach next week | students | points lost |", "| --- | ---: | ---: |"]
        lines += [f"| {md(f['title'], 120)} | {f['students']} | {f['points_lost']:g} |" for f in failures]
        hint = failures[0].get("hint")
        if hint:
            lines += ["", f"Most missed, and how to fix it: {prose(hint, 400)}"]
    lines += ["", "Dashboard, Canvas and Classroom gradebooks: the job's artifact (`index.html`, `grades.csv`, "
                  "`classroom.csv`)."]
    return "\n".join(lines) + "\n"


def write_job_summary(summary: dict, env: Mapping[str, str] | None = None) -> bool:
    """Append the class summary when running in GitHub Actions; says whether it did."""
    path = (os.environ if env is None else env).get("GITHUB_STEP_SUMMARY")
    if not path:
        return False
    append_summary(path, class_summary_markdown(summary))
    return True
