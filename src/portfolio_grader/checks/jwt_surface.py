"""Forged tokens on every protected operation, not one GET: how a token travels, and the walk that replays each
forgery on the API's protected surface, judged by effect.

A route that decodes tokens without verifying them is often one route (a DELETE written on another day), so a
forgery refused by `GET /me` proves nothing about the rest. For each protected operation, bounded in number and
in time:

- a control first: user A's genuine token makes the same request and it visibly succeeds (the read shows A's
  object, the write reads back changed, the delete reads back gone); without it the operation is skipped, with why;
- then each forged token makes it again, on a fresh object the grader made for the probe as the user the forged
  claims name (never user A's or B's shared objects), and that user's genuine token reads the effect back.

A forgery counts as accepted only by its effect (the object is gone, changed, created, or its data served). Writes
outside the collections the grader can make objects in (an account's own profile, bulk deletes, admin routes) are
never sent: the walk says it skipped them and why.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from .. import deadlines
from ..identities import Identity, fresh_object
from ..models import Evidence, Operation, Resource
from ..probe import Exchange, Prober
from .objects import (Bound, NoParent, at, bind_parents, find_id, items_of, limit_param, locate_created, marked,
                      markers_in, natural_key, read_back, readable, release, same, unwrap, walkable)
from .operations import marked_body, new_marker, ok, status_text
from .registry import CheckContext

GARBAGE_TOKEN = "not-a-real-token"
MAX_OPERATIONS = 40  # protected operations walked (besides the one the full forgery set is replayed on)
MAX_SECONDS = 90.0  # the walk's own bound; it also leaves its check family at least half of what it has left
_METHOD_ORDER = {"GET": 0, "POST": 1, "PUT": 2, "PATCH": 3, "DELETE": 4}
_SESSION_END = re.compile(r"log-?out|sign-?out|revoke", re.I)

# ---------------------------------------------------------------- how a token travels, and what an answer means


@contextmanager
def no_ambient_cookies(prober: Prober) -> Iterator[None]:
    """Send only the credentials a probe names: the client's cookie jar (filled by the logins) is emptied for the
    duration and restored afterwards."""
    jar = prober.client.cookies.jar
    saved = list(jar)
    jar.clear()
    try:
        yield
    finally:
        jar.clear()
        for cookie in saved:
            jar.set_cookie(cookie)


@dataclass
class Carrier:
    """How a user's token travels (an Authorization-style header, or a session cookie holding a JWT)."""

    token: str
    header: str
    prefix: str = ""
    cookie_name: str | None = None

    def headers(self, token: str | None = None) -> dict[str, str]:
        """The credentials for `token` (the genuine one when None), sent the way the genuine one is."""
        token = self.token if token is None else token
        if self.cookie_name is not None:
            return {"Cookie": f"{self.cookie_name}={token}"}
        return {self.header: f"{self.prefix}{token}"}


def carrier_of(ctx: CheckContext, identity: Identity) -> Carrier | None:
    flow = ctx.api.auth
    if identity.token is not None:
        return Carrier(identity.token, flow.send_header, flow.send_prefix)
    if identity.cookie and "=" in identity.cookie:
        name, value = identity.cookie.split("=", 1)
        return Carrier(value, "Cookie", cookie_name=name)
    return None


_AUTH_WORDS = re.compile(r"authenticat|unauthori[sz]ed|credential|\btoken\b|\bjwt\b|log ?in|signature", re.I)
_VALIDATION_WORDS = re.compile(r"required|missing|must be|\bfield|validation", re.I)


def refused(exchange: Exchange) -> bool:
    """401/403, a redirect to a login page, or a 400 whose body says the credentials failed ("Failed to
    authenticate token.": Express tutorials answer a bad token so)."""
    if exchange.status in (401, 403):
        return True
    if (exchange.status == 400 and _AUTH_WORDS.search(exchange.text[:1000])
            and not _VALIDATION_WORDS.search(exchange.text[:1000])):  # not "field `token` is required"
        return True
    location = next((v for k, v in exchange.headers.items() if k.lower() == "location"), "")
    return exchange.status in (301, 302, 303, 307, 308) and bool(re.search(r"log-?in|sign-?in|auth", location, re.I))


def shows(exchange: Exchange, identity: Identity | None) -> bool:
    """The response names the user (their login value): it served that user's data."""
    return identity is not None and len(identity.login_value) >= 4 and identity.login_value in exchange.text


# ---------------------------------------------------------------- what the walk sends and what it saw


@dataclass(frozen=True)
class Party:
    """A test user the forged claims name: whose fresh objects a forgery acts on, and whose genuine token reads
    the effect back."""

    name: str  # "user A"
    identity: Identity
    carrier: Carrier


@dataclass(frozen=True)
class Forgery:
    what: str  # "alg none, user A's claims, no signature"
    kind: str  # the finding kind when an operation accepts it
    token: str
    owner: Party


@dataclass
class Breach:
    """A forged token that had an effect on one operation, with the chain that shows it (control, forged request,
    read-back)."""

    operation: str
    forgery: Forgery
    effect: str
    chain: list[Evidence]


@dataclass
class Surface:
    """The walk's outcome: the operations judged (each after a control that succeeded), the forgeries that had an
    effect, and the operations not judged with why."""

    covered: list[str] = field(default_factory=list)
    breaches: list[Breach] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (operation, why)
    controls: list[Evidence] = field(default_factory=list)  # one per covered operation
    tried: int = 0  # forged requests judged
    held: int = 0  # of which refused (no effect)
    unclear: list[str] = field(default_factory=list)  # forged requests answered 2xx whose effect could not be seen

    def summary(self) -> str:
        if not self.covered and not self.skipped:
            return "no other protected operation to replay them on"
        broken = sorted({b.operation for b in self.breaches})
        text = (f"the same forgeries on {len(self.covered)} more protected operation(s), each after user A's genuine "
                f"token succeeded on the same request: {self.held}/{self.tried} refused"
                + (f", accepted on {', '.join(broken)}" if broken else ""))
        if self.unclear:
            text += f"; {len(self.unclear)} not judged ({'; '.join(self.unclear[:3])})"
        if self.skipped:
            reasons: dict[str, list[str]] = {}
            for label, why in self.skipped:
                reasons.setdefault(why, []).append(label)
            text += f"; {len(self.skipped)} skipped: " + "; ".join(
                f"{', '.join(labels[:4])}{f' and {len(labels) - 4} more' if len(labels) > 4 else ''} ({why})"
                for why, labels in reasons.items())
        return text


class _Skip(Exception):
    """This operation cannot be judged (said why)."""


# ---------------------------------------------------------------- the objects made for the walk


@dataclass
class _Object:
    resource: Resource  # bound: its parents' parameters filled
    item_id: Any
    owner: Party
    body: Any  # the create body (its markers show the object in a response)
    made: Exchange


class _Made:
    """The fresh objects (and their parents) the walk made, deleted again by their owners at the end."""

    def __init__(self, ctx: CheckContext):
        self.ctx = ctx
        self.objects: list[_Object] = []
        self.bounds: dict[tuple[str, str], tuple[Bound, Party]] = {}
        self.left = 0

    def bound(self, resource: Resource, owner: Party) -> Bound:
        key = (resource.collection, owner.name)
        if key not in self.bounds:
            headers = owner.carrier.headers()
            self.bounds[key] = bind_parents(self.ctx, resource, headers, f"pg-jwt-{self.ctx.run_tag}"), owner
        return self.bounds[key][0]

    def fresh(self, resource: Resource, owner: Party, token: str | None = None) -> tuple[_Object | None, Exchange]:
        """A new object in the collection, created with `token` (the owner's genuine one when None), and found again
        with the owner's genuine token; (None, the create's answer) when it was not made or cannot be found."""
        bound = self.bound(resource, owner).resource
        body = marked(fresh_object(bound.create.request_schema, natural_key(bound)), new_marker(self.ctx, "jwt"))
        made = self.ctx.prober.request("POST", bound.collection, json=body, headers=owner.carrier.headers(token))
        item_id = locate_created(self.ctx, bound, made, body, owner.carrier.headers())[0] if ok(made) else None
        if item_id is None:
            return None, made
        obj = _Object(bound, item_id, owner, body, made)
        self.objects.append(obj)
        return obj, made

    def gone(self, obj: _Object) -> None:
        self.objects = [o for o in self.objects if o is not obj]

    def run(self) -> None:
        for obj in self.objects:
            if obj.resource.delete is None:
                self.left += 1
                continue
            self.ctx.prober.request("DELETE", at(obj.resource, obj.resource.delete, obj.item_id),
                                    headers=obj.owner.carrier.headers()).source = "cleanup"
        for bound, owner in self.bounds.values():
            release(self.ctx, bound, owner.carrier.headers())
        self.objects.clear()
        self.bounds.clear()


# ---------------------------------------------------------------- one operation


@dataclass
class _Step:
    """One request of an operation's probe and what it did, as the owner's genuine token reads it back."""

    sent: Exchange
    effect: str | None  # what it did, when it visibly did something
    after: Exchange | None = None  # the read-back
    unclear: str | None = None  # answered 2xx but its effect could not be seen


class _Probe:
    """How one operation is sent and its effect read back: `step(token, owner)` on a fresh object of the owner's
    (made once and reused while forgeries leave it unchanged)."""

    def __init__(self, ctx: CheckContext, made: _Made, op: Operation, resource: Resource | None, role: str):
        self.ctx, self.made, self.op, self.resource, self.role = ctx, made, op, resource, role
        self.subjects: dict[str, _Object] = {}
        self.genuine_body: str | None = None  # a plain read's genuine answer

    def subject(self, owner: Party) -> _Object:
        if owner.name not in self.subjects:
            obj, made = self.made.fresh(self.resource, owner)
            if obj is None:
                raise _Skip(f"{owner.name} could not make a fresh object in {self.resource.collection} to probe on "
                            f"({status_text(made)})")
            self.subjects[owner.name] = obj
        return self.subjects[owner.name]

    def send(self, token: str, owner: Party, path: str, **kwargs: Any) -> Exchange:
        return self.ctx.prober.request(self.op.method, path, headers=owner.carrier.headers(token), **kwargs)

    def step(self, token: str | None, owner: Party) -> _Step:
        token = owner.carrier.token if token is None else token
        return getattr(self, f"_{self.role}")(token, owner)

    def _plain(self, token: str, owner: Party) -> _Step:
        """A GET that is no collection's: it served the owner's data when it names the owner, or when it answers
        exactly what user A's genuine token was answered."""
        obj = self.subject(owner) if self.resource is not None else None
        sent = self.send(token, owner, at(obj.resource, self.op, obj.item_id) if obj is not None else self.op.path)
        if not ok(sent):
            return _Step(sent, None)
        if shows(sent, owner.identity):
            return _Step(sent, f"it served {owner.name}'s data (the response names {owner.identity.login_value})")
        if token == owner.carrier.token:  # the control
            self.genuine_body = sent.text
            return _Step(sent, "it was served")
        if sent.text == self.genuine_body:
            return _Step(sent, "it served exactly what user A's genuine token was served")
        return _Step(sent, None, unclear=f"{self.op.label} answered {status_text(sent)} with a body unlike the "
                                         "genuine answer")

    def _read(self, token: str, owner: Party) -> _Step:
        obj = self.subject(owner)
        path = at(obj.resource, self.op, obj.item_id)
        return self._shown(self.send(token, owner, path), obj)

    def _list(self, token: str, owner: Party) -> _Step:
        obj = self.subject(owner)
        limit = limit_param(self.op)
        return self._shown(self.send(token, owner, at(obj.resource, self.op), params=dict([limit]) if limit else None),
                           obj)

    def _shown(self, sent: Exchange, obj: _Object) -> _Step:
        """Did the answer serve the owner's fresh object: its markers in the body, or (a body without free text to
        mark) an object with its id in the response (the object itself, or an entry of the list)."""
        if not ok(sent):
            return _Step(sent, None)
        markers = markers_in(obj.body)
        if markers:
            hit = any(m in sent.text for m in markers)
        else:
            body = sent.json()
            found = [unwrap(body)] if self.role == "read" else items_of(body)
            hit = any(same(find_id(o, obj.resource.id_field), obj.item_id) for o in found)
        return _Step(sent, f"it served {obj.owner.name}'s fresh object ({markers[0] if markers else obj.item_id})"
                     if hit else None)

    def _write(self, token: str, owner: Party) -> _Step:
        obj = self.subject(owner)
        marker = new_marker(self.ctx, "w")  # unique in full (15 characters): a write cut shorter cannot be told
        body = marked_body(self.op.request_schema, marker)
        sent = self.send(token, owner, at(obj.resource, self.op, obj.item_id), json=body)
        after = read_back(self.ctx, obj.resource, obj.item_id, owner.carrier.headers())
        if after.state == "found" and isinstance(after.obj, dict):
            key = next((k for k, v in after.obj.items() if isinstance(v, str) and marker in v), None)
            if key is not None:
                return _Step(sent, f"{owner.name}'s fresh object reads back changed: `{key}` is now "
                                   f"{after.obj[key]!r}", after.exchange)
            return _Step(sent, None, after.exchange)
        self.subjects.pop(owner.name, None)  # gone or unreadable: the next request gets a new one
        return _Step(sent, None, after.exchange, unclear=f"{self.op.label} answered {status_text(sent)} and the "
                     f"object then read {after.via}: {status_text(after.exchange)}" if ok(sent) else None)

    def _delete(self, token: str, owner: Party) -> _Step:
        obj = self.subject(owner)
        sent = self.send(token, owner, at(obj.resource, self.op, obj.item_id))
        after = read_back(self.ctx, obj.resource, obj.item_id, owner.carrier.headers())
        if after.state == "absent":
            self.made.gone(obj)
            self.subjects.pop(owner.name, None)
            return _Step(sent, f"{owner.name}'s fresh object is gone ({after.via} answers "
                               f"{status_text(after.exchange)})", after.exchange)
        if after.state == "found":
            return _Step(sent, None, after.exchange)
        self.subjects.pop(owner.name, None)
        return _Step(sent, None, after.exchange, unclear=f"{self.op.label} answered {status_text(sent)} and the "
                     f"object's read-back {after.via} said {status_text(after.exchange)}" if ok(sent) else None)

    def _create(self, token: str, owner: Party) -> _Step:
        obj, sent = self.made.fresh(self.resource, owner, token)
        if obj is None:
            return _Step(sent, None, unclear=f"{self.op.label} answered {status_text(sent)} but no new object of "
                                             f"{owner.name}'s could be found" if ok(sent) else None)
        after = read_back(self.ctx, obj.resource, obj.item_id, owner.carrier.headers())
        if after.state == "found":
            return _Step(sent, f"it made an object in {owner.name}'s collection ({obj.item_id}, read back with "
                               f"{after.via})", after.exchange)
        return _Step(sent, None, after.exchange, unclear=f"{self.op.label} answered {status_text(sent)} but "
                                                         f"{after.via} does not show the object")


# ---------------------------------------------------------------- the walk


_ITEM_ROLES = {"GET": "read", "PUT": "write", "PATCH": "write", "DELETE": "delete"}
_COLLECTION_ROLES = {"GET": "list", "POST": "create"}


def _roles(ctx: CheckContext) -> dict[str, tuple[Resource, str]]:
    """{operation label: (its resource, its role)} for the collections the grader can make fresh objects in: the
    resource's own operations, and the others on its item or collection path (a PATCH beside the PUT)."""
    roles: dict[str, tuple[Resource, str]] = {}
    resources = [r for r in walkable(ctx.api.resources, len(ctx.api.resources)) if readable(r)]
    for resource in resources:
        for op, role in ((resource.read, "read"), (resource.list, "list"), (resource.create, "create"),
                         (resource.update, "write"), (resource.delete, "delete")):
            if op is not None:
                roles.setdefault(op.label, (resource, role))
    for resource in resources:
        for op in ctx.api.operations:
            role = (_ITEM_ROLES if op.path == resource.item else
                    _COLLECTION_ROLES if op.path == resource.collection else {}).get(op.method)
            if role is not None:
                roles.setdefault(op.label, (resource, role))
    return roles


def _under_item(ctx: CheckContext, op: Operation) -> Resource | None:
    """The collection whose item path this GET's path extends (`GET /tasks/{id}/history`), if any."""
    return max((r for r in walkable(ctx.api.resources, len(ctx.api.resources)) if op.path.startswith(r.item + "/")),
               key=lambda r: len(r.item), default=None)


def _plan(ctx: CheckContext, operations: list[Operation], surface: Surface) -> list[_Probe]:
    roles = _roles(ctx)
    plan: list[tuple[Operation, Resource | None, str]] = []
    for op in sorted(operations, key=lambda o: _METHOD_ORDER.get(o.method, 9)):
        if op.method not in _METHOD_ORDER:
            continue
        if _SESSION_END.search(op.path):
            surface.skipped.append((op.label, "it may end user A's session, so never sent"))
        elif op.label in roles:
            plan.append((op, *roles[op.label]))
        elif op.method == "GET" and "{" not in op.path:
            plan.append((op, None, "plain"))
        elif op.method == "GET" and (parent := _under_item(ctx, op)) is not None:
            plan.append((op, parent, "plain"))
        elif op.method == "GET":
            surface.skipped.append((op.label, "its path parameters address nothing the grader can make"))
        else:
            surface.skipped.append((op.label, "a write outside the collections the grader makes fresh objects in "
                                              "(it could change user A's account or shared data), so never sent"))
    kept = _fair_share(plan, MAX_OPERATIONS)
    chosen = {id(item) for item in kept}
    surface.skipped += [(item[0].label, f"past the bound of {MAX_OPERATIONS} operations") for item in plan
                        if id(item) not in chosen]
    return kept


def _fair_share(plan: list, bound: int) -> list:
    """At most `bound` of the planned operations, taken in turn from each method (GET, POST, PUT, PATCH, DELETE)
    so that a large API's deletes are walked too; in the plan's order."""
    groups: dict[str, list] = {}
    for item in plan:
        groups.setdefault(item[0].method, []).append(item)
    chosen: list = []
    while len(chosen) < min(bound, len(plan)):
        for group in groups.values():
            if group and len(chosen) < bound:
                chosen.append(group.pop(0))
    taken = {id(item) for item in chosen}
    return [item for item in plan if id(item) in taken]


def _control_failed(role: str, control: _Step) -> str:
    what = {"plain": "was not served", "read": "did not read user A's fresh object",
            "list": "did not list user A's fresh object", "write": "did not read back changed",
            "delete": "did not delete user A's fresh object", "create": "made no object user A can read back"}[role]
    return f"the control with user A's genuine token {what} ({status_text(control.sent)})"


def walk(ctx: CheckContext, operations: list[Operation], forgeries: list[Forgery], user: Party) -> Surface:
    """Each forgery on each operation, after a control with `user`'s genuine token on the same request; objects
    the walk made are deleted by their owners at the end."""
    surface = Surface()
    plan = _plan(ctx, operations, surface)
    left = deadlines.remaining()
    ends = time.monotonic() + min(MAX_SECONDS, left / 2 if left is not None else MAX_SECONDS)
    made = _Made(ctx)
    with no_ambient_cookies(ctx.prober):
        try:
            for index, (op, resource, role) in enumerate(plan):
                if time.monotonic() > ends:
                    surface.skipped += [(o.label, "the walk's share of the auth checks' deadline had run out")
                                        for o, _, _ in plan[index:]]
                    break
                probe = _Probe(ctx, made, op, resource, role)
                try:
                    _judge(probe, forgeries, user, surface)
                except (_Skip, NoParent) as why:
                    surface.skipped.append((op.label, str(why)))
        finally:
            made.run()
    if made.left:
        surface.unclear.append(f"{made.left} fresh object(s) left behind: their collections document no DELETE")
    return surface


def _judge(probe: _Probe, forgeries: list[Forgery], user: Party, surface: Surface) -> None:
    op = probe.op
    control = probe.step(None, user)
    if control.effect is None:
        raise _Skip(_control_failed(probe.role, control))
    control_evidence = control.sent.evidence(f"the control on {op.label}: user A's genuine token succeeded ("
                                             f"{control.effect})")
    breaches: list[Breach] = []
    held = 0
    unclear: list[str] = []
    for forgery in forgeries:
        try:
            step = probe.step(forgery.token, forgery.owner)
        except (_Skip, NoParent) as why:  # no fresh object of the owner's to try this one on
            unclear.append(f"{forgery.what} on {op.label}: {why}")
            continue
        if step.effect is not None:
            chain = [control_evidence, step.sent.evidence(f"{forgery.what}: accepted, and {step.effect}")]
            chain += [step.after.evidence(f"{forgery.owner.name}'s genuine token reads it back")] if step.after else []
            breaches.append(Breach(op.label, forgery, step.effect, chain))
        elif step.unclear:
            unclear.append(step.unclear)
        else:
            held += 1
    if breaches:  # a garbage token with the same effect: the operation checks no token at all (auth.required's)
        garbage = probe.step(GARBAGE_TOKEN, user)
        if garbage.effect is not None:
            raise _Skip(f"a garbage token has the same effect ({garbage.effect}): it checks no token at all, which "
                        "auth.required reports")
    surface.covered.append(op.label)
    surface.controls.append(control_evidence)
    surface.breaches += breaches
    surface.unclear += unclear
    surface.tried += len(forgeries) - len(unclear)
    surface.held += held
