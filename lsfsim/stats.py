"""Constant-memory statistics: a log-linear histogram for latency percentiles.

Each power of two is split into 32 linear sub-buckets, so a percentile is
within about 3% of the exact value whatever the number of samples; memory
does not grow with the run.
"""

from __future__ import annotations

import math

_SUB = 32


class Histogram:
    """Latency samples in seconds; percentiles, mean, min and max."""

    __slots__ = ("counts", "n", "total", "min", "max")

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}
        self.n = 0
        self.total = 0.0
        self.min = math.inf
        self.max = 0.0

    def add(self, x: float) -> None:
        if x <= 0.0:
            x = 1e-12
        m, e = math.frexp(x)
        key = e * _SUB + int((m - 0.5) * 2 * _SUB)
        counts = self.counts
        counts[key] = counts.get(key, 0) + 1
        self.n += 1
        self.total += x
        if x < self.min:
            self.min = x
        if x > self.max:
            self.max = x

    @staticmethod
    def _bucket_mid(key: int) -> float:
        e, sub = divmod(key, _SUB)
        low = math.ldexp(0.5 + sub / (2 * _SUB), e)
        high = math.ldexp(0.5 + (sub + 1) / (2 * _SUB), e)
        return (low + high) / 2

    def percentile(self, p: float) -> float:
        """The p-th percentile (0..100); 0.0 when empty."""
        if not self.n:
            return 0.0
        rank = max(1, math.ceil(self.n * p / 100.0))
        seen = 0
        for key in sorted(self.counts):
            seen += self.counts[key]
            if seen >= rank:
                return min(max(self._bucket_mid(key), self.min), self.max)
        return self.max

    @property
    def mean(self) -> float:
        return self.total / self.n if self.n else 0.0

    def summary(self) -> dict[str, float]:
        return {
            "count": self.n,
            "mean": self.mean,
            "min": self.min if self.n else 0.0,
            "p50": self.percentile(50),
            "p90": self.percentile(90),
            "p99": self.percentile(99),
            "max": self.max,
        }
