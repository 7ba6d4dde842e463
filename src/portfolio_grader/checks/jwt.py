"""Authentication probes: protected routes refuse anonymous callers, and JWTs cannot be forged.

An attacker who can talk to the API holds one genuine token (their own) and tries to turn it into
someone else's: an unsigned `alg: none` token, a stripped or edited signature, a payload naming another
user, a guessed HMAC secret (offline, against a wordlist and the secrets committed in the repo), an
expired token. Every attack is replayed against the service under grade and judged by what it answered;
the evidence is the exact request with the forged token, as a curl line the learner can rerun.
"""

from __future__ import annotations

import json
import re
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from ..identities import Identity, IdentityError, fresh_object
from ..models import Evidence, Finding, Operation
from ..payloads import valid_example
from ..probe import Exchange
from .anonymous import probe_anonymous_writes
from .jwt_surface import (GARBAGE_TOKEN, Carrier, Forgery, Party, carrier_of, no_ambient_cookies,
                          refused as _refused, shows as _shows, walk)
from .jwt_codec import (HMAC_ALGS, Crack, Jwt, committed_secrets, crack, edited_payload, parse_jwt, sign,
                        tamper_signature, tampered_claims, unsigned)
from .objects import created_id, natural_key
from .operations import ok as _accepted, status_text
from .registry import CheckContext, check

MAX_OPERATIONS = 40  # auth.required probes at most this many operations
MAX_FINDINGS = 10
MAX_TARGETS = 4  # protected GETs tried as the replay target of forged tokens
DAY = 24 * 3600

_OWASP_API2 = "OWASP API2:2023 Broken Authentication"
_PUBLIC_PATH = re.compile(r"^/(?:api/)?(?:v\d+/)?(?:health|healthz|livez|readyz|ready|ping|status|metrics|version|"
                          r"docs|redoc|openapi|swagger|api-docs)\b", re.I)
_ENTRY_POINT = re.compile(r"log-?in|sign-?in|sign-?up|regist|/token|refresh|forgot|reset|verify|confirm|oauth|"
                          r"callback|/sessions?/?$", re.I)

# ---------------------------------------------------------------- the replay target


@dataclass
class Target:
    """A protected GET that accepts user A's genuine token and refuses a garbage one: forged tokens are judged
    there. `path` None: none was found, `problem` says why."""

    path: str | None
    genuine: Exchange | None = None
    garbage: Exchange | None = None
    problem: str | None = None
    tried: list[Exchange] = field(default_factory=list)

    def evidence(self) -> list[Evidence]:
        return [e.evidence("probing for a protected GET to replay tokens against") for e in self.tried[-3:]]


def _user(ctx: CheckContext, count: int = 1) -> list[Identity]:
    if ctx.api.auth is None or ctx.prober is None:
        return []
    try:
        return ctx.identities(count)
    except IdentityError:
        return []


def _target_candidates(ctx: CheckContext) -> list[Operation]:
    flow = ctx.api.auth
    ops: list[Operation] = []
    if flow and flow.me and flow.me.method == "GET" and "{" not in flow.me.path:
        ops.append(flow.me)
    admin = {op.label for op in (flow.admin_operations if flow else [])}
    plain = [op for op in ctx.api.operations if op.method == "GET" and "{" not in op.path and op.label not in admin
             and not _PUBLIC_PATH.search(op.path) and op not in ops]
    ops += [op for op in plain if op.security] + [op for op in plain if not op.security]
    return ops[:MAX_TARGETS]


def find_target(ctx: CheckContext, carrier: Carrier) -> Target:
    def compute() -> Target:
        candidates = _target_candidates(ctx)
        if not candidates:
            return Target(None, problem="the spec documents no GET without path parameters to replay tokens against")
        tried: list[Exchange] = []
        reasons = []
        with no_ambient_cookies(ctx.prober):
            for op in candidates:
                genuine = ctx.prober.request("GET", op.path, headers=carrier.headers(carrier.token))
                tried.append(genuine)
                if not _accepted(genuine):
                    reasons.append(f"GET {op.path} answered {status_text(genuine)} to user A's genuine token")
                    continue
                garbage = ctx.prober.request("GET", op.path, headers=carrier.headers(GARBAGE_TOKEN))
                tried.append(garbage)
                if not _refused(garbage):
                    reasons.append(f"GET {op.path} answered {status_text(garbage)} to a garbage token, so it is not "
                                   "protected (see auth.required)")
                    continue
                return Target(op.path, genuine, garbage, tried=tried)
        return Target(None, problem="no protected GET accepts user A's genuine token and refuses a garbage one: "
                      + "; ".join(reasons), tried=tried)

    return ctx.memo(f"jwt_target:{carrier.token}", compute)


def _skip_with(ctx: CheckContext, reason: str, evidence: list[Evidence], hint: str | None = None):
    return ctx.skip(reason, hint).model_copy(update={"evidence": evidence[:5]})


def _replay(ctx: CheckContext, carrier: Carrier, path: str, token: str) -> Exchange:
    with no_ambient_cookies(ctx.prober):
        return ctx.prober.request("GET", path, headers=carrier.headers(token))


def _attacked_token(ctx: CheckContext) -> tuple[Identity | None, Carrier | None, Jwt | None, str | None]:
    """User A, how their token travels, the token as a JWT, or why there is nothing to attack."""
    users = _user(ctx)
    if not users:
        return None, None, None, "no test user could log in"
    carrier = carrier_of(ctx, users[0])
    if carrier is None:
        return users[0], None, None, "the login gave neither a token nor a session cookie"
    token = parse_jwt(carrier.token)
    if token is None:
        what = "session cookie" if carrier.cookie_name else "token"
        return users[0], carrier, None, (f"the {what} is not a JWT (an opaque value, not three base64url parts): "
                                         "there are no claims or signature to forge")
    return users[0], carrier, token, None


def _no_jwt(ctx: CheckContext, carrier: Carrier | None, problem: str):
    """An opaque token or session cookie has no claims or signature to attack: the JWT checks do not apply
    (not failed, not passed). No credentials at all: they could not be evaluated."""
    return ctx.not_applicable(problem) if carrier is not None else ctx.skip(problem)


def token_evidence(user: Identity | None, token: Jwt, note: str) -> list[Evidence]:
    """The login that issued the token, and a command that prints the token's header and claims (no secret
    needed): what a learner runs to see what the verdict saw."""
    decode = ("python3 -c 'import base64,json,sys; print([json.loads(base64.urlsafe_b64decode(p + \"=\" * (-len(p) % 4))) "
              f"for p in sys.argv[1].split(\".\")[:2]])' {shlex.quote(token.token)}")
    issued = [e.evidence("the login that issued the token") for e in (user.exchanges[-1:] if user else [])]
    return issued + [Evidence(curl=decode, note=note)]


# ---------------------------------------------------------------- hints

_HINT_AUTH_MISSING = (
    f"Every protected route must refuse a request without valid credentials with 401 ({_OWASP_API2}); 403 is for "
    "a caller who is known but not allowed. A route that forgets its guard serves anyone who finds it. FastAPI: "
    "put `Depends(get_current_user)` on the route, or on the whole router with "
    "`APIRouter(dependencies=[Depends(get_current_user)])`, and have the dependency raise "
    "`HTTPException(401, headers={'WWW-Authenticate': 'Bearer'})` when the token is missing or invalid (with "
    "`auto_error=False`, never fall through to an anonymous user). Express: mount the auth middleware before the "
    "routes (`router.use(requireAuth)`) and `return res.status(401).json(...)` when the header is missing or "
    "`jwt.verify` throws — never call `next()` without a user. Flask: `@jwt_required()` (Flask-JWT-Extended) or "
    "`@login_required` on every protected view. Then keep the spec honest: declare `security` exactly where it "
    "is enforced.")
_HINT_ALG_NONE = (
    "A JWT names its own algorithm in its header, and `alg: none` means \"no signature\": an attacker writes "
    "`{\"alg\":\"none\"}.{\"sub\":\"<any user>\"}.` and is whoever they like. The server, not the token, must "
    "choose the algorithm. PyJWT/FastAPI: `jwt.decode(token, SECRET_KEY, algorithms=[\"HS256\"])` — a fixed "
    "list, never taken from `jwt.get_unverified_header`, and never `options={\"verify_signature\": False}`. "
    "Express/jsonwebtoken: `jwt.verify(token, secret, { algorithms: ['HS256'] })` (`jwt.decode` verifies "
    "nothing). Flask-JWT-Extended: `JWT_ALGORITHM = \"HS256\"` and `JWT_DECODE_ALGORITHMS = [\"HS256\"]`.")
_HINT_SIGNATURE = (
    "The signature is the only thing that stops a client from editing its own token — changing `sub: 1` to "
    "`sub: 2` turns them into user 2. A server that reads the claims without verifying the signature trusts "
    "whatever the client wrote. PyJWT/FastAPI: decode with `jwt.decode(token, SECRET_KEY, algorithms=[\"HS256\"])` "
    "and let `InvalidSignatureError` become a 401; never `options={\"verify_signature\": False}` or "
    "`get_unverified_header`/base64-decoding the payload to find the user. Express/jsonwebtoken: "
    "`jwt.verify(token, secret, { algorithms: ['HS256'] })`, not `jwt.decode(token)`. Flask: "
    "`@jwt_required()` and `get_jwt_identity()` from Flask-JWT-Extended, which verify before they read.")
_HINT_WEAK_SECRET = (
    "An HS256 token is signed with a shared secret, and one token is enough to guess it offline at millions of "
    "tries per second (hashcat -m 16500, jwt_tool) — no request to the API, no rate limit. With the secret an "
    "attacker signs valid tokens for any user, admins included. Use a long random secret (32+ random bytes: "
    "`python -c \"import secrets; print(secrets.token_urlsafe(64))\"` or `openssl rand -base64 64`), read it "
    "from the environment with no fallback (`os.environ[\"JWT_SECRET\"]` — not `os.getenv(\"JWT_SECRET\", "
    "\"dev\")`; `process.env.JWT_SECRET` — not `|| 'secret'`), keep `.env` out of git (commit a `.env.example` "
    "with a placeholder), and rotate any secret that was ever committed: it stays in the history.")
_HINT_NO_EXPIRY = (
    "A token without `exp` (or one that lives for weeks) is a password that can never be changed: a token that "
    "leaks from a log, a browser or a phone works until the secret is rotated. Issue short-lived access tokens "
    "(15-60 minutes) and refresh them. PyJWT: `jwt.encode({\"sub\": str(user.id), \"iat\": now, \"exp\": now + "
    "timedelta(minutes=30)}, SECRET_KEY, algorithm=\"HS256\")`; Express/jsonwebtoken: `jwt.sign(payload, secret, "
    "{ expiresIn: '15m' })`; Flask-JWT-Extended: `JWT_ACCESS_TOKEN_EXPIRES = timedelta(minutes=15)`.")
_HINT_EXPIRED = (
    "`exp` and `nbf` only protect anything if the server checks them: an expired token that still works makes "
    "every leaked token valid forever. PyJWT checks both by default in `jwt.decode` — remove any "
    "`options={\"verify_exp\": False}` (or `verify_nbf`); Express/jsonwebtoken: drop `ignoreExpiration: true` "
    "and keep `clockTolerance` to a few seconds; Flask-JWT-Extended checks them unless `JWT_DECODE_LEEWAY` is "
    "huge. Allow at most a small leeway for clock skew.")


# what a forgery that worked on one operation of the walk says, by kind: (what the operation does, severity, hint)
_SURFACE_LEADS = {
    "jwt_alg_none_accepted": ("accepts unsigned tokens (`alg: none`)", "critical", _HINT_ALG_NONE),
    "jwt_signature_not_verified": ("does not verify the token's signature", "critical", _HINT_SIGNATURE),
    "jwt_expired_accepted": ("does not check the token's validity period (`exp`, `nbf`)", "high", _HINT_EXPIRED),
}


# ---------------------------------------------------------------- auth.required


def _is_public(ctx: CheckContext, op: Operation) -> bool:
    """Login, sign-up, health and docs operations, and those whose spec makes credentials optional
    (`security: [{}, {bearerAuth: []}]`): nobody has to be logged in to call them."""
    flow = ctx.api.auth
    if flow and op in (flow.login, flow.signup):
        return True
    spec = ctx.api.spec or {}
    raw = ((spec.get("paths") or {}).get(op.path) or {}).get(op.method.lower()) or {}
    requirements = raw.get("security", spec.get("security")) if isinstance(raw, dict) else None
    if isinstance(requirements, list) and any(r == {} for r in requirements):
        return True
    return bool(_PUBLIC_PATH.search(op.path)) or (op.method == "POST" and bool(_ENTRY_POINT.search(op.path)))


def _missing_id(param: dict[str, Any] | None) -> str:
    kind = ((param or {}).get("schema") or {}).get("type")
    return "999999999" if kind in ("integer", "number") else "portfolio-grader-missing"


def _own_objects(ctx: CheckContext, user: Identity | None) -> dict[str, str]:
    """{item template: real path} of objects the grader created as user A, one per top-level resource, so item
    paths are real."""
    if user is None:
        return {}

    def compute() -> dict[str, str]:
        # Keyed by the item path, not the parameter name: resources may share one (`{id}`), and an id of one
        # resource sent to another could address someone else's object.
        filled: dict[str, str] = {}
        for resource in [r for r in ctx.api.resources if "{" not in r.collection][:5]:
            body = fresh_object(resource.create.request_schema, natural_key(resource))
            created = ctx.prober.request("POST", resource.collection, json=body, headers=user.headers(ctx.api.auth))
            item_id = created_id(created.json(), body, resource) if _accepted(created) else None
            if item_id is not None:
                filled[resource.item] = resource.item.replace("{" + resource.id_param + "}", str(item_id))
        return filled

    return ctx.memo("auth_required_objects", compute)


def _request_for(op: Operation, own: dict[str, str]) -> tuple[str, dict[str, Any]]:
    """(path, request kwargs): item paths address the grader's own objects, else ids that do not exist, so no
    request without credentials can touch anyone else's data."""
    params = {p.get("name"): p for p in op.parameters if isinstance(p, dict)}
    path = op.path
    item = max((t for t in own if path == t or path.startswith(t + "/")), key=len, default=None)
    if item is not None:
        path = own[item] + path[len(item):]
    for name in re.findall(r"\{([^}]+)\}", path):
        path = path.replace("{" + name + "}", _missing_id(params.get(name)))
    query = {p["name"]: valid_example(p.get("schema") or {}, name=p["name"]) for p in params.values()
             if p.get("in") == "query" and p.get("required") and p.get("name")}
    kwargs: dict[str, Any] = {"params": query} if query else {}
    if op.method in ("POST", "PUT", "PATCH"):
        if op.request_schema is not None:
            kwargs["json"] = valid_example(op.request_schema)
        elif op.request_form_schema is not None:
            body = valid_example(op.request_form_schema)
            kwargs["content"] = urlencode(body if isinstance(body, dict) else {})
            kwargs["headers"] = {"Content-Type": "application/x-www-form-urlencoded"}
    return path, kwargs


def _send(ctx: CheckContext, op: Operation, path: str, kwargs: dict[str, Any], credentials: dict[str, str]) -> Exchange:
    headers = {**kwargs.get("headers", {}), **credentials}
    rest = {k: v for k, v in kwargs.items() if k != "headers"}
    with no_ambient_cookies(ctx.prober):
        return ctx.prober.request(op.method, path, headers=headers, **rest)


_METHOD_ORDER = {"GET": 0, "HEAD": 1, "OPTIONS": 2, "POST": 3, "PUT": 4, "PATCH": 5, "DELETE": 6}


@check("auth.required", area="auth", title="Protected operations refuse requests without valid credentials",
       needs=("service", "spec"), judges_refusals=True)
def required(ctx: CheckContext):
    flow = ctx.api.auth
    declared = [op for op in ctx.api.operations if op.security and not _is_public(ctx, op)]
    users = _user(ctx)
    user = users[0] if users else None
    undeclared = [op for op in ctx.api.operations if not op.security and not _is_public(ctx, op)
                  and op.method in _METHOD_ORDER] if user is not None else []
    if not declared and flow is None:
        return ctx.skip("the spec declares no security and the API has no login operation: nothing is meant to "
                        "be protected", "auth:\n  login: POST /api/v1/sessions   # where a user logs in")
    if not declared and not undeclared:
        return ctx.skip("the spec declares no security, and without a test user ("
                        f"{ctx._memo.get('identities_error') or ctx.api.auth_problem or 'none could log in'}) the "
                        "protected operations cannot be told from public ones")
    ids = _own_objects(ctx, user)
    carrier = carrier_of(ctx, user) if user is not None else None
    if carrier is not None:  # the garbage travels the way user A's real credentials do
        garbage = carrier.headers(GARBAGE_TOKEN)
    elif flow is not None and flow.send_header == "Cookie":
        garbage = {"Cookie": f"session={GARBAGE_TOKEN}"}
    elif flow is not None:
        garbage = {flow.send_header: f"{flow.send_prefix}{GARBAGE_TOKEN}"}
    else:
        garbage = {"Authorization": f"Bearer {GARBAGE_TOKEN}"}

    # Operations the spec does not mark secured, but which inspect tokens: they are protected in fact.
    detected: list[tuple[Operation, str, dict[str, Any], Exchange]] = []
    public_in_fact = 0
    for op in sorted(undeclared, key=lambda o: _METHOD_ORDER.get(o.method, 9))[:max(0, MAX_OPERATIONS - len(declared))]:
        path, kwargs = _request_for(op, ids)
        probe = _send(ctx, op, path, kwargs, garbage)
        if _refused(probe):
            detected.append((op, path, kwargs, probe))
        else:
            public_in_fact += 1

    plan: list[tuple[Operation, str, dict[str, Any], Exchange | None]] = []
    for op in sorted(declared, key=lambda o: _METHOD_ORDER.get(o.method, 9))[:MAX_OPERATIONS]:
        path, kwargs = _request_for(op, ids)
        plan.append((op, path, kwargs, None))
    plan += [(op, path, kwargs, probe) for op, path, kwargs, probe in detected]
    plan.sort(key=lambda item: _METHOD_ORDER.get(item[0].method, 9))  # DELETE last: it may remove the object
    nothing_protected = (f"the spec declares no security and none of the {public_in_fact} undocumented operations "
                         "probed refused a garbage token: no operation could be identified as protected")
    if not plan and carrier is None:
        return ctx.skip(nothing_protected)

    if carrier is None:
        why = ctx._memo.get("identities_error") or ctx.api.auth_problem or "no test user could log in"
        return ctx.skip(f"no test user with working credentials ({why}): a refusal without credentials proves "
                        "nothing when the grader cannot show that the same request with genuine credentials "
                        "succeeds (an API that refuses everyone would pass)",
                        "auth:\n  login: POST /api/v1/sessions   # where a user logs in")
    genuine = carrier.headers(carrier.token)
    findings: list[Finding] = []
    evidence: list[Evidence] = []
    failed = 0
    refused: list[tuple[Operation, Exchange]] = []  # refused both ways; judged once the credentials are shown alive
    controls: list[Exchange] = []  # user A's genuine credentials accepted on a protected GET
    inconclusive: list[str] = []
    for op, path, kwargs, garbage_probe in plan[:MAX_OPERATIONS]:
        anonymous = _send(ctx, op, path, kwargs, {})
        with_garbage = garbage_probe or _send(ctx, op, path, kwargs, garbage)
        pair = [(anonymous, "no credentials"), (with_garbage, f"a garbage token ({GARBAGE_TOKEN})")]
        accepted = [(e, what) for e, what in pair if _accepted(e)]
        where = "" if op.security else " (the spec does not mark it secured, but it refuses a garbage token)"
        if accepted:
            failed += 1
            if len(findings) < MAX_FINDINGS:
                served = " and ".join(f"{status_text(e)} to {what}" for e, what in accepted)
                findings.append(ctx.fail(
                    "auth_missing", "high", f"{op.label} is protected{where} but answered {served}: anyone can "
                    f"call it without logging in.", operation=op.label,
                    evidence=[e.evidence(f"{what}: expected 401") for e, what in pair], hint=_HINT_AUTH_MISSING))
        elif all(_refused(e) for e, _ in pair):
            if op.method == "GET":  # the control: the same request with genuine credentials is served
                control = _send(ctx, op, path, kwargs, genuine)
                if _accepted(control):
                    controls.append(control)
                elif control.status != 403:  # a 403 knows who A is and forbids (an admin-only GET)
                    inconclusive.append(f"{op.label} (user A's genuine credentials got "
                                        f"{status_text(control)})")
                    continue
            refused.append((op, anonymous))
        else:
            inconclusive.append(f"{op.label} ({status_text(anonymous)} / {status_text(with_garbage)})")
    if failed > len(findings):
        findings[-1] = findings[-1].model_copy(update={
            "message": findings[-1].message + f" ({failed - len(findings)} more operation(s) answer without "
                                              "credentials too)"})
    anonymous = probe_anonymous_writes(ctx, user, {op.label for op, *_ in plan})
    for label, effect, chain in anonymous.open:
        failed += 1
        if len(findings) < MAX_FINDINGS:
            findings.append(ctx.fail(
                "auth_missing", "high", f"{label} works without any credentials: a request with none {effect} on "
                "user A's object (read back as A). Anyone can change or delete users' data.", operation=label,
                evidence=chain, hint=_HINT_AUTH_MISSING))
    inconclusive += anonymous.notes
    if not controls:  # nothing showed the credentials work: a refusal may be the API refusing everyone
        if refused:
            inconclusive.append(f"{len(refused)} operation(s) refused without credentials, but no protected GET "
                                "served user A's genuine credentials to show they work")
        refused = []
    else:
        evidence.append(controls[0].evidence("the control: the same request with user A's genuine credentials "
                                             "is served"))
    evidence += [anonymous.evidence(f"{op.label} without credentials: refused") for op, anonymous in refused]
    evidence += [attempt for _, attempt in anonymous.refused]
    passed = len(refused) + len(anonymous.refused)  # an anonymous write refused on A's live object: A's control
    judged = passed + failed
    note = (f"; {len(inconclusive)} inconclusive (" + ", ".join(inconclusive[:5]) + ")" if inconclusive else "")
    extra = f"; {len(detected)} undocumented protected operation(s) found by a garbage token" if detected else ""
    if not judged:
        return ctx.skip(nothing_protected if not plan else
                        f"no probed operation gave a clear answer without credentials{note}")
    control_note = (f"; user A's genuine credentials were served on {len(controls)} of them (the control)"
                    if controls else "")
    return ctx.verdict(f"{passed}/{judged} protected operation(s) refuse requests without credentials and with a "
                       f"garbage token{control_note}{extra}{note}", findings, evidence, score=passed / judged)


# ---------------------------------------------------------------- auth.jwt_forgery


@check("auth.jwt_forgery", area="auth", title="Forged JWTs (alg none, no or edited signature) are refused",
       needs=("service", "spec", "user"), judges_refusals=True)
def jwt_forgery(ctx: CheckContext):
    """The full forgery set on one protected GET (the target), then the forgeries on every other protected
    operation (checks/jwt_surface.py): a route of its own that skips verification is found where it is."""
    user_a, carrier, token, problem = _attacked_token(ctx)
    if token is None:
        return _no_jwt(ctx, carrier, problem)
    target = find_target(ctx, carrier)
    if target.path is not None and token.alg.lower() == "none":
        return ctx.verdict("the API issues unsigned JWTs", [ctx.fail(
            "jwt_alg_none_accepted", "critical", f"The API itself issues unsigned tokens (`alg: {token.alg}`) and "
            f"accepts them on GET {target.path}: anyone can write a token for any user.",
            operation=f"GET {target.path}", evidence=[target.genuine.evidence("user A's genuine token")],
            hint=_HINT_ALG_NONE)])
    users = _user(ctx, 2)
    user_b = users[1] if len(users) > 1 else None
    findings: list[Finding] = []
    evidence: list[Evidence] = []
    on_target = ""
    if target.path is not None:
        findings, evidence, on_target = _forge_on_target(ctx, user_a, user_b, carrier, token, target.path)
        evidence = [target.genuine.evidence("user A's genuine token: accepted (the baseline)"),
                    target.garbage.evidence("a garbage token: refused (the baseline)")] + evidence
    surface = walk(ctx, _protected(ctx, besides=target.path), _forgeries(ctx, token, user_a, carrier, user_b),
                   Party("user A", user_a, carrier))
    if target.path is None and not surface.covered:
        return _skip_with(ctx, f"{target.problem}; and on the other protected operations, {surface.summary()}",
                          target.evidence())
    findings = _surface_findings(ctx, findings, surface, target.path)
    evidence = evidence[:2] + surface.controls[:1] + evidence[2:] if evidence else surface.controls
    return ctx.verdict("; ".join(part for part in (on_target, surface.summary()) if part), findings, evidence)


def _forge_on_target(ctx: CheckContext, user_a: Identity, user_b: Identity | None, carrier: Carrier, token: Jwt,
                     path: str) -> tuple[list[Finding], list[Evidence], str]:
    """Every forgery on the target GET: alg none in four spellings, the signature stripped and edited, the payload
    edited to name user B. (findings, the refusals' evidence, the summary)."""
    findings: list[Finding] = []
    evidence: list[Evidence] = []
    # alg: none, in the spellings that slip past case-sensitive blocklists
    none_accepted: list[tuple[str, Exchange]] = []
    for alg in ("none", "None", "NONE", "nOnE"):
        exchange = _replay(ctx, carrier, path, unsigned(token.claims, alg))
        if _accepted(exchange):
            none_accepted.append((alg, exchange))
        elif alg == "none":
            evidence.append(exchange.evidence("alg none, same claims, empty signature: refused"))
    if none_accepted:
        first = none_accepted[0][1]
        who = " and answered as user A" if _shows(first, user_a) else ""
        findings.append(ctx.fail(
            "jwt_alg_none_accepted", "critical",
            f"GET {path} accepted an unsigned token (`alg: none`, user A's claims, no signature) with "
            f"{status_text(first)}{who}: anyone can write a token naming any user. Spellings accepted: "
            + ", ".join(f"`{alg}`" for alg, _ in none_accepted) + ".",
            operation=f"GET {path}", hint=_HINT_ALG_NONE,
            evidence=[e.evidence(f"alg {alg!r} token, no signature: expected 401") for alg, e in none_accepted[:3]]))

    # the genuine header and payload with the signature removed, or edited
    broken: list[tuple[Exchange, str]] = []
    head, payload, _ = token.parts
    for forged, what in ((f"{head}.{payload}.", "the signature stripped (header.payload.)"),
                         (tamper_signature(token.token), "the signature edited (characters flipped)")):
        exchange = _replay(ctx, carrier, path, forged)
        if _accepted(exchange):
            shown = " and answered as user A" if _shows(exchange, user_a) else ""
            broken.append((exchange, f"{what}: accepted with {status_text(exchange)}{shown}"))
        else:
            evidence.append(exchange.evidence(f"{what}: refused"))

    # the payload edited to name user B, with A's original signature kept
    other = parse_jwt(user_b.token) if user_b is not None else None
    claims, changed = tampered_claims(token, other)
    forged = edited_payload(token, claims)
    exchange = _replay(ctx, carrier, path, forged)
    edit = ", ".join(f"`{k}` {token.claims.get(k)!r} -> {claims[k]!r}" for k in changed)
    whose = "user B" if other is not None else "another user"
    if _accepted(exchange) and _shows(exchange, user_b):
        broken.append((exchange, f"the payload edited to name {whose} ({edit}), A's signature kept: accepted, and "
                                 f"the response is user B's ({user_b.login_value})"))
    elif _accepted(exchange) and _shows(exchange, user_a):
        evidence.append(exchange.evidence(f"the payload edited ({edit}), A's signature kept: {status_text(exchange)} but "
                                          "still answered as user A, so the edit had no effect"))
    elif _accepted(exchange):
        broken.append((exchange, f"the payload edited to name {whose} ({edit}), A's signature kept: accepted with "
                                 f"{status_text(exchange)} (the response does not show whose account it served)"))
    else:
        evidence.append(exchange.evidence(f"the payload edited to name {whose} ({edit}), A's signature kept: refused"))

    if broken:
        findings.append(ctx.fail(
            "jwt_signature_not_verified", "critical",
            f"GET {path} does not verify the token's signature: " + "; ".join(what for _, what in broken) + ".",
            operation=f"GET {path}", hint=_HINT_SIGNATURE,
            evidence=[e.evidence(what) for e, what in broken] + evidence[:1]))
    tried = 4 + 2 + 1
    refused = tried - len(none_accepted) - len(broken)
    return findings, evidence, (f"{refused}/{tried} forged tokens refused on GET {path} (alg none in 4 spellings, "
                                "signature stripped, signature edited, payload edited to another user)")


def _protected(ctx: CheckContext, besides: str | None) -> list[Operation]:
    """The operations meant to refuse callers without a valid token: those the spec secures, or every one that is
    not public when the spec secures none; but the target GET `besides`, which has had its own probe."""
    declared = any(op.security for op in ctx.api.operations)
    return [op for op in ctx.api.operations if not _is_public(ctx, op) and (op.security or not declared)
            and not (op.method == "GET" and op.path == besides)]


def _forgeries(ctx: CheckContext, token: Jwt, user_a: Identity, carrier: Carrier,
               user_b: Identity | None) -> list[Forgery]:
    """The forgery set the walk replays on every operation: alg none, the signature stripped and edited (user A's
    claims, on A's fresh objects), and the payload edited to name user B (on B's fresh objects)."""
    a = Party("user A", user_a, carrier)
    head, payload, _ = token.parts
    forgeries = [
        Forgery("alg none, user A's claims, no signature", "jwt_alg_none_accepted", unsigned(token.claims), a),
        Forgery("user A's token with the signature stripped", "jwt_signature_not_verified", f"{head}.{payload}.", a),
        Forgery("user A's token with the signature edited", "jwt_signature_not_verified",
                tamper_signature(token.token), a)]
    other = parse_jwt(user_b.token) if user_b is not None else None
    carrier_b = carrier_of(ctx, user_b) if user_b is not None else None
    claims, changed = tampered_claims(token, other)
    if other is not None and carrier_b is not None and changed and all(claims[k] == other.claims[k] for k in changed):
        edit = ", ".join(f"`{k}` {token.claims.get(k)!r} -> {claims[k]!r}" for k in changed)
        forgeries.append(Forgery(f"user A's token with the payload edited to name user B ({edit}), A's signature "
                                 "kept", "jwt_signature_not_verified", edited_payload(token, claims),
                                 Party("user B", user_b, carrier_b)))
    return forgeries


def _surface_findings(ctx: CheckContext, findings: list[Finding], surface, target: str | None) -> list[Finding]:
    """The walk's breaches as findings, one per operation and kind; a kind the target already failed on gets the
    other operations named in its message instead of a finding each."""
    grouped: dict[tuple[str, str], list] = {}
    for breach in surface.breaches:
        grouped.setdefault((breach.operation, breach.forgery.kind), []).append(breach)
    on_target = {f.kind: i for i, f in enumerate(findings)}
    also: dict[str, list[str]] = {}
    for (label, kind), breaches in grouped.items():
        if kind in on_target:
            also.setdefault(kind, []).append(label)
            continue
        if len(findings) >= MAX_FINDINGS:
            break
        lead, severity, hint = _SURFACE_LEADS[kind]
        elsewhere = f" (GET {target} refuses the same tokens: this route decodes them its own way)" if target else ""
        chain = breaches[0].chain[:1] + [e for b in breaches for e in b.chain[1:]]
        findings.append(ctx.fail(
            kind, severity, f"{label} {lead}: " + "; ".join(f"{b.forgery.what}: accepted, and {b.effect}"
                                                          for b in breaches)
            + f"{elsewhere}. Anyone holding such a token can act there.", operation=label, evidence=chain[:6],
            hint=hint))
    for kind, labels in also.items():
        i = on_target[kind]
        findings[i] = findings[i].model_copy(update={
            "message": findings[i].message + f" The same tokens work, judged by their effect, on {len(labels)} "
                                             f"more operation(s): {', '.join(labels[:8])}."})
    return findings


# ---------------------------------------------------------------- auth.jwt_secret


def _crack_token(ctx: CheckContext, token: Jwt) -> Crack:
    return ctx.memo(f"jwt_secret:{token.token}", lambda: crack(token, committed_secrets(ctx.facts.root)))


def _file_evidence(ctx: CheckContext, result: Crack) -> list[Evidence]:
    if result.source is None or result.source.startswith("the bundled") or ctx.facts.root is None:
        return []
    where = result.source.split(" ", 1)[0]
    rel, _, line = where.rpartition(":")
    try:
        text = (Path(ctx.facts.root) / rel).read_text(encoding="utf-8", errors="replace").splitlines()[int(line) - 1]
    except (OSError, ValueError, IndexError):
        return []
    secret = (result.key or b"").decode("utf-8", errors="replace")
    excerpt = text.replace(secret, result.shown) if secret else text
    return [Evidence(curl=f"sed -n {int(line)}p {shlex.quote(rel)}", file=where,
                     excerpt=excerpt.strip()[:300], note="the signing secret, committed in the repository")]


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 0.1 else f"{seconds * 1000:.0f} ms"


def _forge_fresh(token: Jwt, key: bytes, **times: int) -> str:
    now = int(time.time())
    claims = dict(token.claims)
    if "iat" in claims:
        claims["iat"] = now
    claims["exp"] = now + 900
    for name, value in times.items():
        claims[name] = value
    return sign(token.header, claims, key)


@check("auth.jwt_secret", area="auth", title="The JWT signing secret cannot be guessed", needs=("service", "user"))
def jwt_secret(ctx: CheckContext):
    user, carrier, token, problem = _attacked_token(ctx)
    if token is None:
        return _no_jwt(ctx, carrier, problem)
    if token.alg.upper() not in HMAC_ALGS:
        if token.alg.lower() == "none":
            return ctx.skip("the token is unsigned (`alg: none`): there is no secret to guess (see auth.jwt_forgery)")
        return ctx.verdict(f"the token is signed with {token.alg} (a key pair): there is no shared secret to guess",
                           evidence=token_evidence(user, token, f"token header: {json.dumps(token.header)}"))
    result = _crack_token(ctx, token)
    origin = (f"{result.from_wordlist} from the bundled wordlist, {result.from_repo} found in the repository"
              if ctx.facts.root is not None else f"{result.from_wordlist} from the bundled wordlist; no repository "
                                                  "was read")
    if result.key is None:
        target = find_target(ctx, carrier)
        proof = [target.genuine.evidence(f"the token attacked offline ({token.alg}): not cracked")] \
            if target.genuine is not None else token_evidence(user, token, f"the {token.alg} token attacked offline")
        return ctx.verdict(f"{result.tried} candidates tried ({origin}) in {_ms(result.seconds)}: the "
                           f"{token.alg} secret was not guessed", evidence=proof)

    target = find_target(ctx, carrier)
    files = _file_evidence(ctx, result)
    where = result.source if result.source.startswith("the bundled") else f"committed in {result.source}"
    found = (f"The token's {token.alg} signing secret was guessed offline in {_ms(result.seconds)} after "
             f"{result.tried} candidate{'s' if result.tried != 1 else ''}: `{result.shown}` ({where}).")
    if target.path is None:
        return ctx.verdict(found, [ctx.fail(
            "jwt_weak_secret", "critical", found + f" The signature matches, so anyone can sign tokens for any user "
            f"(a forged token could not be replayed: {target.problem}).", hint=_HINT_WEAK_SECRET,
            evidence=files + target.evidence())])
    forged = _replay(ctx, carrier, target.path, _forge_fresh(token, result.key))
    if _accepted(forged):
        finding = ctx.fail(
            "jwt_weak_secret", "critical", found + f" A token forged with it (same claims, fresh `exp`) was "
            f"accepted by GET {target.path} with {status_text(forged)}: anyone can sign tokens for any user.",
            operation=f"GET {target.path}", hint=_HINT_WEAK_SECRET,
            evidence=[forged.evidence(f"a token signed with the guessed secret `{result.shown}`: accepted")] + files)
    else:
        finding = ctx.fail(
            "jwt_weak_secret", "high", found + f" A token forged with it was refused by GET {target.path} "
            f"({status_text(forged)}) — the API may also track issued tokens — but the secret still signs valid "
            "tokens anywhere else it is used.", operation=f"GET {target.path}", hint=_HINT_WEAK_SECRET,
            evidence=[forged.evidence(f"a token signed with the guessed secret `{result.shown}`: refused")] + files)
    return ctx.verdict(found, [finding], [forged.evidence("forged with the guessed secret")])


# ---------------------------------------------------------------- auth.jwt_lifetime


def _duration(seconds: float) -> str:
    if seconds >= 2 * DAY:
        return f"{seconds / DAY:.0f} days"
    if seconds >= 2 * 3600:
        return f"{seconds / 3600:.0f} hours"
    return f"{seconds / 60:.0f} minutes"


@check("auth.jwt_lifetime", area="auth", title="JWTs expire, and expired tokens are refused", needs=("service", "user"))
def jwt_lifetime(ctx: CheckContext):
    user, carrier, token, problem = _attacked_token(ctx)
    if token is None:
        return _no_jwt(ctx, carrier, problem)
    findings: list[Finding] = []
    evidence: list[Evidence] = []
    claims = token.claims
    exp, iat = claims.get("exp"), claims.get("iat")
    numeric = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)  # noqa: E731
    shown_claims = token_evidence(user, token, "the token's claims: " + json.dumps(
        {k: claims[k] for k in ("iat", "nbf", "exp") if k in claims} or {"exp": None}))
    if not numeric(exp):
        lifetime = "no expiry"
        findings.append(ctx.fail(
            "jwt_no_expiry", "medium", "The token has no `exp` claim: it never expires, so a leaked token works "
            "until the signing secret is changed.", hint=_HINT_NO_EXPIRY, evidence=shown_claims))
    else:
        lifetime_s = exp - iat if numeric(iat) else exp - time.time()
        lifetime = _duration(lifetime_s) + ("" if numeric(iat) else " left at login")
        if lifetime_s > DAY:
            findings.append(ctx.fail(
                "jwt_no_expiry", "medium", f"The token lives {_duration(lifetime_s)} (`exp` - "
                f"{'`iat`' if numeric(iat) else 'now'}): access tokens should expire within hours at most.",
                hint=_HINT_NO_EXPIRY, evidence=shown_claims))
    evidence.extend(shown_claims)

    if token.alg.upper() not in HMAC_ALGS:
        probe = (f"expired-token probe not evaluated: the token is signed with {token.alg}, so an expired token "
                 "cannot be forged")
    else:
        result = _crack_token(ctx, token)
        if result.key is None:
            probe = ("expired-token probe not evaluated: the signing secret is unknown (not in the wordlist), so an "
                     "expired token cannot be forged")
        else:
            probe = _probe_expiry(ctx, user, carrier, token, result, findings, evidence)
    summary = f"token lifetime: {lifetime}; {probe}"
    outcome = ctx.verdict(summary, findings, evidence)
    if "not evaluated" in probe:  # the lifetime was judged, the expiry probe could not be: say so
        outcome = outcome.model_copy(update={
            "reason": probe.replace("expired-token probe not evaluated: ", "the expired-token probe, because ")})
    return outcome


def _probe_expiry(ctx: CheckContext, user: Identity, carrier: Carrier, token: Jwt, result: Crack,
                  findings: list[Finding], evidence: list[Evidence]) -> str:
    """Tokens signed with the guessed secret but expired, or not yet valid: on the target GET after a fresh one
    was accepted there, then on every other protected operation (the walk of checks/jwt_surface.py)."""
    target = find_target(ctx, carrier)
    if target.path is None:
        return f"expired-token probe not evaluated: {target.problem}"
    now = int(time.time())
    control = _replay(ctx, carrier, target.path, _forge_fresh(token, result.key))
    if not _accepted(control):
        evidence.append(control.evidence("a fresh token signed with the guessed secret: refused"))
        return ("expired-token probe not evaluated: even a fresh token signed with the guessed secret was refused "
                f"({status_text(control)})")
    expired = _replay(ctx, carrier, target.path, _forge_fresh(token, result.key, iat=now - 7200, exp=now - 3600))
    early = _replay(ctx, carrier, target.path, _forge_fresh(token, result.key, nbf=now + 3600, exp=now + 7200))
    accepted = []
    for exchange, what in ((expired, "`exp` one hour in the past"), (early, "`nbf` one hour in the future")):
        if _accepted(exchange):
            accepted.append((exchange, what))
        else:
            evidence.append(exchange.evidence(f"a token with {what}: refused"))
    if accepted:
        findings.append(ctx.fail(
            "jwt_expired_accepted", "high", f"GET {target.path} accepted " + " and ".join(
                f"a token with {what} ({status_text(e)})" for e, what in accepted)
            + f" (signed with the guessed secret `{result.shown}`): the API does not check the token's validity "
              "period, so a leaked token never stops working.", operation=f"GET {target.path}", hint=_HINT_EXPIRED,
            evidence=[e.evidence(f"a token with {what}: expected 401") for e, what in accepted]
            + [control.evidence("control: a fresh token signed with the same secret, accepted")]))
    a = Party("user A", user, carrier)
    surface = walk(ctx, _protected(ctx, besides=target.path), [
        Forgery("a token signed with the guessed secret, `exp` one hour in the past", "jwt_expired_accepted",
                _forge_fresh(token, result.key, iat=now - 7200, exp=now - 3600), a),
        Forgery("a token signed with the guessed secret, `nbf` one hour in the future", "jwt_expired_accepted",
                _forge_fresh(token, result.key, nbf=now + 3600, exp=now + 7200), a)], a)
    findings[:] = _surface_findings(ctx, findings, surface, None if accepted else target.path)
    on_target = ("expired or not-yet-valid tokens are accepted" if accepted else
                 "expired and not-yet-valid tokens (signed with the guessed secret) are refused")
    return f"{on_target} on GET {target.path}; {surface.summary()}"
