"""Passwords, JWT access tokens, API keys, and the principal (org + user or key) behind each request."""
import hashlib
import math
import os
import secrets
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import bcrypt
import jwt
from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from .db import get_conn

# never commit a secret: set SECRET_KEY in production; without it a random key is made at start-up
SECRET_KEY = os.environ.get("SECRET_KEY") or secrets.token_urlsafe(32)
ALGORITHM = "HS256"
ACCESS_TOKEN_MINUTES = int(os.environ.get("ACCESS_TOKEN_MINUTES", "30"))
API_KEY_PREFIX = "inv_"


def _bcrypt_bytes(password: str) -> bytes:
    return password.encode("utf-8", "replace")[:72]


def hash_password(password: str) -> str:
    return bcrypt.hashpw(_bcrypt_bytes(password), bcrypt.gensalt()).decode()


_DUMMY_HASH = hash_password(secrets.token_urlsafe(16)).encode()


def verify_password(password: str, password_hash: str | None) -> bool:
    if password_hash is None:  # same time for an unknown email as for a wrong password
        bcrypt.checkpw(b"not-the-password", _DUMMY_HASH)
        return False
    return bcrypt.checkpw(_bcrypt_bytes(password), password_hash.encode())


def create_access_token(user_id: int) -> str:
    now = datetime.now(timezone.utc)
    claims = {"sub": str(user_id), "iat": now, "nbf": now, "exp": now + timedelta(minutes=ACCESS_TOKEN_MINUTES)}
    return jwt.encode(claims, SECRET_KEY, algorithm=ALGORITHM)


def new_api_key() -> tuple[str, str]:
    """(the key shown once, the hash stored): keys are long random strings, so a fast hash is enough."""
    key = API_KEY_PREFIX + secrets.token_urlsafe(32)
    return key, key_hash(key)


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


bearer_scheme = HTTPBearer(auto_error=False, description="A JWT from `POST /auth/login`, or an API key (`inv_...`)")


def unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


@dataclass(frozen=True)
class Principal:
    org_id: int
    user: dict | None = None  # a logged-in person
    key_id: int | None = None  # or an API key of the org


def _user_from_jwt(token: str) -> dict:
    try:
        claims = jwt.decode(token, SECRET_KEY, algorithms=[ALGORITHM], options={"require": ["exp", "iat", "sub"]})
        user_id = int(claims["sub"])
    except (jwt.PyJWTError, ValueError):
        raise unauthorized("Could not validate credentials") from None
    with get_conn() as conn:
        row = conn.execute("SELECT * FROM users WHERE id = %s", (user_id,)).fetchone()
    if row is None:
        raise unauthorized("Could not validate credentials")
    return row


def get_principal(request: Request, creds: HTTPAuthorizationCredentials | None = Depends(bearer_scheme)) -> Principal:
    """The org behind the request (from a JWT or an API key); every request made this way is counted."""
    if creds is None:
        raise unauthorized("Not authenticated")
    token = creds.credentials
    if token.startswith(API_KEY_PREFIX):
        with get_conn() as conn:  # checked on every request: a revoked key stops working at once
            row = conn.execute("SELECT id, org_id FROM api_keys WHERE key_hash = %s AND revoked_at IS NULL",
                               (key_hash(token),)).fetchone()
        if row is None:
            raise unauthorized("Invalid or revoked API key")
        principal = Principal(org_id=row["org_id"], key_id=row["id"])
    else:
        user = _user_from_jwt(token)
        principal = Principal(org_id=user["org_id"], user=user)
    with get_conn() as conn:
        conn.execute("INSERT INTO usage (org_id, day, requests) VALUES (%s, current_date, 1) "
                     "ON CONFLICT (org_id, day) DO UPDATE SET requests = usage.requests + 1", (principal.org_id,))
    request.state.org_id = principal.org_id
    return principal


def get_current_user(principal: Principal = Depends(get_principal)) -> dict:
    """People only: API keys cannot manage keys, webhooks or accounts."""
    if principal.user is None:
        raise HTTPException(403, "This operation needs a logged-in user, not an API key")
    return principal.user


def require_admin(user: dict = Depends(get_current_user)) -> dict:
    if user["role"] != "admin":
        raise HTTPException(403, "Admin privileges required")
    return user


class LoginRateLimiter:
    """At most `max_failures` failed logins per (client IP, email) in a sliding window of seconds."""

    def __init__(self, max_failures: int = 5, window: float = 60.0):
        self.max_failures, self.window = max_failures, window
        self._failures: dict[tuple, deque] = defaultdict(deque)
        self._lock = threading.Lock()

    def retry_after(self, key: tuple) -> int:
        now = time.monotonic()
        with self._lock:
            failures = self._failures.get(key, deque())
            while failures and now - failures[0] >= self.window:
                failures.popleft()
            if not failures:
                self._failures.pop(key, None)
            if len(failures) < self.max_failures:
                return 0
            return max(1, math.ceil(self.window - (now - failures[0])))

    def record_failure(self, key: tuple) -> None:
        with self._lock:
            self._failures[key].append(time.monotonic())

    def reset(self, key: tuple) -> None:
        with self._lock:
            self._failures.pop(key, None)


login_limiter = LoginRateLimiter(int(os.environ.get("LOGIN_MAX_FAILURES", "5")),
                                 float(os.environ.get("LOGIN_WINDOW_SECONDS", "60")))
