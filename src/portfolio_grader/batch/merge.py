"""Combine the output folders of several shards (`--shard K/N` on many runners) into one batch folder.

The shards must come from one roster (same fingerprint). Each finished submission is copied into the
merged folder (into a temp folder first, then renamed); when two folders hold the same student, the
later grade wins and the merge says so. The merged folder is an ordinary batch folder: its dashboard,
gradebooks and summary are written by the same code as a single machine's.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from .. import __version__
from .outputs import Outputs
from .store import BATCH_JSON, SUBMISSIONS, Submission, locked, now, read_json, write_json


class MergeError(Exception):
    """The folders cannot be merged (not batch folders, or shards of different rosters)."""


@dataclass
class MergeReport:
    copied: int = 0
    conflicts: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # roster students no folder graded
    summary: dict = field(default_factory=dict)


def merge(folders: list[Path], out: Path, assignment: str | None = None,
          points_possible: float | None = None) -> MergeReport:
    metas = []
    for folder in folders:
        meta = read_json(folder / BATCH_JSON)
        if not meta or "roster" not in meta:
            raise MergeError(f"{folder}: not a batch folder (no {BATCH_JSON}); give the --out folders of `batch`")
        metas.append(meta)
    prints = {m["roster"].get("fingerprint") for m in metas}
    if len(prints) > 1:
        raise MergeError("the folders were graded from different rosters (or different versions of one): "
                         + ", ".join(f"{f} ({m['roster'].get('fingerprint')})" for f, m in zip(folders, metas)))
    report = MergeReport()
    with locked(out):
        chosen: dict[str, tuple[Path, str]] = {}  # submission folder name -> (source folder, finished at)
        for folder in folders:
            root = folder / SUBMISSIONS
            for sub_dir in sorted(p for p in (root.iterdir() if root.is_dir() else []) if p.is_dir() and p.name[:1] != "."):
                sub = Submission(sub_dir)
                if not sub.finished:
                    continue
                stamp = _finished_at(sub)
                if sub_dir.name in chosen:
                    report.conflicts.append(f"{sub_dir.name}: graded in {chosen[sub_dir.name][0]} and in {folder}; "
                                            "the later grade is kept")
                    if stamp <= chosen[sub_dir.name][1]:
                        continue
                chosen[sub_dir.name] = (folder, stamp)
        for name, (folder, _) in sorted(chosen.items()):
            if folder.resolve() != out.resolve():
                _copy(folder / SUBMISSIONS / name, out / SUBMISSIONS / name)
                report.copied += 1
        first = metas[0]
        settings = dict(first.get("settings", {}))
        if assignment:
            settings["assignment"] = assignment
        if points_possible is not None:
            settings["points_possible"] = points_possible
        assigned = list(dict.fromkeys(i for m in metas for i in m.get("assigned", [])))
        problems = list({(p["line"], p["message"]): p for m in metas for p in m["roster"].get("problems", [])}.values())
        roster = first["roster"] | {"problems": sorted(problems, key=lambda p: p["line"])}
        write_json(out / BATCH_JSON, {
            "schema_version": "1.0", "grader_version": __version__, "roster": roster,
            "shards": sorted({s for m in metas for s in m.get("shards", [])}, key=_shard_key),
            # every roster student belongs to the merged class: one no shard graded shows as not graded
            "assigned": list(dict.fromkeys(assigned + [s["id"] for s in roster.get("students", [])])),
            "settings": settings, "merged_from": [str(f) for f in folders], "updated_at": now(),
        })
        graded_ids = {s["id"] for s in roster.get("students", []) if s.get("folder") in chosen}
        report.missing = [s["id"] for s in roster.get("students", []) if s["id"] not in graded_ids]
        report.summary = Outputs(out).write()
    return report


def _finished_at(sub: Submission) -> str:
    result = sub.result_path
    if result is not None:
        return (read_json(result) or {}).get("graded_at", "")
    return (sub.error or {}).get("finished_at", "")


def _copy(src: Path, dest: Path) -> None:
    """Copy a submission folder so a reader never sees half of it: copy beside, then swap in."""
    tmp = dest.with_name(f".{dest.name}.merging")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(src, tmp, ignore=shutil.ignore_patterns("running.json"))
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)


def _shard_key(text: str) -> tuple[int, int]:
    k, _, n = text.partition("/")
    return (int(n) if n.isdigit() else 0, int(k) if k.isdigit() else 0)
