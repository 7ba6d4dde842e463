"""The OpenAPI document: present, valid, and true to the code (no documented ghosts, no hidden routes)."""

from __future__ import annotations

import re
import shlex

from ..discover import SERVED_SPEC_PATHS, normalise_body, server_path
from ..models import Evidence, Operation
from .registry import CheckContext, check

_NOT_API = re.compile(r"^(?:/api(?:/v\d+)?)?/($|openapi|docs|redoc|swagger|api-docs|schema|favicon|static|health|healthz|"
                      r"ready|metrics)")
_MISSING_IDS = {"integer": "987654321", "number": "987654321"}


@check("contract.spec_present", area="contract", title="The API publishes an OpenAPI document")
def spec_present(ctx: CheckContext):
    api = ctx.api
    if api.spec is None and not ctx.service.up:
        return ctx.skip("the API did not run (so a served document could not be fetched) and the repository "
                        "has no openapi.* / swagger.* file")
    if api.spec is None:
        where = "served paths such as " + ", ".join(SERVED_SPEC_PATHS[:5]) if ctx.prober else "the repository"
        finding = ctx.fail("spec_missing", "high", f"No OpenAPI document was found ({api.spec_problem}).",
                           evidence=[Evidence(curl=f"curl -sS {ctx.service.base_url or ''}/openapi.json",
                                              note=f"looked at {where} and files named openapi.* / swagger.*")],
                           hint="FastAPI serves /openapi.json by itself; for Flask use flask-smorest or apispec, for "
                                "Express swagger-jsdoc + swagger-ui-express, or commit an openapi.yaml and name it "
                                "in portfolio-grader.yaml (`spec: openapi.yaml`).")
        return ctx.verdict("no OpenAPI document", [finding])
    evidence = []
    if api.spec_source and api.spec_source.startswith("served at ") and ctx.service.base_url:
        path = api.spec_source.removeprefix("served at ")
        evidence.append(Evidence(curl=f"curl -sS {ctx.service.base_url}{path}", note=f"the document ({api.spec_source})",
                                 excerpt=str(api.spec)[:400]))
    else:
        path = (api.spec_source or "").removeprefix("file ")
        evidence.append(Evidence(curl=f"cat {shlex.quote(path)}", file=path, excerpt=str(api.spec)[:400]))
    return ctx.verdict(f"OpenAPI {api.spec_version} document {api.spec_source}, {len(api.operations)} operations",
                       evidence=evidence)


@check("contract.spec_valid", area="contract", title="The OpenAPI document is valid", needs=("spec",))
def spec_valid(ctx: CheckContext):
    api = ctx.api
    command = "openapi-spec-validator --errors all " + (
        f"{ctx.service.base_url}{api.spec_source.removeprefix('served at ')}" if (api.spec_source or "").startswith("served")
        else (api.spec_source or "").removeprefix("file "))
    if not api.spec_errors and api.spec_version and api.spec_version.startswith("3"):
        return ctx.verdict(f"valid OpenAPI {api.spec_version} (openapi-spec-validator)",
                           evidence=[Evidence(curl=command, note="no validation errors")])
    issues = [f"{i.path + ': ' if i.path else ''}{i.message}" for i in api.spec_errors]
    if api.spec_version and not api.spec_version.startswith("3"):
        issues.insert(0, f"Swagger/OpenAPI {api.spec_version} is outdated; the grader exercises OpenAPI 3 documents")
    finding = ctx.fail("spec_invalid", "medium", f"The OpenAPI document has {len(issues)} validation error(s): "
                       + "; ".join(issues[:5]) + (" ..." if len(issues) > 5 else ""),
                       evidence=[Evidence(curl=command, note="every error the validator reports",
                                          excerpt="\n".join(issues[:50]))],
                       hint="Run openapi-spec-validator on the document and fix each error; generated documents "
                            "usually break where a schema keyword sits on a parameter instead of its `schema`.")
    return ctx.verdict("the document has validation errors", [finding], score=max(0.0, 1 - len(issues) / 10))


@check("contract.routes_match", area="contract", title="Documented routes exist and implemented routes are documented",
       needs=("spec",))
def routes_match(ctx: CheckContext):
    ghosts, probes = _documented_but_missing(ctx)
    hidden = _implemented_but_undocumented(ctx)
    examined = len(ctx.api.operations) + len(ctx.facts.routes_in_code)
    findings = []
    for op, exchange in ghosts:
        findings.append(ctx.fail(
            "spec_route_drift", "medium", f"{op.label} is documented but not implemented: the service answers it "
            f"{exchange.status} exactly like a route that does not exist.", operation=op.label,
            evidence=[exchange.evidence("the same answer as an unknown route")],
            hint="Implement the operation or remove it from the document; clients generated from the spec will "
                 "call it."))
    for method, path, where in hidden:
        findings.append(ctx.fail(
            "spec_route_drift", "low", f"{method} {path} is implemented ({where}) but not in the OpenAPI document.",
            operation=f"{method} {path}",
            evidence=[Evidence(curl=f"grep -n '{path}' {where.rsplit(':', 1)[0]}", file=where, note="route in code")],
            hint="Document every public route (with FastAPI make sure it is not include_in_schema=False; with a "
                 "hand-written spec add the path)."))
    how = (f"probed {len(probes)} documented operations" if probes else "no service to probe documented routes") + \
          f"; compared {len(ctx.facts.routes_in_code)} routes found in the code with the document"
    if not findings and not ctx.facts.routes_in_code:
        # the half "implemented routes are documented" saw nothing: an empty comparison proves nothing
        return ctx.skip(f"{how}: no route was found in the code (the scan reads FastAPI/Flask decorators, "
                        "Express-style `app.get(...)` and connexion operationIds), so whether every implemented "
                        "route is documented cannot be told")
    return ctx.verdict(how, findings, evidence=[e.evidence("a documented route answers") for e in probes[:2]],
                       score=1 - len(findings) / max(examined, 1) * 2)


def _documented_but_missing(ctx: CheckContext):
    """Operations whose answer is indistinguishable from the answer to a route that does not exist."""
    fingerprint = ctx.api.unknown_route_fingerprint
    if ctx.prober is None or fingerprint is None or not ctx.service.up:
        return [], []
    ghosts, probes = [], []
    for op in ctx.api.operations[:40]:
        path = _fill_path(op)
        body = {} if op.method in ("POST", "PUT", "PATCH") else None
        exchange = ctx.prober.request(op.method, path, **({"json": body} if body is not None else {}))
        probes.append(exchange)
        same_as_unknown = (exchange.status == fingerprint[0] and normalise_body(exchange.text) == fingerprint[1])
        if same_as_unknown or exchange.status == 405:
            ghosts.append((op, exchange))
    return ghosts, probes


def _fill_path(op: Operation) -> str:
    """The operation's path with ids that surely do not exist (probing must not touch real data)."""
    types = {p.get("name"): (p.get("schema") or {}).get("type") for p in op.parameters if p.get("in") == "path"}
    return re.sub(r"\{([^}]+)\}", lambda m: _MISSING_IDS.get(types.get(m.group(1)), "portfolio-grader-missing"),
                  op.path)


def _template(path: str) -> str:
    """/books/{id}, /books/<int:id>, /books/:id all become /books/{}."""
    path = re.sub(r"\{[^}]*\}|<[^>]*>|:\w+", "{}", path)
    return path.rstrip("/") or "/"


def _implemented_but_undocumented(ctx: CheckContext) -> list[tuple[str, str, str]]:
    documented = {(op.method, _template(op.path)) for op in ctx.api.operations}
    documented |= {(label.split(" ", 1)[0], _template(label.split(" ", 1)[1])) for label in ctx.api.held_out}
    # the spec's paths are relative to its server (`servers: [{url: /api}]`, Swagger's basePath); the code's are
    # whole (Django's include("api/...")): /api/projects/ is the documented /projects/ there
    mount = server_path(ctx.api.spec) if isinstance(ctx.api.spec, dict) else ""
    if mount:
        documented |= {(m, _template(mount + t)) for m, t in documented}
    hidden = []
    for method, path, where in ctx.facts.routes_in_code:
        template = _template(path)
        if _NOT_API.match(template):
            continue
        # Suffix match: routers mounted under a prefix (/api/v1) the scan cannot see are still matched; a route
        # of any method (Django's path()) is matched by its path alone.
        if not any(method in (m, "*") and (t == template or t.endswith(template)) for m, t in documented):
            hidden.append((method, path, where))
    return hidden
