"""``lsfsim trace`` and ``lsfsim lifecycle``: the simulated kernel as ftrace shows it,
and what happened to given packets.

Both take the run options of ``lsfsim run`` (same names and meaning), with a
short default scenario so that the output stays readable: the lecture's nc
transfer, 30000 bytes.  ``--count`` is the number of frames to offer, as in
``run``; frames are chosen by index, from 0 (the first frame on the wire is
frame 0): ``trace --frames N,M:K`` and ``lifecycle N,M:K``.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import typer

from lsfsim.cli import options
from lsfsim.cli.common import InputError, one_line_errors
from lsfsim.cli.run_cmd import (
    LateProgress,
    frame_count,
    print_warnings,
    refused_filter_is_input_error,
)
from lsfsim.cli.scenario_options import ScenarioOptions, scenario_options
from lsfsim.outputs import check_output, open_output

DEFAULT_BYTES = 30_000


def _run(loaded: Any, scenario: Any, probes: Any = (), **listeners: Any) -> Any:
    """run_traced with the progress bar of ``lsfsim run`` and its refused-filter line."""
    from lsfsim.trace import run_traced

    progress = LateProgress()
    try:
        with refused_filter_is_input_error():
            result = run_traced(loaded, scenario, progress=progress, probes=probes,
                                **listeners)
    finally:
        progress.close()
    print_warnings(result)
    return result


def _write_lifecycles(path: str, recorder: Any, ends: dict[int, dict[str, Any]],
                      frames: list[int]) -> None:
    """One JSON line per frame: its stages as the table shows them, and its fate record."""
    import json

    with open_output(path, "w") as out:
        for index in frames:
            life = recorder.records.get(index)
            stages = [] if life is None else [
                {"stage": stage, "t": t, "where": where} for stage, t, where in life.stages()]
            out.write(json.dumps({"frame": index,
                                  "fate": life.fate if life is not None else None,
                                  "stages": stages, "end": ends.get(index)}) + "\n")


def _indexes(spec: str, option: str) -> frozenset[int]:
    from lsfsim.cli.trace_options import parse_packets

    return parse_packets(spec, option)


def register(app: typer.Typer) -> None:
    @app.command("trace")
    @one_line_errors
    @scenario_options
    def trace_command(
        scenario: ScenarioOptions,
        functions: str = typer.Option(
            None, "--functions",
            help="Only these functions and their callees: GLOB,... (like set_graph_function)."),
        frames: str = typer.Option(
            None, "--frames",
            help="Only the calls made for these frames (indexes from 0), plus the control path: "
                 "N, N:M (inclusive), comma-separated."),
        old_packets: str = typer.Option(None, "--packets", hidden=True, help="Renamed --frames."),
        window: str = typer.Option(
            None, "--window",
            help="Only calls overlapping this simulated-time window T0:T1, e.g. 0:2ms."),
        cpu: int = typer.Option(
            None, "--cpu", min=0,
            help="Only this CPU (like per_cpu/cpuN/trace)."),
        fmt: str = typer.Option(
            "text", "--format",
            help="text (function_graph) | json (one event per line)."),
        overhead: bool = typer.Option(
            False, "--overhead",
            help="Add the model's tracer_overhead per traced call to durations."),
        abstime: bool = typer.Option(
            False, "--abstime",
            help="Start each text line with its simulated time in seconds, like ftrace's "
                 "funcgraph-abstime."),
        output: str = typer.Option(None, "--output", "-o", help="Write to FILE instead of stdout."),
    ) -> None:
        """The simulated kernel's execution as ftrace's function_graph tracer prints it."""
        from lsfsim.cli.trace_options import parse_window
        from lsfsim.config.model import load_model
        from lsfsim.trace import FtraceTracer

        if old_packets is not None:
            raise InputError("--packets: in `trace` it selected frames; that is now --frames "
                             "(--count is the number of frames to offer, as everywhere)")
        if fmt not in ("text", "json"):
            raise InputError(f"--format: {fmt!r} is not text or json")
        if abstime and fmt == "json":
            raise InputError("--abstime: the JSON events carry their time already (ts); "
                             "it applies to --format text")
        if output:
            check_output(output, "--output")
        globs = None
        if functions is not None:
            globs = [g.strip() for g in functions.split(",") if g.strip()]
            if not globs:
                raise InputError("--functions: no function name or glob given")
        selected = _indexes(frames, "--frames") if frames is not None else None
        win = parse_window(window) if window is not None else None
        built = scenario.build(default_nc_bytes=DEFAULT_BYTES)
        loaded = load_model(built.model)
        if cpu is not None and cpu >= loaded.hardware.cpu.count:
            raise InputError(f"--cpu: {cpu}: the model has {loaded.hardware.cpu.count} CPUs "
                             f"(0..{loaded.hardware.cpu.count - 1})")
        tracer = FtraceTracer(functions=globs, packets=selected, window=win, overhead=overhead)
        result = _run(loaded, built, tracer=tracer)
        if selected is not None and max(selected) >= result["offered"]:
            typer.echo(f"lsfsim: note: the run offered {result['offered']} frames "
                       f"(indexes 0..{result['offered'] - 1})", err=True)
        if cpu is not None:
            tracer.lines = [ln for ln in tracer.sorted_lines() if ln.cpu == cpu]
        with open_output(output or "-", "w") as out:
            if fmt == "json":
                tracer.write_json(out)
            else:
                tracer.write_text(out, abstime=abstime)

    @app.command("lifecycle")
    @one_line_errors
    @scenario_options
    def lifecycle_command(
        scenario: ScenarioOptions,
        frames: str = typer.Argument(
            ..., metavar="N[,M...]",
            help="Frame indexes (0-based; N:M ranges too)."),
        packets: options.Packets = None,
        plot: str = typer.Option(
            None, "--plot",
            help="Draw a timeline (Gantt chart by CPU and context) to FILE.png or FILE.svg."),
        json_out: str = typer.Option(
            None, "--json",
            help="Write each frame's stages and fate record (as run --fates) to FILE as JSON "
                 "lines ('-': stdout, instead of the tables)."),
    ) -> None:
        """Every stage the given packets went through, with simulated timestamps."""
        from rich.console import Console

        from lsfsim.config.model import load_model
        from lsfsim.trace import FtraceTracer, LifecycleRecorder
        from lsfsim.trace.lifecycle import render_table

        wanted = _indexes(frames, "N[,M...]")
        if plot is not None and Path(plot).suffix.lower() not in (".png", ".svg"):
            raise InputError(f"--plot: {plot}: the file name must end in .png or .svg")
        if plot is not None:
            check_output(plot, "--plot")
        if json_out is not None:
            check_output(json_out, "--json")
        given = replace(scenario, count=frame_count(scenario.count, packets))
        built = given.build(default_nc_bytes=DEFAULT_BYTES)
        loaded = load_model(built.model)
        recorder = LifecycleRecorder(wanted)
        tracer = None
        if plot is not None:
            tracer = FtraceTracer(activity=True, calls=False)   # busy intervals only
        ends: dict[int, dict[str, Any]] = {}
        probes = []
        if json_out is not None:
            from lsfsim.fates import FateTracker

            def keep(record: dict[str, Any]) -> None:
                if record["frame"] in wanted:
                    ends[record["frame"]] = record

            probes.append(FateTracker(keep))
        result = _run(loaded, built, tracer=tracer, recorder=recorder, probes=probes)
        offered = result["offered"]
        missing = sorted(i for i in wanted if i >= offered)
        if missing:
            raise InputError(f"frame {missing[0]}: the run offered only {offered} frames "
                             f"(indexes 0..{offered - 1})")
        if json_out is not None:
            _write_lifecycles(json_out, recorder, ends, sorted(wanted))
        console = Console(stderr=json_out == "-")
        for index in sorted(wanted):
            if json_out == "-":
                break
            if index in recorder:
                console.print(render_table(recorder[index]))
            else:
                console.print(f"frame {index}: offered, but not polled, dropped or "
                              f"recorded by the end of the run")
        if plot is not None:
            from lsfsim.trace.timeline import frames_title, plot_timeline, timeline_bars

            timeline = timeline_bars(tracer, recorder.sorted(), loaded.hardware.cpu.count)
            mode = "" if built.napi else ", pre-NAPI"
            plot_timeline(timeline, plot, title=f"{loaded.name}{mode}: "
                          f"{frames_title(sorted(wanted))}")
            typer.echo(f"timeline: {plot}")
