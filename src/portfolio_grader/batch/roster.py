"""The class roster: a CSV or YAML file of students and their submissions, read leniently.

A line that cannot be graded (no repo, an unknown tier, a student id seen before, a ref that looks
like a command-line option, too many fields) becomes a RosterProblem carrying its line number; the
other lines still run. `shard(students, k, n)` picks a deterministic 1/N of the roster.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

# Header spellings people use, normalised (lower case, spaces/hyphens as underscores) -> our field.
ALIASES = {
    "id": "id", "student_id": "id", "studentid": "id", "sis_user_id": "id",
    "name": "name", "student": "name", "student_name": "name", "full_name": "name",
    "repo": "repo", "repo_url": "repo", "repository": "repo", "repository_url": "repo", "url": "repo",
    "git_url": "repo", "submission": "repo",
    "ref": "ref", "branch": "ref", "tag": "ref", "commit": "ref",
    "tier": "tier", "rubric": "tier", "level": "tier",
    "section": "section", "group": "section", "cohort": "section",
    "email": "email", "e_mail": "email",
    "canvas_id": "canvas_id", "canvas_user_id": "canvas_id",
    "login": "login", "sis_login_id": "login",
    "github": "github", "github_username": "github", "github_user": "github",
}
REQUIRED = ("id", "name", "repo")
_OPTION_LIKE = re.compile(r"^-")
_BAD_TEXT = re.compile(r"[\x00-\x1f\x7f]")


class RosterError(Exception):
    """The roster as a whole cannot be read (missing file, no header, YAML syntax): nothing runs."""


@dataclass(frozen=True)
class Student:
    id: str
    name: str
    repo: str
    line: int  # 1-based line of the roster where the entry starts
    ref: str | None = None
    tier: str | None = None  # None: the batch's --tier
    section: str = ""
    email: str = ""
    canvas_id: str = ""
    login: str = ""
    github: str = ""

    @property
    def folder(self) -> str:
        return student_folder(self.id)

    def to_json(self) -> dict:
        return asdict(self)

    def spec(self, default_tier: str) -> dict:
        """What decides the grade: a finished result graded from another spec is stale."""
        return {"repo": self.repo, "ref": self.ref, "tier": self.tier or default_tier}


@dataclass(frozen=True)
class RosterProblem:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass
class Roster:
    source: str
    students: list[Student] = field(default_factory=list)
    problems: list[RosterProblem] = field(default_factory=list)

    def fingerprint(self) -> str:
        """Identifies the roster's content, so shards of different rosters are never merged silently."""
        digest = hashlib.sha256()
        for s in self.students:
            digest.update(repr((s.id, s.repo, s.ref, s.tier)).encode())
        return digest.hexdigest()[:16]


def student_folder(student_id: str) -> str:
    """A filesystem-safe folder name for a student id; ids that are not already safe get a short hash."""
    safe = re.sub(r"[^a-z0-9._-]+", "-", student_id.lower()).strip("-.")[:48]
    if safe == student_id and safe:
        return safe
    return f"{safe or 'student'}-{hashlib.sha256(student_id.encode()).hexdigest()[:8]}"


def parse_shard(text: str) -> tuple[int, int]:
    """"2/5" -> (2, 5); ValueError with a readable message otherwise."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text or "")
    if not match:
        raise ValueError(f"--shard must look like K/N (for example 2/5), not {text!r}")
    k, n = int(match[1]), int(match[2])
    if not (n >= 1 and 1 <= k <= n):
        raise ValueError(f"--shard {text}: K must be between 1 and N")
    return k, n


def shard(students: list[Student], k: int, n: int) -> list[Student]:
    """Shard K of N: students sorted by id, dealt round-robin, so every shard holds 1/N of them and the
    assignment depends only on the set of ids (not on the roster's order or on the machine)."""
    ordered = sorted(students, key=lambda s: s.id)
    chosen = {s.id for i, s in enumerate(ordered) if i % n == k - 1}
    return [s for s in students if s.id in chosen]


def load_roster(path: Path | str, known_tiers: list[str] | None = None) -> Roster:
    """Read a .csv or .yaml/.yml roster. Raises RosterError when nothing can be read at all."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")  # Excel writes a byte-order mark
    except (OSError, UnicodeDecodeError) as exc:
        raise RosterError(f"{path}: cannot read the roster ({exc})") from None
    if known_tiers is None:
        from ..rubric import available

        known_tiers = available() + ["auto"]
    roster = Roster(source=str(path))
    entries = _yaml_entries(text, path, roster) if path.suffix.lower() in (".yaml", ".yml") else _csv_entries(text, path, roster)
    seen: dict[str, int] = {}
    for line, raw in entries:
        student = _student(line, raw, roster, known_tiers, path.parent)
        if student is None:
            continue
        if student.id in seen:
            roster.problems.append(RosterProblem(line, f"student id {student.id!r} already appears on line {seen[student.id]}"))
            continue
        seen[student.id] = line
        roster.students.append(student)
    roster.problems.sort(key=lambda p: p.line)
    return roster


def _csv_entries(text: str, path: Path, roster: Roster) -> list[tuple[int, dict]]:
    lines = text.splitlines(keepends=True)
    # the header is the first line that is neither blank nor a # comment
    start = next((i for i, ln in enumerate(lines) if ln.strip() and not ln.lstrip().startswith("#")), None)
    if start is None:
        raise RosterError(f"{path}: the roster is empty")
    reader = csv.reader(io.StringIO("".join(lines[start:])), skipinitialspace=True)
    header = [_field_name(h) for h in next(reader)]
    missing = [f for f in ("id", "repo") if f not in header]
    if missing:
        raise RosterError(f"{path}: line {start + 1}: the header has no {' or '.join(missing)} column "
                          f"(expected columns: id, name, repo, ref, tier, section, email)")
    entries = []
    previous_end = reader.line_num
    for row in reader:
        line = start + previous_end + 1
        previous_end = reader.line_num
        if not any(cell.strip() for cell in row) or row[0].lstrip().startswith("#"):
            continue
        if len(row) > len(header):
            roster.problems.append(RosterProblem(line, f"{len(row)} fields but the header has {len(header)} "
                                                       "(a comma inside an unquoted value?)"))
            continue
        entries.append((line, {h: c for h, c in zip(header, row) if h}))
    return entries


def _yaml_entries(text: str, path: Path, roster: Roster) -> list[tuple[int, dict]]:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise RosterError(f"{path}: not valid YAML: {exc}") from None
    if isinstance(node, yaml.MappingNode):  # {students: [...]}
        node = next((v for k, v in node.value if k.value in ("students", "roster")), None)
    if not isinstance(node, yaml.SequenceNode):
        raise RosterError(f"{path}: expected a list of students (or `students:` holding one)")
    entries = []
    for item in node.value:
        line = item.start_mark.line + 1
        if not isinstance(item, yaml.MappingNode):
            roster.problems.append(RosterProblem(line, "a student entry must be a mapping (id: ..., repo: ...)"))
            continue
        try:
            data = yaml.safe_load(yaml.serialize(item))
        except yaml.YAMLError as exc:
            roster.problems.append(RosterProblem(line, f"unreadable entry: {exc}"))
            continue
        entries.append((line, {_field_name(str(k)): "" if v is None else v for k, v in data.items()}))
    return entries


def _field_name(header: str) -> str:
    key = re.sub(r"[\s\-]+", "_", header.strip().lower())
    return ALIASES.get(key, key)


def _student(line: int, raw: dict, roster: Roster, known_tiers: list[str], base: Path) -> Student | None:
    values: dict[str, str] = {}
    for key, value in raw.items():
        if key in ALIASES.values():
            if isinstance(value, (dict, list)):
                roster.problems.append(RosterProblem(line, f"{key} must be text, not a {type(value).__name__}"))
                return None
            values[key] = str(value).strip()
            if key in ("name", "section", "email"):
                values[key] = " ".join(values[key].split())  # a newline inside a quoted name is just a space
    absent = [f for f in REQUIRED if not values.get(f)]
    if absent:
        roster.problems.append(RosterProblem(line, f"missing {', '.join(absent)}"))
        return None
    for key, value in values.items():
        if _BAD_TEXT.search(value):
            roster.problems.append(RosterProblem(line, f"{key} contains control characters"))
            return None
    repo, ref = values["repo"], values.get("ref") or None
    if _OPTION_LIKE.match(repo) or " " in repo:
        roster.problems.append(RosterProblem(line, f"repo {repo!r} is not a URL or a folder"))
        return None
    if ref is not None and (_OPTION_LIKE.match(ref) or re.search(r"\s|\.\.|[~^:?*\[\\]", ref)):
        roster.problems.append(RosterProblem(line, f"ref {ref!r} is not a valid branch, tag or commit"))
        return None
    tier = values.get("tier") or None
    if tier is not None and tier not in known_tiers:
        candidate = (base / tier) if not Path(tier).is_absolute() else Path(tier)
        if candidate.suffix in (".yaml", ".yml") and candidate.is_file():
            tier = str(candidate.resolve())  # a bootcamp's own rubric, relative to the roster
        else:
            roster.problems.append(RosterProblem(line, f"unknown tier {tier!r} (use {', '.join(known_tiers)} "
                                                       "or a path to a rubric YAML)"))
            return None
    if re.match(r"^[a-z]+://", repo) is None and not re.match(r"^[\w.-]+@[\w.-]+:", repo):
        local = Path(repo).expanduser()
        if not local.is_absolute() and (base / local).exists():
            repo = str((base / local).resolve())  # a folder next to the roster
    return Student(id=values["id"], name=values["name"], repo=repo, ref=ref, tier=tier, line=line,
                   section=values.get("section", ""), email=values.get("email", ""),
                   canvas_id=values.get("canvas_id", ""), login=values.get("login", ""),
                   github=values.get("github", ""))
