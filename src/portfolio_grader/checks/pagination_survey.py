"""The pagination survey behind the pagination checks: seed objects, find how a list pages, walk it, probe it.

One survey per grade (`survey(ctx)`, memoised): for each top-level collection with a list operation it seeds
SEED_COUNT objects as one user, finds the pagination style (from the spec's query parameters, else by trying the
common parameter names, and from the first page: Link headers, `next` URLs, cursors), walks every page, re-reads
the first page, sends a huge, a negative and a non-numeric page size, exercises the documented filters and sorts,
and deletes what it seeded. It records what it saw; `pagination.py` judges it.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ..identities import IdentityError
from ..models import Operation, Resource
from ..payloads import valid_example
from ..probe import Exchange
from .objects import at, find_id, items_of
from .registry import CheckContext

SEED_COUNT = 25  # objects created per collection: more than two pages of PAGE_SIZE
PAGE_SIZE = 10
MAX_PAGES = 40  # pages walked per collection, at most
MAX_TARGETS = 2  # collections surveyed
HUGE = 100_000  # the page size a client should not be able to ask for
CAP = 100  # the largest page expected when the spec documents no maximum: a silent cap shows past it
SIZE_NAMES = ("limit", "size", "per_page", "perpage", "page_size", "pagesize", "take", "max_results", "maxresults",
              "count")
OFFSET_NAMES = ("offset", "skip", "start")
PAGE_NAMES = ("page", "page_number", "pagenumber", "pageno", "page_no")
CURSOR_NAMES = ("cursor", "after", "starting_after", "page_token", "pagetoken", "next_token", "nexttoken",
                "continuation_token", "continuationtoken", "next_cursor")
SORT_NAMES = ("sort", "sort_by", "sortby", "order_by", "orderby", "ordering")
DIRECTION_NAMES = ("order", "direction", "dir", "sort_order", "sortorder", "sort_dir")
SEARCH_NAMES = ("q", "search", "query", "term", "keyword", "keywords", "text")
TOTAL_KEYS = ("total", "total_count", "totalcount", "total_items", "totalitems", "totalelements",
              "total_elements", "total_results", "totalresults", "totalrecords", "total_records", "count")
PAGES_KEYS = ("pages", "total_pages", "totalpages", "page_count", "pagecount", "last_page", "lastpage")
NEXT_CURSOR_KEYS = ("next_cursor", "nextcursor", "next_page_token", "nextpagetoken", "next_token", "nexttoken",
                    "cursor", "end_cursor", "endcursor", "after")
HAS_MORE_KEYS = ("has_more", "hasmore", "has_next", "hasnext", "has_next_page", "hasnextpage", "more")
_ENVELOPES = ("meta", "pagination", "page_info", "pageinfo", "paging", "metadata", "links", "_links", "page")

# ---------------------------------------------------------------- what one survey finds


@dataclass
class Style:
    """How a list endpoint pages: by offset, page number, cursor, or next links the responses carry."""

    kind: str  # "offset" | "page" | "cursor" | "next_url" | "link" | "size_only"
    size_param: str | None = None
    position_param: str | None = None
    first_page: int = 1  # page numbering: 0- or 1-based
    documented: bool = True
    max_size: int | None = None  # the spec's maximum for the size parameter
    min_size: int | None = None
    how: str = ""

    def describe(self) -> str:
        params = "/".join(p for p in (self.position_param, self.size_param) if p)
        return f"{self.kind} pagination" + (f" ({params})" if params else "") + (
            "" if self.documented else ", not in the spec")


@dataclass
class Page:
    exchange: Exchange
    items: list[Any]
    keys: list[Any]


@dataclass
class Target:
    """One collection's survey: what was seeded, how it pages, and what the probes showed."""

    resource: Resource
    op: Operation
    headers: dict[str, str]
    seeded: list[Any] = field(default_factory=list)  # ids (or markers) of the seeded objects, in creation order
    seed_bodies: list[dict] = field(default_factory=list)
    markers: list[str] = field(default_factory=list)
    seed_problem: str | None = None
    seed_evidence: list[Exchange] = field(default_factory=list)
    baseline: Exchange | None = None
    baseline_items: list[Any] = field(default_factory=list)
    style: Style | None = None
    style_evidence: list[Exchange] = field(default_factory=list)
    pages: list[Page] = field(default_factory=list)
    page_size: int = PAGE_SIZE
    walk_complete: bool = False
    walk_problem: str | None = None
    loop: str | None = None  # the next cursor or link repeated
    reread: Page | None = None
    limits: list[tuple[str, Exchange]] = field(default_factory=list)  # (what was sent, answer)
    filters: list[tuple[str, str, Exchange, str | None]] = field(default_factory=list)  # (kind, param, answer, problem)
    filter_notes: list[str] = field(default_factory=list)
    left_behind: int = 0
    huge_collection: int = 0  # objects the collection held (at least) when the huge page size was asked for

    @property
    def label(self) -> str:
        return self.op.label


@dataclass
class Survey:
    targets: list[Target] = field(default_factory=list)
    problem: str | None = None  # why nothing could be surveyed


def survey(ctx: CheckContext) -> Survey:
    return ctx.memo("pagination.survey", lambda: _survey(ctx))


def _survey(ctx: CheckContext) -> Survey:
    out = Survey()
    candidates = [r for r in ctx.api.resources if r.list is not None and "{" not in r.collection][:MAX_TARGETS]
    if not candidates:
        out.problem = "no collection has a documented list operation (GET on the collection)"
        return out
    problems = []
    for resource in candidates:
        headers: dict[str, str] = {}
        if resource.create.security or resource.list.security:
            try:
                headers = ctx.identities(1)[0].headers(ctx.api.auth) if ctx.api.auth else {}
            except IdentityError as exc:
                problems.append(f"{resource.collection}: no test user to own the objects ({exc})")
                continue
            if not headers:
                problems.append(f"{resource.collection} needs credentials and no way to log in was found")
                continue
        target = Target(resource, resource.list, headers)
        try:
            _seed(ctx, target)
            if target.seed_problem is None:
                _probe(ctx, target)
        finally:
            _cleanup(ctx, target)
        out.targets.append(target)
    if not out.targets:
        out.problem = "; ".join(problems)
    return out


# ---------------------------------------------------------------- seeding and cleanup


def _marked(body: Any, marker: str) -> Any:
    """The sample strings of a body prefixed with a marker of the same total length (length limits still hold)."""
    if not isinstance(body, dict):
        return body
    out = dict(body)
    for key, value in body.items():
        if isinstance(value, str) and value.startswith("Sample ") and len(value) >= len(marker) + 2:
            out[key] = (f"{marker} {value}")[:len(value)]
    return out


def _seed(ctx: CheckContext, target: Target) -> None:
    schema = target.resource.create.request_schema
    tag = re.sub(r"[^a-z0-9]", "", ctx.run_tag.lower())[:4]
    for i in range(SEED_COUNT):
        rank = (i * 7) % SEED_COUNT  # markers sort in another order than creation: sorting is visible
        marker = f"pg{tag}q{rank:02d}"
        body = _marked(valid_example(schema, variant=i + 1) if schema else {}, marker)
        created, item_id = _create(ctx, target, body)
        if not (created.status and 200 <= created.status < 300):
            if not target.seeded:
                target.seed_problem = (f"POST {target.resource.collection} with a schema-valid body answered "
                                       f"{created.status or created.error}: nothing to page through")
                target.seed_evidence.append(created)
            break
        target.seeded.append(item_id if item_id is not None else marker)
        target.seed_bodies.append(body)
        target.markers.append(marker)
        if i == 0:
            target.seed_evidence.append(created)
    if target.seeded and len(target.seeded) < SEED_COUNT:
        target.seed_problem = (f"only {len(target.seeded)} of {SEED_COUNT} objects could be created "
                               f"(POST {target.resource.collection} then answered {created.status or created.error})")
        target.seed_evidence.append(created)


def _create(ctx: CheckContext, target: Target, body: Any) -> tuple[Exchange, Any]:
    """POST one object: (the answer, the new object's id, or None when it was refused or names no id)."""
    created = ctx.prober.request("POST", target.resource.collection, json=body, headers=target.headers)
    if not (created.status and 200 <= created.status < 300):
        return created, None
    obj = created.json()
    if isinstance(obj, dict) and isinstance(obj.get("data"), dict):
        obj = obj["data"]
    return created, find_id(obj, target.resource.id_field)


def _cleanup(ctx: CheckContext, target: Target) -> None:
    delete = target.resource.delete
    ids = [s for s, m in zip(target.seeded, target.markers) if s != m]
    if delete is None:
        target.left_behind = len(target.seeded)
        return
    _delete(ctx, target, ids)
    target.left_behind += len(target.seeded) - len(ids)


# ---------------------------------------------------------------- reading list responses


def _lower_keys(body: Any) -> dict[str, Any]:
    return {str(k).lower(): v for k, v in body.items()} if isinstance(body, dict) else {}



def metadata(body: Any) -> dict[str, Any]:
    """Top-level keys and those of the usual metadata envelopes, lower-cased (the nearer wins)."""
    top = _lower_keys(body)
    merged: dict[str, Any] = {}
    for env in _ENVELOPES:
        merged.update(_lower_keys(top.get(env)))
    merged.update({k: v for k, v in top.items() if not isinstance(v, list)})
    return merged


def as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def reported_total(exchange: Exchange) -> int | None:
    meta = metadata(exchange.json())
    for key in TOTAL_KEYS:
        if (n := as_int(meta.get(key))) is not None:
            return n
    header = next((v for k, v in exchange.headers.items() if k.lower() in ("x-total-count", "x-total")), None)
    return as_int(header)


def echo_of(exchange: Exchange, name: str | None) -> int | None:
    """The value of parameter `name` the response says it applied (`"limit": 10`), if it says so."""
    if not name:
        return None
    return as_int(metadata(exchange.json()).get(name.lower()))


def link_next(exchange: Exchange) -> str | None:
    header = next((v for k, v in exchange.headers.items() if k.lower() == "link"), "")
    for part in header.split(","):
        match = re.search(r"<([^>]+)>\s*;.*rel\s*=\s*\"?([^\";]+)", part)
        if match and "next" in match.group(2).split():
            return match.group(1)
    return None


def next_url(exchange: Exchange) -> str | None:
    """A `next` URL or path in the body (Django REST framework, HAL, JSON:API)."""
    meta = metadata(exchange.json())
    for key in ("next", "next_url", "nexturl", "next_page_url", "nextpageurl", "next_link"):
        value = meta.get(key)
        if isinstance(value, dict):
            value = value.get("href")
        if isinstance(value, str) and (value.startswith(("/", "http://", "https://", "?"))):
            return value
    return None


def next_cursor(exchange: Exchange) -> str | None:
    meta = metadata(exchange.json())
    for key in NEXT_CURSOR_KEYS:
        value = meta.get(key)
        if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value) not in ("", "null"):
            return str(value)
    return None


def has_more(exchange: Exchange) -> bool | None:
    """What the response says about a next page: True, False, or None when it says nothing."""
    if link_next(exchange) or next_url(exchange) or next_cursor(exchange):
        return True
    meta = metadata(exchange.json())
    for key in HAS_MORE_KEYS:
        if isinstance(meta.get(key), bool):
            return meta[key]
    if any(k in meta for k in ("next", "next_cursor", "nextcursor", "next_page_token", "nextpagetoken")):
        return False  # present and null: the last page
    return None


def item_key(target: Target, item: Any) -> Any:
    """What identifies an item across pages: its id, else the seed marker it carries, else its JSON."""
    if isinstance(item, dict):
        item_id = find_id(item, target.resource.id_field)
        if item_id is not None:
            return item_id
    text = json.dumps(item, sort_keys=True, default=str)
    return next((m for m in target.markers if m in text), text)


def _page(target: Target, exchange: Exchange) -> Page:
    items = items_of(exchange.json())
    return Page(exchange, items, [item_key(target, i) for i in items])


def _get(ctx: CheckContext, target: Target, params: dict[str, Any] | None = None, url: str | None = None) -> Exchange:
    return ctx.prober.request("GET", url or target.op.path, params=params, headers=target.headers)


def _same_origin_url(ctx: CheckContext, target: Target, link: str) -> str:
    """A next link as a URL on the service under grade: the host an API reports about itself (0.0.0.0:8000,
    testserver) is not where the grader reaches it, so only the path and query are kept."""
    parts = urlsplit(link)
    if not parts.path and parts.query:  # "?page=2": the same path
        return target.op.path + "?" + parts.query
    origin = urlsplit(ctx.prober.base_url)
    return f"{origin.scheme}://{origin.netloc}{parts.path}" + (f"?{parts.query}" if parts.query else "")


# ---------------------------------------------------------------- the probes


def _query_params(op: Operation) -> dict[str, dict]:
    return {str(p.get("name")): p for p in op.parameters if p.get("in") == "query" and p.get("name")}


def _find(params: dict[str, dict], names: tuple[str, ...]) -> str | None:
    by_lower = {n.lower(): n for n in params}
    return next((by_lower[n] for n in names if n in by_lower), None)


def _bounds(param: dict | None) -> tuple[int | None, int | None, Any]:
    schema = (param or {}).get("schema") or {}
    return as_int(schema.get("minimum")), as_int(schema.get("maximum")), schema.get("default")


def _documented_style(op: Operation) -> Style | None:
    params = _query_params(op)
    size = _find(params, SIZE_NAMES)
    low, high, _ = _bounds(params.get(size)) if size else (None, None, None)
    if cursor := _find(params, CURSOR_NAMES):
        return Style("cursor", size, cursor, max_size=high, min_size=low, how="documented query parameters")
    if offset := _find(params, OFFSET_NAMES):
        return Style("offset", size, offset, max_size=high, min_size=low, how="documented query parameters")
    if page := _find(params, PAGE_NAMES):
        first = _bounds(params[page])
        start = 0 if first[0] == 0 or first[2] == 0 else 1
        return Style("page", size, page, first_page=start, max_size=high, min_size=low,
                     how="documented query parameters")
    if size:
        return Style("size_only", size, None, max_size=high, min_size=low, how="documented query parameters")
    return None


def _probe(ctx: CheckContext, target: Target) -> None:
    target.baseline = _get(ctx, target)
    target.baseline_items = items_of(target.baseline.json())
    style = _documented_style(target.op)
    if style is None:
        style = _guess_style(ctx, target)
    if style is not None:
        style = _refine_by_response(ctx, target, style)
    elif style is None and (link_next(target.baseline) or next_url(target.baseline)):
        style = Style("link" if link_next(target.baseline) else "next_url", documented=False,
                      how="the unparameterised list answered with a next link")
    target.style = style
    if style is None or style.kind == "size_only":
        return
    _walk(ctx, target)
    _limits(ctx, target)
    _filters(ctx, target)


def _guess_style(ctx: CheckContext, target: Target) -> Style | None:
    """No pagination parameter is documented: try the common names and see whether the list shrinks."""
    everything = len(target.baseline_items)
    if everything <= 3:
        return None
    for name in ("limit", "per_page", "page_size", "size", "pageSize"):
        answer = _get(ctx, target, {name: 3})
        target.style_evidence.append(answer)
        if answer.status == 200 and 0 < len(items_of(answer.json())) <= 3:
            first = [item_key(target, i) for i in items_of(answer.json())]
            for position, value, kind in (("offset", 3, "offset"), ("skip", 3, "offset"), ("page", 2, "page")):
                moved = _get(ctx, target, {name: 3, position: value})
                target.style_evidence.append(moved)
                keys = [item_key(target, i) for i in items_of(moved.json())]
                if moved.status == 200 and keys and keys != first:
                    return Style(kind, name, position, documented=False,
                                 how=f"?{name}=3&{position}={value} answered another page")
            return Style("size_only", name, None, documented=False, how=f"?{name}=3 shortened the list")
    return None


def _refine_by_response(ctx: CheckContext, target: Target, style: Style) -> Style:
    """A first page that carries a next link or cursor is walked the way the response says: that is how the API
    tells its clients to page."""
    first = _get(ctx, target, {style.size_param: PAGE_SIZE} if style.size_param else None)
    target.style_evidence.append(first)
    if link_next(first):
        return Style("link", style.size_param, style.position_param, documented=style.documented,
                     max_size=style.max_size, min_size=style.min_size, how="a Link: rel=\"next\" header")
    if next_url(first):
        return Style("next_url", style.size_param, style.position_param, documented=style.documented,
                     max_size=style.max_size, min_size=style.min_size, how="a next URL in the body")
    if style.kind != "size_only":
        return style
    if next_cursor(first):
        return Style("cursor", style.size_param, "cursor", documented=style.documented, max_size=style.max_size,
                     min_size=style.min_size, how="a next cursor in the body")
    return style


def _walk(ctx: CheckContext, target: Target) -> None:
    style = target.style
    size = PAGE_SIZE
    if style.min_size and size < style.min_size:
        size = style.min_size
    if style.max_size and size > style.max_size:
        size = style.max_size
    total = reported_total(target.baseline) if target.baseline else None
    if total and total > MAX_PAGES * size:  # a big shared collection: bigger pages, same bound on requests
        size = min(math.ceil(total / MAX_PAGES), style.max_size or 100)
    params: dict[str, Any] = {style.size_param: size} if style.size_param else {}
    expected: int | None = size if style.size_param else None  # without a size parameter the API chooses it
    target.page_size = size
    position = 0 if style.kind == "offset" else style.first_page
    url: str | None = None
    followed: set[str] = set()
    for _ in range(MAX_PAGES):
        query = dict(params)
        if style.kind in ("offset", "page"):
            query[style.position_param] = position
        answer = _get(ctx, target, None if url else query, url=url)
        page = _page(target, answer)
        target.pages.append(page)
        if answer.status != 200:
            target.walk_problem = f"page {len(target.pages)} answered {answer.status or answer.error}"
            return
        if expected is None:
            expected = target.page_size = len(page.items)
        if style.kind in ("offset", "page"):
            if not page.items or len(page.items) < expected:
                target.walk_complete = True
                return
            position += expected if style.kind == "offset" else 1
        elif style.kind == "cursor":
            cursor = next_cursor(answer)
            if not cursor or not page.items:
                target.walk_complete = True
                return
            if cursor in followed:
                target.walk_problem = target.loop = f"the next cursor {cursor!r} came back again: paging never ends"
                return
            followed.add(cursor)
            params = {**params, style.position_param: cursor}
        else:
            nxt = link_next(answer) if style.kind == "link" else next_url(answer)
            if not nxt or not page.items:
                target.walk_complete = True
                return
            url = _same_origin_url(ctx, target, nxt)
            if url in followed:
                target.walk_problem = target.loop = f"the next link {nxt} came back again: paging never ends"
                return
            followed.add(url)
    target.walk_problem = f"stopped after {MAX_PAGES} pages of {target.page_size}"


def _first_page_params(target: Target) -> dict[str, Any]:
    style = target.style
    params: dict[str, Any] = {style.size_param: target.page_size} if style.size_param else {}
    if style.kind in ("offset", "page"):
        params[style.position_param] = 0 if style.kind == "offset" else style.first_page
    return params


def _limits(ctx: CheckContext, target: Target) -> None:
    style = target.style
    target.reread = _page(target, _get(ctx, target, _first_page_params(target)))
    base = _first_page_params(target)
    probes: list[tuple[str, dict[str, Any]]] = []
    if style.size_param:
        probes += [(f"{style.size_param}={HUGE}", {**base, style.size_param: HUGE}),
                   (f"{style.size_param}=-1", {**base, style.size_param: -1}),
                   (f"{style.size_param}=abc", {**base, style.size_param: "abc"})]
    if style.position_param and style.position_param.lower() not in CURSOR_NAMES:
        probes += [(f"{style.position_param}=-5", {**base, style.position_param: -5}),
                   (f"{style.position_param}=abc", {**base, style.position_param: "abc"})]
    elif style.position_param:
        probes.append((f"{style.position_param}=not-a-cursor", {**base, style.position_param: "not-a-cursor"}))
    for label, params in probes:
        huge = label == f"{style.size_param}={HUGE}"
        target.limits.append((label, _huge_page(ctx, target, params) if huge else _get(ctx, target, params)))


def _huge_page(ctx: CheckContext, target: Target, params: dict[str, Any]) -> Exchange:
    """Ask for a huge page. A cap the spec does not document (DRF's max_page_size) only shows on a collection
    larger than the cap: when every object came back, grow the collection past CAP for one more ask."""
    answer = _get(ctx, target, params)
    target.huge_collection = max(reported_total(answer) or 0, len(target.seeded))
    got = len(items_of(answer.json()))
    hidden = (target.style.max_size is None and answer.status == 200 and echo_of(answer, target.style.size_param)
              is None and target.huge_collection <= got <= CAP)
    if not hidden or target.resource.delete is None:  # objects it could not delete again are not made
        return answer
    extra = _seed_extra(ctx, target, CAP + 1 - target.huge_collection)
    try:
        if extra is None:
            return answer
        again = _get(ctx, target, params)
        target.huge_collection = max(reported_total(again) or 0, len(target.seeded) + len(extra))
        return again
    finally:
        _delete(ctx, target, extra or [])


def _seed_extra(ctx: CheckContext, target: Target, count: int) -> list[Any] | None:
    """`count` more objects (ids), or None (and none left) when the API would not create them all."""
    schema = target.resource.create.request_schema
    made: list[Any] = []
    for n in range(count):
        body = valid_example(schema, variant=SEED_COUNT + n + 1) if schema else {}
        item_id = _create(ctx, target, body)[1]
        if item_id is None:
            _delete(ctx, target, made)
            return None
        made.append(item_id)
    return made


def _delete(ctx: CheckContext, target: Target, ids: list[Any]) -> None:
    for item_id in ids:
        answer = ctx.prober.request("DELETE", at(target.resource, target.resource.delete, item_id),
                                    headers=target.headers)
        answer.source = "cleanup"
        if not (answer.status and answer.status < 300):
            target.left_behind += 1


def _filters(ctx: CheckContext, target: Target) -> None:
    """Documented filters and sorts, each with one request, judged on the seeded objects only."""
    style = target.style
    params = _query_params(target.op)
    paging = {p for p in (style.size_param, style.position_param) if p}
    wide: dict[str, Any] = {}
    if style.size_param:
        wide[style.size_param] = min(style.max_size or 100, 100)
    seeded = {str(s): i for i, s in enumerate(target.seeded)}
    fields = {k for b in target.seed_bodies for k in b}

    for name, param in params.items():
        low = name.lower()
        if name in paging or low in DIRECTION_NAMES:
            continue
        if low in SORT_NAMES:
            _sort_probe(ctx, target, name, param, params, wide, seeded)
        elif low in SEARCH_NAMES and target.markers and any(isinstance(v, str) and v.startswith(target.markers[0])
                                                           for v in target.seed_bodies[0].values()):
            marker = target.markers[0]
            answer = _get(ctx, target, {**wide, name: marker})
            found = items_of(answer.json())
            problem = None
            if answer.status is not None and 400 <= answer.status < 500:
                target.filter_notes.append(f"search {name} refused the value with {answer.status}: not judged")
                continue
            if answer.status != 200:
                problem = f"?{name}={marker} answered {answer.status or answer.error}"
            elif not found or any(marker not in json.dumps(i, default=str) for i in found):
                problem = (f"?{name}={marker} returned {len(found)} item(s), not only the one object whose text "
                           "contains it")
            target.filters.append(("filter_ignored", name, answer, problem))
        elif name in fields:
            values = [b.get(name) for b in target.seed_bodies]
            wanted = values[0]
            if isinstance(wanted, (dict, list)) or len({json.dumps(v) for v in values}) < 2:
                target.filter_notes.append(f"filter {name} not probed (the seeded objects do not differ in it)")
                continue
            sent = json.dumps(wanted) if isinstance(wanted, bool) else str(wanted)
            answer = _get(ctx, target, {**wide, name: sent})
            found = items_of(answer.json())
            mine = [i for i in found if str(item_key(target, i)) in seeded]
            wrong = [i for i in mine if isinstance(i, dict) and str(i.get(name)).lower() != str(wanted).lower()
                     and i.get(name) != wanted]
            problem = None
            if answer.status is not None and 400 <= answer.status < 500:
                target.filter_notes.append(f"filter {name}={sent} was refused with {answer.status}: not judged")
                continue
            if answer.status != 200:
                problem = f"?{name}={sent} answered {answer.status or answer.error}"
            elif wrong:
                problem = (f"?{name}={sent} still returned {len(wrong)} seeded object(s) whose {name} is "
                           f"{wrong[0].get(name)!r}")
            elif not mine:
                problem = f"?{name}={sent} returned none of the {values.count(wanted)} seeded objects that match"
            target.filters.append(("filter_ignored", name, answer, problem))


def _sort_probe(ctx: CheckContext, target: Target, name: str, param: dict, params: dict[str, dict],
                wide: dict[str, Any], seeded: dict[str, int]) -> None:
    enum = ((param.get("schema") or {}).get("enum")) or []
    strings = [k for k, v in target.seed_bodies[0].items() if isinstance(v, str) and v.startswith("pg")]
    candidates = [str(v) for v in enum if str(v).lstrip("-+") in strings] or (
        [] if enum else strings[:1])
    if not candidates:
        target.filter_notes.append(f"sort {name} not probed (none of its values names a text field the grader set)")
        return
    value = candidates[0]
    fld = value.lstrip("-+")
    descending = value.startswith("-")
    direction = _find(params, DIRECTION_NAMES)
    query = {**wide, name: value}
    if direction and not descending:
        query[direction] = "asc"
    answer = _get(ctx, target, query)
    order = [i.get(fld) for i in items_of(answer.json())
             if isinstance(i, dict) and str(item_key(target, i)) in seeded and isinstance(i.get(fld), str)]
    expected = sorted(order, reverse=descending)
    problem = None
    if answer.status is not None and 400 <= answer.status < 500 and not enum:
        target.filter_notes.append(f"sort {name}={value} was refused with {answer.status} (its values are not "
                                   "documented): not judged")
        return
    if answer.status != 200:
        problem = f"?{name}={value} answered {answer.status or answer.error}"
    elif len(order) < 2:
        problem = f"?{name}={value} returned {len(order)} of the seeded objects: nothing to compare"
    elif order != expected:
        first_wrong = next(i for i in range(len(order)) if order[i] != expected[i])
        problem = (f"?{name}={value} did not sort by {fld}: {order[first_wrong]!r} came where "
                   f"{expected[first_wrong]!r} belongs")
    target.filters.append(("sort_ignored", name, answer, problem))
