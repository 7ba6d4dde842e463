"""Throwaway users the grader registers and logs in, to probe authentication and ownership.

Their data is unique per grade and schema-valid (formats, enums, lengths); a registration refused
for a weak password is retried with a stronger one. Their tokens are the grader's own, so they
appear unredacted in curl lines: the learner can replay every request.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from .authflow import PASSWORD_FIELDS, find_token_path
from .models import AuthFlow, Evidence, Operation
from .payloads import _type_of, valid_example
from .probe import Exchange, Prober

_STRONG_PASSWORDS = ("Grader-Pass-9x!Qv", "Gr4der!Pa55w0rd#Long-Enough-2026")

# Fields that grant privilege: test users are ordinary users, so these are left out of a sign-up (or, when the
# schema requires one, given the least privileged value). The mass-assignment probe sends them on purpose.
PRIVILEGED_FIELDS = frozenset({"role", "roles", "user_role", "userrole", "usertype", "user_type", "is_admin",
                               "isadmin", "admin", "is_superuser", "issuperuser", "superuser", "is_staff",
                               "isstaff", "staff", "permissions", "scopes", "groups", "is_moderator"})
# Fields a second user or object may not share with the first (a unique index): each gets a fresh value.
_UNIQUE_WORDS = re.compile(r"phone|mobile|tel(ephone)?$|handle|slug|nick|cpf|document|ssn|code$", re.I)
# an optional field naming another object (`coupon_id`, `categoryId`, `tag_ids`): a made-up value points at nothing
_REFERENCE = re.compile(r"(^|_)ids?$|[a-z0-9]Ids?$")
# A refusal that says the value is taken: the next attempt uses fresh values.
_TAKEN_WORDS = re.compile(r"already|exist|taken|unique|duplicate|in use|registered", re.I)


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
    cookie: str | None = None  # the session cookie, `name=value`
    csrf_cookie: str | None = None  # a cookie session's CSRF cookie (`csrftoken=...`), sent beside it
    csrf: str | None = None  # the CSRF token its unsafe requests carry in a header
    signup_body: dict[str, Any] = field(default_factory=dict)
    signup_response: Any = None
    exchanges: list[Exchange] = field(default_factory=list)

    def headers(self, flow: AuthFlow) -> dict[str, str]:
        if self.token is not None:
            return {flow.send_header: f"{flow.send_prefix}{self.token}"}
        if not self.cookie:
            return {}
        headers = {"Cookie": "; ".join(c for c in (self.cookie, self.csrf_cookie) if c)}
        if self.csrf:  # the header each framework reads it from (Django, csurf/Rails, Angular/axios)
            headers.update({name: self.csrf for name in CSRF_HEADERS})
        return headers


CSRF_HEADERS = ("X-CSRFToken", "X-CSRF-Token", "X-XSRF-TOKEN")
_CSRF_NAME = re.compile(r"csrf|xsrf", re.I)
_SESSION_NAME = re.compile(r"sess|sid|auth|token|jwt|login|user", re.I)
_CSRF_FIELDS = ("csrfToken", "csrf_token", "csrf", "_csrf", "token", "csrftoken", "xsrfToken")


def set_cookies(exchange: Exchange) -> list[tuple[str, str]]:
    """The (name, value) of each cookie an answer sets; the client folds several Set-Cookie headers into one, and
    an `expires=Thu, 01 Jan ...` holds a comma of its own, so a new cookie starts only where `name=` follows."""
    joined = next((v for k, v in exchange.headers.items() if k.lower() == "set-cookie"), "")
    pairs = []
    for part in re.split(r",\s*(?=[^;,=\s]+=)", joined):
        name, sep, value = part.split(";", 1)[0].strip().partition("=")
        if sep and name:
            pairs.append((name, value))
    return pairs


def _session_and_csrf(pairs: list[tuple[str, str]]) -> tuple[str | None, tuple[str, str] | None]:
    """The session cookie (`name=value`; a session-like name first) and the CSRF cookie among an answer's."""
    csrf = next((p for p in pairs if _CSRF_NAME.search(p[0])), None)
    others = [p for p in pairs if p is not csrf and p[1]]
    session = next((p for p in others if _SESSION_NAME.search(p[0])), others[0] if others else None)
    return (f"{session[0]}={session[1]}" if session else None), csrf


def csrf_for(prober: Prober, flow: AuthFlow, identity: Identity, login_answer: Exchange) -> list[Exchange]:
    """Give a cookie session its CSRF token: the token a CSRF operation of the API hands out (`GET /api/csrf/`:
    csurf's token is not its cookie), else the CSRF cookie's own value (Django's and Angular's double submit).
    The exchanges it made."""
    _, pair = _session_and_csrf(set_cookies(login_answer))
    if pair:
        identity.csrf_cookie, identity.csrf = f"{pair[0]}={pair[1]}", pair[1]
    if flow.csrf is None:
        return []
    answer = prober.request("GET", flow.csrf.path, headers=identity.headers(flow))
    if answer.status is None or answer.status >= 300:
        return [answer]
    _, pair = _session_and_csrf(set_cookies(answer))
    if pair:
        identity.csrf_cookie, identity.csrf = f"{pair[0]}={pair[1]}", pair[1]
    body = answer.json()
    given = next((body[k] for k in _CSRF_FIELDS if isinstance(body, dict) and isinstance(body.get(k), str)), None)
    if given:
        identity.csrf = given
    return [answer]


_NO_LOGIN = ("the API has no login operation to log test users in with; name one in portfolio-grader.yaml "
             "(auth: login: POST /path)")


def login(prober: Prober, flow: AuthFlow, login_value: str, password: str) -> Exchange:
    """One login request in the API's own format (JSON, or form-encoded for the OAuth2 password flow)."""
    if flow.login is None:
        raise IdentityError(_NO_LOGIN, [])
    body = {flow.identity_field: login_value, flow.password_field: password}
    if flow.login_form:
        return prober.request("POST", flow.login.path, content=urlencode(body),
                              headers={"Content-Type": "application/x-www-form-urlencoded"})
    return prober.request("POST", flow.login.path, json=body)


def token_from(exchange: Exchange, flow: AuthFlow) -> tuple[str | None, str | None]:
    """(token, cookie) from a login response: the documented field, else any token-like field, else a JWT under
    another name (simplejwt's `access`, never its `refresh`), else Set-Cookie."""
    body = exchange.json()
    path = flow.token_path if flow.token_path and _dig(body, flow.token_path) else find_token_path(body)
    token = _dig(body, path) if path else _access_jwt(body)
    if isinstance(token, str) and token:
        return token, None
    return None, _session_and_csrf(set_cookies(exchange))[0]


_JWT_SHAPE = re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]*")


def _access_jwt(body: Any) -> str | None:
    """A JWT-shaped value at a key that is no refresh token, the `access`-named one first (top level or in `data`)."""
    for node in (body, body.get("data") if isinstance(body, dict) else None):
        if isinstance(node, dict):
            found = sorted((k for k, v in node.items() if isinstance(v, str) and _JWT_SHAPE.fullmatch(v)
                            and "refresh" not in k.lower()), key=lambda k: "access" not in k.lower())
            if found:
                return node[found[0]]
    return None


# What a login that refused says in a 2xx body (`200 {"status": "fail", "message": "Password is not correct"}`).
_LOGIN_FAILURE_WORDS = re.compile(r"\b(?:fail(?:ed|ure)?|invalid|incorrect|wrong|not correct|does not exist|"
                                  r"doesn'?t exist|not found|unknown|error|denied|unauthori[sz]ed|bad credentials)\b",
                                  re.I)


def login_failed(exchange: Exchange, flow: AuthFlow) -> bool:
    """Did a login refuse, by what it means: a 4xx, or a 2xx with no token and no session cookie whose body says
    it failed. A server error or no answer is neither a refusal nor a success."""
    if exchange.status is None or exchange.status >= 500:
        return False
    if exchange.status >= 400:
        return True
    if exchange.status >= 300 or any(token_from(exchange, flow)):
        return False
    return bool(_LOGIN_FAILURE_WORDS.search(exchange.text[:2000]))


def create_identity(prober: Prober, flow: AuthFlow, label: str, run_tag: str,
                    extra: dict[str, Any] | None = None) -> Identity:
    """Register (when the API has a sign-up) and log in a fresh user; `extra` fields are added to the sign-up
    body (mass-assignment probes send `role: admin` this way)."""
    if flow.signup is None:
        raise IdentityError("the API has no registration operation to create test users with; name one in "
                            "portfolio-grader.yaml (auth: register: POST /path)", [])
    exchanges: list[Exchange] = []
    schema = flow.signup.request_schema or flow.signup.request_form_schema or {}
    if flow.issues_keys:
        return _key_identity(prober, flow, flow.signup, schema, label, run_tag, extra)
    if flow.login is None:
        raise IdentityError(_NO_LOGIN, [])
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
        if signup.status is not None and signup.status >= 500 and not login_failed(
                tried := login(prober, flow, login_value, password), flow) and any(token_from(tried, flow)):
            break  # the sign-up crashed after it made the account (its answer, not the insert, failed): usable
        if not (signup.status in (400, 409, 422) and ("pass" in signup.text.lower()
                                                       or _TAKEN_WORDS.search(signup.text))):
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
    identity = Identity(label=label, login_value=login_value, password=password, token=token, cookie=cookie,
                        signup_body=body, signup_response=exchanges[-2].json(), exchanges=exchanges)
    if cookie is not None:
        exchanges.extend(csrf_for(prober, flow, identity, answer))
    return identity


def _key_identity(prober: Prober, flow: AuthFlow, signup: Operation, schema: dict, label: str, run_tag: str,
                  extra: dict[str, Any] | None) -> Identity:
    """An identity of an API without passwords: one API key, asked for with a fresh, unique body."""
    body, name = signup_body(schema, flow, label, run_tag, password="")
    body.update(extra or {})
    answer = prober.request("POST", signup.path, json=body)
    key = _dig(answer.json(), flow.token_path) if answer.status and answer.status < 300 else None
    if not isinstance(key, str) or not key:
        raise IdentityError(f"asking {signup.label} for an API key for user {label} gave none "
                            f"({answer.status or answer.error})", [answer])
    return Identity(label=label, login_value=name, password="", token=key, signup_body=body,
                    signup_response=answer.json(), exchanges=[answer])


def signup_body(schema: dict, flow: AuthFlow, label: str, tag: str, password: str) -> tuple[dict, str]:
    """A schema-valid sign-up body for a fresh, unique user with `password`, and the value it logs in with."""
    body = valid_example(schema) if schema else {}
    body = body if isinstance(body, dict) else {}
    unique = f"pg{tag}{label.lower()}{secrets.token_hex(3)}"
    props = schema.get("properties") or {}
    required = set(schema.get("required") or ())
    for name, sub in props.items():
        low = name.lower()
        sub = sub if isinstance(sub, dict) else {}
        if low in PRIVILEGED_FIELDS:
            body.pop(name, None)
            if name in required:
                body[name] = least_privileged(sub)
        elif name in PASSWORD_FIELDS or "password" in low:  # password and its confirmation
            body[name] = password
        elif sub.get("format") == "email" or "email" in low:
            body[name] = f"{unique}@example.com"
        elif (low in ("username", "user_name", "login", "handle") or name == flow.identity_field
              or low == "name" and "username" not in props):
            body[name] = unique
        elif _UNIQUE_WORDS.search(low) and _type_of(sub) in ("string", "integer", None):
            body[name] = _unique_value(sub, low)
    login_value = body.get(flow.identity_field) or next(
        (body[k] for k in ("email", "username", "user_name", "login") if k in body), unique)
    return body, str(login_value)


def fresh_object(schema: dict | None, keys: tuple[str, ...] = ()) -> Any:
    """A schema-valid create body whose key fields (`keys`: the natural key a path addresses the object by, a
    title or a slug) and unique-looking fields hold fresh values, so that no create collides with an earlier one.
    Optional fields that reference other objects (`coupon_id`, `categoryId`, an optional `id`) are left out: an
    example id names an object that need not exist, and the create is refused for it (404 "Coupon not found")."""
    body = valid_example(schema) if schema else {}
    if not isinstance(body, dict):
        return body
    required = set((schema or {}).get("required") or ())
    for name, sub in ((schema or {}).get("properties") or {}).items():
        sub = sub if isinstance(sub, dict) else {}
        if name not in required and name not in keys and _REFERENCE.search(name):
            body.pop(name, None)
            continue
        if (name in body and (name in keys or _UNIQUE_WORDS.search(name.lower()))
                and _type_of(sub) in ("string", "integer", None) and not sub.get("enum") and not sub.get("format")):
            body[name] = _unique_value(sub, name.lower())
    return body


def least_privileged(schema: dict) -> Any:
    """The value of a required privilege field that grants nothing: false, an empty list, the plainest role."""
    kind = _type_of(schema)
    options = [v for v in schema.get("enum") or () if v is not None]
    if options:
        plain = [v for v in options if str(v).lower() in ("user", "member", "customer", "regular", "basic",
                                                           "student", "viewer", "reader")]
        return (plain or [v for v in options if "admin" not in str(v).lower()] or options)[0]
    plainest: dict[str | None, Any] = {"boolean": False, "array": [], "object": {}, "integer": 0}
    return plainest.get(kind, "user")


def _unique_value(schema: dict, low: str) -> Any:
    """A fresh value for a unique-looking field: digits for phones, numbers and documents, a token otherwise."""
    digits = f"{secrets.randbelow(10 ** 8):08d}"
    if _type_of(schema) == "integer":
        return int("9" + digits)
    if re.search(r"phone|mobile|tel|cpf|document|ssn", low):
        text = "+1555" + digits
        pattern = schema.get("pattern")
        if pattern and not re.search(pattern, text):
            text = "555" + digits
        return text[: schema["maxLength"]] if schema.get("maxLength") else text
    text = f"pg-{secrets.token_hex(4)}"[: schema.get("maxLength") or None]
    pattern = schema.get("pattern")
    return valid_example(schema) if pattern and not re.search(pattern, text) else text  # a postal code's pattern


def _dig(body: Any, path: str | None) -> Any:
    for part in (path or "").split("."):
        if not isinstance(body, dict):
            return None
        body = body.get(part)
    return body
