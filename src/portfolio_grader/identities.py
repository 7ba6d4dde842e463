"""Throwaway users the grader registers and logs in, to probe authentication and ownership.

Their data is unique per grade and schema-valid (formats, enums, lengths); a registration refused
for a weak password is retried with a stronger one. Their tokens are the grader's own, so they
appear unredacted in curl lines: the learner can replay every request.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from .authflow import PASSWORD_FIELDS, find_token_path
from .models import AuthFlow, Evidence
from .payloads import valid_example
from .probe import Exchange, Prober

_STRONG_PASSWORDS = ("Grader-Pass-9x!Qv", "Gr4der!Pa55w0rd#Long-Enough-2026")


class IdentityError(Exception):
    """A user could not be registered or logged in; carries the exchanges that show why."""

    def __init__(self, message: str, exchanges: list[Exchange]):
        super().__init__(message)
        self.exchanges = exchanges

    def evidence(self) -> list[Evidence]:
        return [e.evidence(str(self)) for e in self.exchanges[-3:]]


@dataclass
class Identity:
    label: str  # "A", "B"
    login_value: str  # what goes in the login's identity field
    password: str
    token: str | None = None  # None for a cookie session
    cookie: str | None = None
    signup_body: dict[str, Any] = field(default_factory=dict)
    signup_response: Any = None
    exchanges: list[Exchange] = field(default_factory=list)

    def headers(self, flow: AuthFlow) -> dict[str, str]:
        if self.token is not None:
            return {flow.send_header: f"{flow.send_prefix}{self.token}"}
        return {"Cookie": self.cookie} if self.cookie else {}


def login(prober: Prober, flow: AuthFlow, login_value: str, password: str) -> Exchange:
    """One login request in the API's own format (JSON, or form-encoded for the OAuth2 password flow)."""
    body = {flow.identity_field: login_value, flow.password_field: password}
    if flow.login_form:
        return prober.request("POST", flow.login.path, content=urlencode(body),
                              headers={"Content-Type": "application/x-www-form-urlencoded"})
    return prober.request("POST", flow.login.path, json=body)


def token_from(exchange: Exchange, flow: AuthFlow) -> tuple[str | None, str | None]:
    """(token, cookie) from a login response: the documented field, else any token-like field, else Set-Cookie."""
    body = exchange.json()
    path = flow.token_path if flow.token_path and _dig(body, flow.token_path) else find_token_path(body)
    token = _dig(body, path) if path else None
    if isinstance(token, str) and token:
        return token, None
    cookie = next((v.split(";", 1)[0] for k, v in exchange.headers.items() if k.lower() == "set-cookie"), None)
    return None, cookie


def create_identity(prober: Prober, flow: AuthFlow, label: str, run_tag: str,
                    extra: dict[str, Any] | None = None) -> Identity:
    """Register (when the API has a sign-up) and log in a fresh user; `extra` fields are added to the sign-up
    body (mass-assignment probes send `role: admin` this way)."""
    if flow.signup is None:
        raise IdentityError("the API has no registration operation to create test users with; name one in "
                            "portfolio-grader.yaml (auth: register: POST /path)", [])
    exchanges: list[Exchange] = []
    schema = flow.signup.request_schema or flow.signup.request_form_schema or {}
    for attempt, password in enumerate(_STRONG_PASSWORDS):
        body, login_value = signup_body(schema, flow, label, f"{run_tag}{attempt}", password)
        body.update(extra or {})
        if flow.signup.request_schema is None and flow.signup.request_form_schema is not None:
            signup = prober.request("POST", flow.signup.path, content=urlencode(body),
                                    headers={"Content-Type": "application/x-www-form-urlencoded"})
        else:
            signup = prober.request("POST", flow.signup.path, json=body)
        exchanges.append(signup)
        if signup.status is not None and signup.status < 300:
            break
        if not (signup.status in (400, 409, 422) and "pass" in signup.text.lower()):
            raise IdentityError(f"registering user {label} with {flow.signup.label} failed: "
                                f"{signup.status or signup.error}", exchanges)
    else:
        raise IdentityError(f"registering user {label} failed even with a long, mixed password", exchanges)

    answer = login(prober, flow, login_value, password)
    exchanges.append(answer)
    token, cookie = token_from(answer, flow) if answer.status and answer.status < 300 else (None, None)
    if token is None and cookie is None:
        raise IdentityError(f"logging in user {label} with {flow.login.label} gave no token or session cookie "
                            f"({answer.status or answer.error})", exchanges)
    return Identity(label=label, login_value=login_value, password=password, token=token, cookie=cookie,
                    signup_body=body, signup_response=exchanges[-2].json(), exchanges=exchanges)


def signup_body(schema: dict, flow: AuthFlow, label: str, tag: str, password: str) -> tuple[dict, str]:
    """A schema-valid sign-up body for a fresh, unique user with `password`, and the value it logs in with."""
    body = valid_example(schema) if schema else {}
    body = body if isinstance(body, dict) else {}
    unique = f"pg{tag}{label.lower()}{secrets.token_hex(3)}"
    props = schema.get("properties") or {}
    for name, sub in props.items():
        low = name.lower()
        if name in PASSWORD_FIELDS or "password" in low:  # password and its confirmation
            body[name] = password
        elif (sub or {}).get("format") == "email" or "email" in low:
            body[name] = f"{unique}@example.com"
        elif low in ("username", "user_name", "login", "handle") or low == "name" and "username" not in props:
            body[name] = unique
    login_value = body.get(flow.identity_field) or next(
        (body[k] for k in ("email", "username", "user_name", "login") if k in body), unique)
    return body, str(login_value)


def _dig(body: Any, path: str | None) -> Any:
    for part in (path or "").split("."):
        if not isinstance(body, dict):
            return None
        body = body.get(part)
    return body
