"""No pass without a control: every registered check whose pass means "the attack was refused" passes on a
correct app only with evidence of a control that succeeded (the same identity's genuine request served), and a
new such check cannot be registered without a case here."""

from __future__ import annotations

import pytest

from portfolio_grader.checks.registry import REGISTRY, import_builtin_checks

from ..conftest import make_context, run
from .auth_apps import tasks_app
from .menu_apps import menu_app
from .shelf_apps import shelf_app

CONTROLS = {  # check -> (a correct app, words of the control's evidence note)
    "auth.required": (tasks_app, "the control"),
    "auth.jwt_forgery": (tasks_app, "genuine token: accepted (the baseline)"),
    "ownership.bola": (tasks_app, "user A reads its object back"),
    "ownership.bfla": (tasks_app, "control: user A's token works"),
    "ownership.user_accounts": (shelf_app, "the control"),
    "ownership.self_promotion": (menu_app, "the control"),
}


def test_every_refusal_judging_check_has_a_control_case():
    import_builtin_checks()
    assert {c.id for c in REGISTRY.values() if c.judges_refusals} == set(CONTROLS)


@pytest.mark.parametrize("check_id", sorted(CONTROLS))
def test_a_refusal_judging_pass_carries_the_control_that_succeeded(serve, check_id):
    app, words = CONTROLS[check_id]
    outcome = run(check_id, make_context(serve(app())))
    assert outcome.status == "pass", (outcome.summary, outcome.reason)
    controls = [e for e in outcome.evidence if words in (e.note or "")]
    assert controls, [e.note for e in outcome.evidence]
    assert all(e.response is not None and 200 <= e.response.status < 300 for e in controls), controls
