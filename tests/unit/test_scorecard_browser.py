"""The scorecard as a person sees it: loaded in headless Chromium, no console errors, the key numbers shown."""

from __future__ import annotations

from portfolio_grader.report import write_reports

from ..hostile.browser import visit
from .scorecard_fixture import sample_scorecard


def test_the_scorecard_loads_in_a_real_browser_with_its_key_numbers(tmp_path):
    card = sample_scorecard()
    page = visit(write_reports(card, tmp_path)["html"], wait_ms=300)
    assert page.console == [] and page.requests == [] and page.dialogs == []
    assert f"{card.score:g}" in page.text and "/100" in page.text
    assert ("✓ PASSED" if card.passed else "✗ NOT PASSED: BELOW THE PASS MARK AND A GATE IS NOT MET") in page.text
    for criterion in card.criteria:
        assert criterion.title in page.text
    for fix in card.top_fixes[:3]:
        assert fix.title in page.text
