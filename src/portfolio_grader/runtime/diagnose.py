"""Why did the API not start? A cause read from the build and container logs, with its own hint.

Pure functions, no Docker: `diagnose(log_text)` -> Diagnosis(kind, explanation, hint), or None when
nothing specific shows (the caller keeps its generic "listen on 0.0.0.0 / port: / health:" advice).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .sandbox import READ_ONLY_SIGNS

MISSING_ENV = "missing_env"
DATABASE_NOT_READY = "database_not_ready"
MISSING_TABLE = "missing_table"
MISSING_MODULE = "missing_module"
LOCALHOST_ONLY = "localhost_only"
READ_ONLY_WRITE = "read_only_write"
TRACEBACK = "traceback"
MISSING_FILE = "missing_file"


@dataclass(frozen=True)
class Diagnosis:
    kind: str
    explanation: str
    hint: str

    def detail(self) -> str:
        """'; cause: ... (hint)' to append to a RunningService detail."""
        return f"; cause: {self.explanation} ({self.hint})"


_ENV_NAME = r"[A-Z][A-Z0-9_]{1,63}"
_MISSING_ENV = [
    re.compile(rf"KeyError: ['\"]({_ENV_NAME})['\"]"),
    re.compile(rf"Missing required environment variable:?\s*['\"`]?({_ENV_NAME})", re.IGNORECASE),
    re.compile(rf"environment variable ['\"`]?({_ENV_NAME})['\"`]? (?:is )?(?:not set|missing|required)", re.IGNORECASE),
    re.compile(rf"\b({_ENV_NAME})['\"`]? (?:is not set|is not defined|must be set|is required)"),
]
# pydantic settings: "1 validation error for Settings\nsecret_key\n  Field required"
_PYDANTIC = re.compile(r"validation errors? for (\w*Settings\w*|\w*Config\w*)\s*\n\s*(\w+)\s*\n\s*Field required",
                       re.IGNORECASE)
_DB_NOT_READY = re.compile(
    r"ECONNREFUSED|connection refused|the database system is starting up|OperationalError|"
    r"could not connect to server|Can't connect to MySQL server|SequelizeConnectionRefusedError|"
    r"MongoServerSelectionError|Connection to \S+ refused",
    re.IGNORECASE,
)
# SQLite (sqlite3, Django, SQLAlchemy, Sequelize's SQLITE_ERROR), PostgreSQL (psycopg's UndefinedTable, Django's
# ProgrammingError, node-postgres, Sequelize, TypeORM), MySQL/MariaDB (ER_NO_SUCH_TABLE), Prisma (P2021)
_MISSING_TABLE = re.compile(r"no such table:?\s*[`'\"]?([\w.]+)|relation [\"']([\w.]+)[\"'] does not exist|"
                            r"Table '([\w.]+)' doesn't exist|"
                            r"The table `([\w.]+)` does not exist in the current database", re.IGNORECASE)
_MISSING_MODULE = re.compile(r"ModuleNotFoundError: No module named '([\w.]+)'|Cannot find module '([^']+)'|"
                             r"ImportError: No module named '?([\w.]+)")
_LOCALHOST = re.compile(r"(?:running on|listening on|listening at|bound to|serving on)\s+(?:https?://)?"
                        r"(127\.0\.0\.1|localhost|\[::1\])(?::(\d+))?", re.IGNORECASE)
# Node's fs errors, as the app or a tool it runs on start (sequelize db:seed:all) prints them
_MISSING_FILE = re.compile(r"ENOENT: no such file or directory, (?:open|scandir|stat|lstat|access|readdir) '([^']+)'")
_FRAME = re.compile(r'^\s*File "([^"]+)", line (\d+), in (\S+)')


def _first(pattern: re.Pattern[str], text: str) -> re.Match[str] | None:
    return pattern.search(text)


_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")  # a tool's colours (Sequelize CLI prints ERROR: in red)


def _line_of(text: str, match: re.Match[str]) -> str:
    start = text.rfind("\n", 0, match.start()) + 1
    end = text.find("\n", match.end())
    return " ".join(_ANSI.sub("", text[start:end if end >= 0 else len(text)]).split())[:200]


def missing_table(text: str) -> tuple[str, str] | None:
    """(table, the log line that says so) when the logs show a query on a table that does not exist, else None."""
    match = _MISSING_TABLE.search(text or "")
    if match is None:
        return None
    return next(g for g in match.groups() if g), _line_of(text, match)


def traceback_summary(text: str) -> str | None:
    """The last Python traceback's last 3 frames and its exception line, one line; None without a traceback."""
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if line.lstrip().startswith("Traceback (most recent call last)")]
    if not starts:
        return None
    frames: list[str] = []
    exception = ""
    for line in lines[starts[-1] + 1:]:
        match = _FRAME.match(line)
        if match:
            frames.append(f"{match.group(1).rsplit('/', 1)[-1]}:{match.group(2)} in {match.group(3)}")
        elif line and not line[0].isspace() and frames:
            exception = " ".join(line.split())[:200]
            break
    if not frames:
        return None
    return " -> ".join(frames[-3:]) + (f": {exception}" if exception else "")


_TRACEBACK = "Traceback (most recent call last)"
_CHAINED = re.compile(r"(?:During handling of the above exception, another exception occurred|The above exception "
                      r"was the direct cause of the following exception):\s*$")


# A file watcher that outlives the server it runs: the app crashed, the container keeps running and waits for a change
# that never comes (uvicorn --reload, Django's runserver, nodemon, flask --debug)
_NODEMON_CRASHED = re.compile(r"\[nodemon\] app crashed - waiting for file changes[^\n]*")
_WATCHER = re.compile(r"Started reloader process|Watching for file changes|Will watch for changes|"
                      r"Restarting with (?:stat|watchdog|inotify)|\[nodemon\] (?:starting|watching)")


def waiting_for_a_change(text: str) -> str | None:
    """The log line of a file watcher left waiting after the server it runs crashed: nodemon's "app crashed -
    waiting for file changes", or a watcher's start line when the log then ends with a Python traceback (its
    exception the last line); None otherwise (the server may still be starting)."""
    text = _ANSI.sub("", text or "")
    found = _NODEMON_CRASHED.search(text)
    if found and not text[found.end():].strip():
        return found.group(0).strip()
    watcher = _WATCHER.search(text)
    start = text.rfind(_TRACEBACK)
    if watcher is None or start < watcher.start():
        return None
    tail = [line for line in text[start:].splitlines() if line.strip()]
    last = tail[-1] if tail else ""
    if re.match(r"^[A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt)\b", last) is None:
        return None  # the traceback is not the log's last word: the server went on
    return _line_of(text, watcher)


def _crashed_later_otherwise(text: str, at: int) -> bool:
    """Did the app, after the refused connection at `at`, crash with a Python traceback that says nothing of its
    database (its chained exceptions included: an OperationalError whose handler then failed is still one)? Then
    the refusal was a wait that ended (`while ! </dev/tcp/db/5432; do sleep 1; done`), and the traceback is the
    cause."""
    start = text.rfind(_TRACEBACK)
    while start > 0 and _CHAINED.search(text[:start].rstrip()):  # walk back over "During handling of ..."
        start = text.rfind(_TRACEBACK, 0, start)
    return start > at and _DB_NOT_READY.search(text, start) is None


def diagnose(text: str) -> Diagnosis | None:
    """The first specific cause the logs show (most specific first); None when only the generic hint fits."""
    text = text or ""
    for pattern in _MISSING_ENV:
        match = pattern.search(text)
        if match:
            name = match.group(1)
            return Diagnosis(MISSING_ENV, f"the environment variable {name} is not set",
                             f"set {name} in the Dockerfile (ENV), the compose file's environment, or `env:` in "
                             "portfolio-grader.yaml; commit a .env.example")
    match = _PYDANTIC.search(text)
    if match:
        name = match.group(2).upper()
        return Diagnosis(MISSING_ENV, f"the settings class {match.group(1)} needs {name} (pydantic: Field required)",
                         f"set {name} in the environment (Dockerfile ENV, compose environment, or `env:` in "
                         "portfolio-grader.yaml), or give the field a default")
    table = missing_table(text)
    if table:
        return Diagnosis(MISSING_TABLE, f"the table {table[0]} does not exist: {table[1]}",
                         "create the schema on start (run the migrations in the container's command) or list the "
                         "command under `setup:` in portfolio-grader.yaml")
    match = _MISSING_MODULE.search(text)
    if match:
        module = next(g for g in match.groups() if g)
        return Diagnosis(MISSING_MODULE, f"the module {module} is not installed in the image",
                         f"add {module.split('.')[0] if not module.startswith(('.', '/')) else module} to "
                         "requirements.txt / package.json and install it in the Dockerfile")
    match = READ_ONLY_SIGNS.search(text)
    if match:
        return Diagnosis(READ_ONLY_WRITE, f"the app wrote to the read-only filesystem: {_line_of(text, match)}",
                         "write runtime files under /tmp or the app's own folder")
    match = _DB_NOT_READY.search(text)
    if match and not _crashed_later_otherwise(text, match.start()):
        return Diagnosis(DATABASE_NOT_READY, f"the database was not reachable: {_line_of(text, match)}",
                         "retry the connection on start, or add a healthcheck to the database service and "
                         "`depends_on: condition: service_healthy`; check the database host name")
    match = _LOCALHOST.search(text)
    if match:
        return Diagnosis(LOCALHOST_ONLY, f"the server listens on {match.group(1)} only, unreachable from outside the "
                         "container", "listen on 0.0.0.0 (uvicorn --host 0.0.0.0, app.listen(PORT, '0.0.0.0'))")
    summary = traceback_summary(text)
    if summary:
        return Diagnosis(TRACEBACK, f"the app crashed: {summary}", "fix the error in the traceback (api log tail)")
    match = _MISSING_FILE.search(text)
    if match:
        return Diagnosis(MISSING_FILE, f"a file or folder it needs is not in the image: {_line_of(text, match)}",
                         f"make sure {match.group(1)} is in the image: commit it (git keeps no empty folder: put a "
                         ".gitkeep in one) and check the Dockerfile's COPY lines and .dockerignore")
    return None
