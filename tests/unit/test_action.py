"""The GitHub Action in a simulated runner: action.yml's own `run:` steps, executed with bash the way
the runner does (`bash --noprofile --norc -eo pipefail`), with the runner's files ($GITHUB_OUTPUT,
$GITHUB_STEP_SUMMARY, $GITHUB_PATH, $GITHUB_ENV, an event payload) and GITHUB_API_URL pointing at a
fake GitHub REST API on 127.0.0.1 — the only thing mocked. Steps that `uses:` another action
(setup-python, upload-artifact) are not run; their `with:` is evaluated so the test sees what they get.

The submissions are real: a folder with a README, a Dockerfile and route handlers, graded against an
in-process API through the action's `url` input (no Docker needed).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import yaml

from portfolio_grader.github import (
    MARKER,
    GitHubError,
    append_summary,
    comment_body,
    pull_request_number,
    upsert_comment,
    write_outputs,
)
from portfolio_grader.report import load_scorecard
from portfolio_grader.report.markdown import render_markdown

from ..conftest import serve_asgi, serve_wsgi
from ..probes.apps import flawed_recipes_app, good_books_app
from .test_formats import BOOKS_REPO, RECIPES_REPO, write_repo

REPO_ROOT = Path(__file__).resolve().parents[2]
TOKEN = "ghs_simulated_job_token"
REPOSITORY = "learner/books-api"


# ---------------------------------------------------------------- the fake GitHub REST API


@dataclass
class FakeGitHub:
    """Issue comments as GitHub's REST API serves them (pages with Link headers), every request recorded."""

    page_size: int = 2  # GitHub's pages hold up to 100; small pages make the action follow `next` links
    comments: dict[int, list[dict]] = field(default_factory=dict)
    requests: list[dict] = field(default_factory=list)
    tokens: dict[str, str] = field(default_factory=lambda: {TOKEN: "write"})
    next_id: int = 1000
    url: str = ""

    def add(self, number: int, body: str, login: str = "octocat", kind: str = "User") -> dict:
        self.next_id += 1
        comment = {"id": self.next_id, "body": body, "user": {"login": login, "type": kind},
                   "html_url": f"https://github.com/{REPOSITORY}/pull/{number}#issuecomment-{self.next_id}"}
        self.comments.setdefault(number, []).append(comment)
        return comment

    def handle(self, method: str, target: str, headers: dict, body: bytes) -> tuple[int, dict, object]:
        path, query = urlsplit(target).path, parse_qs(urlsplit(target).query)
        payload = json.loads(body) if body else None
        self.requests.append({"method": method, "path": path, "query": query, "headers": headers, "json": payload})
        access = self.tokens.get(headers.get("authorization", "").removeprefix("Bearer "))
        if access is None:
            return 401, {}, {"message": "Bad credentials"}
        listing = re.fullmatch(rf"/repos/{REPOSITORY}/issues/(\d+)/comments", path)
        single = re.fullmatch(rf"/repos/{REPOSITORY}/issues/comments/(\d+)", path)
        if listing and method == "GET":
            number = int(listing[1])
            per_page = min(int(query.get("per_page", ["30"])[0]), self.page_size)
            page = int(query.get("page", ["1"])[0])
            items = self.comments.get(number, [])
            chunk = items[(page - 1) * per_page: page * per_page]
            extra = {}
            if page * per_page < len(items):
                extra["Link"] = f'<{self.url}{path}?per_page={per_page}&page={page + 1}>; rel="next"'
            return 200, extra, chunk
        if access != "write" and method in ("POST", "PATCH"):
            return 403, {}, {"message": "Resource not accessible by integration"}
        if listing and method == "POST":
            return 201, {}, self.add(int(listing[1]), payload["body"], "github-actions[bot]", "Bot")
        if single and method == "PATCH":
            for comments in self.comments.values():
                for comment in comments:
                    if comment["id"] == int(single[1]):
                        comment["body"] = payload["body"]
                        return 200, {}, comment
        return 404, {}, {"message": "Not Found"}

    def of(self, method: str) -> list[dict]:
        return [r for r in self.requests if r["method"] == method]


@pytest.fixture
def github():
    fake = FakeGitHub()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self):
            length = int(self.headers.get("Content-Length") or 0)
            status, extra, data = fake.handle(self.command, self.path, {k.lower(): v for k, v in self.headers.items()},
                                              self.rfile.read(length))
            raw = json.dumps(data).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            for name, value in extra.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(raw)

        do_GET = do_POST = do_PATCH = _serve

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield fake
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


# ---------------------------------------------------------------- the simulated runner


@dataclass
class StepRun:
    name: str
    id: str | None
    uses: str | None = None
    with_: dict = field(default_factory=dict)
    code: int | None = None  # None: not run (a `uses:` step, or skipped after a failure)
    stdout: str = ""
    stderr: str = ""
    outputs: dict = field(default_factory=dict)
    env: dict = field(default_factory=dict)


@dataclass
class ActionRun:
    steps: list[StepRun]
    outputs: dict
    summary: str

    @property
    def failed(self) -> bool:
        return any(s.code not in (None, 0) for s in self.steps)

    def step(self, name: str) -> StepRun:
        return next(s for s in self.steps if s.name == name)


_EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


def parse_output_file(text: str) -> dict[str, str]:
    """$GITHUB_OUTPUT as the runner reads it: `name=value` lines and `name<<DELIMITER` blocks."""
    values, lines, i = {}, text.split("\n"), 0
    while i < len(lines):
        line = lines[i]
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            end = lines.index(delimiter, i + 1)
            values[name] = "\n".join(lines[i + 1:end])
            i = end + 1
            continue
        if "=" in line:
            name, value = line.split("=", 1)
            values[name] = value
        i += 1
    return values


class Runner:
    """Runs action.yml as a composite action on one job: the steps in order, stopping at a failure."""

    def __init__(self, action_dir: Path, workspace: Path, temp: Path, api_url: str) -> None:
        self.action_dir, self.workspace, self.temp, self.api_url = action_dir, workspace, temp, api_url
        self.action = yaml.safe_load((action_dir / "action.yml").read_text())
        self.paths: list[str] = [str(Path(sys.executable).parent)]  # what setup-python puts on PATH
        self.job_env: dict[str, str] = {}

    def evaluate(self, expr: str, ctx: dict) -> str:
        """The expressions action.yml uses: contexts, `a || b`, `x != ''`, `a && b`, always()."""
        if "&&" in expr:
            return "true" if all(self.evaluate(p, ctx) not in ("", "false") for p in expr.split("&&")) else "false"
        if "||" in expr:
            return next((v for v in (self.evaluate(p, ctx) for p in expr.split("||")) if v), "")
        if "!=" in expr:
            left, right = (p.strip() for p in expr.split("!="))
            return "true" if self.evaluate(left, ctx) != right.strip("'") else "false"
        expr = expr.strip()
        if expr == "always()":
            return "true"
        head, *rest = expr.split(".")
        value = ctx[head]
        for part in rest:
            value = value.get(part, "") if isinstance(value, dict) else ""
        return str(value)

    def substitute(self, text: str, ctx: dict) -> str:
        return _EXPR.sub(lambda m: self.evaluate(m[1], ctx), str(text))

    def run(self, inputs: dict[str, str], event_name: str, event: dict) -> ActionRun:
        event_path = self.temp / "event.json"
        event_path.write_text(json.dumps(event))
        github_ctx = {"token": TOKEN, "action_path": str(self.action_dir), "repository": REPOSITORY}
        ctx: dict = {"github": github_ctx, "steps": {}, "runner": {"os": "Linux", "temp": str(self.temp)}}
        ctx["inputs"] = {name: self.substitute(spec.get("default", ""), ctx)
                         for name, spec in self.action["inputs"].items()}
        ctx["inputs"].update(inputs)
        base = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "RUNNER_"))}
        runs, summary, failed = [], [], False
        for number, step in enumerate(self.action["runs"]["steps"]):
            run = StepRun(name=step.get("name", f"step {number}"), id=step.get("id"), uses=step.get("uses"))
            runs.append(run)
            condition = step.get("if")
            wanted = (self.evaluate(condition, ctx) == "true") if condition else not failed
            if "uses" in step:
                run.with_ = {k: self.substitute(v, ctx) for k, v in (step.get("with") or {}).items()}
                continue
            if not wanted:
                continue
            files = {name: self.temp / f"{name.lower()}_{number}" for name in
                     ("GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY", "GITHUB_PATH", "GITHUB_ENV")}
            for path in files.values():
                path.write_text("")
            env = {**base, **self.job_env, "CI": "true", "GITHUB_ACTIONS": "true",
                   "GITHUB_WORKSPACE": str(self.workspace), "GITHUB_ACTION_PATH": str(self.action_dir),
                   "GITHUB_REPOSITORY": REPOSITORY, "GITHUB_API_URL": self.api_url,
                   "GITHUB_EVENT_NAME": event_name, "GITHUB_EVENT_PATH": str(event_path),
                   "RUNNER_TEMP": str(self.temp), **{k: str(v) for k, v in files.items()}}
            env["PATH"] = os.pathsep.join([*reversed(self.paths), base.get("PATH", "")])
            env.update({k: self.substitute(v, ctx) for k, v in (step.get("env") or {}).items()})
            run.env = env
            assert step.get("shell") == "bash", f"{run.name}: composite run steps must name their shell"
            script = self.temp / f"step_{number}.sh"
            script.write_text(step["run"])
            done = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)], env=env,
                                  cwd=self.workspace, capture_output=True, text=True, timeout=600)
            run.code, run.stdout, run.stderr = done.returncode, done.stdout, done.stderr
            run.outputs = parse_output_file(files["GITHUB_OUTPUT"].read_text())
            if run.id:
                ctx["steps"][run.id] = {"outputs": run.outputs}
            summary.append(files["GITHUB_STEP_SUMMARY"].read_text())
            self.paths += [p for p in files["GITHUB_PATH"].read_text().splitlines() if p]
            self.job_env.update(parse_output_file(files["GITHUB_ENV"].read_text()))
            failed = failed or done.returncode != 0
        outputs = {name: self.substitute(spec["value"], ctx) for name, spec in self.action["outputs"].items()}
        return ActionRun(steps=runs, outputs=outputs, summary="".join(summary))


def action_copy(dest: Path) -> Path:
    """The action as the runner downloads it: the repository's files, without build residue."""
    dest.mkdir()
    for name in ("action.yml", "pyproject.toml", "README.md"):
        shutil.copy2(REPO_ROOT / name, dest / name)
    shutil.copytree(REPO_ROOT / "src", dest / "src",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc"))
    return dest


@pytest.fixture(scope="module")
def runner_dirs(tmp_path_factory):
    """One runner for the module: the grader is installed by the first run's install step, like one job
    that runs the action several times (the install step installs once per job)."""
    root = tmp_path_factory.mktemp("runner")
    temp = root / "runner_temp"
    temp.mkdir()
    return action_copy(root / "action"), temp, root


def pr_event(number: int) -> dict:
    return {"action": "synchronize", "number": number,
            "pull_request": {"number": number, "head": {"sha": "3f9c2e1d8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d"}},
            "repository": {"full_name": REPOSITORY}}


def books_workspace(root: Path) -> Path:
    workspace = root / "books-api"
    if not workspace.exists():
        write_repo(workspace, BOOKS_REPO)
    return workspace


# ---------------------------------------------------------------- the action, end to end


def test_action_yml_is_a_composite_action_with_the_documented_interface():
    action = yaml.safe_load((REPO_ROOT / "action.yml").read_text())
    assert action["runs"]["using"] == "composite"
    assert {"tier", "rubric", "threshold", "path", "python-version"} <= set(action["inputs"])
    assert {"score", "tier", "passed", "scorecard"} <= set(action["outputs"])
    readme = (REPO_ROOT / "README.md").read_text()
    documented = readme[readme.index("## On pull requests"):readme.index("## Grading a class")]
    assert all(f"`{name}`" in documented for name in [*action["inputs"], *action["outputs"]] if name != "github-token")
    uses = [s["uses"].split("@")[0] for s in action["runs"]["steps"] if "uses" in s]
    assert uses == ["actions/setup-python", "actions/cache", "actions/upload-artifact"]
    for step in action["runs"]["steps"]:
        # inputs reach scripts through env, never spliced into the script text (script injection)
        assert "${{" not in step.get("run", "")
    workflow = yaml.safe_load((REPO_ROOT / "examples" / "submission-workflow.yml").read_text())
    steps = workflow["jobs"]["grade"]["steps"]
    assert steps[0]["uses"].startswith("actions/checkout@")
    assert steps[1]["uses"].endswith("/portfolio-grader@v1") and steps[1]["with"]["threshold"] == 70
    assert workflow["permissions"]["pull-requests"] == "write"


def test_the_action_grades_a_pr_then_updates_its_one_comment_and_fails_below_the_threshold(runner_dirs, github):
    action_dir, temp, root = runner_dirs
    workspace = books_workspace(root)
    github.add(7, "Looks good! (quoting the bot: <!-- portfolio-grader --> )")  # a human's comment, not ours
    github.add(7, "LGTM")
    runner = Runner(action_dir, workspace, temp, github.url)

    with serve_asgi(good_books_app()) as url:
        first = runner.run({"tier": "beginner", "threshold": "70", "url": url, "max-examples": "5"}, "pull_request", pr_event(7))
        # ---- the first push: every run step green, outputs, summary, one new comment
        assert [(s.name, s.code) for s in first.steps] == [
            ("Set up Python", None), ("Find the pip cache", 0), ("Cache pip downloads", None),
            ("Install portfolio-grader", 0), ("Grade", 0), ("Upload the scorecard", None),
            ("Enforce the threshold", 0)], first.step("Grade").stderr[-2000:]
        # pip's own cache folder, keyed by OS, Python and the grader's pyproject.toml (the action's, not the repo's)
        cache = first.step("Cache pip downloads").with_
        pip_dir = subprocess.run([sys.executable, "-m", "pip", "cache", "dir"], capture_output=True, text=True)
        assert cache["path"] == pip_dir.stdout.strip() and cache["path"]
        digest = __import__("hashlib").sha256((action_dir / "pyproject.toml").read_bytes()).hexdigest()[:16]
        assert cache["key"] == f"portfolio-grader-pip-Linux-py{sys.version_info[0]}.{sys.version_info[1]}-{digest}"
        venv_bin = temp / "portfolio-grader-venv" / "bin"
        assert (venv_bin / "portfolio-grader").is_file() and str(venv_bin) in runner.paths  # via $GITHUB_PATH
        assert first.step("Grade").env["PATH"].startswith(str(venv_bin))

        folder = Path(first.outputs["scorecard"])
        result = load_scorecard(folder / "result.json")
        assert first.outputs == {"score": f"{result.score:g}", "tier": "beginner", "tier-reached": "beginner",
                                 "passed": "true", "threshold": "70", "scorecard": str(folder)}
        assert result.passed and result.runtime["kind"] == "external" and result.runtime["base_url"] == url
        assert {p.name for p in folder.iterdir()} >= {"scorecard.html", "result.json", "summary.md", "junit.xml",
                                                     "results.sarif"}
        assert first.step("Upload the scorecard").with_ == {"name": "portfolio-grader-scorecard", "path": str(folder)}
        expected = render_markdown(result, threshold=70.0)  # the summary is rendered from the same result.json
        assert first.summary.strip() == expected.strip()
        assert f"{result.score:g}/100, passed" in first.summary and "**threshold** 70: met" in first.summary

        posts = github.of("POST")
        assert len(posts) == 1 and posts[0]["path"] == f"/repos/{REPOSITORY}/issues/7/comments"
        assert posts[0]["json"]["body"] == comment_body(expected) and posts[0]["json"]["body"].startswith(MARKER)
        for request in github.requests:
            assert request["headers"]["authorization"] == f"Bearer {TOKEN}"
            assert request["headers"]["x-github-api-version"] == "2022-11-28"
        ours = github.comments[7][-1]
        assert len(github.comments[7]) == 3

        # ---- a second push, graded against a threshold it misses: the same comment is edited, the step fails
        github.requests.clear()
        second = runner.run({"tier": "beginner", "threshold": "99", "url": url, "max-examples": "5"}, "pull_request", pr_event(7))
    assert second.step("Grade").code == 0 and second.step("Enforce the threshold").code == 1
    assert "with threshold 99" in second.step("Enforce the threshold").stderr
    assert "::error title=portfolio-grader::books-api scored" in second.step("Grade").stdout
    assert second.outputs["passed"] == "false" and second.outputs["threshold"] == "99"
    assert second.step("Upload the scorecard").with_["path"] == second.outputs["scorecard"]  # uploaded anyway
    assert "**threshold** 99: not met" in second.summary
    gets = github.of("GET")
    assert [r["query"].get("page") for r in gets] == [None, ["2"]]  # followed the Link header to page 2
    assert not github.of("POST") and len(github.of("PATCH")) == 1
    assert github.of("PATCH")[0]["path"] == f"/repos/{REPOSITORY}/issues/comments/{ours['id']}"
    assert len(github.comments[7]) == 3 and github.comments[7][-1]["body"].startswith(MARKER)
    assert "**threshold** 99: not met" in github.comments[7][-1]["body"]
    assert github.comments[7][0]["body"].startswith("Looks good!")  # the human's comment is untouched


def test_the_action_on_a_push_writes_summary_and_outputs_without_a_comment_and_gates_fail_it(runner_dirs, github):
    action_dir, temp, root = runner_dirs
    workspace = root / "recipes"
    if not workspace.exists():
        write_repo(workspace, RECIPES_REPO)
    runner = Runner(action_dir, workspace, temp, github.url)
    with serve_wsgi(flawed_recipes_app()) as url:
        run = runner.run({"tier": "beginner", "threshold": "50", "url": url, "max-examples": "5"}, "push", {"ref": "refs/heads/main"})
    result = load_scorecard(Path(run.outputs["scorecard"]) / "result.json")
    assert result.score >= 50 and not result.gates_met  # above the threshold, but a gate of the tier failed
    assert run.step("Grade").code == 0 and run.step("Enforce the threshold").code == 1
    assert run.outputs["passed"] == "false" and run.outputs["tier-reached"] == ""
    assert "a gate criterion of the tier did not pass" in run.step("Grade").stdout
    assert "no PR comment (a pull_request event not available)" in run.step("Grade").stdout
    assert github.requests == []
    assert run.summary.startswith("## ❌ recipes:") and "**gates** not met" in run.summary

    with serve_wsgi(flawed_recipes_app()) as url:  # the same grade, reported without failing the job
        quiet = runner.run({"tier": "beginner", "threshold": "50", "url": url, "max-examples": "5",
                            "fail-job": "false"}, "push", {"ref": "refs/heads/main"})
    assert quiet.outputs["passed"] == "false" and not quiet.failed
    enforce = quiet.step("Enforce the threshold")
    assert enforce.code == 0 and enforce.stdout.startswith("::notice title=portfolio-grader::score ")
    assert "reported without failing the job (fail-job: false)" in enforce.stdout


# The majors current on 2026-12 (each runs on Node 24; the Node 20 majors are gone from GitHub's runners).
CURRENT_MAJORS = {"actions/checkout": 6, "actions/setup-python": 6, "actions/cache": 5, "actions/upload-artifact": 6,
                  "actions/download-artifact": 7, "github/codeql-action/upload-sarif": 4}


def test_the_action_and_the_examples_use_current_majors_of_the_actions_they_use():
    files = [REPO_ROOT / "action.yml", *sorted((REPO_ROOT / "examples").glob("*.yml"))]
    seen = {}
    for path in files:
        for name, major in re.findall(r"uses:\s*([\w./-]+)@v(\d+)", path.read_text()):
            if name in CURRENT_MAJORS:
                seen[(path.name, name)] = int(major)
    assert {name for _, name in seen} == set(CURRENT_MAJORS)  # every one of them is checked somewhere
    old = {f"{file}: {name}@v{major}": CURRENT_MAJORS[name] for (file, name), major in seen.items()
           if major < CURRENT_MAJORS[name]}
    assert not old, f"older majors than current: {old}"


def test_the_action_reports_a_submission_it_cannot_grade(runner_dirs, github):
    action_dir, temp, root = runner_dirs
    runner = Runner(action_dir, books_workspace(root), temp, github.url)
    run = runner.run({"tier": "no-such-tier", "url": "http://127.0.0.1:9"}, "pull_request", pr_event(9))
    assert run.step("Grade").code == 2 and run.step("Enforce the threshold").code is None  # the job stops
    assert run.outputs["passed"] == "false" and run.outputs["scorecard"] == ""
    assert "could not grade" in run.summary and "no rubric" in run.summary
    assert github.comments[9][0]["body"].startswith(MARKER + "\n## ❌ portfolio-grader could not grade")


# ---------------------------------------------------------------- the pieces


def test_outputs_survive_any_value_in_the_runners_multiline_form(tmp_path):
    path = tmp_path / "output"
    tricky = "line one\nEOF\nname=value\nghadelimiter_x"
    write_outputs(path, {"score": 72.5, "note": tricky, "empty": None})
    assert parse_output_file(path.read_text()) == {"score": "72.5", "note": tricky, "empty": ""}
    append_summary(tmp_path / "summary", "# one")
    append_summary(tmp_path / "summary", "# two\n\n")
    assert (tmp_path / "summary").read_text() == "# one\n# two\n"


def test_the_pr_number_comes_from_the_event_payload(tmp_path):
    event = tmp_path / "event.json"
    for payload, number in ((pr_event(12), 12), ({"issue": {"number": 4}, "comment": {}}, 4),
                            ({"ref": "refs/heads/main"}, None)):
        event.write_text(json.dumps(payload))
        assert pull_request_number(event) == number
    event.write_text("not json")
    assert pull_request_number(event) is None and pull_request_number(None) is None


def test_a_read_only_token_is_an_error_the_grade_survives(github):
    github.tokens["ghs_fork_read_only"] = "read"
    with pytest.raises(GitHubError, match="HTTP 403"):
        upsert_comment(api_url=github.url, repository=REPOSITORY, number=3, token="ghs_fork_read_only",
                       markdown="# grade")
    with pytest.raises(GitHubError, match="HTTP 401"):
        upsert_comment(api_url=github.url, repository=REPOSITORY, number=3, token="wrong", markdown="# grade")


def test_upsert_prefers_the_bots_comment_and_never_follows_links_off_the_api_host(github):
    github.add(2, MARKER + "\nforged by a learner")
    bot = github.add(2, MARKER + "\nthe real one", "github-actions[bot]", "Bot")
    result = upsert_comment(api_url=github.url, repository=REPOSITORY, number=2, token=TOKEN, markdown="new grade")
    assert (result.action, result.id) == ("updated", bot["id"])
    assert github.comments[2][0]["body"].endswith("forged by a learner")

    def elsewhere(request: httpx.Request) -> httpx.Response:
        assert request.url.host == "api.example", "the token was sent to another host"
        return httpx.Response(200, json=[], headers={"Link": '<https://evil.example/steal>; rel="next"'})

    client = httpx.Client(base_url="https://api.example", transport=httpx.MockTransport(elsewhere))
    from portfolio_grader.github import find_comment

    assert find_comment(client, REPOSITORY, 1) is None
