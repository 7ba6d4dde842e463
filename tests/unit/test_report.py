"""The report stage: result.json (the contract), scorecard.html (escaped, script-free) and the terminal summary."""

from __future__ import annotations

import io
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from rich.console import Console

from portfolio_grader.models import CriterionResult, RubricRef, Scorecard, Source
from portfolio_grader.report import load_scorecard, print_summary, render_html, write_reports
from portfolio_grader.report.html import CSP, TEMPLATE, environment
from portfolio_grader.report.terminal import default_console

from .scorecard_fixture import HOSTILE, IMG, SCRIPT, hostile_scorecard, sample_scorecard

RESOURCE_ATTRS = {"src", "href", "srcset", "action", "formaction", "data", "poster", "background", "xlink:href",
                  "ping", "manifest", "codebase", "cite", "longdesc", "lowsrc", "dynsrc"}


class Document(HTMLParser):
    """Elements, attributes, text (entities decoded) and stylesheet text of a page."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.texts: list[str] = []
        self.styles: list[str] = []
        self._in_style = False
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))
        self._in_style = tag == "style"

    def handle_startendtag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))

    def handle_endtag(self, tag):
        if tag == "style":
            self._in_style = False

    def handle_data(self, data):
        (self.styles if self._in_style else self.texts).append(data)

    @property
    def text(self) -> str:
        return "".join(self.texts)

    def tags(self, name: str) -> list[dict[str, str | None]]:
        return [attrs for tag, attrs in self.elements if tag == name]


def all_evidence(sc: Scorecard):
    for finding in sc.findings:
        yield from finding.evidence
    for check in sc.checks:
        yield from check.evidence


@pytest.fixture(scope="module")
def sample() -> Scorecard:
    return sample_scorecard()


@pytest.fixture(scope="module")
def page(sample) -> str:
    return render_html(sample)


@pytest.fixture(scope="module")
def doc(page) -> Document:
    return Document(page)


# ---------------------------------------------------------------- files and the JSON contract


def test_write_reports_writes_json_and_html_atomically(tmp_path, sample):
    out = tmp_path / "reports" / "task-api"
    paths = write_reports(sample, out)
    assert paths == {"json": out / "result.json", "html": out / "scorecard.html"}
    assert sorted(p.name for p in out.iterdir()) == ["result.json", "scorecard.html"]  # no temp files left
    assert paths["json"].read_text(encoding="utf-8").strip() == sample.model_dump_json(indent=2)
    assert paths["html"].read_text(encoding="utf-8") == render_html(sample)

    changed = sample_scorecard(score=61, name="renamed")
    write_reports(changed, out)  # replaces the previous files
    assert load_scorecard(paths["json"]).name == "renamed"
    assert sorted(p.name for p in out.iterdir()) == ["result.json", "scorecard.html"]


def test_result_json_round_trips(tmp_path, sample):
    paths = write_reports(sample, tmp_path)
    assert load_scorecard(paths["json"]) == sample
    assert load_scorecard(tmp_path) == sample  # a report folder works too
    assert render_html(load_scorecard(paths["json"])) == render_html(sample)  # re-render from JSON


def test_result_json_has_the_contract_keys(tmp_path, sample):
    data = json.loads(write_reports(sample, tmp_path)["json"].read_text(encoding="utf-8"))
    for key in ("schema_version", "grader_version", "rubric", "source", "tier", "score", "passed", "criteria",
                "findings", "stages"):
        assert key in data, key
    assert set(data["rubric"]) >= {"name", "version"}
    assert set(data["source"]) >= {"repo", "ref", "commit"}
    assert data["criteria"] and data["findings"] and data["stages"]
    for criterion in data["criteria"]:
        assert set(criterion) >= {"id", "title", "status", "points", "max_points", "finding_ids"}
    for finding in data["findings"]:
        assert set(finding) >= {"id", "check", "kind", "severity", "message", "evidence", "hint"}
        for evidence in finding["evidence"]:
            assert set(evidence) >= {"request", "response", "curl"}
            assert set(evidence["request"]) >= {"method", "url", "headers", "body"}
            assert set(evidence["response"]) >= {"status", "headers", "body"}
    for stage in data["stages"]:
        assert set(stage) >= {"name", "status", "seconds"}
    assert {c["status"] for c in data["criteria"]} == {"pass", "fail", "partial", "not_evaluated"}


def test_write_reports_keeps_json_when_html_fails(tmp_path, sample, monkeypatch):
    import portfolio_grader.report as report

    def broken(_):
        raise RuntimeError("template bug")

    monkeypatch.setattr(report, "render_html", broken)
    with pytest.raises(RuntimeError):
        report.write_reports(sample, tmp_path)
    assert load_scorecard(tmp_path / "result.json") == sample
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.json"]


# ---------------------------------------------------------------- what the HTML shows


def test_html_shows_score_verdict_and_header(page, doc, sample):
    text = doc.text
    assert "60/100" in text
    assert "NOT PASSED: BELOW THE PASS MARK AND A GATE IS NOT MET" in text and "✓ PASSED" not in text
    assert "Pass mark 70 · score 10 below" in text
    assert "Gates not met" in text
    assert sample.rubric.name in text and f"version {sample.rubric.version}" in text
    assert "3f9c2e1" in text and sample.source.repo in text and sample.source.ref in text
    assert "2025-03-14 10:23:05" in text
    assert "portfolio-grader 0.1.0" in text
    title = re.search(r"<title>(.*?)</title>", page, re.S).group(1)
    assert "alice-dev/task-api" in title and "60/100" in title and "not passed: below the pass mark" in title


def test_html_passed_verdict():
    sc = sample_scorecard(score=93, passed=True, gates_met=True)
    text = Document(render_html(sc)).text
    assert "✓ PASSED" in text and "NOT PASSED" not in text
    assert "93" in text and "Gates met" in text


def test_html_lists_every_criterion_fix_and_curl(doc, sample):
    text = doc.text
    for criterion in sample.criteria:
        assert criterion.title in text
    for fix in sample.top_fixes:
        assert fix.title in text and fix.hint in text
    curls = list(all_evidence(sample))
    assert len(curls) >= 10
    for evidence in curls:
        assert evidence.curl in text  # html-unescaped, byte for byte
        assert evidence.request.url in text
    curl_blocks = [attrs for tag, attrs in doc.elements if tag == "pre" and "curl" in (attrs.get("class") or "")]
    assert len(curl_blocks) == len(curls)


def test_html_shows_findings_with_their_evidence(doc, sample):
    text = doc.text
    for finding in sample.findings:
        assert finding.message in text and finding.hint in text and finding.kind in text
        for evidence in finding.evidence:
            if evidence.response.body:
                assert evidence.response.body in text
            if evidence.note:
                assert evidence.note in text
    assert "HTTP 500" in text and "Content-Type: text/html; charset=utf-8" in text
    assert "CRITICAL" in text and "OWASP API1:2023" in text and "Gate" in text


def test_html_shows_status_as_text_not_only_colour(doc):
    text = doc.text
    for label in ("Pass", "Partial", "Fail", "Not evaluated"):
        assert label in text


def test_html_explains_not_evaluated_with_manifest_lines(doc, sample):
    text = doc.text
    criterion = next(c for c in sample.criteria if c.status == "not_evaluated")
    check = next(c for c in sample.checks if c.status == "not_evaluated")
    assert criterion.reason.replace("`", "") in text  # `resources` is shown as code, without the backticks
    assert check.reason in text
    assert check.manifest_hint in text
    assert "portfolio-grader.yaml" in text


def test_html_shows_runtime_builder_logs_stages_and_surface(doc, sample):
    text = doc.text
    assert "docker buildx 0.17.1 (BuildKit)" in text and "Builder" in text
    assert "compose" in text and "stopped: it ran during the grade" in text and sample.runtime["base_url"] in text
    for log in sample.logs:
        assert log.text in text
    for stage in sample.stages:
        assert stage.name in text
    assert "48.3 s" in text and "4 ms" in text
    assert "served at /openapi.json" in text and "3.1.0" in text and "/api/v1/projects" in text
    assert "docker-compose.yml" in text and "fastapi" in text
    for note in sample.notes:
        assert note in text
    assert f"schema {sample.schema_version}" in text
    assert "every curl line above" in text


def test_details_are_closed_by_default(doc):
    details = doc.tags("details")
    assert details and all("open" not in attrs for attrs in details)


def test_html_renders_a_minimal_scorecard():
    """A grade that never got far (no runtime, no checks, dangling references) still renders."""
    sc = Scorecard(
        grader_version="0.1.0", rubric=RubricRef(name="beginner", version="1"), source=Source(url="https://x.test"),
        name="live-only", tier="beginner", score=0, pass_mark=60, passed=False, gates_met=False,
        criteria=[CriterionResult(id="c1", title="Dangling", area="misc", status="fail", points=0, max_points=10,
                                  finding_ids=["F404"], checks=["nope"])],
        findings=[], stages=[],
    )
    text = Document(render_html(sc)).text
    assert "Dangling" in text and "F404" in text and "nope" in text
    assert "not recorded" in text  # the builder is stated even when unknown
    assert "No logs were captured." in text and "No stage timings were recorded." in text


def test_html_says_when_the_api_did_not_run():
    sc = sample_scorecard(runtime={"kind": "docker", "builder": "docker build (legacy builder)",
                                   "status": "build_failed", "detail": "pip install failed: no matching psycopg2"})
    text = Document(render_html(sc)).text
    assert "The API did not run (build failed)" in text
    assert "pip install failed: no matching psycopg2" in text and "docker build (legacy builder)" in text


# ---------------------------------------------------------------- safety of the HTML


def test_html_has_csp_viewport_and_no_javascript(page, doc):
    assert '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; ' \
           "style-src 'unsafe-inline'; img-src data:\">" in page
    csp = [a for a in doc.tags("meta") if (a.get("http-equiv") or "").lower() == "content-security-policy"]
    assert [a["content"] for a in csp] == [CSP]
    assert page.index("Content-Security-Policy") < page.index("<style>")
    assert any((a.get("name") == "viewport") for a in doc.tags("meta"))
    assert "@media print" in "".join(doc.styles)
    assert_no_active_content(doc)


def test_html_references_nothing_external(page, doc):
    assert_no_external_resources(doc)
    for attrs in (a for _, a in doc.elements):
        for name, value in attrs.items():
            assert "http://" not in (value or "") and "https://" not in (value or ""), (name, value)
    assert [tag for tag, _ in doc.elements].count("style") == 1


def test_hostile_submission_text_is_only_ever_text():
    sc = hostile_scorecard()
    page = render_html(sc)
    doc = Document(page)
    assert_no_active_content(doc)
    assert_no_external_resources(doc)
    lowered = page.lower()
    assert "<script" not in lowered and "<img" not in lowered
    assert "javascript:" not in " ".join(str(v) for _, a in doc.elements for v in a.values()
                                         if v and not v.startswith("#"))
    text = doc.text
    # the literal text is there, decoded, for the reader to see
    assert SCRIPT in text and IMG in text
    assert sc.findings[0].message in text  # finding message
    ev = sc.findings[0].evidence[0]
    assert ev.response.body in text  # response body
    assert f"X-Evil: {HOSTILE}" in text  # response header value
    assert f"{IMG}: header-name" in text  # response header name
    assert f"X-Probe: {HOSTILE}" in text  # request header
    assert ev.curl in text and ev.note in text
    assert sc.logs[0].text in text  # log with a </pre><script> break-out attempt
    assert sc.notes[0] in text and sc.runtime["builder"] in text
    assert "resources: [" + HOSTILE + "]" in text  # manifest hint
    assert sc.name in text


def assert_no_active_content(doc: Document) -> None:
    tags = {tag for tag, _ in doc.elements}
    assert not tags & {"script", "img", "iframe", "object", "embed", "frame", "form", "base", "svg", "math",
                       "video", "audio", "source", "input", "button", "textarea"}, tags
    for tag, attrs in doc.elements:
        for name in attrs:
            assert not name.lower().startswith("on"), (tag, name)
    style = "".join(doc.styles).lower()
    assert "url(" not in style and "@import" not in style and "expression(" not in style


def assert_no_external_resources(doc: Document) -> None:
    for tag, attrs in doc.elements:
        for name, value in attrs.items():
            if name.lower() in RESOURCE_ATTRS:
                assert value is not None and (value.startswith("#") or value.startswith("data:")), (tag, name, value)
        if tag == "link":
            assert attrs.get("rel") == "icon" and attrs.get("href") == "data:,", attrs
        if tag == "meta" and (attrs.get("http-equiv") or "").lower() == "refresh":
            raise AssertionError("meta refresh")


def test_template_is_always_autoescaped_and_never_marks_data_safe():
    env = environment()
    assert env.autoescape is True or (callable(env.autoescape) and env.autoescape(TEMPLATE))
    source = env.loader.get_source(env, TEMPLATE)[0]
    compact = source.replace(" ", "")
    assert "|safe" not in compact and "autoescapefalse" not in compact.lower() and "Markup" not in source
    assert "<script" not in source.lower()


# ---------------------------------------------------------------- terminal summary


def test_print_summary_shows_score_verdict_and_top_three_fixes(sample):
    console = Console(record=True, width=100)
    paths = {"json": Path("reports/task-api/result.json"), "html": Path("reports/task-api/scorecard.html")}
    print_summary(sample, console=console, paths=paths)
    out = console.export_text()
    assert "alice-dev/task-api" in out
    assert "60/100" in out and "pass mark 70" in out and "NOT PASSED: BELOW THE PASS MARK AND A GATE IS NOT MET" in out
    assert "not met" in out
    assert "intermediate 2025.1" in out
    for fix in sample.top_fixes[:3]:
        assert fix.title in out
        assert f"+{fix.points:g} pts" in out
    assert sample.top_fixes[3].title not in out  # three fixes, no more
    assert "8 passed" in out and "2 partial" in out and "3 failed" in out and "1 not evaluated" in out
    assert "reports/task-api/scorecard.html" in out and "reports/task-api/result.json" in out
    assert "docker buildx 0.17.1 (BuildKit)" in out


def test_print_summary_passed():
    console = Console(record=True, width=100)
    print_summary(sample_scorecard(score=93, passed=True, gates_met=True, top_fixes=[]), console=console)
    out = console.export_text()
    assert "93/100" in out and "PASSED" in out and "NOT PASSED" not in out and "Nothing to fix" in out


def test_print_summary_escapes_markup_and_control_characters():
    console = Console(record=True, width=100, force_terminal=True)
    print_summary(hostile_scorecard(), console=console)
    out = console.export_text()
    assert "[bold red]evil[/]" in out  # shown, not interpreted
    assert "[link=https://evil.example]x[/link]" in out
    assert "\x1b" not in out
    assert "\x1b[31mred" not in console.export_text(styles=True)


def test_print_summary_is_plain_text_when_not_a_terminal(sample):
    stream = io.StringIO()
    print_summary(sample, console=Console(file=stream, width=100))
    out = stream.getvalue()
    assert "\x1b[" not in out and "60/100" in out


def test_default_console_honours_no_color(monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    assert default_console().no_color
    monkeypatch.delenv("NO_COLOR")
    console = default_console()
    assert not console.no_color
