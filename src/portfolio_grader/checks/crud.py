"""CRUD lifecycle: create -> read -> update -> read -> delete -> read gives 404, each with the right status."""

from __future__ import annotations

from typing import Any

from ..identities import fresh_object
from ..models import Finding, Resource
from ..payloads import valid_example
from ..probe import Exchange
from .objects import (NoParent, Sighting, at, bind_parents, body_args, body_schema, locate_created, marked,
                      missing_reference, natural_key, read_back, readable, release, walkable)
from .operations import ok, status_text
from .registry import CheckContext, check

MAX_RESOURCES = 3


@check("crud.lifecycle", area="crud", title="Each resource supports the full CRUD lifecycle",
       needs=("service", "spec", "resource"))
def lifecycle(ctx: CheckContext):
    resources = walkable(ctx.api.resources, MAX_RESOURCES)
    headers = ctx.auth_headers() if any(r.create.security for r in resources) else {}
    if not headers:
        resources = [r for r in resources if not r.create.security]
        if not resources:
            return ctx.skip("every resource needs credentials and no test user could log in "
                            f"({ctx.api.auth_problem or ctx._memo.get('identities_error') or 'see the auth checks'})")
    findings: list[Finding] = []
    evidence = []
    notes: list[str] = []
    judged: list[Resource] = []
    passed = total = 0
    for resource in resources:
        own_headers = dict(headers)
        try:
            bound = bind_parents(ctx, resource, own_headers, f"pg-p-{ctx.run_tag}")
        except NoParent as exc:
            notes.append(str(exc))
            continue
        try:
            steps = _walk(ctx, bound.resource, own_headers, notes)
        except CannotTell as exc:
            notes.append(str(exc))
            continue
        finally:
            release(ctx, bound, own_headers)
        judged.append(resource)
        for right, exchange, note, problem in steps:
            total += 1
            passed += right
            if exchange is not None:
                evidence.append(exchange.evidence(note))
        broken = [(exchange, note, problem) for right, exchange, note, problem in steps if not right]
        if broken:
            exchange, note, problem = broken[0]
            chain = [e.evidence(n) for _, e, n, _ in steps if e is not None]
            findings.append(ctx.fail(
                "crud_lifecycle_broken", "high" if len(broken) > 1 or "create" in note else "medium",
                f"{resource.collection}: {problem}" + (f" (and {len(broken) - 1} more step(s) wrong)" if len(broken) > 1 else ""),
                operation=f"{resource.create.method} {resource.collection}", evidence=chain,
                hint="Return 201 with the created object (including its id) from POST, 200 with the object from GET "
                     "and PUT/PATCH, 204 (or 200) from DELETE, and 404 for an id that does not exist or was deleted."))
    if not judged:
        return ctx.skip("; ".join(notes), "resources: [" + ", ".join(r.collection for r in resources) + "]")
    summary = (f"{passed}/{total} lifecycle steps correct over {len(judged)} resource(s): "
               + ", ".join(r.collection for r in judged) + (f". Notes: {'; '.join(notes)}" if notes else ""))
    return ctx.verdict(summary, findings, evidence=evidence, score=passed / max(total, 1))


Step = tuple[bool, Exchange | None, str, str]


class CannotTell(Exception):
    """The walk cannot judge this resource (said why): it is left out, not failed."""


def _said(answer: Exchange) -> str:
    return " ".join(answer.text.split())[:120]


def _walk(ctx: CheckContext, resource: Resource, headers: dict[str, str], notes: list[str]) -> list[Step]:
    steps: list[Step] = []

    def send(method: str, path: str, **kwargs) -> Exchange:
        return ctx.prober.request(method, path, headers={**headers, **kwargs.pop("headers", {})}, **kwargs)

    if not readable(resource):
        return [(False, None, "read", f"{resource.item} has no GET and {resource.collection} no list to read an "
                 "object back from")]
    body = marked(fresh_object(body_schema(resource.create), natural_key(resource)), f"pg-c-{ctx.run_tag}")
    created = send("POST", resource.collection, **body_args(resource.create, body))
    if created.status in (401, 403) and not headers and (credentials := ctx.auth_headers()):
        # Protected is what behaves protected, whatever the spec declares: walk it as user A.
        notes.append(f"POST {resource.collection} answered {created.status} without credentials although the spec "
                     "declares none, so its lifecycle was walked with user A's token")
        headers.update(credentials)
        created = send("POST", resource.collection, **body_args(resource.create, body))
    admin = ctx.admin_identity() if created.status == 403 and headers else None
    if admin is not None:  # a collection only another role may create in: walk it as the manifest's admin
        notes.append(f"POST {resource.collection} refuses an ordinary user (403), so its lifecycle was walked as the "
                     "manifest's admin")
        headers.clear()
        headers.update(admin.headers(ctx.api.auth))
        created = send("POST", resource.collection, **body_args(resource.create, body))
    if created.status in (401, 403) and not headers:
        raise CannotTell(f"POST {resource.collection} answered {created.status} without credentials and no test user "
                         f"could log in ({ctx.api.auth_problem or ctx._memo.get('identities_error') or 'no login'})")
    if created.status in (401, 403) and headers:
        raise CannotTell(f"POST {resource.collection} refuses user A's credentials ({created.status}): it may be for "
                         "another role (give the manifest an `auth: admin:` user who may create there)")
    if (field := missing_reference(created, body)) is not None:
        raise CannotTell(f"POST {resource.collection} refused the grader's made-up `{field}` ({body[field]!r}: "
                         f"'{_said(created)}'): it needs an existing object the grader could not name, so the refusal "
                         "says nothing about the API")
    problem = (f"POST returned {created.status} instead of 201 Created" if created.status and created.status < 300
               else f"creating with a valid body failed ({status_text(created)})")
    steps.append((created.status == 201, created, "create with a schema-valid body (expect 201)", problem))
    if not (created.status and created.status < 300):
        return steps
    item_id, found_by = locate_created(ctx, resource, created, body, headers)
    if item_id is None:
        steps.append((False, None, "find the created object", found_by))
        return steps
    by_list = resource.read is None  # no item GET: every read is the object's entry in the list

    read = read_back(ctx, resource, item_id, headers)
    mismatch = _mismatch(body, read.obj) if read.state == "found" else None
    steps.append((read.state == "found" and not mismatch, read.exchange,
                  "find it in the list (expect it there with the same fields)" if by_list
                  else "read it back (expect 200 and the same fields)",
                  _read_problem(read, item_id, "") + (f"; {mismatch}" if mismatch else "")))
    if read.state == "unknown" and by_list and ok(read.exchange):
        if resource.delete is not None:
            send("DELETE", at(resource, resource.delete, item_id)).source = "cleanup"
        raise CannotTell(f"{resource.collection}: {_read_problem(read, item_id, '')}, and there is no GET "
                         f"{resource.item} to read it by id")

    if resource.update is not None:
        schema = body_schema(resource.update)
        update_body = valid_example(schema, variant=1) if schema else {}
        target = at(resource, resource.update, item_id)
        updated = send(resource.update.method, target, **body_args(resource.update, update_body))
        steps.append((updated.status in (200, 204), updated, f"{resource.update.method} with changed values (expect 200)",
                      f"{resource.update.method} {target} returned {status_text(updated)}"))
        reread = read_back(ctx, resource, item_id, headers)
        mismatch = _mismatch(update_body, reread.obj) if reread.state == "found" else None
        steps.append((reread.state == "found" and not mismatch, reread.exchange, "read it back (expect the new values)",
                      _read_problem(reread, item_id, f"after {resource.update.method}, ")
                      + (f"; {mismatch}" if mismatch else "")))
    else:
        steps.append((False, None, "update", f"no PUT or PATCH is documented for {resource.item}"))

    if resource.delete is not None:
        target = at(resource, resource.delete, item_id)
        deleted = send("DELETE", target)
        steps.append((deleted.status in (200, 202, 204), deleted, "delete it (expect 204 or 200)",
                      f"DELETE {target} returned {status_text(deleted)}"))
        gone = read_back(ctx, resource, item_id, headers)
        steps.append((gone.state == "absent", gone.exchange,
                      "the list no longer holds it" if by_list else "read after delete (expect 404)",
                      f"after DELETE, {gone.via} " + (f"still lists {resource.id_field} {item_id}" if gone.state == "found"
                                                      and by_list else f"returned {status_text(gone.exchange)}"
                                                      + (" instead of 404" if not by_list else ""))))
    else:
        steps.append((False, None, "delete", f"no DELETE is documented for {resource.item}"))
    return steps


def _read_problem(seen: Sighting, item_id: Any, prefix: str) -> str:
    """Why a read-back did not show the object: the item GET's status, or what the list showed."""
    if not seen.by_list or not ok(seen.exchange) or seen.state == "found":
        return f"{prefix}{seen.via} returned {status_text(seen.exchange)}"
    if seen.state == "unknown":
        return f"{prefix}the list {seen.via} has more pages and its first does not show {item_id}: cannot tell"
    return f"{prefix}the list {seen.via} ({seen.exchange.status}) does not hold {item_id}"


def _mismatch(sent: Any, got: Any) -> str | None:
    """The first field sent that the object read back does not hold (None when all match)."""
    if not isinstance(sent, dict):
        return None
    if isinstance(got, dict) and isinstance(got.get("data"), dict):
        got = got["data"]
    if not isinstance(got, dict):
        return "the body is not a JSON object"
    for key, value in sent.items():
        if key in got and got[key] != value and not _same_scalar(got[key], value):
            return f"`{key}` is {got[key]!r}, expected {value!r}"
    return None


def _same_scalar(a: Any, b: Any) -> bool:
    """Equal after the formatting servers are free to apply (1 vs 1.0, date-time precision)."""
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return float(a) == float(b)
    if isinstance(a, str) and isinstance(b, str):
        return a.rstrip("Z").replace("+00:00", "") == b.rstrip("Z").replace("+00:00", "")
    return False
