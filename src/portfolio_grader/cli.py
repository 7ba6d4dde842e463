"""The `portfolio-grader` command. Heavy libraries are imported inside commands so --help stays fast.

Exit codes: 0 graded and passed, 1 graded and below the pass mark (or a gate missed), 2 could not grade.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

EXIT_PASSED, EXIT_BELOW, EXIT_ERROR = 0, 1, 2


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
    grade.add_argument("--seed", type=int, help="seed of the contract fuzzing (recorded in the scorecard)")
    grade.add_argument("--max-examples", type=int, help="Schemathesis examples per operation (default 15)")
    grade.add_argument("--open", action="store_true", help="open the scorecard in a browser when done")

    report = sub.add_parser("report", help="re-render a scorecard from its result.json")
    report.add_argument("result", type=Path, help="a result.json written by `grade`")
    report.add_argument("--out", type=Path, help="output folder (default: next to result.json)")

    sub.add_parser("rubrics", help="list the bundled rubrics")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.version:
        from . import __version__

        print(f"portfolio-grader {__version__}")
        return EXIT_PASSED
    if args.command == "grade":
        return _grade(args, parser)
    if args.command == "report":
        return _report(args)
    if args.command == "rubrics":
        return _rubrics()
    parser.print_help()
    return EXIT_ERROR


def _raise_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def _fail(message: str) -> int:
    print(f"portfolio-grader: {message}", file=sys.stderr)
    return EXIT_ERROR


def _grade(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if not args.source and not args.url:
        parser.error("grade needs a repository URL, a folder, or --url")
    if args.url and not args.url.startswith(("http://", "https://")):
        parser.error("--url must start with http:// or https://")
    from dataclasses import replace

    from .checks import Settings
    from .pipeline import GradeError, GradeRequest, grade
    from .report import write_reports
    from .report.terminal import print_summary

    settings = Settings()
    if args.seed is not None:
        settings = replace(settings, seed=args.seed)
    if args.max_examples is not None:
        settings = replace(settings, max_examples=max(1, args.max_examples))
    # SIGTERM (a CI runner cancelling the job) unwinds like Ctrl-C, so containers are removed on the way out.
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        scorecard = grade(GradeRequest(source=args.source, url=args.url, ref=args.ref, tier=args.tier,
                                       settings=settings))
    except GradeError as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        return _fail("interrupted; everything the grade started was removed")
    paths = write_reports(scorecard, args.out / scorecard.name)
    print_summary(scorecard, paths=paths)
    if args.open:
        import webbrowser

        webbrowser.open(paths["html"].resolve().as_uri())
    return EXIT_PASSED if scorecard.passed else EXIT_BELOW


def _report(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from .report import load_scorecard, write_reports

    try:
        scorecard = load_scorecard(args.result)
    except (OSError, ValueError, ValidationError) as exc:
        return _fail(f"{args.result}: not a readable result.json ({exc})")
    paths = write_reports(scorecard, args.out or args.result.parent)
    for kind, path in paths.items():
        print(f"{kind}: {path}")
    return EXIT_PASSED


def _rubrics() -> int:
    from .rubric import available, load_rubric

    for name in available():
        rubric = load_rubric(name)
        print(f"{name:14} v{rubric.version:8} {len(rubric.criteria):3} criteria  pass mark {rubric.pass_mark:g}  {rubric.title}")
    return EXIT_PASSED


if __name__ == "__main__":
    sys.exit(main())
