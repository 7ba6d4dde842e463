"""Inferring how a client signs up, logs in and sends its credentials, from the OpenAPI document.

Covers the shapes learner projects use: JSON register/login pairs (`/auth/register` + `/auth/login`,
`/signup` + `/signin`, `/users` + `/sessions`, `/api/v1/accounts` + `/api/v1/tokens`), FastAPI's
form-encoded OAuth2 password flow (`/token` with OAuth2PasswordRequestForm), tokens under
`access_token`, `token`, `jwt`, `accessToken`, `id_token` or nested in `data`/`tokens`, and credentials
sent as `Authorization: Bearer`, as an API-key header, or as a session cookie. The manifest's `auth:`
lines override any of it.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from .models import AuthFlow, Manifest, Operation

# English first, then the words learner projects in other languages use (pt, es, fr, de, id, it, nl)
PASSWORD_FIELDS = ("password", "pass", "pwd", "passwd", "password1", "plainPassword", "pass_word", "senha",
                   "contrasena", "contraseña", "clave", "mot_de_passe", "motdepasse", "passwort", "kennwort", "sandi",
                   "parola", "wachtwoord")
IDENTITY_FIELDS = ("email", "username", "user_name", "userName", "login", "handle", "phone", "correo", "usuario",
                   "nome_usuario", "nomeUsuario", "utilisateur", "benutzer", "benutzername", "telefone", "name")
TOKEN_FIELDS = ("access_token", "accessToken", "token", "jwt", "id_token", "idToken", "auth_token", "authToken")
_LOGIN_WORDS = re.compile(r"log-?in|sign-?in|token|sessions?$|authenticate|/auth/?$|entrar|autenticar|iniciar|"
                          r"connexion|anmelden", re.I)
_REGISTER_WORDS = re.compile(r"regist|sign-?up|join|/accounts?/?$|/users?/?$|cadastr|inscri|/usuarios?/?$", re.I)
_ME_PATH = re.compile(r"/(users?/)?(me|self|current)/?$|/(profile|whoami|account)/?$", re.I)
_ADMIN = re.compile(r"\badmin", re.I)


def infer_auth(operations: list[Operation], spec: dict[str, Any], manifest: Manifest | None) -> tuple[AuthFlow | None, str | None]:
    """The auth flow, or None and the reason it could not be inferred."""
    by_label = {op.label: op for op in operations}
    named = manifest.auth if manifest and manifest.auth else None
    notes: list[str] = []

    login = _named(by_label, named.login if named else None, notes, "login") or _find_login(operations, spec, notes)
    signup = _named(by_label, named.register_op if named else None, notes, "register") or _find_signup(operations, login, notes)
    if login is None and signup is None and not named:
        keys = _key_flow(operations, spec, notes)
        if keys is not None:
            return keys, None
    if login is None:
        if signup is None:
            if not any(op.security for op in operations) and not _security_schemes(spec):
                return None, "the API declares no security and has no login operation"
            return None, ("no login operation was found (a POST whose body has a password field, on a path like "
                          "/login, /token or /sessions)")
        return None, f"{signup.label} registers users, but no login operation was found"

    login_schema = login.request_schema or login.request_form_schema or {}
    form = login.request_schema is None and login.request_form_schema is not None
    password = _field(login_schema, PASSWORD_FIELDS) or "password"
    identity = _field(login_schema, IDENTITY_FIELDS) or "username"  # OAuth2's password flow: username
    header, prefix = _how_sent(spec)
    token_path = named.token if named and named.token else _token_path(login)
    notes.append(f"login: {login.label} ({'form-encoded' if form else 'JSON'}: {identity} + {password})")
    notes.append(f"credentials sent as `{header}: {prefix}<token>`" if header else "credentials sent as a cookie")
    return AuthFlow(
        signup=signup,
        login=login,
        login_form=form,
        identity_field=identity,
        password_field=password,
        token_path=token_path,
        send_header=header or "Cookie",
        send_prefix=prefix,
        me=next((op for op in operations if op.method == "GET" and _ME_PATH.search(op.path)), None),
        csrf=next((op for op in operations if op.method == "GET" and _CSRF_PATH.search(op.path)), None),
        admin_operations=[op for op in operations if _is_admin(op) or op.label in _named_admin_ops(named)],
        evidence=notes,
    ), None


KEY_FIELDS = ("api_key", "apiKey", "apikey", "key", "access_key", "accessKey", "client_secret", "token")
_KEY_ISSUER = re.compile(r"keys?/?$|api-?keys?|tokens?/?$|regist|sign-?up|/clients?/?$|/accounts?/?$", re.I)


def _key_flow(operations: list[Operation], spec: dict, notes: list[str]) -> AuthFlow | None:
    """An API without passwords whose clients get an API key from a POST (`POST /keys` → `{"api_key": ...}`) and
    send it in the header its apiKey scheme names: each key issued is one identity. None when the spec declares
    no such header or no operation hands a key out."""
    header = next((str(s.get("name")) for s in _security_schemes(spec).values() if isinstance(s, dict)
                   and s.get("type") == "apiKey" and s.get("in") == "header" and s.get("name")), None)
    if header is None:
        return None
    for op in operations:
        if op.method != "POST" or "{" in op.path or has_password(op) or not _KEY_ISSUER.search(op.path):
            continue
        schema = next((r["schema"] for status, r in sorted(op.responses.items()) if status.startswith("2")
                       and isinstance(r.get("schema"), dict)), None)
        key = _field(schema, KEY_FIELDS) if schema else None
        if key is None:
            continue
        prefix = _declared_prefix(next(s for s in _security_schemes(spec).values() if isinstance(s, dict)
                                       and s.get("name") == header)) if header.lower() == "authorization" else ""
        notes += [f"API keys: {op.label} hands out `{key}`, one per test user (the API has no passwords)",
                  f"credentials sent as `{header}: {prefix}<key>`"]
        return AuthFlow(signup=op, login=op, issues_keys=True, identity_field="", password_field="",
                        token_path=key, send_header=header, send_prefix=prefix,
                        me=next((o for o in operations if o.method == "GET" and _ME_PATH.search(o.path)), None),
                        admin_operations=[o for o in operations if _is_admin(o)], evidence=notes)
    return None


_CSRF_PATH = re.compile(r"csrf|xsrf", re.I)


def _named_admin_ops(named) -> set[str]:
    return {f"{m.upper()} {p.strip()}" for m, _, p in (label.strip().partition(" ") for label in
                                                         (named.admin_operations if named else []))}


def _named(by_label: dict[str, Operation], label: str | None, notes: list[str], what: str) -> Operation | None:
    if not label:
        return None
    method, _, path = label.strip().partition(" ")
    op = by_label.get(f"{method.upper()} {path.strip()}")
    notes.append(f"{what}: {label} (named in portfolio-grader.yaml)" if op else
                 f"{what}: portfolio-grader.yaml names {label}, which the spec does not document")
    return op


def has_password(op: Operation) -> bool:
    return any(_field(schema, PASSWORD_FIELDS) for schema in (op.request_schema, op.request_form_schema) if schema)


def _find_login(operations: list[Operation], spec: dict, notes: list[str]) -> Operation | None:
    token_url = _oauth2_token_url(spec)
    candidates = [op for op in operations if op.method == "POST" and has_password(op)]
    if token_url:
        match = next((op for op in candidates if op.path.rstrip("/").endswith(token_url.rstrip("/"))), None)
        if match:
            notes.append(f"the OAuth2 password flow's tokenUrl is {token_url}")
            return match
    words = [op for op in candidates if _LOGIN_WORDS.search(op.path) or _LOGIN_WORDS.search(op.operation_id or "")]
    return words[0] if words else None


def _find_signup(operations: list[Operation], login: Operation | None, notes: list[str]) -> Operation | None:
    candidates = [op for op in operations if op.method == "POST" and op is not login and has_password(op)]
    ranked = sorted(candidates, key=lambda op: (not re.search(r"regist|sign-?up", op.path + (op.operation_id or ""), re.I),
                                                not _REGISTER_WORDS.search(op.path), len(op.path)))
    if ranked:
        notes.append(f"register: {ranked[0].label}")
    return ranked[0] if ranked else None


def _field(schema: dict | None, names: tuple[str, ...]) -> str | None:
    """The property named one of `names`, else one that ends in `_<name>` (`user_password`, `user_login`);
    a bare `name` only as itself (`first_name` is no login)."""
    props = (schema or {}).get("properties") or {}
    lowered = {p.lower(): p for p in props}
    for name in names:
        if name.lower() in lowered:
            return lowered[name.lower()]
    for name in (n for n in names if n != "name"):
        found = next((p for low, p in lowered.items() if re.search(rf"[_-]{re.escape(name.lower())}$", low)), None)
        if found:
            return found
    return None


def _security_schemes(spec: dict) -> dict:
    return ((spec.get("components") or {}).get("securitySchemes") or spec.get("securityDefinitions") or {})


def _oauth2_token_url(spec: dict) -> str | None:
    for scheme in _security_schemes(spec).values():
        flow = ((scheme or {}).get("flows") or {}).get("password") or {}
        if flow.get("tokenUrl"):  # "token", "/auth/token" or a full URL
            return "/" + urlsplit(str(flow["tokenUrl"])).path.lstrip("/")
    return None


def _how_sent(spec: dict) -> tuple[str | None, str]:
    """(header, prefix) credentials are sent in; (None, "") for a cookie session. A bearer or OAuth2 scheme wins
    over an API-key one: APIs that offer both log users in with tokens and give keys to machines. A header scheme
    wins over a cookie one (DRF's drf-spectacular lists SessionAuthentication's cookieAuth beside tokenAuth: the
    login hands out the token), and basic auth needs no token at all."""
    schemes = [s for s in _security_schemes(spec).values() if isinstance(s, dict)]
    if any(s.get("type") == "oauth2" or str(s.get("scheme", "")).lower() == "bearer" for s in schemes):
        return "Authorization", "Bearer "
    keys = [s for s in schemes if s.get("type") == "apiKey"]
    header = next((s for s in keys if s.get("in") == "header"), None)
    if header is not None:
        name = header.get("name") or "X-API-Key"
        return name, _declared_prefix(header) if name.lower() == "authorization" else ""
    if any(s.get("in") == "cookie" for s in keys):
        return None, ""
    return "Authorization", "Bearer "


# an apiKey scheme on Authorization says its scheme word in prose: drf-spectacular's 'required prefix "Token"'
_PREFIX_SAID = re.compile(r"""prefix\w*\W+(?:\w+\W+){0,3}?(?:["'`](\w[\w-]*)["'`]|(?-i:(Token|Bearer|JWT|Api-?Key))\b)""", re.I)


def _declared_prefix(scheme: dict) -> str:
    """The scheme word an `apiKey` on Authorization carries before the token ("Token "), when its description
    says; "" when it does not (calibrate_carrier then tries the usual ones)."""
    said = _PREFIX_SAID.search(str(scheme.get("description") or ""))
    return f"{said.group(1) or said.group(2)} " if said else ""


def _token_path(login: Operation) -> str | None:
    """Where the token is in the login response, per its schema; None: find it in the actual response."""
    schema = next((r["schema"] for s, r in sorted(login.responses.items()) if s.startswith("2") and r.get("schema")), None)
    return find_token_path(schema.get("properties") if isinstance(schema, dict) else None, is_schema=True)


def find_token_path(node: Any, is_schema: bool = False, prefix: str = "") -> str | None:
    """The dotted path of a token field in a response body (or in a schema's properties), one level deep."""
    if not isinstance(node, dict):
        return None
    lowered = {k.lower(): k for k in node}
    for name in TOKEN_FIELDS:
        key = lowered.get(name.lower())
        if key is not None and (is_schema or isinstance(node[key], str)):
            return prefix + key
    for container in ("data", "tokens", "result", "auth"):
        key = lowered.get(container)
        if key is not None and not prefix:
            inner = node[key].get("properties") if is_schema and isinstance(node[key], dict) else node[key]
            found = find_token_path(inner, is_schema, prefix=f"{key}.")
            if found:
                return found
    return None


def _is_admin(op: Operation) -> bool:
    return any(_ADMIN.search(t) for t in op.tags) or "/admin" in op.path.lower() or bool(
        re.search(r"admin[- ]only|requires? admin|administrators? only", op.summary, re.I))


# Headers learner APIs read a token from when their spec does not say (Express tutorials' `x-access-token`;
# DRF's TokenAuthentication `Token `, djangorestframework-jwt's `JWT `).
TOKEN_CARRIERS = (("Authorization", "Bearer "), ("Authorization", "Token "), ("x-access-token", ""),
                  ("x-auth-token", ""), ("Authorization", ""), ("Authorization", "JWT "), ("token", ""), ("x-token", ""))


def calibrate_carrier(prober: Any, flow: AuthFlow, spec: dict, operations: list[Operation], token: str) -> AuthFlow:
    """The flow with the header the API really reads the token from: the first carrier a protected GET (one that
    refuses an anonymous request) accepts, when the spec declares no scheme, or declares an `apiKey` on
    Authorization without saying its scheme word (then only Authorization's prefixes are tried, the bare token
    first). Unchanged when the spec says, when the carrier already used works, or when nothing tells."""
    declared = bool(_security_schemes(spec))
    unsaid_prefix = flow.send_header.lower() == "authorization" and not flow.send_prefix
    if flow.send_header == "Cookie" or (declared and not unsaid_prefix):
        return flow
    carriers = [("Authorization", ""), *(c for c in TOKEN_CARRIERS if c[0] == "Authorization" and c[1])] \
        if declared else TOKEN_CARRIERS
    public = {flow.login.label if flow.login else "", flow.signup.label if flow.signup else ""}
    for op in [o for o in operations if o.method == "GET" and "{" not in o.path and o.label not in public][:5]:
        anonymous = prober.request("GET", op.path)
        if anonymous.status not in (401, 403):
            continue
        for header, prefix in carriers:
            answer = prober.request("GET", op.path, headers={header: f"{prefix}{token}"})
            if answer.status is not None and 200 <= answer.status < 300:
                if (header, prefix) == (flow.send_header, flow.send_prefix):
                    return flow
                return flow.model_copy(update={"send_header": header, "send_prefix": prefix, "evidence": [
                    *flow.evidence, f"credentials sent as `{header}: {prefix}<token>`: the spec does not say, and "
                                    f"GET {op.path} refused an anonymous request ({anonymous.status}) but accepted "
                                    "the token there"]})
        return flow  # a protected GET took the token in no known header: nothing better to say
    return flow
