"""Usage tracking (capstone tier): the usage endpoint reflects the calls a tenant just made.

The grader reads the usage (the manifest's `usage: GET /usage`, else a documented GET on a path with
"usage"), makes a known number of calls with the same credentials (an API key when the API has them),
and reads it again: some counter must have grown by at least that number within the deadline.
"""

from __future__ import annotations

import time

from ..models import Operation
from ..probe import Exchange
from .operations import named_operation, numbers, ok, path_params, send, status_text
from .registry import CheckContext, check
from .tenancy import create_key, find_key_ops, key_target, tenants

CALLS = 5
DEFAULT_DEADLINE = 5.0
MANIFEST_HINT = "usage: GET /usage   # the caller's usage counters"


def _usage_op(ctx: CheckContext) -> Operation | None:
    named = ctx.facts.manifest.usage if ctx.facts.manifest else None
    if named:
        return named_operation(ctx, named)
    ops = [op for op in ctx.api.operations if op.method == "GET" and "usage" in op.path.lower() and not path_params(op.path)]
    return min(ops, key=lambda op: len(op.path)) if ops else None


def _credentials(ctx: CheckContext) -> tuple[dict[str, str], str]:
    """An API key of a tenant when the API makes them, else the test user's credentials."""
    ops = find_key_ops(ctx)
    if ops is not None and ctx.api.auth is not None:
        try:
            key, _ = create_key(ctx, ops, tenants(ctx, 1)[0])
            if key is not None:
                return key.headers(ops), "a fresh API key"
        except Exception:  # no users: fall back to what there is
            pass
    return ctx.auth_headers(), "the test user's token"


@check("usage.tracking", area="usage", title="The usage endpoint reflects the calls made", needs=("service", "spec"),
       order=30, params={"deadline_s": float})
def tracking(ctx: CheckContext):
    op = _usage_op(ctx)
    if op is None:
        return ctx.skip("no usage operation was found (a GET on a path with `usage`)", MANIFEST_HINT)
    headers, how = _credentials(ctx)
    before = send(ctx, "GET", op.path, headers=headers)
    if not ok(before) or not numbers(before.json()):
        if before.status is not None and before.status >= 500:
            finding = ctx.fail("usage_not_tracked", "medium", f"{op.label} crashed ({before.status}).",
                               operation=op.label, evidence=[before.evidence("read usage")],
                               hint="Serve the caller's counters from the usage store; never let a missing row crash it.")
            return ctx.verdict(finding.message, [finding])
        return ctx.skip(f"{op.label} with {how} answered {status_text(before)}"
                        + (" without any number" if ok(before) else ""), MANIFEST_HINT)
    target = key_target(ctx)
    path = target.path if target is not None and not path_params(target.path) else op.path
    calls = [send(ctx, "GET", path, headers=headers) for _ in range(CALLS)]
    start = numbers(before.json())
    deadline = float(ctx.params().get("deadline_s", DEFAULT_DEADLINE))
    started = time.monotonic()
    after: Exchange = before
    grown: dict[str, float] = {}
    while True:
        after = send(ctx, "GET", op.path, headers=headers)
        now = numbers(after.json()) if ok(after) else {}
        grown = {k: now[k] - v for k, v in start.items() if k in now and now[k] - v >= CALLS}
        if grown or time.monotonic() - started >= deadline:
            break
        time.sleep(0.5)
    evidence = [before.evidence(f"usage before, with {how}"), calls[-1].evidence(f"one of {CALLS} calls"),
                after.evidence("usage after the calls")]
    if grown:
        field, delta = next(iter(grown.items()))
        return ctx.verdict(f"after {CALLS} calls to GET {path}, `{field}` in {op.label} grew by {delta:g}",
                           evidence=evidence)
    finding = ctx.fail("usage_not_tracked", "medium",
                       f"After {CALLS} calls to GET {path} with {how}, no counter in {op.label} grew "
                       f"by {CALLS} within {deadline:g} s.", operation=op.label, evidence=evidence,
                       hint="Count every authenticated request per tenant (and per API key) in middleware — an "
                            "atomic `INSERT ... ON CONFLICT DO UPDATE SET requests = requests + 1` per day, or Redis "
                            "`INCR usage:{tenant}:{day}` — and serve those counters from the usage endpoint.")
    return ctx.verdict(finding.message, [finding], evidence)
