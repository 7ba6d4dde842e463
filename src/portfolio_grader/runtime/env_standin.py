"""What stands in for an env file the repository does not commit (`.env` is in .gitignore, rightly).

A learner's compose file reads `.env` (its `env_file:`, and `${VAR}` in the file itself); the repository ships
what a new user is told to make it from, in one of two places, and the grader reads both as that user would:

    an example file beside it      .env.example  .env.sample  example.env  .env.exemplo  ...   (`example_for`)
    a block its README spells out  "Create a `.env` file:" then a fenced block of KEY=VALUE     (`readme_block`)

`stand_in` combines them: the example's values, then the README's over them (the README is what the user is told
to write; an example often holds placeholders, `DB_HOST=changeme`). References between the values (`DATABASE_URL=
postgresql://${POSTGRES_USER}:...`) are expanded the way Compose v2 expands them in an env file, so the v1 tool
sees the same values. Pure: reads files, runs nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .compose_file import ComposeRefused, interpolate, parse_dotenv

EXAMPLE_SUFFIXES = (".example", ".sample", ".dist", ".template", ".exemplo", ".defaults")
EXAMPLE_PREFIXES = ("example", "sample")  # example.env, sample.env (for a dotted name, `.env`)
README_NAMES = ("readme.md", "readme.markdown", "readme.rst", "readme.txt", "readme")
LEAD_LINES = 3  # prose lines before a fence that may name the file it shows
_ASSIGNMENT = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=(.*)$")
_FENCE = re.compile(r"^\s*(```+|~~~+)\s*([^\s`]*)")


@dataclass(frozen=True)
class ReadmeBlock:
    """A fenced block of KEY=VALUE lines a README introduces as the content of an env file."""

    values: dict[str, str]  # as written (unexpanded)
    single_quoted: frozenset[str]  # keys whose value is single-quoted: literal, never expanded
    where: str  # "README.md (line 19)"


@dataclass(frozen=True)
class StandIn:
    """The values used in place of an uncommitted env file, and where they came from."""

    values: dict[str, str]  # expanded
    label: str  # "README.md's .env block (line 19), over .env.sample" — the scorecard's name for them
    example: Path | None = None  # the example file, when there is one
    readme: ReadmeBlock | None = None
    expanded: frozenset[str] = field(default_factory=frozenset)  # keys whose value referred to another

    def beyond_example(self) -> dict[str, str]:
        """What the example file alone would not give the service: the README's values and expanded references
        (the example itself goes to compose as an env_file, and the v1 tool does not expand references in one)."""
        example = parse_dotenv(_read(self.example)) if self.example is not None else {}
        return {k: v for k, v in self.values.items() if example.get(k) != v or k in self.expanded}


def _read(path: Path | None, limit: int = 400_000) -> str:
    try:
        return path.read_text("utf-8", "replace")[:limit] if path is not None and path.is_file() else ""
    except OSError:
        return ""


def example_names(name: str) -> list[str]:
    """The names an example of the env file `name` goes by: `.env.example`, `example.env`, `env.example`..."""
    names = [name + suffix for suffix in EXAMPLE_SUFFIXES]
    if name.startswith(".") and len(name) > 1:
        names += [prefix + name for prefix in EXAMPLE_PREFIXES] + [name[1:] + ".example"]
    return names


def example_for(path: Path) -> Path | None:
    """The example file beside the missing env file `path`, if the repository has one."""
    return next((path.with_name(n) for n in example_names(path.name) if path.with_name(n).is_file()), None)


def _names_file(text: str, name: str) -> bool:
    """Does this line name the file `name` itself (`.env`, not `.env.sample` nor `dotenv`)?"""
    return re.search(rf"(?<![\w.-]){re.escape(name)}(?![\w.-]|\.\w)", text) is not None


def readme_block(folders: Iterable[Path], name: str = ".env") -> ReadmeBlock | None:
    """The first fenced block of a README (in `folders`, first first) that shows the content of `name`: every line
    KEY=VALUE, a comment or blank, but for at most a first line naming the file ("`.env file`"); and the file named
    on that first line, in a comment, in the fence's info string, or in the few prose lines just before it."""
    seen: set[Path] = set()
    for folder in folders:
        try:
            entries = sorted(Path(folder).iterdir()) if Path(folder).is_dir() else []
        except OSError:
            continue
        for path in entries:
            if path.name.lower() not in README_NAMES or path in seen or not path.is_file():
                continue
            seen.add(path)
            found = _block_in(_read(path), name, path.name)
            if found is not None:
                return found
    return None


def _block_in(text: str, name: str, readme: str) -> ReadmeBlock | None:
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        fence = _FENCE.match(lines[i])
        if not fence:
            i += 1
            continue
        marker, info = fence.group(1), fence.group(2)
        end = next((j for j in range(i + 1, len(lines)) if lines[j].strip().startswith(marker[:3])), len(lines))
        body = lines[i + 1:end]
        lead = [line for line in lines[max(0, i - 8):i] if line.strip()][-LEAD_LINES:]
        block = _env_block(body, name, named=_names_file(info, name) or any(_names_file(line, name) for line in lead))
        if block is not None:
            values, single = block
            return ReadmeBlock(values, frozenset(single), f"{readme} (line {i + 2})")
        i = end + 1
    return None


def _env_block(body: list[str], name: str, *, named: bool) -> tuple[dict[str, str], set[str]] | None:
    values: dict[str, str] = {}
    single: set[str] = set()
    other = 0
    for raw in body:
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            named = named or _names_file(line, name)
            continue
        match = _ASSIGNMENT.match(line)
        if match is None:
            if values or other or not _names_file(line, name):  # prose or a command: not an env file's content
                return None
            other, named = 1, True  # a first line naming the file: "`.env file`"
            continue
        value = match.group(2).strip()
        if value and value[0] not in "'\"" and re.search(r"\s\S", re.split(r"\s+#", value, maxsplit=1)[0]):
            return None  # `DEBUG=1 python app.py`: a command with a variable, not a line of an env file
        values[match.group(1)] = parse_dotenv(f"{match.group(1)}={value}").get(match.group(1), "")
        if value.startswith("'"):
            single.add(match.group(1))
    return (values, single) if values and named else None


def _expand(values: dict[str, str], literal: Iterable[str], base: dict[str, str]) -> tuple[dict[str, str], set[str]]:
    """References to earlier values (`${POSTGRES_USER}`, `$HOST`, `${PORT:-5432}`) expanded as Compose v2 does in an
    env file; an unknown one becomes empty, an erroring one (`${X:?}`) stays as written."""
    out = dict(base)
    expanded: set[str] = set()
    literal = set(literal)
    for key, value in values.items():
        if key not in literal and "$" in value:
            try:
                new = interpolate(value, out)
            except ComposeRefused:
                new = value
            if new != value:
                expanded.add(key)
            value = new
        out[key] = value
    return out, expanded


def stand_in(path: Path, folders: Iterable[Path]) -> StandIn | None:
    """What to use in place of the env file `path` the repository does not commit: its example file, the block a
    README in `folders` shows for it, or the README's values over the example's; None when the repo has neither."""
    example = example_for(path)
    block = readme_block(folders, path.name)
    if example is None and block is None:
        return None
    example_values, example_expanded = _expand(parse_dotenv(_read(example)), (), {}) if example else ({}, set())
    if block is not None:
        values, readme_expanded = _expand(block.values, block.single_quoted, example_values)
    else:
        values, readme_expanded = example_values, set()
    if block is None:
        label = example.name
    elif example is None:
        label = f"the {path.name} block of {block.where}"
    else:
        label = f"the {path.name} block of {block.where}, over {example.name}"
    return StandIn(values, label, example, block, frozenset(example_expanded | readme_expanded))


def dotenv_for(compose_dir: Path, root: Path) -> tuple[dict[str, str], str | None]:
    """The variables compose would interpolate the compose file with: `.env` beside it (or at the root), and None;
    when the repo does not commit one, what stands in for it (`stand_in`) and its label."""
    folders = list(dict.fromkeys([compose_dir, root]))
    for folder in folders:
        committed = folder / ".env"
        if committed.is_file():
            return parse_dotenv(_read(committed)), None
        found = stand_in(committed, folders)
        if found is not None:
            return found.values, found.label
    return {}, None
