"""Idempotency keys (capstone tier): the same create sent twice with the same `Idempotency-Key` makes one
object and answers the same response — what lets a client retry a timed-out request safely.

The operation is the manifest's `idempotency: {operation: POST /payments}`, else one that documents an
idempotency header, else the first data collection's create.
"""

from __future__ import annotations

import uuid

from ..models import Operation
from .objects import at, find_id
from .operations import (data_resources, documented_header, marked_body, named_operation, new_marker, ok, send,
                         status_text, unwrap)
from .registry import CheckContext, check

MANIFEST_HINT = ("idempotency:\n"
                 "  operation: POST /payments     # a create that honours an idempotency key\n"
                 "  header: Idempotency-Key")


def _target(ctx: CheckContext) -> tuple[Operation | None, str]:
    named = ctx.facts.manifest.idempotency if ctx.facts.manifest else None
    if named and named.operation:
        return named_operation(ctx, named.operation), named.header
    for op in ctx.api.operations:
        header = documented_header(op, r"idempoten")
        if op.method in ("POST", "PUT", "PATCH") and header:
            return op, header
    creates = [r.create for r in data_resources(ctx)]
    return (creates[0] if creates else None), (named.header if named else "Idempotency-Key")


@check("idempotency.keys", area="idempotency", title="Repeating a create with the same Idempotency-Key makes one object",
       needs=("service", "spec"))
def keys(ctx: CheckContext):
    op, header = _target(ctx)
    if op is None:
        return ctx.skip("no create operation was found to send an idempotency key to", MANIFEST_HINT)
    headers = ctx.auth_headers() if op.security or ctx.api.auth else {}
    key = str(uuid.uuid4())
    body = marked_body(op.request_schema, new_marker(ctx, "idem"))
    first = send(ctx, op.method, op.path, json=body, headers={**headers, header: key})
    if not ok(first):
        return ctx.skip(f"{op.label} with a schema-valid body answered {status_text(first)}", MANIFEST_HINT)
    second = send(ctx, op.method, op.path, json=body, headers={**headers, header: key})
    id1, id2 = find_id(unwrap(first.json()), "id"), find_id(unwrap(second.json()), "id")
    evidence = [first.evidence(f"create with {header}: {key}"),
                second.evidence(f"the same request with the same {header}: expected the same answer, no new object")]
    _clean_up(ctx, op, headers, {id1, id2} - {None})
    if id1 is None:
        return ctx.skip(f"{op.label} answered {first.status} without an id to compare", MANIFEST_HINT)
    if second.status == first.status and id2 is not None and str(id1) == str(id2):
        return ctx.verdict(f"{op.label} twice with one {header}: {first.status} both times, one object (id {id1})",
                           evidence=evidence)
    problem = (f"made a second object (id {id1}, then id {id2})" if ok(second) and id2 is not None and str(id2) != str(id1)
               else f"answered {status_text(second)} the second time instead of replaying {first.status}")
    finding = ctx.fail("idempotency_missing", "medium",
                       f"{op.label} sent twice with the same {header} {problem}: a client retrying after a timeout "
                       "duplicates what it created.", operation=op.label, evidence=evidence,
                       hint=f"Store (tenant, {header}) with a hash of the request and the response when the create "
                            "succeeds (a unique constraint, 24 h expiry); when the key comes again with the same body, "
                            "answer the stored status and body without creating anything; with a different body "
                            "answer 422. Stripe's API is the model.")
    return ctx.verdict(finding.message, [finding], evidence)


def _clean_up(ctx: CheckContext, op: Operation, headers: dict[str, str], ids: set) -> None:
    resource = next((r for r in ctx.api.resources if r.create.label == op.label and r.delete is not None), None)
    if resource is None:
        return
    for item_id in ids:
        send(ctx, "DELETE", at(resource, resource.delete, item_id), headers=headers).source = "cleanup"
