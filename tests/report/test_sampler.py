"""The sampler: it samples what a run did, without changing the run, in bounded memory."""

from __future__ import annotations

import math
from typing import Any

import pytest

from lsfsim.config.model import load_model
from lsfsim.kernel.cpu import BUCKETS
from lsfsim.report.sampler import Sampler
from tests.report import NO_NAPI, SLOW_READER, run, sampled


class NaiveSampler:
    """The obvious probe, as an independent oracle: a SimPy process ticking on the
    same grid that stops once its tick (and the kernel's timer tick) is all that is
    left.  It pushes the run's end to its last tick, which is why the real Sampler does not work so.
    It reads the state directly, so the readers must be SimPy processes
    (``lazy_readers=False``), not evaluated lazily."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.rows: list[tuple[float, int, int, int, float]] = []

    def attach(self, machine: Any) -> None:
        self.machine = machine
        machine.env.process(self._tick())

    def _tick(self) -> Any:
        m = self.machine
        env = m.env
        k = 0
        while True:
            t = k * self.interval
            if t > env.now:
                yield env.timeout(t - env.now)
            sock = m.apps[0].sock
            self.rows.append((env.now, m.dev.chip_rx - m.dev.cur_rx, m.wire.offered,
                              0 if sock is None else sock.sk_rmem_alloc, m.cpus[0].acct[1]))
            if env.peek() == math.inf or m.tick.only_tick_left():
                return                   # only this process and the tick were left: over
            k += 1

    def finish(self) -> None:
        """Every row is recorded as it is taken."""


def test_sampler_does_not_change_the_run() -> None:
    _m, plain = run(SLOW_READER)
    sampler = Sampler()
    _m, result = run(SLOW_READER, sampler)
    a, b = result.deterministic(), plain.deterministic()
    # every interrupt step is an event when sampled (see Sampler.attach): only the
    # event count may differ
    assert a.pop("events") >= b.pop("events")
    assert a == b
    assert len(sampler) > 100


def test_run_finishes_and_last_sample_is_the_end() -> None:
    result, sampler = sampled("SLOW_READER")
    t = sampler.column("t")
    assert t[0] == 0.0
    assert t[-1] == pytest.approx(result["sim_seconds"], abs=1e-12)
    assert sampler.finished
    # the grid is regular up to the final sample
    assert all(x == k * sampler.interval for k, x in enumerate(t[:-1]))
    assert 0 < t[-1] - t[-2] <= sampler.interval * (1 + 1e-9)


def test_every_series_has_one_value_per_sample() -> None:
    _result, sampler = sampled("SLOW_READER")
    n = len(sampler)
    assert {len(v) for v in sampler.series.values()} == {n}
    assert all(isinstance(x, float) for v in sampler.series.values() for x in v)


@pytest.mark.parametrize("name", ["SLOW_READER", "NO_NAPI"])
def test_final_samples_equal_the_result(name: str) -> None:
    result, sampler = sampled(name)
    d = result.data
    places = d["conservation"]["places"]
    last = {k: v[-1] for k, v in sampler.series.items()}
    assert last["ring"] == places["in_rx_ring"]
    assert last["offered"] == d["offered"]
    assert last["interrupts"] == d["interrupts"]
    for place in ("mac_filtered", "rx_missed_errors", "rx_oversize", "rx_dropped",
                  "softnet_dropped"):
        assert last[f"drops.{place}"] == places[place], place
    for s in d["sockets"]:
        i = s["index"]
        assert last[f"sock{i}.rcvbuf_drops"] == s["rcvbuf_drops"]
        assert last[f"sock{i}.filtered"] == s["filtered"]
        assert last[f"sock{i}.delivered"] == s["delivered"]
        assert last[f"sock{i}.rmem_alloc"] == s["rmem_alloc"]
        assert last[f"sock{i}.rcvbuf"] == s["rcvbuf"]
        assert last[f"sock{i}.queue_len"] == s["queued"]
        # the sampled peak cannot exceed the true peak
        assert max(sampler.column(f"sock{i}.rmem_alloc")) <= s["max_rmem_alloc"]
    for c in d["cpu_time"]:
        for b in BUCKETS:
            assert last[f"cpu{c['cpu']}.{b}"] == pytest.approx(c[b], abs=1e-12)


def test_the_scenarios_exercise_what_is_sampled() -> None:
    """Guard the fixtures: each drops where the tests expect it to."""
    result, sampler = sampled("SLOW_READER")
    assert result.sockets[0]["rcvbuf_drops"] > 100
    assert max(sampler.column("sock0.rmem_alloc")) > 0.8 * result.sockets[0]["rcvbuf"]
    result, sampler = sampled("NO_NAPI")
    assert result["softnet_dropped"] > 100
    assert max(sampler.column("ring")) > 0


@pytest.mark.parametrize("name", ["SLOW_READER", "NO_NAPI"])
def test_physical_bounds(name: str) -> None:
    result, sampler = sampled(name)
    ring = sampler.column("ring")
    assert all(0 <= r <= sampler.ring_size for r in ring)
    assert sampler.ring_size == load_model(result["model"]).hardware.nic.rx_ring
    rmem = sampler.column("sock0.rmem_alloc")
    rcvbuf = sampler.column("sock0.rcvbuf")
    # 2.6.33 queues only while rmem + truesize < rcvbuf, so rmem stays below rcvbuf
    assert all(r < b for r, b in zip(rmem, rcvbuf, strict=True) if not math.isnan(b))
    for name_ in sampler.drop_places() + ["offered", "interrupts"]:
        col = sampler.column(name_)
        assert all(a <= b for a, b in zip(col, col[1:], strict=False)), name_
    for c in range(sampler.ncpus):
        for b in BUCKETS:
            col = sampler.column(f"cpu{c}.{b}")
            assert all(x <= y for x, y in zip(col, col[1:], strict=False))


@pytest.mark.parametrize("spec", [SLOW_READER, NO_NAPI])
def test_values_are_the_state_at_each_grid_time(spec: dict[str, Any]) -> None:
    """Compare with a process ticking on the same grid (no decimation)."""
    interval = 250e-6 if spec is SLOW_READER else 20e-6
    naive = NaiveSampler(interval)
    sampler = Sampler(interval=interval, max_samples=None)
    run(spec, naive, lazy_readers=False)
    machine, _ = run(spec, sampler)
    assert machine.lazy_readers                # the sampler observes a lazy reader right
    t = sampler.column("t")
    common = len(t) - 1                      # the naive one has no off-grid final sample
    assert common > 500
    for k in range(common):
        nt, ring, offered, rmem, si = naive.rows[k]
        assert nt == pytest.approx(t[k], abs=1e-12)
        assert (ring, offered, rmem) == (sampler.column("ring")[k],
                                         sampler.column("offered")[k],
                                         sampler.column("sock0.rmem_alloc")[k]), t[k]
        assert si == pytest.approx(sampler.column("cpu0.si")[k], abs=1e-15)


def test_decimation_bounds_memory_and_keeps_the_grid() -> None:
    full = Sampler(interval=50e-6, max_samples=None)
    small = Sampler(interval=50e-6, max_samples=100)
    run(SLOW_READER, full)
    run(SLOW_READER, small)
    n = len(small)
    assert 50 <= n <= 101
    assert len(full) > 4000
    assert small.interval == pytest.approx(50e-6 * 2 ** round(math.log2(small.interval / 50e-6)))
    # each kept sample (but the final one) is the full sampler's sample at the same time
    index = {round(t / 50e-6): k for k, t in enumerate(full.column("t")[:-1])}
    for k, t in enumerate(small.column("t")[:-1]):
        j = index[round(t / 50e-6)]
        for name in ("ring", "sock0.rmem_alloc", "sock0.rcvbuf_drops", "cpu1.us"):
            assert small.column(name)[k] == full.column(name)[j], (name, t)
    assert small.column("t")[-1] == full.column("t")[-1]


def test_a_long_idle_run_stays_small() -> None:
    """A tiny interval over a run with long gaps: the cap holds, quickly."""
    sampler = Sampler(interval=1e-7, max_samples=64)
    spec = {"model": "testbed", "traffic": {"kind": "cbr", "rate": 100, "packets": 20,
                                            "size": 100}}
    _m, result = run(spec, sampler)
    assert result["sim_seconds"] > 0.19
    assert len(sampler) <= 65
    assert sampler.column("t")[-1] == result["sim_seconds"]


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="interval"):
        Sampler(interval=0)
    with pytest.raises(ValueError, match="max_samples"):
        Sampler(max_samples=1)
    sampler = Sampler()
    run(SLOW_READER, sampler)
    with pytest.raises(KeyError, match="no series 'nope'"):
        sampler.column("nope")
    with pytest.raises(RuntimeError):
        run(SLOW_READER, sampler)
