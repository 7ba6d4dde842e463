"""injection.redos: a regular expression a client can make take exponential time (ReDoS, CWE-1333).

Learner APIs validate e-mails and URLs with home-made patterns whose nested quantifiers
(`([-.\\w]*[0-9a-zA-Z])*@`, `(\\w+\\.?)+`) backtrack exponentially on a near-miss: `aaaa…a!`. For each e-mail-,
URL- or pattern-validated string field (at most a few), a valid value is the control, then `"a" * n + "!"` is sent
with n growing by 2 (14 … 26). A backtracking regex doubles its time or more at each step; the probe stops as soon
as an answer takes 2 s, so the API is never pinned for long. The proof is the shape of the curve: an answer at
least 2 s slower than the control after at least two steps that each at least doubled the time. A linear or flat
curve is a pass. It runs late (before the rate-limit floods), so a busy worker disturbs no other probe.
"""

from __future__ import annotations

import re

from ..models import Evidence, Finding, Operation
from ..payloads import valid_example
from ..probe import Exchange
from .operations import ok, send_input, status_text
from .registry import CheckContext, check

VALIDATED = re.compile(r"e-?mail|url|uri|link|website|site|domain|host", re.I)
MAX_TARGETS = 4
LENGTHS = (14, 18, 20, 22, 24, 26)
SLOW = 2.0  # seconds over the control that end the climb
HINT = ("Validate with a library, not a home-made pattern (email-validator, pydantic's EmailStr, validator.js "
        "`isEmail`), or make the pattern linear: no quantified group that contains another quantifier "
        "(`(a+)+`, `([-.\\w]*x)*`); bound the input's length before matching, or use an engine without backtracking "
        "(Go's regexp, RE2, Rust's regex, pydantic's patterns).")


def _targets(ctx: CheckContext) -> list[tuple[Operation, str, str]]:
    """(write operation, field, where) for string fields validated as e-mail / URL or by a `pattern`."""
    auth = ctx.api.auth
    skip = {op.label for op in (auth.login,) if op is not None} if auth else set()
    found = []
    for op in ctx.api.operations:
        if op.label in skip:
            continue
        if op.method in ("POST", "PUT", "PATCH"):
            props = (op.request_schema or {}).get("properties") or {}
            found += [(op, name, "body") for name, sub in props.items() if isinstance(sub, dict)
                      and sub.get("type", "string") == "string" and not sub.get("enum")
                      and (VALIDATED.search(name) or sub.get("format") in ("email", "uri", "url") or sub.get("pattern"))]
        elif op.method == "GET":
            found += [(op, str(p.get("name")), "query") for p in op.parameters if p.get("in") == "query"
                      and VALIDATED.search(str(p.get("name")))]
    return found[:MAX_TARGETS]


def _valid_value(name: str, base: dict) -> str:
    """A value the field surely accepts: an e-mail or a URL by its name, else the schema's example."""
    if re.search(r"e-?mail", name, re.I):
        return "pg.grader@example.com"
    if re.search(r"url|uri|link|website|site", name, re.I):
        return "https://example.com/pg"
    return str(base.get(name) or "pg")


def _climb(ctx: CheckContext, op: Operation, name: str, where: str, headers: dict[str, str]
           ) -> tuple[Finding | None, list[Evidence], str]:
    """(a finding, the evidence, what happened in a few words)."""
    base = valid_example(op.request_schema) if where == "body" else {}
    base = base if isinstance(base, dict) else {}
    control = send_input(ctx, op, name, where, _valid_value(name, base), base, headers)
    if not ok(control):  # a valid value refused: whether the payload would even reach the pattern is unknown
        return None, [], f"{op.label} `{name}`: the valid value answered {status_text(control)}"
    curve: list[tuple[int, Exchange]] = []
    for n in LENGTHS:
        answer = send_input(ctx, op, name, where, "a" * n + "!", base, headers)
        curve.append((n, answer))
        if answer.status is None or answer.seconds - control.seconds >= SLOW:
            break
    times = [a.seconds for _, a in curve]
    doubling = sum(1 for before, after in zip(times, times[1:]) if before > 0.02 and after >= 2 * before)
    slowest_n, slowest = curve[-1]
    timed_out = slowest.status is None and "Timeout" in (slowest.error or "")
    shown = ", ".join(f"{n}: {t:.2f} s" for (n, _), t in zip(curve, times))
    if (timed_out or times[-1] - control.seconds >= SLOW) and doubling >= 2:
        finding = ctx.fail(
            "redos", "medium",
            f"{op.label} spends exponential time on `{name}`: 'a' × n + '!' answered in {shown} (the valid value "
            f"in {control.seconds:.2f} s) — each two more characters at least doubled the time, the mark of a "
            "backtracking regular expression. A client can tie up a worker for minutes with a 40-character value "
            "(OWASP API4:2023 Unrestricted Resource Consumption, CWE-1333).",
            operation=op.label, hint=HINT,
            evidence=[control.evidence(f"control: a valid `{name}`, {control.seconds:.2f} s"),
                      curve[-2][1].evidence(f"`{name}` = 'a' × {curve[-2][0]} + '!': {times[-2]:.2f} s"),
                      slowest.evidence(f"`{name}` = 'a' × {slowest_n} + '!': "
                                       + ("no answer within the request timeout" if timed_out
                                          else f"{times[-1]:.2f} s"))])
        return finding, [], f"{op.label} `{name}`: exponential"
    evidence = [control.evidence(f"control: a valid `{name}`, {control.seconds:.2f} s"),
                slowest.evidence(f"`{name}` = 'a' × {slowest_n} + '!': {times[-1]:.2f} s ({shown})")]
    return None, evidence, f"{op.label} `{name}` ({status_text(slowest)}, flat)"


@check("injection.redos", area="errors", title="No input makes a regular expression take exponential time",
       needs=("service", "spec"), order=140)  # late, before the rate-limit floods that would 429 it
def redos(ctx: CheckContext):
    targets = _targets(ctx)
    if not targets:
        return ctx.not_applicable("no write takes an e-mail, URL or pattern-validated string")
    headers = ctx.auth_headers()
    findings: list[Finding] = []
    evidence: list[Evidence] = []
    said: list[str] = []
    for op, name, where in targets:
        finding, seen, what = _climb(ctx, op, name, where, headers)
        said.append(what)
        if finding is not None:
            findings.append(finding)
        evidence += seen
    if findings:
        return ctx.verdict(f"{len(findings)} input(s) take exponential time", findings, evidence)
    if not evidence:
        return ctx.skip("no field could be probed: " + "; ".join(said))
    return ctx.verdict("'a' × 14…26 + '!' answered in flat time: " + "; ".join(said), evidence=evidence[:6])
