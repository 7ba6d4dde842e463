"""Hints that fit the stack the grader detected: a Flask project gets the Flask part, not the Mongoose one.

Rubric and check hints name tools of several stacks side by side: "(slowapi for FastAPI, express-rate-limit,
flask-limiter)", "In FastAPI ...; in Express ...; in Flask ...", "Task.owner_id == ... (SQLAlchemy), { _id,
owner } (Mongoose)". Each such list (a parenthesis, clauses split by "; ", items split by ", ") keeps the
items naming the detected stack and its framework, and those naming no tool; items naming only other stacks'
tools are dropped, but only when an item of the list fits (else the list is left whole: better every stack's
advice than none). An aside in parentheses that names only other stacks goes. An unknown stack changes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ..models import Scorecard

# tool -> (stack, framework or None for any framework of the stack)
TOOLS: dict[str, tuple[str, str | None]] = {
    "fastapi": ("python", "fastapi"), "slowapi": ("python", "fastapi"), "response_model": ("python", "fastapi"),
    "prometheus-fastapi-instrumentator": ("python", "fastapi"),
    "flask": ("python", "flask"), "flask-limiter": ("python", "flask"),
    "django": ("python", "django"),
    "pydantic": ("python", None), "marshmallow": ("python", None), "sqlalchemy": ("python", None),
    "pyjwt": ("python", None), "python-json-logger": ("python", None), "structlog": ("python", None),
    "prometheus_client": ("python", None), "pytest": ("python", None), "poetry.lock": ("python", None),
    "requirements.txt": ("python", None),
    "express": ("node", "express"), "express-rate-limit": ("node", "express"),
    "mongoose": ("node", None), "zod": ("node", None), "joi": ("node", None), "jsonwebtoken": ("node", None),
    "pino": ("node", None), "prom-client": ("node", None), "jest": ("node", None), "supertest": ("node", None),
    "package-lock.json": ("node", None), "req.body": ("node", None), "req.user": ("node", None),
}
_TOOL = re.compile(r"(?<![\w.-])(" + "|".join(re.escape(t) for t in sorted(TOOLS, key=len, reverse=True))
                   + r")(?![\w-])", re.IGNORECASE)
_OPEN, _CLOSE = "([{", ")]}"


def _tags(text: str) -> set[tuple[str, str | None]]:
    return {TOOLS[m.group(1).lower()] for m in _TOOL.finditer(text)}


def _fits(tags: set, stack: str, frameworks: set[str]) -> bool | None:
    """True: names the detected stack; False: names only other stacks; None: names no tool."""
    if not tags:
        return None
    stack_frameworks = {f for s, f in TOOLS.values() if s == stack and f}
    detected = frameworks & stack_frameworks
    return any(s == stack and (f is None or not detected or f in detected) for s, f in tags)


def _split(text: str, sep: str) -> list[str]:
    """`text` split at `sep` outside brackets and double quotes."""
    parts, depth, quoted, start, i = [], 0, False, 0, 0
    while i < len(text):
        ch = text[i]
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in _OPEN:
            depth += 1
        elif not quoted and ch in _CLOSE:
            depth = max(0, depth - 1)
        elif not quoted and depth == 0 and text.startswith(sep, i):
            parts.append(text[start:i])
            start = i + len(sep)
            i = start
            continue
        i += 1
    parts.append(text[start:])
    return parts


def _filter(items: list[str], stack: str, frameworks: set[str]) -> list[str]:
    verdicts = [_fits(_tags(item), stack, frameworks) for item in items]
    if len(items) < 2 or True not in verdicts:
        return items
    return [item for item, ok in zip(items, verdicts) if ok is not False]


def _fit_list(text: str, sep: str, stack: str, frameworks: set[str]) -> str:
    items = _split(text, sep)
    if len(items) < 2:
        return text
    lead = ""
    first = _split(items[0], ": ")
    if len(first) > 1:  # "Verify the signature: PyJWT ..., jsonwebtoken ...": the lead-in stays
        lead, items[0] = ": ".join(first[:-1]) + ": ", first[-1]
    kept = _filter(items, stack, frameworks)
    if kept == items:
        return lead + sep.join(items)
    if kept and kept[0] != items[0]:
        kept[0] = re.sub(r"^(or|and) ", "", kept[0])
        if not lead and text[:1].isupper():
            kept[0] = kept[0][:1].upper() + kept[0][1:]
    return lead + sep.join(kept)


def _fit_parens(text: str, stack: str, frameworks: set[str]) -> str:
    out, i = [], 0
    while i < len(text):
        if text[i] != "(":
            out.append(text[i])
            i += 1
            continue
        depth, j = 0, i
        while j < len(text):
            depth += text[j] == "("
            depth -= text[j] == ")"
            if depth == 0:
                break
            j += 1
        inner = text[i + 1:j]
        items = _split(inner, ", ")
        verdicts = [_fits(_tags(item), stack, frameworks) for item in items]
        if verdicts and all(v is False for v in verdicts):  # an aside only for other stacks
            while out and out[-1] == " ":
                out.pop()
        else:
            out.append("(" + ", ".join(_filter(items, stack, frameworks)) + ")")
        i = j + 1
    return "".join(out)


def fit_hint(text: str, stack: str | None, frameworks: Iterable[str] = ()) -> str:
    """The hint with the parts for other stacks left out (see the module docstring)."""
    if not text or stack not in ("python", "node") or not _TOOL.search(text):
        return text
    frameworks = {f.lower() for f in frameworks}
    sentences = re.split(r"(?<=[.!?]) (?=[A-Z])", text)
    fitted = []
    for sentence in sentences:
        fit = _fit_list(sentence, "; ", stack, frameworks)
        fit = _fit_list(fit, ", ", stack, frameworks)
        fit = _fit_parens(fit, stack, frameworks).rstrip()
        if sentence.rstrip().endswith((".", "!", "?")) and not fit.endswith((".", "!", "?")):
            fit += "."  # the dropped item held the full stop
        fitted.append(fit)
    return " ".join(fitted)


def for_stack(sc: Scorecard) -> Scorecard:
    """The scorecard with every hint (criteria, fixes, findings) fitted to the stack in its facts."""
    stack = (sc.facts or {}).get("stack")
    frameworks = (sc.facts or {}).get("frameworks") or []
    if stack not in ("python", "node"):
        return sc

    def fit(text: str) -> str:
        return fit_hint(text, stack, frameworks)

    return sc.model_copy(update={
        "criteria": [c.model_copy(update={"hint": fit(c.hint)}) for c in sc.criteria],
        "top_fixes": [f.model_copy(update={"hint": fit(f.hint)}) for f in sc.top_fixes],
        "findings": [f.model_copy(update={"hint": fit(f.hint)}) for f in sc.findings],
    })
