"""errors.sql_injection: a quote in a string parameter must not reach the SQL.

For GET operations with a string path or query parameter, three values are sent beside a control value that
surely matches nothing: a lone quote (a database error in the answer is error-based evidence), and the pair
`x' OR '1'='1` / `x' AND '1'='2` (boolean-based: the first finds data the control and the second do not). A
verdict needs the difference to be the injection's: the control answers like the false branch, and the true
branch answers 2xx with data. Nothing is written: only GETs are sent.
"""

from __future__ import annotations

import re
import secrets
from typing import Any
from urllib.parse import quote

from ..models import Evidence, Finding, Operation
from ..probe import Exchange
from .operations import ok, status_text
from .objects import items_of
from .registry import CheckContext, check

MAX_OPERATIONS = 8
SQL_ERRORS = re.compile(
    r"sqlite3?\.|OperationalError|ProgrammingError|SQL syntax|syntax error at or near|unrecognized token|"
    r"unterminated quoted string|SQLSTATE|psycopg2?\.|pg_query|mysql_fetch|MySQLSyntaxErrorException|ORA-\d{5}|"
    r"near \"[^\"]*\": syntax error|SequelizeDatabaseError|QueryFailedError|knex:|ER_PARSE_ERROR", re.I)
_HINT = ("Never build SQL from strings: pass values as parameters (`cursor.execute(\"SELECT ... WHERE name = ?\", "
         "(name,))`, SQLAlchemy `select(User).where(User.name == name)` or `text(\"... :name\")` with bind params, "
         "node-postgres `pool.query('... WHERE name = $1', [name])`).")


def _targets(ctx: CheckContext) -> list[tuple[Operation, str, str]]:
    """(operation, parameter, where: "path" or "query") for string parameters of GETs."""
    found = []
    for op in ctx.api.operations:
        if op.method != "GET":
            continue
        for param in op.parameters:
            kind = (param.get("schema") or {}).get("type", "string")
            if param.get("in") in ("path", "query") and kind == "string" and not (param.get("schema") or {}).get(
                    "enum") and (param.get("schema") or {}).get("format") not in ("uuid", "date", "date-time"):
                found.append((op, str(param.get("name")), str(param.get("in"))))
                break
    return found[:MAX_OPERATIONS]


def _send(ctx: CheckContext, op: Operation, name: str, where: str, value: str, headers: dict[str, str]) -> Exchange:
    if where == "path":
        path = re.sub(r"\{" + re.escape(name) + r"\}", quote(value, safe=""), op.path)
        path = re.sub(r"\{[^}/]+\}", "1", path)  # any other parameter: a plain value
        return ctx.prober.request("GET", path, headers=headers)
    return ctx.prober.request("GET", re.sub(r"\{[^}/]+\}", "1", op.path), params={name: value}, headers=headers)


def _has_data(exchange: Exchange) -> bool:
    """A 2xx with objects in it: a non-empty list (bare or in an envelope), or one object that is no empty list's
    envelope (`{"items": [], "total": 0}` holds nothing)."""
    body: Any = exchange.json()
    if not ok(exchange) or not body:
        return False
    if items_of(body):
        return True
    return isinstance(body, dict) and not any(isinstance(v, list) for v in body.values())


@check("errors.sql_injection", area="errors", title="A quote in a parameter never reaches the SQL",
       needs=("service", "spec"))
def sql_injection(ctx: CheckContext):
    targets = _targets(ctx)
    if not targets:
        return ctx.not_applicable("no GET takes a free-text string parameter (path or query)")
    headers = ctx.auth_headers()
    findings: list[Finding] = []
    evidence: list[Evidence] = []
    probed = 0
    for op, name, where in targets:
        marker = f"pgnosuch{secrets.token_hex(3)}"
        control = _send(ctx, op, name, where, marker, headers)
        if control.status is None or control.status in (401, 403, 429):
            continue  # no answer, or not reachable with the grader's credentials: nothing to compare with
        probed += 1
        quoted = _send(ctx, op, name, where, f"{marker}'\"", headers)
        true = _send(ctx, op, name, where, f"{marker}' OR '1'='1", headers)
        false = _send(ctx, op, name, where, f"{marker}' AND '1'='2", headers)
        leaked = next((e for e in (quoted, true, false) if SQL_ERRORS.search(e.text[:5000] if e.status else "")), None)
        boolean = _has_data(true) and not _has_data(control) and false.status == control.status
        if boolean or leaked is not None:
            how = ("`' OR '1'='1` in it returned data that the same value without it did not (boolean-based)"
                   if boolean else f"a quote in it made the database error show in the answer ({status_text(leaked)})")
            chain = [control.evidence("the control: a value that matches nothing"),
                     (true if boolean else leaked).evidence("the injected value")]
            if boolean:
                chain.append(false.evidence("the false branch answers like the control"))
            findings.append(ctx.fail(
                "sql_injection", "critical" if boolean else "high",
                f"{op.label}: the {where} parameter `{name}` reaches the SQL: {how} (OWASP API8:2023, CWE-89).",
                operation=op.label, hint=_HINT, evidence=chain))
        else:
            evidence.append(true.evidence(f"{op.label} with `{name}` = x' OR '1'='1: no effect ({status_text(true)}, "
                                          f"the control {status_text(control)})"))
    if not probed:
        return ctx.skip("no GET with a string parameter answered the control request")
    return ctx.verdict(f"sent a quote and a boolean pair in the string parameter of {probed} GET operation(s)",
                       findings, evidence=evidence, score=1 - len(findings) / probed)
