"""Request bodies from JSON Schemas: readable valid examples, and deliberately wrong ones.

Deterministic on purpose: the same spec gives the same requests, so a learner can rerun a curl
line from the scorecard and see the same thing. Random exploration is Schemathesis' job.
"""

from __future__ import annotations

import functools
import re
from typing import Any

_MAX_DEPTH = 6


def valid_example(schema: dict | None, variant: int = 0, name: str = "", depth: int = 0) -> Any:
    """A value that satisfies `schema`; `variant` changes strings and numbers (for updates)."""
    schema = schema or {}
    if depth > _MAX_DEPTH:
        return None
    for key in ("const",):
        if key in schema:
            return schema[key]
    if variant == 0:
        if "example" in schema:
            return schema["example"]
        if isinstance(schema.get("examples"), list) and schema["examples"]:
            return schema["examples"][0]
        if "default" in schema and schema["default"] is not None:
            return schema["default"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        options = [v for v in schema["enum"] if v is not None] or schema["enum"]
        return options[variant % len(options)]
    if "allOf" in schema:
        merged: dict[str, Any] = {}
        for part in schema["allOf"]:
            for key, value in part.items():
                if key == "properties":
                    merged.setdefault("properties", {}).update(value)
                elif key == "required":
                    merged.setdefault("required", []).extend(value)
                else:
                    merged.setdefault(key, value)
        return valid_example(merged, variant, name, depth + 1)
    for key in ("oneOf", "anyOf"):
        if key in schema:
            options = [s for s in schema[key] if _type_of(s) != "null"] or schema[key]
            return valid_example(options[0], variant, name, depth + 1)

    kind = _type_of(schema)
    if kind == "object" or "properties" in schema:
        out = {}
        for prop, sub in (schema.get("properties") or {}).items():
            if isinstance(sub, dict) and not sub.get("readOnly"):
                out[prop] = valid_example(sub, variant, prop, depth + 1)
        return out
    if kind == "array":
        count = max(1, int(schema.get("minItems") or 0))
        return [valid_example(schema.get("items") or {}, variant + i, name, depth + 1) for i in range(count)]
    if kind == "integer":
        return int(_number(schema, variant, name, integer=True))
    if kind == "number":
        return _number(schema, variant, name, integer=False)
    if kind == "boolean":
        return variant % 2 == 0
    if kind == "null":
        return None
    return _string(schema, variant, name)


def invalid_types(schema: dict | None) -> dict[str, Any] | None:
    """An object whose every property has the wrong JSON type; None when the schema is no object."""
    props = (schema or {}).get("properties") or {}
    if not props:
        return None
    wrong = {"string": 12345, "integer": "not-a-number", "number": "not-a-number", "boolean": "maybe",
             "array": "not-a-list", "object": "not-an-object"}
    out = {}
    for prop, sub in props.items():
        kind = _type_of(sub or {})
        if kind in wrong and not (sub or {}).get("readOnly"):
            out[prop] = wrong[kind]
    return out or None


def _type_of(schema: dict) -> str | None:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None and "properties" in schema:
        return "object"
    return kind


def _number(schema: dict, variant: int, name: str, integer: bool) -> float:
    low = schema.get("minimum")
    high = schema.get("maximum")
    if isinstance(schema.get("exclusiveMinimum"), (int, float)):
        low = schema["exclusiveMinimum"] + (1 if integer else 0.5)
    if isinstance(schema.get("exclusiveMaximum"), (int, float)):
        high = schema["exclusiveMaximum"] - (1 if integer else 0.5)
    # realistic where APIs check plausibility: a year, an adult's age (sign-ups refuse "too young")
    guess = 2000 + variant if re.search(r"year", name, re.I) else 30 + variant if re.search(r"(^|_)age$", name, re.I) \
        else 3 + variant
    if low is not None and guess < low:
        guess = low + variant
    if high is not None and guess > high:
        guess = max(low if low is not None else high - variant, high - variant)
    multiple = schema.get("multipleOf")
    if multiple:
        guess = (guess // multiple) * multiple or multiple
    return guess if not integer else int(guess)


_FORMATS = {
    "email": "learner{n}@example.com",
    "date": "2024-01-{d:02d}",
    "date-time": "2024-01-{d:02d}T10:00:00Z",
    "time": "10:00:00",
    "uuid": "3fa85f64-5717-4562-b3fc-2c963f66a{n:03d}",
    "uri": "https://example.com/item/{n}",
    "url": "https://example.com/item/{n}",
    "hostname": "example.com",
    "ipv4": "192.0.2.{n}",
    "password": "Grader-Pass-{n}!x9",
}


def _string(schema: dict, variant: int, name: str) -> str:
    fmt = schema.get("format")
    if fmt in _FORMATS:
        text = _FORMATS[fmt].format(n=variant + 1, d=variant % 28 + 1)
    else:
        label = re.sub(r"[^A-Za-z]+", " ", name).strip() or "text"
        text = f"Sample {label} {variant + 1}"
    pattern = schema.get("pattern")
    if pattern and not re.search(pattern, text):
        text = _from_pattern(pattern) or text
    low, high = schema.get("minLength"), schema.get("maxLength")
    if low and len(text) < low:
        text = text + "x" * (low - len(text))
    if high is not None and len(text) > high:
        suffix = str(variant + 1)  # keeps variants distinct when the schema forces short strings
        text = (text[: max(high - len(suffix), 0)] + suffix)[:high] if high > 0 else ""
    return text


@functools.lru_cache(maxsize=256)
def _from_pattern(pattern: str) -> str | None:
    """The simplest string Hypothesis can find for a regex: deterministic (no example database). Cached: a search
    takes a second or more, and seeding a collection asks for the same pattern (DRF's ISBN regex) a hundred times."""
    try:
        from hypothesis import HealthCheck, find, settings
        from hypothesis import strategies as st

        return find(st.from_regex(pattern, fullmatch=True), lambda s: True,
                    settings=settings(database=None, max_examples=50, suppress_health_check=list(HealthCheck)))
    except Exception:  # an exotic pattern: fall back to the plain sample and let the API judge it
        return None
