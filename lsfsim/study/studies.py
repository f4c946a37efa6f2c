"""Ready studies: the lecture's three micro-benchmarks, receive livelock, buffer sizing.

Each study is a sweep underneath (points run by ``run_points``, locally or on
Dask), writes ``DIR/NAME.parquet`` (or ``.csv``) and ``DIR/NAME.png``, and
returns a short conclusion table.  ``quick=True`` shrinks the transfers and
the grids so each study takes seconds; the shapes stay, the noise grows.

* ``attach``   sys_setsockopt(SO_ATTACH_FILTER), start to end, against the
  filter's length, 1 instruction to the largest the model's optmem_max lets
  sock_kmalloc take, plus one more (refused: ENOMEM).
* ``snaplen``  the 100 MB nc transfer: packet_rcv's and recvfrom's time and
  the drops against snaplen, with an idle reader and with a slow one.
* ``recvfrom`` the 100 MB nc transfer: sys_recvfrom's time against the
  filter's length (the lecture's filter, lengthened by no-op loads).
* ``livelock`` frames delivered against offered rate, NAPI and pre-NAPI, on
  testbed and testbed-vm, and interrupts per frame.
* ``buffers``  drops over SO_RCVBUF x snaplen x rate for a reader with a fixed
  per-packet work, then the smallest SO_RCVBUF and RX ring without drops per
  rate, found by bisection.

docs/studies.md shows each figure and what the kernel's code predicts.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from matplotlib.figure import Figure

from lsfsim.cli.common import InputError
from lsfsim.scenario import LECTURE_FILTER, Scenario, SocketSpec, TrafficSpec
from lsfsim.study.point import RunPoint
from lsfsim.study.sweep import Plan, run_plan
from lsfsim.study.table import FORMAT

LECTURE_BYTES = 100 * 10**6           # the lecture's nc transfer
QUICK_BYTES = 1 * 10**6
LINK_MAX_PPS = 148_000                # 64-byte frames (60 + FCS) on 100 Mbit/s: 148,809


@dataclass
class Runner:
    """Where a study's points run, and how small (``quick``)."""

    jobs: int | None = None
    scheduler: str | None = None
    quick: bool = False

    def run(self, name: str, labels: Sequence[dict[str, Any]], points: Sequence[RunPoint],
            **definition: Any) -> Any:
        """Run the points; their rows (label columns first) as a DataFrame."""
        names = list(labels[0]) if labels else []
        plan = Plan({"format": FORMAT, "study": name, "quick": self.quick, **definition},
                    [n for n in names if n != "seed"], list(points), list(labels))
        return run_plan(plan, jobs=self.jobs, scheduler=self.scheduler)


@dataclass(frozen=True)
class Study:
    name: str
    title: str
    run: Callable[[Runner], Any]                       # -> DataFrame
    figure: Callable[[Any], Figure]
    conclude: Callable[[Any], tuple[Any, str]]         # -> (small DataFrame, one sentence)


# --- programs ----------------------------------------------------------------------------

LD_IMM = 0x00          # BPF_LD | BPF_W | BPF_IMM: A = k (a no-op for what follows)
RET_K = 0x06           # BPF_RET | BPF_K


def program_text(insns: Sequence[tuple[int, int, int, int]]) -> str:
    from lsfsim.bpf import formats

    return str(formats.format(insns, "tcpdump-dd"))


def accept_all(n: int) -> str:
    """A program of ``n`` instructions: n-1 loads, then ``ret #65535``."""
    return program_text([(LD_IMM, 0, 0, 0)] * (n - 1) + [(RET_K, 0, 0, 65535)])


def lecture_padded(n: int) -> str:
    """The lecture's filter lengthened to ``n`` instructions by leading ``ld #0``s, which
    every packet runs: the same verdicts, n instructions' worth of filter work."""
    from lsfsim.bpf import Program

    lecture = [tuple(i) for i in Program.from_expression(LECTURE_FILTER, snaplen=65535)]
    if n < len(lecture):
        raise InputError(f"a lengthened lecture filter has at least {len(lecture)} instructions")
    return program_text([(LD_IMM, 0, 0, 0)] * (n - len(lecture)) + lecture)


def largest_filter(model_name: str = "testbed") -> int:
    """The longest program SO_ATTACH_FILTER takes on the model: sock_kmalloc needs
    8n + sizeof(struct sk_filter) < optmem_max, and n <= BPF_MAXINSNS."""
    from lsfsim.bpf.isa import BPF_MAXINSNS
    from lsfsim.config.model import load_model
    from lsfsim.kernel.af_packet import sock_kmalloc_refusal

    sizes = load_model(model_name).kernel.sizes
    n = min(BPF_MAXINSNS, (sizes.optmem_max - sizes.sizeof_sk_filter - 1) // 8)
    assert sock_kmalloc_refusal(n, sizes) is None and sock_kmalloc_refusal(n + 1, sizes)
    return n


def nc(runner: Runner, **socket: Any) -> Scenario:
    """The lecture's run: nc transfer, the lecture's filter, one reader."""
    size = QUICK_BYTES if runner.quick else LECTURE_BYTES
    socket.setdefault("filter", LECTURE_FILTER)
    return Scenario(traffic=TrafficSpec(kind="nc", bytes=size), sockets=[SocketSpec(**socket)])


# --- attach ------------------------------------------------------------------------------


def run_attach(runner: Runner) -> Any:
    top = largest_filter()
    sizes = [1, 64, 512] if runner.quick else [2 ** k for k in range(12)]
    sizes = sorted({*(s for s in sizes if s <= top), top, top + 1})
    # the attach comes first; one frame of traffic is enough.  The point one past the
    # largest is the kernel's refusal (ENOMEM) itself: it runs, unfiltered, as asked
    base = Scenario(traffic=TrafficSpec(kind="cbr", rate=1000, packets=1, size=60),
                    sockets=[SocketSpec(filter=None)], allow_refused_filter=True)
    labels = [{"filter_insns": n, "seed": 1} for n in sizes]
    points = [RunPoint(base, ("sys_setsockopt",), program=accept_all(n)) for n in sizes]
    return runner.run("attach", labels, points, largest=top)


def figure_attach(df: Any) -> Figure:
    fig = Figure(figsize=(7, 4.2), layout="constrained")
    ax = fig.add_subplot()
    ok = df[df["sockets.0.attach_errno"].isna()]
    refused = df[df["sockets.0.attach_errno"].notna()]
    ax.plot(ok["filter_insns"], ok["sys_setsockopt_us"], "o-", ms=3, label="attached")
    for _, row in refused.iterrows():
        ax.plot(row["filter_insns"], row["sys_setsockopt_us"], "rx", ms=8)
        ax.annotate(f"{row['sockets.0.attach_errno']} ({int(row['filter_insns'])} insns)",
                    (row["filter_insns"], row["sys_setsockopt_us"]), textcoords="offset points",
                    xytext=(-110, 8), fontsize=8, color="r")
    ax.set_xlabel("filter length (instructions)")
    ax.set_ylabel("sys_setsockopt, mean inclusive (µs)")
    ax.set_title("SO_ATTACH_FILTER: time against filter length", fontsize=10)
    ax.grid(True, alpha=0.3)
    return fig


def conclude_attach(df: Any) -> tuple[Any, str]:
    import numpy as np

    ok = df[df["sockets.0.attach_errno"].isna()]
    slope, intercept = np.polyfit(ok["filter_insns"], ok["sys_setsockopt_us"], 1)
    top = int(ok["filter_insns"].max())
    refused = df[df["sockets.0.attach_errno"].notna()]
    table = df[["filter_insns", "sys_setsockopt_us", "sockets.0.attach_errno"]].copy()
    errno = refused["sockets.0.attach_errno"].iloc[0] if len(refused) else "none"
    return table, (f"linear: {intercept:.2f} µs + {slope * 1000:.1f} ns per instruction; "
                   f"the longest program attached is {top} instructions, one more is "
                   f"refused with {errno}")


# --- snaplen -----------------------------------------------------------------------------

SNAPLENS = (68, 96, 128, 256, 512, 1024, 1514, 65535)
QUICK_SNAPLENS = (96, 1514, 65535)
# a reader that cannot keep up with the transfer, with a small receive buffer
SLOW_READER = {"reader_work": 150e-6, "rcvbuf": 32768}


def run_snaplen(runner: Runner) -> Any:
    labels, points = [], []
    for reader, extra in (("idle", {}), ("slow", SLOW_READER)):
        for snaplen in QUICK_SNAPLENS if runner.quick else SNAPLENS:
            labels.append({"reader": reader, "snaplen": snaplen, "seed": 1})
            points.append(RunPoint(nc(runner, snaplen=snaplen, **extra),
                                   ("packet_rcv", "sys_recvfrom")))
    return runner.run("snaplen", labels, points, slow_reader=SLOW_READER)


def figure_snaplen(df: Any) -> Figure:
    fig = Figure(figsize=(10, 3.8), layout="constrained")
    panels = (("packet_rcv_us", "packet_rcv, mean inclusive (µs)"),
              ("sys_recvfrom_cpu_us", "sys_recvfrom, mean CPU inside (µs)"),
              ("sockets.0.tp_drops", "tp_drops"))
    for i, (col, label) in enumerate(panels):
        ax = fig.add_subplot(1, 3, i + 1)
        for reader, part in df.groupby("reader", sort=False):
            ax.plot(part["snaplen"], part[col], "o-", ms=3, label=f"{reader} reader")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("snaplen (bytes)")
        ax.set_title(label, fontsize=9)
        ax.grid(True, alpha=0.3)
        ax.set_ylim(bottom=0)
    fig.axes[0].legend(fontsize=8)
    fig.suptitle("100 MB nc transfer: where snaplen costs", fontsize=10)
    return fig


def conclude_snaplen(df: Any) -> tuple[Any, str]:
    table = df[["reader", "snaplen", "packet_rcv_us", "sys_recvfrom_us", "sys_recvfrom_cpu_us",
                "sockets.0.tp_drops"]].copy()
    slow = df[df["reader"] == "slow"]["sockets.0.tp_drops"]
    spread = df.groupby("reader")["packet_rcv_us"].agg(lambda s: s.max() - s.min()).max()
    idle = df[df["reader"] == "idle"].sort_values("snaplen")["sys_recvfrom_cpu_us"]
    return table, (f"packet_rcv's time does not depend on snaplen (spread {spread * 1000:.0f} "
                   f"ns); recvfrom's CPU falls from {idle.iloc[-1]:.2f} to {idle.iloc[0]:.2f} "
                   f"µs as less is copied; drops of the slow reader stay "
                   f"{int(slow.min())}..{int(slow.max())}: the rcvbuf test counts truesize, "
                   f"before the trim")


# --- recvfrom ----------------------------------------------------------------------------


def run_recvfrom(runner: Runner) -> Any:
    top = largest_filter()
    sizes = (14, 256, top) if runner.quick else \
        tuple(sorted({*(n for n in (14, 64, 256, 512, 1024, 2048) if n < top), top}))
    base = nc(runner)
    labels = [{"filter_insns": n, "seed": 1} for n in sizes]
    points = [RunPoint(base, ("sys_recvfrom", "packet_rcv"), program=lecture_padded(n))
              for n in sizes]
    return runner.run("recvfrom", labels, points)


def figure_recvfrom(df: Any) -> Figure:
    fig = Figure(figsize=(9, 3.8), layout="constrained")
    ax = fig.add_subplot(1, 2, 1)
    ax.plot(df["filter_insns"], df["sys_recvfrom_us"], "o-", ms=3, label="start to end")
    ax.plot(df["filter_insns"], df["sys_recvfrom_cpu_us"], "s-", ms=3, label="CPU inside")
    ax.set_title("sys_recvfrom, mean (µs)", fontsize=9)
    ax.legend(fontsize=8)
    ax2 = fig.add_subplot(1, 2, 2)
    ax2.plot(df["filter_insns"], df["packet_rcv_us"], "o-", ms=3, color="C2")
    ax2.set_title("packet_rcv (runs the filter), mean inclusive (µs)", fontsize=9)
    for a in (ax, ax2):
        a.set_xlabel("filter length (instructions)")
        a.grid(True, alpha=0.3)
        a.set_ylim(bottom=0)
    fig.suptitle("100 MB nc transfer: recvfrom against filter length", fontsize=10)
    return fig


def conclude_recvfrom(df: Any) -> tuple[Any, str]:
    table = df[["filter_insns", "sys_recvfrom_us", "sys_recvfrom_cpu_us", "packet_rcv_us",
                "sockets.0.delivered"]].copy()
    first, last = df.iloc[0], df.iloc[-1]
    return table, (f"sys_recvfrom's CPU stays {first['sys_recvfrom_cpu_us']:.2f} -> "
                   f"{last['sys_recvfrom_cpu_us']:.2f} µs from {int(first['filter_insns'])} to "
                   f"{int(last['filter_insns'])} instructions: the filter runs in packet_rcv "
                   f"({first['packet_rcv_us']:.2f} -> {last['packet_rcv_us']:.2f} µs), "
                   f"in softirq, never in recvfrom")


# --- livelock ----------------------------------------------------------------------------

MODELS = ("testbed", "testbed-vm")


def run_livelock(runner: Runner) -> Any:
    rates: tuple[int, ...]
    if runner.quick:
        rates, seconds = (20_000, 60_000, 100_000, LINK_MAX_PPS), 0.05
    else:
        rates, seconds = tuple(range(10_000, 140_001, 10_000)) + (LINK_MAX_PPS,), 0.2
    labels, points = [], []
    for model in MODELS:
        for napi in (True, False):
            for rate in rates:
                # no drain: what reached the reader while the traffic lasted
                scenario = Scenario(model=model, napi=napi, drain=False,
                                    max_sim_seconds=seconds,
                                    traffic=TrafficSpec(kind="cbr", rate=rate, size=60,
                                                        duration=seconds))
                labels.append({"model": model, "napi": napi, "rate": float(rate), "seed": 1})
                points.append(RunPoint(scenario, extra={"traffic_seconds": seconds}))
    df = runner.run("livelock", labels, points, seconds=seconds)
    ok = df["status"] == "ok"
    df.loc[ok, "delivered_pps"] = df["sockets.0.delivered"] / df["traffic_seconds"]
    df.loc[ok, "interrupts_per_frame"] = df["interrupts"] / df["offered"]
    return df


def figure_livelock(df: Any) -> Figure:
    fig = Figure(figsize=(10, 4), layout="constrained")
    ax = fig.add_subplot(1, 2, 1)
    ax2 = fig.add_subplot(1, 2, 2)
    for (model, napi), part in df.groupby(["model", "napi"], sort=False):
        style = "-" if napi else "--"
        label = f"{model}, {'NAPI' if napi else 'pre-NAPI'}"
        ax.plot(part["rate"] / 1000, part["delivered_pps"] / 1000, style, marker="o", ms=3,
                label=label)
        ax2.plot(part["rate"] / 1000, part["interrupts_per_frame"], style, marker="o", ms=3,
                 label=label)
    top = df["rate"].max() / 1000
    ax.plot([0, top], [0, top], ":", color="grey", lw=1, label="delivered = offered")
    ax.set_xlabel("offered (kframes/s, 64-byte frames)")
    ax.set_ylabel("delivered to the reader (kframes/s)")
    ax.set_title("receive livelock", fontsize=9)
    ax.legend(fontsize=7)
    ax2.set_xlabel("offered (kframes/s)")
    ax2.set_ylabel("interrupts per frame")
    ax2.set_title("interrupts per frame", fontsize=9)
    for a in (ax, ax2):
        a.grid(True, alpha=0.3)
        a.set_ylim(bottom=0)
    return fig


def conclude_livelock(df: Any) -> tuple[Any, str]:
    import pandas as pd

    rows = []
    for (model, napi), part in df.groupby(["model", "napi"], sort=False):
        peak = part.loc[part["delivered_pps"].idxmax()]
        last = part.iloc[-1]
        rows.append({"model": model, "napi": napi, "peak_delivered_pps": peak["delivered_pps"],
                     "at_offered_pps": peak["rate"], "delivered_at_max_pps": last["delivered_pps"],
                     "of_peak": last["delivered_pps"] / peak["delivered_pps"],
                     "interrupts_per_frame_at_max": last["interrupts_per_frame"]})
    table = pd.DataFrame(rows)
    worst = table.loc[table["of_peak"].idxmin()]
    napi = df[df["napi"]]
    kept = (napi["delivered_pps"] / napi["rate"]).min()
    most = table[table["napi"]]["interrupts_per_frame_at_max"].max()
    return table, (f"without NAPI, {worst['model']} peaks at "
                   f"{worst['peak_delivered_pps'] / 1000:.0f} kframes/s and falls to "
                   f"{worst['of_peak']:.0%} of it at the highest rate; with NAPI the reader "
                   f"gets at least {kept:.1%} of the offered frames at every rate, with at most "
                   f"{most:.2f} interrupts per frame at the highest")


# --- buffers -----------------------------------------------------------------------------

BUFFER_READER_WORK = 200e-6           # the reader handles at most ~5,000 frames/s
BUFFER_SET = {"kernel.rmem_max": "16MiB"}    # let SO_RCVBUF go beyond 128 KiB
RCVBUF_LIMIT = 8 * 2**20


def _buffers_scenario(rate: float, seconds: float, *, rcvbuf: int | None = None,
                      snaplen: int = 65535, rx_ring: int | None = None) -> Scenario:
    return Scenario(traffic=TrafficSpec(kind="cbr", rate=rate, size=1514, duration=seconds),
                    sockets=[SocketSpec(rcvbuf=rcvbuf, snaplen=snaplen,
                                        reader_work=BUFFER_READER_WORK)],
                    rx_ring=rx_ring, overrides=BUFFER_SET)


def run_buffers(runner: Runner) -> Any:
    import pandas as pd

    rates: tuple[float, ...]
    rcvbufs: tuple[int, ...]
    snaplens: tuple[int, ...]
    if runner.quick:
        rates, seconds = (2000.0, 8000.0), 0.1
        rcvbufs, snaplens = (4096, 65536, 1048576), (96, 65535)
        # (quick: a coarser search, to 10 % instead of 2 %)
    else:
        rates, seconds = (2000.0, 4000.0, 6000.0, 8000.0), 0.5
        rcvbufs, snaplens = tuple(4096 * 4 ** k for k in range(7)), (96, 1514, 65535)
    labels, points = [], []
    for rate in rates:
        for snaplen in snaplens:
            for rcvbuf in rcvbufs:
                labels.append({"phase": "grid", "rate": rate, "snaplen": snaplen,
                               "rcvbuf": rcvbuf, "rx_ring": None, "seed": 1})
                points.append(RunPoint(_buffers_scenario(rate, seconds, rcvbuf=rcvbuf,
                                                         snaplen=snaplen)))
    grid = runner.run("buffers", labels, points, seconds=seconds)
    rcv = bisect_smallest(
        runner, "search-rcvbuf", rates, 256, RCVBUF_LIMIT,
        lambda rate, v: _buffers_scenario(rate, seconds, rcvbuf=v),
        lambda row: row["sockets.0.tp_drops"] == 0, geometric=True,
        precision=0.1 if runner.quick else 0.02)
    ring = bisect_smallest(
        runner, "search-rx-ring", rates, 2, 9,
        lambda rate, e: _buffers_scenario(rate, seconds, rcvbuf=RCVBUF_LIMIT, rx_ring=2 ** e),
        lambda row: row["rx_missed_errors"] == 0, geometric=False)
    return pd.concat([grid, rcv, ring], ignore_index=True)


def bisect_smallest(runner: Runner, phase: str, keys: Sequence[float], lo: int, hi: int,
                    make: Callable[[float, int], Scenario], good: Callable[[Any], bool],
                    geometric: bool, precision: float = 0.02) -> Any:
    """For each key, the smallest integer v in [lo, hi] whose run is ``good`` (assumed
    monotone in v), by bisection; every key's next probe runs in the same round.

    ``hi`` is probed first: when even it is not good the key's answer is None.
    Then the interval (known bad, known good] is halved (in the middle, or at the
    geometric mean when ``geometric``) until it is 1 wide, or ``precision`` of the
    value when ``geometric``.  Each probe is a row of ``phase``; the answer's row has
    ``smallest`` = True.
    """
    import pandas as pd

    bounds = {k: [lo - 1, hi] for k in keys}          # [known bad (or below lo), known good]
    probe = {k: hi for k in keys}
    answer: dict[float, int | None] = {}
    frames = []
    while probe:
        labels = [{"phase": phase, "rate": k, "snaplen": 65535,
                   "rcvbuf": v if geometric else RCVBUF_LIMIT,
                   "rx_ring": None if geometric else 2 ** v, "seed": 1} for k, v in probe.items()]
        df = runner.run("buffers", labels, [RunPoint(make(k, v)) for k, v in probe.items()])
        frames.append(df)
        following: dict[float, int] = {}
        for (k, v), (_, row) in zip(probe.items(), df.iterrows(), strict=True):
            is_good = row["status"] == "ok" and bool(good(row))
            if v == hi and not is_good:
                answer[k] = None
                continue
            bounds[k][1 if is_good else 0] = v
            bad, ok = bounds[k]
            width = max(1, int(ok * precision)) if geometric else 1
            if ok - bad <= width:
                answer[k] = ok
                continue
            mid = int(math.sqrt(max(bad, 1) * ok)) if geometric else (bad + ok) // 2
            following[k] = min(max(mid, bad + 1), ok - 1)
        probe = following
    out = pd.concat(frames, ignore_index=True).copy()
    column = "rcvbuf" if geometric else "rx_ring"
    out["smallest"] = False
    for k, found in answer.items():
        if found is not None:
            value = found if geometric else 2 ** found
            out.loc[(out["rate"] == k) & (out[column] == value), "smallest"] = True
    return out


def figure_buffers(df: Any) -> Figure:
    fig = Figure(figsize=(10, 4), layout="constrained")
    grid = df[df["phase"] == "grid"]
    ax = fig.add_subplot(1, 2, 1)
    for (rate, snaplen), part in grid.groupby(["rate", "snaplen"], sort=False):
        ax.plot(part["rcvbuf"], part["sockets.0.tp_drops"] / part["offered"],
                "-" if snaplen == 65535 else ":", marker="o", ms=3,
                label=f"{rate / 1000:g} kframes/s, snaplen {snaplen}")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("SO_RCVBUF (bytes)")
    ax.set_ylabel("dropped fraction (tp_drops / offered)")
    ax.set_title(f"1514-byte frames, reader work {BUFFER_READER_WORK * 1e6:g} µs/frame",
                 fontsize=9)
    ax.legend(fontsize=6)
    ax.grid(True, alpha=0.3)
    table, _ = conclude_buffers(df)
    ax2 = fig.add_subplot(1, 2, 2)
    found = table.dropna(subset=["smallest_rcvbuf"])
    ax2.plot(found["rate"] / 1000, found["smallest_rcvbuf"] / 1024, "o-", ms=4)
    ax2.set_yscale("log", base=2)
    ax2.set_xlabel("offered (kframes/s)")
    ax2.set_ylabel("smallest SO_RCVBUF without drops (KiB)")
    ax2.set_title("found by bisection", fontsize=9)
    ax2.grid(True, alpha=0.3)
    return fig


def conclude_buffers(df: Any) -> tuple[Any, str]:
    import pandas as pd

    rows = []
    grid_all = df[df["phase"] == "grid"]
    for rate in _order(df["rate"]):
        rcv = df[(df["phase"] == "search-rcvbuf") & (df["rate"] == rate) & df["smallest"]]
        ring = df[(df["phase"] == "search-rx-ring") & (df["rate"] == rate) & df["smallest"]]
        grid = grid_all[grid_all["rate"] == rate]
        spread = grid.groupby("rcvbuf")["sockets.0.tp_drops"].agg(lambda s: s.max() - s.min())
        rows.append({"rate": rate,
                     "smallest_rcvbuf": int(rcv["rcvbuf"].iloc[0]) if len(rcv) else None,
                     "smallest_rx_ring": int(ring["rx_ring"].iloc[0]) if len(ring) else None,
                     "most_drops": int(grid["sockets.0.tp_drops"].max()),
                     "drops_spread_over_snaplen": int(spread.max())})
    table = pd.DataFrame(rows)
    worst = table["drops_spread_over_snaplen"].max()
    most = max(1, table["most_drops"].max())
    return table, ("the SO_RCVBUF a reader needs grows with the rate it cannot keep up with; "
                   f"snaplen moves the drops by at most {worst} ({worst / most:.1%} of the "
                   "most): the rcvbuf test counts truesize, before the trim, and a shorter "
                   "copy only speeds the reader a little")


def _order(values: Any) -> list[Any]:
    return list(dict.fromkeys(values))


STUDIES: dict[str, Study] = {s.name: s for s in (
    Study("attach", "SO_ATTACH_FILTER time against filter length",
          run_attach, figure_attach, conclude_attach),
    Study("snaplen", "packet_rcv and recvfrom against snaplen (100 MB nc)",
          run_snaplen, figure_snaplen, conclude_snaplen),
    Study("recvfrom", "sys_recvfrom against filter length (100 MB nc)",
          run_recvfrom, figure_recvfrom, conclude_recvfrom),
    Study("livelock", "delivered against offered rate, NAPI and pre-NAPI",
          run_livelock, figure_livelock, conclude_livelock),
    Study("buffers", "drops against SO_RCVBUF x snaplen x rate; smallest buffers",
          run_buffers, figure_buffers, conclude_buffers),
)}


def run_study(name: str, out_dir: str = ".", *, fmt: str = "parquet", jobs: int | None = None,
              scheduler: str | None = None, quick: bool = False) -> tuple[Any, Any, str]:
    """Run a study; write DIR/NAME.parquet (or .csv) and DIR/NAME.png; return
    (table, conclusion table, conclusion sentence)."""
    import os

    from lsfsim.outputs import write_output
    from lsfsim.study.plot import figure_bytes
    from lsfsim.study.table import encode

    study = STUDIES.get(name)
    if study is None:
        raise InputError(f"study {name!r}: no such study (choose from {', '.join(STUDIES)})")
    if fmt not in ("parquet", "csv"):
        raise InputError(f"--format {fmt}: use parquet or csv")
    if not os.path.isdir(out_dir):
        raise InputError(f"--out {out_dir}: no such directory")
    df = study.run(Runner(jobs, scheduler, quick))
    failed = df[df["status"] != "ok"]
    definition = {"format": FORMAT, "study": name, "quick": quick}
    write_output(os.path.join(out_dir, f"{name}.{fmt}"),
                 encode(df.to_dict("records"), definition, fmt))
    if len(failed):
        raise InputError(f"study {name}: {len(failed)} point(s) failed, e.g. "
                         f"{failed['error'].iloc[0]} (the table is written)")
    png = os.path.join(out_dir, f"{name}.png")
    write_output(png, figure_bytes(study.figure(df), png))
    table, sentence = study.conclude(df)
    return df, table, sentence
