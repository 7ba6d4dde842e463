"""The `portfolio-grader` command. Heavy libraries are imported inside commands so --help stays fast.

Exit codes: 0 graded and passed, 1 graded and below the pass mark (or a gate missed), 2 could not grade
(bad arguments included: argparse prints the subcommand's usage), 130 interrupted (Ctrl-C or SIGTERM).
`grade --fail-under N` puts the bar at N instead of the pass mark; `grade --exit-zero` exits 0 once graded.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

EXIT_PASSED, EXIT_BELOW, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 2, 130


def _number(kind: type, option: str, *, low: float | None = None, high: float | None = None,
            low_open: bool = False, what: str = "") -> Callable[[str], Any]:
    """An argparse type: `kind` within [low, high] (low excluded when low_open); argparse names the option."""

    def convert(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what or ('an integer' if kind is int else 'a number')}") \
                from None
        if value != value or value in (float("inf"), float("-inf")):  # nan, inf
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
        too_low = low is not None and (value <= low if low_open else value < low)
        if too_low or (high is not None and value > high):
            bound = (f"greater than {low:g}" if low_open else f"at least {low:g}") if high is None else \
                f"between {low:g} and {high:g}"
            raise argparse.ArgumentTypeError(f"{text!r}: {option} must be {bound}")
        return value

    convert.__name__ = kind.__name__  # argparse's "invalid int value" wording for type errors it raises itself
    return convert


def _memory(text: str) -> str:
    """A Docker size of at least 6m (the same rule as SandboxConfig; the module is imported only when given)."""
    from .runtime.sandbox import memory_bytes

    size = memory_bytes(text)
    if size is None or size < 6 * 2**20:
        raise argparse.ArgumentTypeError(f"{text!r}: give a Docker size of at least 6m, like 512m or 1g")
    return text.strip()


SEED = _number(int, "--seed", low=0)
MAX_EXAMPLES = _number(int, "--max-examples", low=1)
POINTS = _number(float, "--points-possible", low=0, low_open=True)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="portfolio-grader",
        description="Grade a backend API portfolio project: build and run it, check its OpenAPI contract, "
                    "probe it, and write an HTML scorecard with evidence.",
    )
    parser.add_argument("--version", action="store_true", help="print the grader version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    grade = sub.add_parser("grade", help="grade one repository, folder or live URL",
                           description="Grade one submission; writes OUT/<name>/scorecard.html and result.json.")
    grade.add_argument("source", nargs="?", help="git URL (https, ssh, file://) or a local folder")
    grade.add_argument("--url", help="grade a live deployment at this URL instead of building (no source needed)")
    grade.add_argument("--ref", help="branch, tag or commit SHA to grade")
    grade.add_argument("--tier", help="rubric: a tier name (beginner, ...) or a path to a rubric YAML "
                                      "(default: the manifest's tier, else beginner)")
    grade.add_argument("--out", type=Path, default=Path("reports"), help="output folder (default: reports/)")
    grade.add_argument("--seed", type=SEED, help="seed of the contract fuzzing, an integer >= 0 (recorded in the scorecard)")
    grade.add_argument("--max-examples", type=MAX_EXAMPLES, help="Schemathesis examples per operation, >= 1 (default 15)")
    grade.add_argument("--open", action="store_true", help="open the scorecard in a browser when done")
    grade.add_argument("--run-id", help="names this grade's containers, compose project and images "
                                        "(default: random; `batch` sets it to clean up after a killed run)")
    grade.add_argument("--baseline", type=Path, metavar="RESULT_JSON",
                       help="a previous grade's result.json: show what improved and what regressed since then")
    bar = grade.add_mutually_exclusive_group()
    bar.add_argument("--fail-under", type=_number(float, "--fail-under", low=0, high=100), metavar="N",
                     help="exit 1 when the score is below N (0-100), even at or above the rubric's pass mark; "
                          "a gate not met still exits 1 (default: the rubric's pass mark)")
    bar.add_argument("--exit-zero", action="store_true",
                     help="exit 0 whenever a scorecard was written, passed or not (2 still means could not grade)")
    grade.add_argument("--format", choices=["text", "json"], default="text",
                       help="the summary on stdout: text (default) or one JSON object (score, verdict, gates, fixes, "
                            "report paths)")
    talk = grade.add_mutually_exclusive_group()
    talk.add_argument("-q", "--quiet", action="store_true",
                      help="print only the score line: no summary, no progress on stderr")
    talk.add_argument("-v", "--verbose", action="count", default=0,
                      help="progress on stderr also shows each request the grader sends (method, path, status)")
    add_sandbox_arguments(grade)
    grade.set_defaults(subparser=grade)

    report = sub.add_parser("report", help="re-render a scorecard from its result.json")
    report.add_argument("result", type=Path, help="a result.json written by `grade`")
    report.add_argument("--out", type=Path, help="output folder (default: next to result.json)")
    report.add_argument("--format", action="append", choices=["html", "json", "markdown", "junit", "sarif", "gradescope"],
                        help="format to write, repeatable (default: html and json); markdown -> summary.md, "
                             "junit -> junit.xml, sarif -> results.sarif, gradescope -> results.json")

    action = sub.add_parser("action", help="the GitHub Action's grading step (see action.yml)",
                            description="Grade, then write the scorecard folder, $GITHUB_STEP_SUMMARY, $GITHUB_OUTPUT "
                                        "(score, tier, tier-reached, passed, threshold, scorecard) and one PR comment. "
                                        "Empty option values count as not given, so action inputs pass straight through.")
    action.add_argument("source", nargs="?", default=".", help="the submission folder (default: the checked-out PR head)")
    action.add_argument("--url", default="", help="grade a live deployment at this URL")
    action.add_argument("--tier", default="", help="a tier name or a rubric YAML path (default: manifest, else beginner)")
    action.add_argument("--threshold", default="", help="score to pass, 0-100 (default: the rubric's pass mark)")
    action.add_argument("--out", type=Path, default=Path("portfolio-grader-report"), help="scorecard folder parent")
    action.add_argument("--comment", default="true", help="true/false: upsert the PR comment (default true)")
    action.add_argument("--baseline", default="", help="a previous result.json to compare with")
    action.add_argument("--max-examples", default="", help="Schemathesis examples per operation")
    action.set_defaults(subparser=action)

    replay = sub.add_parser("replay", help="reproduce a grade's failed findings against your own running app",
                            description="Re-create the users and objects each failed finding's evidence rests on "
                                        "(fresh credentials, new ids), send its requests again to --url only, and "
                                        "say per finding: reproduces, does not reproduce (what differed), or not "
                                        "replayable (why). Exit 0: every replayable finding reproduced; 1: one did "
                                        "not; 2: could not run.")
    replay.add_argument("result", type=Path, help="a result.json written by `grade` (or its folder)")
    replay.add_argument("--url", required=True, help="your running app, e.g. http://localhost:8000")
    replay.add_argument("--finding", action="append", metavar="ID", help="only this finding (repeatable), e.g. F005")
    replay.add_argument("--timeout", type=_number(float, "--timeout", low=0, low_open=True), default=10.0,
                        help="seconds per request (default 10)")
    replay.add_argument("--max-requests", type=_number(int, "--max-requests", low=1), default=400,
                        help="requests the whole replay may send (default 400)")
    replay.set_defaults(subparser=replay)

    sub.add_parser("rubrics", help="list the bundled rubrics")

    explain = sub.add_parser("explain", help="what a finding kind means, why it matters and how to fix it",
                             description="Explain a finding kind (the `kind` of a finding in result.json, the rule id "
                                         "in SARIF): the checks that report it, the rubric criteria that rest on "
                                         "them, and the hints. Without KIND, list every kind.")
    explain.add_argument("kind", nargs="?", metavar="KIND", help="a finding kind, e.g. bola_read")
    explain.add_argument("--format", choices=["text", "json"], default="text", help="text (default) or JSON")
    explain.set_defaults(subparser=explain)

    cleanup = sub.add_parser("cleanup", help="remove every container, network, volume and image the grader left",
                             description="Remove Docker objects carrying the grader's label (left behind when a grader "
                                         "was killed with SIGKILL or its machine stopped). Without --run it removes "
                                         "those of every grade: do not run it while grades are running.")
    cleanup.add_argument("--run", metavar="RUN_ID", help="only the objects of this grade (its --run-id)")
    cleanup.add_argument("--label", default="portfolio-grader", help=argparse.SUPPRESS)  # tests use their own

    batch = sub.add_parser("batch", help="grade a class from a roster: dashboard and gradebook CSVs",
                           description="Grade every submission of a roster (CSV or YAML: id, name, repo, ref, tier, "
                                       "section, email), each in its own process; resumable. Writes OUT/index.html, "
                                       "grades.csv (Canvas), classroom.csv (GitHub Classroom) and summary.json.")
    batch.add_argument("roster", type=Path, help="roster file (.csv, .yaml or .yml)")
    batch.add_argument("--jobs", "-j", type=_number(int, "--jobs", low=1), default=2,
                       help="submissions graded at once (default 2)")
    batch.add_argument("--out", type=Path, help="output folder (default: reports/<roster name>/)")
    batch.add_argument("--tier", default="beginner", help="rubric for roster lines without a tier (default beginner)")
    batch.add_argument("--shard", metavar="K/N", help="grade only shard K of N (a deterministic 1/N of the roster)")
    again = batch.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true", help="skip submissions already finished in OUT (the default)")
    again.add_argument("--force", action="store_true", help="grade every submission again, finished or not")
    batch.add_argument("--retry-errors", action="store_true", help="grade again the submissions that could not be graded")
    batch.add_argument("--timeout", type=_number(float, "--timeout", low=0, low_open=True), default=2400,
                       help="seconds after which a submission's grade is stopped, a backstop behind its --deadline "
                            "(default 2400)")
    batch.add_argument("--seed", type=SEED, help="seed of the contract fuzzing, for every submission")
    batch.add_argument("--max-examples", type=MAX_EXAMPLES, help="Schemathesis examples per operation (default 15)")
    batch.add_argument("--assignment", default="Portfolio API",
                       help='gradebook column; "Title (1234)" updates Canvas assignment 1234 (default: Portfolio API)')
    batch.add_argument("--points-possible", type=POINTS, default=100,
                       help="the assignment's points in Canvas, > 0 (default 100)")
    batch.add_argument("--plain", action="store_true", help="plain progress lines (default in CI, with NO_COLOR, or piped)")
    add_sandbox_arguments(batch)  # passed on to every grade
    batch.set_defaults(subparser=batch)

    merge = sub.add_parser("merge", help="combine the output folders of several shards into one",
                           description="Merge `batch --shard K/N` output folders into one dashboard and gradebook.")
    merge.add_argument("folders", nargs="+", type=Path, help="the --out folders of the shards")
    merge.add_argument("--out", type=Path, required=True, help="the merged output folder")
    merge.add_argument("--assignment", help="gradebook column (default: the shards')")
    merge.add_argument("--points-possible", type=POINTS, help="the assignment's points, > 0 (default: the shards')")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Exit codes: see the module docstring. A Ctrl-C that no command handled itself exits 130."""
    try:
        return _main(argv)
    except KeyboardInterrupt:
        print("portfolio-grader: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `portfolio-grader explain | head`: the reader had enough
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at interpreter exit
        return EXIT_PASSED


def _main(argv: list[str] | None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    parser = getattr(args, "subparser", parser)  # errors found after parsing print the subcommand's usage
    if args.version:
        from . import __version__

        print(f"portfolio-grader {__version__}")
        return EXIT_PASSED
    if args.command == "grade":
        return _grade(args, parser)
    if args.command == "report":
        return _report(args)
    if args.command == "replay":
        return _replay(args, parser)
    if args.command == "rubrics":
        return _rubrics()
    if args.command == "explain":
        return _explain(args, parser)
    if args.command == "cleanup":
        return _cleanup(args)
    if args.command == "action":
        return _action(args, parser)
    if args.command == "batch":
        return _batch(args, parser)
    if args.command == "merge":
        return _merge(args)
    parser.print_help()
    return EXIT_ERROR


def _raise_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def add_sandbox_arguments(parser: argparse.ArgumentParser) -> None:
    """--memory --cpus --pids --deadline (defaults: runtime/sandbox.py and deadlines.py, or PORTFOLIO_GRADER_* env)."""
    parser.add_argument("--memory", type=_memory, help="memory limit of each container, a Docker size (default 1g)")
    parser.add_argument("--cpus", type=_number(float, "--cpus", low=0.01, high=64),
                        help="CPU limit of each container, 0.01-64 (default 1.0)")
    parser.add_argument("--pids", type=_number(int, "--pids", low=8, high=100_000),
                        help="process limit of each container, 8-100000 (default 256)")
    parser.add_argument("--deadline", type=_number(float, "--deadline", low=0, low_open=True), metavar="SECONDS",
                        help="the whole grade's deadline; stages that run out are reported as such (default 1800)")


def sandbox_from_args(args: argparse.Namespace, parser: argparse.ArgumentParser):
    """The SandboxConfig and Deadlines of these arguments over the environment's (parser.error on bad values)."""
    from dataclasses import replace

    from .deadlines import Deadlines
    from .runtime.sandbox import SandboxConfig

    try:
        sandbox = SandboxConfig.from_env().with_overrides(memory=args.memory, cpus=args.cpus, pids=args.pids)
    except ValueError as exc:
        parser.error(str(exc))
    deadlines = Deadlines.from_env()
    if args.deadline is not None:
        if args.deadline <= 0:
            parser.error("--deadline must be a positive number of seconds")
        deadlines = replace(deadlines, grade=args.deadline)
    return sandbox, deadlines


def _final_sweep(run_id: str) -> None:
    """After an interrupt: remove whatever this grade still has on the engine; further Ctrl-Cs wait for it."""
    from .runtime import RuntimeUnavailable, cleanup
    from .runtime.docker import shield_interrupts

    try:
        with shield_interrupts():
            cleanup(run_id)
    except (KeyboardInterrupt, RuntimeUnavailable):
        pass


def _fail(message: str) -> int:
    print(f"portfolio-grader: {message}", file=sys.stderr)
    return EXIT_ERROR


def _grade(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if not args.source and not args.url:
        parser.error("grade needs a repository URL, a folder, or --url")
    if args.url and not args.url.startswith(("http://", "https://")):
        parser.error("--url must start with http:// or https://")
    if args.run_id is not None and not re.fullmatch(r"[a-z0-9][a-z0-9-]{3,39}", args.run_id):
        parser.error("--run-id must be 4-40 lowercase letters, digits or hyphens")
    from dataclasses import replace

    from .checks import Settings
    from .pipeline import GradeError, GradeRequest, grade
    from .progress import for_stderr
    from .report import write_reports
    from .report.terminal import print_summary

    settings = Settings()
    if args.seed is not None:
        settings = replace(settings, seed=args.seed)
    if args.max_examples is not None:
        settings = replace(settings, max_examples=args.max_examples)
    sandbox, deadlines = sandbox_from_args(args, parser)
    settings = replace(settings, deadlines=deadlines)
    out_root = args.out.resolve()  # now: a contract run left behind at its deadline may still hold another cwd
    import uuid

    run_id = args.run_id or uuid.uuid4().hex[:10]  # known here so an interrupted grade can be swept by it
    previous = _load_baseline(args.baseline) if args.baseline else None
    if isinstance(previous, int):
        return previous
    # SIGTERM (a CI runner cancelling the job) unwinds like Ctrl-C, so containers are removed on the way out.
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        with for_stderr(quiet=args.quiet, verbose=args.verbose) as progress:  # stage by stage, on stderr
            scorecard = grade(GradeRequest(source=args.source, url=args.url, ref=args.ref, tier=args.tier,
                                           settings=settings, run_id=run_id, sandbox=sandbox), progress)
    except GradeError as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        _final_sweep(run_id)
        _fail("interrupted; everything the grade started was removed")
        return EXIT_INTERRUPTED
    if previous is not None:
        from .report.baseline import with_baseline

        scorecard = with_baseline(scorecard, previous)
    from .deadlines import run_with_deadline, seconds_text

    written = run_with_deadline(lambda: write_reports(scorecard, out_root / scorecard.name), deadlines.report,
                                "the report's deadline")
    if written.timed_out:
        return _fail(f"writing the scorecard ran out of its {seconds_text(deadlines.report)} deadline")
    paths = written.value
    assert paths is not None  # write_reports returned (the paths it wrote) within the deadline
    if args.format == "json":
        print(json.dumps(_summary_json(scorecard, paths, args.fail_under), indent=2, ensure_ascii=False))
    elif args.quiet:
        print(_score_line(scorecard, args.fail_under))
    else:
        print_summary(scorecard, paths=paths)
    if args.open:
        import webbrowser

        webbrowser.open(paths["html"].resolve().as_uri())
    return _grade_exit(scorecard, fail_under=args.fail_under, exit_zero=args.exit_zero)


def _grade_exit(scorecard, *, fail_under: float | None, exit_zero: bool) -> int:
    """0 or 1 for a written scorecard: the rubric's verdict, or with --fail-under N the score against N
    (a gate not met still fails, as the Action's threshold does); --exit-zero makes it 0."""
    if exit_zero:
        return EXIT_PASSED
    if fail_under is None:
        return EXIT_PASSED if scorecard.passed else EXIT_BELOW
    return EXIT_PASSED if scorecard.gates_met and scorecard.score >= fail_under else EXIT_BELOW


def _score_line(scorecard, fail_under: float | None) -> str:
    """The one line `grade -q` prints: name, score, the bar it was held to, and the verdict."""
    from .report.html import format_points
    from .report.verdict import verdict_of

    judged = verdict_of(scorecard, threshold=fail_under, bar_label="--fail-under" if fail_under is not None else None)
    label = "pass mark" if fail_under is None else "fail-under"
    return f"{scorecard.name}: {format_points(scorecard.score)}/100 ({label} {format_points(judged.bar)}) {judged.headline}"


def _summary_json(scorecard, paths, fail_under: float | None) -> dict[str, Any]:
    """What the terminal summary says, as data: score, bar, verdict, gates, tier reached, top fixes, reports."""
    from .report.fixes import fixes
    from .report.stack import for_stack
    from .report.verdict import verdict_of

    sc = for_stack(scorecard)
    judged = verdict_of(sc, threshold=fail_under, bar_label="--fail-under" if fail_under is not None else None)
    reached = [step.tier for step in sc.ladder if step.status == "reached"]
    return {
        "name": sc.name, "tier": sc.tier, "rubric": f"{sc.rubric.name} {sc.rubric.version}",
        "grader_version": sc.grader_version, "score": sc.score, "bar": judged.bar, "bar_label": judged.bar_label,
        "passed": judged.passed, "verdict": judged.headline, "gates_met": judged.gates_met,
        "failed_gates": list(judged.gate_names), "tier_reached": reached[-1] if reached else None,
        "fixes": [{"criterion": i.fix.criterion, "title": i.fix.title, "points": i.fix.points, "gate": i.fix.gate,
                   "problem": i.fix.problem, "operation": i.fix.operation, "hint": i.fix.hint,
                   "findings": i.fix.finding_ids} for i in fixes(sc)[:3]],
        "reports": {kind: str(path) for kind, path in paths.items()},
    }


def _explain(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Exit 0 with the explanation (or the list of kinds), 2 for a kind the grader does not report."""
    from dataclasses import asdict

    from .kinds import close_to, explain, registry

    if args.kind is None:
        kinds = registry()
        if args.format == "json":
            print(json.dumps([asdict(info) for info in kinds.values()], indent=2, ensure_ascii=False))
        else:
            for known in kinds.values():
                print(f"{known.kind:28} {', '.join(known.checks)}")
        return EXIT_PASSED
    info = explain(args.kind)
    if info is None:
        near = close_to(args.kind)
        parser.error(f"no finding kind {args.kind!r}" + (f"; close: {', '.join(near)}" if near else "")
                     + " (`portfolio-grader explain` lists them all)")
    if args.format == "json":
        print(json.dumps(asdict(info) | {"check_titles": info.check_titles()}, indent=2, ensure_ascii=False))
    else:
        print(_explanation_text(info))
    return EXIT_PASSED


def _explanation_text(info) -> str:
    """`ruff rule`-like prose: the kind, what it means, why it matters, how to fix it."""
    import textwrap

    def para(text: str, indent: str = "  ") -> str:
        return textwrap.fill(text, width=100, initial_indent=indent, subsequent_indent=indent)

    head = info.kind + (f" ({' or '.join(info.severities)})" if info.severities else "")
    lines = [head, "=" * len(head), "", "What it means"]
    checks = [f"{check} ({title})" for check, title in zip(info.checks, info.check_titles())]
    if info.title:
        lines.append(para(f"{info.title}."))
    lines.append(para("Reported by " + "; ".join(checks) + " when what it verifies does not hold."
                      if checks else "Reported by the grader's checks."))
    lines += ["", "Why it matters"]
    if info.why:
        lines.append(para(info.why))
    for c in info.criteria:
        weight = ", ".join(filter(None, [f"{c.tier} tier", f"{c.points:g} points", "a gate" if c.gate else "",
                                         f"OWASP {c.owasp}" if c.owasp else ""]))
        lines += [para(f"Criterion {c.id!r}: {c.title} ({weight})."), para(c.hint, "    ")]
    if not info.why and not info.criteria:
        lines.append(para("No bundled rubric scores it; a custom rubric may."))
    lines += ["", "How to fix it"]
    lines += [para(hint) for hint in info.hints] or [para("See the finding's evidence in the scorecard.")]
    return "\n".join(lines)


def _report(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from .report import load_scorecard, write_reports

    try:
        scorecard = load_scorecard(args.result)
    except (OSError, ValueError, ValidationError) as exc:
        return _fail(f"{args.result}: not a readable result.json ({exc})")
    if args.format:
        from .report import write_format

        paths = {fmt: write_format(scorecard, fmt, args.out or args.result.parent) for fmt in dict.fromkeys(args.format)}
    else:
        paths = write_reports(scorecard, args.out or args.result.parent)
    for kind, path in paths.items():
        print(f"{kind}: {path}")
    return EXIT_PASSED


def _replay(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Exit 0 when every replayable finding reproduced, 1 when one did not, 2 when the replay could not run."""
    from pydantic import ValidationError

    from .replay import replay
    from .report import load_scorecard

    if not args.url.startswith(("http://", "https://")):
        parser.error("--url must start with http:// or https://")
    try:
        scorecard = load_scorecard(args.result)
    except (OSError, ValueError, ValidationError) as exc:
        return _fail(f"{args.result}: not a readable result.json ({' '.join(str(exc).split())[:160]})")  # one line
    unknown = sorted(set(args.finding or ()) - {f.id for f in scorecard.findings})
    if unknown:
        return _fail(f"{args.result} has no finding {', '.join(unknown)} (it has {len(scorecard.findings)}: "
                     f"{', '.join(f.id for f in scorecard.findings[:12])})")
    from .runtime.external import unreachable

    reason = unreachable(args.url, grace=3.0)
    if reason:
        return _fail(f"{args.url} does not answer: {reason}; start your app and check the address")
    outcomes = replay(scorecard, args.url, args.finding, timeout=args.timeout, max_requests=args.max_requests,
                      on_outcome=lambda outcome: print(outcome.line(), flush=True))
    counts = {verdict: sum(o.verdict == verdict for o in outcomes)
              for verdict in ("reproduces", "does_not_reproduce", "not_replayable")}
    print(f"{counts['reproduces']} reproduce, {counts['does_not_reproduce']} do not, "
          f"{counts['not_replayable']} not replayable (against {args.url})")
    return EXIT_BELOW if counts["does_not_reproduce"] else EXIT_PASSED


def _cleanup(args: argparse.Namespace) -> int:
    """Exit 0 after removing (or finding nothing), 2 without a Docker engine."""
    from .runtime import RuntimeUnavailable, cleanup, cleanup_all

    try:
        removed = cleanup(args.run, label=args.label) if args.run else cleanup_all(args.label)
    except RuntimeUnavailable as exc:
        return _fail(str(exc))
    for item in removed:
        print(f"removed {item}")
    print(f"{len(removed)} object{'s' if len(removed) != 1 else ''} removed" if removed else
          "nothing to remove: no container, network, volume or image carries the grader's label")
    return EXIT_PASSED


def _rubrics() -> int:
    from .rubric import available, load_rubric

    for name in available():
        rubric = load_rubric(name)
        print(f"{name:14} v{rubric.version:8} {len(rubric.criteria):3} criteria  pass mark {rubric.pass_mark:g}  {rubric.title}")
    return EXIT_PASSED


def _batch(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Exit 0: every submission graded; 1: some could not be graded or roster lines were malformed;
    2: nothing could run (unreadable roster, bad --shard, busy folder, no Docker engine); 130: interrupted."""
    from .batch import BatchSettings, FolderBusy, RosterError, load_roster, parse_shard, run_batch
    from .batch.job_summary import write_job_summary
    from .report.terminal import clean
    from .runtime import RuntimeUnavailable

    if args.shard:
        try:
            parse_shard(args.shard)
        except ValueError as exc:
            parser.error(str(exc))
    try:
        roster = load_roster(args.roster)
    except RosterError as exc:
        return _fail(str(exc))
    for problem in roster.problems:
        print(f"portfolio-grader: {args.roster} {clean(problem, 300)} (not graded)", file=sys.stderr)
    sandbox_from_args(args, parser)  # refuse bad limits now, not once per student
    grade_args = tuple(f"--{name.replace('_', '-')}={value}" for name in ("memory", "cpus", "pids", "deadline")
                       if (value := getattr(args, name)) is not None)
    out = args.out or Path("reports") / args.roster.stem
    settings = BatchSettings(default_tier=args.tier, jobs=args.jobs, force=args.force, retry_errors=args.retry_errors,
                             timeout=args.timeout, seed=args.seed, max_examples=args.max_examples, grade_args=grade_args)
    signal.signal(signal.SIGTERM, _raise_interrupt)  # a cancelled CI job stops every grade cleanly
    try:
        result = run_batch(roster, out, settings, shard_spec=args.shard, assignment=args.assignment,
                           points_possible=args.points_possible, plain=True if args.plain else None)
    except (FolderBusy, RuntimeUnavailable) as exc:
        return _fail(str(exc))
    totals = result.summary["totals"]
    write_job_summary(result.summary)  # in GitHub Actions: the class at a glance, no script in the workflow
    print(f"{totals['graded']} graded ({totals['passed']} passed), {totals['could_not_grade']} could not be graded, "
          f"{totals['pending']} not graded yet, {len(roster.problems)} roster lines malformed")
    print(f"dashboard: {out / 'index.html'}\ncanvas:    {out / 'grades.csv'}\nclassroom: {out / 'classroom.csv'}")
    if result.run.interrupted:
        print("portfolio-grader: interrupted; run the same command again to finish", file=sys.stderr)
        return 130
    return EXIT_BELOW if totals["could_not_grade"] or totals["pending"] or roster.problems else EXIT_PASSED


def _merge(args: argparse.Namespace) -> int:
    from .batch import FolderBusy, MergeError, merge
    from .batch.job_summary import write_job_summary

    try:
        report = merge(args.folders, args.out, assignment=args.assignment, points_possible=args.points_possible)
    except (MergeError, FolderBusy) as exc:
        return _fail(str(exc))
    for conflict in report.conflicts:
        print(f"portfolio-grader: {conflict}", file=sys.stderr)
    totals = report.summary["totals"]
    write_job_summary(report.summary)
    print(f"merged {len(args.folders)} folders: {totals['graded']} graded, {totals['could_not_grade']} could not be "
          f"graded, {len(report.missing)} not graded by any folder")
    print(f"dashboard: {args.out / 'index.html'}\ncanvas:    {args.out / 'grades.csv'}")
    return EXIT_BELOW if report.missing else EXIT_PASSED


def _load_baseline(path: Path):
    """The previous Scorecard, or an exit code when it cannot be read (checked before a long grade)."""
    from pydantic import ValidationError

    from .report import load_scorecard

    try:
        return load_scorecard(path)
    except (OSError, ValueError, ValidationError) as exc:
        return _fail(f"--baseline {path}: not a readable result.json ({exc})")


def _action(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Exit 0 when a scorecard was written (the action's last step enforces the threshold), 2 when nothing was graded."""
    from .github import ActionOptions, run_action

    if args.url and not args.url.startswith(("http://", "https://")):
        parser.error("--url must start with http:// or https://")
    try:
        threshold = float(args.threshold) if args.threshold.strip() else None
        max_examples = int(args.max_examples) if args.max_examples.strip() else None
    except ValueError:
        parser.error("--threshold must be a number and --max-examples an integer")
    if threshold is not None and not 0 <= threshold <= 100:
        parser.error("--threshold must be between 0 and 100")
    if max_examples is not None and max_examples < 1:
        parser.error("--max-examples must be at least 1")
    if args.comment.strip().lower() not in ("true", "false", "yes", "no", "1", "0", ""):
        parser.error("--comment must be true or false")
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        return run_action(ActionOptions(
            source=args.source or ".", url=args.url or None, tier=args.tier or None, threshold=threshold,
            out=args.out, comment=args.comment.strip().lower() in ("true", "yes", "1", ""),
            baseline=Path(args.baseline) if args.baseline else None, max_examples=max_examples))
    except KeyboardInterrupt:
        return _fail("interrupted; everything the grade started was removed")


if __name__ == "__main__":
    sys.exit(main())
