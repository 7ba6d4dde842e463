"""Repository checks: what a reviewer reads before running anything."""

from __future__ import annotations

import re

from ..models import Evidence
from .registry import CheckContext, check

_RUN_WORDS = re.compile(
    r"docker(-|\s)?compose\s+up|docker\s+(build|run)|uvicorn|gunicorn|flask\s+run|python3?\s+[\w/.-]+\.py|"
    r"python3?\s+-m\s+\w+|npm\s+(start|run)|node\s+[\w/.-]+\.js|yarn\s+(start|dev)|pip\s+install|make\s+\w+|"
    r"manage\.py\s+runserver",
    re.IGNORECASE,
)


@check("repo.readme", area="repo", title="The README explains how to run the project", needs=("repo",))
def readme(ctx: CheckContext):
    facts = ctx.facts
    if not facts.readme:
        finding = ctx.fail("readme_missing", "medium", "There is no README: a reviewer does not know what the "
                           "project is or how to run it.", evidence=[Evidence(curl="ls README*", note="no README file")],
                           hint="Add README.md: what the API does, how to run it (`docker build` / `docker compose up`"
                                " commands in a code block), how to run the tests, and the main design decisions.")
        return ctx.verdict("no README", [finding])
    text = facts.readme_text
    commands = _RUN_WORDS.findall(text)
    excerpt = text[:600]
    evidence = [Evidence(curl=f"grep -niE 'docker|uvicorn|npm|pip|python' {facts.readme}", file=facts.readme,
                         excerpt=excerpt)]
    if len(text.strip()) < 200 or not commands:
        finding = ctx.fail("readme_missing", "medium", f"{facts.readme} does not explain how to run the project "
                           f"({len(text.strip())} characters, no run command found).", evidence=evidence,
                           hint="Give the exact commands to build and run the API (e.g. `docker build -t api . && "
                                "docker run -p 8000:8000 api`) in a fenced code block, and how to run the tests.")
        return ctx.verdict("the README does not say how to run it", [finding], score=0.3 if text.strip() else 0.0)
    return ctx.verdict(f"{facts.readme} gives run commands ({len(commands)} found)", evidence=evidence)
