"""Per-packet lifecycles: hand-computed timestamps, stage order, drops, the timeline plot."""

from __future__ import annotations

import pytest

from lsfsim.config.model import load_model
from lsfsim.scenario import Scenario, SocketSpec, TrafficSpec
from lsfsim.trace import FtraceTracer, LifecycleRecorder, run_traced
from lsfsim.trace.timeline import plot_timeline, timeline_bars

BYTE_100M = 80e-9          # one byte at 100 Mb/s


def cbr(size: int, packets: int, rate: float, **sock) -> Scenario:
    return Scenario(traffic=TrafficSpec(kind="cbr", rate=rate, packets=packets, size=size),
                    sockets=[SocketSpec(**{"filter": None, "promisc": False, **sock})])


@pytest.mark.parametrize("length", [1000, 100])
def test_single_packet_on_an_idle_machine_matches_hand_computation(length):
    """One frame, nothing else running: every stage from the cost table by hand.

    1000 bytes go up in the ring's own skb; 100 bytes (<= rx_copybreak 200) are
    copied into a fresh skb (memcpy, fixed + per byte).  The socket has no filter,
    its reader sleeps in recvfrom on the other CPU.
    """
    model = load_model("testbed")
    nic = model.hardware.nic
    costs = model.kernel.costs

    def c(name: str) -> float:
        return costs[name].fixed

    assert nic.link_rate == pytest.approx(100e6)
    rec = LifecycleRecorder()
    result = run_traced(model, cbr(length, 1, 1000.0), recorder=rec)
    assert result.sockets[0]["delivered"] == 1
    life = rec[0]
    t_wire_end = life.t_wire + (8 + length + 4) * BYTE_100M      # preamble + frame + FCS
    t_dma = t_wire_end + nic.dma_latency + length / nic.dma_rate
    t_irq = t_dma                                                 # INEA set, CPU 0 idle
    isr = (c("hardirq") + c("pcnet32_interrupt") + 2 * c("pcnet32_wio_read_csr")
           + 2 * c("pcnet32_wio_write_csr") + c("__napi_schedule"))
    softirq = c("__do_softirq") + c("net_rx_action") + c("pcnet32_poll")
    rx = c("pcnet32_rx_entry") + c("dev_alloc_skb") + c("skb_put") + c("eth_type_trans")
    if length <= nic.rx_copybreak:
        rx += c("memcpy") + length * costs["memcpy"].per_byte
    t_poll = t_irq + isr + softirq + rx
    # netif_receive_skb; a tap before ip_rcv gets a shared skb: deliver_skb, clone, kfree_skb
    t_enq = t_poll + (c("netif_receive_skb") + c("deliver_skb") + c("packet_rcv")
                      + c("skb_clone") + c("kfree_skb") + c("__skb_queue_tail")
                      + c("sock_def_readable") + c("try_to_wake_up"))
    t_deq = t_enq + c("schedule")                                 # the reader switches in
    t_done = t_deq + (c("skb_copy_datagram_iovec")
                      + length * costs["skb_copy_datagram_iovec"].per_byte
                      + c("skb_free_datagram"))
    expected = {"wire end": t_wire_end, "dma": t_dma, "irq": t_irq, "poll": t_poll,
                "enqueue": t_enq, "dequeue": t_deq, "copied": t_done}
    (verdict,) = life.verdicts
    (copy,) = life.copies
    got = {"wire end": life.t_wire_end, "dma": life.t_dma, "irq": life.t_irq,
           "poll": life.t_poll, "enqueue": verdict.t_enq, "dequeue": copy.t_deq,
           "copied": copy.t_done}
    for stage, t in expected.items():
        assert got[stage] == pytest.approx(t, abs=1e-12), stage
    assert verdict.outcome == "queued" and verdict.snaplen == length
    assert (life.poll_cpu, life.poll_context) == (0, "softirq")
    assert (copy.reader, copy.cpu) == ("reader0.0", 1)
    assert life.length == length and life.fate == "copied"


def _check_order(life) -> None:
    assert life.t_wire < life.t_wire_end <= life.t_dma <= life.t_poll
    assert life.t_irq <= life.t_poll
    for v in life.verdicts:
        assert life.t_poll <= v.t
        if v.outcome == "queued":
            assert v.t <= v.t_enq
    queued = {v.sock: v.t_enq for v in life.verdicts if v.outcome == "queued"}
    for c in life.copies:
        assert queued[c.sock] <= c.t_deq <= c.t_done


def test_stages_are_ordered_under_load_and_irqs_can_precede_the_dma():
    """148 kpps of minimum frames into a 4-descriptor ring: NAPI runs pick up frames whose DMA
    completed after the IRQ that started the run (t_irq < t_dma), never after their poll."""
    rec = LifecycleRecorder()
    result = run_traced("testbed", Scenario(
        traffic=TrafficSpec(kind="cbr", rate=148_000.0, packets=400, size=60),
        sockets=[SocketSpec(filter=None)], rx_ring=4), recorder=rec)
    lives = rec.sorted()
    assert len(lives) == result["offered"] == 400
    for life in lives:
        _check_order(life)
    early = [life for life in lives if life.t_irq < life.t_dma]
    late = [life for life in lives if life.t_irq >= life.t_dma]
    assert early and late
    # an early IRQ is the one that started the NAPI run: no other IRQ in between
    irqs = sorted({life.t_irq for life in lives})
    for life in early:
        assert not any(life.t_irq < t <= life.t_poll for t in irqs)
    assert sum(1 for life in lives if life.fate == "copied") == result.sockets[0]["delivered"]


def test_drops_are_recorded_where_they_happen():
    # a receive buffer for about two in-place skbs and a slow reader: drop_n_acct
    rec = LifecycleRecorder()
    result = run_traced("testbed", cbr(1000, 60, 20_000.0, rcvbuf=2000, reader_work=200e-6),
                        recorder=rec)
    sock = result.sockets[0]
    fates = [life.fate for life in rec.sorted()]
    assert fates.count("rcvbuf_drop") == sock["rcvbuf_drops"] > 0
    assert fates.count("copied") == sock["delivered"]
    # a filter that refuses everything
    rec = LifecycleRecorder(packets=[0, 2])
    result = run_traced("testbed", cbr(100, 4, 5000.0, filter="tcp"), recorder=rec)
    assert sorted(rec.records) == [0, 2]
    for life in rec.sorted():
        assert [v.outcome for v in life.verdicts] == ["filtered"] and not life.copies
    # a full RX ring: the chip misses frames (rx_missed_errors), each one recorded
    rec = LifecycleRecorder()
    result = run_traced("testbed-vm", Scenario(
        traffic=TrafficSpec(kind="cbr", rate=148_000.0, packets=150, size=60),
        sockets=[SocketSpec(filter=None)], rx_ring=4), recorder=rec)
    missed = [life for life in rec.sorted() if life.dropped == "rx_missed_errors"]
    assert len(missed) == result["rx_missed_errors"] > 0
    for life in missed:
        assert life.t_poll is None and life.t_wire < life.t_wire_end < life.t_dma
        assert life.stages()[-1][0].startswith("dropped: rx_missed_errors")


def test_timeline_bars_are_the_runs_data(tmp_path):
    tracer = FtraceTracer(activity=True, calls=False)
    rec = LifecycleRecorder(packets=[2, 5])
    result = run_traced("testbed", cbr(100, 8, 20_000.0), tracer=tracer, recorder=rec)
    # busy rows: the merged charges add up to the run's CPU time
    busy = tracer.busy_intervals()
    for row in result["cpu_time"]:
        cpu = row["cpu"]
        for ctx, expected in (("hardirq", row["hi"]), ("softirq", row["si"]),
                              ("process", row["sy"] + row["us"])):
            total = sum(b - a for a, b in busy.get((cpu, ctx), ()))
            assert total == pytest.approx(expected, abs=1e-12), (cpu, ctx)
    timeline = timeline_bars(tracer, rec.sorted(), ncpus=2)
    assert timeline.rows[:6] == ["CPU0 hardirq", "CPU0 softirq", "CPU0 process",
                                 "CPU1 hardirq", "CPU1 softirq", "CPU1 process"]
    assert timeline.rows[6:] == ["frame 2", "frame 5"]
    for row, life in ((6, rec[2]), (7, rec[5])):
        (v,) = life.verdicts
        (cp,) = life.copies
        want = [("wire", life.t_wire, life.t_wire_end), ("dma", life.t_wire_end, life.t_dma),
                ("rx ring", life.t_dma, life.t_poll), ("softirq", life.t_poll, v.t_enq),
                ("socket queue", v.t_enq, cp.t_deq), ("recvfrom", cp.t_deq, cp.t_done)]
        got = [(b.label, b.start, b.start + b.width) for b in timeline.bars if b.row == row]
        assert [g[0] for g in got] == [w[0] for w in want]
        for (_l, a, b), (_m, x, y) in zip(got, want, strict=True):
            assert a == pytest.approx(x, abs=1e-15) and b == pytest.approx(y, abs=1e-15)
        assert (row, life.t_irq) in timeline.irq_marks
    # the softirq row holds CPU 0's NAPI work during each frame's softirq stage
    for life in rec.sorted():
        assert any(b.row == 1 and b.start <= life.t_poll < b.start + b.width
                   for b in timeline.bars)
    # what matplotlib draws: one collection per row, its rectangles at the bars (in us)
    fig = plot_timeline(timeline, tmp_path / "t.png")
    ax = fig.axes[0]
    drawn = {coll.get_gid(): sorted(x for p in coll.get_paths()
                                    for x in (float(p.vertices[:, 0].min()),
                                              float(p.vertices[:, 0].max())))
             for coll in ax.collections if coll.get_gid()}
    for row, name in enumerate(timeline.rows):
        bars = sorted(x for b in timeline.bars if b.row == row
                      for x in (b.start * 1e6, (b.start + b.width) * 1e6))
        if bars:
            assert drawn[name] == pytest.approx(bars, abs=1e-6), name
    assert drawn["frame 2"][0] == pytest.approx(rec[2].t_wire * 1e6)
    assert drawn["frame 5"][-1] == pytest.approx(rec[5].copies[0].t_done * 1e6)
    assert (tmp_path / "t.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    plot_timeline(timeline, tmp_path / "t.svg")
    assert b"<svg" in (tmp_path / "t.svg").read_bytes()[:500]
    with pytest.raises(ValueError, match="png or .svg"):
        plot_timeline(timeline, tmp_path / "t.pdf")


def _cli(*args: str):
    import typer
    from typer.testing import CliRunner

    from lsfsim.cli import trace_cmd

    app = typer.Typer()
    trace_cmd.register(app)
    return CliRunner().invoke(app, list(args))


def test_cli_lifecycle(tmp_path):
    plot = tmp_path / "life.svg"
    res = _cli("lifecycle", "3,4", "--plot", str(plot))
    assert res.exit_code == 0, res.output
    assert "frame 3: copied" in res.output and "frame 4: copied" in res.output
    assert "DMA done" in res.output and "copied to user" in res.output
    assert plot.is_file()
    res = _cli("lifecycle", "999")
    assert res.exit_code == 2 and "frame 999" in res.output
    res = _cli("lifecycle", "1", "--plot", str(tmp_path / "x.jpg"))
    assert res.exit_code == 2 and "--plot" in res.output


@pytest.fixture(scope="module")
def pre_napi_flood():
    """Line rate of minimum frames into the emulated NIC, pre-NAPI: the backlog fills
    (softnet drops) and frames wait on it for milliseconds."""
    rec = LifecycleRecorder()
    result = run_traced("testbed-vm", Scenario(
        traffic=TrafficSpec(kind="cbr", rate=148_810.0, packets=1500, size=60),
        sockets=[SocketSpec(filter=None)], napi=False), recorder=rec)
    return result, rec


def test_pre_napi_stages_are_netif_rx_the_backlog_and_process_backlog(pre_napi_flood):
    result, rec = pre_napi_flood
    costs = load_model("testbed-vm").kernel.costs
    netif_rx = costs["netif_rx"].fixed
    # the frame that finds the backlog empty also schedules its poll (__napi_schedule)
    first_in = netif_rx + costs["__napi_schedule"].fixed
    lives = rec.sorted()
    copied = [life for life in lives if life.fate == "copied"]
    dropped = [life for life in lives if life.dropped == "softnet_dropped"]
    assert len(copied) == result.sockets[0]["delivered"] > 0
    assert len(dropped) == result["softnet_dropped"] > 0
    for life in copied:
        (v,) = life.verdicts
        assert not life.napi and life.poll_context == "hardirq"
        # netif_rx runs right after the descriptor is taken: its own cost apart
        step = life.t_backlog - life.t_poll
        assert step == pytest.approx(netif_rx, abs=1e-12) or \
            step == pytest.approx(first_in, abs=1e-12)
        assert life.t_backlog <= life.t_backlog_poll <= v.t
        assert life.backlog_context == "softirq" or life.backlog_context.startswith("ksoftirqd")
        names = [name for name, _t, _w in life.stages()]
        i = names.index("taken off the ring (pcnet32_rx)")
        assert names[i + 1: i + 3] == ["netif_rx: queued on the backlog",
                                       "process_backlog takes it"]
        text = " ".join(f"{n} {w}" for n, _t, w in life.stages())
        assert "pcnet32_poll" not in text and "NAPI" not in text
    for life in dropped:
        assert life.t_backlog is None and life.t_drop - life.t_poll == pytest.approx(netif_rx)
        assert life.stages()[-1][0] == "dropped: softnet_dropped"
    # the wait on the backlog is a latency stage of its own, and rx_ring no longer holds it
    lat = result["latency"]
    waits = [life.t_backlog_poll - life.t_backlog for life in copied]
    assert lat["backlog"]["count"] == len(copied)
    assert lat["backlog"]["mean"] == pytest.approx(sum(waits) / len(waits), rel=1e-9)
    assert lat["backlog"]["max"] > 1e-3 > 10 * lat["rx_ring"]["max"]
    ring = [life.t_backlog - life.t_dma for life in copied]
    assert lat["rx_ring"]["mean"] == pytest.approx(sum(ring) / len(ring), rel=1e-9)


def test_napi_results_have_no_backlog_stage():
    from lsfsim.kernel.context import LATENCY_STAGES

    rec = LifecycleRecorder(packets=[1])
    result = run_traced("testbed", cbr(100, 3, 10_000.0), recorder=rec)
    assert list(result["latency"]) == [*LATENCY_STAGES, "total"]
    assert rec[1].napi and rec[1].t_backlog is None
    assert "polled (pcnet32_poll)" in [name for name, _t, _w in rec[1].stages()]


def test_timeline_marks_each_drop_where_it_happened(tmp_path, pre_napi_flood):
    from matplotlib.text import Annotation

    # NAPI, a 4-descriptor ring and a small receive buffer: missed frames and rcvbuf drops
    rec = LifecycleRecorder()
    run_traced("testbed-vm", Scenario(
        traffic=TrafficSpec(kind="cbr", rate=148_810.0, packets=60, size=60),
        sockets=[SocketSpec(filter=None, rcvbuf=3000, reader_work=30e-6)], rx_ring=4),
        recorder=rec)
    lives = [life for life in rec.sorted() if 30 <= life.index < 42]
    fates = {life.fate for life in lives}
    assert {"rx_missed_errors", "rcvbuf_drop", "copied"} <= fates
    timeline = timeline_bars(None, lives, ncpus=2)
    marks = {timeline.rows[row]: (t, what) for row, t, what in timeline.drop_marks}
    for life in lives:
        name = f"frame {life.index}"
        if life.fate == "rx_missed_errors":
            assert marks[name] == (life.t_dma, "NIC: RX ring full (CSR112) (rx_missed_errors)")
        elif life.fate == "rcvbuf_drop":
            (v,) = life.verdicts
            assert marks[name] == (v.t, "sock0: receive buffer full")
        else:
            assert name not in marks
        for t, _what in life.drop_points():
            assert timeline.t0 < t < timeline.t1
    # pre-NAPI: the handler's part and the wait on the backlog are bars; backlog drops marked
    _result, flood = pre_napi_flood
    copied = next(life for life in flood.sorted() if life.fate == "copied")
    lost = next(life for life in flood.sorted() if life.fate == "softnet_dropped")
    pre = timeline_bars(None, [copied, lost], ncpus=2)
    row = pre.rows.index(f"frame {copied.index}")
    got = [(b.label, b.start, b.start + b.width) for b in pre.bars if b.row == row]
    assert got[2:5] == [("rx ring", copied.t_dma, copied.t_poll),
                        ("hardirq", copied.t_poll, copied.t_backlog),
                        ("backlog", copied.t_backlog, copied.t_backlog_poll)]
    assert pre.drop_marks == [(pre.rows.index(f"frame {lost.index}"), lost.t_drop,
                               "netif_rx: backlog full (softnet_dropped)")]
    # drawn: one labelled cross per drop, the title above the axes, the legend beside them,
    # every label inside the axes
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = plot_timeline(timeline, tmp_path / "d.png", title="testbed-vm: frames 30-41")
    ax = fig.axes[0]
    annotations = [c for c in ax.get_children() if isinstance(c, Annotation)]
    assert sorted(a.get_text() for a in annotations) == \
        sorted(f"dropped: {w}" for _r, _t, w in timeline.drop_marks)
    renderer = FigureCanvasAgg(fig).get_renderer()
    axes_box = ax.get_window_extent(renderer)
    assert ax.title.get_window_extent(renderer).y0 >= axes_box.y1
    legend_box = ax.get_legend().get_window_extent(renderer)
    assert legend_box.x0 >= axes_box.x1
    assert fig.bbox.contains(legend_box.x1 - 1, legend_box.y0 + 1)
    for a in annotations:
        box = a.get_window_extent(renderer)
        assert axes_box.x0 <= box.x0 and box.x1 <= axes_box.x1
    # a drop at the very end of the chart: the time axis widens to hold its label
    last = [life for life in lives if life.fate != "copied"][-1]
    alone = timeline_bars(None, [last], ncpus=2)
    fig = plot_timeline(alone)
    ax = fig.axes[0]
    renderer = FigureCanvasAgg(fig).get_renderer()
    (label,) = [c for c in ax.get_children() if isinstance(c, Annotation)]
    assert ax.get_xlim()[1] > alone.t1 * 1e6
    assert label.get_window_extent(renderer).x1 <= ax.get_window_extent(renderer).x1


def test_cli_lifecycle_json(tmp_path):
    """--json: per frame, the table's stages and the fate record of run --fates."""
    import json

    out = tmp_path / "life.jsonl"
    args = ("--model", "testbed-vm", "--traffic", "cbr", "--rate", "148810", "--size", "60",
            "--count", "300", "--rcvbuf", "3000", "--reader-work", "30us", "--rx-ring", "4")
    res = _cli("lifecycle", "29:37", *args, "--json", str(out))
    assert res.exit_code == 0, res.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [x["frame"] for x in lines] == list(range(29, 38))
    places = {"copied": "received", "rcvbuf_drop": "received",
              "rx_missed_errors": "rx_missed_errors"}
    for x in lines:
        assert x["end"]["frame"] == x["frame"] and x["end"]["place"] == places[x["fate"]]
        assert [s["t"] for s in x["stages"]] == sorted(s["t"] for s in x["stages"])
        if x["fate"] == "rcvbuf_drop":
            (sock,) = x["end"]["sockets"]
            assert sock["fate"] == "rcvbuf_drop" and sock["rmem_alloc"] > 0
            assert any(s["stage"] == "sock0: dropped, receive buffer full" and s["t"] == sock["t"]
                       for s in x["stages"])
        if x["fate"] == "copied":
            assert x["end"]["sockets"][0]["t"] == x["stages"][-1]["t"]   # recvfrom returned
    assert {x["fate"] for x in lines} >= {"copied", "rx_missed_errors", "rcvbuf_drop"}
    res = _cli("lifecycle", "3", "--json", "-")
    assert res.exit_code == 0 and json.loads(res.stdout)["frame"] == 3
