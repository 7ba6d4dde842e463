"""CRUD lifecycle: create -> read -> update -> read -> delete -> read gives 404, each with the right status."""

from __future__ import annotations

import re
from typing import Any

from ..identities import fresh_object
from ..models import Finding, Resource
from ..payloads import valid_example
from ..probe import Exchange
from .objects import created_id, natural_key
from .operations import status_text
from .registry import CheckContext, check

MAX_RESOURCES = 3


@check("crud.lifecycle", area="crud", title="Each resource supports the full CRUD lifecycle",
       needs=("service", "spec", "resource"))
def lifecycle(ctx: CheckContext):
    resources = [r for r in ctx.api.resources if "{" not in r.collection][:MAX_RESOURCES]
    if not resources:
        return ctx.skip("only nested collections (/parents/{id}/children) were found; the lifecycle probe needs "
                        "a top-level collection", "resources: [/api/v1/books]")
    headers = ctx.auth_headers() if any(r.create.security for r in resources) else {}
    if not headers:
        resources = [r for r in resources if not r.create.security]
        if not resources:
            return ctx.skip("every resource needs credentials and no test user could log in "
                            f"({ctx.api.auth_problem or ctx._memo.get('identities_error') or 'see the auth checks'})")
    findings: list[Finding] = []
    evidence = []
    passed = total = 0
    for resource in resources:
        steps = _walk(ctx, resource, headers)
        for ok, exchange, note, problem in steps:
            total += 1
            passed += ok
            if exchange is not None:
                evidence.append(exchange.evidence(note))
        broken = [(exchange, note, problem) for ok, exchange, note, problem in steps if not ok]
        if broken:
            exchange, note, problem = broken[0]
            chain = [e.evidence(n) for ok, e, n, _ in steps if e is not None]
            findings.append(ctx.fail(
                "crud_lifecycle_broken", "high" if len(broken) > 1 or "create" in note else "medium",
                f"{resource.collection}: {problem}" + (f" (and {len(broken) - 1} more step(s) wrong)" if len(broken) > 1 else ""),
                operation=f"{resource.create.method} {resource.collection}", evidence=chain,
                hint="Return 201 with the created object (including its id) from POST, 200 with the object from GET "
                     "and PUT/PATCH, 204 (or 200) from DELETE, and 404 for an id that does not exist or was deleted."))
    summary = f"{passed}/{total} lifecycle steps correct over {len(resources)} resource(s): " + ", ".join(
        r.collection for r in resources)
    return ctx.verdict(summary, findings, evidence=evidence, score=passed / max(total, 1))


Step = tuple[bool, Exchange | None, str, str]


def _walk(ctx: CheckContext, resource: Resource, headers: dict[str, str]) -> list[Step]:
    steps: list[Step] = []

    def send(method: str, path: str, **kwargs) -> Exchange:
        return ctx.prober.request(method, path, headers=headers, **kwargs)

    body = fresh_object(resource.create.request_schema, natural_key(resource))
    created = send("POST", resource.collection, json=body)
    ok = created.status == 201
    problem = (f"POST returned {created.status} instead of 201 Created" if created.status and created.status < 300
               else f"creating with a valid body failed ({status_text(created)})")
    steps.append((ok, created, "create with a schema-valid body (expect 201)", problem))
    obj = created.json() if created.status and created.status < 300 else None
    item_id = created_id(obj, body, resource) if created.status and created.status < 300 else None
    if item_id is None:
        if created.status and created.status < 300:
            steps.append((False, None, "read the id of the created object",
                          f"the create response has no `{resource.id_field}` field to address the new object by"))
        return steps
    item = re.sub(r"\{[^}]+\}", str(item_id), resource.item)

    read = send("GET", item)
    mismatch = _mismatch(body, read.json())
    steps.append((read.status == 200 and not mismatch, read, "read it back (expect 200 and the same fields)",
                  f"GET {item} returned {status_text(read)}" + (f"; {mismatch}" if read.status == 200 else "")))

    if resource.update is not None:
        update_body = valid_example(resource.update.request_schema, variant=1) if resource.update.request_schema else {}
        updated = send(resource.update.method, item, json=update_body)
        steps.append((updated.status in (200, 204), updated, f"{resource.update.method} with changed values (expect 200)",
                      f"{resource.update.method} {item} returned {status_text(updated)}"))
        reread = send("GET", item)
        mismatch = _mismatch(update_body, reread.json())
        steps.append((reread.status == 200 and not mismatch, reread, "read it back (expect the new values)",
                      f"after {resource.update.method}, GET {item} returned {status_text(reread)}"
                      + (f"; {mismatch}" if reread.status == 200 else "")))
    else:
        steps.append((False, None, "update", f"no PUT or PATCH is documented for {resource.item}"))

    if resource.delete is not None:
        deleted = send("DELETE", item)
        steps.append((deleted.status in (200, 202, 204), deleted, "delete it (expect 204 or 200)",
                      f"DELETE {item} returned {status_text(deleted)}"))
        gone = send("GET", item)
        steps.append((gone.status in (404, 410), gone, "read after delete (expect 404)",
                      f"after DELETE, GET {item} returned {status_text(gone)} instead of 404"))
    else:
        steps.append((False, None, "delete", f"no DELETE is documented for {resource.item}"))
    return steps





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
