"""Grading a class for real: `portfolio-grader batch` and `merge` as separate processes, grading in Docker.

The roster: the four beginner samples as git repositories (file:// URLs), one of them submitted twice,
an unreachable repository and a malformed line. The batch runs with --jobs 3, is killed with SIGKILL
as soon as the first result.json appears, and is run again: every student ends with exactly one
result, nothing finished is graded twice, nothing is left running or on the Docker engine, and the
dashboard lists the whole class. Two shards on separate processes, merged, equal the single run.
The dashboard is then opened in headless Chromium.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.docker

SAMPLES = Path(__file__).resolve().parents[2] / "sample_submissions"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run"]
STUDENTS = {  # id -> (name, sample or None for the unreachable one)
    "s-bookshelf": ("Ada Lovelace", "beginner-bookshelf-fastapi"),
    "s-broken": ("Ben Broken", "beginner-broken-build"),
    "s-notes": ("Cy Notes", "beginner-notes-compose-postgres"),
    "s-recipes": ("Di Recipes", "beginner-recipes-flask-flawed"),
    "s-copy": ("Eve Copy", "beginner-bookshelf-fastapi"),  # the same URL as s-bookshelf
    "s-gone": ("Fin Gone", None),
}
BATCH_TIMEOUT = 900


def _git_repo(src: Path, dest: Path) -> str:
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    git = ["git", "-c", "user.name=Learner", "-c", "user.email=learner@example.com", "-c", "init.defaultBranch=main"]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "submission"], ["tag", "v1"]):
        subprocess.run(git + args, cwd=dest, check=True, capture_output=True)
    return dest.as_uri()


@pytest.fixture(scope="module")
def roster(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("class")
    urls = {name: _git_repo(SAMPLES / name, root / "repos" / name)
            for name in sorted({s for _, s in STUDENTS.values() if s})}
    lines = ["id,name,repo,ref,tier,section,email"]
    for sid, (name, sample) in STUDENTS.items():
        repo = urls[sample] if sample else (root / "repos" / "nonexistent.git").as_uri()
        ref = "v1" if sid == "s-notes" else ""
        lines.append(f"{sid},{name},{repo},{ref},beginner,{'A' if len(lines) % 2 else 'B'},{sid}@example.edu")
    lines.insert(4, "s-bad,Gil Malformed,,,beginner,A,")  # line 5: no repository
    path = root / "roster.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def _command(roster: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "portfolio_grader.cli", "batch", str(roster), "--jobs", "3", "--out", str(out),
            "--max-examples", "5", "--plain", *extra]


def _finished(out: Path) -> dict[str, str]:
    done = {}
    for folder in (out / "submissions").glob("*"):
        if list(folder.glob("report/*/result.json")):
            done[folder.name] = "result"
        elif (folder / "error.json").is_file():
            done[folder.name] = "error"
    return done


def _attempts(out: Path, sid: str) -> list[dict]:
    path = out / "submissions" / sid / "attempts.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def _live_run_ids(run_ids: set[str]) -> set[str]:
    alive = set()
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        alive |= {r for r in run_ids if f"--run-id={r}".encode() in cmdline}
    return alive


def _docker_objects(client, run_ids: set[str]) -> list[str]:
    left = []
    for run_id in run_ids:
        filters = {"label": f"portfolio-grader.run={run_id}"}
        left += [c.name for c in client.containers.list(all=True, filters=filters)]
        left += [n.name for n in client.networks.list(filters=filters)]
        left += [v.name for v in client.volumes.list(filters=filters)]
        left += [i.short_id for i in client.images.list(filters=filters)]
    return left


@pytest.fixture(scope="module")
def killed_and_resumed(docker_client, roster, tmp_path_factory):
    """Run the batch, SIGKILL it at the first result, run it again; returns what each phase saw."""
    out = tmp_path_factory.mktemp("cohort") / "cohort-7"
    log = open(out.parent / "first.log", "wb")
    first = subprocess.Popen(_command(roster, out), stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + BATCH_TIMEOUT
    while not list(out.glob("submissions/*/report/*/result.json")):
        assert first.poll() is None, (out.parent / "first.log").read_text()
        assert time.monotonic() < deadline, "no result.json appeared"
        time.sleep(0.1)
    running_at_kill = {p.parent.name for p in out.glob("submissions/*/running.json")}
    finished_before = _finished(out)
    first.send_signal(signal.SIGKILL)
    first.wait()
    log.close()

    started = time.monotonic()
    second = subprocess.run(_command(roster, out), capture_output=True, text=True, timeout=BATCH_TIMEOUT)
    resume_seconds = time.monotonic() - started
    third = subprocess.run(_command(roster, out), capture_output=True, text=True, timeout=120)
    return {"out": out, "running_at_kill": running_at_kill, "finished_before": finished_before,
            "second": second, "third": third, "resume_seconds": resume_seconds}


def test_the_kill_happened_mid_run(killed_and_resumed):
    k = killed_and_resumed
    assert k["running_at_kill"], "the batch was killed with nothing running: the test proves nothing"
    assert len(k["finished_before"]) < len(STUDENTS)


def test_resumed_batch_completes_the_class_with_nothing_lost_and_nothing_graded_twice(killed_and_resumed, docker_client):
    k = killed_and_resumed
    out = k["out"]
    second = k["second"]
    assert second.returncode == 1, second.stdout + second.stderr  # a malformed line and an unreachable repo
    assert "line 5: missing repo" in second.stderr
    finished = _finished(out)
    assert finished == {sid: ("error" if sid == "s-gone" else "result") for sid in STUDENTS}
    for sid in STUDENTS:
        folder = out / "submissions" / sid
        assert len(list(folder.glob("report/*/result.json"))) == (0 if sid == "s-gone" else 1)
        assert not (folder / "running.json").exists()
        attempts = _attempts(out, sid)
        # a grade finished before the kill is never started again; one killed mid-way starts once more
        expected = {1, 2} if sid in k["running_at_kill"] and sid not in k["finished_before"] else {1}
        assert len(attempts) in expected, (sid, attempts, k)
        starts_in_log = (folder / "grade.log").read_text().count("\n=== ")
        assert starts_in_log == len(attempts)
    error = json.loads((out / "submissions" / "s-gone" / "error.json").read_text())
    assert error["kind"] == "could_not_grade" and "could not fetch" in error["message"]
    run_ids = {a["run_id"] for sid in STUDENTS for a in _attempts(out, sid)}
    assert not _live_run_ids(run_ids), "a grade process outlived the batch"
    assert not _docker_objects(docker_client, run_ids), "Docker objects of the class were left behind"


def test_a_finished_class_is_not_graded_again(killed_and_resumed):
    k = killed_and_resumed
    third = k["third"]
    assert third.returncode == 1
    assert third.stdout.count("skipped, finished earlier") == len(STUDENTS)
    for sid in STUDENTS:
        assert len(_attempts(k["out"], sid)) <= 2


def test_the_dashboard_and_summary_list_the_whole_class(killed_and_resumed):
    out = killed_and_resumed["out"]
    summary = json.loads((out / "summary.json").read_text())
    t = summary["totals"]
    assert (t["students"], t["graded"], t["could_not_grade"], t["pending"], t["malformed_lines"]) == (6, 5, 1, 0, 1)
    rows = {r["id"]: r for r in summary["students"]}
    assert rows["s-bookshelf"]["score"] == rows["s-copy"]["score"] >= 90  # same repo, same grade
    assert rows["s-broken"]["score"] <= 30 and rows["s-broken"]["tier_reached"] is None
    assert rows["s-bookshelf"]["tier_reached"] == "beginner"
    assert {"s-bookshelf", "s-copy"} in [set(d["students"]) for d in summary["duplicates"]]
    assert rows["s-notes"]["ref"] == "v1"
    for sid, row in rows.items():
        if row["status"] == "graded":
            result = json.loads((out / row["result"]).read_text())
            assert result["score"] == row["score"] and (out / row["scorecard"]).is_file()
    page = (out / "index.html").read_text()
    for sid, (name, _) in STUDENTS.items():
        assert name in page and sid in page
    assert "line 5: missing repo" in page
    # the Canvas gradebook of the class, read back as Canvas reads it
    header, points_row, *students = list(csv.reader(io.StringIO((out / "grades.csv").read_bytes().decode(), newline="")))
    assert header[:5] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
    assert points_row[0] == "Points Possible" and float(points_row[5]) == 100
    grades = {r[2]: r[5] for r in students}
    assert set(grades) == set(STUDENTS) and grades["s-gone"] == ""
    assert all(float(grades[sid]) == rows[sid]["score"] for sid in STUDENTS if sid != "s-gone")


@pytest.fixture(scope="module")
def merged(killed_and_resumed, roster, tmp_path_factory):
    """Shards 1/2 and 2/2 as two processes at once (two runners), then `merge`."""
    root = tmp_path_factory.mktemp("shards")
    procs = [subprocess.Popen(_command(roster, root / f"shard-{k}", "--shard", f"{k}/2"), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for k in (1, 2)]
    outputs = [p.communicate(timeout=BATCH_TIMEOUT)[0] for p in procs]
    merge = subprocess.run([sys.executable, "-m", "portfolio_grader.cli", "merge", str(root / "shard-1"),
                            str(root / "shard-2"), "--out", str(root / "merged")], capture_output=True, text=True,
                           timeout=120)
    return {"root": root, "shard_outputs": outputs, "shard_codes": [p.returncode for p in procs], "merge": merge}


def test_two_shards_merged_equal_one_unsharded_run(merged, killed_and_resumed):
    root = merged["root"]
    assert merged["merge"].returncode == 0, merged["merge"].stdout + merged["merge"].stderr
    shard_ids = [set(json.loads((root / f"shard-{k}" / "batch.json").read_text())["assigned"]) for k in (1, 2)]
    assert shard_ids[0] and shard_ids[1] and not shard_ids[0] & shard_ids[1]
    assert shard_ids[0] | shard_ids[1] == set(STUDENTS)
    whole = json.loads((killed_and_resumed["out"] / "summary.json").read_text())
    combined = json.loads((root / "merged" / "summary.json").read_text())
    keys = ("status", "score", "passed", "tier_reached", "criteria", "error_kind", "duplicates")
    view = lambda s: {r["id"]: {k: r.get(k) for k in keys} for r in s["students"]}
    assert view(combined) == view(whole)
    assert combined["totals"] == whole["totals"]
    assert combined["shards"] == ["1/2", "2/2"]
    assert (root / "merged" / "grades.csv").read_bytes() == (killed_and_resumed["out"] / "grades.csv").read_bytes()


def _load_in_chromium(page_path: Path, screenshot: Path) -> dict:
    """Open the page headless; return its console errors, key numbers and text."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return _load_with_dump_dom(page_path)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type in ("error", "warning") else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("requestfailed", lambda r: errors.append(f"request failed: {r.url}"))
            response = page.goto(page_path.as_uri(), wait_until="load")
            numbers = {key: page.inner_text(f"#{key}") for key in
                       ("total-students", "total-graded", "total-passed", "total-errors", "score-mean", "score-median")}
            seen = {
                "errors": errors, "numbers": numbers, "text": page.inner_text("body"), "ok": response is None or response.ok,
                "bars": page.locator("svg.chart rect.bar").count(), "scripts": page.locator("script").count(),
                "links": page.locator("a[href$='scorecard.html']").count(),
            }
            page.screenshot(path=str(screenshot), full_page=True)
            # follow the first scorecard link: the page it points to opens without errors too
            page.locator("a[href$='scorecard.html']").first.click()
            page.wait_for_load_state("load")
            seen["scorecard_title"] = page.title()
            seen["errors_after_click"] = list(errors)
            return seen
        finally:
            browser.close()


def _load_with_dump_dom(page_path: Path) -> dict:
    """Fallback without Playwright: chromium --dump-dom, console messages from its log."""
    import re

    run = subprocess.run([CHROMIUM, "--headless", *CHROMIUM_ARGS, "--enable-logging=stderr", "--v=0",
                          "--dump-dom", page_path.as_uri()], capture_output=True, text=True, timeout=120)
    dom = run.stdout
    numbers = {key: (re.search(rf'id="{key}">([^<]*)<', dom) or [None, None])[1] for key in
               ("total-students", "total-graded", "total-passed", "total-errors", "score-mean", "score-median")}
    errors = [ln for ln in run.stderr.splitlines() if "CONSOLE" in ln or "Refused" in ln or "Uncaught" in ln]
    text = re.sub(r"<[^>]+>", " ", dom)
    return {"errors": errors, "numbers": numbers, "text": text, "ok": bool(dom), "bars": dom.count('<rect class="bar'),
            "scripts": dom.lower().count("<script"), "links": dom.count('scorecard.html"'),
            "scorecard_title": "scorecard", "errors_after_click": errors}


def test_the_dashboard_loads_in_headless_chromium_with_its_key_numbers(merged, tmp_path):
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: CI must check the dashboard in a browser (apt-get install chromium)")
        pytest.skip(f"{CHROMIUM} is not installed")
    out = merged["root"] / "merged"
    summary = json.loads((out / "summary.json").read_text())
    t = summary["totals"]
    seen = _load_in_chromium(out / "index.html", tmp_path / "dashboard.png")
    assert seen["ok"] and seen["errors"] == [], seen["errors"]
    assert seen["numbers"] == {"total-students": "6", "total-graded": "5", "total-passed": str(t["passed"]),
                               "total-errors": "1", "score-mean": f"{t['mean']:g}", "score-median": f"{t['median']:g}"}
    for sid, (name, _) in STUDENTS.items():
        assert name in seen["text"]
    assert "What to teach next week" in seen["text"] and "Shared submissions" in seen["text"]
    assert seen["bars"] == sum(1 for b in summary["distribution"] if b["count"])
    assert seen["scripts"] == 0 and seen["links"] == 5
    assert "/100" in seen["scorecard_title"] and seen["errors_after_click"] == []
    if (tmp_path / "dashboard.png").exists():
        assert (tmp_path / "dashboard.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
