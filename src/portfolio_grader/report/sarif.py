"""SARIF 2.1.0: findings for code-scanning tools (GitHub's Security tab, IDE viewers).

Rules are finding kinds; results are findings. A finding is located where its evidence points:
a repository file (`Evidence.file`, "path" or "path:line") becomes a physical location relative to the
repo root; an HTTP finding gets a logical location "METHOD /path" and, when inspect found the route's
handler in the code (`facts.routes_in_code`), the handler's file and line as its physical location.
Every result has a physical location (GitHub's upload refuses one without): a finding that points nowhere
else is placed on the spec file that declares its operation, else the file that ran the API (Dockerfile,
compose file), else the README; a live deployment graded without a repository, on its URL.
A stable partial fingerprint (kind, operation, file) lets GitHub follow an alert across pushes.
Code scanning alerts are learner-facing: findings only hidden criteria rest on are left out.
Validated against the OASIS SARIF 2.1.0 schema in the tests.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any
from urllib.parse import quote

from ..models import CriterionResult, Finding, Scorecard
from .learner import hidden_summary, visible_findings

SCHEMA_URI = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
SRCROOT = "SRCROOT"
LEVELS = {"critical": "error", "high": "error", "medium": "warning", "low": "note", "info": "note"}
# GitHub ranks security alerts by this CVSS-like number (string), see its SARIF support docs.
SECURITY_SEVERITY = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "3.0", "info": "1.0"}
_SEVERITY_RANK = {"critical": 0, "high": 1, "medium": 2, "low": 3, "info": 4}
_PARAM = re.compile(r"\{[^}/]*\}|<[^>/]*>|:[A-Za-z_][A-Za-z0-9_]*")
_LINE = re.compile(r"^(?P<path>.+?):(?P<line>\d+)$")
_WEB_URI = re.compile(r"^(https?|ssh)://[^\s<>\"{}|\\^`]+$")


# ---------------------------------------------------------------- locations


def split_location(where: str) -> tuple[str, int | None]:
    """"app/main.py:28" -> ("app/main.py", 28); "Dockerfile" -> ("Dockerfile", None)."""
    match = _LINE.match(where.strip())
    if match and int(match["line"]) >= 1:
        return match["path"], int(match["line"])
    return where.strip(), None


def _physical(path: str, line: int | None) -> dict[str, Any]:
    path = path.replace("\\", "/")
    while path.startswith("./"):
        path = path[2:]
    location: dict[str, Any] = {"artifactLocation": {"uri": quote(path.lstrip("/")), "uriBaseId": SRCROOT}}
    if line:
        location["region"] = {"startLine": line}
    return location


def _template(path: str) -> tuple[str, ...]:
    """Path segments with every parameter ({id}, <int:id>, :id) as "{}", for matching spec to code."""
    return tuple(_PARAM.sub("{}", seg) for seg in path.strip().rstrip("/").split("/") if seg)


def handler_location(operation: str, routes: list[Any]) -> tuple[str, int | None] | None:
    """The file:line of the route handler for "METHOD /path": exact template first, else the longest
    code route the spec path ends with (a router mounted under a prefix, e.g. /api/v1)."""
    method, _, path = operation.partition(" ")
    want = _template(path)
    best: tuple[int, str] | None = None
    for route in routes:
        if not isinstance(route, (list, tuple)) or len(route) != 3:
            continue
        r_method, r_path, where = (str(x) for x in route)
        if r_method not in ("*", method.upper()):
            continue
        got = _template(r_path)
        if got == want:
            return split_location(where)
        if got and len(got) < len(want) and want[-len(got):] == got and (best is None or len(got) > best[0]):
            best = (len(got), where)
    return split_location(best[1]) if best else None


def _fallback(finding: Finding, facts: dict[str, Any], deployment: str | None) -> dict[str, Any]:
    """Where a finding with no file and no handler is shown: see the module docstring."""
    specs = facts.get("spec_files") or []
    files = ([specs[0]] if finding.operation and specs else []) + [facts.get(k) for k in ("dockerfile", "compose_file",
                                                                                            "readme")]
    where = next((f for f in files if isinstance(f, str) and f), None)
    if where is None and deployment:
        return {"artifactLocation": {"uri": deployment}}
    return _physical(where or "README.md", None)


def _locations(finding: Finding, routes: list[Any], fallback: dict[str, Any]) -> list[dict[str, Any]]:
    locations: list[dict[str, Any]] = []
    for ev in finding.evidence:
        if ev.file:
            path, line = split_location(ev.file)
            locations.append({"physicalLocation": _physical(path, line)})
            break
    if finding.operation:
        logical: dict[str, Any] = {"logicalLocations": [{"name": finding.operation, "kind": "function"}]}
        handler = handler_location(finding.operation, routes) if not locations else None
        if handler:
            logical["physicalLocation"] = _physical(*handler)
        if locations:
            locations[0].update(logical)
        else:
            locations.append(logical)
    if not locations:
        locations.append({})
    locations[0].setdefault("physicalLocation", fallback)
    return locations


# ---------------------------------------------------------------- rules and results


def _rule(kind: str, findings: list[Finding], owasp: dict[str, str]) -> dict[str, Any]:
    worst = min(findings, key=lambda f: _SEVERITY_RANK.get(f.severity, 9))
    words = kind.replace("_", " ").replace("-", " ")
    tags = ["security"] if worst.severity in ("critical", "high") or kind in owasp else []
    if kind in owasp:
        tags.append(f"OWASP-{owasp[kind]}")
    rule: dict[str, Any] = {
        "id": kind,
        "name": "".join(w.capitalize() for w in words.split()) or kind,
        "shortDescription": {"text": words.capitalize()},
        "defaultConfiguration": {"level": LEVELS.get(worst.severity, "warning")},
        "properties": {"tags": tags, "security-severity": SECURITY_SEVERITY.get(worst.severity, "5.0")},
    }
    hint = next((f.hint for f in findings if f.hint), "")
    if hint:
        rule["help"] = {"text": hint}
    return rule


def _fingerprint(finding: Finding) -> str:
    files = ",".join(e.file for e in finding.evidence if e.file)
    return hashlib.sha256(f"{finding.kind}|{finding.operation or ''}|{files}".encode()).hexdigest()[:32]


def render_sarif(scorecard: Scorecard) -> str:
    sc = scorecard
    routes = sc.facts.get("routes_in_code")
    routes = routes if isinstance(routes, list) else []  # older result.json stored only a count
    owasp: dict[str, str] = {}
    criterion_of: dict[str, CriterionResult] = {}
    for criterion in sc.criteria:
        for fid in criterion.finding_ids:
            criterion_of.setdefault(fid, criterion)
    for f in sc.findings:
        c = criterion_of.get(f.id)
        if c is not None and c.owasp:
            owasp.setdefault(f.kind, c.owasp)

    deployment = sc.source.url if not sc.source.repo else None  # a live URL graded without a repository
    findings = visible_findings(sc)  # code scanning is learner-facing: hidden criteria stay hidden
    by_kind: dict[str, list[Finding]] = {}
    for f in findings:
        by_kind.setdefault(f.kind, []).append(f)
    kinds = sorted(by_kind)
    rules = [_rule(k, by_kind[k], owasp) for k in kinds]
    index = {k: i for i, k in enumerate(kinds)}

    results = []
    for f in findings:
        result: dict[str, Any] = {
            "ruleId": f.kind,
            "ruleIndex": index[f.kind],
            "level": LEVELS.get(f.severity, "warning"),
            "message": {"text": f.message or f.kind},
            "partialFingerprints": {"portfolioGrader/v1": _fingerprint(f)},
            "properties": {"severity": f.severity, "check": f.check, "findingId": f.id,
                           "reproduce": [e.curl for e in f.evidence]},
        }
        c = criterion_of.get(f.id)
        if c is not None:
            result["properties"]["criterion"] = c.id
        result["locations"] = _locations(f, routes, _fallback(f, sc.facts, deployment))
        results.append(result)

    run: dict[str, Any] = {
        "tool": {"driver": {"name": "portfolio-grader", "version": sc.grader_version,
                            "semanticVersion": sc.grader_version, "rules": rules}},
        "originalUriBaseIds": {SRCROOT: {"description": {"text": "The root of the graded repository."}}},
        "results": results,
        "invocations": [{"executionSuccessful": sc.runtime.get("status") in (None, "running"),
                         "properties": {"score": sc.score, "passed": sc.passed, "tier": sc.tier,
                                        "rubric": f"{sc.rubric.name} {sc.rubric.version}"}}],
        "properties": {"name": sc.name, "hiddenChecks": hidden_summary(sc).count},
    }
    if sc.source.repo and _WEB_URI.match(sc.source.repo) and sc.source.commit:
        run["versionControlProvenance"] = [{"repositoryUri": sc.source.repo, "revisionId": sc.source.commit,
                                            **({"branch": sc.source.ref} if sc.source.ref else {})}]
    log = {"$schema": SCHEMA_URI, "version": "2.1.0", "runs": [run]}
    return json.dumps(log, indent=2, ensure_ascii=False) + "\n"
