"""The finding kinds the grader can report, and what each means: the registry behind `portfolio-grader explain`.

No text is written twice: everything is read from where the checks and rubrics already keep it.

- a kind and the check that reports it: each `ctx.fail("kind", severity, ..., hint=...)` or
  `ctx.finding(check, "kind", ...)` call in the check modules (read from their source, not run);
- what it means: the contract check's failure table (`checks/contract.py` KINDS: title and why) or else
  the titles of the checks that report it;
- how to fix it: the hints the checks give with it (a `HINTS` dict entry, a module constant or a literal);
- why it matters: the rubric criteria that rest on those checks (points, gate, OWASP reference, hint).
  Criteria a rubric keeps hidden are left out, as they are from every learner-facing view.
"""

from __future__ import annotations

import ast
import difflib
import importlib
import inspect
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any


@dataclass(frozen=True)
class Criterion:
    tier: str
    id: str
    title: str
    points: float
    gate: bool
    owasp: str | None
    hint: str


@dataclass
class KindInfo:
    kind: str
    title: str = ""  # a short name, when the checks give one
    why: str = ""  # why it matters, when the checks say it
    severities: list[str] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)  # check ids that report it
    hints: list[str] = field(default_factory=list)  # how to fix it
    criteria: list[Criterion] = field(default_factory=list)

    def check_titles(self) -> list[str]:
        from .checks.registry import REGISTRY

        return [REGISTRY[c].title for c in self.checks if c in REGISTRY]


@lru_cache(maxsize=1)
def registry() -> dict[str, KindInfo]:
    """Every finding kind, by name."""
    from .checks.registry import REGISTRY, import_builtin_checks

    import_builtin_checks()
    kinds: dict[str, KindInfo] = {}
    for module_name in sorted({spec.func.__module__ for spec in REGISTRY.values()}):
        _read_module(importlib.import_module(module_name), kinds)
    _read_contract_table(kinds)
    _add_criteria(kinds)
    return dict(sorted(kinds.items()))


def explain(kind: str) -> KindInfo | None:
    return registry().get(kind)


def close_to(kind: str, limit: int = 6) -> list[str]:
    """Kinds spelled like `kind`, or containing it (`bola` -> bola_read, bola_write, ...)."""
    names = list(registry())
    near = difflib.get_close_matches(kind, names, n=limit, cutoff=0.6)
    containing = [n for n in names if kind and kind.lower() in n and n not in near]
    return (near + containing)[:limit]


# ---------------------------------------------------------------- reading the check modules


def _add(kinds: dict[str, KindInfo], kind: str, *, check: str | None = None, severity: str | None = None,
         hint: str | None = None) -> KindInfo:
    info = kinds.setdefault(kind, KindInfo(kind))
    if check and check not in info.checks:
        info.checks.append(check)
    if severity and severity not in info.severities:
        info.severities.append(severity)
    if hint and " ".join(hint.split()) not in info.hints:
        info.hints.append(" ".join(hint.split()))
    return info


def _read_module(module: Any, kinds: dict[str, KindInfo]) -> None:
    tree = ast.parse(inspect.getsource(module))
    reporters = _reporters(tree)
    module_checks = sorted({c for checks in reporters.values() for c in checks})
    for function, call in _calls(tree):
        name = call.func.attr if isinstance(call.func, ast.Attribute) else None
        args = call.args
        if name == "fail" and args:
            kind_node, severity_node, named = args[0], args[1] if len(args) > 1 else None, None
        elif name == "finding" and len(args) >= 2:
            kind_node, severity_node, named = args[1], args[2] if len(args) > 2 else None, _value(module, args[0])
        else:
            continue
        kind = _value(module, kind_node)
        if not isinstance(kind, str):
            continue  # a kind chosen at run time: its HINTS entry names it below
        hint = next((_value(module, k.value) for k in call.keywords if k.arg == "hint"), None)
        severity = _value(module, severity_node) if severity_node is not None else None
        checks = [named] if isinstance(named, str) else sorted(reporters.get(function, ())) or module_checks
        for check_id in checks:
            _add(kinds, kind, check=check_id, severity=severity if isinstance(severity, str) else None,
                 hint=hint if isinstance(hint, str) else None)
    for kind, hint in (getattr(module, "HINTS", None) or {}).items():
        info = _add(kinds, kind, hint=hint if isinstance(hint, str) else None)
        if not info.checks:
            info.checks.extend(module_checks)


def _check_id(decorator: ast.expr) -> str | None:
    """The id of a `@check("id", ...)` decorator."""
    if not (isinstance(decorator, ast.Call) and getattr(decorator.func, "id", getattr(decorator.func, "attr", None))
            == "check"):
        return None
    node = decorator.args[0] if decorator.args else next((k.value for k in decorator.keywords if k.arg == "id"), None)
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _reporters(tree: ast.AST) -> dict[str, set[str]]:
    """For each function or class of the module, the checks that reach it (a check calls it, or calls what
    calls it); by name, which is close enough inside one module."""
    defs: dict[str, list[ast.AST]] = {}
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defs.setdefault(node.name, []).append(node)

    def used(node: ast.AST) -> set[str]:
        names = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
        names |= {n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)}
        return names & defs.keys()

    reach: dict[str, set[str]] = {}
    for node in ast.walk(tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        check_id = next((c for c in map(_check_id, node.decorator_list) if c), None)
        if check_id is None:
            continue
        todo, seen = [node.name], set()
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            reach.setdefault(name, set()).add(check_id)
            for definition in defs.get(name, ()):
                todo.extend(used(definition) - seen)
    return reach


def _calls(tree: ast.AST):
    """(the name of the innermost function around it, call) for every call in the module."""
    def visit(node: ast.AST, function: str | None):
        for child in ast.iter_child_nodes(node):
            inner = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else function
            if isinstance(child, ast.Call):
                yield function, child
            yield from visit(child, inner)

    yield from visit(tree, None)


def _value(module: Any, node: ast.expr | None) -> Any:
    """A literal, a module constant, `HINTS["key"]` or a `+` of those; None for what only a run knows."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return getattr(module, node.id, None)
    if isinstance(node, ast.Subscript):
        container, key = _value(module, node.value), _value(module, node.slice)
        try:
            return container[key] if container is not None and key is not None else None
        except (KeyError, IndexError, TypeError):
            return None
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _value(module, node.left), _value(module, node.right)
        return left + right if isinstance(left, str) and isinstance(right, str) else None
    return None


def _read_contract_table(kinds: dict[str, KindInfo]) -> None:
    """The contract checks' failure kinds carry their own title and why (checks/contract.py KINDS), and the
    table of which check judges which kinds says who reports them."""
    from .checks import contract

    for kind, entry in contract.KINDS.items():
        info = _add(kinds, kind, severity=entry.severity, hint=entry.hint)
        info.title, info.why = info.title or entry.title, info.why or entry.why
        for check_id, judged in contract._CHECKS.items():
            if kind in judged.kinds and check_id not in info.checks:
                info.checks.append(check_id)


def _add_criteria(kinds: dict[str, KindInfo]) -> None:
    from .rubric import load_rubric, tiers

    seen: set[str] = set()
    for tier in tiers():
        for c in load_rubric(tier).criteria:
            if c.id in seen or c.visibility == "hidden":
                continue
            seen.add(c.id)
            entry = Criterion(tier, c.id, c.title, c.points, c.gate, c.owasp, " ".join(c.hint.split()))
            for info in kinds.values():
                if set(info.checks) & set(c.checks):
                    info.criteria.append(entry)
