"""A Dockerfile's stages, read the way the builder reads them: the image each FROM names (ARG defaults
substituted), the stage's name, its last USER and its instructions. The repository checks judge them; the compose
rewrite asks which image a built service really starts from."""

from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass
class Stage:
    image: str  # after ARG substitution
    name: str | None
    line: int
    from_line: str
    user: str | None = None  # the last USER of the stage
    user_line: int | None = None
    instructions: list[tuple[int, str, str]] = field(default_factory=list)  # (line, RUN/ENV/COPY..., the rest)


def parse_dockerfile(text: str) -> list[Stage]:
    """The stages of a Dockerfile: FROM (with ARG defaults substituted) and the last USER of each."""
    args: dict[str, str] = {}
    stages: list[Stage] = []
    logical: list[tuple[int, str]] = []
    buffer, start = "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not buffer and (not line or line.startswith("#")):
            continue
        if not buffer:
            start = number
        if line.endswith("\\"):
            buffer += line[:-1] + " "
            continue
        logical.append((start, buffer + line))
        buffer = ""
    for number, line in logical:
        word, _, rest = line.partition(" ")
        word = word.upper()
        if word == "ARG" and "=" in rest and not stages:
            name, _, value = rest.strip().partition("=")
            args[name.strip()] = value.strip().strip("\"'")
        elif word == "FROM":
            parts = [p for p in rest.split() if not p.startswith("--")]
            image = re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), parts[0]) if parts else ""
            stage_name = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else None
            stages.append(Stage(image, stage_name, number, line))
        elif word == "USER" and stages:
            stages[-1].user, stages[-1].user_line = rest.strip(), number
        if word != "FROM" and stages:
            stages[-1].instructions.append((number, word, rest.strip()))
    return stages


def base_image(stages: list[Stage], target: str | None = None) -> str:
    """The image a build starts FROM: that of the target stage (else the last), through `FROM <stage>` chains."""
    if not stages:
        return ""
    by_name = {s.name.lower(): s for s in stages if s.name}
    stage = (by_name.get(target.lower()) if target else None) or stages[-1]
    for _ in stages:
        parent = by_name.get(stage.image.lower())
        if parent is None or parent is stage:
            break
        stage = parent
    return stage.image
