"""Grading a class: a roster in, every submission graded in its own process, a dashboard and gradebooks out.

    roster (CSV/YAML) ──load_roster──▶ students (+ malformed lines, with line numbers)
        ──shard K/N──▶ this machine's share ──Runner (N jobs, resumable)──▶ OUT/submissions/<student>/
        ──Outputs──▶ index.html · grades.csv · classroom.csv · summary.json
    several OUT folders ──merge──▶ one OUT folder, same outputs

Modules: roster.py (reading the roster), store.py (the folder layout and state files), runner.py
(processes, resume, leftovers), progress.py (live display), summary.py (class numbers), dashboard.py
and templates/ (index.html), gradebook.py (CSV), outputs.py (writing them), merge.py (shards).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .merge import MergeError, MergeReport, merge
from .outputs import Outputs, write_batch_meta
from .progress import Board
from .roster import Roster, RosterError, RosterProblem, Student, load_roster, parse_shard, shard
from .runner import BatchSettings, Runner, RunReport
from .store import FolderBusy, locked

__all__ = [
    "BatchResult", "BatchSettings", "FolderBusy", "MergeError", "MergeReport", "Roster", "RosterError",
    "RosterProblem", "RunReport", "Student", "load_roster", "merge", "parse_shard", "run_batch", "shard",
]


@dataclass
class BatchResult:
    roster: Roster
    assigned: list[Student]
    run: RunReport
    summary: dict


def run_batch(roster: Roster, out: Path, settings: BatchSettings, *, shard_spec: str | None = None,
              assignment: str = "Portfolio API", points_possible: float = 100.0,
              plain: bool | None = None) -> BatchResult:
    """Grade this machine's share of the roster into `out`; resumable, one writer per folder at a time."""
    assigned = roster.students
    if shard_spec:
        k, n = parse_shard(shard_spec)
        assigned = shard(roster.students, k, n)
        shard_spec = f"{k}/{n}"
    with locked(out):
        write_batch_meta(out, roster, assigned, shard_spec, {
            "tier": settings.default_tier, "assignment": assignment, "points_possible": points_possible,
            "seed": settings.seed, "max_examples": settings.max_examples,
        })
        outputs = Outputs(out)
        title = f"{assignment} · {len(assigned)} submissions" + (f" · shard {shard_spec}" if shard_spec else "")
        board = Board(assigned, plain=plain, title=title)
        runner = Runner(out, assigned, settings, board, on_finished=outputs.write)
        report = runner.run()
        summary = outputs.write()
    return BatchResult(roster=roster, assigned=assigned, run=report, summary=summary)
