"""HTML/JavaScript injection everywhere a submission can put text: response bodies, headers, the README,
the repo's name and the spec's descriptions, plus a student's name in a roster.

The scorecard, the Markdown summary and the class dashboard are loaded in headless Chromium with
JavaScript on: no dialog opens, no injected script runs (it would set document.title to PWNED), and no
request leaves the page. The scorecard is loaded a second time with its Content-Security-Policy removed,
so the test shows that escaping alone keeps the payloads inert, not only the CSP. A positive control
proves the harness would notice a script that does run.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml

from .browser import visit, without_csp
from .conftest import RUN_ID_IN_LOG, leftovers, run_cli
from .repos import INJECTION, INJECTION_NAME, cases, make

pytestmark = pytest.mark.docker

PAYLOAD_SIGNS = ("<script>document.title='PWNED'", "onerror=", "javascript:alert")


def assert_inert(page: Path) -> None:
    seen = visit(page)
    assert seen.dialogs == [], f"{page.name}: a dialog opened: {seen.dialogs}"
    assert not seen.scripts_ran and "PWNED" not in seen.title, f"{page.name}: a script ran (title {seen.title!r})"
    assert seen.requests == [], f"{page.name}: the page made requests: {seen.requests}"


def test_the_harness_notices_a_script_that_runs(tmp_path):
    page = tmp_path / "evil.html"
    page.write_text(f"<html><body><img src=http://127.0.0.1:9/p.png>{INJECTION}</body></html>")
    seen = visit(page)
    assert seen.scripts_ran and seen.dialogs == ["xss"] and "http://127.0.0.1:9/p.png" in seen.requests


@pytest.mark.case("injection")
def test_injected_html_is_shown_as_text_in_the_scorecard_and_never_runs(graded, docker_client, tmp_path):
    run = graded["injection"]
    assert run.code in (0, 1) and leftovers(docker_client, run.run_id) == []
    html_path = run.report_dir / "scorecard.html"
    html = html_path.read_text(encoding="utf-8")
    # the payloads reached the scorecard (as evidence, the spec's text, the repo name) - escaped
    assert "&lt;script&gt;document.title=" in html and "<script" not in html.lower()
    assert "inj&lt;img src=x onerror=alert(1)&gt;" in html  # the repo's folder name
    assert_inert(html_path)
    bare = tmp_path / "scorecard-without-csp.html"
    bare.write_text(without_csp(html), encoding="utf-8")
    assert "Content-Security-Policy" not in bare.read_text()
    assert_inert(bare)


@pytest.mark.case("injection")
def test_injected_html_stays_text_in_the_markdown_summary(graded, tmp_path):
    """The PR comment / job summary: rendered permissively (raw HTML allowed), it still runs nothing."""
    from markdown_it import MarkdownIt

    run = graded["injection"]
    report = run_cli(["report", str(run.report_dir / "result.json"), "--format", "markdown", "--out", str(tmp_path)])
    assert report.code == 0, report.stderr
    markdown = (tmp_path / "summary.md").read_text(encoding="utf-8")
    assert "PWNED" in markdown  # the payload is in the summary ...
    rendered = MarkdownIt("commonmark", {"html": True}).render(markdown)
    assert "<script" not in rendered.lower() and not re.search(r"<img[^>]+onerror", rendered, re.IGNORECASE)
    page = tmp_path / "summary.html"
    page.write_text(f"<!doctype html><html><head><title>summary</title></head><body>{rendered}</body></html>",
                    encoding="utf-8")
    assert_inert(page)
    assert "<script>document.title='PWNED'" in visit(page).text  # ... and shows as text


def test_injected_names_stay_text_in_the_class_dashboard(docker_client, hostile_dir, tmp_path):
    """A roster whose student name and repo carry payloads, graded by `batch`: the dashboard runs nothing."""
    case = cases()["injection"]
    hostile_path = make(case, tmp_path / "repos")  # its folder name is a payload: batch refuses the line ...
    case.folder = "injection-batch"
    repo = make(case, tmp_path / "repos")
    roster = tmp_path / "roster.yaml"
    roster.write_text(yaml.safe_dump([{"id": "mallory", "name": f"Mallory {INJECTION}", "repo": str(repo)},
                                      {"id": "trudy", "name": "Trudy", "repo": str(hostile_path)}], width=1000))
    out = tmp_path / "class"
    run = run_cli(["batch", str(roster), "--jobs", "1", "--out", str(out), "--max-examples", "2", "--plain"],
                  timeout=300)
    assert run.code in (0, 1), run.stderr[-2000:]
    run_ids = {m for log in out.rglob("grade.log") for m in RUN_ID_IN_LOG.findall(log.read_text())}
    assert run_ids and all(leftovers(docker_client, rid) == [] for rid in run_ids)
    dashboard = out / "index.html"
    html = dashboard.read_text(encoding="utf-8")
    assert "Mallory &lt;script&gt;" in html and "<script>document" not in html
    assert "inj&lt;img src=x onerror=alert(1)&gt;" in html  # ... and the dashboard lists the refusal, as text
    assert_inert(dashboard)
    for scorecard in out.rglob("scorecard.html"):
        assert_inert(scorecard)
    shutil.rmtree(out / "mallory", ignore_errors=True)


@pytest.mark.case("injection")
def test_injected_text_is_plain_data_in_result_json(graded):
    run = graded["injection"]
    data = json.loads((run.report_dir / "result.json").read_text())
    assert data["source"]["repo"].endswith(INJECTION_NAME)  # kept verbatim: JSON is data, not markup
    assert any(sign in json.dumps(data) for sign in PAYLOAD_SIGNS)
