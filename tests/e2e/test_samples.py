"""Grade every bundled sample submission for real (Docker) and hold the grade to its expected.yaml, both ways."""

from __future__ import annotations

import html
import re
import subprocess
from pathlib import Path

import pytest
import yaml

SAMPLES = Path(__file__).resolve().parents[2] / "sample_submissions"
SAMPLE_NAMES = sorted(p.name for p in SAMPLES.iterdir() if (p / "expected.yaml").is_file())

pytestmark = pytest.mark.docker


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_sample_grade_agrees_with_expected(graded, name):
    expected = yaml.safe_load((SAMPLES / name / "expected.yaml").read_text())
    code, card, folder = graded(name)
    failing = {f.kind for f in card.findings}
    statuses = {c.id: c.status for c in card.criteria}
    summary = f"{name}: score {card.score}, kinds {sorted(failing)}, criteria {statuses}, notes {card.notes}"
    assert card.tier == expected["tier"]
    assert expected.get("min_score", 0) <= card.score <= expected.get("max_score", 100), summary
    assert set(expected.get("must_report", [])) <= failing, summary
    assert not set(expected.get("must_not_report", [])) & failing, summary
    for criterion in expected.get("criteria_pass", []):
        assert statuses.get(criterion) == "pass", summary
    for criterion in expected.get("criteria_not_applicable", []):  # out of the grade: 0 of 0 points
        assert statuses.get(criterion) == "not_applicable", summary
    ladder = {step.tier: step.status for step in card.ladder}
    for tier, status in (expected.get("ladder") or {}).items():  # each tier by its own gates
        assert ladder.get(tier) == status, f"{name}: ladder {ladder}; {summary}"
    assert code == (0 if card.passed else 1)
    assert (folder / "scorecard.html").is_file() and (folder / "result.json").is_file()


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_every_reported_failure_carries_evidence(graded, name):
    _, card, _ = graded(name)
    for finding in card.findings:
        assert finding.evidence and all(e.curl for e in finding.evidence), finding
        assert finding.hint, finding


def test_flawed_sample_curl_lines_reproduce_the_failures(graded, docker_client):
    """The HTTP curl lines are replayed against a fresh run of the same image: same status class."""
    name = "beginner-recipes-flask-flawed"
    if name not in SAMPLE_NAMES:
        pytest.fail(f"sample {name} is missing")
    _, card, _ = graded(name)
    http = [(f, e) for f in card.findings for e in f.evidence if e.response and e.response.status]
    assert http, "no HTTP evidence to replay"
    _replay(docker_client, card, http)


def _replay(client, card, http):
    """Start the submission's image again (build cache makes it quick) and run each curl against it."""
    from portfolio_grader.fetch import discard, fetch
    from portfolio_grader.inspect import inspect_repo
    from portfolio_grader.runtime import RuntimeOptions, start

    workspace = fetch(card.source.repo)
    try:
        with start(workspace, inspect_repo(workspace.path), RuntimeOptions(run_id="replay" + card.name[:8])) as handle:
            assert handle.service.up, handle.service.detail
            old, new = card.runtime["base_url"], handle.service.base_url
            checked = 0
            for finding, evidence in http:
                if finding.kind not in ("server_error", "stack_trace_leak", "non_json_error", "negative_data_accepted"):
                    continue
                if re.search(r"/\d+(/|$|\?)", evidence.request.url):
                    continue  # an id the server created during the grade: only exact on that run's state
                line = evidence.curl.replace(old, new)
                out = subprocess.run(["bash", "-c", line], capture_output=True, text=True, timeout=30).stdout
                status = int(out.split()[1]) if out.startswith("HTTP/") else None
                assert status is not None and status // 100 == evidence.response.status // 100, (line, out[:300])
                checked += 1
            assert checked, "no replayable finding"
    finally:
        discard(workspace)


def test_broken_build_scorecard_explains_the_failure(graded):
    name = "beginner-broken-build"
    if name not in SAMPLE_NAMES:
        pytest.fail(f"sample {name} is missing")
    code, card, folder = graded(name)
    assert code == 1 and card.runtime["status"] == "build_failed" and card.runtime["builder"]
    build = next(f for f in card.findings if f.kind == "build_failed")
    assert build.evidence[0].excerpt, "the build log tail is shown"
    text = html.unescape((folder / "scorecard.html").read_text())
    assert card.runtime["builder"] in text and card.runtime["detail"] in text
    not_run = [c for c in card.criteria if c.status == "not_evaluated"]
    assert not_run and all(c.reason for c in not_run)
