"""Rubrics: YAML data validated by pydantic, selectable by tier name or path; higher tiers include lower ones."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class RubricError(Exception):
    pass


class Criterion(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    title: str
    area: str
    checks: list[str] = Field(min_length=1)
    points: float = Field(gt=0)
    gate: bool = False  # must pass for the tier to be reached
    owasp: str | None = None  # OWASP API Security Top 10 (2023) reference, e.g. "API1:2023"
    hint: str
    visibility: Literal["visible", "hidden"] = "visible"
    params: dict[str, Any] = {}  # thresholds the criterion's checks judge by (p95_ms, deadline_s ...)
    # when_offered: graded only when the API offers what it examines (beginner pagination, a capstone's short
    # links); when every check finds nothing to examine the criterion is not_applicable and leaves the total
    applies: Literal["always", "when_offered"] = "always"


class Rubric(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    version: str
    title: str
    description: str = ""
    pass_mark: float = Field(ge=0, le=100)
    includes: list[str] = []
    # changes to included criteria, by id: {id: redirects, gate: false} keeps the rest of the criterion
    overrides: list[dict[str, Any]] = []
    criteria: list[Criterion]

    @model_validator(mode="after")
    def _unique_ids(self) -> Rubric:
        ids = [c.id for c in self.criteria]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"criterion ids appear twice: {duplicates}")
        return self

    @property
    def max_points(self) -> float:
        """The most a submission can earn, counting criteria that may not apply."""
        return sum(c.points for c in self.criteria)

    @property
    def check_ids(self) -> list[str]:
        return list(dict.fromkeys(check for c in self.criteria for check in c.checks))

    @property
    def check_params(self) -> dict[str, dict[str, Any]]:
        """{check id: the params of the criteria naming it}: thresholds are rubric data, not code."""
        out: dict[str, dict[str, Any]] = {}
        for criterion in self.criteria:
            for check in criterion.checks:
                out.setdefault(check, {}).update(criterion.params)
        return out


TIER_ORDER = ("beginner", "intermediate", "advanced", "capstone")  # each includes the one before


def tiers() -> list[str]:
    """The bundled tiers, lowest first."""
    return [t for t in TIER_ORDER if t in available()]


def rubric_dir() -> Path:
    return Path(str(resources.files("portfolio_grader") / "rubrics"))


def available() -> list[str]:
    return sorted(p.stem for p in rubric_dir().glob("*.yaml"))


def _unknown_checks_and_params(rubric: Rubric, text: str) -> list[tuple[int, str]]:
    """(line, problem) for each check id this grader does not have, and each param none of a criterion's checks
    reads or of the wrong type — in the file's own criteria and overrides (an included rubric checks its own), so
    that a bootcamp's rubric cannot leave a criterion silently unjudged."""
    from difflib import get_close_matches

    from .checks.registry import REGISTRY, import_builtin_checks

    import_builtin_checks()
    lines = _entry_lines(text)
    problems: list[tuple[int, str]] = []
    entries = [("criteria", i, c.model_dump()) for i, c in enumerate(rubric.criteria)]
    entries += [("overrides", i, o) for i, o in enumerate(rubric.overrides)]
    for section, index, entry in entries:
        line, label = lines.get((section, index), 0), f"criterion {entry.get('id')!r}"
        checks = entry.get("checks") or []
        for check_id in checks:
            if check_id not in REGISTRY:
                close = get_close_matches(check_id, list(REGISTRY), n=1)
                problems.append((line, f"{label} names the check {check_id!r}, which this grader does not have"
                                       + (f" (did you mean {close[0]!r}?)" if close else "")))
        declared = {name: kind for c in checks if c in REGISTRY for name, kind in REGISTRY[c].params}
        for name, value in (entry.get("params") or {}).items():
            if checks and name not in declared:
                reads = ", ".join(sorted(declared)) or "no params"
                problems.append((line, f"{label}: param {name!r} is read by none of its checks ({', '.join(checks)} "
                                       f"read {reads})"))
            elif name in declared and not _of_type(value, declared[name]):
                problems.append((line, f"{label}: param {name!r} must be {_TYPE_WORDS[declared[name]]}, "
                                       f"not {value!r}"))
    return problems


_TYPE_WORDS = {float: "a number", int: "a whole number", bool: "true or false", str: "text"}


def _of_type(value: Any, kind: type) -> bool:
    if isinstance(value, bool):
        return kind is bool
    return isinstance(value, (int, float)) if kind is float else isinstance(value, kind)


def _entry_lines(text: str) -> dict[tuple[str, int], int]:
    """{(section, index): line} of each item under `criteria:` and `overrides:` (1-based, as editors count)."""
    try:
        root = yaml.compose(text)
    except yaml.YAMLError:
        return {}
    found: dict[tuple[str, int], int] = {}
    for key, value in getattr(root, "value", []) if isinstance(root, yaml.MappingNode) else []:
        if key.value in ("criteria", "overrides") and isinstance(value, yaml.SequenceNode):
            for index, item in enumerate(value.value):
                found[(key.value, index)] = item.start_mark.line + 1
    return found


def load_rubric(name_or_path: str, _seen: tuple[str, ...] = ()) -> Rubric:
    """A rubric by tier name (`beginner`) or file path, with the criteria of the rubrics it includes."""
    path = Path(name_or_path)
    if not (path.suffix in (".yaml", ".yml") and path.is_file()):
        path = rubric_dir() / f"{name_or_path}.yaml"
        if not path.is_file():
            raise RubricError(f"no rubric {name_or_path!r}: use one of {', '.join(available())} or a path to a YAML file")
    try:
        text = path.read_text(encoding="utf-8")
        rubric = Rubric.model_validate(yaml.safe_load(text))
    except (yaml.YAMLError, ValidationError) as exc:
        raise RubricError(f"{path}: {exc}") from None
    problems = _unknown_checks_and_params(rubric, text)
    if problems:
        raise RubricError("\n".join(f"{path}:{line}: {problem}" for line, problem in problems))
    if rubric.name in _seen:
        raise RubricError(f"rubric includes form a cycle: {' -> '.join(_seen + (rubric.name,))}")
    criteria: dict[str, Criterion] = {}
    for included in rubric.includes:
        base = included if not path.parent.joinpath(f"{included}.yaml").is_file() else str(path.parent / f"{included}.yaml")
        for criterion in load_rubric(base, _seen + (rubric.name,)).criteria:
            criteria[criterion.id] = criterion
    for change in rubric.overrides:
        target = criteria.get(change.get("id", ""))
        if target is None:
            raise RubricError(f"{path}: overrides names {change.get('id')!r}, which no included rubric defines")
        try:
            criteria[target.id] = Criterion.model_validate({**target.model_dump(), **change})
        except ValidationError as exc:
            raise RubricError(f"{path}: override of {target.id!r}: {exc}") from None
    for criterion in rubric.criteria:
        criteria[criterion.id] = criterion  # a rubric may redefine an included criterion
    return rubric.model_copy(update={"criteria": list(criteria.values()), "overrides": []})
