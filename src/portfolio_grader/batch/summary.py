"""The class summary: one row per student from the batch folder, totals, the score distribution,
the most common failures (what to teach next week) and duplicated submissions.

It reads result.json as plain JSON (its field names are the contract), so results of an older grader
still load. The summary is what summary.json holds and what the dashboard and gradebooks render.
"""

from __future__ import annotations

import json
import re
import statistics
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .. import __version__
from ..fetch import is_git_url
from ..report.html import area_label
from ..report.verdict import verdict_of_result
from .store import BATCH_JSON, read_json, submission

SUMMARY_VERSION = "1.0"
BINS = 10  # 0-9, 10-19, ..., 90-100
TOP = 10


def read_result(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def normalize_repo(repo: str) -> str:
    """Two spellings of one repository compare equal: case of the host, `.git`, trailing slashes, ssh form."""
    text = repo.strip()
    ssh = re.match(r"^[\w.-]+@([\w.-]+):(.+)$", text)
    if ssh:
        text = f"ssh://{ssh[1]}/{ssh[2]}"
    if re.match(r"^[a-z][a-z0-9+.-]*://", text, re.I):
        parts = urlsplit(text)
        host = (parts.hostname or "").lower()
        path = parts.path.rstrip("/").removesuffix(".git")
        if host in ("github.com", "gitlab.com", "bitbucket.org"):
            path = path.lower()  # these hosts ignore case in owner/repo
            return f"{host}{path}"
        return f"{parts.scheme.lower()}://{host}{path}"
    return str(Path(text).expanduser().resolve()) if text else text


class RowCache:
    """Rows of finished submissions, re-read only when their result or error file changes."""

    def __init__(self) -> None:
        self._rows: dict[Path, tuple[float, dict]] = {}

    def get(self, path: Path, build) -> dict:
        try:
            stamp = path.stat().st_mtime_ns
        except OSError:
            return build()
        cached = self._rows.get(path)
        if cached and cached[0] == stamp:
            return dict(cached[1])
        row = build()
        self._rows[path] = (stamp, row)
        return dict(row)


def build_summary(out: Path, cache: RowCache | None = None) -> dict:
    """Everything the class outputs show, from OUT/batch.json and OUT/submissions/."""
    meta = read_json(out / BATCH_JSON) or {}
    roster = meta.get("roster", {})
    settings = meta.get("settings", {})
    assigned = set(meta.get("assigned", []))
    cache = cache or RowCache()
    rows = []
    for student in roster.get("students", []):
        row = _row(out, student, cache)
        if row["status"] == "pending" and student["id"] not in assigned:
            continue  # another shard's student
        rows.append(row)
    _flag_duplicates(rows)
    graded = [r for r in rows if r["status"] == "graded"]
    scores = [r["score"] for r in graded]
    pass_marks = {r["pass_mark"] for r in graded if r.get("pass_mark") is not None}
    return {
        "schema_version": SUMMARY_VERSION,
        "grader_version": __version__,
        "assignment": settings.get("assignment", "Portfolio API"),
        "points_possible": settings.get("points_possible", 100),
        "default_tier": settings.get("tier", "beginner"),
        "roster": {"source": roster.get("source"), "fingerprint": roster.get("fingerprint"),
                   "students": len(roster.get("students", [])), "problems": roster.get("problems", [])},
        "shards": meta.get("shards", []),
        "totals": {
            "students": len(rows),
            "graded": len(graded),
            "passed": sum(bool(r["passed"]) for r in graded),
            "could_not_grade": sum(r["status"] == "error" for r in rows),
            "pending": sum(r["status"] == "pending" for r in rows),
            "malformed_lines": len(roster.get("problems", [])),
            "mean": round(statistics.fmean(scores), 1) if scores else None,
            "median": round(statistics.median(scores), 1) if scores else None,
            "min": min(scores) if scores else None,
            "max": max(scores) if scores else None,
        },
        "pass_mark": pass_marks.pop() if len(pass_marks) == 1 else None,
        "distribution": _distribution(scores),
        "common_failures": _common_failures(graded),
        "common_findings": _common_findings(graded),
        "areas": _areas(graded),
        "duplicates": _duplicate_groups(rows),
        "students": rows,
    }


def _row(out: Path, student: dict, cache: RowCache) -> dict:
    sub = submission(out, student.get("folder") or "")
    base = {k: student.get(k, "") for k in ("id", "name", "section", "email", "canvas_id", "login", "github",
                                             "repo", "ref", "tier", "line")}
    base["tier"] = student.get("tier") or None
    base["duplicates"] = []
    result = sub.result_path
    if result is not None:
        return base | cache.get(result, lambda: _graded_fields(out, result))
    error_path = sub.folder / "error.json"
    if error_path.is_file():
        error = read_json(error_path) or {}
        return base | {"status": "error", "error_kind": error.get("kind", "could_not_grade"),
                       "error": error.get("message", ""), "finished_at": error.get("finished_at", "")}
    return base | {"status": "pending", "running": sub.running is not None}


def _graded_fields(out: Path, result: Path) -> dict:
    data = read_result(result) or {}
    areas: dict[str, dict[str, Any]] = {}
    for c in data.get("criteria", []):
        area = areas.setdefault(c.get("area", "other"), {"points": 0.0, "max_points": 0.0, "statuses": []})
        area["points"] += float(c.get("points", 0))
        area["max_points"] += float(c.get("max_points", 0))
        area["statuses"].append(c.get("status"))
    scorecard = result.parent / "scorecard.html"
    source = data.get("source") or {}
    return {
        "status": "graded",
        "score": float(data.get("score", 0)),
        "passed": bool(data.get("passed")),
        "verdict": verdict_of_result(data).headline,  # the scorecard's own wording (report/verdict.py)
        "pass_mark": data.get("pass_mark"),
        "graded_tier": data.get("tier"),
        "tier_reached": tier_reached(data),
        "criteria": {c["id"]: c.get("status") for c in data.get("criteria", []) if "id" in c},
        "missed": [{"id": c["id"], "title": c.get("title", c["id"]), "area": c.get("area", ""),
                    "hint": c.get("hint", ""), "lost": round(float(c.get("max_points", 0)) - float(c.get("points", 0)), 1)}
                   for c in data.get("criteria", []) if c.get("status") in ("fail", "partial")],
        "finding_kinds": sorted({f.get("kind", "") for f in data.get("findings", [])} - {""}),
        "areas": {k: {"points": round(v["points"], 1), "max_points": round(v["max_points"], 1),
                      "status": _area_status(v["statuses"], v["points"])} for k, v in areas.items()},
        "commit": source.get("commit"),
        "graded_at": data.get("graded_at", ""),
        "scorecard": scorecard.relative_to(out).as_posix() if scorecard.is_file() else None,
        "result": result.relative_to(out).as_posix(),
    }


def tier_reached(data: dict) -> str | None:
    """The highest tier of the scorecard's ladder whose gates hold; without a ladder, the graded tier if passed."""
    ladder = data.get("ladder") or []
    if ladder:
        reached = [step.get("tier") for step in ladder if step.get("status") == "reached"]
        return reached[-1] if reached else None
    return data.get("tier") if data.get("passed") else None


def _area_status(statuses: list[str], points: float) -> str:
    statuses = [s for s in statuses if s != "not_applicable"]  # worth 0 of 0 points: they do not colour an area
    if not statuses:
        return "not_applicable"
    if all(s == "pass" for s in statuses):
        return "pass"
    if all(s == "not_evaluated" for s in statuses):
        return "not_evaluated"
    return "fail" if points == 0 else "partial"


def _distribution(scores: list[float]) -> list[dict]:
    counts = [0] * BINS
    for s in scores:
        counts[min(int(s // (100 / BINS)), BINS - 1)] += 1
    width = 100 // BINS
    return [{"from": i * width, "to": (i + 1) * width if i < BINS - 1 else 100, "count": n} for i, n in enumerate(counts)]


def _common_failures(graded: list[dict]) -> list[dict]:
    """Criteria most students missed (failed or partial): what to teach next week, with the rubric's hint."""
    seen: dict[str, dict] = {}
    students: dict[str, list[str]] = defaultdict(list)
    lost: Counter = Counter()
    for row in graded:
        for miss in row.get("missed", []):
            seen.setdefault(miss["id"], miss)
            students[miss["id"]].append(row["id"])
            lost[miss["id"]] += miss["lost"]
    ranked = sorted(students, key=lambda cid: (-len(students[cid]), -lost[cid], cid))[:TOP]
    return [{"criterion": cid, "title": seen[cid]["title"], "area": seen[cid]["area"],
             "area_label": area_label(seen[cid]["area"]), "hint": seen[cid]["hint"], "students": len(students[cid]),
             "student_ids": students[cid], "points_lost": round(lost[cid], 1)} for cid in ranked]


def _common_findings(graded: list[dict]) -> list[dict]:
    counts = Counter(kind for row in graded for kind in row.get("finding_kinds", []))
    return [{"kind": kind, "students": n} for kind, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP]]


def _areas(graded: list[dict]) -> list[dict]:
    """Every area seen in the class, in rubric order of first appearance."""
    keys: list[str] = []
    for row in graded:
        for key in row.get("areas", {}):
            if key not in keys:
                keys.append(key)
    return [{"key": k, "label": area_label(k)} for k in keys]


def _flag_duplicates(rows: list[dict]) -> None:
    """Two students submitting one repository (or one git commit) is an academic-integrity signal."""
    for group in _duplicate_groups(rows):
        for row in rows:
            if row["id"] in group["students"]:
                row["duplicates"] += [i for i in group["students"] if i != row["id"] and i not in row["duplicates"]]


def _duplicate_groups(rows: list[dict]) -> list[dict]:
    by_repo: dict[str, list[str]] = defaultdict(list)
    by_commit: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        by_repo[normalize_repo(row["repo"])].append(row["id"])
        # a local folder reports its enclosing repository's commit: only git URLs say something
        if row.get("commit") and is_git_url(row["repo"]):
            by_commit[row["commit"]].append(row["id"])
    groups = [{"reason": "same repository", "value": repo, "students": ids} for repo, ids in by_repo.items() if len(ids) > 1]
    same_repo = [set(g["students"]) for g in groups]
    groups += [{"reason": "same commit", "value": commit, "students": ids} for commit, ids in by_commit.items()
               if len(ids) > 1 and set(ids) not in same_repo]
    return groups
