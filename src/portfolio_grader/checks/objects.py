"""objects: finding an object the grader created again — its id, its item path, and reading it back, through
`GET /x/{id}` when the API has one, else through the list by id (collections with no item GET)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote, unquote, urlencode, urlsplit

from ..discover import query_id
from ..identities import fresh_object
from ..models import Operation, Resource
from ..probe import Exchange
from .operations import ok
from .registry import CheckContext

MAX_NESTED = 2  # nested collections walked besides the top-level ones: each needs a parent made first
LIMIT_PARAMETERS = ("limit", "size", "per_page", "page_size", "pageSize", "perPage", "take")


def items_of(body: Any) -> list[Any]:
    """The objects of a list response: a bare array or the array inside an envelope (`{"data": {"items": []}}`)."""
    if isinstance(body, list):
        return body
    if isinstance(body, dict):
        for key in ("items", "results", "data", "content", "records", "rows", "docs", "edges", "entries"):
            value = body.get(key)
            if isinstance(value, list):
                return value
            if isinstance(value, dict) and (inner := items_of(value)):
                return inner
        for value in body.values():
            if isinstance(value, list) and all(isinstance(v, dict) for v in value):
                return value
            if isinstance(value, dict) and (inner := items_of(value)):
                return inner
    return []


def unwrap(body: Any) -> Any:
    """The object inside a `{"data": {...}}` / `{"user": {...}}` envelope, else the body."""
    if isinstance(body, dict):
        for key in ("data", "user", "result", "item"):
            if isinstance(body.get(key), dict) and len(body) <= 3:
                return body[key]
    return body


def find_id(obj: Any, field: str) -> Any:
    """The id of an object in a response: the resource's id field, `id`, `_id` or `uuid`, also in {"data": {...}}."""
    if not isinstance(obj, dict):
        return None
    for candidate in (field, "id", "_id", "uuid"):
        if obj.get(candidate) not in (None, ""):
            return obj[candidate]
    return find_id(obj.get("data"), field)


def natural_key(resource: Resource) -> tuple[str, ...]:
    """The field a client chooses that addresses the object (`book_title` of `/books/{book_title}`), if any."""
    field = resource.id_field
    props = (resource.create.request_schema or {}).get("properties") or {}
    return (field,) if field in props and field not in ("id", "_id", "uuid") else ()


def created_id(obj: Any, sent: Any, resource: Resource) -> Any:
    """The new object's id: from the create response, else the natural key the create body chose."""
    found = find_id(obj, resource.id_field)
    if found is None and natural_key(resource) and isinstance(sent, dict):
        found = sent.get(resource.id_field)
    return found


def same(a: Any, b: Any) -> bool:
    return a is not None and b is not None and str(a) == str(b)


def fill_id(template: str, value: Any) -> str:
    """The path template with its parameter(s) filled with one id, quoted."""
    return re.sub(r"\{[^}]+\}", quote(str(value), safe=""), template)


def at(resource: Resource, op: Operation, item_id: Any = None) -> str:
    """The path to send `op` of the resource to: its parents' parameters from the walk, the rest the object's id
    (left as they are without one). Each operation has its own path (`PUT /tasks/{id}`, `POST /tarefa/alterar/{id}`,
    or `PUT /todos?id=5` for a write that takes the id in its query)."""
    def value(match: re.Match) -> str:
        name = match.group(1)
        if name in resource.parents:
            return quote(str(resource.parents[name]), safe="")
        return match.group(0) if item_id is None else quote(str(item_id), safe="")

    path = re.sub(r"\{([^}/]+)\}", value, op.path)
    by_query = query_id(op) if item_id is not None and "{" not in op.path else None
    return f"{path}?{urlencode({by_query: item_id})}" if by_query else path


def body_schema(op: Operation | None) -> dict | None:
    """The schema of the body an operation documents: JSON's, else a form's (`application/x-www-form-urlencoded`
    only, as Express specs write a body-parser API)."""
    return None if op is None else op.request_schema or op.request_form_schema


def body_args(op: Operation | None, body: Any) -> dict[str, Any]:
    """The request arguments that send `body` the way the operation documents it: JSON, or form-encoded when the
    spec documents only a form (a JSON `{}` there is a body the API never read: seen as 406 on a working create)."""
    if op is not None and op.request_schema is None and op.request_form_schema is not None and isinstance(body, dict):
        return {"content": urlencode({k: "" if v is None else v if isinstance(v, (str, int, float)) else str(v)
                                      for k, v in body.items()}),
                "headers": {"Content-Type": "application/x-www-form-urlencoded"}}
    return {"json": body}


_MISSING_OBJECT = re.compile(r"does not exist|doesn'?t exist|not found|invalid pk|no such|unknown \w+ id|"
                             r"foreign key|is not present", re.I)


def missing_reference(answer: Exchange, body: Any) -> str | None:
    """The field of `body` a refused create names as pointing at no object (`{"owner": ["Invalid pk \"3\" - object
    does not exist."]}`): the grader's made-up id, not the API, is at fault. None when the refusal says otherwise."""
    if answer.status not in (400, 404, 409, 422) or not isinstance(body, dict):
        return None
    text = answer.text[:4000]
    if not _MISSING_OBJECT.search(text):
        return None
    return next((key for key, value in body.items() if isinstance(value, (int, str)) and not isinstance(value, bool)
                 and re.search(rf"(?<![\w-]){re.escape(key)}(?![\w-])", text)
                 and (isinstance(value, int) or _REFERENCE_NAME.search(key))), None)


_REFERENCE_NAME = re.compile(r"(^|_)ids?$|[a-z0-9]Ids?$|owner|user|author|project|task|parent|category", re.I)


def marked(body: Any, marker: str) -> Any:
    """The body with the sample strings payloads made up replaced by a marker, so the object is unmistakable in a
    list or a leak. Values from the spec's examples, enums or formats are left alone (the API may validate them)."""
    if not isinstance(body, dict):
        return body
    out = dict(body)
    for key, value in body.items():
        if isinstance(value, str) and value.startswith("Sample "):  # same length: the same length limits hold
            out[key] = (f"{marker}-{re.sub(r'[^A-Za-z]+', '', key)}" + "x" * len(value))[:len(value)]
    return out


def markers_in(body: Any) -> list[str]:
    """The marker strings of a marked body that are long enough to be unmistakable in a response."""
    if not isinstance(body, dict):
        return []
    return [v for v in body.values() if isinstance(v, str) and v.startswith("pg-") and len(v) >= 10]


def limit_param(op: Operation) -> tuple[str, int] | None:
    """(name, the largest page size allowed, at most 100) of the list's page-size parameter, if it has one."""
    for param in op.parameters:
        if param.get("in") == "query" and param.get("name") in LIMIT_PARAMETERS:
            schema = param.get("schema") or {}
            maximum = schema.get("maximum")
            return param["name"], int(min(100, maximum)) if isinstance(maximum, (int, float)) else 100
    return None


@dataclass
class Sighting:
    """One read of an object: `found` (obj is what was read), `absent` (the API says it is not there) or
    `unknown` (the read failed or a partial list cannot tell)."""

    exchange: Exchange
    state: Literal["found", "absent", "unknown"]
    obj: Any = None
    by_list: bool = False  # read from the list (no item GET)

    @property
    def via(self) -> str:
        return f"{self.exchange.method} {urlsplit(self.exchange.url).path}"


def read_back(ctx: CheckContext, resource: Resource, item_id: Any, headers: dict[str, str]) -> Sighting:
    """The object as `headers`' identity sees it: `GET /x/{id}`, or its entry in the list when there is no item
    GET. Absence from a list counts only when the list is complete (no further page), so a paginated list that
    does not show the object says `unknown`, never `absent`."""
    if resource.read is not None:
        got = ctx.prober.request("GET", at(resource, resource.read, item_id), headers=headers)
        if ok(got):
            return Sighting(got, "found", unwrap(got.json()))
        return Sighting(got, "absent" if got.status in (404, 410) else "unknown")
    if not readable(resource):
        raise ValueError(f"{resource.collection} has neither an item GET nor a list")
    limit = limit_param(resource.list)
    got = ctx.prober.request("GET", at(resource, resource.list), headers=headers, params=dict([limit]) if limit else None)
    listed = items_of(got.json()) if ok(got) else None
    if listed is None:
        return Sighting(got, "unknown", by_list=True)
    obj = next((o for o in listed if same(find_id(o, resource.id_field), item_id)), None)
    if obj is not None:
        return Sighting(got, "found", obj, by_list=True)
    return Sighting(got, "unknown" if _more_pages(got.json(), listed, limit) else "absent", by_list=True)


def readable(resource: Resource) -> bool:
    """Can the grader read one object back: an item GET, or a list to find it in."""
    return resource.read is not None or resource.list is not None


def _more_pages(body: Any, listed: list, limit: tuple[str, int] | None) -> bool:
    if limit and len(listed) >= limit[1]:
        return True
    if isinstance(body, dict):
        for key in ("next", "next_page", "nextPage", "next_cursor", "nextCursor", "has_more", "hasMore", "hasNext"):
            for envelope in (body, body.get("meta"), body.get("pagination"), body.get("links")):
                if isinstance(envelope, dict) and envelope.get(key) not in (None, False, "", 0):
                    return True
    return False


def locate_created(ctx: CheckContext, resource: Resource, made: Exchange, sent: Any,
                   headers: dict[str, str]) -> tuple[Any, str]:
    """(the id of the object a successful create made, how it was found): the response body, the `Location`
    header, else the one object in the creator's list that holds the create body's markers. (None, why) if none."""
    found = created_id(unwrap(made.json()), sent, resource)
    if found is not None:
        return found, "the create response"
    location = next((v for k, v in made.headers.items() if k.lower() == "location"), None)
    if location:
        pattern = re.sub(r"\\\{[^}]+\\\}", "([^/]+)", re.escape(resource.item.rstrip("/"))) + "/?"
        match = re.search(pattern + "$", urlsplit(location).path)
        if match:
            return unquote(match.group(1)), f"the Location header ({location})"
    markers = markers_in(sent)
    if markers and resource.list is not None:
        limit = limit_param(resource.list)
        listed = ctx.prober.request("GET", at(resource, resource.list), headers=headers,
                                    params=dict([limit]) if limit else None)
        hits = [o for o in items_of(listed.json()) if isinstance(o, dict) and all(m in o.values() for m in markers)]
        if len(hits) == 1 and find_id(hits[0], resource.id_field) is not None:
            return find_id(hits[0], resource.id_field), f"the list {resource.list.label}, by the marker it was created with"
    return None, (f"the create response has no `{resource.id_field}` field, no Location header"
                  + (" and the list shows no object with the markers it was created with" if markers else ""))


def walkable(resources: list[Resource], top_level: int) -> list[Resource]:
    """The resources a probe walks: up to `top_level` top-level collections, then up to MAX_NESTED nested ones."""
    nested = [r for r in resources if "{" in r.collection]
    return [r for r in resources if "{" not in r.collection][:top_level] + nested[:MAX_NESTED]


class NoParent(Exception):
    """A nested collection whose parent object could not be made (said why)."""


@dataclass
class Bound:
    """A nested resource with its parents' path parameters filled by parents made for it, and those parents
    (outermost first) with their ids, to delete after the child."""

    resource: Resource
    parents: list[tuple[Resource, Any]]


def bind_parents(ctx: CheckContext, resource: Resource, headers: dict[str, str], marker: str) -> Bound:
    """`/projects/{project_id}/tasks` as `/projects/7/tasks`: the parent is created first, as the same user (and
    its own parents before it). A top-level resource is returned as it is."""
    prefix = resource.collection.rsplit("/", 1)[0]
    if "{" not in prefix:
        return Bound(resource, [])
    shape = re.sub(r"\{[^}]+\}", "{}", prefix.rstrip("/"))
    parent = next((r for r in ctx.api.resources
                   if re.sub(r"\{[^}]+\}", "{}", r.item.rstrip("/")) == shape and r is not resource), None)
    if parent is None:
        raise NoParent(f"{resource.collection}: no documented create for its parent ({prefix}), so no parent to "
                       "nest a new object in")
    outer = bind_parents(ctx, parent, headers, marker)
    body = marked(fresh_object(parent.create.request_schema, natural_key(parent)), marker)
    made = ctx.prober.request("POST", outer.resource.collection, json=body, headers=headers)
    parent_id, why = locate_created(ctx, outer.resource, made, body, headers) if ok(made) else (None, "")
    if parent_id is None:
        release(ctx, outer, headers)
        raise NoParent(f"{resource.collection}: creating its parent with POST {outer.resource.collection} answered "
                       f"{made.status or made.error}" + (f" ({why})" if why else ""))
    # the child names the parents' parameters in its own words (`/projects/{id}` and `/projects/{project_id}/tasks`)
    values = [*outer.resource.parents.values(), parent_id]
    parents = dict(zip(re.findall(r"\{([^}/]+)\}", prefix), values))
    bound = resource.model_copy(update={"parents": parents})
    bound = bound.model_copy(update={"collection": at(bound, Operation(method="POST", path=resource.collection)),
                                     "item": at(bound, Operation(method="GET", path=resource.item))})
    return Bound(bound, [*outer.parents, (outer.resource, parent_id)])


def release(ctx: CheckContext, bound: Bound, headers: dict[str, str]) -> None:
    """Delete the parents a bound resource was given, innermost first."""
    for parent, parent_id in reversed(bound.parents):
        if parent.delete is not None:
            ctx.prober.request("DELETE", at(parent, parent.delete, parent_id), headers=headers).source = "cleanup"
