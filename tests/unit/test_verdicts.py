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


# ---------------------------------------------------------------- "Fix these first", from real scoring


def _outcome(check, status, score_=1.0, findings=(), reason=None, hint=None, summary=None):
    from portfolio_grader.models import CheckOutcome

    return CheckOutcome(check=check, area="x", status=status, summary=summary or f"{check} summary", score=score_,
                        findings=list(findings), manifest_hint=hint,
                        reason=reason or ("why" if status in ("not_evaluated", "not_applicable") else None))


def _finding(fid, check, kind, message, severity="high", operation=None):
    from portfolio_grader.models import Finding

    return Finding(id=fid, check=check, kind=kind, severity=severity, message=message, operation=operation)


def test_fixes_lead_with_what_broke_gates_first_then_points():
    from portfolio_grader.rubric import load_rubric
    from portfolio_grader.scoring import score

    rubric = load_rubric("beginner")
    crud = _finding("F001", "crud.lifecycle", "wrong_status", "POST /books answered 200, not 201",
                    operation="POST /books")
    errors = _finding("F002", "contract.no_server_errors", "server_error", "POST /books with a 10 000 character "
                      "title answered 500", severity="medium", operation="POST /books")
    outcomes = []
    for c in rubric.check_ids:
        if c == "crud.lifecycle":
            outcomes.append(_outcome(c, "fail", 0.8, [crud]))
        elif c == "contract.no_server_errors":
            outcomes.append(_outcome(c, "fail", 0.0, [errors]))
        elif c == "repo.readme":
            outcomes.append(_outcome(c, "not_evaluated", 0.0, reason="there is no repository to read"))
        else:
            outcomes.append(_outcome(c, "pass"))
    result = score(rubric, outcomes)
    fixes = result.top_fixes
    # the gate (crud, 3 points lost) comes before the bigger non-gate loss (no server errors, 10)
    assert [f.criterion for f in fixes] == ["crud-lifecycle", "no-server-errors"]
    assert fixes[0].gate and fixes[0].problem == "POST /books answered 200, not 201"
    assert fixes[0].operation == "POST /books" and fixes[0].finding_ids == ["F001"]
    assert fixes[0].hint == next(c.hint for c in rubric.criteria if c.id == "crud-lifecycle")
    assert fixes[1].points == round(100 * 10 / rubric.max_points, 1) and fixes[1].problem.startswith("POST /books with a 10 000")
    assert "readme" not in {f.criterion for f in fixes}  # not evaluated: not a fix worth points


def test_a_failed_build_is_one_fix_covering_every_criterion_it_left_unevaluated():
    result = _failed_build_card()
    assert len(result.top_fixes) == 1
    fix = result.top_fixes[0]
    blocked = [c.id for c in result.criteria if c.status != "pass" and c.id != "readme"]
    assert fix.criterion == "runs-in-docker" and fix.gate and fix.problem.startswith("The image did not build")
    assert set(fix.criteria) == set(blocked) and fix.criteria[0] == "runs-in-docker"
    # the README the grader could not read is not part of the build's cost: it is a "see more"
    lost = sum(c.max_points - c.points for c in result.criteria if c.id in blocked)
    assert fix.points == round(100 * lost / sum(c.max_points for c in result.criteria), 1)


def test_criteria_sharing_a_finding_are_one_fix():
    from portfolio_grader.models import CriterionResult
    from portfolio_grader.scoring import _top_fixes

    shared = _finding("F007", "contract.response_schema", "schema_violation", "GET /books/1 lacks 'isbn'")
    a = CriterionResult(id="a", title="A", area="x", status="fail", points=0, max_points=10, finding_ids=["F007"],
                        checks=["contract.response_schema"])
    b = CriterionResult(id="b", title="B", area="x", status="partial", points=2, max_points=5, finding_ids=["F007"],
                        checks=["contract.response_schema"])
    fixes = _top_fixes([a, b], [_outcome("contract.response_schema", "fail", 0.0, [shared])], 100)
    assert [(f.criteria, f.points, f.problem) for f in fixes] == [(["a", "b"], 13, "GET /books/1 lacks 'isbn'")]


def _section(html: str, section_id: str) -> str:
    match = re.search(rf'<section class="card" id="{section_id}">(.*?)</section>', html, re.S)
    return Document(match.group(1)).text if match else ""


def _failed_build_card():
    """A real scoring of the beginner rubric for a submission whose image did not build."""
    from portfolio_grader.rubric import load_rubric
    from portfolio_grader.scoring import score

    rubric = load_rubric("beginner")
    build = _finding("F001", "runtime.builds", "build_failed", "The image did not build: COPY failed: "
                     "requirements.txt not found", severity="critical")
    outcomes = []
    for c in rubric.check_ids:
        if c == "runtime.builds":
            outcomes.append(_outcome(c, "fail", 0.0, [build]))
        elif c == "runtime.starts":
            outcomes.append(_outcome(c, "not_evaluated", 0.0,
                                     reason="the container was never started: the image did not build"))
        elif c.startswith("repo.") and c != "repo.readme":
            outcomes.append(_outcome(c, "pass"))
        elif c == "repo.readme":
            outcomes.append(_outcome(c, "not_evaluated", 0.0, reason="no README was found to read",
                                     hint="readme: docs/README.md   # where your README is"))
        else:
            outcomes.append(_outcome(c, "not_evaluated", 0.0, reason="the API is not running (build failed: COPY "
                                     "failed)", hint="port: 8000"))
    result = score(rubric, outcomes)
    return sample_scorecard(score=result.score, passed=result.passed, gates_met=result.gates_met,
                            criteria=result.criteria, findings=result.findings, checks=outcomes,
                            top_fixes=result.top_fixes, ladder=[])


def test_every_format_shows_fixes_with_what_broke_and_not_evaluated_apart():
    sc = sample_scorecard()
    html = render_html(sc)
    fixes = _section(html, "fixes")
    first = sc.top_fixes[0]
    assert first.problem in fixes and first.hint in fixes and "Gate" in fixes
    assert fixes.index(first.problem) < fixes.index(first.hint) < fixes.index(sc.top_fixes[1].title)
    pagination = "List endpoints paginate and cap the page size"
    assert pagination not in fixes  # not evaluated: no fix worth +8 points
    more = _section(html, "see-more")
    assert pagination in more and "resources: [/api/v1/tasks]" in more and "8 points not graded" in more
    assert "does not share a path" in more

    term = terminal_text(sc)
    fixes_part = term.split("Fix these first")[1].split("Help the grader see more")[0]
    assert "on GET /api/v1/tasks/{task_id}: User B read a task" in " ".join(fixes_part.split())
    assert pagination not in fixes_part and pagination in term.split("Help the grader see more")[1]

    md = render_markdown(sc)
    md_fixes = md.split("### Fix these first")[1].split("### Help the grader see more")[0]
    assert "1. **Users cannot read or change each other's tasks** (gate, +12 pts): on `GET /api/v1/tasks/{task_id}`" in md_fixes
    assert pagination not in md_fixes
    md_more = md.split("### Help the grader see more")[1].split("<details>")[0]
    assert pagination in md_more and "resources: [/api/v1/tasks]" in md_more and "```yaml" in md_more

    gs = json.loads(render_gradescope(sc))["output"]
    assert "1. Users cannot read or change each other's tasks (gate) (+12): GET /api/v1/tasks/{task_id}: User B" in gs
    assert "Help the grader see more" in gs and pagination in gs.split("Help the grader see more")[1]


def test_a_failed_build_is_one_item_in_every_format():
    sc = _failed_build_card()
    assert len(sc.top_fixes) == 1 and len(sc.top_fixes[0].criteria) > 5
    html = render_html(sc)
    fixes = _section(html, "fixes")
    assert fixes.count("+") == 1 and "The image did not build" in fixes and "One cause: it also costs" in fixes
    assert "Publishes a valid OpenAPI document" in fixes  # named among what the cause costs
    more = _section(html, "see-more")
    assert "README" in more and "readme: docs/README.md" in more and "OpenAPI" not in more

    md = render_markdown(sc)
    md_fixes = md.split("### Fix these first")[1].split("### Help the grader see more")[0]
    assert md_fixes.count("pts)") == 1 and "One cause: it also costs" in md_fixes
    term = terminal_text(sc)
    assert term.count(" pts ") == 1 and "One cause" in term


# ---------------------------------------------------------------- inline code, whole words, JSON excerpts, stopped


def _card_with_code_hints():
    from portfolio_grader.models import CheckOutcome, Evidence

    long_hint = ("Run `docker build .` on a clean checkout and fix the first failing step; " + "then keep " * 40
                 + "going until the image builds.")
    base = gate_missed_scorecard()
    criteria = [c.model_copy(update={"hint": long_hint}) if c.id == "ownership.bola" else c for c in base.criteria]
    fixes = [f.model_copy(update={"hint": long_hint}) if f.criterion == "ownership.bola" else f for f in base.top_fixes]
    spec = {"openapi": "3.1.0", "info": {"title": "Task API", "x-flag": True, "x-none": None},
            "paths": {"/tasks": {"get": {"summary": "It's a list " * 30}}}}
    checks = [*base.checks,
              CheckOutcome(check="contract.spec_present", area="contract", status="pass", summary="a spec",
                           evidence=[Evidence(curl="cat openapi.yaml", file="openapi.yaml", excerpt=str(spec)[:400]),
                                     Evidence(curl="cat small.yaml", file="small.yaml",
                                              excerpt=str({"openapi": "3.0.3", "ok": True}))])]
    criteria = [c.model_copy(update={"checks": [*c.checks, "contract.spec_present"]}) if c.id == "contract.spec"
                else c for c in criteria]
    return sample_scorecard(criteria=criteria, top_fixes=fixes, checks=checks, findings=base.findings,
                            score=base.score), long_hint


def test_inline_code_is_code_in_html_markdown_and_terminal_never_literal_backticks():
    from .test_formats import markdown_html

    sc, hint = _card_with_code_hints()
    html = render_html(sc)
    assert "<code>docker build .</code>" in _section_html(html, "fixes")
    assert "`" not in Document(_section_html(html, "fixes")).text
    assert "`" not in Document(_section_html(html, "criteria")).text.split("Checks behind")[0]
    assert "<code>resources</code>" in html  # a not-evaluated reason's code span

    md = render_markdown(sc)
    rendered = markdown_html(md)
    assert "docker build ." in [t for t in rendered.texts]  # a code span GitHub shows as code
    assert "\\`" not in md.split("### Fix these first")[1].split("<details>")[0]

    console = Console(record=True, width=200, force_terminal=True)
    print_summary(sc, console=console)
    plain = console.export_text()
    assert "docker build ." in plain and "`" not in plain.split("Fix these first")[1]


def _section_html(html: str, section_id: str) -> str:
    return re.search(rf'<section class="card" id="{section_id}">(.*?)</section>', html, re.S).group(1)


def test_hints_are_cut_at_a_word_never_mid_word():
    from portfolio_grader.report.terminal import clean

    sc, hint = _card_with_code_hints()
    term = " ".join(terminal_text(sc).split())
    shown = term.split("Run docker build . on a clean checkout")[1].split("…")[0]
    assert shown.rstrip().endswith("keep") or shown.rstrip().endswith("then")
    words = set(hint.replace("`", "").split())
    assert all(w in words for w in shown.split())
    md = render_markdown(sc)
    cut = md.split("How to fix: Run")[1].split("…")[0]
    assert cut.split()[-1] in ("then", "keep")
    assert clean("alpha beta gamma", 12) == "alpha beta…" and clean("x" * 30, 10) == "x" * 9 + "…"


def test_spec_excerpts_are_json_not_python_reprs():
    sc, _ = _card_with_code_hints()
    text = Document(render_html(sc)).text
    assert '"openapi": "3.1.0"' in text and "'openapi'" not in text
    assert '"x-flag": true' in text and '"x-none": null' in text  # cut short, still in JSON spelling
    assert '"openapi": "3.0.3",\n  "ok": true' in text  # a whole document is indented JSON


def test_the_runtime_block_says_stopped_once_the_container_is_gone():
    sc = sample_scorecard()
    html = render_html(sc)
    runtime = Document(_section_html(html, "runtime")).text
    assert "stopped: it ran during the grade and was removed when the grade ended" in runtime
    assert "no longer served" in runtime
    assert "The API did not run" not in Document(html).text
    assert "ran, stopped when the grade ended" in terminal_text(sc)
    live = sample_scorecard(runtime={**sc.runtime, "kind": "external"})  # a deployment is not the grader's to stop
    assert "stopped" not in Document(_section_html(render_html(live), "runtime")).text


# ---------------------------------------------------------------- hints that fit the detected stack

OWNERSHIP_HINT = ("Scope every query by the current user: Task.owner_id == current_user.id (SQLAlchemy), "
                  "{ _id, owner: req.user.id } (Mongoose), and answer 404 for other users' objects.")
RATE_HINT = "Limit failed logins per account (slowapi for FastAPI, express-rate-limit, flask-limiter) and answer 429."


def _stack_card(stack, frameworks):
    base = sample_scorecard()
    hints = {"ownership.bola": OWNERSHIP_HINT, "auth.rate_limit": RATE_HINT}
    criteria = [c.model_copy(update={"hint": hints.get(c.id, c.hint)}) for c in base.criteria]
    fixes = [f.model_copy(update={"hint": hints.get(f.criterion, f.hint)}) for f in base.top_fixes]
    return sample_scorecard(criteria=criteria, top_fixes=fixes,
                            facts={**base.facts, "stack": stack, "frameworks": frameworks})


def test_hints_fit_the_detected_stack_in_every_format():
    from portfolio_grader.report.stack import fit_hint

    assert fit_hint(RATE_HINT, "python", ["flask"]) == ("Limit failed logins per account (flask-limiter) and "
                                                        "answer 429.")
    assert fit_hint(RATE_HINT, "node", ["express"]) == "Limit failed logins per account (express-rate-limit) and answer 429."
    assert fit_hint(OWNERSHIP_HINT, "node", []) == ("Scope every query by the current user: { _id, owner: "
                                                   "req.user.id } (Mongoose), and answer 404 for other users' objects.")
    assert fit_hint(RATE_HINT, "other", []) == RATE_HINT and fit_hint(RATE_HINT, "unknown", []) == RATE_HINT
    # a list none of whose items fits is left whole: every stack's advice rather than none
    both = "In FastAPI add a dependency; in Express add a middleware."
    assert fit_hint(both, "python", ["django"]) == both
    assert fit_hint("Use a router (in FastAPI a dependency).", "python", ["django"]) == "Use a router."  # an aside

    flask = _stack_card("python", ["flask"])
    views = {"html": Document(render_html(flask)).text, "terminal": terminal_text(flask),
             "markdown": render_markdown(flask), "gradescope": json.loads(render_gradescope(flask))["tests"][12]["output"]}
    for name, text in views.items():
        assert "Mongoose" not in text and "req.user" not in text, name
    assert "SQLAlchemy" in views["html"] and "flask-limiter" in views["html"] and "slowapi" not in views["html"]
    assert flask.criteria[12].hint == OWNERSHIP_HINT  # result.json keeps the rubric's words

    unknown = _stack_card("other", [])
    assert "Mongoose" in Document(render_html(unknown)).text
