"""ReDoS against real in-process APIs that validate a new e-mail with a pattern: a home-made one with nested
quantifiers (VAmPI's shape: exponential on 'aaaa…a!', found by the doubling curve, stopped at 2 s), a linear one
(pass), and one whose valid value is refused (not evaluated: whether the pattern is reached is unknown)."""

from __future__ import annotations

import re

import pytest
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

from ..conftest import kinds, make_context, run

PATTERNS = {
    "nested": r"^([0-9a-zA-Z]([-.\w]*[0-9a-zA-Z])*@{1}([0-9a-zA-Z][-\w]*[0-9a-zA-Z]\.)+[a-zA-Z]{2,9})$",
    "linear": r"^[\w.+-]+@[\w-]+(\.[\w-]+)+$",
}


class EmailIn(BaseModel):
    email: str


def email_app(kind: str, *, refuse_all: bool = False) -> FastAPI:
    app = FastAPI(title="Profile")
    pattern = re.compile(PATTERNS[kind])

    @app.put("/profile/email")
    def change(body: EmailIn):
        if refuse_all:
            raise HTTPException(403, "e-mail changes are disabled")
        if not pattern.match(body.email):
            raise HTTPException(400, "not an e-mail address")
        return {"email": body.email}

    return app


def test_a_backtracking_email_pattern_is_redos_and_the_climb_stops_at_two_seconds(serve):
    outcome = run("injection.redos", make_context(serve(email_app("nested"))))
    assert outcome.status == "fail" and kinds(outcome) == {"redos"}, outcome
    [finding] = outcome.findings
    assert "each two more characters at least doubled the time" in finding.message
    control, before, slowest = finding.evidence
    assert (slowest.response.elapsed_ms or 0) < 20_000  # stopped soon after 2 s, the API not pinned for long


@pytest.mark.parametrize(("kind", "refuse_all", "status"), [("linear", False, "pass"),
                                                            ("nested", True, "not_evaluated")])
def test_a_linear_pattern_passes_and_a_refused_control_proves_nothing(serve, kind, refuse_all, status):
    outcome = run("injection.redos", make_context(serve(email_app(kind, refuse_all=refuse_all))))
    assert outcome.status == status, outcome
    if status == "pass":
        assert "flat" in outcome.summary and len(outcome.evidence) == 2
