"""What stands in for an uncommitted `.env` (runtime/env_standin.py): an example beside it, the block a README
spells out, or both — and what the compose rewrite does with them. Pure: no Docker."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from portfolio_grader.models import RepoFacts, Source, Workspace
from portfolio_grader.runtime import RuntimeOptions
from portfolio_grader.runtime import compose as c
from portfolio_grader.runtime.env_standin import dotenv_for, example_names, readme_block, stand_in

OPTS = RuntimeOptions(run_id="run42", memory="512m", cpus=0.5, pids=128)

# a stack whose compose file reads `.env` twice: the API's env_file, and ${DB_USER} for the database service
STACK = {"services": {
    "api": {"build": ".", "ports": ["8000:8000"], "env_file": [".env"], "depends_on": ["db"]},
    "db": {"image": "postgres:16", "environment": {"POSTGRES_USER": "${DB_USER}", "POSTGRES_PASSWORD": "${DB_PASSWORD}"}},
}}
PLACEHOLDERS = "DB_HOST=changeme\nDB_USER=changeme\nDB_PASSWORD=\nDEBUG=True\n"
README = """# Shelf API

## Run it

Create a `.env` file beside `docker-compose.yml` (copy `.env.example` and fill it in), for example:

```env
DB_HOST=db
DB_USER=shelf
DB_PASSWORD=shelf-pass  # any password
DATABASE_URL=postgresql://${DB_USER}:${DB_PASSWORD}@${DB_HOST}:5432/shelf
LITERAL='${DB_USER}'
```

then `docker compose up --build`.
"""


def write(root: Path, files: dict[str, str]) -> Path:
    for name, body in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(body)
    return root


def plan_for(root: Path, files: dict[str, str]):
    write(root, {"docker-compose.yml": yaml.safe_dump(STACK), "Dockerfile": "FROM python:3.12-slim\n", **files})
    ws = Workspace(name="Shelf", source=Source(repo=str(root)), path=root)
    return c.prepare(ws, RepoFacts(root=root, compose_file="docker-compose.yml"), OPTS)


def test_the_readme_block_wins_over_the_examples_placeholders_in_the_service_and_in_interpolation(tmp_path):
    plan = plan_for(tmp_path, {".env.example": PLACEHOLDERS, "README.md": README})
    assert plan.refusal is None, plan.refusal
    api, db = plan.doc["services"]["api"], plan.doc["services"]["db"]
    # the example still goes to compose as the env_file; the README's values and expanded references sit above it
    assert api["env_file"] == [str(tmp_path / ".env.example")]
    assert api["environment"]["DB_HOST"] == "db" and api["environment"]["DB_USER"] == "shelf"
    assert api["environment"]["DATABASE_URL"] == "postgresql://shelf:shelf-pass@db:5432/shelf"
    assert api["environment"]["LITERAL"] == "${DB_USER}"  # single-quoted: literal, as Compose reads it
    assert "$$" in plan.dump() and "DEBUG" not in api["environment"]  # compose sees a literal dollar; DEBUG from the file
    # the database service is interpolated with the same values, so the API's credentials are the database's
    assert (db["environment"]["POSTGRES_USER"], db["environment"]["POSTGRES_PASSWORD"]) == ("shelf", "shelf-pass")
    [note] = [n for n in plan.notes if "in place of the uncommitted .env" in n]
    assert note.startswith("service 'api': the .env block of README.md (line 8), over .env.example was used"), note
    assert "it sets DATABASE_URL, DB_HOST, DB_PASSWORD, DB_USER, DEBUG, LITERAL" in note
    assert plan.example_env_files and plan.missing_env_files == []


def test_a_readme_block_alone_stands_in_and_its_references_are_expanded(tmp_path):
    plan = plan_for(tmp_path, {"README.md": README})
    api = plan.doc["services"]["api"]
    assert "env_file" not in api or api["env_file"] == []
    assert api["environment"]["DATABASE_URL"] == "postgresql://shelf:shelf-pass@db:5432/shelf"
    assert plan.doc["services"]["db"]["environment"]["POSTGRES_USER"] == "shelf"
    assert plan.missing_env_files == [] and any("the .env block of README.md (line 8) was used" in n for n in plan.notes)


def test_without_example_or_readme_block_the_env_file_is_named_missing(tmp_path):
    plan = plan_for(tmp_path, {"README.md": "# Shelf\n\nRun `docker compose up`.\n"})
    assert plan.missing_env_files == [".env"] and "DB_HOST" not in plan.doc["services"]["api"].get("environment", {})


@pytest.mark.parametrize("name", ["example.env", ".env.exemplo", "env.example", ".env.sample", ".env.template"])
def test_every_usual_name_of_an_example_stands_in(tmp_path, name):
    write(tmp_path, {name: "DB_HOST=db\n"})
    found = stand_in(tmp_path / ".env", [tmp_path])
    assert found is not None and found.example == tmp_path / name and found.label == name
    assert found.values == {"DB_HOST": "db"} and name in example_names(".env")


@pytest.mark.parametrize("readme", [
    # a block about another file, or one the prose does not tie to `.env`
    "Create `.env.test`:\n\n```\nDB_HOST=db\n```\n",
    "Some settings:\n\n```\nDB_HOST=db\n```\n",
    # a command with a variable, prose among the values, a shell session
    "In `.env` terms, run:\n\n```bash\nDEBUG=1 python app.py\n```\n",
    "Your `.env`:\n\n```\nDB_HOST=db\nthen start the server\n```\n",
    "With `.env` in place:\n\n```sh\n$ docker compose up\nDB_HOST=db\n```\n",
])
def test_blocks_that_are_not_an_env_files_content_are_not_read(tmp_path, readme):
    write(tmp_path, {"README.md": readme})
    assert readme_block([tmp_path]) is None


def test_a_block_naming_its_file_on_its_first_line_or_in_a_comment_is_read(tmp_path):
    write(tmp_path, {"README.md": "Then:\n\n```\n`.env file`\nSECRET_KEY='example'\nDB_HOST=db\n```\n"})
    block = readme_block([tmp_path])
    assert block is not None and block.values == {"SECRET_KEY": "example", "DB_HOST": "db"} and block.where == "README.md (line 4)"
    write(tmp_path, {"README.md": "Settings:\n\n~~~ini\n# .env\nexport DB_HOST=db\n~~~\n"})
    assert readme_block([tmp_path]).values == {"DB_HOST": "db"}


def test_dotenv_for_prefers_a_committed_env_and_says_what_stood_in_otherwise(tmp_path):
    write(tmp_path, {".env.example": PLACEHOLDERS, "README.md": README})
    env, label = dotenv_for(tmp_path, tmp_path)
    assert (env["DB_USER"], env["DEBUG"], label) == ("shelf", "True", "the .env block of README.md (line 8), over .env.example")
    write(tmp_path, {".env": "DB_USER=mine\n"})
    assert dotenv_for(tmp_path, tmp_path) == ({"DB_USER": "mine"}, None)
