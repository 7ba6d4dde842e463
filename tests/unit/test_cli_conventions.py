"""CLI conventions (issue 14): `explain KIND` like `ruff rule`, `grade --format json`, every number validated."""

from __future__ import annotations

import json
import re

import pytest

from portfolio_grader.cli import main
from portfolio_grader.kinds import close_to, registry

from ..probes.apps import good_books_app


def test_explain_says_what_a_kind_means_why_it_matters_and_how_to_fix_it(capsys):
    assert main(["explain", "bola_read"]) == 0
    out = capsys.readouterr().out
    sections = [line for line in out.splitlines() if line in ("What it means", "Why it matters", "How to fix it")]
    assert out.startswith("bola_read (critical)") and sections == ["What it means", "Why it matters", "How to fix it"]
    assert "ownership.bola" in out and "Criterion 'ownership'" in out and "OWASP API1:2023" in out
    assert "owner_id" in out  # the check's own hint, not a copy
    assert "a gate" in out and "intermediate tier" in out


def test_explain_reads_its_texts_from_the_checks_and_rubrics_without_copies():
    from portfolio_grader.checks import contract, http, ownership
    from portfolio_grader.rubric import load_rubric

    kinds = registry()
    assert kinds["bola_read"].hints[0] == " ".join(ownership.HINTS["bola_read"].split())
    assert " ".join(http.HINTS["unknown_route_not_404"].split()) in kinds["unknown_route_not_404"].hints
    assert kinds["schema_violation"].why == contract.KINDS["schema_violation"].why
    assert kinds["schema_violation"].checks == ["contract.response_schema"]
    readme = next(c for c in load_rubric("beginner").criteria if c.id == "readme")
    assert [c.id for c in kinds["readme_missing"].criteria][:1] == ["readme"]
    assert kinds["readme_missing"].criteria[0].hint == " ".join(readme.hint.split())
    # every kind a check can report is explained, with the check that reports it and a way to fix it
    assert len(kinds) > 50
    assert all(info.checks for info in kinds.values()), [k for k, i in kinds.items() if not i.checks]


def test_explain_of_an_unknown_kind_exits_2_with_the_close_kinds_and_the_usage(capsys):
    with pytest.raises(SystemExit) as refused:
        main(["explain", "bola"])
    err = capsys.readouterr().err
    assert refused.value.code == 2 and "usage: portfolio-grader explain" in err
    assert "no finding kind 'bola'" in err and "bola_read" in err and "bola_write" in err
    assert close_to("sever_error")[:1] == ["server_error"]


def test_explain_without_a_kind_lists_them_all_and_json_is_data(capsys):
    assert main(["explain"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert len(listed) == len(registry()) and listed[0].split()[0] == sorted(registry())[0]
    assert main(["explain", "jwt_alg_none_accepted", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["kind"] == "jwt_alg_none_accepted" and data["checks"] == ["auth.jwt_forgery"] and data["hints"]


def test_grade_format_json_prints_the_summary_as_one_json_object(serve, tmp_path, capsys):
    url = serve(good_books_app())
    code = main(["grade", "--url", url, "--out", str(tmp_path), "--max-examples", "3", "--format", "json", "-q"])
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    result = json.loads(next(tmp_path.glob("*/result.json")).read_text())
    assert summary["score"] == result["score"] and summary["passed"] == result["passed"] == (code == 0)
    assert summary["verdict"] in ("passed", "not passed: below the pass mark", "not passed: a gate is not met",
                                  "not passed: below the pass mark and a gate is not met")
    assert summary["tier_reached"] == "beginner" and set(summary["reports"]) >= {"html", "json"}
    assert all({"criterion", "points", "problem", "hint"} <= set(fix) for fix in summary["fixes"])
    assert not re.search(r"^\d\d:\d\d:\d\d ", captured.err, re.MULTILINE)  # -q: no progress either


@pytest.mark.parametrize(("command", "option"), [
    (["batch", "roster.csv", "--points-possible", "-5"], "--points-possible"),
    (["batch", "roster.csv", "--points-possible", "nan"], "--points-possible"),
    (["merge", "a", "--out", "b", "--points-possible", "0"], "--points-possible"),
    (["action", "--max-examples", "-3"], "--max-examples"),
    (["grade", ".", "--format", "yaml"], "--format"),
])
def test_every_numeric_option_is_validated_with_the_subcommands_usage(capsys, command, option):
    with pytest.raises(SystemExit) as refused:
        main(command)
    err = capsys.readouterr().err
    assert refused.value.code == 2 and option in err and f"usage: portfolio-grader {command[0]}" in err
