"""Reproducing a graded finding after the grade, against the learner's own running app (`portfolio-grader replay`).

The grade's curl lines name its container's port, the ids it created and tokens signed with that container's
secret. A replay rebuilds what a finding's evidence chain rests on, then sends the chain again:

    plan(scorecard, finding) -> Plan        users to make, stand-in objects, the steps; NotReplayable and why
    run(plan, prober) -> Outcome            make them, send each step with old values mapped to new, judge
    shell_version(scorecard, finding)       the same plan as shell lines: BASE=..., setup first, then the chain

Old values become new ones through one map: tokens and logins of the users the replay makes (its own fresh
credentials: the grade's passwords may be redacted), and ids read from each new response at the JSON path where
the old response held the old value. A step reproduces when its status class is the same and, for JSON, what it
answered is the same after the map (volatile values aside; types only for a stand-in the replay made itself).
This module imports only models and the pure helpers at the top; the HTTP parts are imported where they run, so
the HTML report can render shell versions without an HTTP client.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
import time
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qsl, quote_plus, urlencode, urlsplit

from .evidence import REDACTED
from .models import AuthFlow, Evidence, Finding, Operation, ResponseRecord, Scorecard

Verdict = Literal["reproduces", "does_not_reproduce", "not_replayable"]
MAX_STEPS = 40  # requests of one finding's chain (setup aside)
MISSING_ID = "987654321"  # an id no fresh app has made: stands for an object that did not exist in the grade
_CUT = re.compile(r"\.\.\. \[\d+ more characters\]$|^<\d+ bytes of binary data>$")
_FORM = re.compile(r"[\w.%+~*-]+=[^&\s{}]*(?:&[\w.%+~*-]+=[^&\s{}]*)*")
_ID_SEGMENT = re.compile(r"^(\d+|[0-9a-f]{24}|[0-9a-fA-F-]{36}|[A-Za-z0-9_-]{20,})$")
_SERVER_ID = re.compile(r"^(\d+|[0-9a-f]{24}|[0-9a-fA-F-]{36})$")  # ids a database assigns
_USER_KEY = re.compile(r"^(owner|user|author|creator|created_?by|account|sub)(_?id|_?pk)?$|^userId$|^ownerId$", re.I)
_ID_KEY = re.compile(r"(^|_)(id|pk|uuid|slug|code|key)$|Id$|^owner|^user$", re.I)
_VOLATILE_KEY = re.compile(r"(^|_)(at|date|time|timestamp|created|updated|modified|expires?|exp|iat|nbf|jti|"
                           r"password|password_hash|hash|salt|secret|last_login|token|access_token|refresh_token|etag|version)$|(At|Date|Time|Token)$", re.I)
_VOLATILE_VALUE = re.compile(r"^\d{4}-\d\d-\d\d[T ]\d\d:\d\d|^[0-9a-f]{8}-[0-9a-f]{4}-|^eyJ[\w-]+\.[\w-]+\.|"
                             r"^[0-9a-f]{32,}$", re.I)
_TRACE = re.compile(r"Traceback \(most recent call last\)|File \"[^\"]+\", line \d+|\bat [\w.$<>]+ \([^)]*:\d+:\d+\)|"
                    r"\.java:\d+\)|Stack ?trace", re.I)

# Check families whose findings one chain of requests cannot show again, and why (said in one line each).
_NOT_REPLAYABLE = {
    "repo.": "a repository finding: it rests on {file}, not on a request",
    "runtime.": "the build or start of the container itself: build and start the image again to see it",
    "load.": "a measurement under load (many concurrent clients for seconds), not one chain of requests",
    "ratelimit.": "a burst of requests within a time window: `portfolio-grader grade` measures it again",
    "auth.login_rate_limit": "a burst of failed logins within a time window: `portfolio-grader grade` measures it again",
    "auth.jwt_forgery": "a forged token the grader made from the grade's own token; a new app signs with a new "
                        "secret, so the forgery must be made again: `portfolio-grader grade` does",
    "auth.jwt_secret": "the token's secret was cracked offline from the grade's token: `portfolio-grader grade` "
                       "cracks the new one",
    "webhooks.": "it needs the webhook receiver the grader hosts during the grade",
    "observability.logs": "it rests on the container's log lines, not on a response",
    "shortener.background_job": "it depends on a background job's timing, measured over seconds",
    "usage.": "it depends on counters measured over a time window",
}
_GARBAGE = "not-a-real-token"  # checks/jwt_surface.GARBAGE_TOKEN: a refusal probe, sent as it was
_FORGED_KINDS = {"jwt_alg_none_accepted", "jwt_signature_not_verified", "jwt_expired_accepted", "jwt_weak_secret"}


class NotReplayable(Exception):
    """A finding whose chain cannot be rebuilt; the message says why in one line."""


# ---------------------------------------------------------------- what result.json records for a replay


def auth_block(flow: AuthFlow, users, url_for) -> dict[str, Any]:
    """`api.auth` of result.json: how users register and log in, and which tokens and passwords were the test users'
    (hashed), so a replay tells a genuine token from a forged or garbage one, and a test user's own password from a
    deliberately wrong one. `url_for` maps a path to a URL."""
    def path(op: Operation | None) -> str | None:
        return urlsplit(url_for(op.path)).path if op is not None else None

    return {
        "register": f"POST {path(flow.signup)}" if flow.signup else None,
        "register_form": bool(flow.signup and flow.signup.request_schema is None
                              and flow.signup.request_form_schema is not None),
        "register_schema": (flow.signup.request_schema or flow.signup.request_form_schema) if flow.signup else None,
        "login": f"POST {path(flow.login)}" if flow.login else None, "login_form": flow.login_form,
        "identity_field": flow.identity_field, "password_field": flow.password_field, "token_path": flow.token_path,
        "send_header": flow.send_header, "send_prefix": flow.send_prefix, "issues_keys": flow.issues_keys,
        "users": [{"label": u.label, "login": u.login_value, "credential_sha256": _digest(u.token or u.cookie or ""),
                   "password_sha256": _digest(u.password)} for u in users],
    }


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _flow(auth: dict[str, Any]) -> AuthFlow:
    """The AuthFlow a replay registers and logs in with, from `api.auth`."""
    def op(label: str | None, schema: dict | None = None, form: bool = False) -> Operation | None:
        if not label:
            return None
        method, _, path = label.partition(" ")
        return Operation(method=method, path=path, request_schema=None if form else schema,
                         request_form_schema=schema if form else None)

    return AuthFlow(signup=op(auth.get("register"), auth.get("register_schema") or {}, auth.get("register_form", False)),
                    login=op(auth.get("login")), login_form=bool(auth.get("login_form")),
                    identity_field=auth.get("identity_field") or "username",
                    password_field=auth.get("password_field") or "password", token_path=auth.get("token_path"),
                    send_header=auth.get("send_header") or "Authorization", send_prefix=auth.get("send_prefix", ""),
                    issues_keys=bool(auth.get("issues_keys")))


# ---------------------------------------------------------------- the plan


Role = Literal["signup", "login", "request"]


@dataclass(frozen=True)
class Step:
    """One request of the chain, relative to the app's origin."""

    evidence: Evidence
    method: str
    path: str  # path and query
    headers: dict[str, str]
    body: str | None
    role: Role = "request"
    stand_in: bool = False  # it addresses an object the replay made from another recorded create: types only
    foreign_list: bool = False  # it lists objects other requests of the grade made: status and content type only
    own_password: bool = True  # a login with the user's own password (not a deliberately wrong one)

    @property
    def response(self) -> ResponseRecord:
        """The grade's answer to the request: a step is made only of an exchange that has one (`_step`)."""
        assert self.evidence.response is not None
        return self.evidence.response

    @property
    def status(self) -> int:
        """The status the grade saw (`_step` refuses an exchange without one)."""
        assert self.response.status is not None
        return self.response.status


@dataclass(frozen=True)
class StandIn:
    """An object a step addresses that the chain did not create (the fuzzer's): made again from a recorded create."""

    old_id: str
    create: Step
    id_path: tuple[str, ...]
    user: str | None  # the label of the user who creates it


@dataclass(frozen=True)
class Plan:
    finding: Finding
    steps: tuple[Step, ...]
    users: tuple[str, ...] = ()  # labels of the test users the replay makes first
    old_credentials: dict[str, str] = field(default_factory=dict)  # old token or cookie -> user label
    old_logins: dict[str, str] = field(default_factory=dict)  # old login value -> user label
    stand_ins: tuple[StandIn, ...] = ()
    missing: dict[str, str] = field(default_factory=dict)  # an id that did not exist in the grade -> one that won't
    auth: dict[str, Any] | None = None
    signed_up: dict[int, str] = field(default_factory=dict)  # a chain sign-up's step index -> the user it made


def plan(scorecard: Scorecard, finding: Finding) -> Plan:
    """What replaying `finding` takes; NotReplayable with the reason when its chain cannot be rebuilt."""
    for prefix, why in _NOT_REPLAYABLE.items():
        if finding.check.startswith(prefix):
            files = [e.file for e in finding.evidence if e.file]
            raise NotReplayable(why.format(file=", ".join(files) if files else "the repository's files"))
    if finding.kind in _FORGED_KINDS:
        raise NotReplayable(_NOT_REPLAYABLE["auth.jwt_forgery"])
    exchanges = [e for e in finding.evidence if e.request is not None]
    if not exchanges:
        files = [e.file for e in finding.evidence if e.file]
        raise NotReplayable(f"it rests on {', '.join(files)} in the repository, not on a request" if files else
                            "its evidence holds no HTTP request")
    if len(exchanges) > MAX_STEPS:
        raise NotReplayable(f"its chain has {len(exchanges)} requests, more than a replay sends ({MAX_STEPS})")
    origin = _origin(str(scorecard.runtime.get("base_url") or _url_of(exchanges[0])))
    auth = scorecard.api.get("auth") if isinstance(scorecard.api.get("auth"), dict) else None
    steps = [_step(e, origin, auth) for e in exchanges]
    users, credentials, logins, signed_up = _users(steps, auth)
    stand_ins, missing, shaped, foreign = _stand_ins(scorecard, steps, origin, credentials, auth)
    if foreign and finding.kind == "schema_violation":
        raise NotReplayable(f"{steps[min(foreign)].method} {urlsplit(steps[min(foreign)].path).path} listed objects "
                            "other requests of the grade made (the fuzzer's): which one broke the schema is not "
                            "recorded, so the answer cannot be compared")
    steps = [_replace(s, stand_in=i in shaped, foreign_list=i in foreign,
                      own_password=_own_password(s, steps[:i], auth)) for i, s in enumerate(steps)]
    return Plan(finding=finding, steps=tuple(steps), users=users, old_credentials=credentials, old_logins=logins,
                stand_ins=tuple(stand_ins), missing=missing, auth=auth, signed_up=signed_up)


def _own_password(step: Step, before: list[Step], auth: dict | None) -> bool:
    """Did a login send its user's own password: redacted, a test user's (by hash), or one the chain signed up
    with? A wrong password (a user-enumeration probe) is sent as it was."""
    if step.role != "login" or not auth:
        return step.role == "login"
    field_name = auth.get("password_field") or "password"
    password = str(_form_or_json(step.body).get(field_name, ""))
    known = {u.get("password_sha256") for u in auth.get("users", [])}
    signed = {str(_form_or_json(s.body).get(field_name, "")) for s in before if s.role == "signup"}
    return REDACTED in password or _digest(password) in known or password in signed


def _form_or_json(body: str | None) -> dict:
    parsed = _body_json(body)
    if parsed is None and body and _FORM.fullmatch(body):
        parsed = dict(parse_qsl(body))
    return parsed if isinstance(parsed, dict) else {}


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _replace(step: Step, **changes) -> Step:
    from dataclasses import replace

    return replace(step, **changes)


def _url_of(ev: Evidence) -> str:
    return ev.request.url if ev.request else ""


def _step(ev: Evidence, origin: str, auth: dict | None) -> Step:
    request = ev.request
    if request is None:
        raise NotReplayable("its evidence holds no HTTP request")
    if _origin(request.url) != origin:
        raise NotReplayable(f"a request went to {_origin(request.url)}, not to the app under grade")
    if ev.response is None or ev.response.status is None:
        raise NotReplayable(f"the grade saw no answer to {request.method} {urlsplit(request.url).path} "
                            f"({ev.response.error if ev.response else 'not recorded'}): nothing to compare with")
    if request.body is not None and _CUT.search(request.body):
        raise NotReplayable(f"the body of {request.method} {urlsplit(request.url).path} is kept only as an excerpt "
                            "in the evidence: the request cannot be rebuilt")
    parts = urlsplit(request.url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    role: Role = "request"
    if auth and request.method == "POST":
        if f"POST {parts.path}" == auth.get("register"):
            role = "signup"
        elif f"POST {parts.path}" == auth.get("login"):
            role = "login"
    step = Step(evidence=ev, method=request.method, path=path, headers=dict(request.headers), body=request.body,
                role=role)
    carrier = (auth or {}).get("send_header", "Authorization").lower()
    for name, value in step.headers.items():
        if REDACTED in value and name.lower() not in (carrier, "cookie"):
            raise NotReplayable(f"the request's {name} header holds a secret the grader redacted")
    if role == "request" and REDACTED in (step.body or "") + step.path:
        raise NotReplayable(f"{step.method} {parts.path} carries a secret the grader redacted, which the replay "
                            "cannot choose itself")
    return step


def _credential(step: Step, auth: dict | None) -> str | None:
    """The token (or cookie) the step was sent with, as the grade sent it."""
    header = (auth or {}).get("send_header") or "Authorization"
    prefix = (auth or {}).get("send_prefix", "Bearer ")
    for name, value in step.headers.items():
        if name.lower() == header.lower():
            return value[len(prefix):] if prefix and value.startswith(prefix) else value
        if name.lower() == "cookie":
            return value
    return None


def _body_json(text: str | None) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _login_value(step: Step, auth: dict) -> str | None:
    body = _body_json(step.body)
    if body is None and step.body:
        body = dict(parse_qsl(step.body))
    if not isinstance(body, dict):
        return None
    # the login's field, else the field a sign-up names the user by (an OAuth2 form logs in an email as username)
    value = next((body[k] for k in (auth.get("identity_field") or "username", "email", "username", "user_name", "login")
                  if body.get(k) is not None), None)
    return str(value) if value is not None else None


def _users(steps: list[Step], auth: dict | None):
    """The test users the chain's requests were sent as (a token or login of a grade's user), to make first; their
    old tokens and logins; and the chain's own sign-ups of a test user (logged in right after, not made first)."""
    recorded = auth or {}  # a step is a sign-up or a login only when the auth is recorded (_step)
    known = {u["credential_sha256"]: u["label"] for u in recorded.get("users", []) if u.get("credential_sha256")}
    logins = {u["login"]: u["label"] for u in recorded.get("users", []) if u.get("login")}
    credentials: dict[str, str] = {}
    used_logins: dict[str, str] = {}
    registered: set[str] = set()
    signed_up: dict[int, str] = {}
    produced = ""  # what earlier responses held: a token a chain login issued is not a setup user's
    for index, step in enumerate(steps):
        token = _credential(step, auth)
        if token and token not in produced:
            label = known.get(_digest(token))
            if label is None and auth is None:
                raise NotReplayable("result.json does not say how the test users register and log in (it was "
                                    "graded before replays existed): grade again to replay it")
            if label is not None:
                credentials[token] = label
            elif token != _GARBAGE and 200 <= step.status < 300:
                raise NotReplayable(f"{step.method} {urlsplit(step.path).path} was sent with a credential the grade "
                                    "made outside this chain (an API key, or a token issued again), which a replay "
                                    "cannot make again")
        if step.role == "signup":
            value = _login_value(step, recorded)
            registered.add(value or "")
            if value is not None and value in logins:
                signed_up[index] = logins[value]
        if step.role == "login":
            value = _login_value(step, recorded)
            if value is not None and value in logins and value not in registered:
                used_logins[value] = logins[value]
            elif value not in registered and REDACTED in (step.body or ""):
                raise NotReplayable("it logs in as a user the grade did not make (the manifest's admin?), whose "
                                    "password the grader redacted")
        produced += step.response.body or ""
    labels = tuple(sorted((set(credentials.values()) | set(used_logins.values())) - set(signed_up.values())))
    old_logins = {login: label for login, label in logins.items() if label in labels}
    return labels, credentials, old_logins, signed_up


def _collections(scorecard: Scorecard) -> list[re.Pattern]:
    """Each resource collection as a pattern for `<mount><collection>/<id>`."""
    out = []
    for collection in scorecard.api.get("resources") or []:
        parts = [re.escape(p) if not p.startswith("{") else "[^/]+" for p in str(collection).strip("/").split("/")]
        out.append(re.compile(r"(?:^|/)" + "/".join(parts) + r"(?:/(?P<id>[^/?#]+))?/?$"))
    return out


def _addresses(step: Step, value: str) -> bool:
    return value in urlsplit(step.path).path.split("/")


def _leaves(node: Any, path: tuple = ()):
    """(path, value) of every scalar in a JSON value."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _leaves(value, (*path, i))
    elif not isinstance(node, bool) and node is not None:
        yield path, node


def _id_path(body: Any) -> tuple | None:
    if isinstance(body, dict):
        for key in ("id", "_id", "uuid", "pk", "data"):
            if key == "data" and isinstance(body.get("data"), dict):
                inner = _id_path(body["data"])
                return ("data", *inner) if inner else None
            if key in body and isinstance(body[key], (str, int)) and not isinstance(body[key], bool):
                return (key,)
    return None


def _stand_ins(scorecard: Scorecard, steps: list[Step], origin: str, credentials: dict[str, str],
               auth: dict | None) -> tuple[list[StandIn], dict[str, str], set[int], set[int]]:
    """Objects the steps address (an id in a path) that no earlier step created: made again by the recorded create
    whose answer held that id, else by another recorded create on its collection; when the grade's answer was 404,
    an id no app has made stands for it. Also returns the indexes of the steps that read a stand-in (judged by the
    types of their answer: the object is not the one the grade saw) and of those that list a collection the chain
    put nothing in (judged by status and content type: its members and counts were the rest of the grade's)."""
    patterns = _collections(scorecard)
    literals = _literal_segments(scorecard)
    answers = " ".join((e.response.body or "") + " " + " ".join(e.response.headers.values())
                       for _, e in _all_evidence(scorecard) if e.response is not None)
    stand_ins: list[StandIn] = []
    missing: dict[str, str] = {}
    shaped: set[int] = set()
    foreign: set[int] = set()
    produced = " "
    for index, step in enumerate(steps):
        path = urlsplit(step.path).path
        match = next((m for m in (p.search(path) for p in patterns) if m), None)
        if match and match.group("id") is None:  # a list: the rest of the grade's objects, or the chain's own
            collection = path.rstrip("/")
            if step.method == "GET" and not _created_in(steps, step, collection) and \
                    (step.response.body or "").strip() not in ("", "[]"):
                foreign.add(index)
        item_of = {match.group("id"): path[:match.start("id") - 1]} if match and match.group("id") else {}
        for segment in path.split("/"):
            if not segment or segment in literals or _mentions(produced, segment):
                continue
            made = None  # a plain word is an id only where a recorded create answered it (a short code `jSuLuXN`)
            if not (_ID_SEGMENT.match(segment) or _random_looking(segment) or segment in item_of):
                made = _recorded_create(scorecard, origin, auth, value=segment)
                if made is None:
                    continue
            if segment in missing or any(s.old_id == segment for s in stand_ins):
                shaped.update({index} if segment not in missing else set())
                continue
            if step.status == 404:
                missing[segment] = MISSING_ID if segment.isdigit() else segment
                continue
            create = made or _recorded_create(scorecard, origin, auth, value=segment) or (
                _recorded_create(scorecard, origin, auth, collection=item_of[segment]) if segment in item_of else None)
            if create is None:
                if not _SERVER_ID.match(segment) and not _mentions(answers, segment) and not _fuzzed(step.evidence):
                    continue  # in a probe's request and in no answer of the grade: a value it chose (an unknown code)
                raise NotReplayable(f"{step.method} {path} addresses {segment}, which an earlier request of the grade "
                                    "made (the fuzzer's) and the scorecard does not record how")
            token = _credential(step, auth)
            stand_ins.append(StandIn(old_id=segment, create=create[0], id_path=create[1],
                                     user=credentials.get(token) if token else None))
            shaped.add(index)
        produced += (step.response.body or "") + " " + " ".join(step.response.headers.values())
    return stand_ins, missing, shaped, foreign


def _literal_segments(scorecard: Scorecard) -> set[str]:
    """Path segments that are routes, not ids: those of the routes in the code, the findings' operations, the
    collections and the auth operations."""
    templates = [str(route[1]) for route in scorecard.facts.get("routes_in_code") or [] if len(route) > 1]
    templates += [f.operation.partition(" ")[2] for f in scorecard.findings if f.operation]
    templates += [str(c) for c in scorecard.api.get("resources") or []]
    auth = scorecard.api.get("auth")
    if not isinstance(auth, dict):
        auth = {}
    templates += [str(auth.get(k) or "").partition(" ")[2] for k in ("register", "login")]
    return {part for template in templates for part in template.split("/") if part and "{" not in part
            and not part.startswith(":") and "<" not in part}


def _mentions(text: str, value: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(value)}(?![\w-])", text) is not None


def _created_in(steps: list[Step], before: Step, collection: str) -> bool:
    for step in steps:
        if step is before:
            return False
        if step.method == "POST" and urlsplit(step.path).path.rstrip("/") == collection:
            return True
    return False


def _fuzzed(evidence) -> bool:
    """Did Schemathesis send this request (its own headers), rather than one of the grader's probes?"""
    return evidence.request is not None and any(k.lower().startswith("x-schemathesis") for k in evidence.request.headers)


def _all_evidence(scorecard: Scorecard) -> list[tuple[int, Any]]:
    """Every evidence of the scorecard, with 0 for the checks' own and 1 for the findings'."""
    return [(0, e) for c in scorecard.checks for e in c.evidence] + [(1, e) for f in scorecard.findings for e in f.evidence]


def _recorded_create(scorecard: Scorecard, origin: str, auth: dict | None, *, collection: str | None = None,
                     value: str | None = None):
    """(the Step, the id's JSON path) of a successful POST in any evidence of the scorecard whose answer holds
    `value` (as an id, or a random-looking code), or of a create on `collection`: the grader's own first (checks'
    evidence, notes that say so), the fuzzer's last."""
    candidates = []
    for where, evidence in _all_evidence(scorecard):
        request, response = evidence.request, evidence.response
        if (request is None or response is None or request.method != "POST" or not response.status
                or not 200 <= response.status < 300 or _origin(request.url) != origin
                or (request.body and _CUT.search(request.body)) or REDACTED in (request.body or "")):
            continue
        answer = _body_json(response.body)
        if value is not None:
            id_path = next((path for path, leaf in _leaves(answer) if str(leaf) == value and path
                            and (_ID_KEY.search(str(path[-1])) or _random_looking(value))), None)
        elif urlsplit(request.url).path.rstrip("/") == collection:
            id_path = _id_path(answer)
        else:
            continue
        if id_path is None:
            continue
        candidates.append(((_fuzzed(evidence), where, "create" not in (evidence.note or "")), evidence, id_path))
    if not candidates:
        return None
    _, evidence, id_path = min(candidates, key=lambda c: c[0])
    return _step(evidence, origin, auth), id_path


# ---------------------------------------------------------------- substitution (shared by run and shell_version)


def _urlencode(fields) -> str:
    """Form encoding that leaves the shell version's variable marks as they are (they become "$NAME")."""
    def quote(text, safe="", encoding=None, errors=None):
        return "".join(part if part.startswith("\ue000") else quote_plus(part, safe, encoding, errors)
                       for part in re.split("(\ue000[^\ue001]*\ue001)", str(text)))

    return urlencode(fields, quote_via=quote)


def _is_long(value: str) -> bool:
    """Long or random enough to be replaced wherever it occurs (a token, a login, a short code in a URL)."""
    return len(value) >= 8 or _random_looking(value)


def substitute_text(text: str, values: dict[str, str]) -> str:
    """Long old values (tokens, logins, uuids) replaced wherever they occur."""
    for old in sorted((v for v in values if _is_long(v)), key=len, reverse=True):
        text = text.replace(old, values[old])
    return text


def substitute_path(path: str, values: dict[str, str]) -> str:
    """A path and query with old ids replaced: whole path segments and query values only (an object's id first,
    a user's where nothing else maps the segment)."""
    parts = urlsplit(path)
    users = getattr(values, "users", {})
    segments = [values.get(s, users.get(s, s)) for s in parts.path.split("/")]
    query = parse_qsl(parts.query, keep_blank_values=True)
    new_query = [(k, values.get(v, substitute_text(v, values))) for k, v in query]
    out = substitute_text("/".join(segments), values)
    return out + (f"?{_urlencode(new_query)}" if query and new_query != query else f"?{parts.query}" if parts.query else "")


def substitute_json(node: Any, values: dict[str, str], key: str = "") -> Any:
    """A JSON value with old values replaced: long strings anywhere, short ones (a small id) only in id fields."""
    if isinstance(node, dict):
        return {k: substitute_json(v, values, k) for k, v in node.items()}
    if isinstance(node, list):
        return [substitute_json(v, values, key) for v in node]
    if isinstance(node, bool) or node is None:
        return node
    text = str(node)
    users = getattr(values, "users", {})
    new = users.get(text) if _USER_KEY.search(key) else None
    new = new if new is not None else values.get(text) if (_is_long(text) or _ID_KEY.search(key)) else None
    new = new if new is not None else users.get(text) if _ID_KEY.search(key) else None
    if new is not None:
        return int(new) if isinstance(node, int) and new.isdigit() else new
    return substitute_text(node, values) if isinstance(node, str) else node


def substitute_body(body: str | None, values: dict[str, str]) -> str | None:
    if body is None:
        return None
    parsed = _body_json(body)
    if parsed is not None:
        changed = substitute_json(parsed, values)
        return body if changed == parsed else json.dumps(changed, ensure_ascii=False)
    if _FORM.fullmatch(body):  # form-encoded: each field as a JSON field of the same name
        fields = parse_qsl(body, keep_blank_values=True)
        changed = [(k, substitute_json(v, values, k)) for k, v in fields]
        return body if changed == fields else _urlencode(changed)
    return substitute_text(body, values)


# ---------------------------------------------------------------- running a plan


@dataclass
class Outcome:
    finding: str
    kind: str
    verdict: Verdict
    reason: str = ""
    requests: int = 0

    def line(self) -> str:
        word = {"reproduces": "reproduces", "does_not_reproduce": "does not reproduce",
                "not_replayable": "not replayable"}[self.verdict]
        return f"{self.finding} {self.kind}: {word}" + (f": {self.reason}" if self.reason else "")


class _SetupFailed(Exception):
    pass


class ValueMap(dict):
    """Old value -> new value, learned once: what an earlier request already sent keeps its meaning. User ids
    (read from the claims of the old and the new token) live apart, in `users`, and are used for fields that
    name a user (`owner_id`, `user`...) and where nothing else maps the value: task 1 is not user 1."""

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.users: dict[str, str] = {}

    def learn(self, old: str, new: str, key: str = "") -> None:
        if _USER_KEY.search(key):
            self.users.setdefault(old, new)
        else:
            self.setdefault(old, new)


def run(the_plan: Plan, prober, tag: str = "") -> Outcome:
    """Make the plan's users and stand-ins on the app behind `prober`, send the chain, judge it."""
    finding = the_plan.finding
    sent_before = len(prober.exchanges)
    try:
        values, passwords, stand_in_ids = _setup(the_plan, prober, tag or hashlib.sha1(
            f"{time.time()}{finding.id}".encode()).hexdigest()[:6])
        differences = _send_chain(the_plan, prober, values, passwords)
    except _SetupFailed as exc:
        return Outcome(finding.id, finding.kind, "does_not_reproduce", f"setup failed: {exc}",
                       len(prober.exchanges) - sent_before)
    count = len(prober.exchanges) - sent_before
    if differences:
        return Outcome(finding.id, finding.kind, "does_not_reproduce", "; ".join(differences[:3]), count)
    how = "same status class at every step" + (", same answers" if not stand_in_ids else ", same answer shapes")
    return Outcome(finding.id, finding.kind, "reproduces", f"{len(the_plan.steps)} request(s), {how}", count)


def _setup(the_plan: Plan, prober, tag: str) -> tuple[ValueMap, dict[str, str], set[str]]:
    from .checks.jwt_codec import parse_jwt
    from .identities import IdentityError, create_identity

    values = ValueMap(the_plan.missing)
    passwords: dict[str, str] = {}  # new login value -> its password
    users = {}
    if the_plan.users:
        flow = _flow(the_plan.auth or {})
        for label in the_plan.users:
            try:
                user = create_identity(prober, flow, f"r{label}", tag)
            except IdentityError as exc:
                raise _SetupFailed(f"user {label} could not be made: {exc}") from None
            users[label] = user
            passwords[user.login_value] = user.password
            for old, owner in the_plan.old_credentials.items():
                if owner == label:
                    values[old] = user.token or user.cookie or ""
                    old_jwt, new_jwt = parse_jwt(old), parse_jwt(user.token)
                    for claim in ("sub", "user_id", "userId", "uid", "id", "username", "email"):
                        if old_jwt and new_jwt and claim in old_jwt.claims and claim in new_jwt.claims:
                            values.users.setdefault(str(old_jwt.claims[claim]), str(new_jwt.claims[claim]))
            for old, owner in the_plan.old_logins.items():
                if owner == label:
                    values[old] = user.login_value
                    # the sign-up's other identity fields share the login's unique part (username = email's local)
                    values.setdefault(old.split("@")[0], user.login_value.split("@")[0])
    stand_in_ids = set()
    for stand_in in the_plan.stand_ins:
        headers = _auth_headers(stand_in.create, the_plan, users.get(stand_in.user) if stand_in.user else None)
        answer = prober.request(stand_in.create.method, stand_in.create.path, headers=headers,
                                content=stand_in.create.body)
        new = _dig(answer.json(), stand_in.id_path)
        if answer.status is None or not 200 <= answer.status < 300 or new is None:
            raise _SetupFailed(f"{stand_in.create.method} {stand_in.create.path} (an object to stand in for the "
                               f"grade's) answered {answer.status or answer.error}")
        values[stand_in.old_id] = str(new)
        stand_in_ids.add(str(new))
    return values, passwords, stand_in_ids


def _auth_headers(step: Step, the_plan: Plan, user) -> dict[str, str]:
    """The step's headers with its own credentials replaced by `user`'s (none when no user)."""
    carrier = ((the_plan.auth or {}).get("send_header") or "Authorization").lower()
    headers = {k: v for k, v in step.headers.items() if k.lower() not in (carrier, "cookie")}
    if user is not None:
        headers.update(user.headers(_flow(the_plan.auth or {})))
    return headers


def _dig(body: Any, path: tuple) -> Any:
    for part in path:
        if isinstance(body, dict) and part in body:
            body = body[part]
        elif isinstance(body, list) and isinstance(part, int) and part < len(body):
            body = body[part]
        else:
            return None
    return body


def _send_chain(the_plan: Plan, prober, values: ValueMap, passwords: dict[str, str]) -> list[str]:
    from .checks.jwt_codec import parse_jwt

    auth = the_plan.auth or {}
    differences: list[str] = []
    sent = ""
    for number, step in enumerate(the_plan.steps, 1):
        if step.role == "signup":
            body = _fresh_signup(step, auth, values, passwords)
        else:
            body = substitute_body(step.body, values)
        if step.role == "login" and step.own_password:
            body = _with_password(body, auth, passwords)
        headers = {k: substitute_text(values.get(v, v), values) for k, v in step.headers.items()}
        path = substitute_path(step.path, values)
        answer = prober.request(step.method, path, headers=headers, content=body)
        sent = sent + " " + path + " " + (body or "")
        old = step.response
        label = f"step {number} ({step.method} {urlsplit(step.path).path})"
        if answer.status is None:
            differences.append(f"{label}: no answer ({answer.error})")
            continue
        if answer.status // 100 != step.status // 100:
            differences.append(f"{label} answered {answer.status} where the grade saw {step.status}")
            continue
        if number - 1 in the_plan.signed_up:
            problem = _log_in_signed_up(the_plan, number - 1, body, prober, values)
            if problem:
                differences.append(f"{label}: {problem}")
        _learn(old.body, answer.json(), values)
        _learn_location(old.headers, answer.headers, values)
        differences += [f"{label}: {d}" for d in _compare(step, old, answer, values, sent)]
        if the_plan.finding.kind == "jwt_no_expiry" and step.role == "login":
            token = parse_jwt(_dig(answer.json(), tuple((auth.get("token_path") or "access_token").split("."))))
            if token is not None and isinstance(token.claims.get("exp"), (int, float)) and \
                    token.claims["exp"] - token.claims.get("iat", time.time()) <= 24 * 3600:
                differences.append(f"{label}: the new token expires within a day (exp {token.claims['exp']})")
    return differences


def _log_in_signed_up(the_plan: Plan, index: int, body: str | None, prober, values: ValueMap) -> str | None:
    """Log in the test user a chain sign-up just made again (as the grade did, outside the chain): its old tokens
    map to the new one. Returns what went wrong, if anything."""
    from .identities import login, token_from

    auth = the_plan.auth or {}
    sent = _form_or_json(body)
    flow = _flow(auth)
    login_value = _login_value(_replace(the_plan.steps[index], body=body), auth) or ""
    answer = login(prober, flow, login_value, _password_of(sent, flow))
    token, cookie = token_from(answer, flow) if answer.status and answer.status < 300 else (None, None)
    if not (token or cookie):
        return f"the user it registered could not log in ({answer.status or answer.error})"
    label = the_plan.signed_up[index]
    for old, owner in the_plan.old_credentials.items():
        if owner == label:
            values[old] = token or cookie
    return None


def _password_of(body: dict, flow: AuthFlow) -> str:
    """The password a sign-up body sets: the login's password field, else its first password-named field."""
    value = body.get(flow.password_field)
    value = value if value is not None else next((v for k, v in body.items() if "password" in k.lower()), "")
    return str(value)


def _fresh_signup(step: Step, auth: dict, values: dict[str, str], passwords: dict[str, str],
                  fresh: str | None = None) -> str | None:
    """A registration the chain itself sends, with fresh identity values (the old ones are taken on a reused app)
    and a fresh password where the grader redacted its own; the old -> new pairs join the map, the new login's
    password joins `passwords` (a later login of the chain sends it)."""
    body = _body_json(step.body)
    form = body is None and step.body is not None
    if form:
        body = dict(parse_qsl(step.body))
    if not isinstance(body, dict):
        return step.body
    fresh = fresh or hashlib.sha1(f"{time.time()}{step.path}".encode()).hexdigest()[:8]
    for key, value in list(body.items()):
        if not isinstance(value, str):
            continue
        low = key.lower()
        if REDACTED in value or "password" in low:
            body[key] = f"Replay-Pass-{fresh}!9x" if REDACTED in value else value
        elif "email" in low or low in ("username", "user_name", "login", "handle", "name", auth.get("identity_field")):
            local = value.split("@")[0]
            new_local = values.setdefault(local, f"pgr{fresh}{len(values)}")
            body[key] = value.replace(local, new_local)
            values[value] = body[key]
    login = body.get(auth.get("identity_field") or "username")
    password = body.get(auth.get("password_field") or "password")
    if isinstance(login, str) and isinstance(password, str):
        passwords[login] = password
    return _urlencode(body) if form else json.dumps(body, ensure_ascii=False)


def _with_password(body: str | None, auth: dict, passwords: dict[str, str]) -> str | None:
    """A login body with the password of the user the replay made for its login value."""
    parsed = _body_json(body)
    form = parsed is None and body is not None
    if form:
        parsed = dict(parse_qsl(body))
    if not isinstance(parsed, dict):
        return body
    login = str(parsed.get(auth.get("identity_field") or "username"))
    password = passwords.get(login)
    if password:
        parsed[auth.get("password_field") or "password"] = password
    return _urlencode(parsed) if form else json.dumps(parsed, ensure_ascii=False)


def _learn(old_body: str | None, new: Any, values: ValueMap) -> None:
    """Old -> new pairs from two answers to the same request: ids and long values at the same JSON paths."""
    old = _body_json(old_body)
    if old is None or new is None:
        return
    for path, value in _leaves(old):
        key = str(path[-1]) if path else ""
        new_value = _dig(new, path)
        text = str(value)
        if new_value is not None and (_ID_KEY.search(key) or _is_long(text) and (
                _VOLATILE_VALUE.search(text) or re.search("token|session|key", key, re.I))):
            values.learn(text, str(new_value), key)


def _learn_location(old: dict[str, str], new: dict[str, str], values: ValueMap) -> None:
    get = lambda h: next((v for k, v in h.items() if k.lower() == "location"), None)  # noqa: E731
    old_loc, new_loc = get(old), get(new)
    if old_loc and new_loc:
        for a, b in zip(urlsplit(old_loc).path.split("/"), urlsplit(new_loc).path.split("/")):
            if a != b:
                values.learn(a, b)


def _compare(step: Step, old, answer, values: dict[str, str], sent: str = "") -> list[str]:
    """What differs between the grade's answer and the new one, beyond the status class. `sent` is what the
    chain's requests so far carried: a value the client sent must come back the same; a random-looking one the
    server made (a short code, a key's prefix) only of the same type."""
    old_type = _main_type(old.headers.get("content-type") or next(
        (v for k, v in old.headers.items() if k.lower() == "content-type"), ""))
    new_type = _main_type(answer.content_type)
    if old_type and new_type and old_type != new_type:
        return [f"answered {new_type} where the grade saw {old_type}"]
    if old.body and _TRACE.search(old.body) and not _TRACE.search(answer.text):
        return ["no stack trace in the answer this time"]
    if not old.body or _CUT.search(old.body) or step.foreign_list:
        return []
    before = _body_json(old.body)
    if before is None:
        return []
    expected = substitute_json(before, values)
    return _differ(expected, answer.json(), (), types_only=step.stand_in,
                   loose=lambda value: _random_looking(value) and not _mentions(sent, value))


def _random_looking(value: str) -> bool:
    """A server-made token-like string: no spaces, and digits among letters or case and punctuation mixed."""
    return (len(value) >= 5 and not re.search(r"\s", value)
            and bool(re.search(r"\d", value) and re.search(r"[A-Za-z]", value)
                     or re.search(r"[a-z]", value) and re.search(r"[A-Z]", value) and re.search(r"[_-]", value)))


def _main_type(content_type: str) -> str:
    return content_type.split(";")[0].strip().lower()


def _differ(old: Any, new: Any, path: tuple, types_only: bool, loose=lambda value: False) -> list[str]:
    where = "`" + ".".join(str(p) for p in path) + "`" if path else "the body"
    if isinstance(old, dict):
        if not isinstance(new, dict):
            return [f"{where} is {_type(new)} where the grade saw an object"]
        out = [f"`{'.'.join(str(p) for p in (*path, k))}` is missing" for k in old if k not in new][:2]
        for key in old:
            if key in new and not (not types_only and _VOLATILE_KEY.search(str(key))):
                out += _differ(old[key], new[key], (*path, key), types_only, loose)
        return out
    if isinstance(old, list):
        if not isinstance(new, list):
            return [f"{where} is {_type(new)} where the grade saw a list"]
        if bool(old) != bool(new):
            return [f"{where} is {'empty' if not new else 'not empty'} where the grade saw "
                    f"{'an empty list' if not old else f'{len(old)} item(s)'}"]
        return _differ(old[0], new[0], (*path, 0), True, loose) if old else []
    if _type(old) != _type(new):
        return [f"{where} is {_type(new)} {_short(new)} where the grade saw {_type(old)} {_short(old)}"]
    if isinstance(old, str) and _TRACE.search(old):  # file paths and line numbers are the machine's
        return [] if _TRACE.search(new) else [f"{where} holds no stack trace this time"]
    if types_only or (isinstance(old, str) and (_VOLATILE_VALUE.search(old) or loose(old))) or old == new:
        return []
    return [f"{where} is {_short(new)} where the grade saw {_short(old)}"]


def _type(value: Any) -> str:
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "a list",
            dict: "an object", type(None): "null"}.get(type(value), "a value")


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


# ---------------------------------------------------------------- replaying a scorecard


def replay(scorecard: Scorecard, base_url: str, finding_ids: list[str] | None = None, *, timeout: float = 10.0,
           max_requests: int = 400, deadline: float = 180.0, on_outcome=None) -> list[Outcome]:
    """Every failed finding (or those named), in the scorecard's order, against the app at `base_url` only.
    Requests are bounded in number and time: past either, the rest are not replayable and say so."""
    from .probe import Prober

    wanted = [f for f in scorecard.findings if not finding_ids or f.id in finding_ids]
    prober = Prober(base_url, timeout=timeout)
    ends = time.monotonic() + deadline
    outcomes = []
    try:
        for finding in wanted:
            try:
                the_plan = plan(scorecard, finding)
            except NotReplayable as exc:
                outcome = Outcome(finding.id, finding.kind, "not_replayable", str(exc))
            else:
                if time.monotonic() > ends or len(prober.exchanges) >= max_requests:
                    outcome = Outcome(finding.id, finding.kind, "not_replayable",
                                      f"the replay's bound was reached ({max_requests} requests or "
                                      f"{deadline:g} s) before this finding")
                else:
                    outcome = _guarded_run(the_plan, prober)
            outcomes.append(outcome)
            if on_outcome is not None:
                on_outcome(outcome)
    finally:
        prober.close()
    return outcomes


def _guarded_run(the_plan: Plan, prober) -> Outcome:
    """run(), with a bug of the replay's own reported on its finding (file:line) rather than ending the replay."""
    import traceback

    try:
        return run(the_plan, prober)
    except Exception as exc:  # noqa: BLE001 - one finding's replay failed, the others still run
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        return Outcome(the_plan.finding.id, the_plan.finding.kind, "not_replayable",
                       f"the replay itself failed ({type(exc).__name__}: {exc} at "
                       f"{frame.filename.rsplit('/', 1)[-1]}:{frame.lineno}); please report it")


# ---------------------------------------------------------------- the shell version


def _var(name: str) -> str:
    return f"\ue000{name}\ue001"


def _word(text: str) -> str:
    """`text` as one shell word: literal parts single-quoted, marked variables as "$NAME"."""
    out = []
    for i, part in enumerate(re.split("[\ue000\ue001]", text)):
        if i % 2:
            out.append(f'"${part}"')
        elif part:
            out.append(shlex.quote(part))
    return "".join(out) or "''"


def _curl(method: str, path: str, headers: dict[str, str], body: str | None, capture: tuple | None = None) -> str:
    # -w '\n': each answer ends its line, so the next one starts on a fresh line
    parts = ["curl", "-sS"] + ([] if capture else ["-i", "-w", r"'\n'"]) + ["-X", method, _word(_var("BASE") + path)]
    for name, value in headers.items():
        if name.lower() not in {"host", "content-length", "accept-encoding", "connection", "user-agent"}:
            parts += ["-H", _word(f"{name}: {value}")]
    if body is not None:
        parts += ["--data-raw", _word(body)]
    line = " ".join(parts)
    if capture:
        getter = "".join(f"[{json.dumps(p)}]" for p in capture)
        line += f" | python3 -c {shlex.quote(f'import json,sys; print(json.load(sys.stdin){getter})')}"
    return line


def shell_version(scorecard: Scorecard, finding: Finding, base: str = "http://localhost:8000") -> str | None:
    """Shell lines that replay `finding` against an app at `base` (None when it is not replayable): fresh users
    and stand-in objects first, captured into variables, then the evidence requests with $BASE, $TOKEN_A, $ID_1.
    `portfolio-grader replay` runs the same plan and judges the answers."""
    try:
        the_plan = plan(scorecard, finding)
    except NotReplayable:
        return None
    auth = the_plan.auth or {}
    lines = [f"BASE={shlex.quote(base)}", "RUN=$(date +%s)"]
    values: dict[str, str] = {}
    logins: dict[str, str] = {}  # login as shell text -> its password variable
    for label in the_plan.users:
        user_lines, login_expr = _shell_user(label, auth)
        lines += user_lines
        logins[login_expr] = _var(f"PASS_{label}")
        values.update({old: _var(f"TOKEN_{label}") for old, who in the_plan.old_credentials.items() if who == label})
        values.update({old: login_expr for old, who in the_plan.old_logins.items() if who == label})
    values.update(the_plan.missing)
    for number, stand_in in enumerate(the_plan.stand_ins, 1):
        name = f"ID_{number}"
        create = stand_in.create
        headers = {k: v for k, v in create.headers.items() if k.lower() not in
                   ((auth.get("send_header") or "Authorization").lower(), "cookie")}
        if stand_in.user:
            headers[auth.get("send_header") or "Authorization"] = auth.get("send_prefix", "") + _var(f"TOKEN_{stand_in.user}")
        lines += [f"# an object to stand in for the one the grade's request addressed ({create.method} "
                  f"{urlsplit(create.path).path}, as recorded)",
                  f"{name}=$({_curl(create.method, create.path, headers, create.body, stand_in.id_path)})"]
        values[stand_in.old_id] = _var(name)
    lines.append(f"# the evidence of {finding.id} ({finding.kind}), step by step")
    produced = 0
    for step in the_plan.steps:
        if step.role == "login" and step.own_password:
            body = _with_password(substitute_body(step.body, values), auth, logins)
        elif step.role == "signup":  # fresh values, as the replay sends: the grade's are taken
            body = _fresh_signup(step, auth, values, logins, fresh=_var("RUN"))
        else:
            body = substitute_body(step.body, values)
        headers = {k: substitute_text(values.get(v, v), values) for k, v in step.headers.items()}
        command = _curl(step.method, substitute_path(step.path, values), headers, body)
        later = _later_ids(step, the_plan.steps, values)
        if later:
            produced += 1
            name = f"NEW_{produced}"
            lines.append(f"{name}=$({_curl(step.method, substitute_path(step.path, values), headers, body, later)})"
                         f"; echo \"{name}=${name}\"")
            values[str(_dig(_body_json(step.response.body), later))] = _var(name)
        else:
            lines.append(command)
        if the_plan.steps.index(step) in the_plan.signed_up:  # the user it registered, logged in as the grade did
            label = the_plan.signed_up[the_plan.steps.index(step)]
            lines.append(_shell_login(label, auth, _login_value(_replace(step, body=body), auth) or "",
                                      _password_of(_form_or_json(body), _flow(auth))))
            values.update({old: _var(f"TOKEN_{label}") for old, who in the_plan.old_credentials.items()
                           if who == label})
    return "\n".join(lines) + "\n"


def _shell_user(label: str, auth: dict) -> tuple[list[str], str]:
    """The lines that register and log in a fresh user `label` (TOKEN_<label>), and its login as shell text."""
    from .identities import signup_body

    flow = _flow(auth)
    if flow.signup is None or flow.login is None:
        return [f"# user {label}: the API's registration or login is not recorded; make one by hand as TOKEN_{label}"], \
            _var(f"USER_{label}")
    body, login_value = signup_body(flow.signup.request_schema or flow.signup.request_form_schema or {}, flow,
                                    label, "replay", _var(f"PASS_{label}"))
    unique = login_value.split("@")[0]
    body = {k: v.replace(unique, _var(f"USER_{label}")) if isinstance(v, str) else v for k, v in body.items()}
    login_expr = login_value.replace(unique, _var(f"USER_{label}"))
    lines = [f"# user {label}: a fresh account (the replay picks its own credentials)",
             f"USER_{label}=pg{label.lower()}$RUN"
             + ("" if flow.issues_keys else f"; PASS_{label}='Replay-{label}-9x!Qv2026'")]
    form = flow.signup.request_form_schema is not None and flow.signup.request_schema is None
    signup_text = _urlencode(body) if form else json.dumps(body, ensure_ascii=False)
    ctype = "application/x-www-form-urlencoded" if form else "application/json"
    if flow.issues_keys:  # no password: the key the sign-up answers is the credential
        key_path = tuple((flow.token_path or "api_key").split("."))
        lines.append(f"TOKEN_{label}=$({_curl('POST', flow.signup.path, {'Content-Type': ctype}, signup_text, key_path)})")
        return lines, login_expr
    lines.append(_curl("POST", flow.signup.path, {"Content-Type": ctype}, signup_text))
    lines.append(_shell_login(label, auth, login_expr, _var(f"PASS_{label}")))
    return lines, login_expr


def _shell_login(label: str, auth: dict, login_value: str, password: str) -> str:
    """TOKEN_<label>=$(curl ... login ... | python3 ...): the line that logs `label` in and keeps its credential."""
    flow = _flow(auth)
    if flow.login is None:
        return f"# user {label}: the API's login is not recorded; log in by hand and keep the credential as TOKEN_{label}"
    login = {flow.identity_field: login_value, flow.password_field: password}
    login_text = _urlencode(login) if flow.login_form else json.dumps(login, ensure_ascii=False)
    ltype = "application/x-www-form-urlencoded" if flow.login_form else "application/json"
    if flow.token_path is None and flow.send_header.lower() == "cookie":  # a session cookie: read Set-Cookie
        command = _curl("POST", flow.login.path, {"Content-Type": ltype}, login_text).replace(
            r" -i -w '\n' ", " -o /dev/null -D - ", 1)
        return f"TOKEN_{label}=$({command} | sed -n 's/^[Ss]et-[Cc]ookie: *\\([^;]*\\).*/\\1/p' | head -n 1)"
    token_path = tuple((flow.token_path or "access_token").split("."))
    return f"TOKEN_{label}=$({_curl('POST', flow.login.path, {'Content-Type': ltype}, login_text, token_path)})"


def _later_ids(step: Step, steps: tuple[Step, ...], values: dict[str, str]) -> tuple | None:
    """The JSON path of an id in this step's answer that a later step's URL uses (captured in the shell)."""
    body = _body_json(step.response.body)
    rest = steps[steps.index(step) + 1:]
    for path, value in _leaves(body):
        text = str(value)
        if path and _ID_KEY.search(str(path[-1])) and text not in values and \
                any(_addresses(s, text) for s in rest):
            return path
    return None
