"""The compose-file language, read the way Compose reads it (reads text, runs nothing).

YAML 1.2-ish scalars, `.env` files, and variable interpolation (`$VAR`, `${VAR:-d}`, ...) from
the repo's `.env` only, never the grader's environment. What cannot be interpolated is a
`ComposeRefused`.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from typing import Any

import yaml

_SECRET_VARIABLE = re.compile(r"SECRET|_KEY$|^KEY$|TOKEN|PASSW(OR)?D|SALT", re.I)


def fill_empty_secrets(env: dict[str, str]) -> dict[str, str]:
    """Random values for the secrets an example env file leaves empty (`SECRET_KEY=`): an app that refuses to start
    without one runs, with a key nobody knows, for this grade only."""
    return {k: secrets.token_urlsafe(24) for k, v in env.items() if not str(v).strip() and _SECRET_VARIABLE.search(k)}


def example_note(name: str, env: dict[str, str], filled: dict[str, str]) -> str:
    """The scorecard's line for an example env file used in place of a `.env` the repo does not commit."""
    given = sorted(k for k, v in env.items() if str(v).strip())
    empty = sorted(k for k, v in env.items() if not str(v).strip() and k not in filled)
    return (f"{name} was used in place of the uncommitted .env: it sets {', '.join(given) or 'nothing'}"
            + (f"; left empty: {', '.join(empty)}" if empty else "")
            + (f"; random values for this grade only: {', '.join(sorted(filled))}" if filled else ""))


class ComposeRefused(Exception):
    """The compose file asks for something the grader will not run (one sentence why)."""


class _Loader(yaml.SafeLoader):
    """YAML 1.2-ish scalars, like Compose v2: `22:22` stays a string, `on`/`yes` stay strings."""


_Loader.yaml_implicit_resolvers = {
    key: [(tag, regex) for tag, regex in resolvers if tag not in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float", "tag:yaml.org,2002:bool")]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
_Loader.add_implicit_resolver("tag:yaml.org,2002:int", re.compile(r"^[-+]?(?:0|[1-9][0-9]*|0x[0-9a-fA-F]+|0o[0-7]+)$"), list("-+0123456789"))
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
    list("-+0123456789."),
)


def load_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass


def parse_dotenv(text: str) -> dict[str, str]:
    """KEY=VALUE lines (`export`, quotes, comments) as Compose reads `.env`."""
    env: dict[str, str] = {}
    for raw in (text or "").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[7:].lstrip()
        if "=" not in line:
            continue
        key, value = line.split("=", 1)
        key = key.strip()
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", key):
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            quote, value = value[0], value[1:-1]
            if quote == '"':
                value = value.replace("\\n", "\n").replace('\\"', '"')
        else:
            value = re.split(r"\s+#", value, maxsplit=1)[0].rstrip()
        env[key] = value
    return env


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Compose variable substitution: $$, $VAR, ${VAR}, ${VAR:-d}, ${VAR-d}, ${VAR:?e}, ${VAR?e}, ${VAR:+a}, ${VAR+a}."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch != "$" or i + 1 >= n:
            out.append(ch)
            i += 1
            continue
        nxt = text[i + 1]
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "{":
            depth, j = 1, i + 2
            while j < n and depth:
                if text[j] == "{":
                    depth += 1
                elif text[j] == "}":
                    depth -= 1
                j += 1
            if depth:
                raise ComposeRefused(f"the compose file has an unclosed variable: {text[i:i + 40]!r}")
            out.append(_expand(text[i + 2 : j - 1], env))
            i = j
        elif nxt == "_" or nxt.isalpha():
            j = i + 1
            while j < n and (text[j] == "_" or text[j].isalnum()):
                j += 1
            out.append(env.get(text[i + 1 : j], ""))
            i = j
        else:
            out.append("$")
            i += 1
    return "".join(out)


def _expand(expr: str, env: Mapping[str, str]) -> str:
    match = re.match(r"([A-Za-z_][A-Za-z0-9_]*)(:?[-?+])?(.*)$", expr, re.DOTALL)
    if not match:
        raise ComposeRefused(f"the compose file has an invalid variable: ${{{expr}}}")
    name, op, word = match.group(1), match.group(2), match.group(3)
    value = env.get(name)
    if not op:
        return value or ""
    colon = op.startswith(":")
    kind = op[-1]
    missing = value is None or (colon and value == "")
    if kind == "-":
        return interpolate(word, env) if missing else (value or "")
    if kind == "+":
        return "" if missing else interpolate(word, env)
    if missing:  # "?"
        message = interpolate(word, env) or "required"
        raise ComposeRefused(
            f"the compose file requires the variable {name} ({message}); commit a .env.example that sets it"
        )
    return value or ""


def _interpolate_tree(node: Any, env: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [_interpolate_tree(v, env) for v in node]
    if isinstance(node, dict):
        return {k: _interpolate_tree(v, env) for k, v in node.items()}
    return node


def _escape_dollars(node: Any) -> Any:
    """After our interpolation, what compose sees must be literal: `$` -> `$$`."""
    if isinstance(node, str):
        return node.replace("$", "$$")
    if isinstance(node, list):
        return [_escape_dollars(v) for v in node]
    if isinstance(node, dict):
        return {k: _escape_dollars(v) for k, v in node.items()}
    return node
