"""SARIF: every result has a physical location (GitHub's code-scanning upload refuses one without), still valid."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from portfolio_grader.models import Finding, Source
from portfolio_grader.report.sarif import render_sarif

from .scorecard_fixture import gate_missed_scorecard, hostile_scorecard, sample_scorecard

SCHEMA = json.loads((Path(__file__).parent.parent / "schemas" / "sarif-schema-2.1.0.json").read_text())


def _results(sc) -> list[dict]:
    log = json.loads(render_sarif(sc))
    jsonschema.Draft4Validator(SCHEMA).validate(log)
    return log["runs"][0]["results"]


def _uri(result: dict) -> str:
    return result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]


def test_every_result_of_the_fixture_scorecards_has_a_physical_location():
    for sc in (sample_scorecard(), hostile_scorecard(), gate_missed_scorecard()):
        results = _results(sc)
        assert results and all(_uri(r) for r in results)


def test_a_finding_that_points_nowhere_is_placed_on_the_spec_the_dockerfile_or_the_deployment():
    base = sample_scorecard()
    loose = [Finding(id="F901", check="crud.lifecycle", kind="crud_lifecycle_broken", severity="high",
                     message="GET after DELETE answered 200", operation="GET /nowhere/{id}"),
             Finding(id="F902", check="repo.ci", kind="ci_missing", severity="low", message="no CI")]
    facts = base.facts | {"spec_files": ["docs/openapi.yaml"], "dockerfile": "Dockerfile", "routes_in_code": []}
    criteria = [c.model_copy(update={"finding_ids": ["F901", "F902"]}) for c in base.criteria[:1]]
    sc = base.model_copy(update={"findings": loose, "facts": facts, "criteria": criteria})
    by_id = {r["properties"]["findingId"]: r for r in _results(sc)}
    assert _uri(by_id["F901"]) == "docs/openapi.yaml"  # the operation is declared there
    assert by_id["F901"]["locations"][0]["logicalLocations"][0]["name"] == "GET /nowhere/{id}"
    assert _uri(by_id["F902"]) == "Dockerfile"
    live = sc.model_copy(update={"source": Source(url="https://api.example.org"),
                                 "facts": {"routes_in_code": []}})
    assert {_uri(r) for r in _results(live)} == {"https://api.example.org"}
