"""The scorecard's notes on held-out operations agree with what the grade did: an init operation sent once to make
the missing tables is said to have been sent, the others never called."""

from __future__ import annotations

from portfolio_grader.models import ApiModel, RepoFacts, RunningService, Source, Workspace
from portfolio_grader.pipeline import _scorecard, _Stages
from portfolio_grader.progress import Progress
from portfolio_grader.rubric import load_rubric


def test_a_held_out_init_sent_once_is_not_said_never_called():
    stages = _Stages(Progress())
    stages.sent_held_out.add("GET /createdb")
    api = ApiModel(held_out={"GET /createdb": "its name says it resets the data", "DELETE /all": "a bulk delete"})
    card = _scorecard(Workspace(name="t", source=Source()), RepoFacts(), load_rubric("beginner"),
                      RunningService(kind="external", status="running"), api, [], stages, [])
    [init] = [n for n in card.notes if n.startswith("`GET /createdb`")]
    assert "sent once, before any test user existed" in init and "never called" not in init
    assert "`DELETE /all` was never called: a bulk delete" in card.notes


