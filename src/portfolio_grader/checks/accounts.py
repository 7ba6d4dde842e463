"""ownership.user_accounts: one user cannot change or delete another's account through an operation that
addresses a user by the path (`PUT /users/{username}`, `PUT /users/v1/{username}/password`, `DELETE
/accounts/{id}`) or names the user in the body (`PUT /profile {"username": ...}`).

The account attacked is a disposable victim the probe signs up for itself, and the attacker is one too, never
test user A or B: a delete that works must not take the rest of the grade with it. Every verdict is judged by
effect — the victim's password now logs in as the attacker chose, its fields read back changed, its login no
longer works — and a refusal counts only when the victim's own identical request succeeds (the control), so an
operation that refuses everyone proves nothing.

ownership.self_promotion: an ordinary user cannot raise its own role through a write that takes one.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

from ..identities import (PRIVILEGED_FIELDS, Identity, IdentityError, least_privileged, login, login_failed,
                          token_from)
from ..models import Evidence, Finding, Operation
from ..payloads import valid_example
from ..probe import Exchange
from .operations import fill, ok, status_text
from .objects import unwrap
from .ownership import _user_id
from .registry import CheckContext, check

MAX_OPERATIONS = 6
MAX_VICTIMS = 3
_USERISH = re.compile(r"user|account|member|customer|profile|people|person", re.I)
_PASSWORD = re.compile(r"pass(word)?|pwd", re.I)
_HINT = ("Take the account from the token, not from the path: `PUT /users/me` (or check `username == "
         "current_user.username` and answer 403/404 otherwise) for every operation that changes or deletes an account.")


def account_operations(ctx: CheckContext) -> list[Operation]:
    """PUT/PATCH/DELETE operations that address one user by a path parameter, writes before deletes."""
    flow = ctx.api.auth
    admin = {op.label for op in (flow.admin_operations if flow else [])}
    found = []
    for op in ctx.api.operations:
        params = re.findall(r"\{([^}/]+)\}", op.path)
        before = op.path.split("{", 1)[0]
        by_path = len(params) == 1 and _USERISH.search(before + params[0])
        by_body = not params and op.method != "DELETE" and _USERISH.search(op.path) and body_user_field(op)
        if (op.method in ("PUT", "PATCH", "DELETE") and (by_path or by_body) and op not in (flow.login, flow.signup)
                and op.label not in admin and not re.search(r"/admin\b", op.path)
                and not any(t.lower() == "admin" for t in op.tags)):
            found.append(op)
    return sorted(found, key=lambda op: op.method == "DELETE")[:MAX_OPERATIONS]


def body_user_field(op: Operation) -> str | None:
    """The body field that names which user an update is for (`PUT /profile {"username": ...}`), if any."""
    props = (op.request_schema or {}).get("properties") or {}
    return next((p for p in ("username", "user_name", "login", "user_id", "userId") if p in props), None)


@check("ownership.user_accounts", area="ownership", title="Users cannot change or delete each other's accounts",
       needs=("service", "spec", "two_users"), judges_refusals=True)
def user_accounts(ctx: CheckContext):
    operations = account_operations(ctx)
    if not operations:
        return ctx.not_applicable("no operation addresses a user's account by a path parameter "
                                  "(such as PUT /users/{username})")
    try:  # a disposable attacker too: renaming itself to the victim's name must not break user B
        attacker = ctx.disposable_identity("X")
    except IdentityError as exc:
        return ctx.skip(f"no disposable user could be signed up to attack with ({exc})")
    victims: list[Identity] = []
    findings: list[Finding] = []
    evidence: list[Evidence] = []
    notes: list[str] = []
    held = judged = 0
    victim = None
    for op in operations:
        if victim is None:
            if len(victims) >= MAX_VICTIMS:
                notes.append(f"{op.label} not probed: {MAX_VICTIMS} victim accounts were used up")
                continue
            try:
                victim = ctx.disposable_identity(f"V{len(victims)}")
            except IdentityError as exc:
                notes.append(f"{op.label} not probed: no victim account could be signed up ({exc})")
                continue
            victims.append(victim)
        probe = _Probe(ctx, op, attacker, victim)
        outcome = probe.run()
        evidence += probe.evidence[:3]
        if outcome == "broken":
            judged += 1
            findings.append(probe.finding)
        elif outcome == "held":
            judged += 1
            held += 1
        else:
            notes.append(probe.note)
        if probe.victim_gone:
            victim = None
    if not judged:
        return ctx.skip("no account operation could be judged: " + "; ".join(notes))
    summary = (f"an ordinary user addressed another user's account through {judged} operation(s): {held}/{judged} "
               "refused, judged by the victim's login and profile afterwards"
               + (f"; {'; '.join(notes)}" if notes else ""))
    return ctx.verdict(summary, findings, evidence=evidence, score=held / judged)


class _Probe:
    """One account operation sent by the attacker at the victim, then (when refused) by the victim itself as the
    control."""

    def __init__(self, ctx: CheckContext, op: Operation, attacker: Identity, victim: Identity):
        self.ctx, self.op, self.attacker, self.victim = ctx, op, attacker, victim
        self.flow = ctx.api.auth
        self.evidence: list[Evidence] = []
        self.finding: Finding | None = None
        self.note = ""
        self.victim_gone = False
        self.target: Any = None  # the victim's value in the path or the body

    def run(self) -> str:
        """"broken", "held" or "inconclusive" (self.note says why)."""
        in_body = body_user_field(self.op) if "{" not in self.op.path else None
        target = _value_of(self.ctx, self.victim, in_body) if in_body else self._address()
        if target is None:
            self.note = f"{self.op.label} not probed: the victim's `{in_body or self._param()}` is not known"
            return "inconclusive"
        self.target = target
        path = self.op.path if in_body else fill(self.op.path, target)
        body, new_password = self._body()
        if in_body:
            body[in_body] = target  # the body names whose account this is
        kwargs = {} if self.op.method == "DELETE" else {"json": body}
        before = self._read()[1]
        sent = self.ctx.prober.request(self.op.method, path, headers=self.attacker.headers(self.flow), **kwargs)
        effect = self._effect(body, new_password, before) if ok(sent) else None
        if effect is not None:
            what, proof = effect
            self.evidence = [sent.evidence(f"an ordinary user sends {self.op.label} for another user's account"),
                             proof.evidence(what)]
            self.finding = self.ctx.fail(
                "bola_delete" if self.op.method == "DELETE" else "bola_write", "critical",
                f"An ordinary user {what.split(': ', 1)[-1]} through {self.op.label} ({path}): anyone with an account "
                "can take over or remove any other account (OWASP API1:2023 Broken Object Level Authorization).",
                operation=self.op.label, hint=_HINT, evidence=self.evidence)
            return "broken"
        if ok(sent):
            self.note = (f"{self.op.label} answered the other user {sent.status} but changed nothing the grader "
                         "could see")
            return "inconclusive"
        # refused: the control is the victim's own identical request, which must succeed and show its effect
        control = self.ctx.prober.request(self.op.method, path, headers=self.victim.headers(self.flow), **kwargs)
        own = self._effect(body, new_password, before) if ok(control) else None
        if own is None:
            self.note = (f"{self.op.label} refused the other user ({status_text(sent)}), but the victim's own request "
                         f"answered {status_text(control)} and showed no effect either, so the refusal proves nothing")
            return "inconclusive"
        self.evidence = [sent.evidence(f"an ordinary user sends {self.op.label} for another user's account: refused"),
                         control.evidence("the control: the account's owner sends the same request: it works")]
        return "held"

    def _param(self) -> str:
        return _param(self.op.path)

    def _address(self) -> Any:
        return _address(self.ctx, self.victim, self.op.path)

    def _body(self) -> tuple[dict[str, Any], str | None]:
        """A changed body: password fields get a new password the attacker would know, e-mails a fresh address."""
        body = valid_example(self.op.request_schema, variant=1) if self.op.request_schema else {}
        body = body if isinstance(body, dict) else {}
        new_password = None
        for key in list(body):
            if _PASSWORD.search(key):
                new_password = new_password or f"Taken-Over-{secrets.token_hex(3)}!9x"
                body[key] = new_password
            elif "mail" in key.lower():
                body[key] = f"pgtaken{secrets.token_hex(3)}@example.com"
        return body, new_password

    def _reader(self) -> Operation | None:
        """A GET that shows one user by the same parameter (`GET /user/{username}`), to see a change."""
        param = self._param()
        return next((op for op in self.ctx.api.operations if op.method == "GET" and re.findall(r"\{([^}/]+)\}", op.path)
                     == [param] and _USERISH.search(op.path)), None)

    def _read(self) -> tuple[Exchange | None, Any]:
        """(the exchange, the account it shows) as the victim sees its account; (None, None) when nothing shows it."""
        reader = self._reader()
        path = fill(reader.path, self.target) if reader is not None else (
            self.flow.me.path if self.flow.me is not None and "{" not in self.flow.me.path else None)
        if path is None:
            return None, None
        seen = self.ctx.prober.request("GET", path, headers=self.victim.headers(self.flow))
        return seen, (unwrap(seen.json()) if ok(seen) else None)

    def _effect(self, body: dict[str, Any], new_password: str | None, before: Any) -> tuple[str, Exchange] | None:
        """(what happened, the exchange that shows it) when the request changed or removed the victim's account."""
        if self.op.method == "DELETE":
            again = login(self.ctx.prober, self.flow, self.victim.login_value, self.victim.password)
            if login_failed(again, self.flow):
                self.victim_gone = True
                return "the victim's login no longer works: deleted the victim's account", again
            return None
        if new_password is not None:
            taken = login(self.ctx.prober, self.flow, self.victim.login_value, new_password)
            if ok(taken) and any(token_from(taken, self.flow)) and not login_failed(taken, self.flow):
                self.victim.password = new_password  # the victim's password is now the one the grader chose
                token, cookie = token_from(taken, self.flow)
                self.victim.token, self.victim.cookie = token or self.victim.token, cookie or self.victim.cookie
                return ("the victim's account logs in with the password the attacker chose: set the victim's password",
                        taken)
        proof, after = self._read()
        changed = [k for k, v in body.items() if not _PASSWORD.search(k) and isinstance(after, dict)
                   and after.get(k) == v and (not isinstance(before, dict) or before.get(k) != v)]
        if changed:
            return (f"the victim's profile now shows {', '.join(changed)} as the attacker sent: changed the victim's "
                    f"{', '.join(changed)}", proof)
        return None


# ---------------------------------------------------------------- ownership.self_promotion


def role_operations(ctx: CheckContext) -> list[tuple[Operation, str]]:
    """(operation, privileged field) of writes other than the sign-up whose body takes a role-like field."""
    flow = ctx.api.auth
    admin = {op.label for op in flow.admin_operations}
    found = []
    for op in ctx.api.operations:
        props = (op.request_schema or {}).get("properties") or {}
        field = next((p for p in props if p.lower() in PRIVILEGED_FIELDS), None)
        if (field and op.method in ("PUT", "PATCH", "POST") and op is not flow.signup and op.label not in admin
                and not re.search(r"/admin\b", op.path) and len(re.findall(r"\{[^}/]+\}", op.path)) <= 1):
            found.append((op, field))
    return found[:MAX_OPERATIONS]


_ROLE_WORDS = ("admin", "administrator", "staff", "employee", "manager", "moderator", "superuser", "owner")


def _privileged_values(schema: dict, current: Any) -> list[Any]:
    """The values of a role-like field that grant more than the plainest one, most admin-like first: the enum's,
    else common role names written the way the user's current role is (`Customer` -> `Admin`, `Employee`)."""
    options = [v for v in schema.get("enum") or () if v is not None]
    if options:
        plain = least_privileged(schema)
        rest = [v for v in options if v != plain]
        return sorted(rest, key=lambda v: "admin" not in str(v).lower())[:3]
    if isinstance(current, bool) or schema.get("type") == "boolean":
        return [True]
    if isinstance(current, list) or schema.get("type") == "array":
        return [["admin"]]
    if isinstance(current, str) and current:
        styled = str.upper if current.isupper() else str.title if current[0].isupper() else str.lower
        return [styled(w) for w in _ROLE_WORDS if styled(w) != current]
    return ["admin"]


def _shown(exchange: Exchange, field: str) -> Any:
    """The value of `field` in the user object an answer shows, None when it shows none."""
    body = unwrap(exchange.json()) if ok(exchange) else None
    return body.get(field) if isinstance(body, dict) else None


@check("ownership.self_promotion", area="ownership", title="Users cannot raise their own role",
       needs=("service", "spec", "user"), judges_refusals=True)
def self_promotion(ctx: CheckContext):
    flow = ctx.api.auth
    operations = role_operations(ctx)
    if not operations:
        return ctx.not_applicable("no operation besides the sign-up takes a role-like field (role, is_admin, ...)")
    if flow.me is None or "{" in flow.me.path:
        return ctx.skip("no profile operation shows a user's role, so a change of role could not be seen")
    try:
        user = ctx.disposable_identity("P")  # it may become admin: never user A or B
    except IdentityError as exc:
        return ctx.skip(f"no disposable user could be signed up to try it with ({exc})")
    findings: list[Finding] = []
    evidence: list[Evidence] = []
    notes: list[str] = []
    held = judged = 0
    for op, field in operations:
        before = ctx.prober.request("GET", flow.me.path, headers=user.headers(flow))
        role_before = _shown(before, field)
        if role_before is None:
            notes.append(f"{op.label} not judged: the profile shows no `{field}` ({status_text(before)})")
            continue
        schema = ((op.request_schema or {}).get("properties") or {}).get(field) or {}
        target = _address(ctx, user, op.path)
        if "{" in op.path and target is None:
            notes.append(f"{op.label} not judged: the user's own `{_param(op.path)}` is not known")
            continue
        path = fill(op.path, target) if "{" in op.path else op.path
        refused = ignored = False  # an answer that judges the operation: 401/403, or a success without effect
        for value in _privileged_values(schema, role_before):
            body = valid_example(op.request_schema) if op.request_schema else {}
            body = body if isinstance(body, dict) else {}
            for key in body:  # the user addresses itself wherever the body names a user
                if key in user.signup_body and key.lower() not in PRIVILEGED_FIELDS and "pass" not in key.lower():
                    body[key] = user.signup_body[key]
            body[field] = value
            sent = ctx.prober.request(op.method, path, json=body, headers=user.headers(flow))
            if sent.status in (401, 403):
                refused = True
                break
            if not ok(sent):  # 400/422/5xx: this value was not taken (an unknown role name); try the next
                continue
            after = ctx.prober.request("GET", flow.me.path, headers=user.headers(flow))
            now = _shown(after, field)
            if now == value and now != role_before:
                judged += 1
                findings.append(ctx.fail(
                    "mass_assignment", "critical",
                    f"An ordinary user raised its own `{field}` from {role_before!r} to {value!r} with {op.label} "
                    "(OWASP API3:2023 / API5:2023: privilege escalation by mass assignment).", operation=op.label,
                    hint="Never take a role from the client: only an admin operation may change it, and the user "
                         "whose role changes is never the caller. Drop the field from the update schema "
                         "(a separate UserUpdate without `role`).",
                    evidence=[before.evidence(f"its profile before: {field} = {role_before!r}"),
                              sent.evidence(f"it sends {field} = {value!r}"),
                              after.evidence(f"its profile after: {field} = {now!r}")]))
                break
            ignored = now == role_before  # else unreadable, or changed to something not sent: not judged
            break
        if refused or ignored:
            judged += 1
            held += 1
            how = f"refused ({sent.status})" if refused else f"answered {sent.status}, and the profile still shows " \
                                                             f"{field} = {role_before!r}"
            evidence += [before.evidence(f"the control: the same token reads its profile ({field} = {role_before!r})"),
                         sent.evidence(f"an ordinary user sends {op.label} with a privileged {field}: {how}")]
        elif not findings or findings[-1].operation != op.label:
            notes.append(f"{op.label} not judged: no privileged `{field}` value was accepted or refused "
                         f"(last answer {status_text(sent)})")
    if not judged:
        return ctx.skip("no role-changing operation could be judged: " + "; ".join(notes))
    summary = (f"{held}/{judged} operation(s) taking a role-like field left an ordinary user's role unchanged "
               f"(read back from {flow.me.label})" + (f"; {'; '.join(notes)}" if notes else ""))
    return ctx.verdict(summary, findings, evidence=evidence, score=held / judged)


def _param(path: str) -> str:
    return (re.findall(r"\{([^}/]+)\}", path) or [""])[0]


def _address(ctx: CheckContext, identity: Identity, path: str) -> Any:
    """The identity's own value for the path's one parameter, None when the path has none or it is not known."""
    param = _param(path)
    return _value_of(ctx, identity, param) if param else None


def _value_of(ctx: CheckContext, identity: Identity, param: str) -> Any:
    """The identity's own value for a field or parameter that names a user: its sign-up field of that name, its
    id, its e-mail or its login; None when it is not known."""
    if identity.signup_body.get(param) not in (None, ""):
        return identity.signup_body[param]
    if re.fullmatch(r"(user_?)?(id|pk|uuid)|\w*_id|\w*Id", param, re.I):
        return _user_id(ctx, identity)
    if re.search(r"mail", param, re.I):
        return next((v for k, v in identity.signup_body.items() if "mail" in k.lower()), None)
    if re.search(r"name|login|handle", param, re.I):
        return next((identity.signup_body[k] for k in ("username", "user_name", "login", "handle")
                     if identity.signup_body.get(k)), identity.login_value)
    return None
