"""The deterministic pieces of benchmarks/run (no Docker, no timing asserted): the API generator, the
median/spread and pairing helpers, the time split of a result.json, and the per-check `seconds` it reads."""

from __future__ import annotations

import pytest

from benchmarks import apigen, grading
from benchmarks.stats import alternating, ratios, summarise
from portfolio_grader.checks import CheckContext
from portfolio_grader.checks.registry import check, run_checks
from portfolio_grader.models import ApiModel, RepoFacts, RunningService, Source, Workspace


@pytest.mark.parametrize("operations", [10, 40, 160])
def test_the_generated_api_serves_a_spec_with_exactly_that_many_operations(operations, tmp_path):
    folder = apigen.write_project(tmp_path / f"gen-{operations}", operations)
    namespace: dict = {}
    exec(compile((folder / "main.py").read_text(), str(folder / "main.py"), "exec"), namespace)
    spec = namespace["app"].openapi()
    assert apigen.count_operations(spec) == operations
    assert len(spec["paths"]) == 2 * operations // apigen.OPERATIONS_PER_RESOURCE  # collection + item per resource
    assert "FROM python:3.12-slim" in (folder / "Dockerfile").read_text()
    assert (folder / "README.md").is_file() and (folder / ".dockerignore").is_file()


def test_the_generator_refuses_a_size_it_cannot_make():
    with pytest.raises(ValueError):
        apigen.resource_names(12)


def test_summary_is_the_median_and_the_range():
    s = summarise([3.0, 1.0, 2.0, 10.0])
    assert (s.median, s.low, s.high, s.n) == (2.5, 1.0, 10.0, 4)
    assert s.spread == pytest.approx(9.0 / 2.5)
    assert s.text() == "2.50× (1.00–10.00, n=4)"
    assert summarise([1.5]).text() == "1.50× (n=1)"
    with pytest.raises(ValueError):
        summarise([])


def test_pairs_are_divided_pair_by_pair_and_the_order_alternates():
    assert ratios([4.0, 9.0], [2.0, 3.0]) == [2.0, 3.0]
    with pytest.raises(ValueError):
        ratios([1.0], [1.0, 2.0])
    assert alternating(3, ["grade", "floor"]) == [["grade", "floor"], ["floor", "grade"], ["grade", "floor"]]
    assert alternating(2, ["10", "40", "160"]) == [["10", "40", "160"], ["40", "160", "10"]]


def test_the_split_adds_up_to_the_wall_time_and_names_the_waits():
    result = {
        "stages": [{"name": n, "seconds": s} for n, s in
                   [("fetch", 0.1), ("inspect", 0.1), ("runtime", 5.0), ("discover", 0.3), ("checks", 30.0),
                    ("cleanup", 1.0)]],
        "checks": [{"check": "contract.no_server_errors", "area": "contract", "seconds": 12.0},
                   {"check": "load.latency", "area": "performance", "seconds": 10.0},
                   {"check": "crud.lifecycle", "area": "crud", "seconds": 7.0},
                   {"check": "repo.readme", "area": "repo", "seconds": None}],
    }
    rows = grading.split(grading.Grade(seconds=40.0, exit_code=0, result=result))
    assert sum(seconds for _, _, seconds in rows) == pytest.approx(40.0)
    by_category: dict[str, float] = {}
    for category, _, seconds in rows:
        by_category[category] = by_category.get(category, 0.0) + seconds
    assert by_category["building/starting"] == pytest.approx(6.0)
    assert by_category["deliberate waits"] == pytest.approx(10.0)
    assert [name for c, name, _ in rows if c == "deliberate waits"] == [f"load.latency: {grading.WAITS['load.latency']}"]

    container = grading.Grade(seconds=40.0, exit_code=0, result={**result, "runtime": {"kind": "docker",
                                                                                       "status": "running"}})
    rows = grading.split(container)
    assert sum(seconds for _, _, seconds in rows) == pytest.approx(40.0)
    assert sum(s for c, _, s in rows if c == "deliberate waits") == pytest.approx(10.0 + grading.IDLE_CPU_SAMPLE)


def test_the_side_lanes_time_is_counted_once_beside_the_other_checks():
    """A webhook wait of 31 s beside 25 s of other checks: the split still adds up, and the side lane's row is
    only what the other checks did not cover."""
    result = {
        "stages": [{"name": "runtime", "seconds": 5.0}, {"name": "checks", "seconds": 33.0}],
        "checks": [{"check": "contract.no_server_errors", "area": "contract", "seconds": 17.0},
                   {"check": "crud.lifecycle", "area": "crud", "seconds": 8.0},
                   {"check": "webhooks.delivery", "area": "webhooks", "seconds": 31.0, "alongside": True}],
    }
    rows = grading.split(grading.Grade(seconds=40.0, exit_code=0, result=result))
    assert sum(seconds for _, _, seconds in rows) == pytest.approx(40.0)
    [(name, side)] = [(n, s) for c, n, s in rows if c == "deliberate waits"]
    assert side == pytest.approx(33.0 - 25.0) and "webhooks.delivery 31.0 s beside them" in name


@check("test_benchmarks.timed", area="t-bench", title="a check whose time is recorded")
def _timed(ctx):
    return ctx.verdict("ran")


@check("test_benchmarks.not_run", area="t-bench", title="a check whose need is missing", needs=("service",))
def _not_run(ctx):
    return ctx.verdict("never")


def test_each_check_outcome_records_how_long_it_ran_and_a_check_not_run_records_none():
    ctx = CheckContext(workspace=Workspace(name="t", source=Source()), facts=RepoFacts(),
                       service=RunningService(kind="none", status="not_started"), api=ApiModel(), prober=None)
    timed, not_run = run_checks(["test_benchmarks.timed", "test_benchmarks.not_run"], ctx)
    assert timed.status == "pass" and timed.seconds is not None and timed.seconds >= 0
    assert not_run.status == "not_evaluated"
    assert not_run.seconds is not None  # the runner timed the attempt, which ended at the missing need
    assert "seconds" in timed.model_dump(mode="json")
