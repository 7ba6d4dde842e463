"""Repository checks: what a reviewer reads before running anything.

README (how to run it, the design decisions), tests, CI, Dockerfile hygiene (non-root USER, .dockerignore,
pinned base images), committed secrets (detect-secrets over the committed files, `.env` files, secret-named
ENV/ARG literals) and a lockfile. Nothing of the submission is executed.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import tempfile
from collections import Counter
from pathlib import Path

import yaml

from .. import deadlines, own_tests, secret_scan
from ..dockerfile import Stage, parse_dockerfile
from ..inspect import read_text
from ..models import Evidence
from .registry import CheckContext, check

_RUN_WORDS = re.compile(
    r"docker(-|\s)?compose\s+up|docker\s+(build|run)|uvicorn|gunicorn|flask\s+run|python3?\s+[\w/.-]+\.py|"
    r"python3?\s+-m\s+\w+|npm\s+(start|run)|node\s+[\w/.-]+\.js|yarn\s+(start|dev)|pip\s+install|make\s+\w+|"
    r"manage\.py\s+runserver|go\s+run\b|cargo\s+run\b|dotnet\s+run\b|mvnw?\s+[\w:-]*run|gradlew?\s+(bootRun|run)\b|"
    r"java\s+-jar|(pnpm|bun)\s+(start|dev|run)|(poetry|uv|pipenv)\s+run\b|fastapi\s+(dev|run)|flask\s+--app|"
    r"nodemon[ \t]+[\w./-]+\.[cm]?[jt]s\b",
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


# ---------------------------------------------------------------- README: design decisions

_DESIGN_HEADING = re.compile(
    r"^#{1,4}\s*.*\b(design|architecture|decisions?|trade-?offs?|why\b|how it works|project structure|structure"
    r"|tech(nology)? stack|stack|approach|security( notes)?|implementation notes?)\b", re.IGNORECASE | re.MULTILINE)
# headings that often hold only a list of tools or a file tree: they count when their section explains in sentences
_LISTING_HEADING = re.compile(r"structure|stack|approach", re.IGNORECASE)
_NOT_PROSE = re.compile(r"^\s*([-*+|`~<!\[]|\d+[.)]|[│├└─])")  # list items, tables, code, html, images, trees
_RATIONALE = re.compile(r"\b(because|so that|instead of|i chose|we chose|chosen|on purpose|trade-?off|rather than"
                        r"|decided|the reason)\b", re.IGNORECASE)


@check("repo.readme_design", area="repo", title="The README explains the design decisions", needs=("repo",))
def readme_design(ctx: CheckContext):
    facts = ctx.facts
    if not facts.readme:
        return ctx.skip("there is no README (repo.readme reports it)")
    text = facts.readme_text
    headings = list(_DESIGN_HEADING.finditer(text))
    heading = next((h for h in headings if _explains(h, text)), None)
    listing = next((h for h in headings if h is not heading), None) if heading is None else None
    reasons = _RATIONALE.findall(text)
    evidence = [Evidence(curl=f"grep -niE '^#|because|instead of|trade-?off' {shlex.quote(facts.readme)}",
                         file=facts.readme, excerpt=(_section(heading or listing, text)[:400] if heading or listing
                                                     else text[:300]))]
    if heading or len(reasons) >= 2:
        found = f"a section {heading.group(0).strip()!r}" if heading else f"{len(reasons)} explained choices"
        return ctx.verdict(f"{facts.readme} explains its design ({found})", evidence=evidence)
    only = (f" (its section {listing.group(0).strip(' #')!r} lists what is used, in no sentence saying why)"
            if listing else "")
    finding = ctx.fail("readme_design_missing", "low", f"{facts.readme} says what the API does but not why it is built the "
                       f"way it is: no design or architecture section, no explained choices{only}.", evidence=evidence,
                       hint="Add a short `## Design decisions` section: the stack and why, how data is stored, how "
                            "auth works, what you would change at scale. Reviewers read it to judge your reasoning.")
    return ctx.verdict("the README explains no design decisions", [finding])


def _section(heading: re.Match, text: str) -> str:
    """The text under a README heading, up to the next heading."""
    rest = text[heading.end():]
    following = re.search(r"^#{1,6}\s", rest, re.MULTILINE)
    return heading.group(0) + (rest[:following.start()] if following else rest)


def _explains(heading: re.Match, text: str) -> bool:
    """Whether a design-like heading's section explains something: always for design, architecture, decisions...;
    for a stack, structure or approach heading only when its section has a sentence of prose or a stated reason
    (a bullet list of tools or a file tree is not a design decision)."""
    if not _LISTING_HEADING.search(heading.group(1)):
        return True
    body = re.sub(r"^(```|~~~).*?^(```|~~~)[^\n]*$", "", _section(heading, text), flags=re.MULTILINE | re.DOTALL)
    body = re.sub(r"<!--.*?-->", "", body, flags=re.DOTALL)
    return bool(_RATIONALE.search(body) or any(_is_prose(line) for line in body.splitlines()[1:]))


def _is_prose(line: str) -> bool:
    """A sentence: not a list item, table row, code or tree line; eight words or more; ends as a sentence does."""
    return (not _NOT_PROSE.match(line) and len(re.findall(r"\w+", line)) >= 8
            and line.rstrip().endswith((".", "!", "?", ":", ")")))


# ---------------------------------------------------------------- tests and CI

_TEST_DEFINITION = re.compile(r"^\s*(async\s+)?def test_|\b(it|test|describe)\s*\(\s*['\"`]|@Test\b|func Test\w+\(",
                              re.MULTILINE)
# what counts as one test: a `describe(...)` block groups tests and is none itself (Jest reports 30 where 45 were counted)
_ONE_TEST = re.compile(r"^\s*(async\s+)?def test_|\b(it|test)(\.(only|skip|concurrent|each\s*\(.*?\)))?\s*\(\s*['\"`]"
                       r"|@(Parameterized)?Test\b|func Test\w+\(", re.MULTILINE)
_RUNS_TESTS = re.compile(r"pytest|unittest|manage\.py\s+test\b|(npm|pnpm|yarn|bun)\s+(run\s+)?[\w:-]*test|node\s+--test"
                         r"|\bjest\b|vitest|mocha|go test|\btox\b|\bnox\b|make test|(mvn|gradlew?)\s+[\w\s-]*\btest\b"
                         r"|cargo test|dotnet test", re.IGNORECASE)


def _test_files(root: Path) -> list[str]:
    from ..inspect import _is_test_file, _list_files

    return [f for f in _list_files(root) if _is_test_file(f) and not f.endswith(("__init__.py", "conftest.py"))]


@check("repo.tests", area="repo", title="The repository has automated tests", needs=("repo",),
       params={"deadline_s": float})
def tests_exist(ctx: CheckContext):
    root = ctx.facts.root
    files = _test_files(root)
    with_tests = [f for f in files if _TEST_DEFINITION.search(read_text(root / f))]
    if not with_tests:
        where = f" ({', '.join(files[:3])} define no test)" if files else ""
        finding = ctx.fail("tests_missing", "medium", f"The repository has no automated tests{where}: nothing shows "
                           "the API works, or keeps working after a change.",
                           evidence=[Evidence(curl="find . -path ./node_modules -prune -o \\( -name 'test_*.py' -o "
                                                   "-name '*_test.py' -o -name '*.test.js' -o -name '*.spec.ts' \\) "
                                                   "-print", note="no test file defines a test")],
                           hint="Add API tests that run without a server: pytest with FastAPI's TestClient or Flask's "
                                "test_client(), Jest/Vitest with supertest for Express. Cover the happy path and the "
                                "errors (404, 422, 401) of each endpoint, and say in the README how to run them.")
        return ctx.verdict("no tests", [finding])
    count = sum(len(_ONE_TEST.findall(read_text(root / f))) for f in with_tests)
    named = ", ".join(with_tests[:4]) + (f" and {len(with_tests) - 4} more" if len(with_tests) > 4 else "")
    found = f"{len(with_tests)} test file(s) with {count} test(s) ({named})"
    static = [Evidence(curl=f"grep -cE 'def test_|it\\(|test\\(' {shlex.quote(with_tests[0])}", file=with_tests[0],
                       excerpt=read_text(root / with_tests[0])[:400])]
    plan = _test_plan(ctx, files)
    if not plan.runs:
        return ctx.verdict(f"{found} (not run by the grader: {plan.why})", evidence=static)
    deadline = float(ctx.params().get("deadline_s", TEST_DEADLINE))
    left = deadlines.remaining()  # the check family's or the grade's, whichever ends first
    if left is not None and left - 5 < deadline:
        if left < 10:
            return ctx.verdict(f"{found} (not run by the grader: {deadlines.binding().label} left no time for them)",
                               evidence=static)
        deadline = left - 5
    from ..runtime.sibling import run_beside

    ran = run_beside(ctx.service.api_container, list(plan.command), timeout=deadline, env=plan.env)
    return _judge_test_run(ctx, plan, ran, found, static, deadline)


TEST_DEADLINE = 90.0  # seconds the project's own tests may take (the rubric's `deadline_s` overrides it)
_OUTPUT_LINES = 25  # the last lines of a test run kept as evidence


def _test_plan(ctx: CheckContext, files: list[str]) -> own_tests.Plan:
    """How the project's tests run in the image the grader built, or why they are not run."""
    service = ctx.service
    if service.kind not in ("docker", "compose") or not service.api_container:
        why = ("the grade reached a live deployment: no image was built" if service.kind == "external" else
               f"no API container was made ({service.status.replace('_', ' ')})")
        return own_tests.Plan(not_run=own_tests.NotRun.NO_IMAGE, why=why)
    from ..runtime.compose_rewrite import is_datastore_image

    datastores = [f"`{name}`: {svc.get('image')}" for name, svc in _compose_services(ctx).items()
                  if is_datastore_image(str(svc.get("image") or ""))] if service.kind == "compose" else []
    return own_tests.plan(ctx.facts.root, ctx.facts.dockerfile, ctx.facts.stack, files, datastores)


def _judge_test_run(ctx: CheckContext, plan: own_tests.Plan, ran, found: str, static: list[Evidence],
                    deadline: float):
    """The verdict of a real run: all pass = pass; some fail = partial credit with the failures named; a run that
    could not happen (the tool missing, nothing collected, the deadline) keeps the files' verdict and says why."""
    tail = "\n".join(ran.output.rstrip().splitlines()[-_OUTPUT_LINES:])
    dockerfile = shlex.quote(ctx.facts.dockerfile or "Dockerfile")
    env = "".join(f" -e {shlex.quote(f'{k}={v}')}" for k, v in plan.env.items())
    curl = (f"docker build -f {dockerfile} -t api . && docker run --rm --network none{env} --entrypoint "
            f"{shlex.quote(plan.command[0])} api {shlex.join(plan.command[1:])}")
    evidence = [Evidence(curl=curl, excerpt=tail or ran.error or "(no output)",
                         note=f"run by the grader in the API's image ({plan.basis}); exit {ran.exit_code}, "
                              f"{ran.seconds:.1f} s")]
    if ran.error:
        return ctx.verdict(f"{found} (not run: the grader could not start `{plan.shown}` in the image: {ran.error})",
                           evidence=static + evidence)
    counts = own_tests.parse(ran.output)
    if ran.timed_out:
        done = f"; {counts.passed} passed, {counts.failed} failed before it was stopped" if counts else ""
        return ctx.verdict(f"{found} (not run to the end: `{plan.shown}` did not finish within the {deadline:g} s "
                           f"deadline{done})", evidence=static + evidence)
    missing = own_tests.not_installed(ran.output)
    if counts is not None and counts.total and not counts.passed and not counts.failed:
        first = next(iter(counts.failures), "")
        return ctx.verdict(f"{found} (not run: every one of the {counts.errors} error(s) came before a test could run"
                           f" — collection or set-up in the image{f', first {first}' if first else ''})",
                           evidence=static + evidence)
    if counts is None or counts.total == 0:
        why = (f"the image lacks the test tool ({missing})" if missing else
               f"`{plan.shown}` exited {ran.exit_code} without running a test"
               + (f" ({counts.line})" if counts and counts.line else ""))
        return ctx.verdict(f"{found} (not run: {why})", evidence=static + evidence)
    ran_text = (f"`{plan.shown}` ran in the image: {counts.passed} passed"
                + (f", {counts.failed} failed" if counts.failed else "") + (f", {counts.errors} errors" if counts.errors else "")
                + (f", {counts.skipped} skipped" if counts.skipped else "") + f" in {ran.seconds:.1f} s")
    broken = counts.failed + counts.errors
    if not broken and ran.exit_code == 0:
        return ctx.verdict(f"{found}; {ran_text}", evidence=evidence + static)
    if not broken:  # counts say all passed but the command failed (coverage threshold, a teardown error)
        return ctx.verdict(f"{found}; {ran_text}, but it exited {ran.exit_code}", evidence=evidence + static,
                           score=0.9)
    named = ", ".join(counts.failures[:5]) + (f" and {len(counts.failures) - 5} more" if len(counts.failures) > 5 else "")
    finding = ctx.fail("tests_failing", "medium",
                       f"The project's own tests fail: {broken} of {counts.total} did not pass when the grader ran "
                       f"`{plan.shown}` in the API's image" + (f" ({named})" if named else "") + ".",
                       evidence=evidence,
                       hint="Run the tests the way CI would before pushing, and fix or remove the failing ones; a "
                            "red test suite tells a reviewer the code and its tests disagree. If a test needs a "
                            "service (a database, the network), give it a fixture or a fake instead.")
    # having tests earns half; the other half is the share that passed
    return ctx.verdict(f"{found}; {ran_text}", [finding], evidence=static, score=0.5 + 0.5 * counts.passed / counts.total)


@check("repo.ci", area="repo", title="A CI workflow builds and tests the project", needs=("repo",))
def ci(ctx: CheckContext):
    configs = ctx.facts.ci_configs
    if not configs:
        finding = ctx.fail("ci_missing", "low", "There is no CI configuration (.github/workflows, .gitlab-ci.yml, "
                           "...): nothing runs the tests on every push.",
                           evidence=[Evidence(curl="ls .github/workflows .gitlab-ci.yml .circleci 2>&1",
                                              note="no CI configuration")],
                           hint="Add .github/workflows/ci.yml: on push and pull_request, check out, set up the "
                                "language, install the dependencies, run the tests, and `docker build` the image.")
        return ctx.verdict("no CI workflow", [finding])
    texts = {c: read_text(ctx.facts.root / c) for c in configs[:10]}
    runs = next(((c, m) for c, t in texts.items() if (m := _RUNS_TESTS.search(t))), None)
    shown = runs[0] if runs else configs[0]
    evidence = [Evidence(curl=f"cat {shlex.quote(shown)}", file=shown, excerpt=texts[shown][:600])]
    configured = f"CI configured in {', '.join(configs[:3])}"
    if runs:
        where = f" in {runs[0]}" if len(configs) > 1 else ""
        return ctx.verdict(f"{configured} (runs `{runs[1].group(0)}`{where})", evidence=evidence)
    tests = [f for f in _test_files(ctx.facts.root) if _TEST_DEFINITION.search(read_text(ctx.facts.root / f))]
    if not tests:  # nothing to run: repo.tests reports the missing tests, not this check a second time
        return ctx.verdict(f"{configured} (it runs no test command; the repository has no tests to run)",
                           evidence=evidence)
    finding = ctx.fail("ci_tests_not_run", "low",
                       f"{configured}, but no step runs the tests ({len(tests)} test file(s), e.g. {tests[0]}): a "
                       "push that breaks them still goes green.", evidence=evidence,
                       hint="Add a step that runs the tests (`pytest`, `python manage.py test`, `npm test`, `go test "
                            "./...`) before the build or deploy steps, so a red test stops the workflow.")
    return ctx.verdict(f"{configured}, but it runs no test command", [finding], score=0.5)


# ---------------------------------------------------------------- Dockerfile hygiene


_ROOT_USERS = {"root", "0", "0:0", "root:root", "root:0", "0:root"}
_NONROOT_IMAGES = re.compile(r"nonroot|distroless.*:nonroot|^cgr\.dev/chainguard|^bitnami/", re.IGNORECASE)


def _effective_user(stages: list[Stage]) -> tuple[str | None, Stage | None]:
    """The user the final stage runs as, following `FROM <earlier stage>` chains; (None, None) for root."""
    by_name = {s.name.lower(): s for s in stages if s.name}
    stage: Stage | None = stages[-1] if stages else None
    seen = 0
    while stage is not None and seen < len(stages):
        if stage.user:
            return stage.user, stage
        stage = by_name.get(stage.image.lower())
        seen += 1
    return None, None


def _dockerfile(ctx: CheckContext) -> tuple[str, str] | None:
    name = ctx.facts.dockerfile
    return (name, read_text(ctx.facts.root / name)) if name else None


def _compose_services(ctx: CheckContext) -> dict[str, dict]:
    if not ctx.facts.compose_file:
        return {}
    try:
        data = yaml.safe_load(read_text(ctx.facts.root / ctx.facts.compose_file)) or {}
    except yaml.YAMLError:
        return {}
    services = data.get("services") if isinstance(data, dict) else None
    return {k: v for k, v in services.items() if isinstance(v, dict)} if isinstance(services, dict) else {}


@check("repo.docker_user", area="repo", title="The container does not run as root", needs=("repo",))
def docker_user(ctx: CheckContext):
    outcome = _user_outcome(ctx)
    escalated = _privileged_services(ctx)
    if not escalated:
        return outcome
    compose = ctx.facts.compose_file
    what = "; ".join(f"'{name}': {how}" for name, how in escalated.items())
    finding = ctx.fail(
        "compose_privileged", "high",
        f"{compose} gives services more privilege than Docker's defaults ({what}): a privileged container is root "
        "on the host in all but name, so a bug in the API becomes a host compromise.",
        evidence=[Evidence(curl=f"grep -nE 'privileged|cap_add|SYS_' {shlex.quote(compose)}", file=compose,
                           excerpt=what)],
        hint="Remove `privileged: true` and `cap_add`: an HTTP API needs neither (the grader ran it without them).")
    summary = outcome.summary if outcome.status != "not_evaluated" else (outcome.reason or "")
    return ctx.verdict(f"{summary}; {len(escalated)} compose service(s) ask for more privilege", [finding,
                       *outcome.findings], evidence=outcome.evidence)


def _privileged_services(ctx: CheckContext) -> dict[str, str]:
    """{service: what it asks for} of compose services that are privileged or add capabilities beyond Docker's."""
    from ..runtime.compose_rewrite import DOCKER_DEFAULT_CAPS

    out = {}
    for name, svc in _compose_services(ctx).items():
        asks = ["privileged: true"] if svc.get("privileged") in (True, "true", "True") else []
        caps = svc.get("cap_add") or []
        asks += [f"cap_add {c}" for c in (caps if isinstance(caps, list) else [caps])
                 if str(c).upper().removeprefix("CAP_") not in DOCKER_DEFAULT_CAPS]
        if asks:
            out[str(name)] = ", ".join(asks)
    return out


def _user_outcome(ctx: CheckContext):
    found = _dockerfile(ctx)
    if found is None:
        return ctx.skip("the repository has no Dockerfile (runtime.builds reports it)")
    name, text = found
    stages = parse_dockerfile(text)
    if not stages:
        return ctx.skip(f"{name} has no FROM instruction")
    user, stage = _effective_user(stages)
    final = stages[-1]
    quoted = shlex.quote(name)
    compose_user = next((str(s["user"]) for s in _compose_services(ctx).values() if "build" in s and s.get("user")), None)
    if user and user.split(":")[0] not in ("root", "0"):
        return ctx.verdict(f"{name} switches to USER {user} (line {stage.user_line})",
                           evidence=[Evidence(curl=f"grep -n '^USER' {quoted}", file=name,
                                              excerpt=f"{stage.user_line}: USER {user}")])
    if compose_user and compose_user.split(":")[0] not in ("root", "0"):
        return ctx.verdict(f"{ctx.facts.compose_file} runs the service as user {compose_user}",
                           evidence=[Evidence(curl=f"grep -n 'user:' {shlex.quote(ctx.facts.compose_file)}",
                                              file=ctx.facts.compose_file, excerpt=f"user: {compose_user}")])
    if user is None and _NONROOT_IMAGES.search(final.image):
        return ctx.verdict(f"the final image {final.image} runs as a non-root user by default",
                           evidence=[Evidence(curl=f"grep -n '^FROM' {quoted}", file=name,
                                              excerpt=f"{final.line}: {final.from_line}")])
    why = f"its last USER is {user}" if user else "it never sets USER"
    finding = ctx.fail("dockerfile_runs_as_root", "medium",
                       f"{name}: the container runs as root ({why}): a bug in the API, or in any dependency, "
                       "becomes root inside the container.",
                       evidence=[Evidence(curl=f"grep -nE '^(FROM|USER)' {quoted}", file=name,
                                          excerpt=f"{final.line}: {final.from_line}"
                                          + (f"\n{stage.user_line}: USER {user}" if stage else "\n(no USER)"))],
                       hint="Create an unprivileged user and switch to it after installing dependencies: "
                            "`RUN useradd --create-home --uid 1000 app` then `USER app` (Debian images), "
                            "`RUN adduser -D app` (Alpine), or `USER node` in the official Node images.")
    return ctx.verdict("the container runs as root", [finding])


@check("repo.dockerignore", area="repo", title="A .dockerignore keeps the build context small and secret-free",
       needs=("repo",))
def dockerignore(ctx: CheckContext):
    found = _dockerfile(ctx)
    if found is None:
        return ctx.skip("the repository has no Dockerfile (runtime.builds reports it)")
    name = found[0]
    context = Path(name).parent
    candidates = [context / ".dockerignore", Path(f"{name}.dockerignore")]
    for service in _compose_services(ctx).values():  # compose may build from another folder than the Dockerfile's
        build = service.get("build")
        folder = build.get("context", ".") if isinstance(build, dict) else build if isinstance(build, str) else None
        if folder:
            candidates.append(Path(ctx.facts.compose_file).parent / folder / ".dockerignore")
    present = next((c for c in candidates if (ctx.facts.root / c).is_file()), None)
    if present is not None:
        text = read_text(ctx.facts.root / present)
        return ctx.verdict(f"{present} excludes {len([l for l in text.splitlines() if l.strip() and not l.startswith('#')])} "
                           "pattern(s) from the build context",
                           evidence=[Evidence(curl=f"cat {shlex.quote(str(present))}", file=str(present),
                                              excerpt=text[:400])])
    copies_all = re.search(r"^\s*(COPY|ADD)\s+(--\S+\s+)*\.\s", found[1], re.IGNORECASE | re.MULTILINE)
    finding = ctx.fail("dockerignore_missing", "low",
                       f"There is no .dockerignore next to {name}: the whole folder — .git, local virtualenvs or "
                       "node_modules, .env files — is sent to the build"
                       + (" and `COPY . .` puts it in the image." if copies_all else "."),
                       evidence=[Evidence(curl=f"ls -a {shlex.quote(str(context))}", file=name,
                                          note="no .dockerignore in the build context")],
                       hint="Add a .dockerignore: `.git`, `.env*`, `__pycache__/`, `.venv/`, `node_modules/`, "
                            "`tests/`, `*.db` — smaller, faster builds and no secrets baked into the image.")
    return ctx.verdict("no .dockerignore", [finding])


def _unpinned(image: str) -> str | None:
    """Why an image reference is not pinned to a version, or None when it is."""
    if "@sha256:" in image or image.lower() == "scratch" or "$" in image:
        return None
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return "no tag (it means :latest)"
    if last.rsplit(":", 1)[1].lower() == "latest":
        return ":latest"
    return None


@check("repo.base_image", area="repo", title="Base images are pinned to a version", needs=("repo",))
def base_image(ctx: CheckContext):
    found = _dockerfile(ctx)
    if found is None:
        return ctx.skip("the repository has no Dockerfile (runtime.builds reports it)")
    name, text = found
    stages = parse_dockerfile(text)
    names = {s.name.lower() for s in stages if s.name}
    refs = [(name, s.line, s.from_line, s.image) for s in stages if s.image.lower() not in names]
    compose = ctx.facts.compose_file
    refs += [(compose, None, f"image: {s['image']}", str(s["image"])) for s in _compose_services(ctx).values()
             if s.get("image") and "build" not in s]
    loose = [(f, line, src, why) for f, line, src, image in refs if (why := _unpinned(image))]
    shown = ", ".join(image for *_, image in refs)
    if not loose:
        return ctx.verdict(f"every base image names a version ({shown})",
                           evidence=[Evidence(curl=f"grep -n '^FROM' {shlex.quote(name)}", file=name,
                                              excerpt="\n".join(f"{s.line}: {s.from_line}" for s in stages))])
    finding = ctx.fail("base_image_unpinned", "low",
                       "Base images without a version: " + "; ".join(f"{f}{f':{line}' if line else ''} `{src}` "
                                                                     f"({why})" for f, line, src, why in loose)
                       + ". The next build may pull a different major version and break.",
                       evidence=[Evidence(curl=f"grep -nE '^FROM|image:' {shlex.quote(f)}", file=f,
                                          excerpt=f"{line}: {src}" if line else src) for f, line, src, _ in loose[:3]],
                       hint="Name the version you tested with, e.g. `FROM python:3.12-slim`, `FROM node:20-alpine`, "
                            "`image: postgres:16` (or pin a digest `@sha256:...` for fully reproducible builds).")
    return ctx.verdict(f"{len(loose)} of {len(refs)} image(s) unpinned", [finding],
                       score=1 - len(loose) / len(refs))


# ---------------------------------------------------------------- committed secrets

_DEV_DATABASES = re.compile(r"postgres|mysql|mariadb|mongo|redis|rabbitmq|elasticsearch|minio", re.IGNORECASE)


def committed_files(root: Path) -> list[str]:
    """The files the repository commits: `git ls-files` in a clone; in a plain folder, those .gitignore keeps."""
    from ..inspect import _list_files

    files = [f for f in _list_files(root) if not f.startswith(".git/")]
    if (root / ".git").exists():
        out = subprocess.run(["git", "-C", str(root), "ls-files", "-z"], capture_output=True, timeout=30)
        if out.returncode == 0:
            tracked = set(out.stdout.decode("utf-8", "replace").split("\0"))
            return [f for f in files if f in tracked]
    with tempfile.TemporaryDirectory() as gitdir:  # check-ignore needs a repository; the workspace stays untouched
        subprocess.run(["git", "init", "-q", gitdir], capture_output=True, timeout=30)
        out = subprocess.run(["git", "-c", "core.excludesFile=/dev/null", f"--git-dir={gitdir}/.git",
                              f"--work-tree={root}", "check-ignore", "--no-index", "-z", "--stdin"],
                             input="\0".join(files).encode(), capture_output=True, timeout=30)
    ignored = set(out.stdout.decode("utf-8", "replace").split("\0")) if out.returncode in (0, 1) else set()
    return [f for f in files if f not in ignored]


def _known_not_secrets(ctx: CheckContext) -> dict[str, str]:
    """Values that are not secrets -> why: the passwords a compose file gives its own database services (local
    development values) and the manifest's documented test admin's password."""
    values: dict[str, str] = {}
    for service in _compose_services(ctx).values():
        if not _DEV_DATABASES.search(str(service.get("image", ""))):
            continue
        env = service.get("environment") or {}
        pairs = env.items() if isinstance(env, dict) else (str(e).partition("=")[::2] for e in env)
        values.update({str(v): "the compose file's own database credentials (local development values)"
                       for k, v in pairs if v not in (None, "") and re.search(r"PASS|USER", str(k), re.I)})
    manifest = ctx.facts.manifest
    given = [*(manifest.env.values() if manifest else ()),
             *(v for svc in (manifest.services.values() if manifest else ()) for v in svc.env.values())]
    values.update({v: "a value portfolio-grader.yaml gives the grader" for v in given if v})
    admin = manifest.auth.admin if manifest and manifest.auth else None
    if admin is not None and admin.password:
        values[admin.password] = "the manifest's documented test-admin password"
    return values


@check("repo.secrets", area="repo", title="No secrets or .env files are committed", needs=("repo",))
def committed_secrets(ctx: CheckContext):
    from ..inspect import _is_test_file

    root = ctx.facts.root
    files = committed_files(root)
    hits, aside = secret_scan.scan(root, files, _is_test_file, ctx.facts.dockerfile, _known_not_secrets(ctx))
    env_files = [f for f in files if secret_scan.ENV_FILE.search(f)
                 and not secret_scan.ENV_TEMPLATE.search(f.rsplit("/", 1)[-1]) and read_text(root / f).strip()]
    findings = []
    by_file: dict[str, list[secret_scan.Hit]] = {}
    for hit in hits:
        by_file.setdefault(hit.file, []).append(hit)
    for rel in env_files:
        by_file.setdefault(rel, [])
    for rel, found in list(by_file.items())[:8]:
        kinds_by_line: dict[int, set[str]] = {}
        for hit in found:
            kinds_by_line.setdefault(hit.line, set()).add(hit.kind)
        # a key the code uses, a specific detector, or a random-looking value under a secret's name
        specific = any(k not in secret_scan.GENERIC_TYPES and not k.startswith(("ENV ", "ARG "))
                       for k in set().union(*kinds_by_line.values())) if found else False
        specific = specific or any("Secret Keyword" in k and any("Entropy" in t for t in k)
                                   for k in kinds_by_line.values())
        # one line once, however many detectors hit it, in the file's order
        shown = sorted({hit.line: hit for hit in found}.values(), key=lambda h: h.line)[:4]
        what = "; ".join(f"line {h.line}: {' + '.join(sorted(kinds_by_line[h.line]))} ({secret_scan.mask(h.value)}): "
                         f"{h.why}" for h in shown)
        env = rel in env_files
        message = (f"{rel} is committed" + (f" and holds {len(shown)} secret(s): {what}" if found else
                                            ": a .env file is where secrets live, and it is in the repository")
                   if env else f"{rel} holds {len(shown)} secret(s): {what}")
        findings.append(ctx.fail(
            "secret_committed", "high" if specific or (env and found) else "medium",
            message + ". Anyone who can read the repository — and its history, forever — can use them.",
            evidence=[Evidence(curl=f"grep -n . {shlex.quote(rel)}" if env else
                               f"sed -n '{shown[0].line}p' {shlex.quote(rel)}", file=rel,
                               excerpt="\n".join(f"{h.line}: {h.kind} = {secret_scan.mask(h.value)}" for h in shown)
                               or "(a .env file)")],
            hint="Remove the file or value, rotate the secret (it is in the history: `git filter-repo` or BFG to "
                 "purge it), read it from the environment (`os.environ[\"SECRET_KEY\"]`, `process.env.JWT_SECRET`) "
                 "with no literal fallback, add `.env` to .gitignore and commit a `.env.example` with placeholder "
                 "values instead."))
    scanned = f"scanned {len(files)} committed file(s) with detect-secrets and the grader's key-use rules"
    if aside:
        reasons = Counter(a.why for a in aside)
        scanned += f"; {len(aside)} candidate(s) set aside (" + "; ".join(
            f"{n}× {why}" for why, n in reasons.most_common(4)) + ")"
    aside_evidence = [Evidence(curl="detect-secrets scan --all-files .", note="candidates set aside, with the reason",
                               excerpt="\n".join(f"{a.file}:{a.line} {a.kind}: {a.why}" for a in aside[:12]))
                      ] if aside else []
    if not findings:
        return ctx.verdict(f"{scanned}: no secrets, no .env file",
                           evidence=aside_evidence or [Evidence(curl="detect-secrets scan --all-files .", note=scanned)])
    return ctx.verdict(f"{scanned}: {len(findings)} file(s) with secrets", findings, evidence=aside_evidence)


# ---------------------------------------------------------------- lockfile

_LOCKS = {
    "package.json": ("package-lock.json", "npm-shrinkwrap.json", "yarn.lock", "pnpm-lock.yaml", "bun.lockb", "bun.lock"),
    "pyproject.toml": ("poetry.lock", "uv.lock", "pdm.lock", "Pipfile.lock", "pylock.toml"),
    "Pipfile": ("Pipfile.lock",),
    "go.mod": ("go.sum",),
    "Cargo.toml": ("Cargo.lock",),
    "Gemfile": ("Gemfile.lock",),
    "composer.json": ("composer.lock",),
}
_PINNED = re.compile(r"^[A-Za-z0-9_.\-\[\], ]+===?\s*[\w.*+!-]+(\s*;.*)?(\s+--hash=\S+)*\s*(#.*)?$")


def _requirements_unpinned(text: str) -> list[str]:
    """The requirement lines that do not pin one version (`==`); options, includes and comments aside."""
    loose = []
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].strip().rstrip("\\").strip()
        if not line or line.startswith(("#", "-", "--")):
            continue
        if "@" in line and re.search(r"@[0-9a-f]{40}\b", line):  # a VCS URL at a commit
            continue
        if not _PINNED.match(line):
            loose.append(line)
    return loose


@check("repo.lockfile", area="repo", title="Dependencies are locked to exact versions", needs=("repo",))
def lockfile(ctx: CheckContext):
    from ..inspect import _list_files

    files = [f for f in _list_files(ctx.facts.root) if f.count("/") <= 2]
    names = {f: f.rsplit("/", 1)[-1] for f in files}
    manifests = [f for f, n in names.items() if n in _LOCKS]
    requirements = [f for f, n in names.items() if re.fullmatch(r"requirements[\w.-]*\.(txt|in)", n)
                    and n.endswith(".txt")]
    locked, missing = [], []
    for manifest in manifests:
        folder = manifest.rsplit("/", 1)[0] + "/" if "/" in manifest else ""
        lock = next((folder + lock for lock in _LOCKS[names[manifest]] if folder + lock in names), None)
        if lock:
            locked.append(lock)
        elif names[manifest] == "pyproject.toml" and any(r.startswith(folder) for r in requirements):
            continue  # the pinned requirements below are the lock
        else:
            missing.append(manifest)
    loose_requirements = {}
    for req in requirements:
        loose = _requirements_unpinned(read_text(ctx.facts.root / req))
        if loose:
            loose_requirements[req] = loose
        else:
            locked.append(req)
    if not manifests and not requirements:
        return ctx.skip("no dependency manifest (package.json, requirements.txt, pyproject.toml, go.mod, ...) found")
    problems = [f"{m} has no lockfile ({' or '.join(_LOCKS[names[m]][:3])})" for m in missing]
    problems += [f"{r} does not pin {len(v)} requirement(s) (e.g. `{v[0]}`)" for r, v in loose_requirements.items()]
    if not problems:
        return ctx.verdict(f"dependencies locked: {', '.join(locked)}",
                           evidence=[Evidence(curl=f"head {shlex.quote(locked[0])}", file=locked[0],
                                              excerpt=read_text(ctx.facts.root / locked[0])[:300])])
    evidence = [Evidence(curl=f"ls {shlex.quote(m.rsplit('/', 1)[0] if '/' in m else '.')}", file=m,
                         note="no lockfile beside it") for m in missing[:2]]
    evidence += [Evidence(curl=f"grep -vE '==|^#|^-' {shlex.quote(r)}", file=r, excerpt="\n".join(v[:5]))
                 for r, v in list(loose_requirements.items())[:2]]
    finding = ctx.fail("lockfile_missing", "low", "; ".join(problems) + ": every install may resolve other versions, "
                       "so the image built tomorrow is not the one tested today.", evidence=evidence,
                       hint="Commit the lockfile your tool writes (`npm install` writes package-lock.json — and use "
                            "`npm ci` in the Dockerfile; `poetry lock`, `uv lock`), or pin exact versions in "
                            "requirements.txt (`pip freeze > requirements.txt`, or pip-tools' `pip-compile`).")
    return ctx.verdict("; ".join(problems), [finding])
