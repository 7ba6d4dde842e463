"""The README's quick start, as a user runs it: a fresh virtual environment, a plain (non-editable) install of
this repository, then the grade of the bundled sample. A built wheel must carry its rubrics and templates, and
the command must work from outside the source tree's import path."""

from __future__ import annotations

import json
import os
import re
import subprocess
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.docker


def _quick_start_commands() -> tuple[str, str]:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("\n## Quick start\n"):readme.index("\n## Developing the grader\n")]
    grade = re.search(r"^(portfolio-grader grade \S+ --tier \w+)\s*$", section, re.MULTILINE)
    assert "python3 -m venv .venv && .venv/bin/pip install ." in section and grade
    return ".venv/bin/pip install .", grade.group(1)


def test_the_readme_quick_start_works_in_a_fresh_virtual_environment(docker_client, tmp_path):
    install, grade = _quick_start_commands()
    env_dir = tmp_path / ".venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    bin_dir = env_dir / ("Scripts" if os.name == "nt" else "bin")
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    clean["PATH"] = f"{bin_dir}{os.pathsep}{clean.get('PATH', '')}"
    installed = subprocess.run([str(bin_dir / "pip"), "install", "-q", "--disable-pip-version-check", str(ROOT)],
                               capture_output=True, text=True, env=clean, timeout=900)
    assert installed.returncode == 0, installed.stderr[-2000:]
    assert install.endswith("pip install .")  # the README's own install: this repository, not editable

    where = subprocess.run([str(bin_dir / "python"), "-c", "import portfolio_grader, sys; print(portfolio_grader.__file__)"],
                           capture_output=True, text=True, env=clean, cwd=tmp_path)
    assert str(env_dir) in where.stdout, where  # the installed copy, not the source tree
    rubrics = subprocess.run([str(bin_dir / "portfolio-grader"), "rubrics"], capture_output=True, text=True,
                             env=clean, cwd=tmp_path)
    assert rubrics.returncode == 0 and all(t in rubrics.stdout for t in ("beginner", "intermediate", "advanced",
                                                                          "capstone")), rubrics

    out = tmp_path / "reports"
    argv = [str(bin_dir / "portfolio-grader"), *grade.split()[1:], "--out", str(out), "--format", "json", "-q"]
    graded = subprocess.run(argv, capture_output=True, text=True, env=clean, cwd=ROOT, timeout=900)
    assert graded.returncode == 0, (graded.stdout[-1500:], graded.stderr[-1500:])
    summary = json.loads(graded.stdout)
    assert summary["verdict"] and summary["score"] > 0, summary
    assert (out / "beginner-bookshelf-fastapi" / "scorecard.html").is_file()
