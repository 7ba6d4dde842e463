"""Grading a class without Docker: roster parsing (malformed lines keep their line numbers), shard
assignment, the Canvas and GitHub Classroom CSVs read back as those tools read them, the summary and
dashboard of a batch folder, merging shard folders, and stopping a killed batch's orphaned grade."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from portfolio_grader.batch import load_roster, merge, parse_shard, shard
from portfolio_grader.batch.dashboard import render_dashboard
from portfolio_grader.batch.gradebook import CANVAS_IDENTITY, CLASSROOM_COLUMNS, canvas_csv, classroom_csv
from portfolio_grader.batch.merge import MergeError
from portfolio_grader.batch.outputs import Outputs, write_batch_meta
from portfolio_grader.batch.roster import RosterError, student_folder
from portfolio_grader.batch.runner import reap
from portfolio_grader.batch.store import ERROR_JSON, REPORT_DIR, RUNNING_JSON, STUDENT_JSON, submission, write_json
from portfolio_grader.batch.summary import build_summary, normalize_repo
from portfolio_grader.cli import main
from portfolio_grader.models import CriterionResult
from portfolio_grader.report import write_reports

from .scorecard_fixture import HOSTILE, SCRIPT, sample_scorecard

TIERS = ["beginner", "intermediate"]


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------- roster


def test_csv_roster_reads_aliases_bom_comments_and_quoted_commas(tmp_path):
    roster = load_roster(write(tmp_path / "r.csv", "\ufeff# cohort 7\nStudent ID,Student Name,Repo URL,Branch,Tier,Section,E-mail\n"
                                                   's1,"Doe, Jane",https://github.com/jane/api.git,main,beginner,A,j@x.edu\n'
                                                   "\n"
                                                   "s2,Bob,git@github.com:bob/api.git,,,B,\n"), TIERS)
    assert roster.problems == []
    jane, bob = roster.students
    assert (jane.id, jane.name, jane.repo, jane.ref, jane.tier, jane.section, jane.email, jane.line) == (
        "s1", "Doe, Jane", "https://github.com/jane/api.git", "main", "beginner", "A", "j@x.edu", 3)
    assert (bob.ref, bob.tier, bob.line) == (None, None, 5)


def test_malformed_csv_lines_are_reported_with_their_line_numbers_and_the_rest_still_loads(tmp_path):
    text = ("id,name,repo,ref,tier\n"                                  # 1
            "ok1,Ann,https://github.com/ann/api,,\n"                    # 2
            "bad1,Ben,,,\n"                                             # 3: no repo
            "bad2,Cid,https://github.com/c/api,main,wizard\n"           # 4: unknown tier
            "bad3,Dee,https://github.com/d/api,main,beginner,extra\n"   # 5: too many fields
            'ok2,"Eve\nSecond line",https://github.com/e/api,,\n'       # 6-7: a quoted newline
            "ok1,Ann again,https://github.com/x/api,,\n"                # 8: id seen on line 2
            "bad4,Fay,https://github.com/f/api,--upload-pack=touch /tmp/x,\n"  # 9: option-like ref
            "bad5,Gus,-oProxyCommand=x,,\n"                             # 10: option-like repo
            ",Hal,https://github.com/h/api,,\n"                         # 11: no id
            "ok3,Ivy,https://github.com/i/api,v1.2,intermediate\n")     # 12
    roster = load_roster(write(tmp_path / "r.csv", text), TIERS)
    assert [s.id for s in roster.students] == ["ok1", "ok2", "ok3"]
    assert [s.line for s in roster.students] == [2, 6, 12]
    assert roster.students[1].name == "Eve Second line"
    problems = {p.line: p.message for p in roster.problems}
    assert sorted(problems) == [3, 4, 5, 8, 9, 10, 11]
    assert "missing repo" in problems[3]
    assert "unknown tier 'wizard'" in problems[4]
    assert "6 fields but the header has 5" in problems[5]
    assert "already appears on line 2" in problems[8]
    assert "ref" in problems[9] and "repo" in problems[10] and "missing id" in problems[11]
    assert str(roster.problems[0]).startswith("line 3: ")


def test_yaml_roster_keeps_line_numbers_of_entries_and_of_malformed_ones(tmp_path):
    text = ("students:\n"                                 # 1
            "  - id: y1\n"                                # 2
            "    name: Ann\n"
            "    repo: https://github.com/ann/api\n"
            "    tier: intermediate\n"
            "  - just a string\n"                         # 6
            "  - id: y2\n"                                # 7
            "    name: Ben\n"                             # (no repo)
            "  - {id: y3, name: Cid, repo: 'file:///srv/c.git', ref: v2, section: B}\n")  # 9
    roster = load_roster(write(tmp_path / "r.yaml", text), TIERS)
    assert [(s.id, s.line) for s in roster.students] == [("y1", 2), ("y3", 9)]
    assert [(p.line, p.message) for p in roster.problems] == [
        (6, "a student entry must be a mapping (id: ..., repo: ...)"), (7, "missing repo")]
    assert roster.students[1].ref == "v2" and roster.students[1].section == "B"


def test_a_relative_rubric_path_and_a_relative_folder_resolve_next_to_the_roster(tmp_path):
    (tmp_path / "rubrics").mkdir()
    write(tmp_path / "rubrics" / "ours.yaml", "name: ours\n")
    (tmp_path / "subs" / "ann").mkdir(parents=True)
    roster = load_roster(write(tmp_path / "r.csv", "id,name,repo,tier\na,Ann,subs/ann,rubrics/ours.yaml\n"), TIERS)
    assert roster.students[0].tier == str((tmp_path / "rubrics" / "ours.yaml").resolve())
    assert roster.students[0].repo == str((tmp_path / "subs" / "ann").resolve())


@pytest.mark.parametrize("name, text, message", [
    ("r.csv", "name,repo\nAnn,https://x/y\n", "no id column"),
    ("r.csv", "# only a comment\n\n", "empty"),
    ("r.yaml", "students: [\n", "not valid YAML"),
    ("r.yaml", "students: 3\n", "expected a list"),
])
def test_an_unreadable_roster_is_one_error(tmp_path, name, text, message):
    with pytest.raises(RosterError, match=message):
        load_roster(write(tmp_path / name, text), TIERS)


def test_student_folders_are_safe_and_distinct():
    ids = ["s1", "../../etc", "Ann Lee", "ann lee", "ann-lee", "名前", "a/b", "A1"]
    folders = [student_folder(i) for i in ids]
    assert len(set(folders)) == len(ids)
    assert folders[0] == "s1"
    for folder in folders:
        assert "/" not in folder and not folder.startswith(".") and folder.isascii()


# ---------------------------------------------------------------- shards


def _students(n: int, tmp_path: Path):
    lines = "".join(f"st{i:03d},Name {i},https://github.com/u{i}/api\n" for i in range(n))
    return load_roster(write(tmp_path / "r.csv", "id,name,repo\n" + lines), TIERS).students


def test_shards_partition_the_roster_evenly_and_deterministically(tmp_path):
    students = _students(23, tmp_path)
    shards = [shard(students, k, 4) for k in range(1, 5)]
    ids = [[s.id for s in part] for part in shards]
    assert sorted(i for part in ids for i in part) == sorted(s.id for s in students)  # every student once
    assert sorted(len(part) for part in ids) == [5, 6, 6, 6]
    # the same roster in another order, read on another machine: the same shards
    assert [[s.id for s in shard(list(reversed(students)), k, 4)] for k in range(1, 5)] == [sorted(p, reverse=True) for p in ids]
    assert shard(students, 1, 1) == students


@pytest.mark.parametrize("text", ["0/3", "4/3", "2", "a/b", "1/0", ""])
def test_bad_shard_specs_are_refused(text):
    with pytest.raises(ValueError):
        parse_shard(text)
    assert parse_shard(" 2 / 5 ") == (2, 5)


# ---------------------------------------------------------------- a batch folder without Docker


def _batch_folder(out: Path, roster_text: str, grades: dict[str, dict], errors: dict[str, str] | None = None,
                  shard_spec: str | None = None, tmp: Path | None = None):
    """A batch folder as `batch` leaves it: batch.json, results for `grades`, error.json for `errors`."""
    roster = load_roster(write((tmp or out.parent) / "roster.csv", roster_text), TIERS)
    assigned = roster.students if shard_spec is None else shard(roster.students, *parse_shard(shard_spec))
    write_batch_meta(out, roster, assigned, shard_spec, {"tier": "intermediate", "assignment": "API project",
                                                         "points_possible": 20})
    for student in assigned:
        sub = submission(out, student.folder)
        if student.id in grades:
            write_json(sub.folder / STUDENT_JSON, {"student": student.to_json(), "spec": student.spec("intermediate")})
            write_reports(sample_scorecard(**grades[student.id]), sub.folder / REPORT_DIR / "task-api")
        elif errors and student.id in errors:
            write_json(sub.folder / ERROR_JSON, {"kind": "could_not_grade", "message": errors[student.id]})
    return roster


ROSTER = ("id,name,repo,section,email,canvas_id\n"
          "u1,\"Doe, Jane\",https://github.com/jane/task-api,A,jane@x.edu,101\n"
          "u2,Bob \"the builder\",https://github.com/Jane/task-api.git/,B,bob@x.edu,102\n"
          "u3,=HYPERLINK(\"http://evil\"),https://github.com/eve/api,A,,\n"
          "u4,Dan,file:///nonexistent,B,,\n"
          "u5,Pending Pat,https://github.com/pat/api,A,,\n"
          "broken line with no commas\n")


def _grades():
    failing = sample_scorecard()  # intermediate, below the pass mark, criteria in every status
    criteria = [c.model_copy(update={"status": "pass", "points": c.max_points}) for c in failing.criteria]
    return {
        "u1": {"score": 91.5, "passed": True, "gates_met": True, "criteria": criteria,
               "source": failing.source.model_copy(update={"commit": "c" * 40})},
        "u2": {"score": 42.0},
        "u3": {"score": 12.25, "source": failing.source.model_copy(update={"commit": "d" * 40})},
    }


def test_summary_counts_distribution_common_failures_and_duplicates(tmp_path):
    out = tmp_path / "out"
    _batch_folder(out, ROSTER, _grades(), {"u4": "could not fetch file:///nonexistent"})
    summary = build_summary(out)
    t = summary["totals"]
    assert (t["students"], t["graded"], t["passed"], t["could_not_grade"], t["pending"], t["malformed_lines"]) == (5, 3, 1, 1, 1, 1)
    assert t["mean"] == round((91.5 + 42.0 + 12.25) / 3, 1) and t["median"] == 42.0
    assert [b["count"] for b in summary["distribution"]] == [0, 1, 0, 0, 1, 0, 0, 0, 0, 1]
    rows = {r["id"]: r for r in summary["students"]}
    assert rows["u4"]["status"] == "error" and "could not fetch" in rows["u4"]["error"]
    assert rows["u5"]["status"] == "pending"
    assert rows["u1"]["scorecard"] == "submissions/u1/report/task-api/scorecard.html"
    # the two spellings of github.com/jane/task-api are one repository: flagged both ways
    assert summary["duplicates"][0]["reason"] == "same repository" and set(summary["duplicates"][0]["students"]) == {"u1", "u2"}
    assert rows["u1"]["duplicates"] == ["u2"] and rows["u3"]["duplicates"] == []
    # what to teach: criteria missed by both failing students come first, counted per student
    failing = [c for c in sample_scorecard().criteria if c.status in ("fail", "partial")]
    top = summary["common_failures"][0]
    assert top["students"] == 2 and top["criterion"] in {c.id for c in failing} and top["hint"]
    assert {f["criterion"] for f in summary["common_failures"]} == {c.id for c in failing}
    assert summary["roster"]["problems"] == [{"line": 7, "message": "missing name, repo"}]


def test_tier_reached_follows_the_ladder(tmp_path):
    from portfolio_grader.batch.summary import tier_reached

    assert tier_reached({"ladder": [{"tier": "beginner", "status": "reached"}, {"tier": "intermediate", "status": "missed"}],
                         "tier": "intermediate", "passed": False}) == "beginner"
    assert tier_reached({"ladder": [{"tier": "beginner", "status": "missed"}], "tier": "beginner"}) is None
    assert tier_reached({"tier": "beginner", "passed": True}) == "beginner"


def test_canvas_csv_reads_back_as_canvas_reads_it(tmp_path):
    """Canvas' gradebook importer: a header row with the identity columns then one per assignment, a row
    whose first cell is "Points Possible", then one row per student matched by ID / SIS User ID / SIS Login ID."""
    out = tmp_path / "out"
    _batch_folder(out, ROSTER, _grades(), {"u4": "could not fetch"})
    Outputs(out).write()
    text = (out / "grades.csv").read_bytes().decode("utf-8")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    header, points_row, *students = rows
    assert header[:5] == CANVAS_IDENTITY and header[5] == "API project" and len(header) == 6
    assert points_row[0].strip() == "Points Possible" and float(points_row[5]) == 20
    assert all(len(r) == len(header) for r in rows)
    by_sis = {r[2]: r for r in students}
    assert set(by_sis) == {"u1", "u2", "u3", "u4", "u5"}
    assert by_sis["u1"][:5] == ["Doe, Jane", "101", "u1", "jane@x.edu", "A"]
    assert by_sis["u2"][0] == 'Bob "the builder"'
    assert float(by_sis["u1"][5]) == pytest.approx(91.5 * 20 / 100)  # scaled to the assignment's points
    assert float(by_sis["u3"][5]) == pytest.approx(12.25 * 20 / 100)
    for student in students:  # numeric or empty (Canvas leaves an empty cell's grade unchanged)
        assert student[5] == "" or float(student[5]) >= 0
    assert by_sis["u4"][5] == "" and by_sis["u5"][5] == ""
    assert by_sis["u3"][0].startswith("'=")  # a formula in a name is neutralised for spreadsheets
    assert "\r\n" in text  # RFC 4180 line endings, as Canvas exports


def test_classroom_csv_has_github_classroom_columns(tmp_path):
    out = tmp_path / "out"
    _batch_folder(out, ROSTER, _grades())
    summary = Outputs(out).write()
    rows = list(csv.DictReader(io.StringIO(classroom_csv(summary))))
    assert list(rows[0]) == CLASSROOM_COLUMNS
    jane = next(r for r in rows if r["roster_identifier"] == "u1")
    assert jane["github_username"] == "jane" and jane["student_repository_name"] == "task-api"
    assert float(jane["points_awarded"]) == pytest.approx(18.3) and jane["points_available"] == "20"
    assert canvas_csv(summary) == (out / "grades.csv").read_bytes().decode()


def test_dashboard_escapes_roster_and_submission_text_and_runs_no_script(tmp_path):
    out = tmp_path / "out"
    roster = ("id,name,repo,section\n"
              f"h1,\"{HOSTILE.replace(chr(34), chr(34) * 2)}\",javascript:alert(1),\"{SCRIPT}\"\n")
    bad = [CriterionResult(id="x", title="T " + SCRIPT, area="errors", status="fail", points=0, max_points=10,
                           hint="hint " + SCRIPT)]
    _batch_folder(out, roster, {"h1": {"score": 10.0, "criteria": bad}})
    Outputs(out).write()
    page = (out / "index.html").read_text()
    assert SCRIPT not in page and "<img" not in page and "<script" not in page.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert 'href="javascript:' not in page
    assert "Content-Security-Policy" in page and "default-src 'none'" in page


def test_dashboard_shows_key_numbers_and_an_svg_histogram(tmp_path):
    out = tmp_path / "out"
    _batch_folder(out, ROSTER, _grades(), {"u4": "could not fetch file:///nonexistent"})
    summary = Outputs(out).write()
    page = render_dashboard(summary)
    assert '<dd id="total-students">5</dd>' in page and '<dd id="total-graded">3</dd>' in page
    assert '<dd id="total-errors">1</dd>' in page and '<dd id="score-median">42</dd>' in page
    assert page.count("<rect class=\"bar") == 3 and "<svg class=\"chart\"" in page
    assert "line 7: missing name, repo" in page
    assert 'href="submissions/u1/report/task-api/scorecard.html"' in page
    assert "Shared submissions" in page


# ---------------------------------------------------------------- merge


def test_merging_shard_folders_equals_the_unsharded_folder(tmp_path):
    grades, errors = _grades(), {"u4": "could not fetch"}
    whole = tmp_path / "whole"
    (tmp_path / "w").mkdir()
    _batch_folder(whole, ROSTER, grades, errors, tmp=tmp_path / "w")
    parts = []
    for k in (1, 2):
        part = tmp_path / f"shard{k}"
        (tmp_path / f"s{k}").mkdir()
        _batch_folder(part, ROSTER, grades, errors, shard_spec=f"{k}/2", tmp=tmp_path / f"s{k}")
        parts.append(part)
    merged_out = tmp_path / "merged"
    report = merge(parts, merged_out)
    expected = Outputs(whole).write()
    assert report.missing == ["u5"]  # pending in its shard: not graded by any folder
    strip = lambda s: [{k: v for k, v in r.items() if k not in ("scorecard", "result")} for r in s["students"]]
    assert strip(report.summary) == strip(expected)
    assert report.summary["totals"] == expected["totals"]
    assert report.summary["shards"] == ["1/2", "2/2"]
    assert (merged_out / "grades.csv").read_bytes() == (whole / "grades.csv").read_bytes()
    for row in report.summary["students"]:
        if row.get("scorecard"):
            assert (merged_out / row["scorecard"]).is_file()  # the scorecards travel with the merge


def test_merge_refuses_folders_of_different_rosters_and_non_batch_folders(tmp_path):
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    _batch_folder(tmp_path / "one", ROSTER, {}, tmp=tmp_path / "a")
    _batch_folder(tmp_path / "two", ROSTER.replace("eve/api", "eve/other"), {}, tmp=tmp_path / "b")
    with pytest.raises(MergeError, match="different rosters"):
        merge([tmp_path / "one", tmp_path / "two"], tmp_path / "m")
    with pytest.raises(MergeError, match="not a batch folder"):
        merge([tmp_path / "a"], tmp_path / "m")
    assert main(["merge", str(tmp_path / "a"), "--out", str(tmp_path / "m")]) == 2


# ---------------------------------------------------------------- CLI and leftovers


def test_batch_cli_refuses_a_bad_roster_and_a_bad_shard(tmp_path, capsys):
    assert main(["batch", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "o")]) == 2
    assert "cannot read the roster" in capsys.readouterr().err
    roster = write(tmp_path / "r.csv", "id,name,repo\na,Ann,https://x/y\n")
    with pytest.raises(SystemExit):
        main(["batch", str(roster), "--shard", "3/2"])


def test_a_busy_folder_is_refused(tmp_path, capsys):
    from portfolio_grader.batch.store import locked

    roster = write(tmp_path / "r.csv", "id,name,repo\na,Ann,file:///nonexistent\n")
    with locked(tmp_path / "o"):
        assert main(["batch", str(roster), "--out", str(tmp_path / "o")]) == 2
    assert "another portfolio-grader batch" in capsys.readouterr().err


def test_reap_stops_the_orphaned_grade_of_a_killed_batch(tmp_path):
    """A process that looks like a grade of run `deadbeef01` (its own session, as the runner starts it)."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "--run-id=deadbeef01"],
                            start_new_session=True)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "--run-id=otherrun01"],
                             start_new_session=True)
    try:
        sub = submission(tmp_path, "s1")
        write_json(sub.folder / RUNNING_JSON, {"run_id": "deadbeef01", "pid": proc.pid})
        started = time.monotonic()
        reap(sub, grace=5)
        assert proc.wait(timeout=5) == -signal.SIGTERM and time.monotonic() - started < 5
        assert not (sub.folder / RUNNING_JSON).exists()
        # killed before the pid was recorded: the grade is found by its run id
        again = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "--run-id=deadbeef02"],
                                 start_new_session=True)
        write_json(sub.folder / RUNNING_JSON, {"run_id": "deadbeef02", "pid": None})
        reap(sub, grace=5)
        assert again.wait(timeout=5) == -signal.SIGTERM
        # a reused pid running something else is never killed
        write_json(sub.folder / RUNNING_JSON, {"run_id": "deadbeef01", "pid": other.pid})
        reap(sub, grace=1)
        assert other.poll() is None and not (sub.folder / RUNNING_JSON).exists()
    finally:
        for p in (proc, other):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


def test_normalize_repo_spellings():
    assert normalize_repo("https://GitHub.com/Ann/API.git/") == normalize_repo("git@github.com:ann/api.git")
    assert normalize_repo("https://gitlab.example.org/A/b") != normalize_repo("https://gitlab.example.org/a/b")
    assert json.dumps(normalize_repo("/tmp/x/../y")) == json.dumps("/tmp/y")


STAND_IN_GRADE = r'''
import json, os, shutil, sys, time
args = dict(a.split("=", 1) for a in sys.argv[1:] if a.startswith("--") and "=" in a)
behaviour = sys.argv[-1]
if behaviour == "ok":
    dest = os.path.join(args["--out"], "api")
    os.makedirs(dest)
    shutil.copy(args["--result"], os.path.join(dest, "result.json"))
elif behaviour == "crash":
    raise RuntimeError("boom inside the grader")
elif behaviour == "gone":
    print("portfolio-grader: could not fetch file:///nonexistent: not a git repository", file=sys.stderr)
    sys.exit(2)
elif behaviour == "slow":
    time.sleep(60)
'''


def test_runner_contains_crashes_and_records_errors_and_timeouts(tmp_path):
    """Real processes standing in for `grade` (no Docker): a result, a crash, an unreachable repo, a hang."""
    from portfolio_grader.batch.progress import Board
    from portfolio_grader.batch.runner import BatchSettings, Runner

    script = write(tmp_path / "grade.py", STAND_IN_GRADE)
    result = write_reports(sample_scorecard(score=77.0), tmp_path / "template")["json"]
    roster = load_roster(write(tmp_path / "r.csv", "id,name,repo\nok,A,ok\ncrash,B,crash\ngone,C,gone\nslow,D,slow\n"), TIERS)

    class StandIn(Runner):
        def _check_engine(self):
            pass

        def _command(self, student, sub, run_id):
            return [sys.executable, str(script), f"--run-id={run_id}", f"--out={sub.folder / REPORT_DIR}",
                    f"--result={result}", student.repo]

    out = tmp_path / "out"
    finished_calls = []
    runner = StandIn(out, roster.students, BatchSettings(jobs=4, timeout=3), Board(roster.students, plain=True),
                     on_finished=lambda: finished_calls.append(1))
    started = time.monotonic()
    report = runner.run()
    assert time.monotonic() - started < 20  # the hang was stopped at its timeout, the others did not wait for it
    assert report.graded == ["ok"] and sorted(report.errors) == ["crash", "gone", "slow"] and len(finished_calls) == 4
    errors = {sid: json.loads((out / "submissions" / sid / "error.json").read_text()) for sid in ("crash", "gone", "slow")}
    assert errors["crash"]["kind"] == "crashed" and "boom inside the grader" in errors["crash"]["message"]
    assert errors["gone"]["kind"] == "could_not_grade" and errors["gone"]["message"].startswith("could not fetch")
    assert errors["slow"]["kind"] == "timeout"
    assert not list(out.glob("submissions/*/running.json"))
    # run again: everything is finished, nothing starts
    again = StandIn(out, roster.students, BatchSettings(jobs=4, timeout=3), Board(roster.students, plain=True)).run()
    assert sorted(again.skipped) == ["crash", "gone", "ok", "slow"] and not again.graded and not again.errors
    assert all(len(submission(out, s).attempts()) == 1 for s in ("ok", "crash", "gone", "slow"))
    # --retry-errors grades only the three that could not be graded
    retry = StandIn(out, roster.students, BatchSettings(jobs=4, timeout=3, retry_errors=True),
                    Board(roster.students, plain=True)).run()
    assert retry.skipped == ["ok"] and sorted(retry.errors) == ["crash", "gone", "slow"]
