"""Ownership and access control, probed the way an attacker would with two ordinary accounts.

- `ownership.bola`: user B replays user A's object id (OWASP API1:2023); judged by effect, not by status.
- `ownership.mass_assignment`: a sign-up that sends `role: admin`, objects created or updated with someone
  else's `owner_id` (OWASP API3:2023).
- `ownership.data_exposure`: password hashes, salts and secrets in responses, other users' emails
  (OWASP API3:2023), over every response of the grade.
- `ownership.bfla`: admin operations called by an ordinary user (OWASP API5:2023).

Every object a probe creates is deleted again by its owner when the API documents a DELETE.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from .. import deadlines
from ..identities import PRIVILEGED_FIELDS, Identity, IdentityError, create_identity, fresh_object
from ..models import Evidence, Finding, Operation, Resource
from ..payloads import valid_example
from ..probe import Exchange
from .jwt_surface import no_ambient_cookies
from .objects import (NoParent, Sighting, at, bind_parents, created_id, fill_id, find_id, items_of, limit_param,
                      locate_created, marked, markers_in, natural_key, read_back, release, same, unwrap, walkable)
from .operations import PLUMBING, ok, status_text
from .registry import CheckContext, check

MAX_RESOURCES = 3  # collections the mass-assignment and control probes look at
MAX_OWNED = 20  # owned collections BOLA walks at most (top level and nested), within the family's deadline
MAX_ADMIN_OPERATIONS = 8
MAX_CONFLICT_RETRIES = 10  # other existing objects an admin write is tried on after a 409
MAX_EXPOSURE_FINDINGS = 10
OWNER_FIELDS = ("owner_id", "ownerId", "user_id", "userId", "owner", "created_by", "createdBy", "author_id",
                "authorId")
ID_FIELDS = ("id", "_id", "user_id", "userId", "uuid")
_ADMIN_HINT = ("auth:\n"
               "  admin_operations: [GET /api/v1/stats]   # admin-only operations the spec does not tag admin\n"
               "  admin: {login: admin@example.com, password: seeded-admin-password}   # the control: must be allowed\n"
               "# or give them `tags: [admin]` in the OpenAPI document, or serve them under /admin")

# ---------------------------------------------------------------- hints (the attack, why it matters, the fix)

_SCOPE_FIX = ("The fix is to scope every lookup by the caller, in the query itself: FastAPI "
              "`db.query(Task).filter(Task.id == task_id, Task.owner_id == user.id).first()` (a `get_owned_task` "
              "dependency reused by GET, PUT/PATCH and DELETE) and `raise HTTPException(404)` when it is None; "
              "Express `Task.findOne({ _id: req.params.id, owner: req.user.id })` and `res.status(404)` when null; "
              "Flask `Task.query.filter_by(id=task_id, owner_id=current_user.id).first_or_404()`.")
HINTS = {
    "bola_read": "The attack: log in with any account and ask for someone else's id — ids are sequential or leak "
                 "in URLs, so an attacker simply counts. It is OWASP API1:2023 (BOLA), the most common way APIs leak "
                 "their users' data. " + _SCOPE_FIX,
    "bola_list_leak": "The attack: any logged-in user lists the collection and gets everyone's objects — no id "
                      "guessing needed (OWASP API1:2023). Filter list queries by the caller: FastAPI "
                      "`.filter(Task.owner_id == user.id)`, Express `Task.find({ owner: req.user.id })`, Flask "
                      "`Task.query.filter_by(owner_id=current_user.id)`; paginate after filtering.",
    "bola_write": "The attack: send PUT/PATCH to another user's id and overwrite their data (OWASP API1:2023). The "
                  "grader judged by effect: it read the object back as its owner. Check ownership BEFORE applying "
                  "the change — answering 403 after the row was written still loses the owner's data. " + _SCOPE_FIX,
    "bola_delete": "The attack: send DELETE to another user's ids and wipe their data, one id after the other "
                   "(OWASP API1:2023). Look the object up with the owner in the query and delete only what it "
                   "returns (`DELETE ... WHERE id = :id AND owner_id = :me`). " + _SCOPE_FIX,
    "mass_assignment": "The attack: send fields the form never shows — `role`, `is_admin`, `owner_id` — and let "
                       "the server copy the whole body into the model; one sign-up request makes an administrator, "
                       "one update hands objects to someone else (OWASP API3:2023, Broken Object Property Level "
                       "Authorization). The fix is an explicit allow-list of input fields, with server-side values "
                       "for the rest: FastAPI a `UserCreate`/`TaskIn` pydantic model without role/owner fields "
                       "(add `model_config = ConfigDict(extra=\"forbid\")` to reject unknown fields) and set "
                       "`role=\"user\"`, `owner_id=current_user.id` in the route; Express pick the fields "
                       "(`const { email, password } = req.body`), never `User.create(req.body)` or "
                       "`Object.assign(task, req.body)`; Flask a marshmallow/pydantic schema (`unknown=RAISE`), "
                       "never `User(**request.json)` or `setattr` in a loop.",
    "sensitive_data_exposure": "The attack: read what the API returns — a password hash in a profile or list can be "
                               "cracked offline, a salt or secret helps forge tokens, another user's email feeds "
                               "phishing and account takeover (OWASP API3:2023, excessive data exposure). The client "
                               "filtering it out of the UI does not help: the response is the leak. The fix is an "
                               "explicit output model: FastAPI `response_model=UserOut` with only public fields; "
                               "Express a `toJSON` transform or `.select(\"-password\")` / picking fields before "
                               "`res.json`; Flask a marshmallow schema with `load_only=True` on the password. Never "
                               "serialise the ORM row itself.",
    "forbidden_answered_401": "401 Unauthorized means \"log in (again)\": clients and frontends that see it drop or "
                              "refresh the token and send the user to the login page. A logged-in user who lacks a "
                              "permission gets 403 Forbidden. FastAPI: raise HTTPException(403) in the role check "
                              "(keep 401 for a missing or invalid token); Flask: abort(403); Express: res.status(403).",
    "bfla": "The attack: an ordinary user calls the admin routes directly — hiding the admin button in the frontend "
            "protects nothing, the API is public (OWASP API5:2023, Broken Function Level Authorization). Enforce the "
            "role on the server for every admin route: FastAPI `APIRouter(prefix=\"/admin\", "
            "dependencies=[Depends(require_admin)])` where `require_admin` raises 403 unless `user.role == "
            "\"admin\"`; Express `router.use(requireRole(\"admin\"))` before the admin routes; Flask an "
            "`@admin_required` decorator or a blueprint `before_request` that calls `abort(403)`. If the operation "
            "is meant for everyone, drop the admin tag or path.",
}



def _owned_hint(ctx: CheckContext) -> str:
    return ctx.resources_hint("collections each user owns: the grader checks users stay apart")

# ---------------------------------------------------------------- shared helpers






_ID_SEGMENT = re.compile(r"/(\d+|[0-9a-f-]{16,})(?=/|$)")


def _template_regex(path: str) -> re.Pattern:
    parts = re.split(r"(\{[^}]+\})", path.rstrip("/") or "/")
    return re.compile("".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts) + "/?")


def _api_path(ctx: CheckContext, url: str) -> str:
    """The path of a URL relative to the API's mount point (the spec's server path)."""
    path = urlsplit(url).path
    mount = urlsplit(ctx.api.base_url or "").path.rstrip("/")
    return path[len(mount):] or "/" if mount and path.startswith(mount + "/") else path


def _route(ctx: CheckContext, exchange: Exchange) -> str:
    """The documented operation an exchange belongs to ("GET /tasks/{task_id}"), else its raw path."""
    path = _api_path(ctx, exchange.url)
    matches = [op for op in ctx.api.operations
               if op.method == exchange.method and _template_regex(op.path).fullmatch(path)]
    if matches:  # the most specific template: most literal characters
        return max(matches, key=lambda op: len(re.sub(r"\{[^}]+\}", "", op.path))).label
    return f"{exchange.method} {_ID_SEGMENT.sub('/{id}', path)}"


def _by(identity: Identity, exchange: Exchange, ctx: CheckContext) -> bool:
    """Was this request sent with this identity's credentials?"""
    mine = identity.headers(ctx.api.auth) if ctx.api.auth else {}
    sent = {k.lower(): v for k, v in exchange.request_headers.items()}
    return bool(mine) and all(sent.get(k.lower()) == v for k, v in mine.items())




def _user_id(ctx: CheckContext, identity: Identity) -> Any:
    """A user's id as the API knows it: from its profile (`me`), else from its sign-up response."""
    def compute() -> Any:
        candidates = []
        if ctx.api.auth and ctx.api.auth.me is not None and "{" not in ctx.api.auth.me.path:
            candidates.append(_me(ctx, identity).json())
        candidates.append(identity.signup_response)
        for body in candidates:
            body = unwrap(body)
            if isinstance(body, dict):
                found = next((body[k] for k in ID_FIELDS if body.get(k) not in (None, "")), None)
                if found is not None:
                    return found
        return None
    return ctx.memo(f"ownership.user_id.{identity.label}.{identity.login_value}", compute)


def _me(ctx: CheckContext, identity: Identity) -> Exchange:
    return ctx.memo(f"ownership.me.{identity.label}.{identity.login_value}", lambda: ctx.prober.request(
        "GET", ctx.api.auth.me.path, headers=identity.headers(ctx.api.auth)))


def _two_users(ctx: CheckContext) -> tuple[Identity, Identity | None]:
    a = ctx.identities(1)[0]
    try:
        return a, ctx.identities(2)[1]
    except IdentityError:
        return a, None


def _schema_props(*schemas: Any) -> dict[str, Any]:
    props: dict[str, Any] = {}
    for schema in schemas:
        if isinstance(schema, dict):
            for part in [schema] + list(schema.get("allOf") or []):
                if isinstance(part, dict):
                    props.update(part.get("properties") or {})
    return props


def _response_schema(op: Operation | None) -> dict | None:
    if op is None:
        return None
    return next((r.get("schema") for s, r in sorted(op.responses.items()) if s.startswith("2") and r.get("schema")),
                None)


def _owner_field(resource: Resource) -> str | None:
    props = _schema_props(resource.create.request_schema, _response_schema(resource.create),
                          _response_schema(resource.read))
    return next((name for name in OWNER_FIELDS if name in props), None)


def _top_level(ctx: CheckContext) -> list[Resource]:
    return [r for r in ctx.api.resources if "{" not in r.collection][:MAX_RESOURCES]


class _Cleanup:
    """Objects a probe created, deleted again by whoever owns them now."""

    def __init__(self, ctx: CheckContext):
        self.ctx = ctx
        self.items: list[tuple[Resource, str, list[Identity]]] = []
        self.left: list[str] = []

    def add(self, resource: Resource, item_id: Any, *owners: Identity) -> None:
        self.items.append((resource, item_id, list(owners)))

    def run(self) -> None:
        for resource, item_id, owners in self.items:
            if resource.delete is None:
                self.left.append(fill_id(resource.item, item_id))
                continue
            for owner in owners:  # the creator first; the other user when the object changed hands
                answer = self.ctx.prober.request("DELETE", at(resource, resource.delete, item_id),
                                                 headers=owner.headers(self.ctx.api.auth))
                answer.source = "cleanup"
                if ok(answer) or answer.status not in (401, 403, 404, 410):
                    break
        self.items.clear()

    def note(self) -> str:
        return (f"; {len(self.left)} object(s) left behind: no DELETE is documented ({', '.join(self.left[:3])})"
                if self.left else "")


# ---------------------------------------------------------------- 1. BOLA


@dataclass
class _Probe:
    """One resource's walk: what was sent, what it showed."""

    resource: Resource
    findings: list[Finding] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    judged: int = 0
    held: int = 0

    def count(self, held: bool) -> None:
        self.judged += 1
        self.held += held


def _is_owned(ctx: CheckContext, resource: Resource) -> bool:
    manifest = ctx.facts.manifest.resources if ctx.facts.manifest else []
    return (resource.collection in manifest or resource.create.security
            or bool(resource.read and resource.read.security) or _owner_field(resource) is not None)


def _documented_public(ctx: CheckContext, op: Operation | None) -> bool:
    """The spec declares security elsewhere but not on this operation: public by design."""
    manifest = ctx.facts.manifest.resources if ctx.facts.manifest else []
    return (op is not None and not op.security and any(o.security for o in ctx.api.operations)
            and not any(op.path.startswith(c) for c in manifest))


@check("ownership.bola", area="ownership", title="Users cannot read, list, change or delete each other's objects",
       needs=("service", "spec", "resource", "two_users"), judges_refusals=True)
def bola(ctx: CheckContext):
    a, b = ctx.identities(2)
    candidates = walkable(ctx.api.resources, MAX_OWNED)
    resources = [r for r in candidates if _is_owned(ctx, r)]
    if not resources:
        return ctx.skip("no resource looks user-owned: none of " + ", ".join(r.collection for r in candidates)
                        + " requires credentials in the spec or has an owner field", _owned_hint(ctx))
    cleanup = _Cleanup(ctx)
    probes: list[_Probe] = []
    not_reached: list[str] = []
    slowest = 0.0
    ha = a.headers(ctx.api.auth)
    for resource in resources:
        left = deadlines.remaining()
        if left is not None and left < 2 * slowest + 5:  # another walk would not finish: say what was left out
            not_reached.append(resource.collection)
            continue
        started = time.monotonic()
        try:  # a nested collection: A's own parent first, so that B's reach into it can be tried
            bound = bind_parents(ctx, resource, ha, f"pg-a-{ctx.run_tag}")
        except NoParent as exc:
            probes.append(_Probe(resource, notes=[str(exc)]))
            continue
        try:
            probe = _bola_walk(ctx, bound.resource, a, b, cleanup, nested=bool(bound.parents))
            probe.resource = resource  # named by its template, not by the parent made for it
            probes.append(probe)
        finally:
            cleanup.run()  # the children before their parents
            release(ctx, bound, ha)
            slowest = max(slowest, time.monotonic() - started)
    findings = [f for p in probes for f in p.findings]
    judged = sum(p.judged for p in probes)
    if not judged:
        notes = "; ".join(n for p in probes for n in p.notes)
        return ctx.skip(f"no object could be created and read back as user A ({notes})", _owned_hint(ctx))
    evidence = [e for p in probes for e in p.evidence]
    notes = [n for p in probes for n in p.notes]
    held = sum(p.held for p in probes)
    covered = [p.resource.collection for p in probes if p.judged]
    left_out = [r.collection for r in ctx.api.resources if _is_owned(ctx, r) and r not in resources]
    if not_reached:
        notes.append(f"not reached within the family's deadline: {', '.join(not_reached)}")
    if left_out:
        notes.append(f"beyond the {len(resources)} collections walked: {', '.join(left_out[:5])}"
                     + (f" and {len(left_out) - 5} more" if len(left_out) > 5 else ""))
    summary = (f"user B tried to read, list, change and delete user A's objects in {len(covered)} of "
               f"{len(resources) + len(left_out)} owned collection(s) ({', '.join(covered)}): {held}/{judged} "
               "attempts refused without effect (judged by reading the object back as A)"
               + (f". Notes: {'; '.join(notes)}" if notes else "") + cleanup.note())
    return ctx.verdict(summary, findings, evidence=evidence, score=held / judged)


def _bola_walk(ctx: CheckContext, resource: Resource, a: Identity, b: Identity, cleanup: _Cleanup,
               nested: bool = False) -> _Probe:
    probe = _Probe(resource)
    flow = ctx.api.auth
    ha, hb = a.headers(flow), b.headers(flow)

    owner_field = _owner_field(resource)
    sent_owner = owner_field if owner_field in _schema_props(resource.create.request_schema) else None
    a_id = _user_id(ctx, a) if sent_owner else None

    def create() -> tuple[Exchange, Any, str | None, dict]:
        body = fresh_object(resource.create.request_schema, natural_key(resource))
        body = marked(body, f"pg-a-{ctx.run_tag}{secrets.token_hex(2)}")
        if isinstance(body, dict) and sent_owner and a_id is not None:  # an API that wants the owner in the body
            body[sent_owner] = a_id
        made = ctx.prober.request("POST", resource.collection, json=body, headers=ha)
        item_id, why = locate_created(ctx, resource, made, body, ha) if ok(made) else (None, "")
        item = fill_id(resource.item, item_id) if item_id is not None else None
        if item:
            cleanup.add(resource, item_id, a, b)
        elif ok(made):
            probe.notes.append(f"{resource.collection}: {why}")
        return made, item_id, item, body

    made, item_id, item, body = create()
    if item is None:
        probe.notes.append(f"{resource.collection}: user A could not create an object to probe with "
                           f"(POST answered {status_text(made)}{'' if not ok(made) else ' without an id'})")
        return probe
    own = read_back(ctx, resource, item_id, ha)
    if own.state != "found":
        probe.notes.append(f"{resource.collection}: user A cannot read its own object {item} back ({own.via} answered "
                           f"{status_text(own.exchange)}{', without it' if ok(own.exchange) else ''}), so nothing "
                           "can be judged by effect")
        return probe
    original = own.obj
    a_markers = markers_in(body)
    a_owner = original.get(owner_field) if isinstance(original, dict) and owner_field else None
    created_ev = made.evidence("user A creates an object")

    # -- read: B asks for A's object by id
    if resource.read is None:
        probe.notes.append(f"{resource.item} has no GET: B's reads are judged through the list")
    else:
        read_public = _documented_public(ctx, resource.read)
        seen = ctx.prober.request("GET", at(resource, resource.read, item_id), headers=hb)
        seen_obj = unwrap(seen.json())
        leaked = any(m in seen.text for m in a_markers) or (
            ok(seen) and isinstance(seen_obj, dict) and same(find_id(seen_obj, resource.id_field), item_id))
        if read_public:
            probe.notes.append(f"GET {resource.item} is documented as public (no security), so B reading it is by "
                               "design")
        else:
            probe.count(not leaked)
            if leaked:
                probe.findings.append(ctx.fail(
                    "bola_read", "critical",
                    f"User B read user A's object: GET {item} with B's token answered {status_text(seen)} with A's data "
                    f"(OWASP API1:2023 Broken Object Level Authorization).",
                    operation=resource.read.label if resource.read else f"GET {resource.item}", hint=HINTS["bola_read"],
                    evidence=[created_ev, seen.evidence("user B reads user A's object: expected 404 (or 403)")]))
            else:
                probe.evidence.append(seen.evidence(f"user B reads user A's object: refused ({status_text(seen)})"))
                if seen.status is not None and seen.status >= 500:
                    probe.notes.append(f"B's GET {item} answered {seen.status} (a crash, not a leak; the error checks "
                                       "report 5xx)")

    # -- list: B's list must not contain A's object
    if resource.list is not None and not _documented_public(ctx, resource.list):
        listed = ctx.prober.request("GET", resource.collection, headers=hb)
        exchanges = [listed]
        hit = _list_leak(listed, a_markers, resource, item_id, owner_field, a_owner)
        limit = limit_param(resource.list)
        if not hit and ok(listed) and limit:
            listed = ctx.prober.request("GET", resource.collection, headers=hb, params={limit[0]: limit[1]})
            exchanges.append(listed)
            hit = _list_leak(listed, a_markers, resource, item_id, owner_field, a_owner) if ok(listed) else None
        probe.count(hit is None)
        if hit:
            probe.findings.append(ctx.fail(
                "bola_list_leak", "high",
                f"User B's list GET {resource.collection} contains user A's objects ({hit}) (OWASP API1:2023 "
                "Broken Object Level Authorization).",
                operation=resource.list.label, hint=HINTS["bola_list_leak"],
                evidence=[created_ev, listed.evidence("user B lists the collection: A's objects must not appear")]))
        else:
            probe.evidence.append(exchanges[-1].evidence(f"user B's list ({status_text(exchanges[-1])}) holds none of "
                                                         "user A's objects"))
            if listed.status is not None and listed.status >= 500:
                probe.notes.append(f"B's GET {resource.collection} answered {listed.status} (a crash, not a leak)")

    if nested:
        _attach(ctx, probe, resource, a, b, cleanup, created_ev)

    # -- write: B changes A's object; A reads it back
    if resource.update is not None:
        update = resource.update
        changed = valid_example(update.request_schema, variant=1) if update.request_schema else {}
        changed = marked(changed, f"pg-b-{ctx.run_tag}{secrets.token_hex(2)}")
        target = at(resource, update, item_id)
        attempt = ctx.prober.request(update.method, target, json=changed, headers=hb)
        after = read_back(ctx, resource, item_id, ha)
        effect = _write_effect(changed, original, after, owner_field, a_owner)
        if effect is None and attempt.status in (400, 422):
            control = ctx.prober.request(update.method, target, json=changed, headers=ha)
            if not ok(control):  # the body itself is refused: B's refusal proves nothing
                probe.notes.append(f"{update.method} {target} refused the probe's body for its owner too "
                                   f"({status_text(control)}), so B's write could not be judged")
                effect = "skip"
            else:
                after = read_back(ctx, resource, item_id, ha)
        if effect is None and after.state == "unknown":
            probe.notes.append(f"after B's {update.method}, A's read {after.via} answered {status_text(after.exchange)}"
                               " and showed nothing either way, so B's write could not be judged")
            effect = "skip"
        if effect != "skip":
            probe.count(effect is None)
            chain = [created_ev, attempt.evidence(f"user B sends {update.method} to user A's object "
                                                  f"(answered {status_text(attempt)})"),
                     after.exchange.evidence("user A reads its object back")]
            if effect:
                refused = attempt.status is not None and attempt.status >= 400
                probe.findings.append(ctx.fail(
                    "bola_write", "critical",
                    f"User B changed user A's object with {update.method} {target}: {effect}"
                    + (f", although B's request was answered {attempt.status}" if refused else "")
                    + " (OWASP API1:2023 Broken Object Level Authorization).",
                    operation=update.label, hint=HINTS["bola_write"], evidence=chain))
            else:
                probe.evidence.extend(chain[1:])
                if attempt.status is not None and attempt.status >= 500:
                    probe.notes.append(f"B's {update.method} {target} answered {attempt.status} (a crash, not a "
                                       "BOLA: the object was unchanged)")
        if after.state != "found":  # A lost its object: use a fresh one for the delete step
            made, item_id, item, body = create()
            if item is None or read_back(ctx, resource, item_id, ha).state != "found":
                probe.notes.append("no fresh object A can read could be made for the delete step")
                return probe
            created_ev = made.evidence("user A creates another object (the first one was lost)")

    # -- delete: B deletes A's object; A reads it back
    if resource.delete is not None:
        target = at(resource, resource.delete, item_id)
        attempt = ctx.prober.request("DELETE", target, headers=hb)
        after = read_back(ctx, resource, item_id, ha)
        gone = after.state == "absent"
        chain = [created_ev, attempt.evidence(f"user B sends DELETE to user A's object (answered {status_text(attempt)})"),
                 after.exchange.evidence("user A reads its object back: it must still be there")]
        if after.state == "unknown":
            probe.notes.append(f"after B's DELETE {target}, A's read {after.via} answered {status_text(after.exchange)} "
                               "and showed nothing either way, so B's delete could not be judged")
        elif gone:
            probe.count(False)
            seen_as = (f"A's list {after.via} no longer holds it" if after.by_list
                       else f"A's GET answers {after.exchange.status}")
            probe.findings.append(ctx.fail(
                "bola_delete", "critical",
                f"User B deleted user A's object: after B's DELETE {target} (answered {status_text(attempt)}), "
                f"{seen_as} (OWASP API1:2023 Broken Object Level Authorization).",
                operation=resource.delete.label, hint=HINTS["bola_delete"], evidence=chain))
        else:
            probe.count(True)
            probe.evidence.extend(chain[1:])
            if attempt.status is not None and attempt.status >= 500:
                probe.notes.append(f"B's DELETE {target} answered {attempt.status} (a crash, not a BOLA: the object "
                                   "is still there)")
    return probe


def _attach(ctx: CheckContext, probe: _Probe, resource: Resource, a: Identity, b: Identity, cleanup: _Cleanup,
            created_ev: Evidence) -> None:
    """B adds a child to A's parent (`POST /projects/{A's}/tasks`): refused, or A's list shows B's object."""
    body = marked(fresh_object(resource.create.request_schema, natural_key(resource)),
                  f"pg-b-{ctx.run_tag}{secrets.token_hex(2)}")
    attempt = ctx.prober.request("POST", resource.collection, json=body, headers=b.headers(ctx.api.auth))
    if not ok(attempt):
        probe.count(True)
        probe.evidence.append(attempt.evidence(f"user B adds an object to user A's {resource.collection}: refused "
                                               f"({status_text(attempt)})"))
        return
    item_id, _ = locate_created(ctx, resource, attempt, body, b.headers(ctx.api.auth))
    if item_id is not None:
        cleanup.add(resource, item_id, b, a)
    markers = markers_in(body)
    seen = (ctx.prober.request("GET", resource.collection, headers=a.headers(ctx.api.auth))
            if resource.list is not None else None)
    if seen is None or not ok(seen) or not markers:
        probe.notes.append(f"user B's POST {resource.collection} into user A's parent answered {attempt.status}, and "
                           "A's list cannot show whether it landed there")
        return
    landed = any(m in seen.text for m in markers)
    probe.count(not landed)
    chain = [created_ev, attempt.evidence(f"user B adds an object to user A's {resource.collection} "
                                          f"(answered {attempt.status})"),
             seen.evidence("user A lists its collection: B's object must not be there")]
    if landed:
        probe.findings.append(ctx.fail(
            "bola_write", "critical",
            f"User B added an object to user A's {resource.collection} (POST answered {attempt.status}) and A's list "
            "now shows it (OWASP API1:2023 Broken Object Level Authorization).",
            operation=resource.create.label, hint=HINTS["bola_write"], evidence=chain))
    else:
        probe.evidence.extend(chain[1:])


def _list_leak(listed: Exchange, markers: list[str], resource: Resource, item_id: Any, owner_field: str | None,
               a_owner: Any) -> str | None:
    """What in B's list belongs to A, or None."""
    if not ok(listed):
        return None
    if any(m in listed.text for m in markers):
        return "the object user A just created"
    for obj in items_of(listed.json()):
        if not isinstance(obj, dict):
            continue
        if same(find_id(obj, resource.id_field), item_id):
            return f"{resource.id_field} {item_id}, created by A"
        if owner_field and a_owner is not None and same(obj.get(owner_field), a_owner):
            return f"objects with {owner_field} = {a_owner}, user A's id"
    return None



def _write_effect(changed: Any, original: Any, after: Sighting, owner_field: str | None,
                  a_owner: Any) -> str | None:
    """What B's write did to A's object, as A sees it, or None when it is unchanged (or A's read shows nothing)."""
    if after.state == "absent" or after.exchange.status == 403 and not after.by_list:
        return (f"it is gone from user A's list ({after.via})" if after.by_list
                else f"user A can no longer read it (GET answers {after.exchange.status})")
    after_obj = after.obj
    if after.state != "found" or not isinstance(after_obj, dict) or not isinstance(original, dict):
        return None
    if owner_field and a_owner is not None and not same(after_obj.get(owner_field), a_owner):
        return f"its {owner_field} changed from {a_owner!r} to {after_obj.get(owner_field)!r}"
    if isinstance(changed, dict):
        for key, value in changed.items():
            if key in after_obj and after_obj[key] == value and original.get(key) != value:
                return f"`{key}` is now {value!r} (was {original.get(key)!r})"
    if not changed:  # a bodiless write (a toggle): any field it changed is its effect
        for key, value in after_obj.items():
            if key in original and original[key] != value and not _CLOCK_FIELD.search(str(key)):
                return f"`{key}` is now {value!r} (was {original[key]!r})"
    return None


_CLOCK_FIELD = re.compile(r"(?i)updated|modified|_at$|At$|time|date|version|etag")


# ---------------------------------------------------------------- 2. mass assignment

ADMIN_EXTRA = {"role": "admin", "is_admin": True, "isAdmin": True, "admin": True}


def _admin_claims(body: Any) -> list[str]:
    """The privilege fields in a user object that say admin."""
    body = unwrap(body)
    if not isinstance(body, dict):
        return []
    claims = []
    for key, value in body.items():
        low = key.lower()
        if low in ("role", "roles", "user_role", "usertype", "user_type", "type") and (
                value == "admin" or isinstance(value, list) and "admin" in value):
            claims.append(f"{key}={value!r}")
        elif value is True and low in ("is_admin", "isadmin", "admin", "is_superuser", "issuperuser", "superuser",
                                       "is_staff"):
            claims.append(f"{key}=true")
    return claims


def _sign_up_with_admin_fields(ctx: CheckContext, flow) -> tuple[Identity | None, str, list]:
    """A user signed up with admin fields (all, else the first accepted alone), what it sent, and the refusals.
    The user joins the grade's disposable identities, so it is deleted with the test users."""
    attempts = [dict(ADMIN_EXTRA)] + [{k: v} for k, v in ADMIN_EXTRA.items()]
    refusals = []
    for fields in attempts:
        try:
            m = create_identity(ctx.prober, flow, "M", ctx.run_tag, extra=fields)
        except IdentityError as exc:
            if exc.exchanges:
                refusals.append(exc.exchanges[0])
            if not (exc.exchanges and exc.exchanges[0].status in (400, 422)):
                break  # refused for another reason than its fields: sending fewer says nothing new
            continue
        ctx.keep_disposable(m)
        return m, ", ".join(f"{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in fields.items()), refusals
    return None, "", refusals


def _has_role_field(body: Any) -> bool:
    body = unwrap(body)
    return isinstance(body, dict) and any(
        k.lower() in ("role", "roles", "user_role", "is_admin", "isadmin", "admin", "is_superuser", "is_staff")
        for k in body)


@check("ownership.mass_assignment", area="ownership",
       title="Clients cannot set their own role or an object's owner (mass assignment)",
       needs=("service", "spec", "auth"), order=-10)  # before the fuzzer can spend a sign-up rate limit
def mass_assignment(ctx: CheckContext):
    flow = ctx.api.auth
    try:
        a = ctx.identities(1)[0]
    except IdentityError as exc:
        return ctx.skip(f"no ordinary test user could be created to compare with: {exc}")
    findings: list[Finding] = []
    evidence: list[Evidence] = []
    checked: list[str] = []
    judged = held = 0

    # -- sign-up with admin fields: all together, then each alone (an API that refuses unknown fields
    # refuses the set for the one it does not know and hides the one it accepts)
    m, sent, refusals = _sign_up_with_admin_fields(ctx, flow)
    if m is None and refusals and all(r.status in (400, 422) for r in refusals):
        checked.append(f"the sign-up refused every admin field, sent together and one at a time "
                       f"({len(refusals)} attempts, {refusals[0].status})")
        evidence.extend(r.evidence(f"sign-up with {label}: refused") for r, label in
                        list(zip(refusals, ["all admin fields", *ADMIN_EXTRA]))[:3])
        judged += 1
        held += 1
    elif m is None:
        checked.append("a sign-up with admin fields could not be completed ("
                       + (status_text(refusals[-1]) if refusals else "no answer") + ")")
    if m is not None:
        signup_exchange = m.exchanges[0]
        signup_obj = unwrap(signup_exchange.json())
        observations: list[str] = []
        watched: list[str] = []  # what could have shown a privilege
        chain = [signup_exchange.evidence("sign-up with " + sent)]
        profile_seen = False
        if flow.me is not None and "{" not in flow.me.path:
            mine, theirs = _me(ctx, m), _me(ctx, a)
            if ok(mine) and _has_role_field(mine.json()):
                profile_seen = True
                watched.append(f"the profile {flow.me.label}")
                claims = _admin_claims(mine.json())
                if claims and not _admin_claims(theirs.json()):
                    observations.append(f"its profile {flow.me.label} shows {', '.join(claims)}")
                    chain.append(mine.evidence("the new user's profile: the role the client sent was stored"))
                else:
                    evidence.append(mine.evidence("the new user's profile: no admin role"))
        if not profile_seen and _has_role_field(signup_obj):  # the sign-up response is the only word on it
            watched.append("the sign-up response")
            claims = _admin_claims(signup_obj)
            if claims and not _admin_claims(a.signup_response):
                observations.append(f"the sign-up response says {', '.join(claims)}")
        for op in [op for op in flow.admin_operations if op.method == "GET" and "{" not in op.path][:3]:
            as_a = ctx.prober.request("GET", op.path, headers=a.headers(flow))
            if as_a.status not in (401, 403, 404):  # open to everyone (that is BFLA) or broken: tells nothing
                continue
            as_m = ctx.prober.request("GET", op.path, headers=m.headers(flow))
            watched.append(f"the admin operation {op.label}")
            if ok(as_m):
                observations.append(f"it can call the admin operation {op.label} ({as_m.status}), which refuses "
                                    f"ordinary user A ({as_a.status})")
                chain += [as_m.evidence(f"the new user calls {op.label}: accepted"),
                          as_a.evidence(f"ordinary user A calls {op.label}: refused")]
            else:
                evidence.append(as_m.evidence(f"the new user calls {op.label}: refused ({status_text(as_m)})"))
        if observations:
            judged += 1
            gained = any("admin operation" in o for o in observations)
            findings.append(ctx.fail(
                "mass_assignment", "critical" if gained else "high",
                f"A sign-up that sends {sent} made an administrator: {'; '.join(observations)} "
                "(OWASP API3:2023 Broken Object Property Level Authorization" + ("; API5:2023 as it opens admin "
                "functions" if gained else "") + ").", operation=flow.signup.label, hint=HINTS["mass_assignment"],
                evidence=chain))
        elif watched:
            judged += 1
            held += 1
            checked.append(f"a sign-up with {sent} gained no privilege (watched: "
                           + ", ".join(watched) + ")")
            evidence.insert(0, chain[0])
        else:
            checked.append("a sign-up with admin fields succeeded, but nothing shows the new user's role (no role "
                           "in the profile or sign-up response, no admin operation that refuses ordinary users)")
            evidence.insert(0, chain[0])

    # -- objects created or updated with someone else's owner id
    owned = [(r, f) for r in _top_level(ctx) if (f := _owner_field(r))]
    if owned:
        a, b = _two_users(ctx)
        b_id = _user_id(ctx, b) if b is not None else None
        if b is None or b_id is None:
            checked.append("owner fields (" + ", ".join(f for _, f in owned) + ") not probed: user B's id is "
                           "unknown (no profile operation and no id in the sign-up response)")
        else:
            cleanup = _Cleanup(ctx)
            try:
                for resource, owner_field in owned:
                    for result in _owner_probes(ctx, resource, owner_field, a, b, b_id, cleanup):
                        judged += 1
                        if isinstance(result, Finding):
                            findings.append(result)
                        else:
                            held += 1
                            checked.append(result[0])
                            evidence.extend(result[1])
            finally:
                cleanup.run()
    if not judged:
        return ctx.skip("nothing could be observed: " + ("; ".join(checked) or "no sign-up and no owner field"),
                        "auth:\n  register: POST /auth/register   # the sign-up the grader sends role=admin to")
    summary = f"{held}/{judged} mass-assignment attempts had no effect" + (": " + "; ".join(checked) if checked else "")
    return ctx.verdict(summary, findings, evidence=evidence, score=held / judged)


def _owner_probes(ctx: CheckContext, resource: Resource, owner_field: str, a: Identity, b: Identity, b_id: Any,
                  cleanup: _Cleanup) -> list:
    """Create with owner = B, update owner to B: a Finding or (what held, evidence) for each that could be judged."""
    flow = ctx.api.auth
    ha, hb = a.headers(flow), b.headers(flow)
    results: list = []
    props = _schema_props(resource.create.request_schema)
    value = str(b_id) if (props.get(owner_field) or {}).get("type") == "string" else b_id

    def owner_now(item_id: Any, seen: Any) -> tuple[bool | None, list[Exchange]]:
        """Does the object belong to B now? By its owner field, else by who can read it; None: cannot tell."""
        as_b, as_a = read_back(ctx, resource, item_id, hb), read_back(ctx, resource, item_id, ha)
        reads = [as_b.exchange, as_a.exchange]
        for obj in (seen, as_b.obj, as_a.obj):
            if isinstance(obj, dict) and owner_field in obj:
                return same(obj[owner_field], b_id), reads
        a_lost = as_a.state == "absent" or as_a.exchange.status == 403 and not as_a.by_list
        if as_a.state == "found" or a_lost:
            return a_lost and as_b.state == "found", reads
        return None, reads

    # create with B as owner
    body = fresh_object(resource.create.request_schema, natural_key(resource))
    body = {**marked(body, f"pg-m-{ctx.run_tag}"), owner_field: value}
    made = ctx.prober.request("POST", resource.collection, json=body, headers=ha)
    obj = unwrap(made.json()) if ok(made) else None
    item_id = locate_created(ctx, resource, made, body, ha)[0] if ok(made) else None
    if ok(made) and item_id is not None:
        cleanup.add(resource, item_id, a, b)
        moved, reads = owner_now(item_id, obj)
        if moved is None:
            pass  # neither user's read shows whose it is
        elif moved:
            results.append(ctx.fail(
                "mass_assignment", "high",
                f"User A created an object in {resource.collection} with {owner_field}={value!r} (user B's id) and "
                f"it now belongs to B: clients can plant objects in other accounts (OWASP API3:2023).",
                operation=resource.create.label, hint=HINTS["mass_assignment"],
                evidence=[made.evidence(f"user A creates with {owner_field} = user B's id"),
                          reads[0].evidence("user B reads it"), reads[1].evidence("user A reads it")]))
        else:
            results.append((f"POST {resource.collection} ignores a client-sent {owner_field}",
                            [made.evidence(f"create with {owner_field} = user B's id: the owner stays A")]))
    elif made.status in (400, 403, 422):
        results.append((f"POST {resource.collection} refuses a client-sent {owner_field} ({made.status})",
                        [made.evidence(f"create with {owner_field} = user B's id: refused")]))

    # update A's object setting the owner to B
    if resource.update is not None:
        plain = fresh_object(resource.create.request_schema, natural_key(resource))
        plain = marked(plain, f"pg-m-{ctx.run_tag}")
        made = ctx.prober.request("POST", resource.collection, json=plain, headers=ha)
        item_id = locate_created(ctx, resource, made, plain, ha)[0] if ok(made) else None
        if item_id is not None:
            cleanup.add(resource, item_id, a, b)
            changed = valid_example(resource.update.request_schema, variant=1) if resource.update.request_schema else {}
            changed = {**(changed if isinstance(changed, dict) else {}), owner_field: value}
            target = at(resource, resource.update, item_id)
            sent = ctx.prober.request(resource.update.method, target, json=changed, headers=ha)
            if ok(sent) or sent.status in (400, 403, 422):
                moved, reads = owner_now(item_id, unwrap(sent.json()) if ok(sent) else None)
                if moved is None:
                    pass  # neither user's read shows whose it is
                elif moved:
                    results.append(ctx.fail(
                        "mass_assignment", "high",
                        f"User A's {resource.update.method} {target} with {owner_field}={value!r} handed the object to "
                        f"user B: the owner is client-writable (OWASP API3:2023).",
                        operation=resource.update.label, hint=HINTS["mass_assignment"],
                        evidence=[sent.evidence(f"user A updates its object with {owner_field} = user B's id"),
                                  reads[0].evidence("user B reads it"), reads[1].evidence("user A reads it")]))
                else:
                    results.append((f"{resource.update.method} {resource.item} keeps the owner when a client sends "
                                    f"{owner_field}", [sent.evidence(f"update with {owner_field} = user B's id: "
                                                                     "the owner stays A")]))
    return results


# ---------------------------------------------------------------- 3. sensitive data exposure

_SECRET_KEYS = {"password", "passwd", "pwd", "passwordhash", "hashedpassword", "passwordsalt", "salt",
                "secret", "clientsecret", "otpsecret", "totpsecret", "mfasecret", "apisecret", "secretkey",
                "privatekey"}
_HASH_KEY = re.compile(r"(password|passwd|pwd|pass|secret|apikey|token|salt|otp|reset|refresh)\w*hash"
                       r"|hash\w*(password|passwd|pwd|secret|apikey|token)", re.I)
_HASH_VALUE = re.compile(r"^(\$2[abxy]?\$\d{2}\$[./A-Za-z0-9]{53}|\$argon2(id|i|d)\$\S+|\$?pbkdf2[-_:$]\S+"
                         r"|scrypt:\d+\S*|\$scrypt\$\S+|\$[56]\$[^$]+\$\S+|sha\d+\$\S+\$\S+)$")
_GET_ONLY_KEYS = {"secret", "clientsecret", "apisecret", "secretkey"}  # shown once on creation is fine
_AUTHISH = re.compile(r"auth|user|account|/me\b|log-?in|regist|sign-?(up|in)|profile|session|token", re.I)
_USER_LIST = re.compile(r"/(users?|accounts?|members?|profiles?|people|customers?)/?$", re.I)


# secret-named fields that hold the caller's own data (a book's `secret`, an OTP seed): no leak when the caller
# reads back what it sent itself; passwords, hashes and salts stay findings whoever reads them
_OWN_DATA_KEYS = _SECRET_KEYS - {"password", "passwd", "pwd", "passwordhash", "hashedpassword", "passwordsalt", "salt"}


_THEIRS = "another test user's private data: "


class Caller(NamedTuple):
    """Who sent a request, as far as its data goes: everything its credentials sent, and the names (login,
    username, id) an object's owner field would hold for it."""

    sent: str = ""
    names: frozenset[str] = frozenset()
    others: frozenset[str] = frozenset()  # the names of every other user the grade made

    def owns(self, obj: dict) -> bool:
        return any(str(obj[k]) in self.names for k in OWNER_FIELDS if obj.get(k) not in (None, ""))

    def owner_among_others(self, obj: dict) -> str | None:
        """The owner field's value when it names another user the grade made, else None."""
        return next((str(obj[k]) for k in OWNER_FIELDS if obj.get(k) not in (None, "")
                     and str(obj[k]) in self.others and str(obj[k]) not in self.names), None)


def _sensitive(node: Any, sent: str, get: bool, path: str = "",
               budget: list[int] | None = None, caller: Caller = Caller()) -> list[tuple[str, str]]:
    """(field, why) for every sensitive key or hash-looking value in a JSON body. `sent` is the request body when
    the response is an error (validation errors echo the client's own input, which is no leak), else "".
    `caller`: whose request it was; its own objects' secret-named fields are no leak (see _OWN_DATA_KEYS), and
    another test user's are an ownership failure: their `why` starts with _THEIRS."""
    budget = budget if budget is not None else [5000]
    hits: list[tuple[str, str]] = []
    if budget[0] <= 0:
        return hits
    budget[0] -= 1
    if isinstance(node, dict):
        mine = caller.owns(node)
        theirs = None if mine else caller.owner_among_others(node)
        for key, value in node.items():
            norm = re.sub(r"[_\-\s]", "", str(key).lower())
            shown = isinstance(value, (str, int, float)) and not isinstance(value, bool) and str(value).strip("*• ")
            echo = shown and (str(value) in sent
                              or norm in _OWN_DATA_KEYS and (mine or str(value) in caller.sent))
            if shown and not echo:
                if theirs is not None and norm in _OWN_DATA_KEYS:
                    hits.append((str(key), f"{_THEIRS}{theirs}'s `{key}` field"))
                elif norm in _SECRET_KEYS and (get or norm not in _GET_ONLY_KEYS):
                    hits.append((str(key), f"a `{key}` field"))
                elif _HASH_KEY.search(norm):
                    hits.append((str(key), f"a `{key}` field"))
                elif isinstance(value, str) and _HASH_VALUE.match(value):
                    hits.append((str(key), f"a password hash in `{key}` ({value[:10]}...)"))
            if isinstance(value, (dict, list)):
                hits += _sensitive(value, sent, get, f"{path}{key}.", budget, caller)
    elif isinstance(node, list):
        for value in node[:500]:
            if isinstance(value, str) and _HASH_VALUE.match(value) and value not in sent:
                hits.append((path.rstrip(".") or "[]", f"a password hash ({value[:10]}...)"))
            elif isinstance(value, (dict, list)):
                hits += _sensitive(value, sent, get, path, budget, caller)
    return hits


def _as_sent(raw: str) -> str:
    """The request body as text to look for echoes in: raw, and its JSON decoded (a sent "\\u00d6" comes back as
    "Ö" in a validation error that repeats the input)."""
    try:
        return f"{raw}\n{json.dumps(json.loads(raw), ensure_ascii=False)}"
    except (ValueError, TypeError):
        return raw


def _is_spec(body: Any) -> bool:
    return isinstance(body, dict) and ("openapi" in body or "swagger" in body) and "paths" in body


@check("ownership.data_exposure", area="ownership",
       title="Responses expose no password hashes, secrets or other users' emails",
       needs=("service", "spec", "user"), order=120)
def data_exposure(ctx: CheckContext):
    flow = ctx.api.auth
    a, b = _two_users(ctx)
    targeted: list[Exchange] = [u.exchanges[-2] for u in (a, b) if u is not None and len(u.exchanges) >= 2]
    if flow.me is not None and "{" not in flow.me.path:
        targeted += [_me(ctx, a)] + ([_me(ctx, b)] if b else [])
    admin_paths = [op.path for op in flow.admin_operations]
    # A pair made right now: the other user surely exists while the viewer reads the user lists and profiles
    # (user B may be long renamed or deleted by the time this check runs).
    viewer, other = _fresh_pair(ctx)
    pairs = [(x, y) for x, y in ((a, b), (b, a), (viewer, other)) if x is not None and y is not None]
    looker = viewer if other is not None else a
    for op in [op for op in ctx.api.operations if op.method == "GET" and _USER_LIST.search(op.path)
               and "{" not in op.path and op.path not in admin_paths and op is not flow.me][:3]:
        targeted.append(ctx.prober.request("GET", op.path, headers=looker.headers(flow)))
    if other is not None:
        targeted += _profiles_of(ctx, other, looker, admin_paths)

    admin = [_template_regex(p) for p in admin_paths]
    emails = {ident.label: {v.lower() for v in [ident.login_value, *map(str, ident.signup_body.values())] if "@" in v}
              for ident in (a, b, viewer, other) if ident is not None}
    found: dict[tuple[str, str], tuple[Exchange, str]] = {}
    scanned = 0
    callers = _callers(ctx)
    for exchange in list(ctx.prober.exchanges):
        if exchange.source in ("discover",) or not exchange.body:
            continue
        body = exchange.json()
        if body is None or _is_spec(body):
            continue
        scanned += 1
        route = _route(ctx, exchange)
        sent = _as_sent(exchange.request_body or "")
        about_users = exchange.method == "GET" or bool(_AUTHISH.search(route))
        caller = callers.get(_credentials_of(exchange, callers.headers), Caller())
        for fld, why in _sensitive(body, sent if (exchange.status or 0) >= 400 else "", about_users, caller=caller):
            found.setdefault((route, fld), (exchange, why))
        if not pairs or any(p.fullmatch(_api_path(ctx, exchange.url)) for p in admin):
            continue
        for seer, seen in pairs:
            if _by(seer, exchange, ctx):
                text = exchange.text.lower()
                leaked = [e for e in emails.get(seen.label, ()) if e in text and e not in sent.lower()]
                if leaked:
                    found.setdefault((route, "email of another user"),
                                     (exchange, f"user {seen.label}'s email ({leaked[0]}) in a response to user "
                                                f"{seer.label}"))
    findings = [
        ctx.fail("bola_read", "critical",
                 f"{route} returned {why.removeprefix(_THEIRS)} to another user: a private field of an object its "
                 "owner did not share (OWASP API1:2023 Broken Object Level Authorization).", operation=route,
                 hint=HINTS["bola_read"], evidence=[exchange.evidence(f"the response contains {why}")])
        if why.startswith(_THEIRS) else
        ctx.fail("sensitive_data_exposure", "high",
                 f"{route} returns {why} (OWASP API3:2023 Broken Object Property Level "
                 "Authorization: excessive data exposure).", operation=route, hint=HINTS["sensitive_data_exposure"],
                 evidence=[exchange.evidence(f"the response contains {why}")])
        for (route, fld), (exchange, why) in list(found.items())[:MAX_EXPOSURE_FINDINGS]
    ]
    summary = (f"scanned {scanned} JSON responses of the grade (including the sign-up"
               + (", the profile" if flow.me else "") + (", user B's views" if b else "")
               + ") for password hashes, salts, secrets" + (" and the other user's email" if b else "")
               + (f": {len(found)} exposure(s)" if found else ": none found"))
    leaking = {id(exchange) for exchange, _ in found.values()}
    evidence = [e.evidence("scanned" if id(e) in leaking else "scanned: no sensitive field")
                for e in targeted if e.status is not None][:5]
    return ctx.verdict(summary, findings, evidence=evidence)


def _credentials_of(exchange: Exchange, names: set[str]) -> str:
    """The credentials a request carried (the headers named in `names`), as one comparable text; "" when none."""
    headers = {k.lower(): v for k, v in exchange.request_headers.items()}
    return "\n".join(f"{k}: {headers[k]}" for k in sorted(names) if k in headers)


def _credentials_text(headers: dict[str, str]) -> str:
    """An identity's credential headers in _credentials_of's form."""
    return "\n".join(f"{k.lower()}: {v}" for k, v in sorted(headers.items(), key=lambda kv: kv[0].lower()))


class _Callers(dict):
    """{credentials: Caller} for every user the grade made; `headers`: the header names credentials travel in."""

    def __init__(self, headers: set[str]):
        super().__init__()
        self.headers = headers


def _callers(ctx: CheckContext) -> _Callers:
    flow, users = ctx.api.auth, ctx.known_identities()
    callers = _Callers({"authorization", "cookie"} | {k.lower() for u in users for k in (u.headers(flow) if flow else {})})
    sent: dict[str, str] = {}
    for exchange in list(ctx.prober.exchanges):
        key = _credentials_of(exchange, callers.headers)
        if key and exchange.request_body:
            sent[key] = sent.get(key, "") + "\n" + _as_sent(exchange.request_body)
    for user in users:
        key = _credentials_text(user.headers(flow))
        response = unwrap(user.signup_response)
        names = {user.login_value, *(str(v) for k, v in user.signup_body.items() if isinstance(v, str)
                                     and k.lower() in ("username", "user_name", "email", "login", "name")),
                 *(str(response[k]) for k in ID_FIELDS if isinstance(response, dict) and response.get(k) is not None)}
        callers[key] = Caller(sent.get(key, ""), frozenset(names))
    everyone = frozenset().union(*(c.names for c in callers.values()))
    for key, caller in list(callers.items()):
        callers[key] = caller._replace(others=everyone - caller.names)
    for key, text in sent.items():
        callers.setdefault(key, Caller(text))
    return callers


def _fresh_pair(ctx: CheckContext) -> tuple[Identity | None, Identity | None]:
    """Two users made for the exposure probe (viewer V, other O), or (None, None) when none can be made."""
    try:
        return ctx.disposable_identity("V"), ctx.disposable_identity("O")
    except IdentityError:
        return None, None


def _profiles_of(ctx: CheckContext, other: Identity, viewer: Identity, admin_paths: list[str]) -> list[Exchange]:
    """The viewer reads the other user's profile wherever one is addressed by username, email or id
    (`GET /users/{username}`, `/user/{id}`)."""
    reads = []
    other_id = _user_id(ctx, other)
    for op in ctx.api.operations:
        params = re.findall(r"\{([^}/]+)\}", op.path)
        if (op.method != "GET" or len(params) != 1 or op.path in admin_paths
                or not _USER_LIST.search(op.path.rsplit("/{", 1)[0])):
            continue
        value = other.login_value if re.search(r"name|mail|login|user$", params[0], re.I) else other_id
        if value is not None:
            reads.append(ctx.prober.request("GET", fill_id(op.path, value), headers=viewer.headers(ctx.api.auth)))
    return reads[:3]


# ---------------------------------------------------------------- 4. BFLA


# what the summary of an admin-only operation says: "(Only Admins)", "admins only", "requires admin"
_ADMIN_ONLY = re.compile(r"\bonly\s+(?:for\s+)?(?:the\s+)?(?:admins?|administrators?|staff|superusers?)\b"
                         r"|\b(?:admins?|administrators?|staff|superusers?)[\s-]+only\b"
                         r"|\brequires?\s+(?:an?\s+)?(?:admin|administrator|staff|superuser)\b", re.I)


def _admin_operations(ctx: CheckContext) -> tuple[list[Operation], list[str]]:
    """The admin-only operations, and why the ones inferred from behaviour count as admin-only."""
    ops = list(ctx.api.auth.admin_operations) if ctx.api.auth else []
    ops += [op for op in ctx.api.operations if op not in ops and (
        re.search(r"admin", op.operation_id or "", re.I) or _ADMIN_ONLY.search(op.summary))]
    privileged, why = _privileged_writes(ctx)
    return ops + [op for op in privileged if op not in ops], why


_ADMIN_WORDS = re.compile(r"admin|staff|superuser|moderator|manager|backoffice|back-office", re.I)


def _admin_role_sign(ctx: CheckContext) -> str | None:
    """What shows the API has an admin role at all (a manifest admin, an admin-named operation, a role-like field
    in a schema or a test user's profile), None when nothing does."""
    manifest = ctx.facts.manifest
    if manifest and manifest.auth and manifest.auth.admin:
        return "the manifest names a seeded admin"
    for op in ctx.api.operations:
        words = " ".join([op.path, op.operation_id or "", op.summary or "", *op.tags])
        if _ADMIN_WORDS.search(words):
            return f"{op.label} is named or described so"
        props = _schema_props(op.request_schema, _response_schema(op))
        field = next((k for k in props if k.lower() in PRIVILEGED_FIELDS), None)
        if field:
            return f"{op.label} has a `{field}` field"
    for user in ctx.known_identities():
        seen = [unwrap(user.signup_response)] + [unwrap(e.json()) for e in user.exchanges[-2:]]
        field = next((k for body in seen if isinstance(body, dict) for k in body if k.lower() in PRIVILEGED_FIELDS),
                     None)
        if field:
            return f"user {user.label}'s account shows a `{field}` field"
    return None


def _privileged_writes(ctx: CheckContext) -> tuple[list[Operation], list[str]]:
    """Collections whose create refuses ordinary user A with 403 (a menu only staff may add to): their create,
    updates and deletes are admin-only, and an ordinary user who may change or delete existing items there is a
    broken function-level check however the spec tags them."""
    try:
        a = ctx.identities(1)[0]
    except IdentityError:
        return [], []
    flow = ctx.api.auth
    by_path: dict[str, dict[str, Operation]] = {}
    for op in ctx.api.operations:
        by_path.setdefault(op.path, {})[op.method] = op
    found: list[Operation] = []
    why: list[str] = []
    for path, ops in list(by_path.items())[:40]:
        create = ops.get("POST") or ops.get("PUT")  # `PUT /menu` creates too, in some APIs
        if create is None or "{" in path or not create.security or PLUMBING.search(path):
            continue
        body = fresh_object(create.request_schema)
        made = ctx.prober.request(create.method, path, json=body, headers=a.headers(flow))
        if ok(made):
            _delete_made(ctx, path, by_path, made, a.headers(flow))
        if made.status != 403:
            continue
        writes = [op for more in _item_operations(by_path, path) for op in more.values()
                  if op.method in ("PUT", "PATCH", "DELETE")]
        found += [create, *writes]
        why.append(f"{create.label} refused ordinary user A with 403, so its writes are taken as admin-only")
    return found, why


def _item_operations(by_path: dict[str, dict[str, Operation]], collection: str) -> list[dict[str, Operation]]:
    """{method: operation} of each `<collection>/{id}` path."""
    item = re.compile(re.escape(collection.rstrip("/")) + r"/\{[^}/]+\}/?")
    return [more for path, more in by_path.items() if item.fullmatch(path)]


def _delete_made(ctx: CheckContext, path: str, by_path: dict[str, dict[str, Operation]], made: Exchange,
                 headers: dict[str, str]) -> None:
    """Delete what a probing create made, where the collection has a `DELETE /x/{id}`."""
    item_id = find_id(unwrap(made.json()), "id")
    delete = next((more["DELETE"] for more in _item_operations(by_path, path) if "DELETE" in more), None)
    if item_id is not None and delete is not None:
        ctx.prober.request("DELETE", fill_id(delete.path, item_id), headers=headers)


@check("ownership.bfla", area="ownership", title="Admin operations are refused to ordinary users",
       needs=("service", "spec", "user"), judges_refusals=True)
def bfla(ctx: CheckContext):
    """Each admin operation is sent by ordinary user A. A refusal counts only after a control showed A's token
    still works, and a refusal of an operation on an object counts only when that object exists (one the grader
    made as another user, or one read from a list): a made-up id's 404 proves nothing."""
    flow = ctx.api.auth
    admin_ops, inferred = _admin_operations(ctx)
    if not admin_ops:
        sign = _admin_role_sign(ctx)
        if sign is None:
            return ctx.not_applicable(
                "the API has no admin role to protect: no operation is tagged, named or described admin or staff, no "
                "schema and no test user's profile has a role or admin field, and no create refused an ordinary user "
                "with 403", _ADMIN_HINT)
        return ctx.skip(f"no admin-only operation was found (none tagged admin, under /admin, or described as "
                        f"admin-only), though the API has an admin role ({sign})", _ADMIN_HINT)
    a, b = _two_users(ctx)
    headers = a.headers(flow)
    control = _credentials_control(ctx, a)
    if control is None:
        return ctx.skip("no operation shows that user A's token works (no profile operation, no list of the "
                        "user's own objects), so a refusal of the admin operations would prove nothing", _ADMIN_HINT)
    if not ok(control):
        return ctx.skip(f"the control failed: user A's own {_route(ctx, control)} answered {status_text(control)} "
                        "with the same token, so refusals of the admin operations would prove nothing (the test "
                        "user may have been deleted or the API reset)")
    admin = ctx.admin_identity()
    users = [u for u in (b, a) if u is not None]
    findings: list[Finding] = []
    warnings: list[Finding] = []  # refusals with the wrong status: shown, the refusal still counts
    evidence: list[Evidence] = [control.evidence(f"control: user A's token works ({_route(ctx, control)} answered "
                                                 f"{control.status})")]
    notes: list[str] = list(inferred)
    refused = judged = 0
    cleanup = _Cleanup(ctx)
    try:
        for op in admin_ops[:MAX_ADMIN_OPERATIONS]:
            target = _existing_target(ctx, op, users, [u for u in (b, admin, a) if u is not None], cleanup)
            if "{" in op.path and target is None:
                notes.append(f"{op.label} not sent: no existing object to aim it at (a made-up id's 404 proves "
                             "nothing)")
                continue
            path = fill_id(op.path, target) if target is not None else op.path
            body = valid_example(op.request_schema, variant=1) if op.method in ("PUT", "PATCH", "POST") else None
            if op.method == "POST" and "{" not in op.path and not op.request_schema:
                notes.append(f"{op.label} not sent (it could change real data and documents no body)")
                continue
            payload = {"json": body if body is not None else {}} if op.method not in ("GET", "DELETE") else {}
            sent = ctx.prober.request(op.method, path, headers=headers, **payload)
            # 409: this object is held by others (a menu item in orders); another existing one tells more, the
            # newest first (older objects are the ones orders and fixtures name)
            for other in list(reversed(_listed_ids(ctx, op, a) if sent.status == 409 and target is not None
                                       else []))[:MAX_CONFLICT_RETRIES]:
                if other != target:
                    target, path = other, fill_id(op.path, other)
                    sent = ctx.prober.request(op.method, path, headers=headers, **payload)
                    if sent.status != 409:
                        break
            if ok(sent):
                judged += 1
                findings.append(ctx.fail(
                    "bfla", "high",
                    f"Ordinary user A called the admin operation {op.label} and it answered {sent.status} (OWASP "
                    "API5:2023 Broken Function Level Authorization).", operation=op.label, hint=HINTS["bfla"],
                    evidence=[control.evidence("control: user A's token works"),
                              sent.evidence(f"ordinary user A calls {op.label}: expected 403")]))
                _cleanup_created(ctx, op, sent, headers)
            elif refused_status(sent):
                admin_control = (ctx.prober.request("GET", path, headers=admin.headers(flow))
                                 if admin and op.method == "GET" else None)
                if admin_control is not None and not ok(admin_control):
                    notes.append(f"{op.label} refused the manifest's admin too ({status_text(admin_control)}): a "
                                 "broken route, not a protected one")
                    evidence.append(admin_control.evidence(f"the admin calls {op.label}: refused too "
                                                           f"({status_text(admin_control)})"))
                    continue
                judged += 1
                refused += 1
                on = f" on an existing object ({target})" if target is not None else ""
                evidence.append(sent.evidence(f"ordinary user A calls {op.label}{on}: refused ({sent.status})"))
                if sent.status == 401:  # refused, but as if A's working token were not there: a warning of its own
                    warnings.append(ctx.fail(
                        "forbidden_answered_401", "low",
                        f"{op.label} refused logged-in user A with 401 Unauthorized, though A's token works (the "
                        f"control {_route(ctx, control)} answered {control.status}): a missing permission is 403 "
                        "Forbidden; 401 tells the client its credentials are missing or invalid.",
                        operation=op.label, hint=HINTS["forbidden_answered_401"],
                        evidence=[control.evidence("control: user A's token works"),
                                  sent.evidence(f"ordinary user A calls {op.label}: 401, where 403 is meant")]))
                if admin_control is not None:
                    evidence.append(admin_control.evidence(f"the admin calls {op.label}: allowed "
                                                           f"({admin_control.status})"))
            if op.method == "GET" or not ok(sent):  # a write A made already may have used the object up
                if _anonymous_admin_call(ctx, op, path, payload, findings, evidence) and refused_status(sent):
                    refused -= 1  # refused to A, open to anyone: not protected
            if not ok(sent) and not refused_status(sent) and (fuzzed := _fuzzed_success(ctx, op)) is not None:
                judged += 1
                findings.append(ctx.fail(
                    "bfla", "high",
                    f"Ordinary user {fuzzed.user.label} (a user the fuzzer signed up, refused {fuzzed.create.label} "
                    f"like user A) called the admin operation {op.label} during the fuzzing and it answered "
                    f"{fuzzed.sent.status} (OWASP API5:2023 Broken Function Level Authorization); user A's own "
                    f"attempt answered {status_text(sent)}, which tells nothing about who may call it.",
                    operation=op.label, hint=HINTS["bfla"],
                    evidence=[fuzzed.refused.evidence(f"control: user {fuzzed.user.label}'s token works but "
                                                      f"{fuzzed.create.label} refuses it ({fuzzed.refused.status}): "
                                                      "an ordinary user"),
                              fuzzed.sent.evidence(f"user {fuzzed.user.label}'s request during the fuzzing: "
                                                   f"{op.label} answered {fuzzed.sent.status}")]))
            elif not ok(sent) and not refused_status(sent):
                notes.append(f"{op.label} answered {status_text(sent)} to user A: neither allowed nor refused"
                             + (" (a crash; the error checks report 5xx)" if sent.status and sent.status >= 500
                                else ""))
                evidence.append(sent.evidence(f"ordinary user A calls {op.label}: inconclusive ({status_text(sent)})"))
    finally:
        cleanup.run()
    if not judged:
        return ctx.skip("the admin operations found could not be judged: " + "; ".join(notes), _ADMIN_HINT)
    summary = (f"{refused}/{judged} admin operation(s) refused to ordinary user A, whose token worked on the "
               f"control {_route(ctx, control)}" + (f" ({len(warnings)} with 401 where 403 is meant)" if warnings else "")
               + (f"; {'; '.join(notes)}" if notes else ""))
    return ctx.verdict(summary, findings + warnings, evidence=evidence, score=refused / judged,
                       warn_only=not findings)


class _Fuzzed(NamedTuple):
    user: Identity  # the fuzzer's user that called the admin operation
    sent: Exchange  # its successful call, recorded during the fuzzing
    create: Operation  # the staff-only create it is refused now, as user A was
    refused: Exchange


def _fuzzed_success(ctx: CheckContext, op: Operation) -> _Fuzzed | None:
    """A successful call of a staff-only write (`DELETE /menu/{id}` where `PUT /menu` refuses ordinary users) that
    the fuzzer made as one of its ordinary users, when the probe's own call could not be judged (every listed item
    answered 409). That user must be ordinary still: the collection's create refuses it with 403 now, as it
    refused user A."""
    collection = op.path.rsplit("/{", 1)[0]
    create = next((o for o in ctx.api.operations if o.path == collection and o.method in ("POST", "PUT")
                   and o.security), None)
    if create is None or "{" not in op.path:
        return None
    template = _template_regex(op.path)
    fuzzers = [u for u in ctx.known_identities() if u.label in ("F", "G")]
    flow = ctx.api.auth
    for user in fuzzers:
        headers = user.headers(flow)
        sent = next((e for e in list(ctx.prober.exchanges) if e.source == "schemathesis" and e.method == op.method
                     and ok(e) and template.fullmatch(_api_path(ctx, e.url))
                     and _credentials_of(e, {k.lower() for k in headers}) == _credentials_text(headers)), None)
        if sent is None:
            continue
        refused = ctx.prober.request(create.method, create.path, json=fresh_object(create.request_schema),
                                     headers=user.headers(flow))
        if refused.status == 403:
            return _Fuzzed(user, sent, create, refused)
    return None


def refused_status(sent: Exchange) -> bool:
    return sent.status is not None and (sent.status in (401, 403, 404) or 300 <= sent.status < 400)


def _anonymous_admin_call(ctx: CheckContext, op: Operation, path: str, payload: dict, findings: list[Finding],
                          evidence: list[Evidence]) -> bool:
    """The admin operation sent with no credentials at all (admin routes are probed without a token too); True
    when it answered as if allowed."""
    with no_ambient_cookies(ctx.prober):
        anonymous = ctx.prober.request(op.method, path, **payload)
    if ok(anonymous):
        findings.append(ctx.fail(
            "auth_missing", "critical" if op.method != "GET" else "high",
            f"The admin operation {op.label} answered {anonymous.status} to a request with no credentials at all: "
            "anyone on the internet can call it (OWASP API5:2023).", operation=op.label, hint=HINTS["bfla"],
            evidence=[anonymous.evidence(f"{op.label} without any credentials: expected 401")]))
        return True
    evidence.append(anonymous.evidence(f"{op.label} without any credentials: refused ({status_text(anonymous)})"))
    return False


def _credentials_control(ctx: CheckContext, identity: Identity) -> Exchange | None:
    """A fresh request that must succeed with the identity's token: its profile, else a list of its objects."""
    flow = ctx.api.auth
    if flow.me is not None and "{" not in flow.me.path:
        return ctx.prober.request("GET", flow.me.path, headers=identity.headers(flow))
    lists = [r.list for r in _top_level(ctx) if r.list is not None and "{" not in r.list.path]
    return ctx.prober.request("GET", lists[0].path, headers=identity.headers(flow)) if lists else None


def _existing_target(ctx: CheckContext, op: Operation, users: list[Identity], creators: list[Identity],
                     cleanup: _Cleanup) -> Any:
    """The id an admin operation on `/x/{id}` is aimed at: an existing user's for user routes (its id, username
    or e-mail, whichever the parameter names), else an object of the matching collection that another user (or
    the admin) created for the probe, else one from its list."""
    params = re.findall(r"\{([^}]+)\}", op.path)
    if len(params) != 1:
        return None
    if re.search(r"user|account|member|customer", params[0] + op.path.rsplit("{", 1)[0].rsplit("/", 2)[-2], re.I):
        return _user_target(ctx, op, params[0], users)
    segment = op.path.rsplit("{", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    resource = next((r for r in ctx.api.resources if r.item == op.path
                     or r.collection.rstrip("/").rsplit("/", 1)[-1] == segment), None)
    if resource is None:
        return _listed_id(ctx, op, creators[0])
    flow = ctx.api.auth
    for creator in creators:
        body = fresh_object(resource.create.request_schema, natural_key(resource))
        body = marked(body, f"pg-bfla-{ctx.run_tag}")
        made = ctx.prober.request("POST", resource.collection, json=body, headers=creator.headers(flow))
        item_id = created_id(unwrap(made.json()), body, resource) if ok(made) else None
        if item_id is not None:
            cleanup.add(resource, item_id, creator, *creators)
            return item_id
    if resource.list is not None and "{" not in resource.list.path:
        listed = ctx.prober.request("GET", resource.list.path, headers=creators[0].headers(flow))
        return next((i for i in (find_id(o, resource.id_field) for o in items_of(listed.json())) if i is not None), None)
    return None


def _user_target(ctx: CheckContext, op: Operation, param: str, users: list[Identity]) -> Any:
    """The value of a user route's parameter for an existing user: a disposable victim's for writes (a delete
    wrongly allowed must harm no test user), else user B's or A's; None when no user's value is known."""
    from .accounts import _value_of  # accounts builds on this module's helpers
    candidates = list(users)
    if op.method != "GET":
        try:
            candidates.insert(0, ctx.disposable_identity("Q"))
        except IdentityError:
            pass
    return next((v for v in (_value_of(ctx, u, param) for u in candidates) if v not in (None, "")), None)


def _listed_id(ctx: CheckContext, op: Operation, identity: Identity) -> Any:
    """The id of an existing object in the list beside `/x/{id}` (a collection with no item GET), None if none."""
    return next(iter(_listed_ids(ctx, op, identity)), None)


def _listed_ids(ctx: CheckContext, op: Operation, identity: Identity) -> list[Any]:
    """The ids of the objects the list beside `/x/{id}` shows the identity."""
    collection = op.path.rsplit("/{", 1)[0] or "/"
    if not any(o.method == "GET" and o.path == collection for o in ctx.api.operations):
        return []
    listed = ctx.prober.request("GET", collection, headers=identity.headers(ctx.api.auth))
    return [i for i in (find_id(o, "id") for o in items_of(listed.json())) if i is not None] if ok(listed) else []


def _cleanup_created(ctx: CheckContext, op: Operation, sent: Exchange, headers: dict[str, str]) -> None:
    """A POST that the admin operation accepted may have created something: delete it when the API lets us."""
    if op.method != "POST":
        return
    obj = unwrap(sent.json())
    item_id = find_id(obj, "id")
    if item_id is None:
        return
    for other in ctx.api.operations:
        if other.method == "DELETE" and re.fullmatch(re.escape(op.path.rstrip("/")) + r"/\{[^}/]+\}/?", other.path):
            ctx.prober.request("DELETE", fill_id(other.path, item_id), headers=headers).source = "cleanup"
            return
