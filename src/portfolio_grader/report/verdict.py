"""The verdict in words: one function every view calls, so they never disagree.

The scorecard, the terminal summary, `grade -q`, the PR comment, Gradescope and the class dashboard all
say it the same way. A grade passes when the score reaches the bar (the rubric's pass mark, or a CI
threshold) *and* every gate holds. A score above the bar with a gate missed reads "not passed: a gate is
not met", never "below the pass mark" beside "5.7 above".

`verdict()` takes plain values, so the batch code, which reads result.json as JSON, can call it as well
as `verdict_of()`, which takes a Scorecard.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..models import Scorecard

PASSED = "passed"
GATE_NOT_MET = "a gate is not met"
BELOW = "below"


def _pts(value: float) -> str:
    rounded = round(float(value), 1)
    return str(int(rounded)) if rounded == int(rounded) else f"{rounded:.1f}"


@dataclass(frozen=True)
class Verdict:
    passed: bool
    score: float
    bar: float
    bar_label: str  # "the pass mark", "--fail-under", "the threshold"
    gates_met: bool
    failed_gates: tuple[str, ...] = ()  # titles of the gate criteria that did not pass (the ones that may be named)
    hidden_gates: int = 0  # failed gates that are hidden from learners: counted, not named

    @property
    def below(self) -> bool:
        return self.score < self.bar

    @property
    def reasons(self) -> tuple[str, ...]:
        """Why it did not pass: "below the pass mark", "a gate is not met" (both when both hold)."""
        out = []
        if self.below:
            out.append(f"{BELOW} {self.bar_label}")
        if not self.gates_met:
            out.append(GATE_NOT_MET)
        return tuple(out)

    @property
    def headline(self) -> str:
        """"passed", "not passed: a gate is not met", "not passed: below the pass mark" or both reasons."""
        if self.passed:
            return PASSED
        return "not passed: " + (" and ".join(self.reasons) or "see the scorecard")

    @property
    def gate_names(self) -> tuple[str, ...]:
        """The failed gates as shown: named ones, then "n hidden checks"."""
        names = list(self.failed_gates)
        if self.hidden_gates:
            names.append(f"{self.hidden_gates} hidden check{'s' if self.hidden_gates != 1 else ''}")
        return tuple(names)

    @property
    def gates_text(self) -> str:
        """"met", or "not met: Title; Title"."""
        if self.gates_met:
            return "met"
        names = self.gate_names
        return "not met" + (f": {'; '.join(names)}" if names else "")

    @property
    def sentence(self) -> str:
        """The headline with the gates that hold it back: "not passed: a gate is not met (Ownership)"."""
        if self.passed or self.gates_met or not self.gate_names:
            return self.headline
        return f"{self.headline} ({'; '.join(self.gate_names)})"

    @property
    def distance(self) -> str:
        """"5.7 above", "10 below" or "at" the bar, for a line that names the bar itself."""
        diff = round(self.score - self.bar, 1)
        return "at" if diff == 0 else f"{_pts(abs(diff))} {'above' if diff > 0 else 'below'}"

    @property
    def margin(self) -> str:
        """Where the score stands against the bar: "5.7 above the pass mark 70", "at the pass mark 70"."""
        diff = round(self.score - self.bar, 1)
        label = f"{self.bar_label} {_pts(self.bar)}"
        if diff == 0:
            return f"at {label}"
        return f"{_pts(abs(diff))} {'above' if diff > 0 else 'below'} {label}"


def verdict(score: float, bar: float, gates_met: bool, failed_gates: Iterable[str] = (), *,
            hidden_gates: int = 0, bar_label: str = "the pass mark") -> Verdict:
    """The verdict of a score held to `bar` with the gates as they stand."""
    score, bar = float(score or 0), float(bar if bar is not None else 0)
    return Verdict(passed=bool(gates_met) and score >= bar, score=score, bar=bar, bar_label=bar_label,
                   gates_met=bool(gates_met), failed_gates=tuple(failed_gates), hidden_gates=hidden_gates)


def verdict_of(scorecard: Scorecard, *, learner: bool = False, threshold: float | None = None,
               bar_label: str | None = None) -> Verdict:
    """The scorecard's verdict. `learner`: gates hidden from learners are counted, not named. `threshold`:
    a CI bar in place of the rubric's pass mark (gates still count)."""
    failing = [c for c in scorecard.criteria if c.gate_failed]
    named = [c.title for c in failing if not (learner and c.visibility == "hidden")]
    label = bar_label or ("the pass mark" if threshold is None else "the threshold")
    return verdict(scorecard.score, scorecard.pass_mark if threshold is None else threshold, scorecard.gates_met,
                   named, hidden_gates=len(failing) - len(named), bar_label=label)


def verdict_of_result(data: dict) -> Verdict:
    """The verdict of a result.json read as plain JSON (batch rows); hidden gates are counted, not named."""
    criteria = data.get("criteria") or []
    failing = [c for c in criteria if c.get("gate") and c.get("status") not in ("pass", "not_applicable")]
    named = [str(c.get("title") or c.get("id")) for c in failing if c.get("visibility") != "hidden"]
    gates_met = data.get("gates_met")
    if gates_met is None:
        gates_met = not failing
    return verdict(data.get("score") or 0, data.get("pass_mark") or 0, bool(gates_met), named,
                   hidden_gates=len(failing) - len(named))
