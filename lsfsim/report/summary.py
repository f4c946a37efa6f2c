"""The run summary printed by ``lsfsim run``: stages, drops, latency, CPU, functions."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from lsfsim.config.units import format_duration
from lsfsim.result import Result

DROP_PLACES = (
    ("mac_filtered", "NIC address filter (not for this host)"),
    ("rx_missed_errors", "RX ring full (CSR112 -> rx_missed_errors)"),
    ("rx_oversize", "longer than a ring buffer (rx_errors)"),
    ("rx_dropped", "skb allocation failed (rx_dropped)"),
    ("softnet_dropped", "backlog full (softnet_stat dropped)"),
)


def _pct(part: float, whole: float) -> str:
    return f"{100.0 * part / whole:5.1f}%" if whole else "    -"


def filter_in_use(spec: dict[str, Any], sock: dict[str, Any]) -> str:
    """The filter a socket ran, as the user gave it; "none"; or the kernel's refusal."""
    if spec.get("filter_file"):
        given = f"file {spec['filter_file']}"
    elif spec.get("filter"):
        given = spec["filter"]
    elif sock["filter_instructions"]:
        given = f"(none: snaplen {spec['snaplen']})"
    else:
        return "none"
    refused = sock.get("filter_refused")
    if refused:
        return f"REFUSED by the kernel ({refused}), ran unfiltered: {given}"
    return f"{given} ({sock['filter_instructions']} instructions)"


def capture_table(result: Result) -> Table:
    """Each capture program: the filter in use (or none) and the interface mode."""
    d = result.data
    t = Table(title="capture programs", title_justify="left")
    t.add_column("socket", justify="right")
    t.add_column("filter")
    t.add_column("interface")
    captures = [s for s in d["sockets"] if s.get("role", "capture") == "capture"]
    for spec, sock in zip(d["scenario"]["sockets"], captures, strict=True):
        t.add_row(str(sock["index"]), filter_in_use(spec, sock),
                  "promiscuous" if spec["promisc"] else "not promiscuous (-p)")
    for sock in d["sockets"]:
        if sock.get("role") == "sender":
            t.add_row(str(sock["index"]), "none (a sender's socket: a tap nobody reads)", "")
    return t


def summary_tables(result: Result) -> list[Table]:
    d = result.data
    tables: list[Table] = [capture_table(result)]

    t = Table(title="packets and bytes per stage", title_justify="left",
              caption=f"model {d['model']}, Linux {d['kernel_version']}, "
                      f"{d['sim_seconds'] * 1e3:.3f} ms simulated", caption_justify="left")
    t.add_column("stage")
    t.add_column("packets", justify="right")
    t.add_column("bytes", justify="right")
    for name, stage in d["stages"].items():
        t.add_row(name, f"{stage['packets']:,}",
                  f"{stage['bytes']:,}" if "bytes" in stage else "")
    tables.append(t)

    t = Table(title="where packets ended", title_justify="left")
    t.add_column("place")
    t.add_column("counter")
    t.add_column("packets", justify="right")
    t.add_column("of offered", justify="right")
    places = d["conservation"]["places"]
    for key, label in DROP_PLACES:
        t.add_row(label, key, f"{places[key]:,}", _pct(places[key], d["offered"]))
    for s in d["sockets"]:
        i = s["index"]
        t.add_row(f"socket {i}: filter returned 0", "(none: silent)", f"{s['filtered']:,}",
                  _pct(s["filtered"], s["seen"]))
        t.add_row(f"socket {i}: receive buffer full", "tp_drops / sk_drops",
                  f"{s['rcvbuf_drops']:,}", _pct(s["rcvbuf_drops"], s["seen"]))
        t.add_row(f"socket {i}: read by the user", "recvfrom", f"{s['delivered']:,}",
                  _pct(s["delivered"], s["seen"]))
        if s["queued"] or s["in_recvfrom"]:
            t.add_row(f"socket {i}: still queued", "sk_receive_queue", f"{s['queued']:,}", "")
    for key in ("in_rx_ring", "in_backlog", "on_wire"):
        if places[key]:
            t.add_row(f"still in {key[3:] if key.startswith('in_') else key}", key,
                      f"{places[key]:,}", "")
    tables.append(t)

    t = Table(title="NIC and softirq", title_justify="left")
    t.add_column("counter")
    t.add_column("value", justify="right")
    for key in ("interrupts", "napi_polls", "time_squeeze", "ksoftirqd_wakeups", "acks_sent"):
        t.add_row(key, f"{d[key]:,}")
    for s in d["sockets"]:
        t.add_row(f"socket {s['index']} PACKET_STATISTICS",
                  f"tp_packets={s['tp_packets']:,} tp_drops={s['tp_drops']:,}")
        if s["attach_errno"]:
            t.add_row(f"socket {s['index']} SO_ATTACH_FILTER", s["attach_errno"])
    tables.append(t)

    t = Table(title="latency per stage", title_justify="left")
    for col in ("stage", "count", "mean", "p50", "p90", "p99", "max"):
        t.add_column(col, justify="left" if col == "stage" else "right")
    for stage, h in d["latency"].items():
        if not h["count"]:
            continue
        t.add_row(stage, f"{h['count']:,}",
                  *(format_duration(h[k]) for k in ("mean", "p50", "p90", "p99", "max")))
    tables.append(t)

    t = Table(title="CPU time by context (as top's hi/si/sy/us)", title_justify="left")
    for col in ("cpu", "hi", "si", "sy", "us", "idle"):
        t.add_column(col, justify="right")
    total = d["sim_seconds"] or 1.0
    for c in d["cpu_time"]:
        t.add_row(str(c["cpu"]), *(_pct(c[k], total) for k in ("hi", "si", "sy", "us", "idle")))
    tables.append(t)

    t = Table(title="CPU time by kernel function (top 15, self time)", title_justify="left")
    for col in ("function", "calls", "total", "per call"):
        t.add_column(col, justify="left" if col == "function" else "right")
    for fn, f in list(d["functions"].items())[:15]:
        calls = f["calls"] or 1
        t.add_row(fn, f"{f['calls']:,}", format_duration(f["seconds"]),
                  format_duration(f["seconds"] / calls))
    tables.append(t)
    return tables


def print_summary(result: Result, console: Any = None) -> None:
    console = console or Console()
    for table in summary_tables(result):
        console.print(table)
    d = result.data
    console.print(f"{d['events']:,} events, {d['wall_seconds']:.2f} s wall clock, "
                  f"{d['packets_per_wall_second']:,.0f} packets/s")
