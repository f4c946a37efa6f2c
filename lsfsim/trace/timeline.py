"""A Gantt chart of a run: what each CPU was doing, and where each packet was.

Rows, top to bottom: for every CPU its hard-IRQ, softirq and process-context
activity (busy intervals merged from the tracer's charges), then one row per
recorded packet whose bars span its stages (wire, DMA, waiting in the RX ring,
softirq processing up to the socket queue, waiting in the socket queue, the
recvfrom copy; pre-NAPI, the interrupt handler's part and the wait on the
backlog), with a marker at the IRQ that led to its poll and, for a frame
dropped, a cross where and when it was dropped, labelled with the place.

``timeline_bars`` computes the bars as plain data (so that they can be checked
against the run); ``plot_timeline`` draws them with matplotlib's Agg backend.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lsfsim.trace.activity import ROWS
from lsfsim.trace.ftrace import FtraceTracer
from lsfsim.trace.lifecycle import PacketLife

STAGE_COLORS = {
    "wire": "#7f7f7f",
    "dma": "#bcbd22",
    "rx ring": "#17becf",
    "hardirq": "#d62728",
    "backlog": "#8c564b",
    "softirq": "#ff7f0e",
    "socket queue": "#9467bd",
    "recvfrom": "#2ca02c",
}
CONTEXT_COLORS = {"hardirq": "#d62728", "softirq": "#ff7f0e", "process": "#1f77b4"}


@dataclass(frozen=True)
class Bar:
    """One bar: a row, a start and a width in seconds, a colour and what it stands for."""

    row: int
    start: float
    width: float
    color: str
    label: str


@dataclass
class Timeline:
    rows: list[str]
    bars: list[Bar]
    irq_marks: list[tuple[int, float]]      # (row, time) of the IRQ that led to a poll
    t0: float
    t1: float
    drop_marks: list[tuple[int, float, str]] = field(default_factory=list)  # (row, time, place)


def packet_segments(rec: PacketLife) -> list[tuple[str, float, float]]:
    """(stage, start, end) of one packet, first socket that queued it."""
    segs: list[tuple[str, float, float]] = []
    if rec.t_wire is None:
        return segs
    wire_end = rec.t_wire_end if rec.t_wire_end is not None else rec.t_wire
    segs.append(("wire", rec.t_wire, wire_end))
    if rec.t_dma is not None:
        segs.append(("dma", wire_end, rec.t_dma))
    if rec.t_poll is None or rec.t_dma is None:
        return segs
    segs.append(("rx ring", rec.t_dma, rec.t_poll))
    start = rec.t_poll                 # of the softirq's part
    if not rec.napi:
        # pre-NAPI: the handler's receive up to netif_rx, then the wait on the backlog
        if rec.t_backlog is None:
            end = rec.t_drop if rec.t_drop is not None else rec.t_poll
            segs.append(("hardirq", rec.t_poll, end))
            return segs
        segs.append(("hardirq", rec.t_poll, rec.t_backlog))
        if rec.t_backlog_poll is None:
            return segs
        segs.append(("backlog", rec.t_backlog, rec.t_backlog_poll))
        start = rec.t_backlog_poll
    queued = next((v for v in rec.verdicts if v.outcome == "queued"), None)
    if queued is None:
        end = max((v.t for v in rec.verdicts), default=start)
        segs.append(("softirq", start, end))
        return segs
    t_enq = queued.t_enq if queued.t_enq is not None else queued.t
    segs.append(("softirq", start, t_enq))
    copy = next((c for c in rec.copies if c.sock == queued.sock), None)
    if copy is not None:
        segs.append(("socket queue", t_enq, copy.t_deq))
        segs.append(("recvfrom", copy.t_deq, copy.t_done))
    return segs


def timeline_bars(tracer: FtraceTracer | None, records: list[PacketLife], ncpus: int,
                  margin: float = 0.05) -> Timeline:
    """The chart as data: CPU activity rows then one row per packet, clipped to the packets'
    time span (plus ``margin`` of it on each side)."""
    spans = [seg for rec in records for seg in packet_segments(rec)]
    spans += [("drop", t, t) for rec in records for t, _what in rec.drop_points()]
    if spans:
        lo = min(s[1] for s in spans)
        hi = max(s[2] for s in spans)
    else:
        lo, hi = 0.0, 0.0
    pad = (hi - lo) * margin
    t0, t1 = lo - pad, hi + pad
    rows: list[str] = []
    bars: list[Bar] = []
    busy = tracer.busy_intervals() if tracer is not None else {}
    for cpu in range(ncpus):
        for ctx in ROWS:
            row = len(rows)
            rows.append(f"CPU{cpu} {ctx}")
            for a, b in busy.get((cpu, ctx), ()):
                if b < t0 or a > t1:
                    continue
                bars.append(Bar(row, a, b - a, CONTEXT_COLORS[ctx], ctx))
    marks: list[tuple[int, float]] = []
    drops: list[tuple[int, float, str]] = []
    for rec in records:
        row = len(rows)
        rows.append(f"frame {rec.index}")
        for stage, a, b in packet_segments(rec):
            bars.append(Bar(row, a, b - a, STAGE_COLORS[stage], stage))
        if rec.t_irq is not None and rec.t_poll is not None:
            marks.append((row, rec.t_irq))
        drops += [(row, t, what) for t, what in rec.drop_points()]
    return Timeline(rows, bars, marks, t0, t1, drops)


def frames_title(indexes: list[int]) -> str:
    """Frame indexes as a short title: runs of consecutive indexes as N-M."""
    runs: list[tuple[int, int]] = []
    for i in sorted(indexes):
        if runs and runs[-1][1] == i - 1:
            runs[-1] = (runs[-1][0], i)
        else:
            runs.append((i, i))
    text = ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)
    word = "frame" if len(indexes) == 1 else "frames"
    return f"{word} {text}" if len(text) <= 60 else f"{len(indexes)} frames, {text[:50]}..."


def _make_room(fig: Any, ax: Any, labels: list[Any], t0: float, t1: float) -> None:
    """Widen the time axis so that every drop label ends inside the axes.

    A label sits at its drop time plus a fixed width in pixels, p; with the axes W
    pixels wide, it ends at x + p (t1' - t0) / W, which is <= t1' when
    t1' >= (x - p t0 / W) / (1 - p / W).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    renderer = FigureCanvasAgg(fig).get_renderer()
    box = ax.get_window_extent(renderer)
    width = box.width
    to_px = ax.transData.transform
    right = t1
    for label in labels:
        x = label.xy[0]
        p = label.get_window_extent(renderer).x1 - to_px((x, 0))[0] + 4
        if 0 < p < 0.8 * width:
            right = max(right, (x - p * t0 / width) / (1 - p / width))
    if right > t1:
        ax.set_xlim(t0, right)


def plot_timeline(timeline: Timeline, path: str | Path | None = None,
                  title: str | None = None) -> Any:
    """Draw the chart (times in microseconds); save it when ``path`` ends in .png or .svg."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.artist import Artist
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    if path is not None and Path(path).suffix.lower() not in (".png", ".svg"):
        raise ValueError(f"--plot: {path}: the file name must end in .png or .svg")
    nrows = len(timeline.rows)
    fig = Figure(figsize=(11, 1.2 + 0.32 * nrows))
    ax = fig.add_subplot()
    by_row: dict[int, list[Bar]] = {}
    for bar in timeline.bars:
        by_row.setdefault(bar.row, []).append(bar)
    for row, bars in sorted(by_row.items()):
        ax.broken_barh([(b.start * 1e6, b.width * 1e6) for b in bars], (row - 0.4, 0.8),
                       facecolors=[b.color for b in bars], gid=timeline.rows[row])
    if timeline.irq_marks:
        ax.scatter([t * 1e6 for _row, t in timeline.irq_marks],
                   [row - 0.5 for row, _t in timeline.irq_marks], marker="v", color="black",
                   s=18, zorder=3)
    ncpu_rows = sum(1 for r in timeline.rows if r.startswith("CPU"))
    labels = []
    for row, t, what in timeline.drop_marks:
        x = t * 1e6
        ax.scatter([x], [row], marker="X", color="#d62728", edgecolors="white",
                   linewidths=0.8, s=90, zorder=4)
        # right of the cross, where the dropped frame's row is empty, on a white box
        labels.append(ax.annotate(
            f"dropped: {what}", (x, row), xytext=(8, 0), textcoords="offset points",
            ha="left", va="center", fontsize="small", color="#a01010", zorder=5,
            bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "edgecolor": "#d62728",
                  "alpha": 0.9}))
    if 0 < ncpu_rows < nrows:
        ax.axhline(ncpu_rows - 0.5, color="black", linewidth=0.6)
    ax.set_yticks(range(nrows), timeline.rows)
    ax.set_ylim(nrows - 0.5, -0.5)
    if timeline.t1 > timeline.t0:
        ax.set_xlim(timeline.t0 * 1e6, timeline.t1 * 1e6)
    ax.set_xlabel("simulated time (us)")
    ax.grid(axis="x", alpha=0.3)
    # the legend goes right of the axes, in two groups: what the CPU rows show, what the
    # frame rows show; only the stages drawn are listed
    drawn = {b.label for b in timeline.bars if b.row >= ncpu_rows}
    handles: list[Artist] = [Patch(color=c, label=f"CPU busy: {k}")
                             for k, c in CONTEXT_COLORS.items()]
    handles += [Patch(color=c, label=f"frame: {k}") for k, c in STAGE_COLORS.items()
                if k in drawn]
    if timeline.irq_marks:
        handles.append(Line2D([], [], marker="v", color="black", linestyle="",
                              label="IRQ that led to the poll"))
    if timeline.drop_marks:
        handles.append(Line2D([], [], marker="X", color="#d62728", linestyle="",
                              markersize=9, label="frame dropped here"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0),
              fontsize="small", frameon=False)
    if title:
        ax.set_title(title, loc="left", fontsize="medium", pad=10)
    fig.tight_layout()
    if labels and timeline.t1 > timeline.t0:
        _make_room(fig, ax, labels, timeline.t0 * 1e6, timeline.t1 * 1e6)
    if path is not None:
        from lsfsim.outputs import open_output

        with open_output(path, "wb") as fh:
            fig.savefig(fh, format=Path(path).suffix.lower()[1:])
    return fig
