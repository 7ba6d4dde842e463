"""manifest: read `portfolio-grader.yaml`, keeping every valid key when some are wrong, and saying which key, on
which line, and why (an unknown key or a bad value must never silently cost the learner the whole file)."""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import ValidationError

from .models import Manifest


def read_manifest(text: str, name: str) -> tuple[Manifest | None, list[str]]:
    """(the manifest of the valid keys, one problem per key left out). None when nothing in it can be used."""
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        return None, [f"{name} is not valid YAML, so none of it was used: {_yaml_problem(exc)}"
                      + (" (a value with braces or a colon needs quotes: [\"GET /items/{id}\"])"
                         if "{" in text else "")]
    if not isinstance(data, dict):
        return None, [f"{name} must be a mapping of keys to values (`tier: intermediate`), so none of it was used"]
    lines = _key_lines(node)
    problems: list[str] = []
    for _ in range(len(data) + 1):  # each round leaves out at least one key
        try:
            return (Manifest.model_validate(data) if data else None), problems
        except ValidationError as exc:
            bad: dict[str, list[str]] = {}
            for error in exc.errors():
                key = str(error["loc"][0]) if error["loc"] else ""
                key = "resources" if key == "declared_resources" else key  # what the learner wrote
                detail = ".".join(map(str, error["loc"][1:]))
                why = ("unknown key" if error["type"] == "extra_forbidden" and not detail
                       else f"{detail + ': ' if detail else ''}{error['msg']}")
                bad.setdefault(key, []).append(why)
            for key, whys in bad.items():
                where = f" (line {lines[key]})" if key in lines else ""
                known = "; the keys are: " + ", ".join(k for k in Manifest.model_fields if k != "declared_resources") if "unknown key" in whys else ""
                problems.append(f"{name}: `{key}`{where} was ignored: {'; '.join(whys)}{known}")
                data.pop(key, None)
    return None, problems


def _key_lines(node: Any) -> dict[str, int]:
    """The line each top-level key is on (1-based)."""
    if not isinstance(node, yaml.MappingNode):
        return {}
    return {str(key.value): key.start_mark.line + 1 for key, _ in node.value if isinstance(key, yaml.ScalarNode)}


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}" if mark else problem
