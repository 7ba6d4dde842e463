"""The report stage: a Scorecard becomes result.json (the contract) and scorecard.html (for people).

`write_reports` writes both atomically; `load_scorecard` reads a result.json back so a report can be
re-rendered later (`portfolio-grader report result.json`) without grading again. `render` and
`write_format` turn the same Scorecard into every other format (Markdown, JUnit, SARIF, Gradescope).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ..models import Scorecard
from .html import render_html
from .terminal import print_summary

__all__ = ["FORMATS", "load_scorecard", "print_summary", "render", "render_html", "write_format", "write_reports",
           "write_text_atomic"]

RESULT_JSON = "result.json"
SCORECARD_HTML = "scorecard.html"


def write_text_atomic(path: Path, text: str) -> Path:
    """Write `text` to `path` so a reader sees the old file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def write_reports(scorecard: Scorecard, out_dir: Path) -> dict[str, Path]:
    """Write out_dir/result.json and out_dir/scorecard.html; returns {"json": path, "html": path}.

    The JSON is rendered and written first, so a failure in the HTML template never costs the result.
    """
    out_dir = Path(out_dir)
    json_path = write_text_atomic(out_dir / RESULT_JSON, scorecard.model_dump_json(indent=2) + "\n")
    html_path = write_text_atomic(out_dir / SCORECARD_HTML, render_html(scorecard))
    return {"json": json_path, "html": html_path}


def load_scorecard(path: Path | str) -> Scorecard:
    """Read a result.json (or a report folder holding one) back into a Scorecard."""
    path = Path(path)
    if path.is_dir():
        path = path / RESULT_JSON
    return Scorecard.model_validate_json(path.read_bytes())


# ---------------------------------------------------------------- other formats, all from the same Scorecard

FORMATS = {  # format -> the file it is written to
    "html": SCORECARD_HTML,
    "json": RESULT_JSON,
    "markdown": "summary.md",  # the PR comment and the job summary
    "junit": "junit.xml",
    "sarif": "results.sarif",
    "gradescope": "results.json",  # the name Gradescope's autograder harness reads
}


def render(scorecard: Scorecard, fmt: str) -> str:
    """The scorecard as text in one of FORMATS."""
    if fmt == "html":
        return render_html(scorecard)
    if fmt == "json":
        return scorecard.model_dump_json(indent=2) + "\n"
    if fmt == "markdown":
        from .markdown import render_markdown

        return render_markdown(scorecard)
    if fmt == "junit":
        from .junit import render_junit

        return render_junit(scorecard)
    if fmt == "sarif":
        from .sarif import render_sarif

        return render_sarif(scorecard)
    if fmt == "gradescope":
        from .gradescope import render_gradescope

        return render_gradescope(scorecard)
    raise ValueError(f"unknown report format {fmt!r}: use one of {', '.join(FORMATS)}")


def write_format(scorecard: Scorecard, fmt: str, out_dir: Path) -> Path:
    """Render one format and write it atomically to out_dir/FORMATS[fmt]."""
    text = render(scorecard, fmt)
    return write_text_atomic(Path(out_dir) / FORMATS[fmt], text)
