"""Unit tests of the repository checks on throwaway repositories written into tmp_path: each kind's pass and fail."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from portfolio_grader.checks import CheckContext
from portfolio_grader.checks.repo import committed_files
from portfolio_grader.dockerfile import parse_dockerfile
from portfolio_grader.inspect import inspect_repo
from portfolio_grader.models import ApiModel, RunningService, Source, Workspace

from ..conftest import kinds, run, write_files as repo

README_RUN = """# Shelf API

A bookshelf API with FastAPI and SQLite, built for my backend course. It stores books and answers JSON.

## Run

```bash
docker build -t shelf . && docker run -p 8000:8000 shelf
```
"""



def check(root: Path, check_id: str):
    ctx = CheckContext(workspace=Workspace(name="t", source=Source()), facts=inspect_repo(root),
                       service=RunningService(kind="none", status="not_started"), api=ApiModel(), prober=None)
    outcome = run(check_id, ctx)
    for finding in outcome.findings:
        assert finding.evidence and all(e.curl for e in finding.evidence) and finding.hint, finding
    return outcome


# ---------------------------------------------------------------- README


@pytest.mark.parametrize("command", ["go run main.go", "./mvnw spring-boot:run", "./gradlew bootRun", "cargo run",
                                     "pnpm dev", "poetry run uvicorn app.main:app", "fastapi dev app/main.py",
                                     "npx nodemon src/index.js"],
                         ids=["go", "maven", "gradle", "cargo", "pnpm", "poetry", "fastapi-cli", "nodemon"])
def test_each_stacks_run_command_is_a_run_command(tmp_path, command):
    text = ("# Todo API\n\nA small REST API for a to-do list, written for my backend course: users, lists, items, and "
            "JSON answers for each of them. It keeps its data in SQLite and signs its tokens with a key from the "
            "environment.\n\n## Run\n\n```bash\n" + command + "\n```\n")
    outcome = check(repo(tmp_path, {"README.md": text}), "repo.readme")
    assert outcome.status == "pass", outcome.summary
    unrun = text.replace(command, "git clone https://example.com/todo.git\nnpm install -g nodemon")  # no run
    assert kinds(check(repo(tmp_path / "n", {"README.md": unrun}), "repo.readme")) == {"readme_missing"}


# ---------------------------------------------------------------- README design decisions


def test_readme_with_a_design_section_passes(tmp_path):
    root = repo(tmp_path, {"README.md": README_RUN + "\n## Design decisions\n\nSQLite keeps it one container.\n"})
    outcome = check(root, "repo.readme_design")
    assert outcome.status == "pass" and "Design decisions" in outcome.summary


def test_readme_that_explains_choices_in_prose_passes(tmp_path):
    root = repo(tmp_path, {"README.md": README_RUN + "\nI used SQLite because it needs no server, and ids are "
                                                     "UUIDs instead of integers so they cannot be guessed.\n"})
    assert check(root, "repo.readme_design").status == "pass"


def test_readme_without_any_design_is_readme_design_missing(tmp_path):
    outcome = check(repo(tmp_path, {"README.md": README_RUN}), "repo.readme_design")
    assert kinds(outcome) == {"readme_design_missing"} and outcome.findings[0].severity == "low"


@pytest.mark.parametrize("section", [
    "## Tech Stack\n\n- **FastAPI**\n- **PostgreSQL**\n- **Docker**\n",
    "### App structure\n\n```\n.\n├── app\n├── docker-compose.yml\n└── README.md\n```\n",
], ids=["stack-list", "structure-tree"])
def test_a_stack_list_or_a_file_tree_is_no_design_section(tmp_path, section):
    outcome = check(repo(tmp_path, {"README.md": README_RUN + "\n" + section}), "repo.readme_design")
    assert kinds(outcome) == {"readme_design_missing"}
    assert "lists what is used" in outcome.findings[0].message


def test_a_stack_section_that_explains_in_a_sentence_is_a_design_section(tmp_path):
    section = ("## Tech stack\n\n- Express 5\n- bcryptjs\n\nData is kept in memory for now, so it is reset when "
               "the server restarts (MongoDB is next on my list).\n")
    outcome = check(repo(tmp_path, {"README.md": README_RUN + "\n" + section}), "repo.readme_design")
    assert outcome.status == "pass" and "Tech stack" in outcome.summary


# ---------------------------------------------------------------- tests and CI


def test_test_files_with_tests_pass(tmp_path):
    root = repo(tmp_path, {"tests/__init__.py": "", "tests/test_books.py": "def test_create():\n    assert True\n"})
    outcome = check(root, "repo.tests")
    assert outcome.status == "pass" and "1 test(s)" in outcome.summary


def test_node_spec_files_pass(tmp_path):
    root = repo(tmp_path, {"src/notes.test.js": "test('creates a note', async () => {});\n"})
    assert check(root, "repo.tests").status == "pass"


@pytest.mark.parametrize("files, found", [
    ({"tests/test_books.py": "def test_create():\n    assert True\n"}, "tests/test_books.py"),  # pytest's tests/
    ({"test_api.py": "def test_list():\n    pass\n"}, "test_api.py"),  # pytest at the root
    ({"app/api_test.py": "async def test_read():\n    pass\n"}, "app/api_test.py"),  # pytest's *_test.py
    ({"books/tests.py": "from django.test import TestCase\n\nclass T(TestCase):\n    def test_list(self):\n"
                        "        pass\n"}, "books/tests.py"),  # Django's <app>/tests.py
    ({"books/tests/test_views.py": "import unittest\n\nclass V(unittest.TestCase):\n    def test_x(self):\n"
                                   "        pass\n"}, "books/tests/test_views.py"),  # Django's <app>/tests/, unittest
    ({"test/notes.mjs": "import test from 'node:test';\ntest('lists notes', () => {});\n"}, "test/notes.mjs"),  # node --test
    ({"src/__tests__/notes.js": "describe('notes', () => { it('lists', () => {}); });\n"}, "src/__tests__/notes.js"),  # Jest
    ({"src/notes.spec.ts": "it('creates a note', async () => {});\n"}, "src/notes.spec.ts"),  # Vitest/Jest spec
    ({"handlers/notes_test.go": "package handlers\n\nfunc TestList(t *testing.T) {}\n"}, "handlers/notes_test.go"),  # Go
    ({"src/test/java/app/NotesTest.java": "class NotesTest {\n  @Test void lists() {}\n}\n"},
     "src/test/java/app/NotesTest.java"),  # Java's src/test/
], ids=["pytest-folder", "pytest-root", "pytest-suffix", "django-tests-py", "django-tests-folder", "node-test",
        "jest-__tests__", "spec-ts", "go", "java"])
def test_each_frameworks_test_layout_is_found_and_named(tmp_path, files, found):
    outcome = check(repo(tmp_path, files), "repo.tests")
    assert outcome.status == "pass" and "1 test file(s)" in outcome.summary, outcome.summary
    assert found in outcome.summary  # the scorecard says which files were found


def test_npms_placeholder_test_script_and_a_file_without_tests_are_no_tests(tmp_path):
    files = {"package.json": '{"scripts": {"test": "echo \\"Error: no test specified\\" && exit 1"}}',
             "books/tests.py": "from django.test import TestCase\n# Create your tests here.\n"}
    outcome = check(repo(tmp_path, files), "repo.tests")
    assert kinds(outcome) == {"tests_missing"}
    assert "books/tests.py define no test" in outcome.findings[0].message


@pytest.mark.parametrize("files", [{"app.py": "print('hi')\n"},
                                   {"tests/__init__.py": "", "tests/conftest.py": "import pytest\n"}],
                         ids=["no-tests-folder", "empty-tests-folder"])
def test_no_test_is_tests_missing(tmp_path, files):
    assert kinds(check(repo(tmp_path, files), "repo.tests")) == {"tests_missing"}


def test_a_github_workflow_passes_and_says_what_it_runs(tmp_path):
    root = repo(tmp_path, {".github/workflows/ci.yml": "on: push\njobs:\n  t:\n    steps:\n      - run: pytest -q\n"})
    outcome = check(root, "repo.ci")
    assert outcome.status == "pass" and "pytest" in outcome.summary


def test_no_ci_is_ci_missing(tmp_path):
    assert kinds(check(repo(tmp_path, {"app.py": ""}), "repo.ci")) == {"ci_missing"}


def test_ci_that_runs_the_tests_in_any_of_its_files_passes_and_names_it(tmp_path):
    root = repo(tmp_path, {".github/workflows/lint.yml": "on: push\njobs:\n  l:\n    steps:\n      - run: flake8 .\n",
                           ".travis.yml": "script:\n  - docker-compose run app sh -c \"python manage.py test\"\n"})
    outcome = check(root, "repo.ci")
    assert outcome.status == "pass" and "manage.py test` in .travis.yml" in outcome.summary, outcome.summary


def test_ci_that_never_runs_the_projects_tests_is_ci_tests_not_run(tmp_path):
    workflow = ("on: push\njobs:\n  build:\n    steps:\n      - uses: actions/checkout@v4\n"
                "      - run: docker build -t api .\n")
    root = repo(tmp_path, {".github/workflows/docker-image.yml": workflow,
                           "test/login.test.js": "test('logs in', async () => {});\n"})
    outcome = check(root, "repo.ci")
    assert kinds(outcome) == {"ci_tests_not_run"} and outcome.score == 0.5
    assert "test/login.test.js" in outcome.findings[0].message
    # with no test to run, the missing tests are repo.tests' finding, not a second one here
    (root / "test/login.test.js").unlink()
    outcome = check(root, "repo.ci")
    assert outcome.status == "pass" and "no tests to run" in outcome.summary


# ---------------------------------------------------------------- the project's own tests: how they would run


def own_plan(root: Path, datastores=()):
    from portfolio_grader import own_tests
    from portfolio_grader.checks.repo import _test_files

    facts = inspect_repo(root)
    return own_tests.plan(root, facts.dockerfile, facts.stack, _test_files(root), list(datastores))


PYTEST_IMAGE = "FROM python:3.12-slim\nWORKDIR /app\nCOPY . .\nRUN pip install -r requirements.txt\n"


def test_tests_that_make_their_own_database_run_beside_a_compose_database(tmp_path):
    conftest = 'from sqlalchemy import create_engine\nengine = create_engine("sqlite://")\n'
    files = {"Dockerfile": PYTEST_IMAGE, "requirements.txt": "pytest==8.3.4\n",
             "tests/test_api.py": "def test_x():\n    pass\n"}
    found = own_plan(repo(tmp_path, {**files, "tests/conftest.py": conftest}), ["`db`: postgres:16"])
    assert found.runs and "tests/conftest.py:2 `sqlite://`" in found.basis, found
    found = own_plan(repo(tmp_path / "pg", files), ["`db`: postgres:16"])
    assert not found.runs and found.why.startswith("the compose project gives the API a database")


@pytest.mark.parametrize("group, runs", [("dependencies", True), ("group.dev.dependencies", False)],
                         ids=["main-group", "dev-group"])
def test_a_requirements_file_exported_from_poetry_in_the_build_is_read_from_pyproject(tmp_path, group, runs):
    dockerfile = ("FROM python:3.12 AS builder\nRUN pip install poetry\nCOPY pyproject.toml poetry.lock ./\n"
                  "RUN poetry export -f requirements.txt --output requirements.txt --without-hashes\n"
                  "FROM python:3.12-slim\nCOPY --from=builder /requirements.txt .\n"
                  "RUN pip install -r requirements.txt\nCOPY app ./app\nWORKDIR /app\n")
    pyproject = f'[tool.poetry.{group}]\npytest = "8.3.4"\n'
    root = repo(tmp_path, {"Dockerfile": dockerfile, "pyproject.toml": pyproject, "poetry.lock": "",
                           "app/tests/test_api.py": "def test_x():\n    pass\n"})
    found = own_plan(root)
    assert found.runs is runs, found
    if runs:
        assert "written by `poetry export` from pyproject.toml" in found.basis


@pytest.mark.parametrize("dockerfile, command", [
    ("FROM python:3.12-slim\nCOPY ./app /app\nWORKDIR /app\nRUN pip install django\n", "manage.py"),
    ("FROM python:3.12-slim\nWORKDIR /code\nCOPY . .\nRUN pip install django\n", "app/manage.py"),
], ids=["project-folder-is-the-workdir", "whole-repo-copied"])
def test_a_django_project_in_a_subfolder_runs_manage_py_test_where_the_image_has_it(tmp_path, dockerfile, command):
    root = repo(tmp_path, {"Dockerfile": dockerfile, "app/manage.py": "", "requirements.txt": "django==5.1\n",
                           "app/core/tests/test_models.py": "from django.test import TestCase\n\n"
                                                            "class T(TestCase):\n    def test_x(self):\n        pass\n"})
    found = own_plan(root)
    assert found.runs and found.command[:3] == ("python", command, "test"), found
    uncopied = repo(tmp_path / "n", {"Dockerfile": "FROM python:3.12-slim\nCOPY ./api /srv\n", "app/manage.py": "",
                                     "app/core/tests.py": "def test_x():\n    pass\n"})
    assert not own_plan(uncopied).runs


NODE_IMAGE = "FROM node:20\nWORKDIR /app\nCOPY package*.json ./\nRUN npm install\nCOPY . .\nCMD [\"node\", \"index.js\"]\n"


@pytest.mark.parametrize("script, files, shown", [
    ("./scripts/test.sh", {"scripts/test.sh": "docker build -t t -f test.dockerfile .\ndocker run t\n"},
     "scripts/test.sh runs `docker build`"),
    ("docker compose run api npx jest", {}, "`docker compose run` in scripts.test"),
], ids=["shell-script", "compose-run"])
def test_a_test_script_that_starts_containers_is_not_run_in_the_image(tmp_path, script, files, shown):
    package = json.dumps({"scripts": {"test": script}, "devDependencies": {"jest": "^29.0.0"}})
    root = repo(tmp_path, {"Dockerfile": NODE_IMAGE, "package.json": package, "test/app.test.js": "test('x', () => {});\n",
                           **files})
    found = own_plan(root)
    assert not found.runs and shown in found.why, found
    plain = repo(tmp_path / "jest", {"Dockerfile": NODE_IMAGE, "test/app.test.js": "test('x', () => {});\n",
                                     "package.json": json.dumps({"scripts": {"test": "jest"},
                                                                 "devDependencies": {"jest": "^29.0.0"}})})
    assert own_plan(plain).runs


# ---------------------------------------------------------------- Dockerfile hygiene


@pytest.mark.parametrize("dockerfile", [
    "FROM python:3.12-slim\nRUN useradd app\nUSER app\nCMD [\"python\", \"app.py\"]\n",
    "FROM node:20 AS build\nRUN npm ci\nFROM node:20-slim\nCOPY --from=build /app /app\nUSER node\n",
    "FROM python:3.12-slim AS base\nUSER 1000:1000\nFROM base AS final\nCMD [\"python\"]\n",  # inherited
    "FROM python:3.12 AS build\nRUN pip wheel .\nFROM gcr.io/distroless/python3-debian12:nonroot\n",
], ids=["user", "multi-stage", "inherited", "distroless-nonroot"])
def test_non_root_images_pass(tmp_path, dockerfile):
    outcome = check(repo(tmp_path, {"Dockerfile": dockerfile}), "repo.docker_user")
    assert outcome.status == "pass", outcome


@pytest.mark.parametrize("dockerfile", [
    "FROM python:3.11-slim\nCOPY . .\nCMD [\"python\", \"app.py\"]\n",
    "FROM python:3.12-slim\nUSER app\nRUN apt-get update\nUSER root\n",
    "FROM node:20 AS build\nUSER node\nRUN npm ci\nFROM node:20-slim\nCMD [\"node\", \"index.js\"]\n",
], ids=["no-user", "back-to-root", "user-only-in-build-stage"])
def test_root_images_are_dockerfile_runs_as_root(tmp_path, dockerfile):
    outcome = check(repo(tmp_path, {"Dockerfile": dockerfile}), "repo.docker_user")
    assert kinds(outcome) == {"dockerfile_runs_as_root"}


def test_a_compose_user_overrides_the_dockerfile(tmp_path):
    root = repo(tmp_path, {"Dockerfile": "FROM python:3.12-slim\n",
                           "docker-compose.yml": "services:\n  api:\n    build: .\n    user: \"1000:1000\"\n"})
    assert check(root, "repo.docker_user").status == "pass"


def test_dockerignore_present_passes_and_missing_fails(tmp_path):
    root = repo(tmp_path, {"Dockerfile": "FROM python:3.12-slim\nCOPY . .\n"})
    outcome = check(root, "repo.dockerignore")
    assert kinds(outcome) == {"dockerignore_missing"} and "COPY . ." in outcome.findings[0].message
    (root / ".dockerignore").write_text(".git\n.env\n__pycache__/\n")
    assert check(root, "repo.dockerignore").status == "pass"


def test_a_dockerignore_in_a_subfolder_context_counts(tmp_path):
    root = repo(tmp_path, {"api/Dockerfile": "FROM node:20-alpine\n", "api/.dockerignore": "node_modules\n"})
    assert check(root, "repo.dockerignore").status == "pass"


@pytest.mark.parametrize("dockerfile", [
    "FROM python:3.12-slim\n",
    "FROM node:20-alpine AS build\nFROM build\n",  # a stage name, not an image
    "FROM python@sha256:" + "a" * 64 + "\n",
    "ARG PY=3.12\nFROM python:${PY}-slim\n",
], ids=["tag", "stage", "digest", "arg"])
def test_pinned_base_images_pass(tmp_path, dockerfile):
    assert check(repo(tmp_path, {"Dockerfile": dockerfile}), "repo.base_image").status == "pass"


@pytest.mark.parametrize("dockerfile, shown", [
    ("FROM python\n", "no tag"),
    ("FROM node:latest\n", ":latest"),
    ("ARG BASE=python:latest\nFROM $BASE\n", ":latest"),
    ("FROM --platform=linux/amd64 ubuntu\n", "no tag"),
], ids=["no-tag", "latest", "arg-latest", "platform"])
def test_unpinned_base_images_are_reported(tmp_path, dockerfile, shown):
    outcome = check(repo(tmp_path, {"Dockerfile": dockerfile}), "repo.base_image")
    assert kinds(outcome) == {"base_image_unpinned"} and shown in outcome.findings[0].message


def test_an_unpinned_compose_image_is_reported(tmp_path):
    root = repo(tmp_path, {"Dockerfile": "FROM python:3.12-slim\n",
                           "compose.yaml": "services:\n  api:\n    build: .\n  db:\n    image: postgres\n"})
    outcome = check(root, "repo.base_image")
    assert kinds(outcome) == {"base_image_unpinned"} and "postgres" in outcome.findings[0].message
    assert outcome.score == 0.5


def test_parse_dockerfile_joins_continued_lines_and_reads_stage_names():
    stages = parse_dockerfile("# syntax=docker/dockerfile:1\nFROM python:3.12 \\\n  AS build\nUSER a\nFROM scratch\n")
    assert [(s.image, s.name, s.user) for s in stages] == [("python:3.12", "build", "a"), ("scratch", None, None)]


# ---------------------------------------------------------------- committed secrets

AWS = 'AWS_ACCESS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"\naws_secret_access_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"\n'
JWT_SECRET = 'SECRET_KEY = "09d25e094faa6ca2556c818166b7a9563b93f7099f6f0f4caa6cf63b88e8d3e7"\nALGORITHM = "HS256"\n'


def private_key() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption()).decode()


@pytest.mark.parametrize("name, text, detector", [
    ("app/settings.py", AWS, "AWS Access Key"),
    ("deploy/id_rsa", None, "Private Key"),
    ("app/security.py", JWT_SECRET, "High Entropy String"),
], ids=["aws-key", "private-key", "jwt-secret"])
def test_detect_secrets_finds_committed_secrets(tmp_path, name, text, detector):
    root = repo(tmp_path, {"README.md": README_RUN, name: text if text is not None else private_key()})
    outcome = check(root, "repo.secrets")
    assert kinds(outcome) == {"secret_committed"}, outcome
    finding = outcome.findings[0]
    assert finding.severity == "high" and name in finding.message and detector in finding.message
    assert "wJalrXUtnFEMI" not in finding.message + (finding.evidence[0].excerpt or ""), "values are masked"


def test_a_clean_repo_passes_the_secret_scan(tmp_path):
    root = repo(tmp_path, {"README.md": README_RUN, "app/main.py": "import os\nSECRET = os.environ['SECRET_KEY']\n",
                           ".env.example": "SECRET_KEY=change-me\n"})
    outcome = check(root, "repo.secrets")
    assert outcome.status == "pass" and "no secrets" in outcome.summary


def test_example_credentials_in_docs_and_tests_are_not_secrets(tmp_path):
    root = repo(tmp_path, {"README.md": README_RUN + "\n`password = \"correct-horse-42\"`\n",
                           "tests/test_api.py": 'PASSWORD = "s3cret-pass-for-tests"\n\ndef test_x():\n    pass\n'})
    assert check(root, "repo.secrets").status == "pass"


def test_a_committed_env_file_is_secret_committed(tmp_path):
    root = repo(tmp_path, {".env": "PORT=3000\nJWT_SECRET=my-jwt-signing-secret\n", "index.js": ""})
    outcome = check(root, "repo.secrets")
    assert kinds(outcome) == {"secret_committed"}
    assert outcome.findings[0].message.startswith(".env is committed")


def test_an_env_file_that_gitignore_keeps_out_is_not_committed(tmp_path):
    root = repo(tmp_path, {".env": "JWT_SECRET=my-jwt-signing-secret\n", ".gitignore": ".env\n", "index.js": ""})
    assert ".env" not in committed_files(root)
    assert check(root, "repo.secrets").status == "pass"


def test_in_a_clone_a_tracked_env_counts_even_if_gitignored_later(tmp_path):
    root = repo(tmp_path, {".env": "JWT_SECRET=my-jwt-signing-secret\n", ".gitignore": ".env\n", "index.js": ""})
    git = ["git", "-C", str(root), "-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run(git[:3] + ["init", "-q"], check=True)
    subprocess.run(git + ["add", "-f", ".env", ".gitignore", "index.js"], check=True)
    subprocess.run(git + ["commit", "-qm", "oops"], check=True)
    assert ".env" in committed_files(root)
    assert kinds(check(root, "repo.secrets")) == {"secret_committed"}


def test_a_compose_databases_own_password_is_not_a_secret(tmp_path):
    root = repo(tmp_path, {"docker-compose.yml": """\
        services:
          api:
            build: .
            environment:
              DATABASE_URL: postgresql://notes:notes@db:5432/notes
          db:
            image: postgres:16
            environment:
              POSTGRES_USER: notes
              POSTGRES_PASSWORD: notes
        """, "Dockerfile": "FROM python:3.12-slim\nUSER app\n"})
    outcome = check(root, "repo.secrets")
    assert outcome.status == "pass" and "the compose file's own database credentials" in outcome.summary


def test_secret_named_env_and_arg_literals_in_the_dockerfile_are_secret_committed(tmp_path):
    root = repo(tmp_path, {"Dockerfile": "FROM python:3.12-slim\nENV SECRET_KEY=supersecretvalue123 PORT=8000\n"
                                         "ARG NPM_TOKEN\nENV API_KEY=$API_KEY\n"})
    outcome = check(root, "repo.secrets")
    assert kinds(outcome) == {"secret_committed"}
    message = outcome.findings[0].message
    assert "ENV SECRET_KEY" in message and "NPM_TOKEN" not in message and "API_KEY" not in message


EXPIRED_JWT = ("eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJleHAiOjE2NzAxNjA2MTcsImlhdCI6MTY3MDE2MDU1Nywic3ViIjoiSm9obi5E"
               "b2UifQ.n17N4AxTbL4_z65-NR46meoytauPDjImUxrLiUMSTQw")  # exp: 2022-12-04


@pytest.mark.parametrize("name, text, value", [
    ("config.py", "from flask import Flask\napp = Flask(__name__)\napp.config['SECRET_KEY'] = 'random'\n", "random"),
    ("app/core/settings.py", "class Settings(BaseSettings):\n    SECRET_KEY: str = \"dev\"\n", "dev"),
    ("src/auth.js", "const jwt = require('jsonwebtoken')\nconst t = jwt.sign({ id: u.id }, 'secret', { expiresIn: '1h' })\n",
     "secret"),
    ("src/config.js", "module.exports = { jwt: process.env.JWT_SECRET || 'devsecret' }\n", "devsecret"),
    ("app/main.py", "import os\nSECRET_KEY = os.environ.get('SECRET_KEY', 'changeme')\n", "changeme"),
], ids=["flask-config", "pydantic-settings", "jwt-sign", "env-fallback", "environ-default"])
def test_a_short_literal_used_as_a_key_is_a_secret(tmp_path, name, text, value):
    outcome = check(repo(tmp_path, {"README.md": README_RUN, name: text}), "repo.secrets")
    assert kinds(outcome) == {"secret_committed"}, outcome
    [finding] = outcome.findings
    assert finding.severity == "high" and name in finding.message and "hard-coded key" in finding.message
    assert f"({value})" not in finding.message, "the value is masked"


def test_what_a_reviewer_dismisses_is_set_aside_with_its_reason(tmp_path):
    root = repo(tmp_path, {
        "README.md": README_RUN,
        "portfolio-grader.yaml": "auth:\n  admin: {login: admin@example.com, password: Seeded-Admin-Pass-9}\n",
        "app/seed.py": "ADMIN = {'email': 'admin@example.com', 'password': 'Seeded-Admin-Pass-9'}\n",
        "shop/tests.py": "from django.test import TestCase\nPASSWORD = 'Test-User-Pass-123'\n",
        ".env.example": "DATABASE_URL=postgres://user:password@localhost:5432/db\nSECRET_KEY=\n",
        "alembic/versions/1a2b_init.py": 'revision = "1a2b3c4d5e6f"\ndown_revision = "9f8e7d6c5b4a"\n',
        "Dockerfile": "FROM python:3.12-slim\nENV tokentimetolive 60\nUSER app\n",
        "openapi.yml": f"openapi: 3.0.1\npaths: {{}}\ncomponents:\n  examples:\n    token: '{EXPIRED_JWT}'\n",
        "api/users.py": "def update():\n    return {'status': 'success', 'Password': 'Updated.'}\n",
    })
    outcome = check(root, "repo.secrets")
    assert outcome.status == "pass", outcome.findings
    aside = outcome.evidence[0].excerpt
    for reason in ("a value in a test or fixture", "an example env file", "a migration revision id",
                   "a setting whose name mentions a secret", "a keyword match in code",
                   "the manifest's documented test-admin password"):
        assert reason in aside or reason in outcome.summary, (reason, aside)
    assert "candidate(s) set aside" in outcome.summary


def test_an_expired_jwt_is_set_aside_and_a_live_one_is_a_secret(tmp_path):
    from portfolio_grader.secret_scan import _expired_on

    assert _expired_on(EXPIRED_JWT) == "2022-12-04"
    live = __import__("jwt").encode({"sub": "a", "exp": 4102444800}, "k" * 32, algorithm="HS256")
    assert _expired_on(live) is None
    root = repo(tmp_path, {"README.md": README_RUN, "app/client.py": f"TOKEN = '{live}'\n"})
    assert kinds(check(root, "repo.secrets")) == {"secret_committed"}


def test_every_secret_named_value_of_a_committed_env_file_is_named_quoted_or_not(tmp_path):
    root = repo(tmp_path, {"manage.py": "", ".env": "DEBUG=True\nSECRET_KEY=secret\nJWT_SECRET = jwt_my_coding\n"
                                                    'DJANGO_SUPERUSER_PASS="admin"\nPORT=8000\n'})
    outcome = check(root, "repo.secrets")
    [finding] = outcome.findings
    assert finding.kind == "secret_committed" and finding.severity == "high"
    for line, name in ((2, "SECRET_KEY"), (3, "JWT_SECRET"), (4, "DJANGO_SUPERUSER_PASS")):
        assert re.search(rf"line {line}: [^;]*hard-coded key[^;]*`{name}`", finding.message), finding.message
    assert "jwt_my_coding" not in finding.message + (finding.evidence[0].excerpt or ""), "values are masked"


def test_env_file_settings_that_merely_mention_a_secret_are_not_secrets(tmp_path):
    settings = ("JWT_SECRET=\nTOKEN_EXPIRES_IN=1d\nPASSWORD_MIN_LENGTH=8\nSECRET_KEY=${SECRET_KEY}\n"
                "API_KEY=<your-api-key>\nPORT=3000\n")
    outcome = check(repo(tmp_path, {"index.js": "", ".env": settings}), "repo.secrets")
    [finding] = outcome.findings  # a committed .env is still worth saying, but it names no secret
    assert finding.severity == "medium" and "a .env file is where secrets live" in finding.message
    template = check(repo(tmp_path / "t", {"index.js": "", ".env.example": "SECRET_KEY=secret\nDB_PASS=admin\n"}),
                     "repo.secrets")
    assert template.status == "pass", template.findings


@pytest.mark.parametrize("text", [
    "const jsonwebtoken = require('jsonwebtoken')\n"
    "jsonwebtoken.verify(req.headers.authorization.split(' ')[1], 'RESTFULAPIs', (err, decode) => {})\n",
    "from jose import jwt as jose_jwt\ntoken = jose_jwt.encode(claims, key='dev', algorithm='HS256')\n",
], ids=["jsonwebtoken", "key-keyword"])
def test_a_jwt_librarys_key_is_found_under_any_name(tmp_path, text):
    outcome = check(repo(tmp_path, {"README.md": README_RUN, "src/auth.js": text}), "repo.secrets")
    [finding] = outcome.findings
    assert finding.severity == "high" and "the literal is the key of" in finding.message, finding.message


def test_a_camel_case_key_in_a_config_object_is_a_secret_and_its_type_or_env_read_is_not(tmp_path):
    config = ('export type Config = { jwtPrivateKey: string; showSecret: string };\n'
              'export const config = <Config>{ jwtPrivateKey: "1234567890!", showSecret: "yes" };\n')
    [finding] = check(repo(tmp_path, {"README.md": README_RUN, "src/config.ts": config}), "repo.secrets").findings
    assert "`jwtPrivateKey` is set to a literal" in finding.message and "showSecret" not in finding.message
    from_env = "export const config = { jwtPrivateKey: String(process.env.JWT_SECRET) };\n"
    outcome = check(repo(tmp_path / "env", {"README.md": README_RUN, "src/config.ts": from_env}), "repo.secrets")
    assert outcome.status == "pass", outcome.findings


def test_a_jwt_key_read_from_the_environment_is_no_secret(tmp_path):
    text = "jsonwebtoken.verify(token, process.env.JWT_SECRET, (err, decode) => {})\n"
    assert check(repo(tmp_path, {"README.md": README_RUN, "src/auth.js": text}), "repo.secrets").status == "pass"


CI_WORKFLOW = """\
on: push
jobs:
  test:
    services:
      postgres:
        image: postgres:16
        env:
          POSTGRES_PASSWORD: postgres
    steps:
      - run: python manage.py test
        env:
          DATABASE_URL: postgres://postgres:postgres@localhost:5432/test
          SECRET_KEY: test-secret-key
          JWT_SECRET: "ci-only-signing-key"
"""


def test_the_values_a_ci_workflow_sets_for_its_own_test_run_are_set_aside(tmp_path):
    compose = "services:\n  db:\n    image: postgres:16\n    environment:\n      POSTGRES_PASSWORD: postgres\n"
    root = repo(tmp_path, {"README.md": README_RUN, ".github/workflows/ci.yml": CI_WORKFLOW, "compose.yaml": compose,
                           "tests/test_api.py": "DB_PASSWORD = 'postgres'\n\ndef test_x():\n    pass\n"})
    outcome = check(root, "repo.secrets")
    assert outcome.status == "pass", outcome.findings
    aside = outcome.evidence[0].excerpt.splitlines()
    assert any(line.startswith(".github/workflows/ci.yml:") and "the CI configuration sets for its own test run"
               in line for line in aside), aside
    # a value in a test keeps that reason even when the compose database uses the same one
    assert all("a value in a test or fixture" in line for line in aside if line.startswith("tests/")), aside


def test_a_cloud_key_in_a_ci_workflow_is_still_a_secret(tmp_path):
    workflow = CI_WORKFLOW + "          AWS_ACCESS_KEY_ID: AKIAIOSFODNN7EXAMPLE\n"
    outcome = check(repo(tmp_path, {"README.md": README_RUN, ".github/workflows/ci.yml": workflow}), "repo.secrets")
    [finding] = outcome.findings
    assert "AWS Access Key" in finding.message and "SECRET_KEY" not in finding.message


# ---------------------------------------------------------------- lockfile


@pytest.mark.parametrize("files", [
    {"package.json": "{}", "package-lock.json": "{}"},
    {"requirements.txt": "fastapi==0.115.0\nuvicorn[standard]==0.30.1  # server\n-r base.txt\n"},
    {"pyproject.toml": "[project]\nname='x'\n", "poetry.lock": ""},
    {"backend/package.json": "{}", "backend/yarn.lock": ""},
], ids=["npm", "pinned-requirements", "poetry", "subfolder"])
def test_locked_dependencies_pass(tmp_path, files):
    assert check(repo(tmp_path, files), "repo.lockfile").status == "pass"


@pytest.mark.parametrize("files, shown", [
    ({"package.json": "{}"}, "package.json has no lockfile"),
    ({"requirements.txt": "fastapi\nuvicorn>=0.30\n"}, "`fastapi`"),
    ({"pyproject.toml": "[project]\nname='x'\n"}, "pyproject.toml has no lockfile"),
], ids=["npm", "loose-requirements", "pyproject"])
def test_unlocked_dependencies_are_lockfile_missing(tmp_path, files, shown):
    outcome = check(repo(tmp_path, files), "repo.lockfile")
    assert kinds(outcome) == {"lockfile_missing"} and shown in outcome.findings[0].message


def test_no_dependency_manifest_is_not_evaluated(tmp_path):
    assert check(repo(tmp_path, {"README.md": README_RUN}), "repo.lockfile").status == "not_evaluated"


def test_a_pinned_requirements_file_saved_as_utf16_by_powershell_is_read_as_pinned(tmp_path):
    # `pip freeze > requirements.txt` in Windows PowerShell writes UTF-16 with a byte-order mark; pip reads it
    (tmp_path / "requirements.txt").write_bytes("annotated-doc==0.0.4\r\nfastapi==0.115.0\r\n".encode("utf-16"))
    assert check(tmp_path, "repo.lockfile").status == "pass"
