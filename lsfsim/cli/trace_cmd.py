"""``lsfsim trace`` and ``lsfsim lifecycle``: the simulated kernel as ftrace shows it,
and what happened to given packets.

Both take the run options of ``lsfsim run`` (same names and meaning), with a
short default scenario so that the output stays readable: the lecture's nc
transfer, 30000 bytes.  One difference: in ``trace``, ``--packets`` selects
frame indexes to trace, so the number of frames to offer is ``--count``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

from lsfsim.cli import options
from lsfsim.cli.common import InputError, one_line_errors
from lsfsim.cli.run_cmd import scenario_from_options

DEFAULT_BYTES = 30_000


def _scenario(*, model: str, traffic: str | None, rate: float | None, size: int | None,
              count: int | None, nbytes: int | None, duration: str | None, pcap: str | None,
              speed: float | None, filter_expr: str | None, filter_file: str | None,
              snaplen: int | None, rcvbuf: int | None, rx_ring: int | None, sockets: int,
              readers: int, reader_work: str | None, no_napi: bool, seed: int,
              no_drain: bool, promisc: bool, overrides: list[str] | None = None) -> Any:
    """scenario_from_options with the short default: nc, 30000 bytes."""
    kind = traffic or ("pcap" if pcap else "nc")
    if kind == "nc" and nbytes is None and count is None and duration is None:
        nbytes = DEFAULT_BYTES
    return scenario_from_options(
        model=model, traffic=traffic, rate=rate, size=size, packets=count, nbytes=nbytes,
        duration=duration, pcap=pcap, speed=speed, filter_expr=filter_expr,
        filter_file=filter_file, snaplen=snaplen, rcvbuf=rcvbuf, rx_ring=rx_ring,
        sockets=sockets, readers=readers, reader_work=reader_work, no_napi=no_napi,
        seed=seed, no_drain=no_drain, promisc=promisc, overrides=overrides)


def _indexes(spec: str, option: str) -> frozenset[int]:
    from lsfsim.trace.ftrace import parse_packets

    try:
        return parse_packets(spec)
    except ValueError as exc:
        raise InputError(str(exc).replace("--packets", option)) from None


def register(app: typer.Typer) -> None:
    @app.command("trace")
    @one_line_errors
    def trace_command(
        model: options.Model = "testbed",
        traffic: options.Traffic = None,
        rate: options.Rate = None,
        size: options.Size = None,
        count: options.Count = None,
        nbytes: options.Bytes = None,
        duration: options.Duration = None,
        pcap: options.Pcap = None,
        speed: options.Speed = None,
        filter_expr: options.Filter = None,
        filter_file: options.FilterFile = None,
        snaplen: options.Snaplen = None,
        rcvbuf: options.Rcvbuf = None,
        rx_ring: options.RxRing = None,
        sockets: options.Sockets = 1,
        readers: options.Readers = 1,
        reader_work: options.ReaderWork = None,
        no_napi: options.NoNapi = False,
        promisc: options.Promisc = False,
        seed: options.Seed = 1,
        no_drain: options.NoDrain = False,
        set_: options.Set = None,
        functions: str = typer.Option(None, "--functions", help="Only these functions and their callees: GLOB,... (like set_graph_function)."),
        packets: str = typer.Option(None, "--packets", help="Only the calls made for these frame indexes, plus the control path: N, N:M (inclusive), comma-separated."),
        window: str = typer.Option(None, "--window", help="Only calls overlapping this simulated-time window T0:T1, e.g. 0:2ms."),
        cpu: int = typer.Option(None, "--cpu", min=0, help="Only this CPU (like per_cpu/cpuN/trace)."),
        fmt: str = typer.Option("text", "--format", help="text (function_graph) | json (one event per line)."),
        overhead: bool = typer.Option(False, "--overhead", help="Add the model's tracer_overhead per traced call to durations."),
        output: str = typer.Option(None, "--output", "-o", help="Write to FILE instead of stdout."),
    ) -> None:
        """The simulated kernel's execution as ftrace's function_graph tracer prints it."""
        from lsfsim.config.model import load_model
        from lsfsim.trace import FtraceTracer, run_traced
        from lsfsim.trace.ftrace import parse_window

        if fmt not in ("text", "json"):
            raise InputError(f"--format: {fmt!r} is not text or json")
        globs = None
        if functions is not None:
            globs = [g.strip() for g in functions.split(",") if g.strip()]
            if not globs:
                raise InputError("--functions: no function name or glob given")
        selected = _indexes(packets, "--packets") if packets is not None else None
        win = parse_window(window) if window is not None else None
        scenario = _scenario(
            model=model, traffic=traffic, rate=rate, size=size, count=count, nbytes=nbytes,
            duration=duration, pcap=pcap, speed=speed, filter_expr=filter_expr,
            filter_file=filter_file, snaplen=snaplen, rcvbuf=rcvbuf, rx_ring=rx_ring,
            sockets=sockets, readers=readers, reader_work=reader_work, no_napi=no_napi,
            seed=seed, no_drain=no_drain, promisc=promisc, overrides=set_)
        loaded = load_model(model)
        if cpu is not None and cpu >= loaded.hardware.cpu.count:
            raise InputError(f"--cpu: {cpu}: the model has {loaded.hardware.cpu.count} CPUs "
                             f"(0..{loaded.hardware.cpu.count - 1})")
        tracer = FtraceTracer(functions=globs, packets=selected, window=win, overhead=overhead)
        result = run_traced(loaded, scenario, tracer=tracer)
        if selected is not None and max(selected) >= result["offered"]:
            typer.echo(f"lsfsim: note: the run offered {result['offered']} frames "
                       f"(indexes 0..{result['offered'] - 1})", err=True)
        if cpu is not None:
            tracer.lines = [ln for ln in tracer.sorted_lines() if ln.cpu == cpu]
        out = open(output, "w") if output else sys.stdout  # noqa: SIM115
        try:
            if fmt == "json":
                tracer.write_json(out)
            else:
                tracer.write_text(out)
        finally:
            if output:
                out.close()

    @app.command("lifecycle")
    @one_line_errors
    def lifecycle_command(
        frames: str = typer.Argument(..., metavar="N[,M...]", help="Frame indexes (0-based; N:M ranges too)."),
        model: options.Model = "testbed",
        traffic: options.Traffic = None,
        rate: options.Rate = None,
        size: options.Size = None,
        count: options.Packets = None,
        nbytes: options.Bytes = None,
        duration: options.Duration = None,
        pcap: options.Pcap = None,
        speed: options.Speed = None,
        filter_expr: options.Filter = None,
        filter_file: options.FilterFile = None,
        snaplen: options.Snaplen = None,
        rcvbuf: options.Rcvbuf = None,
        rx_ring: options.RxRing = None,
        sockets: options.Sockets = 1,
        readers: options.Readers = 1,
        reader_work: options.ReaderWork = None,
        no_napi: options.NoNapi = False,
        promisc: options.Promisc = False,
        seed: options.Seed = 1,
        no_drain: options.NoDrain = False,
        set_: options.Set = None,
        plot: str = typer.Option(None, "--plot", help="Draw a timeline (Gantt chart by CPU and context) to FILE.png or FILE.svg."),
    ) -> None:
        """Every stage the given packets went through, with simulated timestamps."""
        from rich.console import Console

        from lsfsim.config.model import load_model
        from lsfsim.trace import FtraceTracer, LifecycleRecorder, run_traced
        from lsfsim.trace.lifecycle import render_table

        wanted = _indexes(frames, "N[,M...]")
        if plot is not None and Path(plot).suffix.lower() not in (".png", ".svg"):
            raise InputError(f"--plot: {plot}: the file name must end in .png or .svg")
        scenario = _scenario(
            model=model, traffic=traffic, rate=rate, size=size, count=count, nbytes=nbytes,
            duration=duration, pcap=pcap, speed=speed, filter_expr=filter_expr,
            filter_file=filter_file, snaplen=snaplen, rcvbuf=rcvbuf, rx_ring=rx_ring,
            sockets=sockets, readers=readers, reader_work=reader_work, no_napi=no_napi,
            seed=seed, no_drain=no_drain, promisc=promisc, overrides=set_)
        loaded = load_model(model)
        recorder = LifecycleRecorder(wanted)
        tracer = None
        if plot is not None:
            tracer = FtraceTracer(activity=True, calls=False)   # busy intervals only
        result = run_traced(loaded, scenario, tracer=tracer, recorder=recorder)
        offered = result["offered"]
        missing = sorted(i for i in wanted if i >= offered)
        if missing:
            raise InputError(f"frame {missing[0]}: the run offered only {offered} frames "
                             f"(indexes 0..{offered - 1})")
        console = Console()
        for index in sorted(wanted):
            if index in recorder:
                console.print(render_table(recorder[index]))
            else:
                console.print(f"frame {index}: offered, but not polled, dropped or "
                              f"recorded by the end of the run")
        if plot is not None:
            from lsfsim.trace.timeline import plot_timeline, timeline_bars

            timeline = timeline_bars(tracer, recorder.sorted(), loaded.hardware.cpu.count)
            plot_timeline(timeline, plot, title=f"{loaded.name}: frames "
                          f"{', '.join(str(i) for i in sorted(wanted))}")
            typer.echo(f"timeline: {plot}")
