#!/usr/bin/env python3
"""cProfile of one grade, worker threads included.

`python -m cProfile -m portfolio_grader grade ...` profiles the main thread only, and a grade runs each
discovery and check in a worker thread (deadlines.run_with_deadline), so its profile shows the main thread
waiting in `join`. This wraps every thread's `run` in a profiler of its own and merges them:

    python benchmarks/profile_grade.py /tmp/grade.prof grade sample_submissions/beginner-bookshelf-fastapi \
        --tier beginner --out /tmp/prof-out -q --exit-zero
    python -c "import pstats; pstats.Stats('/tmp/grade.prof').sort_stats('cumulative').print_stats('portfolio_grader', 30)"
"""

from __future__ import annotations

import cProfile
import pstats
import sys
import threading

_profiles: list[cProfile.Profile] = []
_lock = threading.Lock()


def _profiled_run(original):
    def run(self):
        profile = cProfile.Profile()
        with _lock:
            _profiles.append(profile)
        profile.enable()
        try:
            original(self)
        finally:
            profile.disable()
    return run


def main() -> int:
    out, argv = sys.argv[1], sys.argv[2:]
    threading.Thread.run = _profiled_run(threading.Thread.run)
    from portfolio_grader.cli import main as grade_main

    main_profile = cProfile.Profile()
    main_profile.enable()
    try:
        code = grade_main(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        main_profile.disable()
    stats = pstats.Stats(main_profile)
    with _lock:
        for profile in _profiles:
            try:
                stats.add(profile)
            except TypeError:  # a thread still running (abandoned at a deadline): no stats yet
                pass
    stats.dump_stats(out)
    return code or 0


if __name__ == "__main__":
    sys.exit(main())
