"""Plots draw exactly the sampler's and the result's numbers."""

from __future__ import annotations

import math

import pytest
from matplotlib.figure import Figure

from lsfsim.kernel.cpu import BUCKETS
from lsfsim.report import plots
from lsfsim.report.sampler import Sampler
from tests.report import sampled


def ms(values: list[float]) -> list[float]:
    return [v * 1e3 for v in values]


def lines_by_label(fig: Figure) -> dict[str, tuple[list[float], list[float]]]:
    out = {}
    for ax in fig.axes:
        for line in ax.get_lines():
            out[line.get_label()] = (list(line.get_xdata()), list(line.get_ydata()))
    return out


def same(a: list[float], b: list[float]) -> bool:
    return len(a) == len(b) and all(
        (math.isnan(x) and math.isnan(y)) or x == y for x, y in zip(a, b, strict=True))


def test_rx_ring_plots_the_sampled_occupancy() -> None:
    _result, sampler = sampled("NO_NAPI")
    fig, arrays = plots.plot_rx_ring(sampler)
    assert arrays["t_ms"] == ms(sampler.column("t"))
    assert arrays["ring"] == sampler.column("ring")
    assert arrays["ring_size"] == sampler.ring_size
    x, y = lines_by_label(fig)["host-owned descriptors"]
    assert x == arrays["t_ms"] and y == arrays["ring"]
    assert max(y) > 0


def test_socket_queue_plot() -> None:
    result, sampler = sampled("SLOW_READER")
    fig, arrays = plots.plot_socket_queues(sampler)
    sock = arrays["sockets"][0]
    assert sock["rmem_alloc"] == sampler.column("sock0.rmem_alloc")
    assert same(sock["rcvbuf"], sampler.column("sock0.rcvbuf"))
    drawn = lines_by_label(fig)
    assert drawn["sk_rmem_alloc (truesize)"][1] == sock["rmem_alloc"]
    assert same(drawn["sk_rcvbuf"][1], sock["rcvbuf"])
    # the rcvbuf drawn is what the socket had: twice the SO_RCVBUF value asked for
    assert sock["rcvbuf"][-1] == 2 * result["scenario"]["sockets"][0]["rcvbuf"]


def test_drops_plot_draws_only_places_that_dropped() -> None:
    result, sampler = sampled("SLOW_READER")
    fig, arrays = plots.plot_drops(sampler)
    assert set(arrays["drops"]) == {"sock0.rcvbuf_drops"}
    assert arrays["drops"]["sock0.rcvbuf_drops"] == sampler.column("sock0.rcvbuf_drops")
    assert arrays["drops"]["sock0.rcvbuf_drops"][-1] == result.sockets[0]["rcvbuf_drops"]
    assert lines_by_label(fig)["socket 0: receive buffer full"][1] == \
        arrays["drops"]["sock0.rcvbuf_drops"]
    result, sampler = sampled("NO_NAPI")
    _fig, arrays = plots.plot_drops(sampler)
    assert arrays["drops"]["drops.softnet_dropped"][-1] == result["softnet_dropped"]


def test_cpu_shares_add_up_to_the_accounting() -> None:
    """Share x interval, summed, gives back each CPU's accounted time."""
    result, sampler = sampled("SLOW_READER")
    fig, arrays = plots.plot_cpu(sampler)
    t = sampler.column("t")
    assert len(arrays["cpus"]) == sampler.ncpus == len(result["cpu_time"])
    assert len([ax for ax in fig.axes if ax.get_title().startswith("CPU")]) == sampler.ncpus
    for c, cpu in enumerate(arrays["cpus"]):
        ends = [x / 1e3 for x in cpu["t_ms"]]
        assert 10 < len(ends) <= plots.MAX_BINS + 1
        starts = [t[0]] + ends[:-1]
        for b in BUCKETS:
            # time charged at t = 0 (the program's setup) is in the first sample already
            acct = result["cpu_time"][c][b] - sampler.column(f"cpu{c}.{b}")[0]
            busy = sum(p / 100 * (e - s) for p, s, e in zip(cpu[b], starts, ends, strict=True))
            assert busy == pytest.approx(acct, rel=1e-9, abs=1e-12)
        total = [sum(cpu[b][k] for b in BUCKETS) for k in range(len(ends))]
        assert max(total) <= 110.0       # charged at a step's start: a little over 100% at most
    # the reader's CPU is busy with user work most of the run (200 us per 125 us frame)
    reader_cpu = result.sockets[0]["readers"][0]["cpu"]
    us = arrays["cpus"][reader_cpu]["us"]
    assert sorted(us)[len(us) // 2] > 80


def test_coarse_indices() -> None:
    assert plots.coarse_indices([]) == []
    assert plots.coarse_indices([0.0]) == [0]
    assert plots.coarse_indices([0.0, 1.0, 2.0, 3.0, 4.0], 10) == [0, 1, 2, 3, 4]
    grid = [k * 1.0 for k in range(1001)]
    idx = plots.coarse_indices(grid, 200)
    assert idx[0] == 0 and idx[-1] == 1000 and len(idx) - 1 <= 200
    assert len({b - a for a, b in zip(idx, idx[1:], strict=False)}) == 1
    # a final sample just after the last grid point does not make a sliver of its own
    idx = plots.coarse_indices([*grid, 1000.1], 250)
    assert idx[-1] == 1001 and idx[-2] == 995
    idx = plots.coarse_indices([*grid, 1004.0], 250)
    assert idx[-1] == 1001 and idx[-2] == 1000


def test_rates_integrate_to_the_counters() -> None:
    result, sampler = sampled("NO_NAPI")
    fig, arrays = plots.plot_rates(sampler)
    ends = [x / 1e3 for x in arrays["t_ms"]]
    starts = [0.0] + ends[:-1]
    for name, final in (("offered", result["offered"]), ("interrupts", result["interrupts"]),
                        ("rx_packets", result["netdev"]["rx_packets"])):
        expected = final - sampler.column(name)[0]     # the wire pulls its first frame at 0
        total = sum(r * 1e3 * (e - s) for r, s, e in zip(arrays[name], starts, ends, strict=True))
        assert total == pytest.approx(expected, rel=1e-9), name
    assert lines_by_label(fig)["NIC interrupts"][1] == arrays["interrupts"]


def test_latency_bars_are_the_result_percentiles() -> None:
    result, _sampler = sampled("SLOW_READER")
    fig, arrays = plots.plot_latency(result)
    lat = result["latency"]
    assert arrays["stages"] == [s for s in lat if lat[s]["count"]]
    assert "total" in arrays["stages"]
    bars = fig.axes[0].patches
    assert len(bars) == len(arrays["stages"]) * len(plots.LATENCY_PERCENTILES)
    heights = [b.get_height() for b in bars]
    k = 0
    for p in plots.LATENCY_PERCENTILES:
        assert arrays[p] == [lat[s][p] * 1e6 for s in arrays["stages"]]
        for v in arrays[p]:
            assert heights[k] == pytest.approx(max(v, 1e-3))
            k += 1
    # ordering of percentiles holds stage by stage
    for i in range(len(arrays["stages"])):
        assert arrays["p50"][i] <= arrays["p90"][i] <= arrays["p99"][i] <= arrays["max"][i]


def test_figure_bytes_png_and_reproducible_svg() -> None:
    result, sampler = sampled("SLOW_READER")
    fig, _ = plots.plot_rx_ring(sampler)
    png = plots.figure_bytes(fig, "png")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    svg1 = plots.figure_bytes(fig, "svg")
    svg2 = plots.figure_bytes(plots.plot_rx_ring(sampler)[0], "svg")
    assert svg1.lstrip().startswith(b"<?xml") and b"<svg" in svg1
    assert svg1 == svg2
    with pytest.raises(ValueError, match="png"):
        plots.figure_bytes(fig, "gif")


def test_all_plots_without_sampler_has_latency_only() -> None:
    result, sampler = sampled("SLOW_READER")
    names = [name for name, *_ in plots.all_plots(result, sampler)]
    assert names == [name for name, *_ in plots.PLOTS]
    assert [name for name, *_ in plots.all_plots(result, None)] == ["latency"]
    assert [name for name, *_ in plots.all_plots(result, Sampler())] == ["latency"]
