"""Plots of a run (matplotlib, no display needed): where packets waited and where they died.

Every ``plot_*`` function returns ``(figure, arrays)``: the matplotlib
``Figure`` and a dict of exactly the numbers it drew, in the drawn units
(times in ms, sizes in bytes, latencies in µs), so a caller can check a
plot against the sampler or the result instead of trusting pixels.
Figures are built without pyplot (no global state, no GUI backend): saving
renders them with matplotlib's Agg (PNG) and SVG canvases.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from typing import Any

import matplotlib
from matplotlib.figure import Figure

from lsfsim.report.sampler import Sampler
from lsfsim.result import Result
from lsfsim.vocabulary import BUCKETS

Arrays = dict[str, Any]

LATENCY_PERCENTILES = ("p50", "p90", "p99", "max")
MAX_BINS = 200          # rate and CPU-share plots: at most this many intervals
BUCKET_LABELS = {"hi": "hi (hard IRQ)", "si": "si (softirq)", "sy": "sy (system calls)",
                 "us": "us (user work)"}
BUCKET_COLORS = {"hi": "#d62728", "si": "#ff7f0e", "sy": "#1f77b4", "us": "#2ca02c"}
DROP_LABELS = {
    "drops.mac_filtered": "NIC address filter",
    "drops.rx_missed_errors": "RX ring full (rx_missed_errors)",
    "drops.rx_oversize": "longer than a ring buffer",
    "drops.rx_dropped": "skb allocation failed (rx_dropped)",
    "drops.softnet_dropped": "backlog full (softnet dropped)",
}


def _ms(times: list[float]) -> list[float]:
    return [t * 1e3 for t in times]


WIDTH = 8.0            # inches


def _figure(height: float = 3.2, top: float = 0.4) -> Figure:
    """A figure with fixed margins in inches (a layout engine costs more than the drawing)."""
    fig = Figure(figsize=(WIDTH, height))
    fig.subplots_adjust(left=0.9 / WIDTH, right=1 - 0.75 / WIDTH, bottom=0.55 / height,
                        top=1 - top / height, hspace=0.5 / (height / 3.2))
    return fig


def plot_rx_ring(sampler: Sampler) -> tuple[Figure, Arrays]:
    """RX ring occupancy: descriptors holding a frame the driver has not taken yet."""
    sampler.finish()
    t = _ms(sampler.column("t"))
    ring = list(sampler.column("ring"))
    fig = _figure()
    ax = fig.add_subplot()
    ax.step(t, ring, where="post", label="host-owned descriptors", color="#1f77b4")
    ax.axhline(sampler.ring_size, color="#d62728", linestyle="--",
               label=f"ring size ({sampler.ring_size}): further frames are missed")
    ax.set_xlabel("simulated time (ms)")
    ax.set_ylabel("descriptors")
    ax.set_ylim(0, sampler.ring_size * 1.1 + 1)
    ax.set_title("RX ring occupancy")
    ax.legend(loc="upper right", fontsize="small")
    return fig, {"t_ms": t, "ring": ring, "ring_size": sampler.ring_size}


def plot_socket_queues(sampler: Sampler) -> tuple[Figure, Arrays]:
    """Each socket's sk_rmem_alloc (the truesize of its queued skbs) against sk_rcvbuf."""
    sampler.finish()
    t = _ms(sampler.column("t"))
    n = max(1, sampler.nsockets)
    fig = _figure(2.6 * n + 0.6, top=0.5)
    arrays: Arrays = {"t_ms": t, "sockets": []}
    axes = fig.subplots(n, 1, squeeze=False, sharex=True)[:, 0]
    if not sampler.nsockets:
        axes[0].text(0.5, 0.5, "no capture socket", ha="center", va="center",
                     transform=axes[0].transAxes)
        axes[0].set_axis_off()
        return fig, arrays
    for i, ax in enumerate(axes):
        rmem = list(sampler.column(f"sock{i}.rmem_alloc"))
        rcvbuf = list(sampler.column(f"sock{i}.rcvbuf"))
        ax.step(t, rmem, where="post", color="#1f77b4", label="sk_rmem_alloc (truesize)")
        ax.step(t, rcvbuf, where="post", color="#d62728", linestyle="--", label="sk_rcvbuf")
        ax.set_ylabel(f"socket {i}: bytes")
        ax.set_ylim(bottom=0)
        ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), ncols=2, fontsize="small",
                  frameon=False)
        arrays["sockets"].append({"rmem_alloc": rmem, "rcvbuf": rcvbuf})
    axes[-1].set_xlabel("simulated time (ms)")
    return fig, arrays


def plot_drops(sampler: Sampler) -> tuple[Figure, Arrays]:
    """Cumulative drops over time, one line per place that dropped anything."""
    sampler.finish()
    t = _ms(sampler.column("t"))
    fig = _figure()
    ax = fig.add_subplot()
    drawn: dict[str, list[float]] = {}
    for name in sampler.drop_places():
        values = list(sampler.column(name))
        if not values or values[-1] == 0:
            continue
        drawn[name] = values
        label = DROP_LABELS.get(name)
        if label is None:
            sock, what = name.split(".")
            label = (f"socket {sock[4:]}: receive buffer full" if what == "rcvbuf_drops"
                     else f"socket {sock[4:]}: filter returned 0")
        ax.step(t, values, where="post", label=label)
    ax.set_xlabel("simulated time (ms)")
    ax.set_ylabel("packets (cumulative)")
    ax.set_title("Drops by place")
    if drawn:
        ax.legend(loc="upper left", fontsize="small")
    else:
        ax.text(0.5, 0.5, "nothing was dropped", ha="center", va="center",
                transform=ax.transAxes)
    return fig, {"t_ms": t, "drops": drawn}


def coarse_indices(t: list[float], max_bins: int = MAX_BINS) -> list[int]:
    """Indices of the samples ``t`` bounding at most ``max_bins`` intervals of equal length.

    Rates and CPU shares are differences of cumulative counters; taken per
    sample they alias with the packet spacing (1 or 2 frames per interval),
    and more bins than the plot has pixels say nothing.  Differences over
    coarser intervals are still exact averages.  The final sample (the run's
    end, off the grid) closes the last interval; if that would leave a
    sliver shorter than half an interval, it is merged into the one before.
    """
    n = len(t)
    if n < 2:
        return list(range(n))
    stride = max(1, math.ceil((n - 1) / max_bins))
    idx = list(range(0, n, stride))
    if idx[-1] != n - 1:
        idx.append(n - 1)
    if len(idx) > 2:
        regular = t[idx[1]] - t[idx[0]]
        if t[idx[-1]] - t[idx[-2]] < regular / 2:
            del idx[-2]
    return idx


def cpu_shares(sampler: Sampler, cpu: int,
               max_bins: int = MAX_BINS) -> tuple[list[float], dict[str, list[float]]]:
    """Per-interval CPU shares of one CPU from the cumulative accounting.

    Returns the interval end times (s) and, per bucket, the fraction of each
    interval spent in it.  A step's CPU time is charged when it starts, so one
    interval can show a little more than 100% and the next correspondingly
    less.
    """
    t = sampler.column("t")
    idx = coarse_indices(t, max_bins)
    ends: list[float] = []
    shares: dict[str, list[float]] = {b: [] for b in BUCKETS}
    cols = {b: sampler.column(f"cpu{cpu}.{b}") for b in BUCKETS}
    for a, k in zip(idx, idx[1:], strict=False):
        dt = t[k] - t[a]
        if dt <= 0:
            continue
        ends.append(t[k])
        for b in BUCKETS:
            shares[b].append((cols[b][k] - cols[b][a]) / dt)
    return ends, shares


def plot_cpu(sampler: Sampler, max_bins: int = MAX_BINS) -> tuple[Figure, Arrays]:
    """CPU use by context over time, one panel per CPU, stacked hi/si/sy/us (percent)."""
    sampler.finish()
    n = max(1, sampler.ncpus)
    fig = _figure(2.2 * n + 0.6)
    axes = fig.subplots(n, 1, squeeze=False, sharex=True)[:, 0]
    arrays: Arrays = {"cpus": []}
    for c, ax in enumerate(axes[:sampler.ncpus]):
        ends, shares = cpu_shares(sampler, c, max_bins)
        t = _ms(ends)
        pct = {b: [100.0 * v for v in shares[b]] for b in BUCKETS}
        if t:
            ax.stackplot(t, *(pct[b] for b in BUCKETS), step="pre",
                         labels=[BUCKET_LABELS[b] for b in BUCKETS],
                         colors=[BUCKET_COLORS[b] for b in BUCKETS])
        ax.set_ylim(0, 105)
        ax.set_ylabel("% of CPU")
        ax.set_title(f"CPU {c}")
        arrays["cpus"].append({"t_ms": t, **pct})
    axes[0].legend(loc="upper right", fontsize="x-small", ncols=4)
    axes[-1].set_xlabel("simulated time (ms, end of each interval)")
    return fig, arrays


def plot_rates(sampler: Sampler, max_bins: int = MAX_BINS) -> tuple[Figure, Arrays]:
    """Offered frames, frames passed up by the driver, and interrupts, per ms.

    Under NAPI the interrupt rate falls as the load rises: one interrupt then
    starts a poll that takes many frames.
    """
    sampler.finish()
    t = sampler.column("t")
    idx = coarse_indices(t, max_bins)
    ends: list[float] = []
    rates: dict[str, list[float]] = {"offered": [], "rx_packets": [], "interrupts": []}
    for a, k in zip(idx, idx[1:], strict=False):
        dt = t[k] - t[a]
        if dt <= 0:
            continue
        ends.append(t[k])
        for name, values in rates.items():
            col = sampler.column(name)
            values.append((col[k] - col[a]) / dt / 1e3)
    fig = _figure()
    ax = fig.add_subplot()
    labels = {"offered": "frames offered on the wire", "rx_packets": "frames passed up",
              "interrupts": "NIC interrupts"}
    x = _ms(ends)
    styles: dict[str, dict[str, Any]] = {"offered": {"linewidth": 3.5, "alpha": 0.45},
                                         "rx_packets": {},
              "interrupts": {}}          # offered drawn wide: it is often under "passed up"
    for name, values in rates.items():
        ax.step(x, values, where="pre", label=labels[name], **styles[name])
    ax.set_xlabel("simulated time (ms, end of each interval)")
    ax.set_ylabel("per ms")
    ax.set_ylim(bottom=0)
    ax.set_title("Load and interrupts")
    ax.legend(loc="best", fontsize="small")
    return fig, {"t_ms": x, **rates}


def plot_latency(result: Result) -> tuple[Figure, Arrays]:
    """Latency per stage: p50, p90, p99 and max as grouped bars (µs, log scale)."""
    lat = result.data["latency"]
    stages = [s for s, h in lat.items() if h.get("count")]
    arrays: Arrays = {"stages": stages}
    fig = _figure(3.6)
    ax = fig.add_subplot()
    if not stages:
        ax.text(0.5, 0.5, "no packet reached user space", ha="center", va="center",
                transform=ax.transAxes)
        ax.set_axis_off()
        for p in LATENCY_PERCENTILES:
            arrays[p] = []
        return fig, arrays
    width = 0.8 / len(LATENCY_PERCENTILES)
    for j, p in enumerate(LATENCY_PERCENTILES):
        values = [lat[s][p] * 1e6 for s in stages]
        arrays[p] = values
        xs = [i + (j - (len(LATENCY_PERCENTILES) - 1) / 2) * width for i in range(len(stages))]
        ax.bar(xs, [max(v, 1e-3) for v in values], width, label=p)
    ax.set_xticks(range(len(stages)), stages)
    ax.set_yscale("log")
    ax.set_ylabel("µs")
    ax.set_title("Latency per stage (wire → user space)")
    ax.legend(fontsize="small", ncols=len(LATENCY_PERCENTILES))
    return fig, arrays


def figure_bytes(fig: Figure, fmt: str) -> bytes:
    """Render a figure to PNG or SVG bytes, reproducibly (no date, fixed SVG ids)."""
    buf = io.BytesIO()
    if fmt == "svg":
        with matplotlib.rc_context({"svg.hashsalt": "lsfsim"}):
            fig.savefig(buf, format="svg", metadata={"Date": None})
    elif fmt == "png":
        fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    else:
        raise ValueError(f"figure format must be 'png' or 'svg', got {fmt!r}")
    return buf.getvalue()


# name, title, plotting function and what it takes (the sampler or the result)
PLOTS: tuple[tuple[str, str, Callable[..., tuple[Figure, Arrays]], str], ...] = (
    ("rx_ring", "RX ring occupancy", plot_rx_ring, "sampler"),
    ("socket_queues", "Socket receive queues", plot_socket_queues, "sampler"),
    ("drops", "Drops over time", plot_drops, "sampler"),
    ("cpu", "CPU use by context", plot_cpu, "sampler"),
    ("rates", "Load and interrupts", plot_rates, "sampler"),
    ("latency", "Latency per stage", plot_latency, "result"),
)


def all_plots(result: Result, sampler: Sampler | None) -> list[tuple[str, str, Figure, Arrays]]:
    """Every plot that the data allows: (name, title, figure, arrays)."""
    out = []
    for name, title, fn, needs in PLOTS:
        if needs == "sampler":
            if sampler is None or not len(sampler):
                continue
            fig, arrays = fn(sampler)
        else:
            fig, arrays = fn(result)
        out.append((name, title, fig, arrays))
    return out

