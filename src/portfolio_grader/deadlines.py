"""Deadlines: every stage of a grade, each check family and the whole grade end in bounded time.

Two mechanisms, because Python cannot kill a thread:

- a *budget* carried in a context variable (`within(seconds, label)`): the Prober reads it, clamps
  every request's timeout to it, and refuses to send once it has passed, so network code winds down
  by itself at the deadline and records that it was cut (`Budget.overran`);
- `run_with_deadline(fn, seconds, label)`: the stage runs in a daemon worker thread that carries the
  budget; the caller waits at most `seconds` (plus a short grace for the worker to notice) and then
  moves on with what is known. A worker that ignores its budget (a Schemathesis request that drips
  forever) is abandoned, not killed: the container it talks to is removed at teardown, which ends it.

Defaults are generous for real projects; `PORTFOLIO_GRADER_DEADLINE_<NAME>=seconds` overrides one
(`..._GRADE`, `..._BUILD`, `..._FAMILY`, ...), as does `Settings(deadlines=Deadlines(...))`.
"""

from __future__ import annotations

import contextvars
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, fields
from typing import Any, Generic, TypeVar

T = TypeVar("T")
ENV_PREFIX = "PORTFOLIO_GRADER_DEADLINE_"
GRACE = 3.0  # seconds a worker may take past its deadline to notice it (its requests are already cut)


@dataclass(frozen=True)
class Deadlines:
    """Seconds allowed to each stage; `grade` bounds them all together."""

    grade: float = 1800.0  # the whole grade, from fetch to the scorecard
    clone: float = 180.0  # git clone / local copy
    build: float = 900.0  # docker build (compose: every image)
    start: float = 90.0  # from `docker run` to the first HTTP answer
    setup: float = 120.0  # the manifest's setup steps
    discover: float = 120.0  # finding and loading the OpenAPI document, inferring the auth flow
    family: float = 300.0  # each check family (the checks of one area) together
    report: float = 60.0  # writing the scorecard files

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Deadlines:
        """The defaults, each overridden by PORTFOLIO_GRADER_DEADLINE_<NAME> when that is a positive number."""
        env = os.environ if environ is None else environ
        values: dict[str, float] = {}
        for f in fields(cls):
            raw = env.get(ENV_PREFIX + f.name.upper())
            if raw is None:
                continue
            try:
                seconds = float(raw)
            except ValueError:
                continue
            if seconds > 0:
                values[f.name] = seconds
        return cls(**values)


def seconds_text(seconds: float) -> str:
    """`20 s`, `2.5 s`: how a deadline is named in the scorecard."""
    return f"{seconds:g} s" if seconds < 10 else f"{int(round(seconds))} s"


# ---------------------------------------------------------------- budgets carried by the context


@dataclass
class Budget:
    """One deadline in force: when it ends and what it is called in the scorecard."""

    ends: float  # time.monotonic()
    label: str  # "the discover stage's 120 s deadline"
    overran: bool = False  # something was cut short or refused because of it

    def remaining(self) -> float:
        return self.ends - time.monotonic()

    @property
    def expired(self) -> bool:
        return self.remaining() <= 0


_BUDGETS: contextvars.ContextVar[tuple[Budget, ...]] = contextvars.ContextVar("portfolio_grader_budgets", default=())


@contextmanager
def within(seconds: float, label: str) -> Iterator[Budget]:
    """A deadline `seconds` from now for the code inside (nested deadlines: the tightest wins)."""
    budget = Budget(time.monotonic() + max(seconds, 0.0), label)
    token = _BUDGETS.set((*_BUDGETS.get(), budget))
    try:
        yield budget
    finally:
        _BUDGETS.reset(token)


def binding() -> Budget | None:
    """The tightest deadline in force in this context, None when there is none."""
    budgets = _BUDGETS.get()
    return min(budgets, key=lambda b: b.ends) if budgets else None


def remaining() -> float | None:
    """Seconds left before the tightest deadline in force (negative once passed), None without one."""
    budget = binding()
    return None if budget is None else budget.remaining()


def mark_overrun() -> Budget | None:
    """Record that work was cut short by the binding deadline (the Prober calls it); returns that budget.

    Every deadline that has passed is marked too: a check cut by the grade's deadline overran as well."""
    budget = binding()
    for other in _BUDGETS.get():
        if other is budget or other.expired:
            other.overran = True
    return budget


# ---------------------------------------------------------------- running a stage with a deadline


@dataclass
class Finished(Generic[T]):
    """What `run_with_deadline` saw: the value, or that the deadline passed first."""

    value: T | None
    timed_out: bool
    seconds: float
    budget: Budget

    @property
    def overran(self) -> bool:
        """The stage ran out of time, or finished only because its requests were cut at the deadline."""
        return self.timed_out or self.budget.overran


def run_with_deadline(fn: Callable[[], T], seconds: float, label: str, grace: float = GRACE) -> Finished[T]:
    """Run `fn` in a worker thread under a `seconds` budget; wait for it at most `seconds + grace`.

    Exceptions of `fn` are raised here. On timeout the worker is left to finish on its own (daemon).
    A KeyboardInterrupt in the waiting thread propagates at once.
    """
    started = time.monotonic()
    context = contextvars.copy_context()  # the outer deadlines (the grade's) stay in force in the worker
    box: dict[str, Any] = {}
    holder: list[Budget] = []
    ready = threading.Event()

    def work() -> None:
        with within(seconds, label) as budget:
            holder.append(budget)
            ready.set()
            try:
                box["value"] = fn()
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                box["error"] = exc

    thread = threading.Thread(target=context.run, args=(work,), name=f"pg-{label[:40]}", daemon=True)
    thread.start()
    ready.wait(5)
    thread.join(max(seconds, 0.0) + grace)
    budget = holder[0] if holder else Budget(started + seconds, label)
    elapsed = time.monotonic() - started
    if thread.is_alive():
        budget.overran = True
        return Finished(None, True, elapsed, budget)
    if "error" in box:
        raise box["error"]
    return Finished(box.get("value"), False, elapsed, budget)


class GradeClock:
    """The whole grade's deadline: each stage gets its own budget, never more than what is left."""

    def __init__(self, deadlines: Deadlines) -> None:
        self.deadlines = deadlines
        self.started = time.monotonic()
        self.ends = self.started + deadlines.grade

    def remaining(self) -> float:
        return self.ends - time.monotonic()

    @property
    def expired(self) -> bool:
        return self.remaining() <= 0

    def budget(self, stage: str) -> float:
        """Seconds for `stage` (a Deadlines field): its own deadline, capped by what the grade has left."""
        return max(0.0, min(getattr(self.deadlines, stage), self.remaining()))

    def label(self, stage: str) -> str:
        """How the deadline that binds `stage` now is named: its own, or the grade's when that is tighter."""
        own = getattr(self.deadlines, stage)
        if self.remaining() < own:
            return f"the grade's {seconds_text(self.deadlines.grade)} deadline"
        return f"its {seconds_text(own)} deadline"

    @contextmanager
    def running(self) -> Iterator[Budget]:
        """The grade's deadline in force for the code inside (the Prober respects it in this thread)."""
        with within(self.remaining(), f"the grade's {seconds_text(self.deadlines.grade)} deadline") as budget:
            yield budget
