"""injection.command: a value a client sends must never reach a shell (OS command injection, CWE-78).

Each string query parameter of a GET, and each command-like field (host, ip, file, path, cmd, args, parameters...)
of a write, is sent first with a plain value (the control), then with that value followed by a shell payload:
`; echo pg$((a+b))` and its `|`, `$( )` and backquote forms. Only a shell turns `$((a+b))` into the sum, so the sum
in the answer is the proof (a reflected payload shows the expression, not the number). For blind sinks the value is
then sent with `$(sleep 3)` / `; sleep 3`: an answer at least 2.5 s slower than the control's is confirmed by a
`sleep 0` that is fast and a second `sleep 3` that is slow again. An operation refused to user A (401/403) is sent
again as the manifest's admin. All requests go to the API under grade only, a bounded number of them.
"""

from __future__ import annotations

import re
import secrets
import time

from ..models import Evidence, Finding, Operation
from ..payloads import valid_example
from ..probe import Exchange
from .operations import ok, send_input, status_text
from .registry import CheckContext, check

COMMAND_FIELDS = re.compile(r"host|(^|_)ip($|_)|addr|domain|url|file|path|dir|folder|cmd|command|exec|shell|args?$|"
                            r"param|option|flags?$|target|query|filter|pattern|expr|script|ping|lookup", re.I)
MAX_TARGETS = 12
SLEEP = 3.0
SLOWER_BY = 2.5  # an answer this much slower than the control's is a sleep's doing
HINT = ("Never hand client input to a shell: call the program with an argument list and no shell "
        "(`subprocess.run([\"df\", \"-h\", path], shell=False)`, Node's `execFile(\"df\", [\"-h\", path])`), "
        "validate the value against an allow-list (a known mount point, a hostname pattern), and prefer a library "
        "to a program (shutil.disk_usage, dns.resolver) where one exists.")


def _targets(ctx: CheckContext) -> list[tuple[Operation, str, str]]:
    """(operation, name, where: "query" or "body"): string query parameters of GETs, command-like string fields of
    writes; the sign-up and login are left out (their fields are credentials)."""
    auth = ctx.api.auth
    skip = {op.label for op in (auth.signup, auth.login) if op is not None} if auth else set()
    found: list[tuple[Operation, str, str]] = []
    for op in ctx.api.operations:
        if op.label in skip:
            continue
        if op.method == "GET":
            found += [(op, str(p.get("name")), "query") for p in op.parameters if p.get("in") == "query"
                      and _plain_string(p.get("schema") or {})]
        elif op.method in ("POST", "PUT", "PATCH"):
            props = (op.request_schema or {}).get("properties") or {}
            found += [(op, name, "body") for name, sub in props.items() if isinstance(sub, dict)
                      and _plain_string(sub) and COMMAND_FIELDS.search(name)]
    found.sort(key=lambda t: not COMMAND_FIELDS.search(t[1]))  # command-like names first
    return found[:MAX_TARGETS]


def _plain_string(schema: dict) -> bool:
    return schema.get("type", "string") == "string" and not schema.get("enum") and schema.get("format") not in (
        "uuid", "date", "date-time", "email", "uri", "url")


class _Target:
    """One input of one operation, sent as user A (or the manifest's admin, when A is refused)."""

    def __init__(self, ctx: CheckContext, op: Operation, name: str, where: str) -> None:
        self.ctx, self.op, self.name, self.where = ctx, op, name, where
        self.base = valid_example(op.request_schema) if where == "body" else {}
        self.base = self.base if isinstance(self.base, dict) else {}
        plain = self.base.get(name) if where == "body" else None
        self.plain = plain if isinstance(plain, str) and plain else "pg"
        self.headers, self.who = ctx.auth_headers(), "user A"

    def send(self, value: str) -> Exchange:
        return send_input(self.ctx, self.op, self.name, self.where, value, self.base, self.headers)

    def control(self) -> Exchange:
        answer = self.send(self.plain)
        if answer.status in (401, 403):
            admin, flow = self.ctx.admin_identity(), self.ctx.api.auth
            if admin is not None and flow is not None:
                self.headers, self.who = admin.headers(flow), "the manifest's admin"
                answer = self.send(self.plain)
        return answer


def _echo_payloads(a: int, b: int) -> list[str]:
    marker = f"pg$(({a}+{b}))z"
    return [f"; echo {marker}", f"| echo {marker}", f"$(echo {marker})", f"`echo {marker}`"]


def _probe(target: _Target, control: Exchange) -> tuple[Finding | None, list[Evidence], bool]:
    """(a finding, the evidence, whether any payload was answered at all rather than refused)."""
    ctx = target.ctx
    a, b = 1000 + secrets.randbelow(9000), 1000 + secrets.randbelow(9000)
    answered = False
    first: Exchange | None = None  # the first payload's answer: the pass's evidence beside the control
    for payload in _echo_payloads(a, b):
        value = target.plain + payload
        answer = target.send(value)
        first = first or answer
        answered = answered or answer.status is not None and answer.status < 500 and answer.status != 429
        if f"pg{a + b}z" in answer.text:
            return ctx.fail(
                "command_injection", "critical",
                f"{target.op.label} ran the shell command a client put in `{target.name}`: sent {value!r} "
                f"(as {target.who}), the answer holds pg{a + b}z, the sum only a shell computes. Anyone who can "
                "send this request runs commands on the server (OWASP API8:2019 Injection, CWE-78).",
                operation=target.op.label, hint=HINT,
                evidence=[control.evidence(f"control: `{target.name}` = {target.plain!r}"),
                          answer.evidence(f"`{target.name}` with a shell payload: the answer holds pg{a + b}z")],
            ), [], True
    for payload in (f"$(sleep {SLEEP:g})", f"; sleep {SLEEP:g}"):
        slow = target.send(target.plain + payload)
        if slow.seconds - control.seconds < SLOWER_BY:
            continue
        fast = target.send(target.plain + payload.replace(f"sleep {SLEEP:g}", "sleep 0"))
        again = target.send(target.plain + payload)
        if again.seconds - fast.seconds >= SLOWER_BY:
            return ctx.fail(
                "command_injection", "critical",
                f"{target.op.label} ran the shell command a client put in `{target.name}` (as {target.who}): with "
                f"{payload!r} appended it answered in {slow.seconds:.1f} s and {again.seconds:.1f}"
                f" s, with `sleep 0` in {fast.seconds:.1f} s, the plain value in "
                f"{control.seconds:.1f} s: the server waited for the sleep. Anyone who can send this "
                "request runs commands on the server (OWASP API8:2019 Injection, CWE-78).",
                operation=target.op.label, hint=HINT,
                evidence=[control.evidence(f"control: `{target.name}` = {target.plain!r}"),
                          slow.evidence(f"with {payload!r}: {slow.seconds:.1f} s"),
                          fast.evidence(f"with `sleep 0`: {fast.seconds:.1f} s"),
                          again.evidence(f"with {payload!r} again: {again.seconds:.1f} s")],
            ), [], True
    seen = [control.evidence(f"control: `{target.name}` = {target.plain!r}")]
    if first is not None:
        seen.append(first.evidence(f"`{target.name}` with a shell payload: no pg{a + b}z in the answer (then 3 "
                                   "more echo and 2 sleep payloads: none ran)"))
    return None, seen, answered


@check("injection.command", area="errors", title="Client input never reaches a shell (command injection)",
       needs=("service", "spec"))
def command_injection(ctx: CheckContext):
    targets = _targets(ctx)
    if not targets:
        return ctx.not_applicable("no operation takes a string a server could hand to a shell (query parameters "
                                  "of GETs, command-like fields of writes)")
    findings: list[Finding] = []
    evidence: list[Evidence] = []
    probed: list[str] = []
    refused: list[str] = []
    started = time.monotonic()
    for op, name, where in targets:
        target = _Target(ctx, op, name, where)
        control = target.control()
        if not ok(control):
            refused.append(f"{op.label} `{name}` ({status_text(control)} to the plain value)")
            continue
        finding, seen, answered = _probe(target, control)
        if finding is not None:
            findings.append(finding)
        elif answered:
            probed.append(f"{op.label} `{name}`")
            evidence += seen
    if findings:
        return ctx.verdict(f"{len(findings)} input(s) reached a shell", findings, evidence)
    if not probed:
        return ctx.skip("no input could be probed: the plain value was not accepted ("
                        + "; ".join(refused[:4]) + ("; ..." if len(refused) > 4 else "") + ")")
    tail = f"; not probed: {', '.join(refused[:3])}" if refused else ""
    return ctx.verdict(f"{len(probed)} input(s) took shell payloads and none ran ({', '.join(probed[:6])}"
                       f"{', ...' if len(probed) > 6 else ''}; {time.monotonic() - started:.1f} s){tail}",
                       evidence=evidence[:8])
