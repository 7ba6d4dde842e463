"""The class job summary `batch` and `merge` append to $GITHUB_STEP_SUMMARY: read back as GitHub renders it."""

from __future__ import annotations

from markdown_it import MarkdownIt

from portfolio_grader.batch.job_summary import class_summary_markdown, write_job_summary
from portfolio_grader.batch.summary import build_summary

from .test_batch_units import ROSTER, _batch_folder, _grades


def _summary(tmp_path):
    out = tmp_path / "out"
    _batch_folder(out, ROSTER, _grades(), {"u4": "could not fetch file:///nonexistent"})
    return build_summary(out)


def test_the_job_summary_has_the_totals_and_what_to_teach_without_any_student(tmp_path):
    summary = _summary(tmp_path)
    text = class_summary_markdown(summary)
    assert text.startswith("## API project: 3 of 5 graded, 1 passed\n")
    assert "mean 48.6, median 42, lowest 12.25, highest 91.5" in text
    assert "1 could not be graded, 1 not graded yet, 1 roster lines malformed" in text
    top = summary["common_failures"][0]
    rendered = MarkdownIt("commonmark", {"html": True}).enable("table").render(text)
    assert "<table>" in rendered and f"<td>{top['title']}</td>" in rendered
    assert f'<td style="text-align:right">{top["students"]}</td>' in rendered
    for student in summary["students"]:  # names, e-mails and repositories stay in the private artifact
        for value in (student["name"], student["email"], student["repo"]):
            assert not value or value not in text, value
    assert "<script" not in rendered and "HYPERLINK" not in text


def test_it_is_appended_only_inside_github_actions(tmp_path):
    summary = _summary(tmp_path)
    assert write_job_summary(summary, env={}) is False
    target = tmp_path / "step-summary.md"
    target.write_text("## an earlier step\n")
    assert write_job_summary(summary, env={"GITHUB_STEP_SUMMARY": str(target)}) is True
    written = target.read_text()
    assert written.startswith("## an earlier step\n## API project:") and written.endswith("`classroom.csv`).\n")


def test_merge_writes_the_class_job_summary_in_github_actions(tmp_path, monkeypatch):
    from portfolio_grader.cli import main

    out = tmp_path / "shard-1"
    _batch_folder(out, ROSTER, _grades(), {"u4": "could not fetch file:///nonexistent"})
    target = tmp_path / "step-summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(target))
    main(["merge", str(out), "--out", str(tmp_path / "class")])
    assert target.read_text().startswith("## API project: 3 of 5 graded, 1 passed\n")
