"""Constant-memory statistics: a log-linear histogram for latency percentiles.

Each power of two is split into 32 linear sub-buckets, so a percentile is
within about 3% of the exact value whatever the number of samples; memory
does not grow with the run.
"""

from __future__ import annotations

import math
from array import array

import numpy as np

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

    def add_array(self, samples: np.ndarray) -> None:
        """Add many samples at once (one at a time would cost a numpy call each)."""
        if not len(samples):
            return
        values = np.maximum(samples, 1e-12)
        mantissa, exponent = np.frexp(values)
        keys = exponent * _SUB + ((mantissa - 0.5) * (2 * _SUB)).astype(np.int64)
        counts = self.counts
        low = int(keys.min())
        tally = np.bincount(keys - low)
        for offset in np.flatnonzero(tally).tolist():
            key = low + offset
            counts[key] = counts.get(key, 0) + int(tally[offset])
        self.n += len(values)
        self.total += float(values.sum())
        self.min = min(self.min, float(values.min()))
        self.max = max(self.max, float(values.max()))

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


class StageLatency:
    """Per-stage latency histograms fed with one record of timestamps per packet.

    A producer (the reader thread, a hot loop) appends the ``len(stages) + 1``
    timestamps a packet collected on its way (wire, DMA, poll, ...) to the flat
    array ``pending`` and calls ``fold()`` once ``len(pending) >= limit``
    (``FOLD_AT`` packets): the differences between consecutive timestamps (one
    per stage) and the whole span (``total``) then go into the histograms at
    once.  ``pending`` stays the same array object.
    """

    FOLD_AT = 4096

    def __init__(self, stages: tuple[str, ...]) -> None:
        self.stages = stages
        self.width = len(stages) + 1
        self.hists = {stage: Histogram() for stage in (*stages, "total")}
        self.pending = array("d")
        self.limit = self.FOLD_AT * self.width

    def fold(self) -> None:
        if not self.pending:
            return
        # a copy, not a view: a view exports pending's buffer, and anything holding the
        # frame a moment longer (a sampling profiler, as Dask workers run) would make
        # the resize below fail with BufferError
        rows = np.array(self.pending, dtype=np.float64).reshape(-1, self.width)
        steps = np.diff(rows, axis=1)
        for i, stage in enumerate(self.stages):
            self.hists[stage].add_array(steps[:, i])
        self.hists["total"].add_array(rows[:, -1] - rows[:, 0])
        del self.pending[:]

    def summary(self) -> dict[str, dict[str, float]]:
        self.fold()
        return {stage: h.summary() for stage, h in self.hists.items()}
