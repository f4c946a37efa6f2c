"""Generator timing (constant rate, Poisson, on/off) and streaming memory.

Oracles: hand calculation of rates and gaps, statistics of the gaps.
"""

from __future__ import annotations

import itertools
import math
import statistics

from lsfsim.traffic import ConstantRate, OnOff, Poisson
from tests.traffic.helpers import frames_of, memory_growth

# -- timing ------------------------------------------------------------------------------


def test_cbr_times_are_i_over_rate() -> None:
    src = ConstantRate(1000, size=100, count=500, start=0.25)
    times = [t for t, _ in frames_of(src)]
    assert len(times) == 500 == src.total_frames
    assert times == [0.25 + i / 1000 for i in range(500)]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert max(abs(g - 1e-3) for g in gaps) < 1e-12


def test_cbr_duration_and_count_stop_whichever_first() -> None:
    # i / 1000 < 0.05  <=>  i <= 49: 50 frames.
    assert len(frames_of(ConstantRate(1000, duration=0.05))) == 50
    assert ConstantRate(1000, duration=0.05).total_frames == 50
    assert len(frames_of(ConstantRate(1000, duration=0.05, count=20))) == 20
    assert len(frames_of(ConstantRate(1000, duration=0.0205, count=50))) == 21
    assert ConstantRate(1000, duration=0.0205, count=50).total_frames == 21


def test_poisson_mean_rate_and_exponential_gaps() -> None:
    rate, n = 10_000.0, 10_000
    times = [t for t, _ in frames_of(Poisson(rate, size=60, count=n, seed=7))]
    assert len(times) == n
    gaps = [times[0]] + [b - a for a, b in itertools.pairwise(times)]
    mean = statistics.fmean(gaps)
    # The mean of n exponential gaps has a relative standard deviation of 1/sqrt(n) = 1%.
    assert abs(mean * rate - 1) < 0.04
    # Exponential: coefficient of variation 1, P(gap < mean) = 1 - 1/e.
    assert abs(statistics.pstdev(gaps) / mean - 1) < 0.05
    below = sum(g < 1 / rate for g in gaps) / n
    assert abs(below - (1 - math.exp(-1))) < 0.02
    assert all(g >= 0 for g in gaps)


def test_onoff_fixed_duty_cycle() -> None:
    # 10 ms on at 10,000/s = 100 frames per burst, 30 ms off: 25 bursts in 1 s.
    src = OnOff(10_000, on=0.01, off=0.03, size=60, duration=1.0)
    times = [t for t, _ in frames_of(src)]
    assert len(times) == 2500
    assert src.duty_cycle == 0.25
    for t in times:
        phase = t - math.floor(t / 0.04 + 1e-9) * 0.04
        assert -1e-9 < phase < 0.01
    gaps = sorted({round(b - a, 9) for a, b in itertools.pairwise(times)})
    assert gaps == [1e-4, 0.0301]


def test_onoff_exponential_duty_cycle() -> None:
    src = OnOff(10_000, on=0.01, off=0.03, size=60, duration=30.0, exponential=True, seed=3)
    times = [t for t, _ in frames_of(src)]
    # Long-run rate: rate * on / (on + off) = 2,500 frames/s (bursts hold ceil(on * rate)).
    assert abs(len(times) / 30.0 / 2500 - 1) < 0.1
    assert all(b >= a for a, b in itertools.pairwise(times))
    burst_gaps = [b - a for a, b in itertools.pairwise(times) if b - a > 2e-4]
    assert len(burst_gaps) > 500  # many distinct bursts, of varying spacing
    assert statistics.pstdev(burst_gaps) > 0.01


# -- memory --------------------------------------------------------------------------------


def test_generators_stream_in_constant_memory() -> None:
    src = Poisson(
        1e6,
        size="imix",
        proto="udp,tcp,icmp,arp,ipv6,vlan-udp",
        hosts=50,
        broadcast_fraction=0.1,
        other_fraction=0.1,
        seed=1,
    )
    assert memory_growth(src.frames(), 10_000, 90_000) < 64 * 1024
