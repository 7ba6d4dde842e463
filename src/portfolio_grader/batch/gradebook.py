"""Gradebook CSVs from the class summary: one Canvas imports, one shaped like GitHub Classroom's export.

Canvas reads the identity columns Student, ID, SIS User ID, SIS Login ID, Section, then one column
per assignment, and a second row whose first cell is "Points Possible". It matches a student by ID
(the Canvas user id), else SIS User ID, else SIS Login ID. The roster's `id` is written as the SIS
User ID, `canvas_id` (when given) as the ID, and `login` (else the email) as the SIS Login ID.
A student who could not be graded gets an empty cell: Canvas leaves that grade unchanged.
Name an existing assignment as "Title (1234)", with its Canvas id, to update it instead of adding one.
"""

from __future__ import annotations

import csv
import io
import re
from urllib.parse import urlsplit

CANVAS_IDENTITY = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
CLASSROOM_COLUMNS = ["assignment_name", "assignment_url", "starter_code_url", "github_username", "roster_identifier",
                     "student_repository_name", "student_repository_url", "submission_timestamp", "points_awarded",
                     "points_available", "group_name"]


def _cell(text: object) -> str:
    """Text a spreadsheet will not run as a formula (=, +, -, @ first): CSV injection."""
    value = "" if text is None else str(text)
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def points(score: float, points_possible: float) -> str:
    value = round(score * points_possible / 100, 2)
    return f"{value:g}"


def canvas_csv(summary: dict) -> str:
    possible = float(summary.get("points_possible", 100))
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")  # RFC 4180, as Canvas exports
    writer.writerow(CANVAS_IDENTITY + [_cell(summary.get("assignment", "Portfolio API"))])
    writer.writerow(["Points Possible", "", "", "", "", f"{possible:g}"])
    for row in summary["students"]:
        grade = points(row["score"], possible) if row["status"] == "graded" else ""
        writer.writerow([_cell(row["name"]), row.get("canvas_id", ""), row["id"], row.get("login") or row.get("email", ""),
                         _cell(row.get("section", "")), grade])
    return buf.getvalue()


def classroom_csv(summary: dict) -> str:
    possible = float(summary.get("points_possible", 100))
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CLASSROOM_COLUMNS)
    for row in summary["students"]:
        graded = row["status"] == "graded"
        writer.writerow([
            _cell(summary.get("assignment", "")), "", "", row.get("github") or github_user(row["repo"]), row["id"],
            repo_name(row["repo"]), row["repo"] if re.match(r"^https?://", row["repo"]) else "",
            row.get("graded_at", "") if graded else "", points(row["score"], possible) if graded else "",
            f"{possible:g}", _cell(row.get("section", "")),
        ])
    return buf.getvalue()


def github_user(repo: str) -> str:
    parts = urlsplit(repo)
    if (parts.hostname or "").lower() == "github.com":
        segments = [s for s in parts.path.split("/") if s]
        return segments[0] if segments else ""
    match = re.match(r"^git@github\.com:([^/]+)/", repo)
    return match[1] if match else ""


def repo_name(repo: str) -> str:
    tail = repo.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]
    return tail.removesuffix(".git")
