"""An API whose schema is made by an operation of its own (`GET /createdb`, as its README says) and no migration
command: runtime/migrations.py sends it once, before any test user exists. Pure: a stand-in handle, no Docker."""

from __future__ import annotations

from pathlib import Path

import pytest

from portfolio_grader.runtime import migrations as mg


@pytest.mark.parametrize("labels, chosen", [
    (["GET /books", "GET /createdb"], "GET /createdb"),
    (["POST /api/init-db"], "POST /api/init-db"),
    (["GET /api/v1/setup"], "GET /api/v1/setup"),
    (["POST /createTables"], "POST /createTables"),
    (["GET /seed"], "GET /seed"),
    # destructive, an item, another method, or nothing about the schema
    (["GET /resetdb", "POST /db/drop-and-create", "GET /api/reset-and-seed"], None),
    (["DELETE /createdb", "PUT /initdb"], None),
    (["GET /db/{name}/create"], None),
    (["GET /books", "POST /users/create"], None),
])
def test_the_init_operation_is_named_for_making_the_schema_and_nothing_destructive(labels, chosen):
    assert mg.init_operation(labels) == chosen


class _Api:
    """A stand-in API handle: its log says `books` does not exist until the init request (or the migration) ran."""

    def __init__(self) -> None:
        self.ready = False
        self.lines: list[str] = []
        self.execs: list[str] = []

    def log(self, text: str) -> None:
        self.lines.append(f"2026-12-06T21:00:{len(self.lines):02d}.000000000Z {text}")

    def api_log(self, timestamps: bool = False, tail: int = 400) -> str:
        return "\n".join(self.lines)

    def exec(self, command: str, timeout: float = 120.0) -> tuple[int, str]:
        self.execs.append(command)
        self.ready = True
        return 0, "Applying books.0001_initial... OK"

    def reads(self) -> str:
        if self.ready:
            self.log("GET /books 200")
            return "GET /books 200"
        self.log("sqlite3.OperationalError: no such table: books")
        return "GET /books 500"

    def send(self, label: str) -> str:
        self.ready = label == "GET /createdb"
        self.log(f"{label} 200")
        return "200"


def test_with_no_migration_command_the_apis_own_init_operation_is_sent_once(tmp_path: Path):
    api = _Api()
    done = mg.ensure_schema(api, [tmp_path], api.reads, timeout=5, held_out=["GET /books/all", "GET /createdb"],
                            send=api.send)
    assert done is not None and (done.request, done.answer, done.fixed) == ("GET /createdb", "200", True)
    assert (done.before, done.after, done.command) == ("GET /books 500", "GET /books 200", None)
    assert "the API documents `GET /createdb`" in done.note and "before any test user existed" in done.note
    assert "the tables were there afterwards (GET /books 200)" in done.note and "- request: GET /createdb" in done.note


def test_an_init_operation_that_does_not_help_is_said_so(tmp_path: Path):
    api = _Api()
    done = mg.ensure_schema(api, [tmp_path], api.reads, timeout=5, held_out=["POST /api/setup"], send=api.send)
    assert done.request == "POST /api/setup" and not done.fixed and "no such table: books" in done.still
    assert "a table was still missing afterwards" in done.note


def test_the_projects_migration_command_comes_first_and_setup_stays_the_explicit_way(tmp_path: Path):
    (tmp_path / "alembic.ini").write_text("[alembic]\n")
    api = _Api()
    done = mg.ensure_schema(api, [tmp_path], api.reads, timeout=5, held_out=["GET /createdb"], send=api.send)
    assert api.execs == ["alembic upgrade head"] and done.request == "" and done.fixed
    api = _Api()
    given = mg.ensure_schema(api, [tmp_path / "none"], api.reads, timeout=5, setup_given=True,
                             held_out=["GET /createdb"], send=api.send)
    assert given.setup_given and given.request == "" and not api.ready
    api = _Api()  # nothing to send it with: as before, the note says no command was found
    plain = mg.ensure_schema(api, [tmp_path / "none"], api.reads, timeout=5, held_out=["GET /createdb"])
    assert plain.request == "" and "no migration command was found" in plain.note and not api.ready
