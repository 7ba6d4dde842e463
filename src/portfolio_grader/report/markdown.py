"""The Markdown summary: the PR comment and the GitHub job summary, rendered from a Scorecard.

It is the learner's view (see learner.py): hidden criteria are counted, never named. Everything that
came from a submission or a rubric goes through `md()`, which neutralises raw HTML, Markdown syntax,
table pipes and @mentions; reproduction commands go in fenced blocks longer than any backtick run
they hold. The text is bounded (a PR comment holds at most 65,536 characters): findings are dropped
from the details, most severe kept, until it fits.
"""

from __future__ import annotations

import html
import re
import unicodedata

from ..models import CriterionResult, Finding, Scorecard
from .baseline import BaselineDiff, CriterionChange, baseline_of
from .html import area_label, format_points, format_time, points_text, short_commit
from .learner import hidden_summary, visible_criteria, visible_findings
from .fixes import fixes, see_more
from .stack import for_stack
from .verdict import verdict_of
from .terminal import clean  # one printable line: control and bidi characters dropped, bounded

MAX_CHARS = 60_000  # under GitHub's 65,536 for a comment, with room for the marker
MAX_FINDINGS = 25
MAX_STEPS = 4  # reproduction commands shown per finding
STATUS_EMOJI = {"pass": "✅", "partial": "🟡", "fail": "❌", "not_evaluated": "⚪", "not_applicable": "➖"}
STATUS_WORDS = {"pass": "pass", "partial": "partial", "fail": "fail", "not_evaluated": "not evaluated",
                "not_applicable": "not applicable"}
LADDER_MARKS = {"reached": "✓", "missed": "✗", "not_graded": "–"}
_SEVERITY_ORDER = {"critical": 0, "high": 1, "medium": 2, "low": 3, "info": 4}
_MD_PUNCT = re.compile(r"([\\`*_{}\[\]()#+\-!|~])")
_ORDERED = re.compile(r"^(\d+)([.)])")


# ---------------------------------------------------------------- escaping


def md(text: object, limit: int = 300) -> str:
    """Submission or rubric text as inert Markdown: no HTML, no links or images, no table breaks, no pings."""
    return _ORDERED.sub(r"\1\\\2", _inert(clean(text, limit)))  # "1. x" would start a list


def _inert(line: str) -> str:
    line = html.escape(line, quote=False)  # & < > as entities: no raw HTML
    line = _MD_PUNCT.sub(r"\\\1", line)  # emphasis, code, links, images, headings, lists, table pipes
    return line.replace("@", "@\u200b")  # no @mention notifications from a hostile string


def prose(text: object, limit: int = 300) -> str:
    """Rubric or check prose as inert Markdown whose `code` spans stay code spans (no literal backticks)."""
    parts = clean(text, limit).split("`")
    if len(parts) % 2 == 0:  # an unpaired backtick: the last one is literal
        parts[-2:] = ["`".join(parts[-2:])]
    text = "".join((code(part) if part.strip() else _inert(part)) if i % 2 else _inert(part)
                   for i, part in enumerate(parts))
    return _ORDERED.sub(r"\1\\\2", text)


def fenced(text: str, limit: int = 2000, lang: str = "") -> str:
    """A fenced code block whose fence is longer than any backtick run inside, so the text cannot close it."""
    body = "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch) not in ("Cc", "Cf", "Cs"))
    if len(body) > limit:
        body = body[: limit - 1] + "…"
    longest = max((len(run) for run in re.findall(r"`+", body)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{lang}\n{body}\n{fence}"


def code(identifier: str) -> str:
    """An inline code span for grader identifiers (finding kinds, criterion ids)."""
    text = clean(identifier, 120)
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    ticks = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


# ---------------------------------------------------------------- sections


def _header(sc: Scorecard, threshold: float | None) -> list[str]:
    judged = verdict_of(sc, learner=True)
    icon = "✅" if judged.passed else "❌"
    lines = [f"## {icon} {md(sc.name, 120)}: {format_points(sc.score)}/100, {judged.headline}", ""]
    facts = [f"**Score** {format_points(sc.score)}/100 (pass mark {format_points(sc.pass_mark)}, "
             f"{judged.distance}{' it' if judged.distance == 'at' else ''})"]
    if threshold is not None:
        held = verdict_of(sc, learner=True, threshold=threshold)
        facts.append(f"**threshold** {format_points(threshold)}: {'met' if held.passed else 'not met'}")
    if judged.gates_met:
        facts.append("**gates** met")
    else:
        facts.append("**gates** not met: " + "; ".join(md(name, 100) for name in judged.gate_names))
    facts.append(f"**rubric** {md(sc.rubric.name, 60)} {md(sc.rubric.version, 40)}")
    if sc.source.commit:
        facts.append(f"**commit** {md(short_commit(sc.source.commit), 40)}")
    lines += [" · ".join(facts), ""]
    ladder = _ladder(sc)
    if ladder:
        lines += [ladder, ""]
    return lines


def _ladder(sc: Scorecard) -> str:
    steps = getattr(sc, "ladder", None) or []
    if not steps:
        return ""
    hidden_titles = {c.title for c in sc.criteria if c.visibility == "hidden"}
    parts = []
    for step in steps:
        part = f"{md(step.tier, 40)} {LADDER_MARKS.get(step.status, '?')}"
        missing = [t for t in step.missing_gates if t not in hidden_titles]
        unnamed = len(step.missing_gates) - len(missing)
        names = [md(t, 80) for t in missing] + ([f"{unnamed} hidden"] if unnamed else [])
        if step.status == "missed" and names:
            part += f" (missing: {'; '.join(names)})"
        parts.append(part)
    return "**Ladder** " + " · ".join(parts)


def _since(sc: Scorecard, diff: BaselineDiff) -> list[str]:
    sign = "+" if diff.score_delta > 0 else ""
    when = format_time(diff.previous_graded_at)
    was = ", ".join(x for x in (md(short_commit(diff.previous_commit), 40) if diff.previous_commit else "",
                                md(when, 40) if when else "") if x)
    lines = ["### Since last grade", "",
             f"Score {format_points(diff.previous_score)} → {format_points(sc.score)} "
             f"(**{sign}{format_points(diff.score_delta)}**)" + (f", compared with the grade of {was}" if was else "")
             + ("" if diff.same_rubric else f"; the previous grade used rubric {md(diff.previous_rubric, 80)}"), ""]
    for label, changes in (("Improved", diff.improved), ("Regressed", diff.regressed)):
        shown = [ch for ch in changes if ch.visibility != "hidden"]
        items = [_change(ch) for ch in shown]
        hidden = len(changes) - len(shown)
        if hidden:
            items.append(f"{hidden} hidden check{'s' if hidden != 1 else ''}")
        if items:
            lines.append(f"- **{label}:** " + "; ".join(items))
    for label, kinds in (("New problems", diff.new_kinds), ("Fixed problems", diff.fixed_kinds)):
        visible = [k for k in kinds if not k.hidden]
        items = [code(k.kind) + (f" ×{max(k.before, k.after)}" if max(k.before, k.after) > 1 else "") for k in visible]
        if len(visible) < len(kinds):
            items.append(f"{len(kinds) - len(visible)} in hidden checks")
        if items:
            lines.append(f"- **{label}:** " + ", ".join(items))
    if diff.unchanged:
        lines.append("- Nothing changed since the last grade.")
    return lines + [""]


def _change(ch: CriterionChange) -> str:
    sign = "+" if ch.delta > 0 else ""
    return (f"{md(ch.title, 100)} ({STATUS_WORDS[ch.before]} → {STATUS_WORDS[ch.after]}, "
            f"{sign}{format_points(ch.delta)} pts)")


def _fixes(sc: Scorecard) -> list[str]:
    items = fixes(sc, learner=True)[:3]
    unseen = see_more(sc, learner=True)
    lines: list[str] = []
    if items:
        lines += ["### Fix these first", ""]
        for number, item in enumerate(items, 1):
            fix = item.fix
            line = f"{number}. **{md(fix.title, 140)}** ({'gate, ' if fix.gate else ''}+{format_points(fix.points)} pts)"
            if fix.problem:
                where = f"on {code(fix.operation)}: " if fix.operation else ""
                line += f": {where}{prose(fix.problem, 400)}"
            if item.also:
                line += f" _One cause: it {md(item.also_text, 300)}._"
            if fix.hint:
                line += f"<br>How to fix: {prose(fix.hint, 400)}"
            lines.append(line)
        lines.append("")
    elif any(c.status in ("fail", "partial") for c in sc.criteria):
        lines += ["### Fix these first", "", "Only hidden checks lost points.", ""]
    elif not unseen:
        lines += ["Every criterion earned its full points.", ""]
    else:
        lines += ["Nothing to fix in what the grader saw.", ""]
    if unseen:
        lines += ["### Help the grader see more", "",
                  "Not faults of the API: the grader could not check these, so they earn nothing yet. "
                  "The lines shown go in `portfolio-grader.yaml` in your repository.", ""]
        for blind in unseen:
            reason = f": {prose('; '.join(blind.reasons), 400)}" if blind.reasons else ""
            lines.append(f"- **{md(blind.criterion.title, 140)}** ({format_points(blind.criterion.max_points)} "
                         f"points not graded){reason}")
            for hint in blind.manifest_hints:
                lines += ["", "  " + fenced(hint, limit=1000, lang="yaml").replace("\n", "\n  ")]
        lines.append("")
    return lines


def _criteria(sc: Scorecard) -> list[str]:
    shown = visible_criteria(sc)
    counts = {s: sum(c.status == s for c in shown) for s in STATUS_EMOJI}
    summary = " · ".join(f"{n} {STATUS_WORDS[s]}" for s, n in counts.items() if n) or "none"
    hidden = hidden_summary(sc)
    worth = points_text(shown) + (" shown" if hidden.count else "")
    lines = [f"<details><summary>All criteria: {html.escape(summary)} · {worth}</summary>", "",
             "| | Criterion | Area | Points | |", "| --- | --- | --- | ---: | --- |"]
    for c in shown:
        lines.append(f"| {STATUS_EMOJI.get(c.status, '')} | {md(c.title, 140)} | {md(area_label(c.area), 60)} "
                     f"| {format_points(c.points)}/{format_points(c.max_points)} | {_criterion_note(c)} |")
    if hidden.count:
        lines += ["", f"_{hidden.text()} (graded; instructors see the details)._"]
    return lines + ["", "</details>", ""]


def _criterion_note(c: CriterionResult) -> str:
    tags = []
    if c.gate:
        tags.append("gate")
    if c.owasp:
        tags.append(f"OWASP {md(c.owasp, 20)}")
    if c.status in ("not_evaluated", "not_applicable") and c.reason:
        tags.append(f"{STATUS_WORDS[c.status]}: {prose(c.reason, 200)}")
    return " · ".join(tags)


def _findings(findings: list[Finding], total: int) -> list[str]:
    if not total:
        return []
    more = f" (the {len(findings)} most severe)" if len(findings) < total else ""
    lines = [f"<details><summary>Findings: {total}{html.escape(more)}</summary>", ""]
    for f in findings:
        head = f"**{f.severity.upper()}** {code(f.kind)}"
        if f.operation:
            head += f" · {md(f.operation, 120)}"
        lines += [head, "", prose(f.message, 500), ""]
        if f.hint:
            lines += [f"_How to fix:_ {prose(f.hint, 400)}", ""]
        if f.evidence:  # the exchanges in order are the reproduction: setup requests, then the one that shows it
            steps = [(f"# {clean(e.note, 200)}\n" if e.note else "") + e.curl for e in f.evidence[:MAX_STEPS]]
            lines += ["Reproduce:", "", fenced("\n".join(steps), limit=4000, lang="sh"), ""]
    return lines + ["</details>", ""]


def _footer(sc: Scorecard) -> list[str]:
    return [f"<sub>portfolio-grader {md(sc.grader_version, 40)} · rubric {md(sc.rubric.name, 60)} "
            f"{md(sc.rubric.version, 40)} · the full scorecard, with every request and response, "
            "is in the scorecard artifact</sub>", ""]


# ---------------------------------------------------------------- rendering


def render_markdown(scorecard: Scorecard, max_chars: int = MAX_CHARS, threshold: float | None = None) -> str:
    """The summary: verdict, score, ladder, what changed, top fixes, then collapsible criteria and findings.

    `threshold` is a CI gate's own score threshold (the GitHub Action's input), shown beside the pass mark.
    """
    sc = for_stack(scorecard)  # hints fitted to the detected stack
    head = _header(sc, threshold)
    diff = baseline_of(sc)
    if diff is not None:
        head += _since(sc, diff)
    head += _fixes(sc) + _criteria(sc)
    findings = sorted(visible_findings(sc), key=lambda f: _SEVERITY_ORDER.get(f.severity, 9))
    tail = _footer(sc)
    keep = min(len(findings), MAX_FINDINGS)
    while True:
        text = "\n".join(head + _findings(findings[:keep], len(findings)) + tail)
        if len(text) <= max_chars or keep == 0:
            break
        keep = keep // 2 if keep > 4 else keep - 1
    if len(text) > max_chars:  # a pathological rubric: cut, and say so
        text = text[: max_chars - 80].rsplit("\n", 1)[0] + "\n\n_(summary truncated; see the scorecard)_\n"
    return text
