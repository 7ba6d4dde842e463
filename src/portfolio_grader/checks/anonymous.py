"""Anonymous writes: an API with users whose PUT/PATCH/DELETE on a user's object works without any credentials,
whatever the spec declares. Judged by effect: user A makes an object, a request with no credentials changes or
deletes it, and A reads it back. Part of `auth.required`'s verdict."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..identities import Identity, fresh_object
from ..models import Evidence, Resource
from .objects import at, locate_created, marked, natural_key, read_back, readable, walkable
from .operations import marked_body, new_marker, ok, status_text
from .registry import CheckContext

MAX_RESOURCES = 3


@dataclass
class AnonymousWrites:
    """What the probe saw: operations that changed A's object for anyone, those that refused, and why others
    were not judged."""

    open: list[tuple[str, str, list[Evidence]]] = field(default_factory=list)  # (operation, what it did, chain)
    refused: list[tuple[str, Evidence]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def probe_anonymous_writes(ctx: CheckContext, user: Identity, already: set[str]) -> AnonymousWrites:
    """For each data collection user A can create in, an anonymous update and delete of A's fresh object.
    `already` holds the operations auth.required judged another way (declared or refusing a garbage token)."""
    seen = AnonymousWrites()
    headers = user.headers(ctx.api.auth)
    for resource in [r for r in walkable(ctx.api.resources, MAX_RESOURCES) if "{" not in r.collection]:
        writes = [op for op in (resource.update, resource.delete) if op is not None and op.label not in already]
        if not writes or not readable(resource):
            continue
        for op in writes:
            made, item_id = _create(ctx, resource, headers)
            if item_id is None:
                seen.notes.append(f"user A could not create in {resource.collection} ({status_text(made)}) to try "
                                  f"{op.label} without credentials on")
                break
            before = read_back(ctx, resource, item_id, headers)
            if before.state != "found":
                seen.notes.append(f"user A cannot read its new object back ({before.via}: "
                                  f"{status_text(before.exchange)})")
                break
            target = at(resource, op, item_id)
            marker = new_marker(ctx, "anon")
            body = marked_body(op.request_schema, marker) if op.method != "DELETE" else None
            attempt = ctx.prober.request(op.method, target, headers={}, **({"json": body} if body is not None else {}))
            after = read_back(ctx, resource, item_id, headers)
            effect = _effect(op.method, marker, before.obj, after)
            chain = [made.evidence("user A creates an object"),
                     attempt.evidence(f"{op.method} {target} with no credentials at all (answered "
                                      f"{status_text(attempt)})"),
                     after.exchange.evidence("user A reads its object back")]
            if effect:
                seen.open.append((op.label, effect, chain))
            elif attempt.status in (401, 403) and after.state == "found":
                seen.refused.append((op.label, chain[1]))
            else:  # neither refused nor a visible effect (a 404, a 422, a change the read cannot show)
                seen.notes.append(f"{op.label} without credentials answered {status_text(attempt)} and A's read "
                                  f"{after.via} showed no change: not judged")
            if after.state == "found" and resource.delete is not None:
                ctx.prober.request("DELETE", at(resource, resource.delete, item_id), headers=headers).source = "cleanup"
    return seen


def _create(ctx: CheckContext, resource: Resource, headers: dict[str, str]):
    body = marked(fresh_object(resource.create.request_schema, natural_key(resource)), f"pg-anon-{ctx.run_tag}")
    made = ctx.prober.request("POST", resource.collection, json=body, headers=headers)
    item_id = locate_created(ctx, resource, made, body, headers)[0] if ok(made) else None
    return made, item_id


def _effect(method: str, marker: str, original, after) -> str | None:
    """What the anonymous request did to A's object, as A sees it; None when nothing changed."""
    if after.state == "absent":
        return "deleted it" if method == "DELETE" else "made it disappear"
    if after.state != "found" or not isinstance(after.obj, dict) or method == "DELETE":
        return None
    key = next((k for k, v in after.obj.items() if isinstance(v, str) and marker[:12] in v
                and v != (original or {}).get(k)), None)
    return f"set its `{key}` to {after.obj[key]!r}" if key else None
