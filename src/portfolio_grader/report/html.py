"""The HTML scorecard: one self-contained, script-free page rendered from a Scorecard.

Everything a submission returned is data: the template is always autoescaped, never marks submission
text `|safe`, and the page carries a Content-Security-Policy that forbids scripts and any fetch, so
whatever a hostile submission put in a body, a header or a log can neither run nor phone home.
"""

from __future__ import annotations

import ast
import functools
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup, escape

from ..models import CheckOutcome, CriterionResult, Finding, Scorecard
from .baseline import baseline_of
from .fixes import fixes, see_more
from .stack import for_stack
from .verdict import verdict_of

TEMPLATE = "scorecard.html.j2"
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

STATUS_ORDER = ("pass", "partial", "fail", "not_evaluated", "not_applicable")
STATUS_LABELS = {"pass": "Pass", "partial": "Partial", "fail": "Fail", "not_evaluated": "Not evaluated",
                 "not_applicable": "Not applicable", "warn": "Warning"}
STATUS_ICONS = {"pass": "✓", "partial": "◐", "fail": "✗", "not_evaluated": "○", "not_applicable": "–", "warn": "!"}

AREA_LABELS = {
    "repo": "Repository and delivery",
    "contract": "API contract",
    "crud": "CRUD behaviour",
    "errors": "Error handling",
    "validation": "Input validation",
    "auth": "Authentication",
    "ownership": "Ownership and access control",
    "pagination": "Pagination and filtering",
    "ratelimit": "Rate limiting",
    "runtime": "Runtime and operations",
    "ops": "Operations",
    "webhooks": "Webhooks",
    "tenancy": "Tenant isolation",
    "ssrf": "Server-side requests",
}

FIELD_LABELS = {
    # runtime
    "kind": "Kind", "builder": "Builder", "status": "Status", "detail": "Detail", "base_url": "Base URL",
    "api_container": "API container",
    # api
    "spec_source": "Spec source", "spec_version": "OpenAPI version", "operations": "Operations",
    "operation_count": "Operations", "resources": "Resources", "spec_problem": "Spec problem",
    "spec_errors": "Spec errors",
    # facts
    "root": "Root", "stack": "Stack", "frameworks": "Frameworks", "dockerfile": "Dockerfile",
    "compose_file": "Compose file", "exposed_ports": "Exposed ports", "spec_files": "Spec files in the repo",
    "readme": "README", "readme_text": "README excerpt", "test_paths": "Tests", "ci_configs": "CI",
    "manifest": "Manifest (portfolio-grader.yaml)", "manifest_error": "Manifest error",
    "routes_in_code": "Routes found in the code",
}
RUNTIME_ORDER = ("kind", "builder", "status", "detail", "base_url")
API_ORDER = ("spec_source", "spec_version", "operations", "operation_count", "resources", "spec_problem",
             "spec_errors")
FACTS_ORDER = ("stack", "frameworks", "dockerfile", "compose_file", "exposed_ports", "readme", "readme_text",
               "test_paths", "ci_configs", "spec_files", "manifest", "manifest_error", "routes_in_code")
_PRESENCE_KEYS = {"dockerfile", "compose_file", "readme", "manifest", "builder"}
_INLINE_LIMIT = 140  # longer strings, or strings with newlines, are shown as a block
_INLINE_ITEMS = 8


# ---------------------------------------------------------------- view model


@dataclass(frozen=True)
class FieldView:
    """One label/value pair of a generic mapping (runtime, api, facts), normalised for the template."""

    label: str
    kind: Literal["text", "empty", "list", "block", "map"]
    text: str = ""
    items: tuple[str, ...] = ()
    fields: tuple[FieldView, ...] = ()
    count: int = 0


@dataclass(frozen=True)
class CriterionView:
    criterion: CriterionResult
    findings: tuple[Finding, ...]
    missing_findings: tuple[str, ...]
    checks: tuple[CheckOutcome, ...]
    missing_checks: tuple[str, ...]

    @property
    def exchanges(self) -> int:
        return sum(len(f.evidence) for f in self.findings) + sum(len(c.evidence) for c in self.checks)

    @property
    def summary(self) -> str:
        """What the closed <details> holds, e.g. "1 finding, 2 requests, 2 checks"."""
        parts = []
        for count, word in ((len(self.findings), "finding"), (self.exchanges, "request"),
                            (len(self.checks) + len(self.missing_checks), "check")):
            if count:
                parts.append(f"{count} {word}{'' if count == 1 else 's'}")
        return ", ".join(parts)

    @property
    def has_details(self) -> bool:
        return bool(self.findings or self.checks or self.missing_findings or self.missing_checks)


@dataclass(frozen=True)
class AreaView:
    key: str
    label: str
    criteria: tuple[CriterionView, ...]
    points: float
    max_points: float


def build_context(scorecard: Scorecard) -> dict[str, Any]:
    """Everything the template shows, computed here so the template only lays it out."""
    scorecard = for_stack(scorecard)  # hints fitted to the detected stack (report/stack.py)
    findings = {f.id: f for f in scorecard.findings}
    checks = {c.check: c for c in scorecard.checks}

    areas: dict[str, list[CriterionView]] = {}
    for criterion in scorecard.criteria:
        view = CriterionView(
            criterion=criterion,
            findings=tuple(findings[i] for i in criterion.finding_ids if i in findings),
            missing_findings=tuple(i for i in criterion.finding_ids if i not in findings),
            checks=tuple(checks[c] for c in criterion.checks if c in checks),
            missing_checks=tuple(c for c in criterion.checks if c not in checks),
        )
        areas.setdefault(criterion.area, []).append(view)
    area_views = [
        AreaView(key=key, label=area_label(key), criteria=tuple(views),
                 points=sum(v.criterion.points for v in views), max_points=sum(v.criterion.max_points for v in views))
        for key, views in areas.items()
    ]

    counts = {status: 0 for status in STATUS_ORDER}
    for criterion in scorecard.criteria:
        counts[criterion.status] = counts.get(criterion.status, 0) + 1

    max_total = sum(c.max_points for c in scorecard.criteria)
    runtime = runtime_view(scorecard)
    return {
        "sc": scorecard,
        "verdict": verdict_of(scorecard),  # the one wording every format uses (report/verdict.py)
        "score_pct": _percent(scorecard.score),
        "pass_pct": _percent(scorecard.pass_mark),
        "max_total": max_total,
        "points_text": points_text(scorecard.criteria),
        "fixes": fixes(scorecard),  # "Fix these first" (report/fixes.py)
        "see_more": see_more(scorecard),  # "Help the grader see more": not evaluated, with the manifest lines
        "counts": counts,
        "failed_gates": [c for c in scorecard.criteria if c.gate_failed],
        "commit_short": short_commit(scorecard.source.commit),
        "graded_at": format_time(scorecard.graded_at),
        "areas": area_views,
        "runtime_fields": mapping_fields(runtime, RUNTIME_ORDER, always=("builder",)),
        "runtime_status": str(scorecard.runtime.get("status") or ""),
        "builder": str(runtime.get("builder") or ""),
        "base_url": str(scorecard.runtime.get("base_url") or ""),
        "api_fields": mapping_fields({k: v for k, v in scorecard.api.items() if k != "auth"}, API_ORDER),
        "facts_fields": mapping_fields(scorecard.facts, FACTS_ORDER),
        "total_seconds": sum(s.seconds for s in scorecard.stages),
        "exchange_count": sum(len(f.evidence) for f in scorecard.findings)
        + sum(len(c.evidence) for c in scorecard.checks),
        "baseline": baseline_of(scorecard),  # "Since last grade", when graded with --baseline
        "hidden_count": sum(c.visibility == "hidden" for c in scorecard.criteria),
        "replay_shells": replay_shells(scorecard),
    }


def replay_shells(scorecard: Scorecard) -> dict[str, str]:
    """Finding id -> the plain shell version that reproduces it on the learner's own app (replay.py makes it; the
    template shows it as text). A finding the replay cannot rebuild has none; a grader bug costs the block only."""
    from ..replay import shell_version

    shells = {}
    for finding in scorecard.findings:
        try:
            shell = shell_version(scorecard, finding)
        except Exception:  # noqa: BLE001 - the scorecard is still written, without this finding's shell lines
            shell = None
        if shell:
            shells[finding.id] = shell
    return shells


# ---------------------------------------------------------------- formatting helpers


def format_points(value: float | int | None) -> str:
    """93.0 -> "93", 92.5 -> "92.5", 1/3 -> "0.3"."""
    if value is None:
        return "—"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    rounded = round(float(value), 1)
    return str(int(rounded)) if rounded == int(rounded) else f"{rounded:.1f}"


def points_text(criteria: Iterable[CriterionResult]) -> str:
    """What the criteria earned of what they could: "77 of 100 points" (every view's criteria header)."""
    criteria = list(criteria)
    earned = sum(c.points for c in criteria)
    possible = sum(c.max_points for c in criteria)
    return f"{format_points(earned)} of {format_points(possible)} point{'' if possible == 1 else 's'}"


def format_seconds(value: float) -> str:
    if value < 0.1:
        return f"{value * 1000:.0f} ms"
    if value < 60:
        return f"{value:.1f} s"
    minutes, seconds = divmod(value, 60)
    return f"{int(minutes)} min {seconds:.0f} s"


def format_time(value: str) -> str:
    """An ISO timestamp as "2025-03-14 10:22:05 UTC"; anything else unchanged."""
    if not value:
        return ""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    zone = moment.tzname() or ""
    return moment.strftime("%Y-%m-%d %H:%M:%S") + (f" {zone}" if zone else "")


def short_commit(commit: str | None) -> str:
    if not commit:
        return ""
    is_sha = len(commit) >= 7 and all(ch in "0123456789abcdefABCDEF" for ch in commit)
    return commit[:7] if is_sha else commit


def area_label(area: str) -> str:
    return AREA_LABELS.get(area) or (area.replace("_", " ").replace("-", " ").capitalize() or "Other")


def message_text(headers: Mapping[str, str], body: str | None) -> str:
    """Headers then the body, like an HTTP message without its first line."""
    lines = [f"{name}: {value}" for name, value in headers.items()]
    text = "\n".join(lines)
    if body:
        text = f"{text}\n\n{body}" if text else body
    return text


INLINE_CODE = re.compile(r"`([^`\n]+)`")


def inline_code(text: object) -> Markup:
    """Rubric or check prose with its `code` spans as <code>: every piece is escaped first, so text from a
    submission stays text; only the grader's own <code> tags are markup."""
    text = "" if text is None else str(text)
    out, last = [], 0
    for match in INLINE_CODE.finditer(text):
        out.append(escape(text[last:match.start()]))
        out.append(Markup("<code>%s</code>") % match.group(1))
        last = match.end()
    out.append(escape(text[last:]))
    return Markup("").join(out)


def excerpt_text(text: str | None) -> str:
    """A file excerpt as shown: a Python repr of a parsed document (the spec as a dict) becomes JSON, also when
    the excerpt was cut short; anything else unchanged. Response bodies never go through this: they are what
    the server said."""
    if not text or text[0] not in "{[" or "'" not in text:
        return text or ""
    try:
        json.loads(text)
        return text  # already JSON
    except ValueError:
        pass
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return _repr_to_json(text)
    if isinstance(value, (dict, list)):
        try:
            return json.dumps(value, indent=2, ensure_ascii=False, default=str)
        except (TypeError, ValueError):
            return text
    return text


_REPR_TOKEN = re.compile(r"""'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|\b(?:True|False|None)\b""")
_REPR_WORDS = {"True": "true", "False": "false", "None": "null"}


def _repr_to_json(text: str) -> str:
    """A repr cut short (no closing brackets): its strings and constants in JSON spelling, token by token."""
    def token(match: re.Match) -> str:
        word = match.group(0)
        if word in _REPR_WORDS:
            return _REPR_WORDS[word]
        try:
            return json.dumps(ast.literal_eval(word), ensure_ascii=False)
        except (ValueError, SyntaxError):
            return word

    return _REPR_TOKEN.sub(token, text)


def runtime_view(scorecard: Scorecard) -> dict[str, Any]:
    """The runtime block as it stands when the report is read: a container the grade started was removed at
    its end, so "running" reads "stopped" (with what it was); a live deployment is not the grader's to stop."""
    runtime = dict(scorecard.runtime)
    runtime.pop("logs", None)  # shown from scorecard.logs
    if runtime.get("kind") in ("docker", "compose") and runtime.get("status") == "running":
        runtime["status"] = "stopped: it ran during the grade and was removed when the grade ended"
        if runtime.get("base_url"):
            runtime["base_url"] = f"{runtime['base_url']} (during the grade; no longer served)"
    return runtime


def _percent(value: float) -> str:
    if not math.isfinite(value):
        return "0"
    return f"{min(max(value, 0.0), 100.0):.1f}"


def _label(key: str) -> str:
    return FIELD_LABELS.get(key) or key.replace("_", " ").capitalize()


def _scalar(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return format_points(value)
    if isinstance(value, (list, tuple)) and all(not isinstance(v, (list, tuple, dict)) for v in value):
        return "  ".join(_scalar(v) for v in value)  # ("GET", "/books", "app.py:12")
    if isinstance(value, Mapping):
        return ", ".join(f"{k}: {_scalar(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return "; ".join(_scalar(v) for v in value)
    return str(value)


def to_field(key: str, value: Any, depth: int = 0) -> FieldView:
    label = _label(key)
    if value is None or value == "" or value == [] or value == {} or value == ():
        if value is None and key in _PRESENCE_KEYS:
            empty = "not found" if key != "builder" else "not recorded"
        elif value is None:
            empty = "—"
        else:
            empty = "none"
        return FieldView(label=label, kind="empty", text=empty)
    if isinstance(value, Mapping):
        if depth == 0:
            return FieldView(label=label, kind="map", count=len(value),
                             fields=tuple(to_field(str(k), v, depth + 1) for k, v in value.items()))
        return FieldView(label=label, kind="text", text=_scalar(value))
    if isinstance(value, (list, tuple)):
        items = tuple(_scalar(v) for v in value)
        if len(items) <= _INLINE_ITEMS and sum(len(i) for i in items) <= _INLINE_LIMIT and not any("\n" in i for i in items):
            return FieldView(label=label, kind="list", items=items, count=len(items))
        return FieldView(label=label, kind="block", text="\n".join(items), count=len(items))
    text = _scalar(value)
    if "\n" in text or len(text) > _INLINE_LIMIT:
        return FieldView(label=label, kind="block", text=text, count=text.count("\n") + 1)
    return FieldView(label=label, kind="text", text=text)


def mapping_fields(mapping: Mapping[str, Any], order: Iterable[str], always: Iterable[str] = ()) -> list[FieldView]:
    """The mapping as fields: known keys first in a sensible order, then the rest as they come.

    Keys in `always` are shown even when absent (the scorecard must say which builder was used).
    """
    order = list(order)
    keys = [k for k in order if k in mapping or k in always]
    keys += [k for k in mapping if k not in keys]
    return [to_field(k, mapping.get(k)) for k in keys]


# ---------------------------------------------------------------- rendering


@functools.cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("portfolio_grader", "report/templates"),
        autoescape=True,  # always, whatever the template's name: submission text is never markup
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["pts"] = format_points
    env.filters["secs"] = format_seconds
    env.filters["area_label"] = area_label
    env.filters["prose"] = inline_code  # `code` spans of rubric and check text as <code>, the rest escaped
    env.filters["excerpt"] = excerpt_text
    env.globals["message_text"] = message_text
    env.globals["status_labels"] = STATUS_LABELS
    env.globals["status_icons"] = STATUS_ICONS
    return env


def render_html(scorecard: Scorecard) -> str:
    """The scorecard as one self-contained HTML page (inline CSS, no JavaScript, no external resources)."""
    return environment().get_template(TEMPLATE).render(build_context(scorecard))
