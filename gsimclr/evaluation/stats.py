"""Seed statistics for `compare`: mean ± 95% confidence interval, and whether a paired difference is noise."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from scipy import stats

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Summary:
    """Mean and 95 % Student-t half-width over seeds; `format` prints it as the tables do."""

    mean: float
    half_width: float
    """Half-width of the Student-t confidence interval; nan with a single seed."""
    n: int

    def __str__(self) -> str:
        return self.format()

    def format(self, signed: bool = False) -> str:
        """`mean ± half-width` in points; `signed` shows the sign of a difference."""
        mean = f"{self.mean:+.2f}" if signed else f"{self.mean:.2f}"
        return mean if math.isnan(self.half_width) else f"{mean} ± {self.half_width:.2f}"

    @property
    def excludes_zero(self) -> bool:
        """Whether the interval lies entirely on one side of zero."""
        return not math.isnan(self.half_width) and abs(self.mean) > self.half_width


def summarize(values: Sequence[float], confidence: float = CONFIDENCE) -> Summary:
    """Mean and t-interval over seeds (seeds are few, so the t quantile, not 1.96)."""
    n = len(values)
    if n == 0:
        raise ValueError("no values to summarize")
    mean = sum(values) / n
    if n == 1:
        return Summary(mean, math.nan, 1)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return Summary(mean, float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n), n)


def paired_difference(treatment: Sequence[float], control: Sequence[float]) -> Summary:
    """Summary of per-seed differences (same seed = same data split and initialisation seed for both methods)."""
    if len(treatment) != len(control):
        raise ValueError("paired values need the same seeds")
    return summarize([t - c for t, c in zip(treatment, control, strict=True)])


def verdict(difference: Summary, better: str, worse: str) -> str:
    """Plain words for a paired difference: which method wins, or that the seeds cannot tell them apart."""
    if difference.n == 1:
        return "one seed: cannot tell"
    if not difference.excludes_zero:
        return "not distinguishable from seed noise"
    return f"{better} better" if difference.mean > 0 else f"{worse} better"
