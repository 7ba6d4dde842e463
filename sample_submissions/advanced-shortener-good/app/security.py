"""Password hashing, JWT access tokens, the current user and the login rate limiter."""
import math
import os
import secrets
import threading
import time
from collections import defaultdict, deque
from datetime import datetime, timedelta, timezone

import bcrypt
import jwt
from fastapi import Depends, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from .db import get_conn

# never commit a secret: set SECRET_KEY in production; without it a random key is made at
# startup (tokens then stop working when the server restarts, fine for development)
SECRET_KEY = os.environ.get("SECRET_KEY") or secrets.token_urlsafe(32)
ALGORITHM = "HS256"
ACCESS_TOKEN_MINUTES = int(os.environ.get("ACCESS_TOKEN_MINUTES", "30"))


def _bcrypt_bytes(password: str) -> bytes:
    return password.encode("utf-8", "replace")[:72]  # bcrypt uses 72 bytes at most (bcrypt 5 raises)


def hash_password(password: str) -> str:
    return bcrypt.hashpw(_bcrypt_bytes(password), bcrypt.gensalt()).decode()


# checked when the email is unknown, so "no such user" takes as long as "wrong password"
_DUMMY_HASH = hash_password(secrets.token_urlsafe(16)).encode()


def verify_password(password: str, password_hash: str | None) -> bool:
    if password_hash is None:
        bcrypt.checkpw(b"not-the-password", _DUMMY_HASH)
        return False
    return bcrypt.checkpw(_bcrypt_bytes(password), password_hash.encode())


def create_access_token(user_id: int) -> str:
    now = datetime.now(timezone.utc)
    claims = {"sub": str(user_id), "iat": now, "nbf": now, "exp": now + timedelta(minutes=ACCESS_TOKEN_MINUTES)}
    return jwt.encode(claims, SECRET_KEY, algorithm=ALGORITHM)


bearer_scheme = HTTPBearer(auto_error=False, bearerFormat="JWT",
                           description="The `access_token` from `POST /auth/login` or `POST /auth/token`")


def unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


def get_current_user(creds: HTTPAuthorizationCredentials | None = Depends(bearer_scheme)) -> dict:
    if creds is None:
        raise unauthorized("Not authenticated")
    try:
        # a fixed algorithm list ("none" is refused); signature, exp and nbf are verified
        claims = jwt.decode(creds.credentials, SECRET_KEY, algorithms=[ALGORITHM],
                            options={"require": ["exp", "iat", "sub"]})
        user_id = int(claims["sub"])
    except (jwt.PyJWTError, ValueError):
        raise unauthorized("Could not validate credentials") from None
    with get_conn() as conn:
        row = conn.execute("SELECT * FROM users WHERE id = ?", (user_id,)).fetchone()
    if row is None:  # the account is gone
        raise unauthorized("Could not validate credentials")
    return dict(row)


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
        """Seconds until this key may try again, 0 if it may try now."""
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
