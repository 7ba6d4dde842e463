"""Packaging (issue 14): the bundled rubrics are real package data, the licence is declared the way setuptools wants."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_the_bundled_rubrics_are_files_in_the_package_not_a_symlink():
    folder = ROOT / "src" / "portfolio_grader" / "rubrics"
    assert not folder.is_symlink() and folder.is_dir()
    assert sorted(p.name for p in folder.glob("*.yaml")) == ["advanced.yaml", "beginner.yaml", "capstone.yaml",
                                                            "intermediate.yaml"]
    assert not any(p.is_symlink() for p in folder.iterdir())
    assert "rubrics/*.yaml" in PYPROJECT["tool"]["setuptools"]["package-data"]["portfolio_grader"]


def test_the_license_is_an_spdx_string_with_its_file():
    project = PYPROJECT["project"]
    assert project["license"] == "MIT" and project["license-files"] == ["LICENSE"]
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    setuptools = next(r for r in PYPROJECT["build-system"]["requires"] if r.startswith("setuptools"))
    assert tuple(map(int, re.search(r">=(\d+)", setuptools)[1].split("."))) >= (77,)  # PEP 639 support


def test_the_test_extras_name_every_third_party_module_the_unit_tests_import():
    extras = " ".join(PYPROJECT["project"]["optional-dependencies"]["test"] + PYPROJECT["project"]["dependencies"])
    sources = "\n".join(p.read_text() for p in (ROOT / "tests").rglob("*.py"))
    for module, package in (("cryptography", "cryptography"), ("jsonschema", "jsonschema"), ("xmlschema", "xmlschema"),
                            ("markdown_it", "markdown-it-py"), ("flask", "flask"), ("fastapi", "fastapi")):
        if re.search(rf"^\s*(from|import) {module}\b", sources, re.MULTILINE):
            assert package in extras, f"tests import {module}: add {package} to the test extras"


def _section(title: str) -> str:
    readme = (ROOT / "README.md").read_text()
    start = readme.index(f"\n## {title}\n")
    end = readme.find("\n## ", start + 1)
    return readme[start:end]


def test_the_readme_puts_the_users_quick_start_first_and_ci_runs_the_contributors_commands():
    readme = (ROOT / "README.md").read_text()
    sections = re.findall(r"^## (.+)$", readme, re.MULTILINE)
    assert sections[:2] == ["Quick start", "Developing the grader"]
    quick = _section("Quick start")
    assert "pipx install ." in quick and "python3 -m venv" in quick and 'pip install -e' not in quick
    assert "portfolio-grader grade sample_submissions/beginner-bookshelf-fastapi --tier beginner" in quick
    assert (ROOT / "sample_submissions" / "beginner-bookshelf-fastapi").is_dir()
    develop = _section("Developing the grader")
    assert 'pip install -e ".[test]"' in develop and "python -m pytest" in develop
    assert "../shared/ci/provision-docker" in develop
    ci = (ROOT / ".ci" / "run").read_text()
    assert 'pip install -q --disable-pip-version-check -e ".[test]"' in ci
    [command] = re.findall(r"^python -m pytest.*$", develop, re.MULTILINE)  # the README's test command
    assert re.search(rf"^{re.escape(command)}$", ci, re.MULTILINE), command  # run by CI as it is written
    for check in ("ruff check src tests", "mypy"):  # the code checks CI runs are the ones the README names
        assert re.search(rf"^{re.escape(check)}$", ci, re.MULTILINE) and f"`{check}`" in develop, check
