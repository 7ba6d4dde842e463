"""Pagination, filtering and sorting of list endpoints, judged by walking real pages.

One survey per grade (shared by the four checks, like the contract run): for each top-level collection with a
list operation it seeds SEED_COUNT objects as one user, finds the pagination style (from the spec's query
parameters, else by trying the common parameter names, and from the first page: Link headers, `next` URLs,
cursors), walks every page, re-reads the first page, tries a huge, a negative and a non-numeric page size,
exercises the documented filters and sorts, and deletes what it seeded.

- `pagination.present`: a growing collection offers a way to page (`pagination_missing`).
- `pagination.walk`: no duplicates, nothing missing, stable order, page size respected
  (`pagination_inconsistent`); total/count/next agree with what was walked (`pagination_metadata_wrong`).
- `pagination.limits`: a huge page size is capped or refused (`pagination_no_cap`); bad values never 5xx.
- `pagination.filters`: documented filters filter (`filter_ignored`) and documented sorts sort (`sort_ignored`).
"""

from __future__ import annotations

import math
from typing import Any

from ..models import Evidence, Finding
from ..probe import Exchange
from .pagination_survey import (HUGE, MAX_PAGES, PAGE_SIZE, PAGES_KEYS, SEED_COUNT, Survey, Target,  # noqa: F401
                                as_int, echo_of, has_more, item_key, items_of, link_next, metadata, next_cursor,
                                next_url, reported_total, survey)
from .registry import CheckContext, check

_NEEDS = ("service", "spec", "resource")

HINTS = {
    "pagination_missing": (
        "A list that returns every row gets slower and heavier with each object until a client or the server "
        "falls over (OWASP API4:2023 Unrestricted Resource Consumption). Page it: FastAPI `limit: int = "
        "Query(20, ge=1, le=100), offset: int = Query(0, ge=0)` and `.limit(limit).offset(offset)` (or "
        "fastapi-pagination); Express `const limit = Math.min(Number(req.query.limit) || 20, 100)`; Flask "
        "`request.args.get('page', 1, type=int)` with SQLAlchemy `.paginate(page=..., per_page=..., "
        "max_per_page=100)`; Django REST framework `DEFAULT_PAGINATION_CLASS`. Return the total or a next link "
        "so clients know when to stop."),
    "pagination_inconsistent": (
        "Pages must partition the collection: order by a unique, stable key (`ORDER BY created_at, id`) — "
        "without ORDER BY a database may return rows in any order, so LIMIT/OFFSET pages repeat and skip rows. "
        "Apply the page size exactly, compute the offset as (page - 1) * size, and for cursors encode the last "
        "item's sort key (keyset pagination) rather than a position."),
    "pagination_metadata_wrong": (
        "Clients stop paging when the metadata says so: compute `total` with the same filters as the page "
        "(`SELECT COUNT(*) ... WHERE <same filters>`), echo the page and size actually applied, and set `next` "
        "to null (or has_more to false) only on the last page."),
    "pagination_no_cap": (
        "A client that asks for `?limit=100000` (or -1, which SQLite and some ORMs read as no limit) makes the "
        "server load and serialise the whole table (OWASP API4:2023). Validate the page size: FastAPI "
        "`Query(20, ge=1, le=100)` answers 422 above 100; Express `Math.min(Math.max(limit, 1), 100)` or a 400; "
        "Flask-SQLAlchemy `paginate(max_per_page=100)`; DRF `max_page_size = 100`. Document the maximum."),
    "server_error": (
        "Parse query parameters before using them: a negative or non-numeric page size must answer 400/422 "
        "(FastAPI `Query(ge=1)`, Flask `request.args.get('limit', type=int)` plus a range check, express-validator "
        "`query('limit').isInt({ min: 1, max: 100 })`), never reach the database and crash."),
    "filter_ignored": (
        "A documented filter that returns everything misleads clients into showing wrong data. Apply it in the "
        "query (`WHERE done = :done` / `.filter(Task.done == done)` / `{ done }` in the Mongo query), before "
        "pagination and in the total, or remove it from the document."),
    "sort_ignored": (
        "A documented sort parameter must change the order: map the allowed values to columns (an allow-list, "
        "never raw SQL) and `ORDER BY <column> <ASC|DESC>, id` so ties stay stable; reject unknown values with "
        "400/422 and remove undocumented ones from the spec."),
}



# ---------------------------------------------------------------- the checks


def _needs_survey(ctx: CheckContext) -> tuple[Survey | None, Any]:
    result = survey(ctx)
    if result.problem:
        return None, ctx.skip(result.problem, ctx.resources_hint("a collection with POST, GET (list) and GET /{id}"))
    seeded = [t for t in result.targets if t.seed_problem is None]
    if not seeded:
        t = result.targets[0]
        return None, ctx.skip(f"could not seed objects to page through: {t.seed_problem}")
    return result, None


def _cleanup_note(targets: list[Target]) -> str:
    left = sum(t.left_behind for t in targets)
    return f"; {left} seeded object(s) left behind (no DELETE)" if left else ""


@check("pagination.present", area="pagination", title="List endpoints of growing collections are paginated",
       needs=_NEEDS, order=-5)
def present(ctx: CheckContext):
    result, skipped = _needs_survey(ctx)
    if skipped:
        return skipped
    findings: list[Finding] = []
    evidence: list[Evidence] = []
    described = []
    for t in result.targets:
        if t.seed_problem:
            continue
        if t.style is not None and t.style.kind != "size_only":
            described.append(f"{t.label}: {t.style.describe()}, found from {t.style.how}")
            evidence.append((t.pages[0].exchange if t.pages else t.baseline).evidence(
                f"a first page: {t.style.describe()}"))
            continue
        count = len(t.baseline_items)
        if t.style is not None:  # a size but no way to move past the first page
            message = (f"{t.label} takes a page size ({t.style.size_param}) but no offset, page or cursor, and its "
                       "responses carry no next link: objects past the first page cannot be reached.")
        elif _seeded_in(t, t.baseline_items) < len(t.seeded):
            message = (f"{t.label} returned {count} objects, without {len(t.seeded) - _seeded_in(t, t.baseline_items)}"
                       f" of the {len(t.seeded)} just created, and accepts no limit/offset, page/size or cursor "
                       "parameter and gives no next link: the rest cannot be reached.")
        else:
            message = (f"{t.label} returned all {count} objects in one response ({len(t.seeded)} were just created) "
                       "and accepts no limit/offset, page/size or cursor parameter: the response grows with the "
                       "collection (OWASP API4:2023).")
        findings.append(ctx.fail("pagination_missing", "medium", message, operation=t.label,
                                 hint=HINTS["pagination_missing"],
                                 evidence=[t.baseline.evidence(f"{count} objects in one response, no paging")]
                                 + [e.evidence("a common paging parameter, without effect") for e in t.style_evidence[:2]]))
        described.append(f"{t.label}: " + (f"only a page size ({t.style.size_param}), no way to reach later pages"
                                            if t.style else f"no pagination ({count} objects in one response)"))
    judged = len(described)
    return ctx.verdict("; ".join(described) + _cleanup_note(result.targets), findings, evidence,
                       score=1 - len(findings) / max(judged, 1))


def _seeded_in(t: Target, items: list[Any]) -> int:
    keys = {str(item_key(t, i)) for i in items}
    return sum(str(s) in keys for s in t.seeded)


def _walked(ctx: CheckContext) -> tuple[list[Target], Any]:
    result, skipped = _needs_survey(ctx)
    if skipped:
        return [], skipped
    walked = [t for t in result.targets if t.pages]
    if not walked:
        return [], ctx.not_applicable("no list endpoint offers a way to page (no limit/offset, page/size or cursor "
                                     "parameter had an effect, and no response carries a next link)")
    return walked, None


@check("pagination.walk", area="pagination",
       title="Walking every page returns each object once, in a stable order, with truthful metadata",
       needs=_NEEDS, order=-5)
def walk(ctx: CheckContext):
    targets, skipped = _walked(ctx)
    if skipped:
        return skipped
    findings: list[Finding] = []
    evidence: list[Evidence] = []
    summaries = []
    judged = held = 0
    for t in targets:
        problems = _walk_problems(t)
        meta_problems = _metadata_problems(t)
        judged += 2
        held += (not problems) + (not meta_problems)
        chain = [p.exchange.evidence(f"page {n + 1}: {len(p.items)} item(s)") for n, p in enumerate(t.pages[:4])]
        if problems:
            note, exchange = problems[0][1], problems[0][0]
            findings.append(ctx.fail(
                "pagination_inconsistent", "medium",
                f"{t.label} ({t.style.describe()}, pages of {t.page_size}): " + "; ".join(p for _, p in problems[:3]),
                operation=t.label, hint=HINTS["pagination_inconsistent"],
                evidence=[exchange.evidence(note)] + [c for c in chain if c.request.url != exchange.url][:3]))
        if meta_problems:
            findings.append(ctx.fail(
                "pagination_metadata_wrong", "low",
                f"{t.label}: the paging metadata disagrees with the pages walked: "
                + "; ".join(p for _, p in meta_problems[:3]),
                operation=t.label, hint=HINTS["pagination_metadata_wrong"],
                evidence=[meta_problems[0][0].evidence(meta_problems[0][1])] + chain[-1:]))
        seen = {k for p in t.pages for k in p.keys}
        summaries.append(f"{t.label}: {len(t.pages)} page(s) of {t.page_size} walked "
                         f"({'to the end' if t.walk_complete else t.walk_problem}), {len(seen)} distinct object(s), "
                         f"{sum(str(s) in {str(k) for k in seen} for s in t.seeded)}/{len(t.seeded)} seeded found")
        evidence += chain[:2]
    return ctx.verdict("; ".join(summaries) + _cleanup_note(targets), findings, evidence,
                       score=held / max(judged, 1))


def _walk_problems(t: Target) -> list[tuple[Exchange, str]]:
    problems: list[tuple[Exchange, str]] = []
    if t.walk_problem and not t.walk_complete and t.pages and t.pages[-1].exchange.status != 200:
        problems.append((t.pages[-1].exchange, f"walking the pages failed: {t.walk_problem}"))
        return problems
    if t.loop:
        problems.append((t.pages[-1].exchange, t.loop))
    seen: dict[str, int] = {}
    for n, page in enumerate(t.pages):
        for key in page.keys:
            if str(key) in seen and seen[str(key)] != n:
                problems.append((page.exchange, f"object {key} appears on page {seen[str(key)] + 1} and again on "
                                                f"page {n + 1}"))
                break
            seen.setdefault(str(key), n)
        if len(page.items) > t.page_size and t.style.size_param:
            problems.append((page.exchange, f"page {n + 1} has {len(page.items)} items, more than the "
                                            f"{t.style.size_param}={t.page_size} asked for"))
    if t.walk_complete:
        missing = [s for s in t.seeded if str(s) not in seen]
        if missing:
            problems.append((t.pages[-1].exchange, f"{len(missing)} of the {len(t.seeded)} objects just created "
                                                   f"never appear on any page (e.g. {missing[0]})"))
    if t.reread is not None and t.pages and t.reread.keys != t.pages[0].keys and t.reread.exchange.status == 200:
        problems.append((t.reread.exchange, "the first page read twice came back in another order or with other "
                                            "objects: the order is not stable"))
    return problems


def _metadata_problems(t: Target) -> list[tuple[Exchange, str]]:
    problems: list[tuple[Exchange, str]] = []
    pages = [p for p in t.pages if p.exchange.status == 200]
    if not pages:
        return problems
    walked = len({str(k) for p in pages for k in p.keys})
    totals = [(p, reported_total(p.exchange)) for p in pages]
    reported = [n for _, n in totals if n is not None]
    if reported and all(n == len(p.items) for p, n in totals) and len(set(reported)) > 1:
        reported = []  # a `count` of the items on this page, not of the collection
    if reported:
        if len(set(reported)) > 1:
            problems.append((pages[-1].exchange, f"the total changes between pages ({sorted(set(reported))})"))
        elif t.walk_complete and reported[0] != walked:
            problems.append((pages[0].exchange, f"the total says {reported[0]} but walking every page found "
                                                f"{walked} objects"))
    meta = metadata(pages[0].exchange.json())
    pages_count = next((as_int(meta.get(k)) for k in PAGES_KEYS if as_int(meta.get(k)) is not None), None)
    if pages_count is not None and t.walk_complete and reported and t.style.kind == "page":
        expected = max(1, math.ceil(reported[0] / t.page_size))
        if pages_count not in (expected, expected - 1 + t.style.first_page) and reported[0]:
            problems.append((pages[0].exchange, f"the page count says {pages_count}, but {reported[0]} objects in "
                                                f"pages of {t.page_size} make {expected}"))
    echoed = echo_of(pages[0].exchange, t.style.size_param)
    if echoed is not None and echoed != t.page_size:
        problems.append((pages[0].exchange, f"{t.style.size_param}={t.page_size} was asked for, the response says "
                                            f"{echoed}"))
    if t.walk_complete and len(pages) > 1:
        if has_more(pages[0].exchange) is False:
            problems.append((pages[0].exchange, "the first page says there is no next page, yet there is"))
        last = pages[-1]
        short = t.style.kind in ("offset", "page") and 0 < len(last.items) < t.page_size
        if has_more(last.exchange) is True and (short or not last.items):
            shown = link_next(last.exchange) or next_url(last.exchange) or next_cursor(last.exchange)
            problems.append((last.exchange, f"the last page ({len(last.items)} item(s)) still announces a next page"
                             + (f" ({shown})" if shown else "")))
    return problems


@check("pagination.limits", area="pagination",
       title="A huge page size is capped or refused; bad paging values get a 4xx, never a 5xx",
       needs=_NEEDS, order=-5)
def limits(ctx: CheckContext):
    targets, skipped = _walked(ctx)
    if skipped:
        return skipped
    targets = [t for t in targets if t.limits]
    if not targets:
        return ctx.not_applicable("no page size or position parameter to send bad values to")
    findings: list[Finding] = []
    evidence: list[Evidence] = []
    notes = []
    judged = held = 0
    for t in targets:
        default_count = len(t.baseline_items)
        for label, answer in t.limits:
            judged += 1
            got = items_of(answer.json())
            problem = None
            if answer.status is None or answer.status >= 500:
                findings.append(ctx.fail(
                    "server_error", "high", f"{t.label}?{label} crashed the handler: "
                    f"{answer.status or answer.error}.", operation=t.label, hint=HINTS["server_error"],
                    evidence=[answer.evidence(f"{label}: expected 400 or 422")]))
                problem = True
            elif 200 <= answer.status < 300 and label.startswith(f"{t.style.size_param}="):
                value = label.split("=", 1)[1]
                echoed = echo_of(answer, t.style.size_param)
                capped_at = t.style.max_size or 100
                if value == str(HUGE) and echoed is not None and echoed >= HUGE:
                    problem = f"{label} was accepted and echoed as {echoed}"
                elif value == str(HUGE) and echoed is None and len(got) > capped_at:
                    problem = f"{label} returned {len(got)} objects in one page"
                elif value == str(HUGE) and echoed is None and len(got) < t.huge_collection:
                    pass  # a cap at work, documented or not: fewer objects than the collection held
                elif value == str(HUGE) and echoed is None and t.style.max_size is None:
                    problem = (f"{label} was answered {answer.status} and the spec documents no maximum for "
                               f"{t.style.size_param}")
                elif value == "-1" and len(got) > max(default_count, t.page_size):
                    problem = f"{label} returned {len(got)} objects: a negative size lifts the limit"
                if problem:
                    findings.append(ctx.fail(
                        "pagination_no_cap", "medium",
                        f"{t.label}: {problem}; a client can make the server load and send the whole collection "
                        "(OWASP API4:2023).", operation=t.label, hint=HINTS["pagination_no_cap"],
                        evidence=[answer.evidence(f"{label}: expected a 4xx or a capped page")]))
                else:
                    capped = value == str(HUGE) and echoed is None and len(got) < t.huge_collection
                    notes.append(f"{label} -> {answer.status}" + (
                        f" (applied {echoed})" if echoed is not None else
                        f", capped at {len(got)} of {t.huge_collection} object(s)" if capped else f", {len(got)} item(s)"))
            else:
                notes.append(f"{label} -> {answer.status}")
            held += not problem
            if not problem:
                evidence.append(answer.evidence(f"{label}: {answer.status}"))
    summary = "; ".join(f"{t.label}: sent {', '.join(l for l, _ in t.limits)}" for t in targets)
    if notes:
        summary += f" ({', '.join(notes)})"
    return ctx.verdict(summary + _cleanup_note(targets), findings, evidence, score=held / max(judged, 1))


@check("pagination.filters", area="pagination", title="Documented filters filter and documented sorts sort",
       needs=_NEEDS, order=-5)
def filters(ctx: CheckContext):
    targets, skipped = _walked(ctx)
    if skipped:
        return skipped
    probed = [(t, f) for t in targets for f in t.filters]
    notes = [n for t in targets for n in t.filter_notes]
    if not probed:
        return ctx.not_applicable("no documented filter or sort parameter matches a field of the seeded objects"
                        + (f" ({'; '.join(notes)})" if notes else ""))
    findings: list[Finding] = []
    evidence: list[Evidence] = []
    for t, (kind, name, answer, problem) in probed:
        if problem:
            what = "filter" if kind == "filter_ignored" else "sort"
            findings.append(ctx.fail(kind, "low", f"{t.label}: the documented {what} `{name}` has no effect: {problem}.",
                                     operation=t.label, hint=HINTS[kind],
                                     evidence=[answer.evidence(f"{what} {name}: seeded objects checked")]))
        else:
            evidence.append(answer.evidence(f"{name}: applied"))
    names = ", ".join(f"{n}" for _, (_, n, _, _) in probed)
    summary = f"{len(probed) - len(findings)}/{len(probed)} documented filter/sort parameter(s) work ({names})"
    if notes:
        summary += f"; {'; '.join(notes)}"
    return ctx.verdict(summary, findings, evidence, score=1 - len(findings) / len(probed))
