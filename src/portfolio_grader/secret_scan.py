"""Committed secrets as a reviewer judges them: detect-secrets finds the candidates, the use decides.

A literal used as a signing key or password (`SECRET_KEY = 'random'`, `jwt.sign(payload, 'secret')`, an env
fallback `process.env.JWT_SECRET || 'dev'`, `JWT_SECRET=dev` in a committed `.env`) is a secret however short it
is. A candidate a reviewer would dismiss — a fixture in a test, an example env file, a migration revision id, an
expired JWT in the docs, a setting that merely has "token" in its name, a keyword match in code that is no key, a
value a CI workflow sets for its own test run — is set aside with its reason.
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from .inspect import read_text

MAX_SCANNED_BYTES = 1024 * 1024
MAX_SCANNED_FILES = 3000
SCAN_SECONDS = 60.0  # a bound on the whole scan: a huge repo is scanned in part, never for ever

KEY_USE = "hard-coded key"  # the type of a hit our key-use detection found
GENERIC_TYPES = {"Secret Keyword", "Basic Auth Credentials", "Base64 High Entropy String", "Hex High Entropy String"}
_DOCS = re.compile(r"\.(md|markdown|rst|txt|adoc|html)$|(^|/)(docs?|examples?)/|(^|/)(openapi|swagger)[^/]*$", re.I)
CONFIG_FILE = re.compile(r"(^|/)(\.env[^/]*|Dockerfile[^/]*|[^/]*\.(ya?ml|json|toml|ini|cfg|conf|properties))$", re.I)
ENV_FILE = re.compile(r"(^|/)\.env(\.[\w.-]+)?$")
ENV_TEMPLATE = re.compile(r"example|sample|template|dist|defaults?|schema|exemplo", re.I)
_SOURCE = re.compile(r"\.(py|js|ts|mjs|cjs|jsx|tsx|go|java|kt|rb|php|cs)$|(^|/)\.env[^/]*$|\.(ya?ml|json|toml|ini|cfg|conf|properties)$",
                     re.I)
_BINARY = re.compile(r"\.(png|jpe?g|gif|ico|webp|pdf|zip|gz|tgz|jar|woff2?|ttf|eot|mp[34]|mov|sqlite3?|db|pyc|so|dll|exe)$",
                     re.I)
_SECRET_NAME = re.compile(r"SECRET|PASSW(OR)?D|TOKEN|API_?KEY|PRIVATE_?KEY|ACCESS_?KEY|CREDENTIAL", re.I)
# a secret-named setting whose value is a duration, a length, a name or a URL: `ENV tokentimetolive 60`
_SETTING_NAME = re.compile(r"TIME|TTL|EXPIR|LIFETIME|MINUTES|SECONDS|HOURS|DAYS|LENGTH|ALGORITHM|URL|HEADER|NAME|TYPE|"
                           r"PREFIX|FILE|PATH|LOCATION", re.I)
_MIGRATION = re.compile(r"^\s*(down_)?revision\s*(:\s*[\w\[\], |]+)?\s*=|(^|/)(alembic|migrations)/", re.I)

# a key's name, alone or after a prefix: JWT_SECRET, app_secret, jwtPrivateKey, accessTokenSecret (camelCase: the
# prefix ends where an upper-case letter begins the key word)
_KEY_NAME = (r"(?:\w*_|(?-i:[a-z][a-zA-Z0-9]*?(?=[A-Z])))?"
             r"(?:SECRET(?:_?KEY)?|SIGNING_?KEY|JWT_?SECRET(?:_?KEY)?|TOKEN_?SECRET|SESSION_?SECRET|APP_?SECRET|PRIVATE_?KEY)")
_LITERAL = r"""(?P<q>['"`])(?P<value>[^'"`\n]{1,200})(?P=q)"""
_KEY_USES = (
    # SECRET_KEY = 'random'; SECRET_KEY: str = "dev"; app.config["JWT_SECRET_KEY"] = "dev"; secret: "keyboard cat"
    re.compile(rf"""(?<![\w.])['"]?(?P<name>{_KEY_NAME})['"]?\s*\]?\s*(?::\s*[\w\[\], |]+\s*)?(?:=|:)\s*[rbu]?{_LITERAL}""",
               re.I),
    # os.environ.get("SECRET_KEY", "dev"), os.getenv("JWT_SECRET", "dev"), config("SECRET_KEY", default="dev")
    re.compile(rf"""(?:getenv|environ\.get|env\.get|config)\s*\(\s*['"](?P<name>{_KEY_NAME})['"]\s*,\s*(?:default\s*=\s*)?{_LITERAL}""",
               re.I),
    # process.env.JWT_SECRET || "dev", process.env.SECRET ?? 'dev'
    re.compile(rf"""process\.env\.(?P<name>{_KEY_NAME})\s*(?:\|\||\?\?)\s*{_LITERAL}""", re.I),
    # ADMIN_PASSWORD = "admin123", DB_PASSWORD: str = "pw": a constant's password (case matters: not `password=`)
    re.compile(rf"""(?<![\w.])(?P<name>[A-Z][A-Z0-9]*_(?:[A-Z0-9]+_)*PASSW(?:OR)?D)\s*(?::\s*\w+\s*)?=\s*{_LITERAL}"""),
    # jwt.encode(payload, 'secret'), jwt.sign({ id }, "secret"), jsonwebtoken.verify(token, 'secret'),
    # jose.jwt.encode(claims, key='secret'): the JWT library under whatever name the file imports it
    re.compile(rf"""\b(?P<lib>\w*jwt\w*|jsonwebtoken|jose)\.(?P<name>encode|decode|sign|verify)\s*\(\s*"""
               rf"""(?:[^,()]|\([^()]*\))+,\s*(?:key\s*=\s*)?{_LITERAL}""", re.I),
)
# a committed env file's `NAME=value` line (quoted or not, `export` or not): the value is what the app runs with
_ENV_ASSIGNMENT = re.compile(r"""^\s*(?:export\s+)?(?P<name>[A-Za-z_][\w.-]*)\s*=\s*(?P<value>"[^"]*"|'[^']*'|[^\s#]*)""")
_ENV_SECRET_NAME = re.compile(rf"{_SECRET_NAME.pattern}|(^|_)(PASS|PWD)($|_)", re.I)
# CI configuration: the values it sets are for its own run (a service database, a test settings key)
CI_CONFIG = re.compile(r"^(\.github/workflows/|\.circleci/)|^(\.gitlab-ci\.ya?ml|\.travis\.ya?ml|azure-pipelines\.ya?ml|"
                       r"bitbucket-pipelines\.ya?ml|Jenkinsfile)$")
_PLACEHOLDER = re.compile(r"^\s*$|^[$%{<]|^\*+$|^(?:str|string|none|null|undefined|true|false|yes|no)$", re.I)


@dataclass(frozen=True)
class Hit:
    file: str
    line: int
    kind: str  # the detect-secrets plugin, "ENV X" / "ARG X", or KEY_USE
    value: str
    why: str  # the reason it counts


@dataclass(frozen=True)
class SetAside:
    file: str
    line: int
    kind: str
    why: str  # the reason a reviewer would dismiss it


def scan(root: Path, files: list[str], is_test: Callable[[str], bool], dockerfile: str | None = None,
         dismissed: dict[str, str] | None = None) -> tuple[list[Hit], list[SetAside]]:
    """Every secret in the committed `files`, and the candidates set aside with their reasons; `dismissed` maps
    values known not to be secrets (a compose database's own password) to the reason."""
    dismissed = {v: why for v, why in (dismissed or {}).items() if v}
    hits: list[Hit] = []
    aside: list[SetAside] = []
    texts: dict[str, list[str]] = {}

    def lines_of(rel: str) -> list[str]:
        if rel not in texts:
            texts[rel] = read_text(root / rel).splitlines()
        return texts[rel]

    candidates = _detect_secrets(root, files)
    candidates += [(rel, n, KEY_USE, value, why) for rel in files if _scannable_code(rel, is_test)
                   for n, value, why in (env_assignments if ENV_FILE.search(rel) else key_uses)(lines_of(rel))]
    if dockerfile:
        candidates += [(dockerfile, n, kind, value, "a secret-named literal baked into the image")
                       for n, kind, value in _docker_literals(read_text(root / dockerfile))]
    key_lines = {(rel, n) for rel, n, kind, _, _ in candidates if kind == KEY_USE}
    entropy_lines = {(rel, n) for rel, n, kind, _, _ in candidates if "Entropy" in kind}
    for rel, n, kind, value, why in candidates:
        line = lines_of(rel)[n - 1] if 0 < n <= len(lines_of(rel)) else ""
        reason = _dismissal(rel, line, kind, value, is_test, used_as_key=(rel, n) in key_lines,
                            high_entropy=(rel, n) in entropy_lines) or dismissed.get(value)
        if reason:
            aside.append(SetAside(rel, n, kind, reason))
        else:
            hits.append(Hit(rel, n, kind, value, why))
    return hits, aside


def key_uses(lines: list[str]) -> list[tuple[int, str, str]]:
    """(line, value, why) of each literal the code uses as a signing key or password."""
    found = []
    for number, line in enumerate(lines, 1):
        for pattern in _KEY_USES:
            match = pattern.search(line)
            if match and not _PLACEHOLDER.search(match.group("value")):
                name = match.group("name")
                lib = match.groupdict().get("lib")
                use = (f"the literal is the key of `{lib}.{name}(...)`" if lib
                       else f"`{name}` is set to a literal: whoever reads the code can sign tokens or log in with it")
                found.append((number, match.group("value"), use))
                break
    return found


def env_assignments(lines: list[str]) -> list[tuple[int, str, str]]:
    """(line, value, why) of each secret-named variable a committed env file sets (`JWT_SECRET=dev`,
    `DB_PASS="pw"`): compose's env_file and dotenv hand the app that value as it is."""
    found = []
    for number, line in enumerate(lines, 1):
        match = _ENV_ASSIGNMENT.match(line)
        if not match:
            continue
        name, value = match.group("name"), match.group("value").strip("\"'")
        if (_ENV_SECRET_NAME.search(name) and not _SETTING_NAME.search(name) and value
                and not _PLACEHOLDER.search(value) and not re.fullmatch(r"\d+[smhd]?", value)):
            found.append((number, value, f"the committed env file sets `{name}`: the app runs with this value, and "
                                         "whoever reads the repository has it"))
    return found


def mask(value: str) -> str:
    return value[:2] + "***" if len(value) > 6 else "***"


def _scannable_code(rel: str, is_test: Callable[[str], bool]) -> bool:
    name = rel.rsplit("/", 1)[-1]
    return (bool(_SOURCE.search(rel)) and not is_test(rel) and not _DOCS.search(rel)
            and not (ENV_FILE.search(rel) and ENV_TEMPLATE.search(name)))


def _dismissal(rel: str, line: str, kind: str, value: str, is_test: Callable[[str], bool], used_as_key: bool,
               high_entropy: bool) -> str | None:
    """Why a reviewer would dismiss this candidate, None when it is a secret."""
    name = rel.rsplit("/", 1)[-1]
    generic = kind in GENERIC_TYPES
    if is_test(rel) or re.search(r"(^|/)(fixtures?|__fixtures__|testdata)/", rel, re.I):
        return "a value in a test or fixture"
    if ENV_FILE.search(rel) and ENV_TEMPLATE.search(name) or re.search(r"(^|/)example\.env$", rel, re.I):
        return "an example env file: placeholders for the reader to replace"
    if CI_CONFIG.search(rel) and (generic or kind == KEY_USE):
        return "a value the CI configuration sets for its own test run (a service database, test settings)"
    if _MIGRATION.search(line) or (_MIGRATION.search(rel) and "Hex" in kind):
        return "a migration revision id"
    if kind == "JSON Web Token":
        expired = _expired_on(value)
        if expired:
            return f"a JWT that expired on {expired}: it opens nothing"
    if kind.startswith(("ENV ", "ARG ")) and (re.fullmatch(r"\d+[smhd]?|true|false|yes|no", value, re.I)
                                               or _SETTING_NAME.search(kind.split(" ", 1)[1])):
        return "a setting whose name mentions a secret, holding no secret"
    if generic and _DOCS.search(rel):
        return "an example credential in the documentation"
    if generic and not used_as_key and not CONFIG_FILE.search(rel):
        if kind == "Secret Keyword" and not high_entropy:
            return "a keyword match in code, not a value used as a key"
        if "Hex" in kind and not _SECRET_NAME.search(line):
            return "a hex constant (a hash, a pattern or a test vector), not named as a secret"
    return None


def _expired_on(token: str) -> str | None:
    """The date a JWT's `exp` passed, None when it has none, has not expired or is not a JWT."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        exp = float(claims["exp"])
    except (IndexError, ValueError, KeyError, TypeError):
        return None
    return datetime.fromtimestamp(exp, timezone.utc).date().isoformat() if exp < time.time() else None


def _detect_secrets(root: Path, files: list[str]) -> list[tuple[str, int, str, str, str]]:
    """(file, line, plugin, value, why) of every candidate detect-secrets reports, within the scan's bounds."""
    from detect_secrets import SecretsCollection
    from detect_secrets.settings import default_settings

    collection = SecretsCollection(root=str(root))
    deadline = time.monotonic() + SCAN_SECONDS
    with default_settings():
        for rel in files[:MAX_SCANNED_FILES]:
            if time.monotonic() > deadline or _BINARY.search(rel):
                continue
            path = root / rel
            try:
                if path.is_symlink() or path.stat().st_size > MAX_SCANNED_BYTES:
                    continue
            except OSError:
                continue
            collection.scan_file(rel)
    return [(rel, s.line_number, s.type, s.secret_value or "", f"detect-secrets' {s.type} plugin")
            for rel, s in collection]


def _docker_literals(text: str) -> list[tuple[int, str, str]]:
    """(line, "ENV KEY", value) of ENV/ARG instructions that bake a secret-named literal into the image."""
    hits = []
    for number, line in enumerate(text.splitlines(), 1):
        match = re.match(r"\s*(ENV|ARG)\s+(.+)", line, re.I)
        if not match:
            continue
        for key, value in re.findall(r"([\w.-]+)(?:=|\s+)(\"[^\"]*\"|'[^']*'|\S+)", match.group(2)):
            value = value.strip("\"'")
            if _SECRET_NAME.search(key) and value and not value.startswith("$"):
                hits.append((number, f"{match.group(1).upper()} {key}", value))
    return hits
