"""Multi-tenancy (capstone tier): API keys that can be revoked, and tenants that cannot see each other.

- `tenancy.api_key_revocation`: a new key works, a made-up key is refused, a revoked key is refused.
- `tenancy.isolation`: with tenant B's key, tenant A's objects cannot be read, listed, changed or deleted —
  judged by effect (A reads its object back) — and B cannot revoke A's key.

Tenants: each test user is one (sign-up makes the organisation), or, when the manifest names
`tenants: {create: POST /orgs}`, each test user creates one. Keys are made with the user's own
credentials through the API-key operation (`POST /api-keys`, or the manifest's `api_keys:` lines).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any

from ..identities import Identity, IdentityError
from ..models import Evidence, Finding, Operation, Resource
from ..probe import Exchange
from .objects import at, find_id, read_back
from .operations import (data_resources, dig, fill, first_field, marked_body, named_operation, new_marker, ok,
                         path_params, send, status_text, unwrap)
from .registry import CheckContext, check

KEY_FIELDS = ("key", "api_key", "apiKey", "token", "secret", "value", "plaintext", "raw_key", "rawKey", "full_key")
_KEY_PATH = re.compile(r"api[-_]?keys?|/keys/?$|access[-_]?tokens?|personal[-_]?tokens?", re.I)
_TENANT_PATH = re.compile(r"/(orgs?|organi[sz]ations?|tenants?|workspaces?|teams?|accounts)/?$", re.I)
MANIFEST_HINT = ("api_keys:\n"
                 "  create: POST /api-keys                # answers the new key once\n"
                 "  revoke: DELETE /api-keys/{key_id}\n"
                 "  key_field: key                        # where the key is in the create response\n"
                 "  header: X-API-Key                     # how a key is sent (default: the spec's apiKey scheme)\n"
                 "tenants:\n"
                 "  create: POST /orgs                    # only when sign-up does not make the tenant")


@dataclass(frozen=True)
class KeyOps:
    create: Operation
    revoke: Operation | None
    header: str
    prefix: str
    key_field: str | None


@dataclass
class Tenant:
    user: Identity
    tenant_id: Any = None  # None: the user is the tenant
    exchanges: tuple[Exchange, ...] = ()


@dataclass
class ApiKey:
    tenant: Tenant
    value: str
    key_id: Any
    created: Exchange

    def headers(self, ops: KeyOps) -> dict[str, str]:
        return {ops.header: f"{ops.prefix}{self.value}"}


def find_key_ops(ctx: CheckContext) -> KeyOps | None:
    def compute() -> KeyOps | None:
        named = ctx.facts.manifest.api_keys if ctx.facts.manifest else None
        login = ctx.api.auth.login.label if ctx.api.auth and ctx.api.auth.login else None
        create = named_operation(ctx, named.create if named else None) or next(
            (op for op in sorted(ctx.api.operations, key=lambda o: len(o.path))
             if op.method == "POST" and _KEY_PATH.search(op.path) and op.label != login), None)
        if create is None:
            return None
        revoke = named_operation(ctx, named.revoke if named else None) or next(
            (op for op in ctx.api.operations if op.method == "DELETE"
             and re.fullmatch(re.escape(create.path.rstrip("/")) + r"/\{[^}/]+\}/?", op.path)), None) or next(
            (op for op in ctx.api.operations if op.method in ("POST", "PUT", "PATCH") and "revoke" in op.path.lower()
             and op.path.startswith(create.path.rstrip("/") + "/")), None)
        header, prefix = _key_carrier(ctx)
        return KeyOps(create, revoke, named.header if named and named.header else header,
                      named.prefix if named and named.prefix is not None else prefix,
                      named.key_field if named else None)

    return ctx.memo("tenancy.key_ops", compute)


def _key_carrier(ctx: CheckContext) -> tuple[str, str]:
    """How a key is sent: the spec's apiKey header scheme, else as a bearer token."""
    schemes = ((ctx.api.spec or {}).get("components") or {}).get("securitySchemes") or {}
    for scheme in schemes.values():
        if (scheme or {}).get("type") == "apiKey" and scheme.get("in") == "header":
            return scheme.get("name") or "X-API-Key", ""
    return "Authorization", "Bearer "


def tenants(ctx: CheckContext, count: int = 2) -> list[Tenant]:
    """`count` tenants, one per test user (memoised; IdentityError when users cannot be made)."""
    made: list[Tenant] = ctx._memo.setdefault("tenancy.tenants", [])
    users = ctx.identities(count)
    named = ctx.facts.manifest.tenants if ctx.facts.manifest else None
    create = named_operation(ctx, named.create if named else None)
    while len(made) < count:
        user = users[len(made)]
        if create is None:
            made.append(Tenant(user))
            continue
        answer = send(ctx, create.method, create.path, headers=user.headers(ctx.api.auth),
                      json=marked_body(create.request_schema, new_marker(ctx, "org")))
        made.append(Tenant(user, find_id(unwrap(answer.json()), "id") if ok(answer) else None, (answer,)))
    return made[:count]


def create_key(ctx: CheckContext, ops: KeyOps, tenant: Tenant) -> tuple[ApiKey | None, Exchange]:
    """A new key for the tenant, made with its user's credentials; (None, answer) when none came back."""
    path = fill(ops.create.path, tenant.tenant_id) if path_params(ops.create.path) else ops.create.path
    answer = send(ctx, ops.create.method, path, headers=tenant.user.headers(ctx.api.auth),
                  json=marked_body(ops.create.request_schema, new_marker(ctx, "key")))
    body = unwrap(answer.json()) if ok(answer) else None
    value = dig(body, ops.key_field) if ops.key_field else None
    if not isinstance(value, str):
        hit = first_field(body, KEY_FIELDS)
        value = hit[1] if hit and len(hit[1]) >= 12 else None
    if value is None:
        return None, answer
    return ApiKey(tenant, value, find_id(body, "id"), answer), answer


def revoke_key(ctx: CheckContext, ops: KeyOps, key: ApiKey, as_user: Identity) -> Exchange:
    params = path_params(ops.revoke.path)
    values = [key.tenant.tenant_id] * (len(params) - 1) + [key.key_id if key.key_id is not None else key.value]
    return send(ctx, ops.revoke.method, fill(ops.revoke.path, *values), headers=as_user.headers(ctx.api.auth))


def key_target(ctx: CheckContext) -> Operation | None:
    """A GET that needs credentials, to try keys on: a data collection's list, else the usage or me operation."""
    for resource in data_resources(ctx):
        if resource.list is not None:
            return resource.list
    usage = next((op for op in ctx.api.operations if op.method == "GET" and "usage" in op.path.lower()
                  and not path_params(op.path)), None)
    return usage or (ctx.api.auth.me if ctx.api.auth and ctx.api.auth.me else None)


def refused(exchange: Exchange) -> bool:
    return exchange.status in (401, 403)


def _preconditions(ctx: CheckContext):
    """(ops, target, None) or (None, None, skip outcome)."""
    ops = find_key_ops(ctx)
    if ops is None:
        return None, None, ctx.skip("no API-key operation was found (a POST on a path like /api-keys)", MANIFEST_HINT)
    target = key_target(ctx)
    if target is None:
        return None, None, ctx.skip("no GET operation that needs credentials was found to try API keys on",
                                    ctx.resources_hint("a collection the keys can list"))
    return ops, target, None


_REVOKE_HINT = ("Check revocation on every request: store keys hashed (sha256) with a `revoked_at` column, look "
                "each request's key up with `WHERE key_hash = :h AND revoked_at IS NULL`, and answer 401 otherwise. "
                "If keys are cached (in memory or Redis) for speed, delete the cache entry when a key is revoked, or "
                "keep the cache TTL to seconds.")


@check("tenancy.api_key_revocation", area="tenancy", title="API keys work until revoked, and revoked keys are refused",
       needs=("service", "spec", "user"))
def api_key_revocation(ctx: CheckContext):
    ops, target, skipped = _preconditions(ctx)
    if skipped:
        return skipped
    if ops.revoke is None:
        return ctx.skip(f"{ops.create.label} makes keys, but no revoke operation (DELETE {ops.create.path}/{{id}}) was "
                        "found", MANIFEST_HINT)
    tenant = tenants(ctx, 1)[0]
    key, made = create_key(ctx, ops, tenant)
    if key is None:
        return ctx.skip(f"{ops.create.label} answered {status_text(made)} without a key the grader could find",
                        MANIFEST_HINT)
    used = send(ctx, "GET", target.path, headers=key.headers(ops))
    if not ok(used):
        return ctx.skip(f"a fresh key sent as `{ops.header}: {ops.prefix}<key>` was refused by {target.label} "
                        f"({status_text(used)}), so revocation cannot be judged", MANIFEST_HINT)
    fake = send(ctx, "GET", target.path, headers={ops.header: f"{ops.prefix}{key.value[:-6]}{secrets.token_hex(3)}"})
    evidence = [made.evidence("create an API key"), used.evidence("the new key works"),
                fake.evidence("a made-up key (the real one with its end changed): expected 401")]
    findings: list[Finding] = []
    if not refused(fake):
        findings.append(ctx.fail("auth_missing", "critical", f"{target.label} accepted a made-up API key "
                                 f"({status_text(fake)}): keys are not checked.", operation=target.label,
                                 evidence=evidence[1:], hint=_REVOKE_HINT))
    revoked = revoke_key(ctx, ops, key, tenant.user)
    if not ok(revoked):
        return ctx.skip(f"revoking the key with {ops.revoke.label} answered {status_text(revoked)}", MANIFEST_HINT)
    after = send(ctx, "GET", target.path, headers=key.headers(ops))
    evidence += [revoked.evidence("revoke the key"), after.evidence("the revoked key: expected 401")]
    if not refused(after):
        findings.append(ctx.fail("api_key_revocation_ignored", "critical",
                                 f"A revoked API key still works: after {ops.revoke.label} answered "
                                 f"{status_text(revoked)}, {target.label} with that key answered {status_text(after)}.",
                                 operation=ops.revoke.label, evidence=evidence, hint=_REVOKE_HINT))
    summary = (f"key made with {ops.create.label}, sent as `{ops.header}`: worked ({used.status}), a made-up key "
               f"{status_text(fake)}, after {ops.revoke.label} ({revoked.status}) {status_text(after)}")
    return ctx.verdict(summary, findings, evidence, score=1 - len(findings) / 2)


# ---------------------------------------------------------------- isolation

_ISOLATION_HINT = ("Resolve the tenant from the credentials (the API key's or the user's organisation) in one "
                   "dependency, and put it in every query: `WHERE id = :id AND org_id = :org` for reads, updates and "
                   "deletes, `WHERE org_id = :org` for lists, and answer 404 for other tenants' ids. A row-level "
                   "security policy in Postgres (`USING (org_id = current_setting('app.org_id')::int)`) makes a "
                   "forgotten filter fail closed.")


def _leaks(exchange: Exchange, marker: str, item_id: Any) -> bool:
    if not ok(exchange):
        return False
    if marker in exchange.text:
        return True
    body = unwrap(exchange.json())
    return isinstance(body, dict) and find_id(body, "id") is not None and str(find_id(body, "id")) == str(item_id)


def _walk(ctx: CheckContext, resource: Resource, a: ApiKey, b: ApiKey, ops: KeyOps) -> tuple[list[Finding], list[Evidence], int, int, list[str]]:
    ha, hb = a.headers(ops), b.headers(ops)
    findings: list[Finding] = []
    evidence: list[Evidence] = []
    notes: list[str] = []
    judged = held = 0
    marker = new_marker(ctx, "tenant-a")
    made = send(ctx, "POST", resource.collection, json=marked_body(resource.create.request_schema, marker),
                headers=ha)
    item_id = find_id(unwrap(made.json()), resource.id_field) if ok(made) else None
    if item_id is None:
        return [], [], 0, 0, [f"tenant A's key could not create in {resource.collection} ({status_text(made)})"]
    item = fill(resource.item, item_id)
    own = read_back(ctx, resource, item_id, ha)
    if own.state != "found":  # the control: without it, B's refusals prove nothing
        if resource.delete is not None:
            send(ctx, "DELETE", at(resource, resource.delete, item_id), headers=ha).source = "cleanup"
        return [], [], 0, 0, [f"tenant A cannot read its own object back ({own.via} answered "
                              f"{status_text(own.exchange)}), so nothing can be judged by effect"]
    created = made.evidence("tenant A creates an object with its API key")

    def judge(kind: str, what: str, leaked: bool, chain: list[Evidence], operation: str) -> None:
        nonlocal judged, held
        judged += 1
        held += not leaked
        if leaked:
            findings.append(ctx.fail("tenant_isolation_broken", "critical", f"Tenant B's API key {what} (OWASP API1:2023).",
                                     operation=operation, evidence=[created, *chain], hint=_ISOLATION_HINT))
        else:
            evidence.extend(chain[-1:])

    try:
        if resource.read is not None:
            seen = send(ctx, "GET", at(resource, resource.read, item_id), headers=hb)
            judge("read", f"read tenant A's object: GET {item} answered {status_text(seen)} with A's data",
                  _leaks(seen, marker, item_id), [seen.evidence("tenant B reads A's object: expected 404")],
                  resource.read.label)
        if resource.list is not None:
            listed = send(ctx, "GET", resource.collection, headers=hb)
            judge("list", f"lists tenant A's objects: GET {resource.collection} shows A's object",
                  ok(listed) and marker in listed.text, [listed.evidence("tenant B lists: A's object must not appear")],
                  resource.list.label)
        if resource.update is not None:
            change_marker = new_marker(ctx, "tenant-b")
            target = at(resource, resource.update, item_id)
            attempt = send(ctx, resource.update.method, target, headers=hb,
                           json=marked_body(resource.update.request_schema, change_marker, variant=1))
            back = read_back(ctx, resource, item_id, ha)
            if back.state == "unknown":
                notes.append(f"after B's {resource.update.method}, A's read {back.via} answered "
                             f"{status_text(back.exchange)}: B's write could not be judged")
            else:
                judge("write", f"changed tenant A's object: {resource.update.method} {target} answered "
                      f"{status_text(attempt)} and A now reads B's values", change_marker in back.exchange.text,
                      [attempt.evidence(f"tenant B changes A's object ({status_text(attempt)})"),
                       back.exchange.evidence("tenant A reads it back: unchanged?")], resource.update.label)
        if resource.delete is not None:
            target = at(resource, resource.delete, item_id)
            attempt = send(ctx, "DELETE", target, headers=hb)
            back = read_back(ctx, resource, item_id, ha)
            if back.state == "unknown":
                notes.append(f"after B's DELETE, A's read {back.via} answered {status_text(back.exchange)}: B's "
                             "delete could not be judged")
            else:
                judge("delete", f"deleted tenant A's object: after DELETE {target} ({status_text(attempt)}) A's "
                      f"{back.via} answers {status_text(back.exchange)} without it", back.state == "absent",
                      [attempt.evidence(f"tenant B deletes A's object ({status_text(attempt)})"),
                       back.exchange.evidence("tenant A reads it back: still there?")], resource.delete.label)
    finally:
        if resource.delete is not None:
            send(ctx, "DELETE", at(resource, resource.delete, item_id), headers=ha).source = "cleanup"
    return findings, evidence, judged, held, notes


@check("tenancy.isolation", area="tenancy", title="Tenants cannot read, list, change or delete each other's data",
       needs=("service", "spec", "two_users"))
def isolation(ctx: CheckContext):
    ops, _, skipped = _preconditions(ctx)
    if skipped:
        return skipped
    resources = [r for r in data_resources(ctx)][:2]
    if not resources:
        return ctx.skip("no top-level data collection (POST + GET /{id}) was found to probe tenants with",
                        ctx.resources_hint("collections each tenant owns"))
    try:
        a_tenant, b_tenant = tenants(ctx, 2)
    except IdentityError as exc:
        return ctx.skip(f"two tenants could not be made: {exc}")
    (a, made_a), (b, made_b) = create_key(ctx, ops, a_tenant), create_key(ctx, ops, b_tenant)
    if a is None or b is None:
        return ctx.skip(f"API keys could not be made for two tenants ({ops.create.label} answered "
                        f"{status_text(made_a)} and {status_text(made_b)})", MANIFEST_HINT)
    findings, evidence, notes = [], [], []
    judged = held = 0
    for resource in resources:
        f, e, j, h, n = _walk(ctx, resource, a, b, ops)
        findings += f
        evidence += e
        judged, held, notes = judged + j, held + h, notes + n
    if ops.revoke is not None:  # a cross-tenant write on the keys themselves
        attempt = revoke_key(ctx, ops, a, b_tenant.user)
        still = send(ctx, "GET", key_target(ctx).path, headers=a.headers(ops))
        judged += 1
        if refused(still):
            findings.append(ctx.fail("tenant_isolation_broken", "critical",
                                     f"Tenant B revoked tenant A's API key: after B's {ops.revoke.label} "
                                     f"({status_text(attempt)}), A's key is refused ({status_text(still)}).",
                                     operation=ops.revoke.label, hint=_ISOLATION_HINT,
                                     evidence=[attempt.evidence("tenant B revokes A's key"),
                                               still.evidence("tenant A's key afterwards: must still work")]))
        else:
            held += 1
            evidence.append(attempt.evidence(f"tenant B tries to revoke A's key ({status_text(attempt)}); A's key "
                                             f"still works ({status_text(still)})"))
    if not judged:
        return ctx.skip("; ".join(notes) or "nothing could be judged", MANIFEST_HINT)
    summary = (f"tenant B's key against tenant A's objects in {', '.join(r.collection for r in resources)} and A's key: "
               f"{held}/{judged} attempts refused without effect" + (f". Notes: {'; '.join(notes)}" if notes else ""))
    return ctx.verdict(summary, findings, evidence, score=held / judged)
