"""Migrations a learner must run: the API answers, but its database has no schema yet.

Most learner projects ship their migrations (Alembic, Flask-Migrate, Django, an npm script, Prisma, Sequelize)
and run them by hand on their laptop (`flask db upgrade`, `npm run migrate`); the container's command only starts
the server. In the grader the API then answers every read with a 500 and every check blames the app for a step
a reviewer would have taken. So, once, right after readiness:

    log says "no such table" / relation "x" does not exist  (after a few harmless reads of its lists)
      -> detect_command(repo folders)       the project's standard command, from its layout (pure, no Docker)
      -> handle.exec(command, deadline)     inside the API container: its image, user, environment, limits
      -> the reads again, and the log since -> the table is there now, or it is still missing

With no command in the layout, an operation the API documents for it (`GET /createdb`, `POST /init-db`: the ones
discovery holds out of every probe, since they may reset the data) is sent once instead, as its README tells a new
user to do; before the first test user exists there is nothing for it to wipe (`init_operation`).

`ensure_schema` returns what happened as a SchemaOutcome whose `note` the scorecard shows: the command (or the
request), what it printed (its tail), whether the tables came, and that a reviewer expects the schema to be made on
start. The manifest's `setup:` stays the explicit way: when it is given, nothing is run here (the note says the table
is still missing after it). With neither, or when the command fails, the note says so and names the table.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .diagnose import missing_table

OUTPUT_TAIL_LINES = 8
OUTPUT_TAIL_CHARS = 600
LOOKED_FOR = ("package.json scripts migrate / db:migrate", "prisma/migrations", ".sequelizerc or sequelize-cli",
              "knexfile", "manage.py (Django)", "migrations/env.py (Flask-Migrate)", "alembic.ini")


@dataclass(frozen=True)
class MigrationCommand:
    """The project's standard migration command, and what in the repository named it."""

    command: str  # run with `sh -c` in the API container's working folder
    tool: str  # "Alembic", "Flask-Migrate", "Django", "npm script", "Prisma", "Sequelize", "Knex"
    found: str  # "alembic.ini", "package.json's scripts.migrate", ...


# ---------------------------------------------------------------- detection (reads files, runs nothing)

# npm scripts that apply migrations (not those that make, undo or reset them), best first
_NPM_SCRIPTS = ("migrate", "db:migrate", "migrate:latest", "migrate:up", "migrate:deploy", "migration:run",
                "migrations:run", "db:migrate:deploy", "prisma:migrate", "typeorm:migrate", "knex:migrate")
_PY_DEPENDENCY_FILES = ("requirements.txt", "requirements/base.txt", "requirements/prod.txt", "pyproject.toml",
                        "Pipfile", "setup.py", "setup.cfg")


def _read(path: Path, limit: int = 200_000) -> str:
    try:
        return path.read_text("utf-8", "replace")[:limit] if path.is_file() else ""
    except OSError:
        return ""


def _package_json(folder: Path) -> dict[str, Any]:
    try:
        doc = json.loads(_read(folder / "package.json") or "{}")
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}


def _dependencies(package: dict[str, Any]) -> set[str]:
    names: set[str] = set()
    for key in ("dependencies", "devDependencies"):
        section = package.get(key)
        if isinstance(section, dict):
            names |= {str(n) for n in section}
    return names


def _mentions(folder: Path, pattern: str, files: Iterable[str]) -> bool:
    rx = re.compile(pattern, re.IGNORECASE)
    return any(rx.search(_read(folder / name)) for name in files)


def _has_prisma_migrations(folder: Path) -> bool:
    migrations = folder / "prisma" / "migrations"
    try:
        return migrations.is_dir() and any((d / "migration.sql").is_file() for d in migrations.iterdir() if d.is_dir())
    except OSError:
        return False


def _node_command(folder: Path) -> MigrationCommand | None:
    package = _package_json(folder)
    if not package:
        return None
    scripts = package.get("scripts") if isinstance(package.get("scripts"), dict) else {}
    for name in _NPM_SCRIPTS:
        if isinstance(scripts.get(name), str) and scripts[name].strip():
            return MigrationCommand(f"npm run {name}", "npm script", f"package.json's scripts.{name} "
                                    f"({' '.join(scripts[name].split())[:80]!r})")
    deps = _dependencies(package)
    if _has_prisma_migrations(folder):
        return MigrationCommand("npx prisma migrate deploy", "Prisma", "prisma/migrations")
    if (folder / ".sequelizerc").is_file() or ("sequelize-cli" in deps and (folder / "migrations").is_dir()):
        found = ".sequelizerc" if (folder / ".sequelizerc").is_file() else "sequelize-cli and migrations/"
        return MigrationCommand("npx sequelize-cli db:migrate", "Sequelize", found)
    knexfile = next((n for n in ("knexfile.js", "knexfile.ts", "knexfile.cjs", "knexfile.mjs") if (folder / n).is_file()),
                    None)
    if knexfile and "knex" in deps:
        return MigrationCommand("npx knex migrate:latest", "Knex", knexfile)
    return None


def _python_command(folder: Path) -> MigrationCommand | None:
    manage = _read(folder / "manage.py")
    if manage and "django" in manage.lower():
        return MigrationCommand("python manage.py migrate --noinput", "Django", "manage.py")
    env_py = _read(folder / "migrations" / "env.py")
    flask_deps = _mentions(folder, r"flask[-_]migrate", _PY_DEPENDENCY_FILES)
    if env_py and (re.search(r"current_app|flask", env_py) or flask_deps) and (
            (folder / "migrations" / "alembic.ini").is_file() or flask_deps):
        return MigrationCommand("flask db upgrade", "Flask-Migrate", "migrations/env.py (a Flask-Migrate folder)")
    if (folder / "alembic.ini").is_file():
        return MigrationCommand("alembic upgrade head", "Alembic", "alembic.ini")
    return None


def detect_command(folders: Iterable[Path]) -> MigrationCommand | None:
    """The standard migration command of the first folder (the API's build context, then the repo root) that has
    one; None when none does. A package.json script the learner named wins over a tool's own command."""
    seen: set[Path] = set()
    for folder in folders:
        try:
            folder = Path(folder).resolve()
        except OSError:
            continue
        if folder in seen or not folder.is_dir():
            continue
        seen.add(folder)
        found = _node_command(folder) or _python_command(folder)
        if found is not None:
            return found
    return None


# words of an operation that creates the schema (`/createdb`, `/init-db`, `/api/setup`, `/seed`), and of one that
# (also) destroys data, which is never sent on the grader's own initiative
_INIT_WORDS = {"createdb", "initdb", "setupdb", "populatedb", "seeddb", "populate", "seed", "setup", "install"}
_INIT_VERBS = {"create", "init", "initialize", "initialise", "setup", "make", "build", "migrate"}
_INIT_OBJECTS = {"db", "database", "tables", "schema", "models"}
_DESTRUCTIVE = {"drop", "dropdb", "reset", "resetdb", "reseed", "wipe", "purge", "truncate", "flush", "flushdb",
                "delete", "clear", "nuke", "destroy", "remove", "empty"}


def _words(path: str) -> set[str]:
    return {w.lower() for w in re.split(r"[^A-Za-z0-9]+|(?<=[a-z])(?=[A-Z])", path) if w}


def init_operation(labels: Iterable[str]) -> str | None:
    """The first of the operations ("GET /createdb") that creates the database's schema by its path: a GET or POST
    with no path parameter, named for creating or seeding the database and for nothing destructive; None if none."""
    for label in labels:
        method, _, path = label.partition(" ")
        if method not in ("GET", "POST") or "{" in path:
            continue
        words = _words(path)
        if words & _DESTRUCTIVE:
            continue
        if words & _INIT_WORDS or (words & _INIT_VERBS and words & _INIT_OBJECTS):
            return label
    return None


# ---------------------------------------------------------------- the API's log, before and after

_STAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z? ?")


def _stamp(line: str) -> tuple[str, int] | None:
    match = _STAMP.match(line)
    if not match:
        return None
    return match.group(1), int((match.group(2) or "0").ljust(9, "0"))


def last_stamp(stamped_log: str) -> tuple[str, int] | None:
    """The docker timestamp of the last line of a `logs(timestamps=True)` text (None when it is empty)."""
    for line in reversed((stamped_log or "").splitlines()):
        found = _stamp(line)
        if found:
            return found
    return None


def lines_after(stamped_log: str, mark: tuple[str, int] | None) -> str:
    """The lines of a `logs(timestamps=True)` text written after `mark`, without their timestamps."""
    out: list[str] = []
    for line in (stamped_log or "").splitlines():
        found = _stamp(line)
        if found is None:
            if out:
                out.append(line)
            continue
        if mark is None or found > mark:
            out.append(line[_STAMP.match(line).end():])
    return "\n".join(out)


# ---------------------------------------------------------------- running it once


@dataclass(frozen=True)
class SchemaOutcome:
    """A missing schema seen after readiness, and what the grader did about it."""

    table: str
    line: str  # the log line that said so
    command: MigrationCommand | None = None  # None: none was run (none found, or the manifest's setup: is used)
    exit_code: int | None = None
    output: str = ""  # the tail of what the command printed
    seconds: float = 0.0
    fixed: bool = False  # after the run, the reads no longer showed a missing table
    before: str = ""  # what the reads answered before ("GET /books 500")
    after: str = ""  # ... and after the run
    still: str = ""  # the log line that still says a table is missing after the run
    setup_given: bool = False
    request: str = ""  # with no command: the API's own init operation sent instead ("GET /createdb")
    answer: str = ""  # ... and what it answered ("200")

    @property
    def note(self) -> str:
        seen = f"the API's log said the table `{self.table}` does not exist ({self.line!r})" + (
            f" when the grader first read its lists ({self.before})" if self.before else "")
        if self.setup_given:
            return (f"{seen}, after the manifest's `setup:` steps; the grader runs no migrations of its own when "
                    "`setup:` is given: list the migration command there, or run it in the container's command")
        if self.request:
            return (f"{seen}; no migration command was found in the repository (looked for {', '.join(LOOKED_FOR)}), "
                    f"but the API documents `{self.request}`, which the probes leave alone since it may reset the "
                    f"data: the grader sent it once, before any test user existed (it answered {self.answer})"
                    f"{self._outcome()}. A reviewer expects the schema to be created on start (create the tables "
                    "when the app starts), or list the call under `setup:` in portfolio-grader.yaml "
                    f"(`- request: {self.request}`)")
        if self.command is None:
            return (f"{seen}; no migration command was found in the repository (looked for "
                    f"{', '.join(LOOKED_FOR)}), so the grade went on without the schema: create it on start (run "
                    "the migrations in the container's command or entrypoint), or list the command under `setup:` "
                    "in portfolio-grader.yaml")
        ran = (f"so the grader ran the project's migrations once inside the API container: `{self.command.command}` "
               f"({self.command.tool}, from {self.command.found})")
        if self.exit_code == 124:
            result = f"it did not finish within its deadline ({self.seconds:.0f} s)"
        elif self.exit_code is None or self.exit_code in (125, 126):
            result = f"it could not be run ({self.output.strip()[:200] or 'no output'})"
        else:
            result = f"it exited {self.exit_code} after {self.seconds:.1f} s"
        printed = f"; it printed: {self.output!r}" if self.output.strip() and self.exit_code not in (125, 126) else ""
        outcome = self._outcome()
        hint = ("A reviewer expects the migrations to run on start: run them in the container's command or "
                f"entrypoint (e.g. `sh -c \"{self.command.command} && <your server command>\"`), or list the command "
                "under `setup:` in portfolio-grader.yaml")
        return f"{seen}, {ran}; {result}{printed}{outcome}. {hint}"

    def _outcome(self) -> str:
        if self.fixed:
            return ("; the tables were there afterwards" + (f" ({self.after})" if self.after else "") +
                    " and the grade went on with them")
        if self.still:
            return f"; a table was still missing afterwards ({self.still!r}), so the grade went on without the schema"
        return "; the grade went on without the schema"


def output_tail(text: str, lines: int = OUTPUT_TAIL_LINES, chars: int = OUTPUT_TAIL_CHARS) -> str:
    """The last few non-empty lines of a command's output, on one line each, at most `chars` characters."""
    kept = [" ".join(line.split()) for line in (text or "").splitlines() if line.strip()][-lines:]
    out = " | ".join(kept)
    return out[-chars:]


LOG_SETTLE_SECONDS = 3.0  # how long a server error's log line may take to reach the container log


def _settled_log(handle: Any, since: tuple[str, int] | None, answers: str) -> str:
    """The API's log after the reads (the lines after `since`). The engine copies a container's output to its log
    asynchronously: when a read answered 5xx and no missing table shows yet, the log is read again for a moment
    (at most LOG_SETTLE_SECONDS), so a loaded machine does not hide the line that explains the 500."""
    log = lines_after(handle.api_log(timestamps=True), since)
    ends = time.monotonic() + LOG_SETTLE_SECONDS
    while not missing_table(log) and re.search(r" 5\d\d\b", answers) and time.monotonic() < ends:
        time.sleep(0.25)
        log = lines_after(handle.api_log(timestamps=True), since)
    return log


def ensure_schema(handle: Any, folders: Iterable[Path], reads: Callable[[], str], *, timeout: float,
                  setup_given: bool = False, since: tuple[str, int] | None = None, held_out: Iterable[str] = (),
                  send: Callable[[str], str] | None = None) -> SchemaOutcome | None:
    """After readiness: the harmless `reads()` (they return what was answered, "GET /books 500"), then the API's
    log (from its start, or the lines after `since`, a `last_stamp`). None when no table is missing. Otherwise the
    project's migration command runs once in the API container (unless the manifest's `setup:` is the way) — or,
    with none in the layout, the first of the `held_out` operations that creates the schema (`init_operation`) is
    sent once with `send(label)` (which returns its status) — the reads are made again, and the log since tells if
    it helped. Call it before the first test user is made: an init operation may also wipe the data."""
    before = reads()
    found = missing_table(_settled_log(handle, since, before))
    if found is None:
        return None
    table, line = found
    if setup_given:
        return SchemaOutcome(table, line, before=before, setup_given=True)
    command = detect_command(folders)
    request = init_operation(held_out) if command is None and send is not None else None
    if request is not None:
        mark = last_stamp(handle.api_log(timestamps=True))
        answer = send(request)
        after = reads()
        still = missing_table(_settled_log(handle, mark, after))
        return SchemaOutcome(table, line, request=request, answer=answer, fixed=still is None, before=before,
                             after=after, still=still[1] if still else "")
    if command is None:
        return SchemaOutcome(table, line, before=before)
    mark = last_stamp(handle.api_log(timestamps=True))
    started = time.monotonic()
    code, output = handle.exec(command.command, timeout=max(1.0, timeout))
    seconds = time.monotonic() - started
    after = reads()
    still = missing_table(_settled_log(handle, mark, after))
    return SchemaOutcome(table, line, command=command, exit_code=code, output=output_tail(output), seconds=seconds,
                         fixed=still is None and code == 0, before=before, after=after,
                         still=still[1] if still else "")
