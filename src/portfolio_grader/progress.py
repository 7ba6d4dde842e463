"""What `grade` shows while it runs, on stderr: the stage, the check family, and the deadline left.

The pipeline holds one Progress and calls it at each stage's start and end and before each check (with
what is left of its family's deadline); the Prober calls it for every exchange. Nothing is global, and
a grade run without one (the Action, batch children, tests) says nothing.

- `Progress` says nothing: `grade -q`, and every caller that did not ask for more.
- `Lines`: one timestamped line per stage and check family, for logs and CI; during a long wait a line
  every `every` seconds says what is still running and the deadline left.
- `Live`: on a terminal, a rich status line redrawn with the time spent and the deadline left; each stage
  that ends leaves one line behind.

`-v` adds each request's line (method, path, status, milliseconds) to either. `for_stderr` picks one.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, TextIO

from .deadlines import seconds_text

if TYPE_CHECKING:
    from .probe import Exchange

EVERY = 30.0  # seconds between the plain lines that say a long stage is still running


class Progress:
    """Says nothing; the interface the pipeline and the Prober call (any thread may call it)."""

    def stage_started(self, stage: str, deadline: float | None = None) -> None:
        """`stage` begins; `deadline` is the seconds it may take, when the grader knows them."""

    def stage_ended(self, stage: str, status: str, seconds: float, detail: str = "") -> None:
        """`stage` ended `ok`, `failed` or `timeout` after `seconds`."""

    def check_started(self, family: str, check: str, deadline: float | None = None) -> None:
        """A check of `family` begins; `deadline` is what is left of the family's (or the grade's) deadline."""

    def exchange(self, exchange: Exchange) -> None:
        """The Prober sent a request and recorded its answer."""

    def close(self) -> None:
        """The grade is over (or interrupted): stop redrawing."""

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def for_stderr(*, quiet: bool = False, verbose: int = 0, stream: TextIO | None = None,
               environ: Mapping[str, str] | None = None) -> Progress:
    """Silent with -q; plain lines when `stream` (default stderr) is not a terminal or CI is set; else rich."""
    if quiet:
        return Progress()
    stream = sys.stderr if stream is None else stream
    env = os.environ if environ is None else environ
    if env.get("CI") or not _isatty(stream):
        return Lines(stream, verbose=verbose)
    return Live(stream, verbose=verbose, no_color=bool(env.get("NO_COLOR")))


def _isatty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # a closed or file-like stream without isatty
        return False


def _took(seconds: float) -> str:
    """`0.3 s`, `41 s`: time spent, never in exponent notation."""
    return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"


def request_line(exchange: Exchange) -> str:
    """`GET /books/7 -> 404 (12 ms)`: the path as sent (no host, no secrets), one printable line."""
    from urllib.parse import urlsplit

    from .evidence import redact
    from .report.terminal import clean

    parts = urlsplit(exchange.url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    answer = str(exchange.status) if exchange.status is not None else (exchange.error or "no answer")
    took = f" ({exchange.elapsed_ms:.0f} ms)" if exchange.elapsed_ms else ""
    return clean(f"{exchange.method} {redact(target, exchange.secrets)} -> {answer}{took}", 160)


class _Shown(Progress):
    """What is running now, kept for the display (the stage, its deadline, the family and check)."""

    def __init__(self, verbose: int = 0) -> None:
        self.verbose = verbose
        self._lock = threading.RLock()
        self.stage: str | None = None
        self.stage_began = 0.0
        self.stage_ends: float | None = None  # time.monotonic() of the stage's deadline
        self.family: str | None = None
        self.check: str | None = None
        self.family_ends: float | None = None

    def stage_started(self, stage: str, deadline: float | None = None) -> None:
        with self._lock:
            now = time.monotonic()
            self.stage, self.stage_began = stage, now
            self.stage_ends = None if deadline is None else now + deadline
            self.family = self.check = self.family_ends = None
        self.said(f"{stage} started" + (f" (deadline {seconds_text(deadline)})" if deadline is not None else ""))

    def stage_ended(self, stage: str, status: str, seconds: float, detail: str = "") -> None:
        with self._lock:
            if self.stage == stage:
                self.stage = self.family = self.check = None
        self.said(f"{stage} {status} in {_took(seconds)}" + (f": {detail}" if detail else ""), ended=status)

    def check_started(self, family: str, check: str, deadline: float | None = None) -> None:
        with self._lock:
            changed = family != self.family
            self.family, self.check = family, check
            self.family_ends = None if deadline is None else time.monotonic() + deadline
        if changed:
            self.said(f"checks: {family}" + (f" ({seconds_text(deadline)} of its deadline left)"
                                             if deadline is not None else ""))

    def exchange(self, exchange: Exchange) -> None:
        if self.verbose:
            self.said("  " + request_line(exchange), request=True)

    def now_running(self) -> str | None:
        """`checks: auth (auth.protected) 41 s, 259 s left`, or None between stages."""
        with self._lock:
            if self.stage is None:
                return None
            now = time.monotonic()
            what = f"checks: {self.family} ({self.check})" if self.family else self.stage
            ends = self.family_ends if self.family else self.stage_ends
            text = f"{what} {_took(now - self.stage_began)}"
            return text + (f", {seconds_text(max(0.0, ends - now))} left" if ends is not None else "")

    def said(self, text: str, *, ended: str | None = None, request: bool = False) -> None:
        raise NotImplementedError


class Lines(_Shown):
    """Timestamped lines (`12:03:04 build (deadline 900 s)`); a stage still running after `every` seconds
    is named again with its deadline left, every `every` seconds."""

    def __init__(self, stream: TextIO, *, verbose: int = 0, every: float = EVERY) -> None:
        super().__init__(verbose)
        self.stream = stream
        self.every = every
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    def stage_started(self, stage: str, deadline: float | None = None) -> None:
        super().stage_started(stage, deadline)
        if self._ticker is None and self.every > 0:
            self._ticker = threading.Thread(target=self._tick, name="grade-progress", daemon=True)
            self._ticker.start()

    def _tick(self) -> None:
        last = time.monotonic()
        while not self._stop.wait(min(self.every, 1.0)):
            with self._lock:
                running = self.stage is not None and time.monotonic() - self.stage_began >= self.every
            if running and time.monotonic() - last >= self.every:
                last = time.monotonic()
                text = self.now_running()
                if text:
                    self.said(f"still running: {text}")

    def said(self, text: str, *, ended: str | None = None, request: bool = False) -> None:
        with self._lock:
            try:
                self.stream.write(f"{time.strftime('%H:%M:%S')} {text}\n")
                self.stream.flush()
            except (OSError, ValueError):  # stderr closed under us: progress is never worth a crash
                pass

    def close(self) -> None:
        self._stop.set()


class Live(_Shown):
    """A rich status line on a terminal: spinner, stage or family and check, time spent, deadline left."""

    _MARKS = {"ok": ("✓", "green"), "failed": ("✗", "red"), "timeout": ("⏱", "yellow")}

    def __init__(self, stream: TextIO, *, verbose: int = 0, no_color: bool = False) -> None:
        from rich.console import Console
        from rich.live import Live as RichLive
        from rich.spinner import Spinner

        super().__init__(verbose)
        self.console = Console(file=stream, highlight=False, emoji=False, no_color=no_color or None)
        self._spinner = Spinner("dots", text="")
        self._live = RichLive(get_renderable=self._render, console=self.console, refresh_per_second=4,
                              transient=True, redirect_stdout=False, redirect_stderr=False)
        self._started = False

    def _render(self):
        from rich.text import Text

        self._spinner.update(text=Text(self.now_running() or "", style="cyan"))
        return self._spinner

    def said(self, text: str, *, ended: str | None = None, request: bool = False) -> None:
        from rich.text import Text

        with self._lock:
            if not self._started:
                self._live.start()
                self._started = True
        if ended is not None:
            mark, style = self._MARKS.get(ended, ("·", "yellow"))
            self.console.print(Text.assemble((mark + " ", style), text))
        elif request:
            self.console.print(Text(text, style="dim"))
        elif text.startswith("checks: "):
            self.console.print(Text("  " + text, style="dim"))

    def close(self) -> None:
        with self._lock:
            if self._started:
                self._live.stop()
                self._started = False
