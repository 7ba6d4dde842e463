"""One wording of the verdict in every view (issue 14, "Verdicts and the fix list").

A score above the pass mark with a gate missed is "not passed: a gate is not met" (naming the gate) in the
HTML scorecard, the terminal summary, `grade -q`, the Markdown summary / PR comment, Gradescope and the class
dashboard; never "below the pass mark" beside "above by 7".
"""

from __future__ import annotations

import io
import json
import re

from rich.console import Console

from portfolio_grader.batch.dashboard import render_dashboard
from portfolio_grader.batch.summary import build_summary
from portfolio_grader.cli import _score_line
from portfolio_grader.report import print_summary, render_html
from portfolio_grader.report.gradescope import render_gradescope
from portfolio_grader.report.markdown import render_markdown
from portfolio_grader.report.verdict import verdict, verdict_of

from .scorecard_fixture import gate_missed_scorecard, sample_scorecard
from .test_report import Document

GATE = "Users cannot read or change each other's tasks"
HEADLINE = "not passed: a gate is not met"


def terminal_text(sc) -> str:
    console = Console(record=True, width=120)
    print_summary(sc, console=console)
    return console.export_text()


def test_the_verdict_function_words_each_case():
    assert verdict(77, 70, False, [GATE]).headline == HEADLINE
    assert verdict(77, 70, False, [GATE]).sentence == f"{HEADLINE} ({GATE})"
    assert verdict(77, 70, False, [GATE]).distance == "7 above"
    assert verdict(60, 70, True).headline == "not passed: below the pass mark"
    assert verdict(60, 70, False, [GATE]).headline == "not passed: below the pass mark and a gate is not met"
    assert verdict(70, 70, True).headline == "passed" and verdict(70, 70, True).distance == "at"
    assert verdict(80, 90, True, bar_label="--fail-under").headline == "not passed: below --fail-under"
    hidden = verdict(77, 70, False, [], hidden_gates=1)
    assert hidden.sentence == f"{HEADLINE} (1 hidden check)"


def test_above_the_pass_mark_with_a_gate_missed_reads_the_same_in_every_view(tmp_path):
    sc = gate_missed_scorecard()
    assert sc.score == 77 and not sc.passed and not sc.gates_met
    assert verdict_of(sc).headline == HEADLINE

    html = render_html(sc)
    page = Document(html).text
    assert HEADLINE.upper() in page and "7 above" in page and GATE in page
    assert HEADLINE in re.search(r"<title>(.*?)</title>", html, re.S).group(1)

    term = terminal_text(sc)
    assert HEADLINE.upper() in term and GATE in term

    assert _score_line(sc, None).endswith(HEADLINE)

    md = render_markdown(sc)
    assert md.splitlines()[0].endswith(f"77/100, {HEADLINE}") and "7 above" in md and "each other's tasks" in md

    gs = json.loads(render_gradescope(sc))
    assert f"{HEADLINE} ({GATE})" in gs["output"] and gs["extra_data"]["verdict"] == HEADLINE

    for text in (html, term, md, gs["output"], _score_line(sc, None)):
        assert "below pass mark" not in text.lower() and "below the pass mark" not in text.lower()


def test_the_dashboard_and_the_batch_line_use_the_same_wording(tmp_path):
    from .test_batch_units import _batch_folder

    out = tmp_path / "out"
    card = gate_missed_scorecard()
    _batch_folder(out, "id,name,repo\nu1,Ann,https://github.com/ann/api\nu2,Bo,https://github.com/bo/api\n",
                  {"u1": card.model_dump(exclude={"grader_version"}), "u2": {"score": 42.0}})
    summary = build_summary(out)
    rows = {r["id"]: r for r in summary["students"]}
    assert rows["u1"]["verdict"] == HEADLINE
    assert rows["u2"]["verdict"] == "not passed: below the pass mark and a gate is not met"
    page = Document(render_dashboard(summary)).text
    assert HEADLINE in page and "below pass mark" not in page


def test_a_passed_grade_says_passed_everywhere():
    sc = sample_scorecard(score=93, passed=True, gates_met=True,
                          criteria=[c.model_copy(update={"status": "pass", "points": c.max_points})
                                    for c in sample_scorecard().criteria])
    assert "✓ PASSED" in Document(render_html(sc)).text
    assert "PASSED" in terminal_text(sc) and "NOT PASSED" not in terminal_text(sc)
    assert render_markdown(sc).splitlines()[0].endswith("93/100, passed")
    assert _score_line(sc, None).endswith(" passed")
    stream = io.StringIO()
    print_summary(sc, console=Console(file=stream, width=100))
    assert "not passed" not in stream.getvalue().lower()


# ---------------------------------------------------------------- the points shown add up


def _all_earned_of_115():
    base = sample_scorecard()
    criteria = [c.model_copy(update={"status": "pass", "points": c.max_points, "finding_ids": []})
                for c in base.criteria]
    criteria.append(criteria[0].model_copy(update={"id": "extra", "title": "Extra credit", "points": 15,
                                                   "max_points": 15}))
    assert sum(c.max_points for c in criteria) == 115
    return sample_scorecard(criteria=criteria, findings=[], score=100, passed=True, gates_met=True, top_fixes=[])


def test_the_criteria_header_says_earned_of_possible_in_every_format():
    sc = _all_earned_of_115()
    html = Document(render_html(sc)).text
    assert "115 of 115 points" in html and "100 of 115" not in html
    assert "115 of 115 points" in terminal_text(sc)
    assert "All criteria: 15 pass · 115 of 115 points" in render_markdown(sc)
    assert "Criteria: 115 of 115 points." in json.loads(render_gradescope(sc))["output"]

    partial = gate_missed_scorecard()  # 77 of 100, and the areas add up to it
    page = Document(render_html(partial)).text
    assert "77 of 100 points" in page
    assert "77 of 100 points" in terminal_text(partial) and "77 of 100 points" in render_markdown(partial)
