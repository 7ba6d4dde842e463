"""The project's own tests without Docker: which command runs them in the image (or why none), what their summary
lines say, and how repo.tests judges a run (the container replaced by a recorded OneOff)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from portfolio_grader import own_tests
from portfolio_grader.checks import CheckContext
from portfolio_grader.inspect import inspect_repo
from portfolio_grader.models import ApiModel, RunningService, Source, Workspace
from portfolio_grader.own_tests import NotRun
from portfolio_grader.runtime import sibling
from portfolio_grader.runtime.sibling import OneOff

from ..conftest import run, write_files as repo

PY_TEST = "def test_adds():\n    assert 1 + 1 == 2\n"
PY_DOCKERFILE = "FROM python:3.12-slim\nWORKDIR /app\nCOPY requirements.txt .\nRUN pip install -r requirements.txt\nCOPY . .\n"



def plan(root: Path, datastores=()) -> own_tests.Plan:
    facts = inspect_repo(root)
    from portfolio_grader.checks.repo import _test_files

    return own_tests.plan(root, facts.dockerfile, facts.stack, _test_files(root), list(datastores))


# ---------------------------------------------------------------- the plan: Python


def test_pytest_listed_in_an_installed_requirements_file_is_run(tmp_path):
    root = repo(tmp_path, {"Dockerfile": PY_DOCKERFILE, "requirements.txt": "fastapi==0.115.0\n-r requirements-test.txt\n",
                           "requirements-test.txt": "pytest==8.3.4\n", "tests/test_api.py": PY_TEST})
    found = plan(root)
    assert found.runs and found.command[:3] == ("python", "-m", "pytest")
    assert found.basis == "Dockerfile:4 installs requirements.txt, which lists pytest"


def test_pytest_only_in_the_dev_requirements_is_not_run_and_says_where_it_is(tmp_path):
    root = repo(tmp_path, {"Dockerfile": PY_DOCKERFILE, "requirements.txt": "fastapi==0.115.0\n",
                           "requirements-dev.txt": "pytest==8.3.4\n", "tests/test_api.py": "import pytest\n" + PY_TEST})
    found = plan(root)
    assert not found.runs and found.not_run is NotRun.NOT_IN_IMAGE
    assert "installs requirements.txt; pytest is in requirements-dev.txt, which the image does not install" in found.why


def test_pyproject_extras_and_poetry_dev_groups_count(tmp_path):
    root = repo(tmp_path, {"Dockerfile": "FROM python:3.12-slim\nCOPY . .\nRUN pip install '.[test]'\n",
                           "pyproject.toml": '[project]\nname = "x"\nversion = "0"\n[project.optional-dependencies]\n'
                                             'test = ["pytest>=8"]\n', "tests/test_api.py": PY_TEST})
    assert plan(root).runs
    poetry = '[tool.poetry.group.dev.dependencies]\npytest = "^8"\n'
    root2 = repo(tmp_path / "p", {"Dockerfile": "FROM python:3.12-slim\nCOPY . .\nRUN poetry install\n",
                                  "pyproject.toml": poetry, "tests/test_api.py": PY_TEST})
    assert plan(root2).runs
    root3 = repo(tmp_path / "q", {"Dockerfile": "FROM python:3.12-slim\nCOPY . .\nRUN poetry install --only main\n",
                                  "pyproject.toml": poetry, "tests/test_api.py": "import pytest\n" + PY_TEST})
    assert plan(root3).not_run is NotRun.NOT_IN_IMAGE


def test_a_django_project_runs_manage_py_test_and_unittest_needs_nothing(tmp_path):
    root = repo(tmp_path, {"Dockerfile": PY_DOCKERFILE, "requirements.txt": "Django==5.2\n", "manage.py": "",
                           "books/tests.py": "from django.test import TestCase\nclass T(TestCase):\n"
                                             "    def test_x(self):\n        pass\n"})
    assert plan(root).command == ("python", "manage.py", "test", "--noinput")
    root2 = repo(tmp_path / "u", {"Dockerfile": PY_DOCKERFILE, "requirements.txt": "flask==3.0\n",
                                  "tests/test_api.py": "import unittest\nclass T(unittest.TestCase):\n"
                                                       "    def test_x(self):\n        pass\n"})
    assert plan(root2).command[:3] == ("python", "-m", "unittest")


def test_tests_kept_out_of_the_image_are_not_run(tmp_path):
    ignored = repo(tmp_path, {"Dockerfile": PY_DOCKERFILE, "requirements.txt": "pytest==8.3.4\n", ".dockerignore":
                              ".git\ntests\n", "tests/test_api.py": PY_TEST})
    assert plan(ignored).why == "the test files are not in the image: .dockerignore excludes them (`tests`)"
    copied = repo(tmp_path / "c", {"Dockerfile": "FROM python:3.12-slim\nCOPY requirements.txt .\nRUN pip install -r "
                                   "requirements.txt\nCOPY app ./app\n", "requirements.txt": "pytest==8.3.4\n",
                                   "app/main.py": "", "tests/test_api.py": PY_TEST})
    assert plan(copied).why == "the test files are not in the image: Dockerfile copies only requirements.txt, app"
    negated = repo(tmp_path / "n", {"Dockerfile": PY_DOCKERFILE, "requirements.txt": "pytest==8.3.4\n",
                                    ".dockerignore": "**/test_*\n!tests/test_api.py\n", "tests/test_api.py": PY_TEST})
    assert plan(negated).runs


def test_a_test_stage_and_a_compose_database_are_reasons_not_to_run(tmp_path):
    staged = repo(tmp_path, {"Dockerfile": "FROM python:3.12-slim AS base\nCOPY . .\nRUN pip install -r requirements.txt"
                             "\nFROM base AS test\nRUN pip install pytest\nFROM base\nCMD [\"python\", \"app.py\"]\n",
                             "requirements.txt": "flask\n", "tests/test_api.py": PY_TEST})
    found = plan(staged)
    assert found.not_run is NotRun.TEST_STAGE and "`test` stage (line 4)" in found.why
    root = repo(tmp_path / "db", {"Dockerfile": PY_DOCKERFILE, "requirements.txt": "pytest\n", "tests/test_api.py": PY_TEST})
    found = plan(root, datastores=["`db`: postgres:16"])
    assert found.not_run is NotRun.NEEDS_DATABASE and "postgres:16" in found.why


def test_the_final_stage_inherits_what_its_builder_installed(tmp_path):
    root = repo(tmp_path, {"Dockerfile": "FROM python:3.12-slim AS deps\nCOPY requirements.txt .\nRUN pip install -r "
                           "requirements.txt\nFROM deps\nWORKDIR /app\nCOPY . .\n", "requirements.txt": "pytest\n",
                           "tests/test_api.py": PY_TEST})
    assert plan(root).basis == "Dockerfile:3 installs requirements.txt, which lists pytest"


# ---------------------------------------------------------------- the plan: Node


def node_repo(tmp_path: Path, install: str, scripts: dict, dev: dict | None = None, env: str = "") -> Path:
    package = {"name": "x", "scripts": scripts, "dependencies": {"express": "5.0.0"}, "devDependencies": dev or {}}
    return repo(tmp_path, {"Dockerfile": f"FROM node:20-alpine\nWORKDIR /app\n{env}COPY package*.json ./\nRUN {install}\n"
                                         "COPY . .\nCMD [\"node\", \"index.js\"]\n",
                           "package.json": json.dumps(package), "test/api.test.js": "test('x', () => {});\n"})


def test_npm_test_runs_when_the_dev_dependencies_are_installed(tmp_path):
    found = plan(node_repo(tmp_path, "npm ci", {"test": "jest --runInBand"}, {"jest": "29.7.0"}))
    assert found.command == ("npm", "test") and found.env["CI"] == "true"
    assert found.basis.startswith("Dockerfile:4 installs the dev dependencies (`npm ci`)")


def test_dev_dependencies_left_out_are_a_reason(tmp_path):
    omitted = plan(node_repo(tmp_path, "npm ci --omit=dev", {"test": "jest"}, {"jest": "29.7.0"}))
    assert omitted.not_run is NotRun.NOT_IN_IMAGE and "`--omit=dev`" in omitted.why
    production = plan(node_repo(tmp_path / "p", "npm ci", {"test": "mocha"}, {"mocha": "10"},
                                env="ENV NODE_ENV=production\n"))
    assert "NODE_ENV=production is set before it" in production.why
    builtin = plan(node_repo(tmp_path / "b", "npm ci --omit=dev", {"test": "node --test"}))
    assert builtin.runs and "which comes with Node" in builtin.basis


def test_npm_placeholder_is_no_test_command(tmp_path):
    found = plan(node_repo(tmp_path, "npm ci", {"test": 'echo "Error: no test specified" && exit 1'}))
    assert found.not_run is NotRun.NO_COMMAND and "npm's placeholder" in found.why


# ---------------------------------------------------------------- summaries


PYTEST_OUT = """\
tests/test_x.py:5: AssertionError
=========================== short test summary info ============================
FAILED tests/test_x.py::test_b - assert 0
ERROR tests/test_y.py::test_c - KeyError
1 failed, 3 passed, 1 skipped, 1 error in 0.04s
"""
UNITTEST_OUT = """\
ERROR: test_c (test_u.T.test_c)
FAIL: test_b (test_u.T.test_b)
----------------------------------------------------------------------
Ran 4 tests in 0.001s

FAILED (failures=1, errors=1)
"""
NODE_TAP = "# Subtest: adds\nok 1 - adds\n# Subtest: subtracts\nnot ok 2 - subtracts\n1..2\n# tests 2\n# suites 0\n" \
           "# pass 1\n# fail 1\n# cancelled 0\n# skipped 0\n"
NODE_SPEC = "✔ adds (0.5ms)\n✖ subtracts (1.2ms)\nℹ tests 2\nℹ pass 1\nℹ fail 1\nℹ skipped 0\n"
JEST = """\
 FAIL  test/api.test.js
  books
    ✓ lists books (12 ms)
    ✕ creates a book (5 ms)

Tests:       1 failed, 1 passed, 2 total
Snapshots:   0 total
"""
VITEST = " ❯ test/api.test.ts (2 tests | 1 failed) 8ms\n   × creates a book 5ms\n\n Test Files  1 failed (1)\n" \
         "      Tests  1 failed | 1 passed (2)\n"
MOCHA = "  books\n    ✔ lists books\n    1) creates a book\n\n\n  1 passing (12ms)\n  1 failing\n\n" \
        "  1) books\n       creates a book:\n     AssertionError\n"


@pytest.mark.parametrize("output, expected", [
    (PYTEST_OUT, (3, 1, 1, 1, ("tests/test_x.py::test_b", "tests/test_y.py::test_c"))),
    (UNITTEST_OUT, (2, 1, 1, 0, ("test_c (test_u.T.test_c)", "test_b (test_u.T.test_b)"))),
    (NODE_TAP, (1, 1, 0, 0, ("subtracts",))),
    (NODE_SPEC, (1, 1, 0, 0, ("subtracts",))),
    (JEST, (1, 1, 0, 0, ("creates a book",))),
    (VITEST, (1, 1, 0, 0, ("creates a book",))),
    (MOCHA, (1, 1, 0, 0, ("books creates a book",))),
], ids=["pytest", "unittest", "node-tap", "node-spec", "jest", "vitest", "mocha"])
def test_summaries_are_read(output, expected):
    counts = own_tests.parse(output)
    assert (counts.passed, counts.failed, counts.errors, counts.skipped, counts.failures) == expected


def test_no_summary_and_a_missing_tool_are_told_apart():
    assert own_tests.parse("Traceback...\nModuleNotFoundError\n") is None
    assert own_tests.not_installed("/usr/local/bin/python: No module named pytest") is not None
    assert own_tests.parse("no tests ran in 0.01s").total == 0


# ---------------------------------------------------------------- the verdict of a run (no Docker: a recorded run)


def judged(tmp_path, monkeypatch, ran: OneOff, kind="docker"):
    root = repo(tmp_path, {"Dockerfile": PY_DOCKERFILE, "requirements.txt": "pytest==8.3.4\n",
                           "tests/test_api.py": PY_TEST * 1})
    calls = []
    monkeypatch.setattr(sibling, "run_beside", lambda *a, **k: calls.append((a, k)) or ran)
    ctx = CheckContext(workspace=Workspace(name="t", source=Source()), facts=inspect_repo(root),
                       service=RunningService(kind=kind, status="running", api_container="abc"), api=ApiModel(),
                       prober=None)
    return run("repo.tests", ctx), calls


def test_all_passing_is_a_pass_that_rests_on_the_run(tmp_path, monkeypatch):
    outcome, calls = judged(tmp_path, monkeypatch, OneOff(0, "....\n4 passed in 0.3s\n", 2.0))
    assert outcome.status == "pass" and "4 passed in 2.0 s" in outcome.summary
    assert calls[0][1]["timeout"] == 90.0 and calls[0][0] == ("abc", list(plan(tmp_path).command))
    assert "exit 0" in outcome.evidence[0].note and "4 passed" in outcome.evidence[0].excerpt
    assert outcome.evidence[0].curl.startswith("docker build -f Dockerfile -t api . && docker run --rm --network none")


@pytest.mark.parametrize("ran, says", [
    (OneOff(1, "/usr/local/bin/python: No module named pytest\n", 0.5), "the image lacks the test tool"),
    (OneOff(5, "no tests ran in 0.01s\n", 0.5), "exited 5 without running a test (no tests ran in 0.01s)"),
    (OneOff(2, "ERROR tests/test_api.py - KeyError: 'DATABASE_URL'\n1 error in 0.2s\n", 0.5),
     "every one of the 1 error(s) came before a test could run"),
    (OneOff(None, "..", 90.0, timed_out=True), "did not finish within the 90 s deadline"),
    (OneOff(None, "", 0.1, error="no such image"), "could not start"),
], ids=["tool-missing", "nothing-collected", "errors-only", "deadline", "engine-refused"])
def test_a_run_that_says_nothing_keeps_the_files_verdict_and_says_why(tmp_path, monkeypatch, ran, says):
    outcome, _ = judged(tmp_path, monkeypatch, ran)
    assert outcome.status == "pass" and not outcome.findings and says in outcome.summary, outcome.summary


def test_a_live_deployment_is_not_run(tmp_path, monkeypatch):
    outcome, calls = judged(tmp_path, monkeypatch, OneOff(0, "", 0.0), kind="external")
    assert not calls and "live deployment: no image was built" in outcome.summary
