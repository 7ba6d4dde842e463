"""The project's own tests: can they run in the image the grader built, with which command, and what did they say?

`plan(...)` reads the repository only (the Dockerfile's final stage and the stages it builds on, .dockerignore,
requirements files, pyproject.toml, package.json) and answers a `Plan`: the command to run in the image, or why
none is run (`NotRun`, a reason kind and a sentence). `parse(...)` reads the summary lines of pytest, unittest
(Django's `manage.py test` included), `node --test`, Jest, Vitest and Mocha into `Counts`. Running the command is
the runtime's job (runtime/sibling.py); judging the counts is the repo.tests check's.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path

from .dockerfile import Stage, parse_dockerfile
from .inspect import read_text


class NotRun(str, Enum):
    """Why the project's tests were not run in its image."""

    NO_COMMAND = "no_command"  # no test command the grader knows for this stack
    NOT_IN_IMAGE = "not_in_image"  # the test tool or the test files are not in the image
    TEST_STAGE = "test_stage"  # the tests live in a Dockerfile stage the grader does not build
    NEEDS_DATABASE = "needs_database"  # a compose project whose tests would need its database
    RUNS_DOCKER = "runs_docker"  # the test command starts containers itself (docker build/run, compose)
    NO_IMAGE = "no_image"  # nothing was built (a live URL, a failed build)
    DEADLINE = "deadline"  # no time left in the grade


@dataclass(frozen=True)
class Plan:
    command: tuple[str, ...] = ()  # argv run in the image; empty when not run
    tool: str = ""  # pytest, unittest, django, npm
    basis: str = ""  # what shows the tool is installed ("Dockerfile:4 installs requirements.txt, which lists pytest")
    not_run: NotRun | None = None
    why: str = ""  # the sentence for the scorecard when not run
    env: dict[str, str] = field(default_factory=dict)

    @property
    def runs(self) -> bool:
        return bool(self.command) and self.not_run is None

    @property
    def shown(self) -> str:
        return shlex.join(self.command)


def _not(kind: NotRun, why: str) -> Plan:
    return Plan(not_run=kind, why=why)


# ---------------------------------------------------------------- the image: which stages, which files


def _chain(stages: list[Stage]) -> list[Stage]:
    """The final stage, the stages it is built FROM, and those it copies from (`COPY --from=`), outermost last."""
    by_name = {s.name.lower(): s for s in stages if s.name}
    out: list[Stage] = []
    todo = [stages[-1]] if stages else []
    while todo:
        stage = todo.pop()
        if stage in out:
            continue
        out.append(stage)
        parent = by_name.get(stage.image.lower())
        if parent is not None:
            todo.append(parent)
        for _, word, rest in stage.instructions:
            source = re.search(r"--from=(\S+)", rest) if word == "COPY" else None
            if source and source.group(1).lower() in by_name:
                todo.append(by_name[source.group(1).lower()])
    return out


def _ignore_patterns(root: Path, dockerfile: str) -> list[str]:
    """The .dockerignore patterns of the build context (Dockerfile.dockerignore first, as BuildKit reads it)."""
    folder = Path(dockerfile).parent
    for candidate in (Path(f"{dockerfile}.dockerignore"), folder / ".dockerignore", Path(".dockerignore")):
        if (root / candidate).is_file():
            return [line.strip() for line in read_text(root / candidate).splitlines()
                    if line.strip() and not line.strip().startswith("#")]
    return []


def _matches(path: str, pattern: str) -> bool:
    pattern = pattern.strip("/").removeprefix("./")
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    if pattern.startswith("**/"):
        tail = pattern[3:]
        return any(fnmatch.fnmatchcase("/".join(parts[i: j + 1]), tail)
                   for i in range(len(parts)) for j in range(i, len(parts)))
    return any(fnmatch.fnmatchcase(prefix, pattern) for prefix in prefixes)


def ignored(path: str, patterns: list[str]) -> str | None:
    """The .dockerignore pattern that keeps `path` out of the build context (the last match wins), or None."""
    verdict: str | None = None
    for pattern in patterns:
        negated = pattern.startswith("!")
        if _matches(path, pattern.lstrip("!")):
            verdict = None if negated else pattern
    return verdict


def _copy_sources(chain: list[Stage]) -> list[str]:
    """The build-context paths the chain's COPY/ADD instructions put in the image ('.' for everything)."""
    sources: list[str] = []
    for stage in chain:
        for _, word, rest in stage.instructions:
            if word not in ("COPY", "ADD") or "--from=" in rest:
                continue
            if rest.startswith("["):
                try:
                    args = json.loads(rest)
                except ValueError:
                    continue
            else:
                args = [a for a in rest.split() if not a.startswith("--")]
            sources += [a.strip().removeprefix("./").rstrip("/") or "." for a in args[:-1]]
    return sources


def _copied(path: str, sources: list[str]) -> bool:
    return any(s in (".", "*") or path == s or path.startswith(s + "/") or fnmatch.fnmatchcase(path, s)
               for s in sources)


def _runs(chain: list[Stage]) -> list[tuple[int, str]]:
    return [(line, rest) for stage in reversed(chain) for line, word, rest in stage.instructions if word == "RUN"]


# ---------------------------------------------------------------- Python: is pytest installed?


_PIP = re.compile(r"(?:\bpip3?|python3?\s+-m\s+pip|\buv\s+pip)\s+install\s+([^;&|]+)")
_PYTEST = re.compile(r"^\s*pytest\b(?![-_])", re.IGNORECASE | re.MULTILINE)
_DEV_OFF = re.compile(r"--no-dev\b|--only[= ]main\b|--without[= ]\S*dev|--prod\b|--production\b|--no-default-groups")


def _requirements_lists_pytest(root: Path, rel: str, seen: set[str] | None = None) -> bool:
    seen = seen if seen is not None else set()
    if rel in seen or not (root / rel).is_file():
        return False
    seen.add(rel)
    text = read_text(root / rel)
    if _PYTEST.search(text):
        return True
    folder = Path(rel).parent
    for include in re.findall(r"^\s*(?:-r|--requirement)\s*=?\s*(\S+)", text, re.MULTILINE):
        if _requirements_lists_pytest(root, str(folder / include), seen):
            return True
    return False


def _pyproject(root: Path) -> dict:
    try:
        return tomllib.loads(read_text(root / "pyproject.toml")) if (root / "pyproject.toml").is_file() else {}
    except tomllib.TOMLDecodeError:
        return {}


def _names_pytest(deps) -> bool:
    if isinstance(deps, dict):
        return any(str(k).lower() == "pytest" for k in deps)
    if isinstance(deps, list):
        return any(isinstance(d, str) and _PYTEST.match(d) for d in deps)
    return False


def _pyproject_groups(doc: dict, with_dev: bool, extras: list[str]) -> bool:
    project, tool = doc.get("project") or {}, doc.get("tool") or {}
    poetry = tool.get("poetry") or {}
    if _names_pytest(project.get("dependencies")) or _names_pytest(poetry.get("dependencies")):
        return True
    optional = project.get("optional-dependencies") or {}
    if any(_names_pytest(optional.get(extra)) for extra in extras):
        return True
    if not with_dev:
        return False
    groups = [*(doc.get("dependency-groups") or {}).values(), poetry.get("dev-dependencies"),
              *((g or {}).get("dependencies") for g in (poetry.get("group") or {}).values()),
              (tool.get("uv") or {}).get("dev-dependencies"), *((tool.get("pdm") or {}).get("dev-dependencies") or {}).values()]
    return any(_names_pytest(g) for g in groups)


_EXPORT = re.compile(r"\b(poetry|pdm|uv)\s+export\b([^;&|]*?)(?:-o|--output(?:-file)?)[= ]\s*(\S+)([^;&|]*)")


def _exported(chain: list[Stage]) -> dict[str, tuple[str, bool]]:
    """{file name: (the export command, with the dev dependencies?)} of requirement files the build writes from
    pyproject.toml (`poetry export -f requirements.txt --output requirements.txt`): the repository has no such file."""
    out = {}
    for _, run in _runs(chain):
        for match in _EXPORT.finditer(run):
            options = match.group(2) + match.group(4)
            with_dev = bool(re.search(r"--with[= ]\S*dev|--dev\b|--all-groups|-G\s*dev", options)) \
                if match.group(1) == "poetry" else not _DEV_OFF.search(options)
            out[Path(match.group(3).strip("'\"")).name] = (f"{match.group(1)} export", with_dev)
    return out


def _pytest_installed(root: Path, chain: list[Stage], dockerfile: str) -> tuple[str, list[str]]:
    """(what shows pytest is installed, or '' when nothing does; the requirement files the image installs)."""
    installed: list[str] = []
    exported = _exported(chain)

    def lists_pytest(name: str) -> str | None:
        if _requirements_lists_pytest(root, name):
            return f"{name}, which lists pytest"
        export = exported.get(Path(name).name) if not (root / name).is_file() else None
        if export and _pyproject_groups(_pyproject(root), export[1], []):
            return f"{name}, written by `{export[0]}` from pyproject.toml, which lists pytest"
        return None

    for line, run in _runs(chain):
        where = f"{dockerfile}:{line}"
        for match in _PIP.finditer(run):
            words = match.group(1).split()
            for i, word in enumerate(words):
                if word in ("-r", "--requirement") and i + 1 < len(words):
                    installed.append(words[i + 1])
                    if found := lists_pytest(words[i + 1]):
                        return f"{where} installs {found}", installed
                elif word.startswith(("-r", "--requirement=")) and len(word) > 2:
                    name = word.split("=", 1)[1] if "=" in word else word[2:]
                    installed.append(name)
                    if found := lists_pytest(name):
                        return f"{where} installs {found}", installed
                elif _PYTEST.match(word.strip("'\"")):
                    return f"{where} installs pytest (`{' '.join(match.group(0).split())[:100]}`)", installed
                elif re.match(r"^['\"]?\.(\[[\w,\-]+\])?['\"]?$", word):
                    extras = re.findall(r"[\w\-]+", word.partition("[")[2]) if "[" in word else []
                    if _pyproject_groups(_pyproject(root), False, extras):
                        return f"{where} installs the project{word.strip(chr(39) + chr(34))[1:]}, " \
                               "whose pyproject.toml lists pytest", installed
        for tool in ("poetry install", "uv sync", "pdm install", "pipenv install"):
            if tool not in run:
                continue
            with_dev = not _DEV_OFF.search(run) if tool != "pipenv install" else "--dev" in run
            if tool == "pipenv install":
                pipfile = read_text(root / "Pipfile") if (root / "Pipfile").is_file() else ""
                dev = pipfile.partition("[dev-packages]")[2].split("\n[", 1)[0]
                if with_dev and _PYTEST.search(dev) or _PYTEST.search(pipfile.partition("[packages]")[2].split("\n[", 1)[0]):
                    return f"{where} runs `{tool}`, and the Pipfile lists pytest", installed
            elif _pyproject_groups(_pyproject(root), with_dev, []):
                return f"{where} runs `{tool}`" + (" with the dev dependencies" if with_dev else "") + \
                    ", and pyproject.toml lists pytest", installed
    return "", installed


def _python_plan(root: Path, chain: list[Stage], dockerfile: str, tests: list[str]) -> Plan:
    basis, installed = _pytest_installed(root, chain, dockerfile)
    if basis:
        return Plan(command=("python", "-m", "pytest", "-q", "-rfE", "-p", "no:cacheprovider"), tool="pytest",
                    basis=basis)
    texts = [read_text(root / t) for t in tests]
    uses_pytest = any(re.search(r"^\s*(import pytest|from pytest\b)|@pytest\.", t, re.MULTILINE) for t in texts)
    manage = _manage_py(root, chain) if not uses_pytest else None
    if manage:
        where = "" if manage == "manage.py" else f" (the image has it at {manage} from its working directory)"
        return Plan(command=("python", manage, "test", "--noinput"), tool="django",
                    basis=f"a Django project: `manage.py test` needs nothing beyond Django itself{where}")
    if not uses_pytest and all(re.search(r"^\s*(import unittest|from unittest\b)", t, re.MULTILINE) for t in texts):
        return Plan(command=("python", "-m", "unittest", "discover", "-v"), tool="unittest",
                    basis="the tests use unittest, which comes with Python")
    dev = sorted({str(p.relative_to(root)) for p in root.glob("requirements*dev*.txt")} |
                 {str(p.relative_to(root)) for p in root.glob("requirements*test*.txt")})
    where = (f"; pytest is in {', '.join(dev)}, which the image does not install" if dev else "")
    shown = ", ".join(installed) if installed else "nothing that lists pytest"
    return _not(NotRun.NOT_IN_IMAGE, f"the image does not install pytest ({dockerfile} installs {shown}{where})")


def _manage_py(root: Path, chain: list[Stage]) -> str | None:
    """Django's manage.py as the image's working directory reaches it: `manage.py` at the root, or a project
    folder's (`app/manage.py` copied by `COPY ./app /app` into `WORKDIR /app` is `manage.py` there); None when
    the repository has none or the image does not copy it."""
    found = sorted((p for level in (root.glob("manage.py"), root.glob("*/manage.py"), root.glob("*/*/manage.py"))
                    for p in level), key=lambda p: len(p.parts))
    for path in found:
        rel = path.relative_to(root).as_posix()
        image = _image_path(rel, chain)
        if image is not None:
            return image
    return None


def _image_path(rel: str, chain: list[Stage]) -> str | None:
    """Where a COPY of the chain puts the repository file `rel`, relative to the image's final working directory
    (absolute when outside it); None when no COPY takes it."""
    import posixpath

    workdir, placed = "/", None
    for stage in reversed(chain):  # the chain is outermost last: build from the first stage on
        for _, word, rest in stage.instructions:
            if word == "WORKDIR":
                workdir = posixpath.normpath(posixpath.join(workdir, rest.strip().strip("'\"")))
            elif word in ("COPY", "ADD") and "--from=" not in rest and not rest.startswith("["):
                args = [a for a in rest.split() if not a.startswith("--")]
                if len(args) < 2:
                    continue
                dest = posixpath.join(workdir, args[-1])
                for source in (a.removeprefix("./").rstrip("/") or "." for a in args[:-1]):
                    if source == ".":
                        placed = posixpath.join(dest, rel)
                    elif rel == source:
                        placed = posixpath.join(dest, posixpath.basename(rel)) if args[-1].endswith("/") else dest
                    elif rel.startswith(source + "/"):
                        placed = posixpath.join(dest, rel[len(source) + 1:])
    if placed is None:
        return None
    placed = posixpath.normpath(placed)
    inside = posixpath.relpath(placed, workdir)
    return placed if inside.startswith("..") else inside


# ---------------------------------------------------------------- Node: are the dev dependencies installed?


_NODE_INSTALL = re.compile(r"\b(npm\s+(ci|install|i)\b|yarn(\s+install)?\b|pnpm\s+(install|i)\b|bun\s+install\b)")
_NODE_DEV_OFF = re.compile(r"--omit[= ]dev|--production\b|--only[= ]prod(uction)?\b|--prod\b")
_NPM_PLACEHOLDER = re.compile(r"no test specified")
_BUILTIN_RUNNERS = {"node", "npx"}


def _test_tool(script: str) -> str:
    """The program a `scripts.test` runs: `NODE_ENV=test jest --runInBand` -> jest; `node --test` -> node."""
    words = [w for w in re.split(r"\s+", script.split("&&")[-1].strip()) if w and "=" not in w.split("/")[0]]
    while words and words[0] in ("cross-env", "dotenv", "--", "c8", "nyc", "npx", "env"):
        words = words[1:]
    return words[0] if words else ""


_DOCKER_CALL = re.compile(r"\bdocker(-compose|\s+compose)?\s+(build|run|exec|up)\b")


def _calls_docker(root: Path, script: str) -> str | None:
    """`docker ...` as the test script, or a shell script it runs, says it: `"test": "docker compose run api jest"`,
    `"test": "./scripts/test.sh"` whose script builds and runs a test image. None when it does not."""
    if match := _DOCKER_CALL.search(script):
        return f"`{match.group(0)}` in scripts.test"
    for word in re.findall(r"(?:^|\s|&&\s*)(?:sh\s+|bash\s+)?(\.?/?[\w./-]+\.sh)\b", script):
        path = root / word.removeprefix("./")
        if path.is_file() and (match := _DOCKER_CALL.search(read_text(path))):
            return f"{word.removeprefix('./')} runs `{match.group(0)}`"
    return None


def _node_plan(root: Path, chain: list[Stage], dockerfile: str) -> Plan:
    try:
        package = json.loads(read_text(root / "package.json"))
    except ValueError:
        return _not(NotRun.NO_COMMAND, "package.json could not be read")
    script = str(((package.get("scripts") or {}).get("test")) or "")
    if not script or _NPM_PLACEHOLDER.search(script):
        return _not(NotRun.NO_COMMAND, "package.json has no test script" + (" (only npm's placeholder)" if script else ""))
    docker = _calls_docker(root, script)
    if docker:
        return _not(NotRun.RUNS_DOCKER, f"the test script starts containers itself ({docker}), which a container "
                                        "with no network and no Docker cannot")
    install = next(((line, run, found) for line, run in _runs(chain) if (found := _NODE_INSTALL.search(run))), None)
    if install is None:
        return _not(NotRun.NOT_IN_IMAGE, f"{dockerfile} installs no node dependencies (no `npm ci` or `npm install`)")
    line, run, installs = install
    production_env = any(word == "ENV" and re.search(r"NODE_ENV\s*=?\s*['\"]?production", rest)
                         for stage in chain for number, word, rest in stage.instructions if number < line)
    dev_off = _NODE_DEV_OFF.search(run)
    dev_installed = not dev_off and not production_env
    tool = _test_tool(script)
    in_dev = tool in (package.get("devDependencies") or {})
    if in_dev and not dev_installed:
        why = ("NODE_ENV=production is set before it" if production_env or dev_off is None
               else f"`{dev_off.group(0)}`")
        return _not(NotRun.NOT_IN_IMAGE, f"the test script runs {tool}, a dev dependency, and {dockerfile}:{line} "
                                         f"leaves the dev dependencies out ({why})")
    basis = (f"{dockerfile}:{line} installs the dev dependencies (`{installs.group(0)}`)" if in_dev
             else f"the test script runs {tool or 'a command'}" + (", which comes with Node" if tool in _BUILTIN_RUNNERS
                                                                  else ", a runtime dependency"))
    return Plan(command=("npm", "test"), tool="npm", basis=f"{basis}; scripts.test is `{script}`",
                env={"CI": "true", "NODE_ENV": "test"})


# ---------------------------------------------------------------- the plan


_DATASTORE = re.compile(r"postgres|mysql|mariadb|mongo|redis|rabbitmq|elasticsearch|cassandra|couchdb", re.I)


def plan(root: Path, dockerfile: str | None, stack: str, tests: list[str], datastores: Sequence[str] = ()) -> Plan:
    """How the project's tests run in its image, or why they are not run.

    `tests`: the test files the repository holds; `datastores`: the compose services that are databases
    (their tests would need them, and the grader runs tests with no network).
    """
    if not dockerfile:
        return _not(NotRun.NO_IMAGE, "there is no Dockerfile, so there is no image to run them in")
    stages = parse_dockerfile(read_text(root / dockerfile))
    if not stages:
        return _not(NotRun.NO_IMAGE, f"{dockerfile} has no FROM instruction")
    chain = _chain(stages)
    test_stage = next((s for s in stages if s.name and s.name.lower() in ("test", "tests", "testing")
                       and s not in chain), None)
    if test_stage is not None:
        return _not(NotRun.TEST_STAGE, f"the tests belong to {dockerfile}'s `{test_stage.name}` stage (line "
                                       f"{test_stage.line}); the grader builds and runs the final stage only")
    planned = _plan_in_image(root, chain, dockerfile, stack, tests)
    if not planned.runs or not datastores:
        return planned
    own = own_database(root, tests)
    if own is None:
        return _not(NotRun.NEEDS_DATABASE, f"the compose project gives the API a database ({', '.join(datastores)}), "
                                           "which its tests would need, and the grader runs them with no network")
    return replace(planned, basis=f"{planned.basis}; the tests make their own database ({own}), not the compose "
                                  f"project's {datastores[0].split(':')[0]}")


# where tests make a database of their own: SQLite (a file or in memory), Django's sqlite3 backend, an in-memory
# MongoDB or Postgres; a test container is not one (it needs Docker and the network)
_OWN_DATABASE = re.compile(r"""sqlite(\+\w+)?:///?|django\.db\.backends\.sqlite3|['"]:memory:['"]|mongodb-memory-server"""
                           r"|MongoMemoryServer|\bpg-mem\b")
_TEST_SETUP = re.compile(r"(^|/)(conftest\.py|[\w.-]*(test|testing)[_-]?settings[\w.-]*\.py|settings/(test|testing)\w*\.py|"
                         r"jest\.(config|setup)[\w.-]*\.[cm]?[jt]s|setup-?tests?\.[cm]?[jt]s|\.env\.test)$", re.I)


def own_database(root: Path, tests: list[str]) -> str | None:
    """`file:line match` where the tests (or their set-up: conftest.py, test settings, Jest's set-up) make a
    database of their own, so a compose project's database is not what they need; None when nothing shows it."""
    from .inspect import _list_files

    setup = [f for f in _list_files(root) if _TEST_SETUP.search(f) and "/node_modules/" not in f"/{f}"]
    for rel in [*setup, *tests][:200]:
        for number, line in enumerate(read_text(root / rel).splitlines(), 1):
            match = _OWN_DATABASE.search(line)
            if match and not line.lstrip().startswith(("#", "//")):
                return f"{rel}:{number} `{match.group(0)}`"
    return None


def _plan_in_image(root: Path, chain: list[Stage], dockerfile: str, stack: str, tests: list[str]) -> Plan:
    """The command that runs the tests in the image, or why the image cannot run them."""
    patterns, sources = _ignore_patterns(root, dockerfile), _copy_sources(chain)
    kept_out = {t: ignored(t, patterns) for t in tests}
    in_image = [t for t in tests if _copied(t, sources) and not kept_out[t]]
    if not in_image:
        excluded = sorted({p for p in kept_out.values() if p})
        why = (f".dockerignore excludes them ({', '.join(f'`{p}`' for p in excluded[:3])})" if excluded else
               f"{dockerfile} copies only {', '.join(sources[:4]) or 'nothing'}")
        return _not(NotRun.NOT_IN_IMAGE, f"the test files are not in the image: {why}")
    if stack == "python" or any(t.endswith(".py") for t in in_image):
        return _python_plan(root, chain, dockerfile, in_image)
    if stack == "node" and (root / "package.json").is_file():
        if not _copied("package.json", sources) or ignored("package.json", patterns):
            return _not(NotRun.NOT_IN_IMAGE, "package.json is not in the image")
        return _node_plan(root, chain, dockerfile)
    return _not(NotRun.NO_COMMAND, f"the grader knows no test command it can run in a {stack} image "
                                   "(Python and Node projects only)")


# ---------------------------------------------------------------- what the run said


@dataclass(frozen=True)
class Counts:
    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0
    failures: tuple[str, ...] = ()  # the failing tests' names, as the runner printed them
    line: str = ""  # the summary line the counts were read from

    @property
    def total(self) -> int:
        return self.passed + self.failed + self.errors


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _count(pattern: str, text: str) -> int:
    match = re.search(pattern, text)
    return int(match.group(1)) if match else 0


def _pytest(lines: list[str]) -> Counts | None:
    for line in reversed(lines):
        bare = line.strip().strip("=").strip()
        if re.search(r"\b(passed|failed|errors?|no tests ran|skipped)\b.* in [\d.]+s", bare):
            failures = tuple(m.group(1) for m in (re.match(r"(?:FAILED|ERROR) (\S+)", l) for l in lines) if m)
            return Counts(_count(r"(\d+) passed", bare), _count(r"(\d+) failed", bare), _count(r"(\d+) errors?", bare),
                          _count(r"(\d+) skipped", bare), failures, bare)
    return None


def _unittest(lines: list[str]) -> Counts | None:
    ran = next((i for i in range(len(lines) - 1, -1, -1) if re.match(r"Ran \d+ tests? in", lines[i])), None)
    if ran is None:
        return None
    total = _count(r"Ran (\d+) test", lines[ran])
    result = next((l.strip() for l in lines[ran + 1:] if l.strip()), "")
    failed, errors = _count(r"failures=(\d+)", result), _count(r"errors=(\d+)", result)
    skipped = _count(r"skipped=(\d+)", result)
    failures = tuple(m.group(1) for m in (re.match(r"(?:FAIL|ERROR): (.+)", l) for l in lines) if m)
    return Counts(max(0, total - failed - errors - skipped), failed, errors, skipped, failures,
                  f"{lines[ran].strip()} {result}".strip())


def _node_test(lines: list[str]) -> Counts | None:
    text = "\n".join(lines)
    match = re.search(r"^\s*(?:#|ℹ)\s*tests (\d+)", text, re.MULTILINE)
    if not match:
        return None
    passed, failed = _count(r"(?m)^\s*(?:#|ℹ)\s*pass (\d+)", text), _count(r"(?m)^\s*(?:#|ℹ)\s*fail (\d+)", text)
    skipped = _count(r"(?m)^\s*(?:#|ℹ)\s*skipped (\d+)", text)
    failures = tuple(dict.fromkeys(m.group(1).strip() for m in re.finditer(r"(?m)^\s*(?:not ok \d+ - |✖ )(.+?)"
                                                                             r"(?: \([\d.]+m?s\))?$", text)
                                   if not m.group(1).startswith("failing tests")))
    return Counts(passed, failed, 0, skipped, failures[:failed or None], f"tests {match.group(1)}, pass {passed}, "
                                                                          f"fail {failed}")


def _jest_vitest(lines: list[str]) -> Counts | None:
    for line in reversed(lines):
        bare = line.strip()
        if re.match(r"Tests:\s", bare) or re.match(r"Tests\s+\d", bare):
            failures = tuple(dict.fromkeys(m.group(1).strip() for m in (re.match(r"\s*(?:✕|×|●(?! Console))\s+(.+?)"
                                                                                  r"(?: \(?\d+ ?m?s\)?)?$", l)
                                                                         for l in lines) if m))
            return Counts(_count(r"(\d+) passed", bare), _count(r"(\d+) failed", bare), 0,
                          _count(r"(\d+) (?:skipped|todo)", bare), failures, bare)
    return None


def _mocha(lines: list[str]) -> Counts | None:
    text = "\n".join(lines)
    passing = re.search(r"(?m)^\s*(\d+) passing \(", text)
    if not passing:
        return None
    failing = _count(r"(?m)^\s*(\d+) failing", text)
    # after "N failing" each failure is "  1) suite" then its title indented on the next line, ending in ':'
    failing_at = re.search(r"(?m)^\s*\d+ failing", text)
    details = text[failing_at.end():] if failing and failing_at else ""
    failures = tuple(" ".join(f"{suite.strip()} {title.strip()}".split())
                     for suite, title in re.findall(r"(?m)^\s{2}\d+\) (.+)\n\s+(.+?):$", details))
    return Counts(int(passing.group(1)), failing, 0, _count(r"(?m)^\s*(\d+) pending", text), failures,
                  f"{passing.group(1)} passing, {failing} failing")


def parse(output: str) -> Counts | None:
    """The counts of the last summary a known runner printed, None when the output holds none."""
    lines = _ANSI.sub("", output or "").splitlines()
    for reader in (_jest_vitest, _node_test, _mocha, _unittest, _pytest):
        counts = reader(lines)
        if counts is not None:
            return counts
    return None


def not_installed(output: str) -> str | None:
    """The line saying the test tool itself is missing from the image (`No module named pytest`), else None."""
    for line in (output or "").splitlines():
        if re.search(r"No module named '?(pytest|django|unittest)|: (jest|mocha|vitest|ava|tap): not found|"
                     r"(jest|mocha|vitest)['\"]? is not recognized|Cannot find module '(jest|mocha|vitest)|"
                     r"executable file not found|npm: not found|python: not found", line):
            return line.strip()[:200]
    return None
