"""Latency statistics: log-linear histograms fed with rows of per-packet timestamps."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from lsfsim.stats import Histogram, StageLatency


def test_percentiles_are_within_the_bucket_width_of_the_exact_ones() -> None:
    rng = random.Random(4)
    samples = [rng.lognormvariate(-11, 1.2) for _ in range(50_000)]   # around 17 µs
    h = Histogram()
    for start in range(0, len(samples), 7000):                         # several batches
        h.add_array(np.array(samples[start:start + 7000]))
    exact = sorted(samples)
    for p in (50, 90, 99):
        want = exact[math.ceil(len(exact) * p / 100) - 1]
        assert h.percentile(p) == pytest.approx(want, rel=1 / 32)     # 32 sub-buckets
    assert h.n == len(samples)
    assert h.mean == pytest.approx(sum(samples) / len(samples), rel=1e-12)
    assert (h.min, h.max) == (min(samples), max(samples))


def test_empty_histogram() -> None:
    h = Histogram()
    h.add_array(np.array([]))
    assert h.summary() == {"count": 0, "mean": 0.0, "min": 0.0, "p50": 0.0, "p90": 0.0,
                           "p99": 0.0, "max": 0.0}


def test_stage_latency_splits_rows_into_stages_and_total() -> None:
    lat = StageLatency(("a", "b", "c"))
    rows = [(0.0, 1e-6, 3e-6, 6e-6), (1.0, 1.0 + 2e-6, 1.0 + 2e-6, 1.0 + 5e-6)]
    n = 0
    while n < StageLatency.FOLD_AT + 10:              # past one fold
        for row in rows:
            lat.pending.extend(row)
            n += 1
            if len(lat.pending) >= lat.limit:
                lat.fold()
    assert 0 < len(lat.pending) < lat.limit          # folded once, the rest still pending
    summary = lat.summary()
    assert list(summary) == ["a", "b", "c", "total"]
    assert all(s["count"] == n for s in summary.values())
    assert summary["a"]["mean"] == pytest.approx(1.5e-6, rel=1e-9)
    assert summary["b"]["min"] == pytest.approx(1e-12)   # zero is clamped to 1 ps
    assert summary["b"]["max"] == pytest.approx(2e-6, rel=1e-9)
    assert summary["c"]["mean"] == pytest.approx(3e-6, rel=1e-6)
    assert summary["total"]["min"] == pytest.approx(5e-6, rel=1e-6)
    assert summary["total"]["max"] == pytest.approx(6e-6, rel=1e-6)
