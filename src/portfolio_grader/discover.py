"""discover: find and validate the OpenAPI document, then describe the API's operations and resources."""

from __future__ import annotations

import json
import re
import secrets
from pathlib import Path
from typing import Any

from urllib.parse import urlsplit

import yaml

from .authflow import has_password, infer_auth
from .models import ApiModel, ManifestResource, Operation, RepoFacts, Resource, SpecIssue
from .probe import Prober

# Where frameworks serve their spec: FastAPI, Flask-smorest/apispec, springdoc, swagger-jsdoc/-ui-express,
# NestJS, drf-spectacular, ASP.NET.
SERVED_SPEC_PATHS = (
    "/openapi.json", "/openapi.yaml", "/swagger.json", "/api-docs", "/api-docs.json", "/api-docs/swagger.json",
    "/v3/api-docs", "/v2/api-docs", "/docs/openapi.json", "/docs.json", "/docs-json", "/api/openapi.json",
    "/api/docs/openapi.json", "/api/v1/openapi.json", "/swagger/v1/swagger.json", "/openapi", "/api/schema/",
    "/schema", "/swagger.yaml", "/api/swagger.json", "/api-json", "/swagger/doc.json",  # NestJS, Go swag
)
MAX_SPEC_BYTES = 5 * 1024 * 1024
MAX_VALIDATION_ERRORS = 50
_METHODS = ("get", "post", "put", "patch", "delete")
# collections that hold the API's plumbing, not the data a user or tenant owns
PLUMBING = re.compile(r"api[-_]?keys?|/keys\b|/tokens?\b|webhooks?|/hooks\b|/usage\b|/auth\b|log-?in|regist|"
                      r"sign-?(?:up|in)|/sessions?\b|/users?\b|/me\b|/admin\b|/health|/metrics", re.I)


class SpecLoadError(Exception):
    pass


def discover(facts: RepoFacts, prober: Prober | None) -> ApiModel:
    """The spec the service serves (preferred: it is what runs) or one in the repo, validated and described."""
    spec, source, problems = None, None, []
    manifest_spec = facts.manifest.spec if facts.manifest else None
    candidates: list[tuple[str, str]] = []  # ("served", path) or ("file", relative path)
    if manifest_spec:
        is_url_path = manifest_spec.startswith("/") and not (facts.root and (facts.root / manifest_spec.lstrip("/")).is_file())
        candidates.append(("served" if is_url_path else "file", manifest_spec))
    candidates += [("served", p) for p in SERVED_SPEC_PATHS if p != manifest_spec]
    candidates += [("file", f) for f in facts.spec_files]

    for where, location in candidates:
        try:
            if where == "served":
                if prober is None:
                    continue
                spec = _load_served(prober, location)
                source = f"served at {location}"
            elif facts.root is not None:
                spec = _load_file(facts.root, location)
                source = f"file {location}"
        except SpecLoadError as exc:  # a document that is there but cannot be used: say why (too big, a link out)
            problems.append(f"{location}: {exc}")
            continue
        if spec is not None:
            break

    unknown = _unknown_route_fingerprint(prober) if prober else None
    if spec is None:
        looked = "the service at " + ", ".join(SERVED_SPEC_PATHS[:6]) + ", ..." if prober else "no running service"
        reason = "; ".join(problems) or f"looked at {looked} and the repo files {facts.spec_files or '(none found)'}"
        return ApiModel(base_url=prober.base_url if prober else None, spec_problem=reason,
                        unknown_route_fingerprint=unknown)

    base_url = prober.base_url + server_path(spec) if prober else None
    version = str(spec.get("openapi") or spec.get("swagger") or "")
    errors = validate_spec(spec)
    operations = describe_operations(spec) if version.startswith("3") else []
    held_out = held_out_operations(operations, facts.manifest.exclude if facts.manifest else [])
    operations = [op for op in operations if op.label not in held_out]
    auth, auth_problem = infer_auth(operations, spec, facts.manifest)
    declared, declaration_problems = declared_resources(operations, facts.manifest.declared_resources
                                                        if facts.manifest else [])
    return ApiModel(
        base_url=base_url,
        spec=spec,
        spec_source=source,
        spec_version=version,
        spec_errors=errors,
        operations=operations,
        resources=declared + [r for r in find_resources(operations, facts.manifest.resources if facts.manifest else [])
                              if r.collection not in {d.collection for d in declared}],
        notes=declaration_problems,
        unknown_route_fingerprint=unknown,
        auth=auth,
        auth_problem=auth_problem,
        held_out=held_out,
        not_fuzzed=bulk_deletes(operations),
    )


def server_path(spec: dict) -> str:
    """The path part of the spec's first server (`/api/v1`): the host is ignored, the mount point is not."""
    if isinstance(spec.get("basePath"), str):  # Swagger 2
        url = spec["basePath"]
    else:
        servers = spec.get("servers") if isinstance(spec.get("servers"), list) else []
        url = servers[0].get("url", "") if servers and isinstance(servers[0], dict) else ""
    if not isinstance(url, str) or "{" in url:  # templated servers: no reliable mount point
        return ""
    return urlsplit(url).path.rstrip("/")


def _load_served(prober: Prober, path: str) -> dict | None:
    exchange = prober.request("GET", path, headers={"Accept": "application/json, application/yaml;q=0.9"},
                              read_limit=MAX_SPEC_BYTES)  # real specs of big APIs run to megabytes
    exchange.source = "discover"
    if exchange.status != 200 or not exchange.body or exchange.truncated:
        if exchange.truncated:
            raise SpecLoadError(f"larger than {MAX_SPEC_BYTES // 2**20} MiB")
        return None
    return _parse_spec_text(exchange.text)


def _load_file(root: Path, rel: str) -> dict | None:
    path = (root / rel).resolve()
    if not path.is_relative_to(root.resolve()) or not path.is_file():
        raise SpecLoadError("not a file inside the repository")
    if path.stat().st_size > MAX_SPEC_BYTES:
        raise SpecLoadError(f"over {MAX_SPEC_BYTES // 2**20} MiB")
    return _parse_spec_text(path.read_text(encoding="utf-8", errors="replace"))


def _parse_spec_text(text: str) -> dict | None:
    try:
        data = json.loads(text)
    except ValueError:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError:
            return None
    if isinstance(data, dict) and ("openapi" in data or "swagger" in data) and isinstance(data.get("paths", {}), dict):
        return data
    return None


def validate_spec(spec: dict) -> list[SpecIssue]:
    """Every error openapi-spec-validator finds (its iterator stops at an unresolvable $ref)."""
    from openapi_spec_validator.shortcuts import get_validator_cls
    from openapi_spec_validator.validation.exceptions import OpenAPIValidationError
    from referencing.exceptions import Unresolvable

    issues: list[SpecIssue] = []
    try:
        validator = get_validator_cls(spec)(spec)
        for err in validator.iter_errors():
            where = "/".join(map(str, getattr(err, "absolute_path", []) or [])) or None
            issues.append(SpecIssue(message=str(getattr(err, "message", err)), path=where))
            if len(issues) >= MAX_VALIDATION_ERRORS:
                break
    except Unresolvable as exc:
        issues.append(SpecIssue(message=f"unresolvable $ref: {exc}"))
    except (OpenAPIValidationError, RecursionError, ValueError, KeyError, TypeError) as exc:
        issues.append(SpecIssue(message=f"{type(exc).__name__}: {exc}"))
    return issues


MAX_REF_HOPS = 12  # `$ref`s followed in one chain: far more than real schemas nest, and a bound on expansion
MAX_NESTING = 100  # plain nesting: a hostile spec nested deeper is cut, never a RecursionError


def resolve_refs(node: Any, spec: dict, _refs: tuple[str, ...] = (), _depth: int = 0) -> Any:
    """Inline local `#/...` references. A reference to a schema being expanded on the same path (a recursive
    schema: a comment's replies are comments) is cut to `{}`, as is a chain of more than MAX_REF_HOPS; plain
    nesting is never cut short of MAX_NESTING, however deep a schema's objects go."""
    if _depth > MAX_NESTING:
        return {}
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/"):
            if ref in _refs or len(_refs) >= MAX_REF_HOPS:
                return {}
            target: Any = spec
            for part in ref[2:].split("/"):
                part = part.replace("~1", "/").replace("~0", "~")
                target = target.get(part, {}) if isinstance(target, dict) else {}
            return resolve_refs(target, spec, (*_refs, ref), _depth + 1)
        return {k: resolve_refs(v, spec, _refs, _depth + 1) for k, v in node.items()}
    if isinstance(node, list):
        return [resolve_refs(v, spec, _refs, _depth + 1) for v in node]
    return node


def describe_operations(spec: dict) -> list[Operation]:
    operations = []
    global_security = requires_credentials(spec.get("security"))
    for path, item in (spec.get("paths") or {}).items():
        if not isinstance(item, dict):
            continue
        shared_params = item.get("parameters") or []
        for method in _METHODS:
            op = item.get(method)
            if not isinstance(op, dict):
                continue
            body = resolve_refs(op.get("requestBody") or {}, spec)
            content = body.get("content") or {} if isinstance(body, dict) else {}
            json_type = next((ct for ct in content if "json" in ct), None)
            responses = {}
            for status, response in (op.get("responses") or {}).items():
                response = resolve_refs(response, spec) if isinstance(response, dict) else {}
                rcontent = response.get("content") or {}
                rjson = next((ct for ct in rcontent if "json" in ct), None)
                responses[str(status)] = {"schema": (rcontent.get(rjson) or {}).get("schema") if rjson else None,
                                          "content_types": list(rcontent)}
            security = op.get("security")
            operations.append(Operation(
                method=method.upper(),
                path=path,
                operation_id=op.get("operationId"),
                tags=[t for t in op.get("tags") or [] if isinstance(t, str)],
                summary=str(op.get("summary") or op.get("description") or "")[:200],
                parameters=resolve_refs(shared_params + (op.get("parameters") or []), spec),
                request_schema=(content.get(json_type) or {}).get("schema") if json_type else None,
                request_form_schema=next((c.get("schema") for ct, c in content.items()
                                          if ct.startswith(("application/x-www-form-urlencoded", "multipart/form-data"))
                                          and isinstance(c, dict)), None),
                request_content_types=list(content),
                responses=responses,
                security=requires_credentials(security) if security is not None else global_security,
            ))
    return operations


# Words of an operation that resets or wipes the API's data: calling it mid-grade would destroy the test users
# and objects every later probe stands on (`GET /createdb` "creates and populates the database").
_RESET_TOKENS = {"createdb", "initdb", "resetdb", "dropdb", "seeddb", "reseed", "seed", "populate", "purge", "wipe",
                 "truncate", "nuke", "flushdb", "flushall", "dropall"}
_RESET_VERB = r"(?:re-?)?(?:create|init(?:iali[sz]e)?|reset|drop|clear|flush|wipe|purge|truncate|populate|seed|empty)"
_RESET_WHAT = r"(?:db|database|tables?|data|everything|dummy data|sample data|seed data)"
_RESET_WORDS = re.compile(rf"\b{_RESET_VERB}s?(?: and {_RESET_VERB}s?)?\b(?: the| all| of)*[ -_]?{_RESET_WHAT}\b", re.I)


def held_out_operations(operations: list[Operation], exclude: list[str]) -> dict[str, str]:
    """{label: why} of the operations no probe may call: those the manifest excludes, and those whose path,
    operationId or summary says they reset or wipe the data."""
    held: dict[str, str] = {}
    wanted = [line.strip().split(None, 1) for line in exclude if line.strip()]
    for op in operations:
        for parts in wanted:
            method, path = (parts[0].upper(), parts[1].strip()) if len(parts) == 2 else ("*", parts[0])
            if path == op.path and method in ("*", op.method):
                held[op.label] = "the manifest's `exclude:` lists it"
        if op.label in held:
            continue
        words = " ".join([op.path, op.operation_id or "", op.summary])
        tokens = {t.lower() for t in re.split(r"[^A-Za-z0-9]+", f"{op.path} {op.operation_id or ''}") if t}
        reset = sorted(tokens & _RESET_TOKENS)
        said = _RESET_WORDS.search(re.sub(r"(?<=[a-z])(?=[A-Z])|[_.]", " ", words))
        word = reset[0] if reset else said.group(0) if said else None
        if word is not None:
            held[op.label] = (f"it looks like it resets or seeds the data ({word!r}): "
                              "calling it mid-grade would wipe the test users and objects; `setup:` can run it once "
                              "before the grade")
    return held


def bulk_deletes(operations: list[Operation]) -> dict[str, str]:
    """{label: why} of DELETEs on a whole collection (no path parameter at its end, beside a GET or POST on the
    same path): the fuzzer would empty the collection the other probes' objects live in."""
    by_path = {(op.method, op.path) for op in operations}
    return {op.label: "it deletes a whole collection; the fuzzer would empty it under the other probes"
            for op in operations
            if op.method == "DELETE" and not op.path.rstrip("/").endswith("}")
            and ({("GET", op.path), ("POST", op.path)} & by_path)}


def requires_credentials(requirements: Any) -> bool:
    """Does an OpenAPI `security` list demand credentials? An empty requirement (`{}`) among the alternatives
    makes them optional: drf-spectacular writes `security: [{}]` on every operation of a public DRF API."""
    return (isinstance(requirements, list) and bool(requirements)
            and all(isinstance(r, dict) and r for r in requirements))


def find_resources(operations: list[Operation], manifest_collections: list[str]) -> list[Resource]:
    """Collections with a POST that creates and a GET on `<collection>/{param}` that reads one item, or writes
    there (PUT, PATCH, DELETE) and a list GET on the collection to find the object again."""
    by_path: dict[str, dict[str, Operation]] = {}
    for op in operations:
        by_path.setdefault(op.path, {})[op.method] = op
    resources = []
    for path, ops in by_path.items():
        create = ops.get("POST")
        if create is None or "{" in path.rsplit("/", 1)[-1]:
            continue
        if manifest_collections and path not in manifest_collections:
            continue
        items = [(item_path, item_ops, match) for item_path, item_ops in by_path.items()
                 if (match := re.fullmatch(re.escape(path.rstrip("/")) + r"/\{([^}/]+)\}/?", item_path))]
        # An item GET reads one object; without one, the list finds it again, so writes on the item still count
        # (for the API's data: keys and webhooks that are only listed and revoked have checks of their own).
        item = next((i for i in items if "GET" in i[1]), None) or next(
            (i for i in items if ops.get("GET") and i[1].keys() & {"PUT", "PATCH", "DELETE"}
             and not PLUMBING.search(path)), None)
        if item is not None:
            item_path, item_ops, match = item
            resources.append(Resource(
                collection=path,
                item=item_path,
                id_param=match.group(1),
                id_field=_id_field(create, match.group(1)),
                create=create,
                read=item_ops.get("GET"),
                update=(item_ops.get("PUT") or item_ops.get("PATCH") or _query_addressed(ops, "PUT", "PATCH")
                        or _toggle(by_path, path)),
                delete=item_ops.get("DELETE") or _query_addressed(ops, "DELETE"),
                list=ops.get("GET"),
            ))
    taken = {op.path for r in resources for op in (r.create, r.read, r.update, r.delete, r.list) if op}
    for resource in find_verb_resources(operations, taken):
        if (not manifest_collections or resource.collection in manifest_collections) and not (
                PLUMBING.search(resource.collection) or has_password(resource.create)):  # a sign-up is no data
            resources.append(resource)
    return resources


def declared_resources(operations: list[Operation], declared: list[ManifestResource]) -> tuple[list[Resource], list[str]]:
    """The resources the manifest spells out, made of the spec's operations; a declaration naming an operation the
    spec does not have is left out, and the scorecard note says which and why."""
    by_label = {op.label: op for op in operations}

    def named(label: str | None, *defaults: str) -> Operation | None:
        if label:
            method, _, path = label.strip().partition(" ")
            return by_label.get(f"{method.upper()} {path.strip()}")
        return next((by_label[x] for x in defaults if x in by_label), None)

    resources, problems = [], []
    for d in declared:
        where = f"the manifest's resource {d.collection}"
        params = re.findall(r"\{([^}/]+)\}", d.item)
        if len(params) != 1 or re.search(r"\{", d.collection):
            problems.append(f"{where} was left out: its item path {d.item} must hold exactly one {{parameter}} (the "
                            "object's id) and its collection none")
            continue

        ops = {"create": named(d.create, f"POST {d.collection}"), "list": named(d.list, f"GET {d.collection}"),
               "read": named(d.read, f"GET {d.item}"), "update": named(d.update, f"PUT {d.item}", f"PATCH {d.item}"),
               "delete": named(d.delete, f"DELETE {d.item}")}
        unknown = [f"{role}: {label}" for role, label in (("create", d.create), ("list", d.list), ("read", d.read),
                   ("update", d.update), ("delete", d.delete)) if label and ops[role] is None]
        create = ops["create"]
        if unknown or create is None:
            missing = "; ".join(unknown) or f"create: POST {d.collection}"
            problems.append(f"{where} was left out: the spec has no operation {missing} (the spec's operations are "
                            "named 'METHOD /path' as documented)")
            continue
        resources.append(Resource(collection=d.collection, item=d.item, id_param=params[0], id_field=d.id,
                                  create=create, read=ops["read"], update=ops["update"], delete=ops["delete"],
                                  list=ops["list"]))
    return resources, problems


# Verb-style routes (`/tarefa/criar`, `/getTask/{id}`, `/items/create`) in the languages learner projects use.
_VERBS = {
    "create": "create criar crear creer créer erstellen add adicionar agregar anadir new novo nuevo nouveau "
              "cadastrar insert inserir insertar save salvar guardar",
    "list": "list listar lister all getall findall listall buscartodos buscartodas obtenertodos index lista",
    "read": "get buscar obtener obter find findone findbyid read show ver view detail details detalhe detalle "
            "consultar fetch retrieve getbyid one",
    "update": "update alterar actualizar atualizar modifier modificar edit editar change aendern ändern "
              "aktualisieren mettreajour",
    "delete": "delete deletar eliminar borrar supprimer löschen loeschen remove remover excluir apagar destroy",
}
_VERB_OF = {word: verb for verb, words in _VERBS.items() for word in words.split()}
# the verb glued to its noun: `getTask`, `buscarTarefa`, `create_item` (a capital or a separator must follow it,
# so `address` and `news` are no verbs)
_CAMEL_VERB = re.compile(r"^((?i:" + "|".join(sorted((w for w in _VERB_OF if w.isascii()), key=len, reverse=True))
                         + r"))(?:[-_]+|(?=[A-Z]))(\w[\w-]*)$")


def _verb_route(path: str) -> tuple[str, str, int] | None:
    """(verb, the noun the route is about, how many path parameters) of a verb-style route, else None:
    `/tarefa/buscarTarefa/{id}` -> ("read", "tarefa", 1), `/items/create` -> ("create", "item", 0)."""
    literals = [seg for seg in path.strip("/").split("/") if seg and not seg.startswith("{")]
    params = len(re.findall(r"\{[^}/]+\}", path))
    for index, seg in enumerate(literals):
        flat = re.sub(r"[-_]", "", seg).lower()
        verb, noun = _VERB_OF.get(flat), ""
        if verb is None and (match := _CAMEL_VERB.match(seg)):
            verb = _VERB_OF[match.group(1).lower()]
            noun = re.sub(r"(?i)^(all|one|by_?id)|(by_?id|all)$", "", match.group(2))
        if verb is not None:
            rest = literals[:index] + literals[index + 1:]
            key = "/".join(rest) if rest else noun
            if key:
                return verb, re.sub(r"s$", "", key.lower().replace("-", "").replace("_", "")), params
    return None


def find_verb_resources(operations: list[Operation], taken: set[str]) -> list[Resource]:
    """Resources whose routes name their verb (`POST /tarefa/criar`, `GET /tarefa/buscar/{id}`, `PUT
    /tarefa/alterar/{id}`, `DELETE /tarefa/deletar/{id}`, `GET /tarefa/listar`): a create plus a way to read it."""
    groups: dict[str, dict[str, Operation]] = {}
    plain: list[tuple[str, str, int, Operation]] = []  # REST-style routes may complete a verb-style group
    for op in operations:
        if op.path in taken:
            continue
        parsed = _verb_route(op.path)
        if parsed is None:
            literals = [seg for seg in op.path.strip("/").split("/") if seg and not seg.startswith("{")]
            verb = {"GET": "read", "PUT": "update", "PATCH": "update", "DELETE": "delete"}.get(op.method)
            if verb and literals:
                key = re.sub(r"s$", "", "/".join(literals).lower().replace("-", "").replace("_", ""))
                plain.append((verb, key, len(re.findall(r"\{[^}/]+\}", op.path)), op))
            continue
        verb, key, params = parsed
        role = {("create", 0): "create", ("list", 0): "list", ("read", 0): "list", ("read", 1): "read",
                ("update", 1): "update", ("delete", 1): "delete"}.get((verb, min(params, 2)))
        fits = {"create": op.method == "POST", "list": op.method == "GET", "read": op.method == "GET",
                "update": op.method in ("PUT", "PATCH", "POST"), "delete": op.method in ("DELETE", "POST", "GET")}
        if role and fits[role]:
            groups.setdefault(key, {}).setdefault(role, op)
    for verb, key, params, op in plain:
        role = {("read", 0): "list", ("read", 1): "read", ("update", 1): "update", ("delete", 1): "delete"}.get(
            (verb, params))
        if role and key in groups:
            groups[key].setdefault(role, op)
    resources = []
    for ops in groups.values():
        create, by_id = ops.get("create"), ops.get("read") or ops.get("update") or ops.get("delete")
        if create is None or by_id is None or not (ops.get("read") or ops.get("list")):
            continue
        param = re.findall(r"\{([^}/]+)\}", by_id.path)[0]
        resources.append(Resource(collection=create.path, item=by_id.path, id_param=param,
                                  id_field=_id_field(create, param), create=create, read=ops.get("read"),
                                  update=ops.get("update"), delete=ops.get("delete"), list=ops.get("list")))
    return resources


# A bodiless state change on one object (`PATCH /tasks/toggle/{id}`, `POST /tasks/{id}/complete`): the
# resource's update when it has no PUT or PATCH of its own.
_TOGGLE_WORDS = ("toggle complete completed done undone finish finished finalizar concluir completar marcar mark "
                 "check uncheck archive").split()


def _toggle(by_path: dict[str, dict[str, Operation]], collection: str) -> Operation | None:
    base = re.escape(collection.rstrip("/"))
    words = "|".join(_TOGGLE_WORDS)
    for path, ops in by_path.items():
        if re.fullmatch(rf"(?i){base}/(?:(?:{words})/\{{[^}}/]+\}}|\{{[^}}/]+\}}/(?:{words}))/?", path):
            found = ops.get("PATCH") or ops.get("PUT") or ops.get("POST")
            if found is not None:
                return found
    return None


def query_id(op: Operation) -> str | None:
    """The query parameter that names the object a collection-level write acts on (`PUT /todos?id=5`)."""
    return next((p["name"] for p in op.parameters if p.get("in") == "query"
                 and re.fullmatch(r"id|_id|uuid|\w+_id|\w+Id", str(p.get("name", ""))) and p.get("required")), None)


def _query_addressed(ops: dict[str, Operation], *methods: str) -> Operation | None:
    return next((ops[m] for m in methods if m in ops and query_id(ops[m])), None)


def _id_field(create: Operation, param: str) -> str:
    """The field of the created object that holds its id: `id`, the path parameter's name, or `<x>_id`."""
    schema = next((r["schema"] for s, r in sorted(create.responses.items()) if s.startswith("2") and r["schema"]), None)
    props = list((schema or {}).get("properties") or {})
    for candidate in ("id", param, "_id", "uuid", param.removesuffix("_id").removesuffix("Id") + "_id"):
        if candidate in props:
            return candidate
    if param in ((create.request_schema or {}).get("properties") or {}):
        return param  # a natural key the client chooses (`/books/{book_title}`): the create body holds it
    return next((p for p in props if p.lower().endswith("id")), "id")


def _unknown_route_fingerprint(prober: Prober) -> tuple[int, str] | None:
    """How the service answers a route that surely does not exist: tells a missing route from a missing item."""
    exchange = prober.request("GET", f"/__portfolio_grader_{secrets.token_hex(4)}/{secrets.token_hex(4)}")
    exchange.source = "discover"
    if exchange.status is None:
        return None
    return exchange.status, normalise_body(exchange.text)


def normalise_body(text: str) -> str:
    """A body with request-specific parts (paths, hex ids, numbers) blanked, to compare two error pages."""
    text = re.sub(r"/__portfolio_grader_\w+/\w+", "<path>", text[:2000])
    text = re.sub(r"/[\w/{}.-]*", "<path>", text)
    return re.sub(r"\d+", "<n>", text)
