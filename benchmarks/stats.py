"""Median and spread of repeated measurements, and the paired, alternating order they are taken in.

Machines differ, so the benchmark prints ratios: each repetition measures both sides back to back
(A then B, then B then A, ...) and the ratio of that pair is one sample; noise that drifts over the
run (another job on the engine, a cache warming) hits both sides of a pair alike.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Summary:
    median: float
    low: float
    high: float
    n: int

    @property
    def spread(self) -> float:
        """High minus low, as a share of the median (0.1: the samples lie within 10 % of it)."""
        return (self.high - self.low) / self.median if self.median else 0.0

    def text(self, unit: str = "×", digits: int = 2) -> str:
        """`1.59× (1.52–1.71, n=3)`: the median, then the range."""
        if self.n == 1:
            return f"{self.median:.{digits}f}{unit} (n=1)"
        return f"{self.median:.{digits}f}{unit} ({self.low:.{digits}f}–{self.high:.{digits}f}, n={self.n})"


def summarise(values: Sequence[float]) -> Summary:
    if not values:
        raise ValueError("nothing to summarise")
    return Summary(statistics.median(values), min(values), max(values), len(values))


def ratios(numerators: Sequence[float], denominators: Sequence[float]) -> list[float]:
    """The ratio of each pair (repetition i of A over repetition i of B)."""
    if len(numerators) != len(denominators):
        raise ValueError("paired samples must have the same length")
    return [a / b for a, b in zip(numerators, denominators) if b > 0]


def alternating(reps: int, sides: Sequence[str]) -> list[list[str]]:
    """The order of each repetition: the sides in turn, rotated by one each time, so no side always goes first."""
    n = len(sides)
    return [[sides[(i + k) % n] for k in range(n)] for i in range(reps)]
