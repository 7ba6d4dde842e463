"""Every report format from the same result.json: Markdown, JUnit (junit-10.xsd), SARIF (OASIS 2.1.0
schema), Gradescope; hidden criteria; "Since last grade" from --baseline; hostile text stays inert.

Two real grades run once for the module: a flawed Flask recipes API (below the pass mark, a gate
missed) and a good FastAPI books API graded with the first as its baseline, each served in-process
and graded by the CLI with the repository folder (README, Dockerfile, route handlers) beside --url.
"""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace

import jsonschema
import pytest
import xmlschema
from markdown_it import MarkdownIt
from rich.console import Console

from portfolio_grader.cli import main
from portfolio_grader.models import CheckOutcome, Evidence, Scorecard
from portfolio_grader.report import FORMATS, load_scorecard, print_summary, render, render_html
from portfolio_grader.report.baseline import baseline_of, compare, with_baseline
from portfolio_grader.report.gradescope import render_gradescope
from portfolio_grader.report.html import format_points
from portfolio_grader.report.junit import render_junit
from portfolio_grader.report.learner import learner_copy
from portfolio_grader.report.markdown import MAX_CHARS, md, render_markdown
from portfolio_grader.report.sarif import handler_location, render_sarif
from portfolio_grader.rubric import Rubric
from portfolio_grader.scoring import score

from ..conftest import serve_asgi, serve_wsgi
from ..probes.apps import flawed_recipes_app, good_books_app
from .scorecard_fixture import HOSTILE, SCRIPT, hostile_scorecard, sample_scorecard
from .test_report import Document

SCHEMAS = Path(__file__).resolve().parent.parent / "schemas"

RECIPES_REPO = {
    "app.py": '''from flask import Flask

app = Flask("recipes")


@app.post("/recipes")
def create():
    ...


@app.get("/recipes/<int:recipe_id>")
def read(recipe_id):
    ...


@app.put("/recipes/<int:recipe_id>")
def update(recipe_id):
    ...


@app.delete("/recipes/<int:recipe_id>")
def delete(recipe_id):
    ...
''',
    "README.md": "# Recipes\n\nRun: docker build -t recipes . && docker run -p 8000:8000 recipes\n",
    "Dockerfile": 'FROM python:3.12-slim\nCOPY . /app\nCMD ["python", "/app/app.py"]\n',
}

BOOKS_REPO = {
    "main.py": '''from fastapi import FastAPI

app = FastAPI(title="books")


@app.post("/books", status_code=201)
def create(book): ...


@app.get("/books")
def list_books(): ...


@app.get("/books/{book_id}")
def read(book_id: int): ...


@app.put("/books/{book_id}")
def update(book_id: int, book): ...


@app.delete("/books/{book_id}", status_code=204)
def delete(book_id: int): ...
''',
    "README.md": """# Books API

A small bookshelf API built with FastAPI.

## Run

    docker build -t books .
    docker run -p 8000:8000 books

Then open http://localhost:8000/docs. Run the tests with `pytest`.
""",
    "Dockerfile": 'FROM python:3.12-slim\nWORKDIR /app\nCOPY . .\nRUN pip install fastapi uvicorn\nEXPOSE 8000\n'
                  'CMD ["uvicorn", "main:app", "--host", "0.0.0.0", "--port", "8000"]\n',
}


def write_repo(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> SimpleNamespace:
    root = tmp_path_factory.mktemp("graded")
    recipes = write_repo(root / "recipes", RECIPES_REPO)
    books = write_repo(root / "books", BOOKS_REPO)
    out = root / "out"
    with serve_wsgi(flawed_recipes_app()) as url:
        flawed_code = main(["grade", str(recipes), "--url", url, "--tier", "beginner", "--out", str(out),
                            "--max-examples", "5", "--seed", "1"])
    flawed = out / "recipes" / "result.json"
    with serve_asgi(good_books_app()) as url:
        good_code = main(["grade", str(books), "--url", url, "--tier", "beginner", "--out", str(out),
                          "--max-examples", "5", "--seed", "1", "--baseline", str(flawed)])
    return SimpleNamespace(flawed=flawed, good=out / "books" / "result.json", codes=(flawed_code, good_code))


# ---------------------------------------------------------------- validators


@pytest.fixture(scope="module")
def sarif_validator():
    schema = json.loads((SCHEMAS / "sarif-schema-2.1.0.json").read_text())
    return jsonschema.Draft4Validator(schema, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER)


@pytest.fixture(scope="module")
def junit_schema():
    return xmlschema.XMLSchema(str(SCHEMAS / "junit-10.xsd"))


def markdown_html(text: str) -> Document:
    """The Markdown as GitHub would turn it into HTML: CommonMark + tables, raw HTML allowed through."""
    return Document(MarkdownIt("commonmark", {"html": True}).enable("table").render(text))


def validate_all(folder: Path, sarif_validator, junit_schema) -> dict:
    """Validate every format file in `folder`; returns them parsed."""
    sarif = json.loads((folder / FORMATS["sarif"]).read_text())
    sarif_validator.validate(sarif)
    junit_schema.validate(str(folder / FORMATS["junit"]))
    return {
        "json": load_scorecard(folder / FORMATS["json"]),
        "sarif": sarif,
        "junit": ET.parse(folder / FORMATS["junit"]).getroot(),
        "gradescope": json.loads((folder / FORMATS["gradescope"]).read_text()),
        "markdown": (folder / FORMATS["markdown"]).read_text(),
        "html": Document((folder / FORMATS["html"]).read_text()),
    }


# ---------------------------------------------------------------- every format from one result.json


def test_the_two_real_grades_are_what_the_format_tests_expect(graded):
    flawed, good = load_scorecard(graded.flawed), load_scorecard(graded.good)
    assert graded.codes == (1, 0)
    assert not flawed.passed and not flawed.gates_met and flawed.findings
    assert good.passed and good.baseline is not None
    assert ["POST", "/recipes", "app.py:6"] in flawed.facts["routes_in_code"]  # the list, for SARIF


def test_report_writes_every_format_from_one_result_json_and_each_validates(graded, tmp_path, capsys,
                                                                            sarif_validator, junit_schema):
    args = ["report", str(graded.flawed), "--out", str(tmp_path)]
    for fmt in FORMATS:
        args += ["--format", fmt]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert all(f"{fmt}: {tmp_path / name}" in printed for fmt, name in FORMATS.items())
    parsed = validate_all(tmp_path, sarif_validator, junit_schema)
    source = load_scorecard(graded.flawed)
    assert parsed["json"] == source
    assert source.name in parsed["html"].text and f"{format_points(source.score)}/100" in parsed["markdown"]
    assert parsed["gradescope"]["score"] == round(sum(c.points for c in source.criteria), 2)
    assert int(parsed["junit"].get("tests")) == len(source.criteria)
    assert len(parsed["sarif"]["runs"][0]["results"]) == len(source.findings)


def test_report_without_format_still_writes_html_and_json(graded, tmp_path):
    assert main(["report", str(graded.flawed), "--out", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.json", "scorecard.html"]


def test_the_fixture_scorecards_render_valid_sarif_and_junit(sarif_validator, junit_schema):
    for sc in (sample_scorecard(), hostile_scorecard(), Scorecard.model_validate_json(
            sample_scorecard(findings=[], criteria=[], checks=[], top_fixes=[]).model_dump_json())):
        sarif_validator.validate(json.loads(render_sarif(sc)))
        junit_schema.validate(ET.fromstring(render_junit(sc)))


def test_the_schemas_reject_what_is_not_sarif_or_junit(sarif_validator, junit_schema):
    """The validators bite: a result without a message, a testcase without a name fail."""
    log = json.loads(render_sarif(sample_scorecard()))
    del log["runs"][0]["results"][0]["message"]
    with pytest.raises(jsonschema.ValidationError):
        sarif_validator.validate(log)
    log = json.loads(render_sarif(sample_scorecard()))
    log["version"] = "2.0.0"
    with pytest.raises(jsonschema.ValidationError):
        sarif_validator.validate(log)
    suite = ET.fromstring(render_junit(sample_scorecard()))
    del suite.find("testsuite/testcase").attrib["name"]
    with pytest.raises(xmlschema.XMLSchemaValidationError):
        junit_schema.validate(suite)


# ---------------------------------------------------------------- SARIF


def test_sarif_rules_are_finding_kinds_and_results_are_located(graded):
    sc = load_scorecard(graded.flawed)
    run = json.loads(render_sarif(sc))["runs"][0]
    rules = [r["id"] for r in run["tool"]["driver"]["rules"]]
    assert rules == sorted({f.kind for f in sc.findings})
    by_id = {r["properties"]["findingId"]: r for r in run["results"]}
    for f in sc.findings:
        result = by_id[f.id]
        assert rules[result["ruleIndex"]] == result["ruleId"] == f.kind
        assert result["properties"]["reproduce"] == [e.curl for e in f.evidence]
        assert result["level"] == {"critical": "error", "high": "error", "medium": "warning"}.get(f.severity, "note")

    readme = next(f for f in sc.findings if f.kind == "readme_missing")
    location = by_id[readme.id]["locations"][0]["physicalLocation"]
    assert location["artifactLocation"] == {"uri": "README.md", "uriBaseId": "SRCROOT"}

    create = next(f for f in sc.findings if f.operation == "POST /recipes")
    location = by_id[create.id]["locations"][0]
    assert location["logicalLocations"] == [{"name": "POST /recipes", "kind": "function"}]
    assert location["physicalLocation"] == {"artifactLocation": {"uri": "app.py", "uriBaseId": "SRCROOT"},
                                            "region": {"startLine": 6}}
    read = next(f for f in sc.findings if f.operation == "GET /recipes/{recipe_id}")
    assert by_id[read.id]["locations"][0]["physicalLocation"]["region"] == {"startLine": 11}
    ghost = next(f for f in sc.findings if f.operation == "GET /recipes/{recipe_id}/ratings")  # not in the code
    # no handler to point at: placed on the file that ran the API (GitHub refuses a result without a file)
    assert by_id[ghost.id]["locations"][0]["physicalLocation"] == {"artifactLocation": {"uri": "Dockerfile",
                                                                                        "uriBaseId": "SRCROOT"}}


def test_sarif_fingerprints_are_stable_and_distinct():
    first = json.loads(render_sarif(sample_scorecard()))["runs"][0]["results"]
    again = json.loads(render_sarif(sample_scorecard(graded_at="2030-01-01T00:00:00+00:00")))["runs"][0]["results"]
    prints = [r["partialFingerprints"]["portfolioGrader/v1"] for r in first]
    assert prints == [r["partialFingerprints"]["portfolioGrader/v1"] for r in again]
    assert len(set(prints)) == len(prints)


def test_route_handlers_match_across_framework_templates_and_mount_prefixes():
    routes = [["GET", "/tasks/<int:task_id>", "app.py:20"], ["*", "/users/:id", "server.js:7"],
              ["POST", "/tasks", "routers/tasks.py:12"], ["GET", "/tasks", "routers/tasks.py:30"]]
    assert handler_location("GET /tasks/{id}", routes) == ("app.py", 20)
    assert handler_location("DELETE /users/{user_id}", routes) == ("server.js", 7)
    assert handler_location("POST /api/v1/tasks", routes) == ("routers/tasks.py", 12)  # router under /api/v1
    assert handler_location("PUT /tasks/{id}", routes) is None
    assert handler_location("GET /other", routes) is None


# ---------------------------------------------------------------- JUnit


def test_junit_has_one_testcase_per_criterion_failures_carry_evidence(graded):
    sc = load_scorecard(graded.flawed)
    suite = ET.fromstring(render_junit(sc)).find("testsuite")
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == [f"{c.id}: {c.title}" for c in sc.criteria]
    findings = {f.id: f for f in sc.findings}
    for criterion, case in zip(sc.criteria, cases):
        failure, skipped = case.find("failure"), case.find("skipped")
        if criterion.status == "pass":
            assert failure is None and skipped is None
        elif criterion.status == "not_evaluated":
            assert failure is None and criterion.reason in skipped.get("message")
        else:
            assert failure.get("type") == criterion.status
            for fid in criterion.finding_ids:
                assert findings[fid].kind in failure.text and findings[fid].evidence[0].curl in failure.text
    assert suite.get("failures") == str(sum(c.status in ("fail", "partial") for c in sc.criteria))
    assert suite.get("skipped") == str(sum(c.status == "not_evaluated" for c in sc.criteria))
    props = {p.get("name"): p.get("value") for p in suite.find("properties")}
    assert props["score"] == format_points(sc.score) and props["passed"] == "false"


def test_a_criterion_that_does_not_apply_counts_for_nothing_in_every_format(graded):
    # the good books API pages no list: the beginner pagination criterion leaves the grade
    sc = load_scorecard(graded.good)
    pagination = next(c for c in sc.criteria if c.id == "pagination")
    assert (pagination.status, pagination.points, pagination.max_points) == ("not_applicable", 0, 0)
    assert "no list endpoint offers a way to page" in pagination.reason
    skipped = [case.find("skipped") for case in ET.fromstring(render_junit(sc)).iter("testcase")
               if case.get("name").startswith("pagination:")]
    assert skipped[0].get("message").startswith("not applicable: no list endpoint")
    test = next(t for t in json.loads(render_gradescope(sc))["tests"] if t["name"].startswith("When lists"))
    assert (test["score"], test["max_score"]) == (0, 0) and "Not applicable: no list endpoint" in test["output"]
    assert "➖" in render_markdown(sc) and "not applicable: no list endpoint" in render_markdown(sc)
    page = " ".join(Document(render_html(sc)).texts)
    assert "Not applicable" in page and "counts for nothing in this grade" in page


def test_junit_keeps_hostile_text_as_text_and_drops_what_xml_cannot_hold():
    text = render_junit(hostile_scorecard())
    root = ET.fromstring(text)  # parses: nothing broke out of an attribute or an element
    assert "\x1b" not in text and "<script>" not in text
    failures = "".join(f.text or "" for f in root.iter("failure"))
    assert SCRIPT in failures and "Reflected: " + HOSTILE in failures
    assert root.find("testsuite").get("name").startswith("portfolio-grader: [bold red]evil[/] " + SCRIPT)


# ---------------------------------------------------------------- Gradescope


def test_gradescope_results_json_has_a_test_per_criterion_in_rubric_points(graded):
    sc = load_scorecard(graded.flawed)
    results = json.loads(render_gradescope(sc))
    assert [t["name"].removesuffix(" (gate)") for t in results["tests"]] == [c.title for c in sc.criteria]
    for test, c in zip(results["tests"], sc.criteria):
        assert (test["score"], test["max_score"]) == (round(c.points, 2), round(c.max_points, 2))
        assert test["visibility"] == "visible" and test["output_format"] == "text"
        assert test["status"] == ("passed" if c.status == "pass" else "failed")
        assert isinstance(test["output"], str) and test["output"]
    assert results["score"] == round(sum(t["score"] for t in results["tests"]), 2)
    assert "not passed: below the pass mark" in results["output"] and results["extra_data"]["percent"] == sc.score
    hostile = json.loads(render_gradescope(hostile_scorecard()))
    assert any("Reflected: " + HOSTILE in t["output"] for t in hostile["tests"])  # data, in text format


# ---------------------------------------------------------------- Markdown


def test_markdown_summary_has_score_ladder_fixes_and_collapsible_details(graded):
    sc = load_scorecard(graded.flawed)
    text = render_markdown(sc)
    doc = markdown_html(text)
    assert text.startswith(f"## ❌ recipes: {format_points(sc.score)}/100, not passed: below the pass mark")
    first, second = sc.ladder[0], sc.ladder[1]
    assert (first.tier, first.status, second.status) == ("beginner", "missed", "not_graded") and first.missing_gates
    missing = "; ".join(md(title) for title in first.missing_gates)
    assert f"**Ladder** beginner ✗ (missing: {missing}) · intermediate –" in text
    fixes = [f.title for f in sc.top_fixes[:3]]
    assert all(f"**{title}**" in text for title in fixes)
    summaries = [s for s in doc.texts if s.startswith(("All criteria", "Findings"))]
    counts = {w: sum(c.status == s for c in sc.criteria) for s, w in
              (("pass", "pass"), ("partial", "partial"), ("fail", "fail"), ("not_evaluated", "not evaluated"))}
    expected = " · ".join(f"{n} {w}" for w, n in counts.items() if n)
    worth = f"{format_points(sum(c.points for c in sc.criteria))} of {format_points(sum(c.max_points for c in sc.criteria))} points"
    assert summaries == [f"All criteria: {expected} · {worth}", f"Findings: {len(sc.findings)}"]
    assert len(doc.tags("details")) == 2 and not any("open" in d for d in doc.tags("details"))
    assert len(doc.tags("tr")) == len(sc.criteria) + 1
    assert all(f.kind in doc.text for f in sc.findings)
    assert "Since last grade" not in text  # no baseline, no section


def test_markdown_without_a_ladder_skips_the_line():
    assert "**Ladder**" not in render_markdown(sample_scorecard())


def test_hostile_text_in_markdown_is_inert():
    sc = hostile_scorecard()
    findings = list(sc.findings)
    findings[1] = findings[1].model_copy(update={
        "message": "ping @octocat | a | b ![x](https://evil.example/p.png) [click](javascript:alert(1)) **bold**",
        "evidence": [Evidence(curl="curl x\n```\n</details><img src=x onerror=alert(3)>\n````", note="```")],
    })
    text = render_markdown(sc.model_copy(update={"findings": findings}))
    doc = markdown_html(text)
    tags = {tag for tag, _ in doc.elements}
    assert not tags & {"script", "img", "a", "iframe", "style", "b"}, tags & {"script", "img", "a", "iframe", "style"}
    assert len(doc.tags("details")) == 2  # the fence breakout did not close a <details>
    assert SCRIPT in doc.text and "Reflected: " + HOSTILE in doc.text  # shown, as text
    assert "@octocat" not in doc.text and "@\u200boctocat" in doc.text  # no @mention
    assert "**bold**" in doc.text and "![x](https://evil.example/p.png)" in doc.text
    assert "</details><img src=x onerror=alert(3)>" in doc.text  # inside the code block, as text
    assert len(doc.tags("tr")) == len(sc.criteria) + 1  # no table row broken by a pipe
    assert "\x1b" not in text


def test_markdown_is_bounded_for_a_pr_comment():
    base = sample_scorecard()
    finding = base.findings[0]
    many = [finding.model_copy(update={"id": f"F{i:04d}", "message": "m" * 2000,
                                       "evidence": [finding.evidence[0].model_copy(update={"curl": "curl " + "x" * 5000})]})
            for i in range(400)]
    criteria = [c.model_copy(update={"finding_ids": [f.id for f in many]}) if c.id == "ownership.bola" else c
                for c in base.criteria]
    text = render_markdown(base.model_copy(update={"findings": many, "criteria": criteria}))
    assert len(text) <= MAX_CHARS
    assert "Findings: 400 (the " in text and "most severe)" in text
    assert text.rstrip().endswith("</sub>")


# ---------------------------------------------------------------- hidden criteria


def hidden_sample() -> Scorecard:
    hide = {"auth.rate_limit", "ownership.bola"}
    sc = sample_scorecard()
    return sc.model_copy(update={"criteria": [c.model_copy(update={"visibility": "hidden"}) if c.id in hide else c
                                              for c in sc.criteria]})


def test_hidden_criteria_are_counted_not_named_in_learner_formats(sarif_validator, junit_schema):
    sc = hidden_sample()
    hidden = [c for c in sc.criteria if c.visibility == "hidden"]
    secret = [c.title for c in hidden] + [f.message for f in sc.findings if f.id in ("F001", "F002", "F004")]
    secret += ["broken_object_level_authorization", "no_rate_limit"]  # their findings' kinds

    text = render_markdown(sc)
    assert "2 hidden checks: 0 passed, 0/18 points" in text
    assert "**gates** not met: 1 hidden check" in text
    junit = render_junit(sc)
    junit_schema.validate(ET.fromstring(junit))
    sarif = render_sarif(sc)
    sarif_validator.validate(json.loads(sarif))
    for learner_text in (text, junit, sarif):
        assert not [s for s in secret if s in learner_text]
    suite = ET.fromstring(junit).find("testsuite")
    case = suite.findall("testcase")[-1]
    assert case.get("name") == "2 hidden checks" and case.find("failure").get("message").startswith("2 hidden checks")
    assert len(suite.findall("testcase")) == len(sc.criteria) - 2 + 1

    results = json.loads(render_gradescope(sc))
    assert {t["name"]: t["visibility"] for t in results["tests"]}["Login is rate limited"] == "hidden"
    assert sum(t["visibility"] == "visible" for t in results["tests"]) == len(sc.criteria) - 2
    assert "2 hidden checks: 0 passed, 0/18 points" in results["output"]
    assert "Login is rate limited" not in results["output"]
    after = json.loads(render_gradescope(sc, hidden_visibility="after_published"))
    assert sum(t["visibility"] == "after_published" for t in after["tests"]) == 2

    page = Document(render_html(sc))  # the instructor's view shows them in full
    assert all(c.title in page.text for c in hidden) and page.text.count("Hidden from learners") == 2


def test_the_learner_copy_for_the_ci_log_drops_hidden_criteria_but_keeps_the_score():
    sc = hidden_sample()
    learner = learner_copy(sc)
    assert learner.score == sc.score and len(learner.criteria) == len(sc.criteria) - 2
    assert {f.id for f in learner.findings} == {f.id for f in sc.findings} - {"F001", "F002", "F004"}
    console = Console(file=io.StringIO(), width=200, color_system=None)
    print_summary(learner, console=console)
    out = console.file.getvalue()
    assert "Login is rate limited" not in out and "Users cannot read or change" not in out
    assert "Errors are JSON with a consistent shape" in out  # a visible fix is still listed


def test_scoring_carries_the_rubrics_visibility_into_the_result():
    rubric = Rubric(name="t", version="1", title="t", pass_mark=50, criteria=[
        {"id": "shown", "title": "Shown", "area": "crud", "checks": ["a"], "points": 5, "hint": "h"},
        {"id": "secret", "title": "Secret", "area": "crud", "checks": ["b"], "points": 5, "hint": "h",
         "visibility": "hidden"},
    ])
    outcomes = [CheckOutcome(check="a", area="crud", status="pass", summary="a"),
                CheckOutcome(check="b", area="crud", status="fail", summary="b", score=0.0)]
    result = {c.id: c.visibility for c in score(rubric, outcomes).criteria}
    assert result == {"shown": "visible", "secret": "hidden"}


# ---------------------------------------------------------------- since last grade


def test_compare_reports_criteria_kinds_and_score_that_moved():
    before = sample_scorecard()
    fixed = [c.model_copy(update={"status": "pass", "points": c.max_points, "finding_ids": []})
             if c.id == "errors.json" else c for c in before.criteria]
    broke = [c.model_copy(update={"status": "partial", "points": 2.0}) if c.id == "repo.readme" else c for c in fixed]
    after = before.model_copy(update={"criteria": broke, "score": before.score + 6 - 2,
                                      "findings": [f for f in before.findings if f.id != "F003"]})
    diff = compare(before, after)
    assert diff.score_delta == 4.0 and diff.same_rubric
    assert [(c.id, c.before, c.after, c.delta) for c in diff.improved] == [("errors.json", "fail", "pass", 6.0)]
    assert [(c.id, c.before, c.after, c.delta) for c in diff.regressed] == [("repo.readme", "pass", "partial", -2.0)]
    assert [k.kind for k in diff.fixed_kinds] == ["non_json_error"] and diff.new_kinds == []
    assert not diff.unchanged and compare(before, before).unchanged


def test_grade_with_baseline_shows_since_last_grade_in_every_view(graded):
    sc = load_scorecard(graded.good)
    diff = baseline_of(sc)
    previous = load_scorecard(graded.flawed)
    assert diff.previous_score == previous.score and diff.score_delta == round(sc.score - previous.score, 1)
    assert diff.improved and not diff.regressed and diff.fixed_kinds
    assert {k.kind for k in diff.fixed_kinds} == {f.kind for f in previous.findings} - {f.kind for f in sc.findings}
    assert sc == with_baseline(sc.model_copy(update={"baseline": None}), previous)

    text = render_markdown(sc)
    assert "### Since last grade" in text and f"(**+{diff.score_delta:g}**)" in text
    assert all(ch.title in text for ch in diff.improved)
    page = Document(render_html(sc))
    assert "Since last grade" in page.text and diff.improved[0].title in page.text
    console = Console(file=io.StringIO(), width=200, color_system=None)
    print_summary(sc, console=console)
    out = console.file.getvalue()
    assert f"Since last grade  {previous.score:g} → {sc.score:g} (+{diff.score_delta:g})" in out
    assert "↑ " + diff.improved[0].title in out


def test_an_unreadable_baseline_exits_2_before_grading(tmp_path, capsys):
    (tmp_path / "old.json").write_text("{not json")
    code = main(["grade", str(tmp_path / "nowhere"), "--baseline", str(tmp_path / "old.json"),
                 "--out", str(tmp_path / "out")])
    assert code == 2 and "--baseline" in capsys.readouterr().err and not (tmp_path / "out").exists()


def test_render_rejects_an_unknown_format():
    with pytest.raises(ValueError, match="unknown report format"):
        render(sample_scorecard(), "pdf")
