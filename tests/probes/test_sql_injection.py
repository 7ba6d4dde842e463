"""errors.sql_injection against a real SQLite database (sql_apps.py): pasted SQL is caught by the boolean pair
or by the error it leaks, bound parameters pass, and nothing is written."""

from __future__ import annotations

from ..conftest import kinds, make_context, run
from .sql_apps import books_sql_app


def test_pasted_sql_is_caught_by_the_boolean_pair(serve):
    outcome = run("errors.sql_injection", make_context(serve(books_sql_app(injectable=True))))
    assert outcome.status == "fail" and kinds(outcome) == {"sql_injection"}, outcome
    by_op = {f.operation: f for f in outcome.findings}
    title = by_op["GET /books/{title}"]
    assert title.severity == "critical" and "boolean-based" in title.message
    control, injected, false = title.evidence
    assert control.response.status == 404 and injected.response.status == 200 and false.response.status == 404


def test_a_leaked_database_error_is_error_based_evidence(serve):
    outcome = run("errors.sql_injection", make_context(serve(books_sql_app(injectable=True, leak_errors=True))))
    assert "sql_injection" in kinds(outcome)
    assert any("sqlite3" in e.response.body for f in outcome.findings for e in f.evidence if e.response)


def test_bound_parameters_pass(serve):
    outcome = run("errors.sql_injection", make_context(serve(books_sql_app())))
    assert outcome.status == "pass", outcome
    assert "2 GET operation(s)" in outcome.summary and outcome.evidence
