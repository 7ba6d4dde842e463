"""GitHub Actions plumbing: step outputs, the job summary, and one PR comment kept up to date.

The runner hands a step files to append to (`$GITHUB_OUTPUT`, `$GITHUB_STEP_SUMMARY`) and the event
that started the job (`$GITHUB_EVENT_PATH`). The grade comment is found again by a hidden marker at
the start of its body and edited in place on every push, so a PR carries one grade, not one per push.
Only GitHub's REST API is spoken (httpx), with the job's token.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import httpx

MARKER = "<!-- portfolio-grader -->"
API_VERSION = "2022-11-28"
MAX_COMMENT = 65_536  # GitHub refuses longer comment bodies
MAX_PAGES = 50  # 5,000 comments: a bound, not a limit anyone meets


class GitHubError(Exception):
    """The REST API refused or failed; the message says which request and what came back."""


@dataclass(frozen=True)
class CommentResult:
    action: Literal["created", "updated"]
    id: int
    url: str


# ---------------------------------------------------------------- runner files


def write_outputs(path: str | Path, values: Mapping[str, object]) -> None:
    """Append step outputs in the runner's multiline form (`name<<DELIMITER`), safe for any value."""
    with open(path, "a", encoding="utf-8") as handle:
        for name, value in values.items():
            text = "" if value is None else str(value)
            delimiter = f"ghadelimiter_{uuid.uuid4()}"
            handle.write(f"{name}<<{delimiter}\n{text}\n{delimiter}\n")


def append_summary(path: str | Path, markdown: str) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(markdown.rstrip("\n") + "\n")


def pull_request_number(event_path: str | Path | None) -> int | None:
    """The PR (or issue) the triggering event belongs to; None for a push or a missing payload."""
    if not event_path:
        return None
    try:
        event = json.loads(Path(event_path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    for key in ("pull_request", "issue"):
        number = (event.get(key) or {}).get("number") if isinstance(event, dict) else None
        if isinstance(number, int):
            return number
    number = event.get("number") if isinstance(event, dict) else None
    return number if isinstance(number, int) else None


# ---------------------------------------------------------------- the PR comment


def comment_body(markdown: str, marker: str = MARKER) -> str:
    body = f"{marker}\n{markdown}"
    if len(body) > MAX_COMMENT:
        body = body[: MAX_COMMENT - 60].rsplit("\n", 1)[0] + "\n\n_(truncated; see the job summary)_\n"
    return body


def _client(api_url: str, token: str, client: httpx.Client | None) -> httpx.Client:
    if client is not None:
        return client
    return httpx.Client(base_url=api_url.rstrip("/"), timeout=30.0, headers={
        "Authorization": f"Bearer {token}",
        "Accept": "application/vnd.github+json",
        "X-GitHub-Api-Version": API_VERSION,
        "User-Agent": "portfolio-grader",
    })


def _check(response: httpx.Response, what: str) -> httpx.Response:
    if response.status_code >= 400:
        detail = response.text[:300].replace("\n", " ")
        raise GitHubError(f"{what}: HTTP {response.status_code} {detail}")
    return response


def find_comment(client: httpx.Client, repository: str, number: int, marker: str = MARKER) -> dict | None:
    """The comment this action wrote before: its body starts with the marker; a bot's first if several."""
    url: str | None = f"/repos/{repository}/issues/{number}/comments"
    params: dict[str, int] | None = {"per_page": 100}
    api_host = urlsplit(str(client.base_url)).netloc
    found: list[dict] = []
    for _ in range(MAX_PAGES):
        if url is None:
            break
        response = _check(client.get(url, params=params), f"GET {url}")
        for comment in response.json():
            if isinstance(comment, dict) and str(comment.get("body") or "").startswith(marker):
                found.append(comment)
        following = response.links.get("next", {}).get("url")
        # the token goes only where the API is: a next link to another host is not followed
        url = following if following and urlsplit(following).netloc == api_host else None
        params = None
    bots = [c for c in found if (c.get("user") or {}).get("type") == "Bot"]
    return next(iter(bots or found), None)


def upsert_comment(*, api_url: str, repository: str, number: int, token: str, markdown: str,
                   marker: str = MARKER, client: httpx.Client | None = None) -> CommentResult:
    """Update this action's comment on PR `number`, or create it: one grade comment per PR."""
    body = comment_body(markdown, marker)
    http = _client(api_url, token, client)
    try:
        existing = find_comment(http, repository, number, marker)
        if existing is not None:
            url = f"/repos/{repository}/issues/comments/{existing['id']}"
            data = _check(http.patch(url, json={"body": body}), f"PATCH {url}").json()
            return CommentResult("updated", int(data["id"]), str(data.get("html_url") or ""))
        url = f"/repos/{repository}/issues/{number}/comments"
        data = _check(http.post(url, json={"body": body}), f"POST {url}").json()
        return CommentResult("created", int(data["id"]), str(data.get("html_url") or ""))
    except httpx.HTTPError as exc:
        raise GitHubError(f"GitHub API at {api_url} did not answer: {exc}") from None
    finally:
        if client is None:
            http.close()


# ---------------------------------------------------------------- the action's grading step


@dataclass(frozen=True)
class ActionOptions:
    source: str | None = "."  # the checked-out PR head
    url: str | None = None
    tier: str | None = None  # a tier name or a rubric path
    threshold: float | None = None  # default: the rubric's pass mark
    out: Path = Path("portfolio-grader-report")
    comment: bool = True
    baseline: Path | None = None
    seed: int | None = None
    max_examples: int | None = None


def annotate(level: Literal["error", "warning", "notice"], message: str) -> None:
    """A workflow command the runner shows as an annotation; % CR LF escaped as the runner expects."""
    text = message.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    print(f"::{level} title=portfolio-grader::{text}", flush=True)


def run_action(options: ActionOptions, environ: Mapping[str, str] | None = None) -> int:
    """Grade, write the scorecard folder, the job summary, the step outputs and the PR comment.

    Returns 0 when a scorecard was written (whether or not it passed: the action's last step enforces
    the threshold, after the scorecard is uploaded), 2 when nothing could be graded.
    """
    from dataclasses import replace

    from .checks import Settings
    from .pipeline import GradeError, GradeRequest, grade
    from .report import load_scorecard, write_format, write_reports
    from .report.baseline import with_baseline
    from .report.learner import learner_copy
    from .report.markdown import md, render_markdown
    from .report.terminal import print_summary

    env = os.environ if environ is None else environ
    settings = Settings()
    if options.seed is not None:
        settings = replace(settings, seed=options.seed)
    if options.max_examples is not None:
        settings = replace(settings, max_examples=max(1, options.max_examples))
    source = options.source or None
    if source and Path(source).is_dir():
        source = str(Path(source).resolve())  # "." is named after its folder: the repository's name on a runner
    try:
        scorecard = grade(GradeRequest(source=source, url=options.url or None,
                                       tier=options.tier or None, settings=settings))
    except GradeError as exc:
        markdown = f"## ❌ portfolio-grader could not grade this submission\n\n{md(exc, 1000)}\n"
        _publish(env, options, markdown, {"score": "", "tier": "", "tier-reached": "", "passed": "false",
                                          "threshold": "" if options.threshold is None else options.threshold,
                                          "scorecard": ""})
        annotate("error", f"could not grade: {exc}")
        return 2
    if options.baseline:
        try:
            scorecard = with_baseline(scorecard, load_scorecard(options.baseline))
        except (OSError, ValueError) as exc:
            annotate("warning", f"baseline {options.baseline} ignored: {exc}")

    folder = Path(options.out) / scorecard.name
    paths = write_reports(scorecard, folder)
    for fmt in ("markdown", "junit", "sarif"):
        paths[fmt] = write_format(scorecard, fmt, folder)
    threshold = scorecard.pass_mark if options.threshold is None else options.threshold
    passed = scorecard.gates_met and scorecard.score >= threshold
    print_summary(learner_copy(scorecard), paths=paths)  # the job log is learner-facing

    reached = [step.tier for step in scorecard.ladder if step.status == "reached"]
    markdown = render_markdown(scorecard, threshold=options.threshold)
    _publish(env, options, markdown, {
        "score": f"{scorecard.score:g}",
        "tier": scorecard.tier,
        "tier-reached": reached[-1] if reached else "",
        "passed": "true" if passed else "false",
        "threshold": f"{threshold:g}",
        "scorecard": str(folder.resolve()),
    })
    if not passed:
        annotate("error", f"{scorecard.name} scored {scorecard.score:g}/100: below the threshold {threshold:g}"
                 if scorecard.score < threshold else f"{scorecard.name}: a gate criterion of the tier did not pass")
    return 0


def _publish(env: Mapping[str, str], options: ActionOptions, markdown: str, outputs: Mapping[str, object]) -> None:
    """Outputs, job summary and PR comment; a missing runner file or a refused comment is a warning, not a failure."""
    if env.get("GITHUB_OUTPUT"):
        write_outputs(env["GITHUB_OUTPUT"], outputs)
    if env.get("GITHUB_STEP_SUMMARY"):
        append_summary(env["GITHUB_STEP_SUMMARY"], markdown)
    if not options.comment:
        return
    number = pull_request_number(env.get("GITHUB_EVENT_PATH"))
    token, repository = env.get("GITHUB_TOKEN", ""), env.get("GITHUB_REPOSITORY", "")
    if number is None or not token or not repository:
        missing = "a pull_request event" if number is None else "GITHUB_TOKEN" if not token else "GITHUB_REPOSITORY"
        print(f"portfolio-grader: no PR comment ({missing} not available)", flush=True)
        return
    try:
        result = upsert_comment(api_url=env.get("GITHUB_API_URL") or "https://api.github.com",
                                repository=repository, number=number, token=token, markdown=markdown)
    except GitHubError as exc:
        # a fork's PR gets a read-only token: the grade stands, only the comment is missing
        annotate("warning", f"the PR comment could not be written: {exc}")
        return
    print(f"portfolio-grader: {result.action} the grade comment on #{number} {result.url}", flush=True)
