"""``lsfsim run``: simulate a scenario and print (or write) what happened."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import typer
from rich.console import Console

from lsfsim.cli import options
from lsfsim.cli.common import InputError, one_line_errors
from lsfsim.cli.scenario_options import (  # noqa: F401  (scenario_from_options: re-exported)
    ScenarioOptions,
    scenario_from_options,
    scenario_options,
)
from lsfsim.outputs import check_output, check_output_dir, open_output


def frame_count(count: int | None, packets: int | None) -> int | None:
    """``--count``, or its deprecated name ``--packets`` (with a note on stderr)."""
    if packets is None:
        return count
    if count is not None:
        raise InputError("--packets is the old name of --count: give one")
    typer.echo("lsfsim: note: --packets is deprecated: use --count", err=True)
    return packets


@contextlib.contextmanager
def refused_filter_is_input_error() -> Iterator[None]:
    """A refused filter (FilterRefused) becomes one line with the CLI's way out."""
    from lsfsim.checks import FilterRefused

    try:
        yield
    except FilterRefused as exc:
        raise InputError(f"{exc} (--allow-refused-filter runs it anyway, unfiltered, as "
                         f"the kernel leaves the socket)") from None


def print_warnings(result: Any) -> None:
    """Each of the run's warnings, one line on stderr."""
    for line in result.data.get("warnings", []):
        typer.echo(f"lsfsim: warning: {line}", err=True)


class LateProgress:
    """A progress bar that appears only once a run has taken more than a few seconds."""

    def __init__(self, after: float = 2.0, enabled: bool = True) -> None:
        self.after = after
        self.enabled = enabled
        self.started = time.perf_counter()
        self.bar: Any = None
        self.task: Any = None

    def __call__(self, fraction: float) -> None:
        if self.bar is None:
            if (not self.enabled or time.perf_counter() - self.started < self.after
                    or not sys.stderr.isatty()):
                return
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self.bar = Progress(TextColumn("simulating"), BarColumn(),
                                TextColumn("{task.percentage:>3.0f}%"), TimeElapsedColumn(),
                                transient=True)
            self.bar.start()
            self.task = self.bar.add_task("run", total=1.0)
        self.bar.update(self.task, completed=min(1.0, fraction))

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def capture_writer(write: str | None, json_out: str | None, sockets: int) -> Any:
    """The ``-w`` probe (lsfsim.capture.CaptureWriter), its files checked; None without -w."""
    if not write:
        return None
    from lsfsim.capture import CaptureWriter, capture_paths, check_capture_paths

    if write == "-" and json_out == "-":
        raise InputError("-w - and --json - would both write to stdout: give one a file")
    try:
        paths = capture_paths(write, sockets)
        check_capture_paths(paths)
    except ValueError as exc:
        raise InputError(f"-w: {write}: {exc}") from None
    return CaptureWriter(paths)


def register(app: typer.Typer) -> None:
    @app.command("run")
    @one_line_errors
    @scenario_options
    def run_command(
        scenario: ScenarioOptions,
        packets: options.Packets = None,
        write: str = typer.Option(
            None, "--write", "-w", metavar="FILE",
            help="Write the packets socket 0's recvfrom returned to FILE, a pcap file as "
                 "tcpdump -w writes ('-': stdout); '{socket}' in FILE writes one file per "
                 "socket, with its number in place."),
        json_out: str = typer.Option(
            None, "--json",
            help="Write every counter and statistic to FILE ('-': stdout)."),
        report: str = typer.Option(
            None, "--report",
            help="Write a self-contained HTML report (with plots) to DIR."),
        fates: str = typer.Option(
            None, "--fates",
            help="Write where each frame ended to FILE ('-': stdout), one record per frame as it "
                 "becomes final: JSON lines, or CSV if FILE ends in .csv."),
        proc: bool = typer.Option(
            False, "--proc",
            help="Print /proc/net/dev, softnet_stat, packet and PACKET_STATISTICS as at the end."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No summary, no progress bar."),
    ) -> None:
        """Simulate a scenario (default: the lecture's 100 MB nc transfer) and summarise it."""
        from lsfsim.config.model import load_model
        from lsfsim.report.summary import print_summary

        # every output path is checked before the run, which may take minutes
        if json_out:
            check_output(json_out, "--json")
        if report:
            check_output_dir(report, "--report")
        if fates:
            check_output(fates, "--fates")
            if fates == "-" and "-" in (json_out, write):
                raise InputError("--fates - with --json - or -w -: only one of them can have "
                                 "stdout")
        given = replace(scenario, count=frame_count(scenario.count, packets))
        built = given.build()
        capture = capture_writer(write, json_out, len(built.sockets))
        loaded = load_model(built.model)
        probes: list[Any] = []
        if report:
            from lsfsim.report.sampler import Sampler

            probes.append(Sampler())
        if capture is not None:
            probes.append(capture)
        from lsfsim.machine import Machine

        progress = LateProgress(enabled=not quiet)
        with contextlib.ExitStack() as files:
            if capture is not None:
                files.enter_context(capture)      # closed (Ctrl-C: kept) whatever happens
            if fates:                 # streamed during the run; in place only if it ends well
                from lsfsim.fates import FateFile, FateTracker

                fh = files.enter_context(open_output(fates, "w"))
                probes.append(FateTracker(FateFile(fh, fates.lower().endswith(".csv"),
                                                   len(built.sockets))))
            try:
                with refused_filter_is_input_error():
                    machine = Machine(loaded, built, probes=probes)
                result = machine.run(progress=progress)
            except KeyboardInterrupt:
                progress.close()
                if capture is not None:
                    for index, path in capture.paths.items():
                        typer.echo(f"lsfsim: note: {path}: the {capture.counts[index]:,} "
                                   f"packets written before the interrupt", err=True)
                raise
            finally:
                progress.close()
        # with --json -, --fates - or -w -, stdout carries that file alone: the rest goes
        # to stderr
        to_stderr = "-" in (json_out, fates, write)
        if json_out == "-":
            typer.echo(result.to_json())
        elif json_out:
            result.write_json(json_out)
        if not quiet:
            print_summary(result, Console(stderr=True) if to_stderr else None)
        print_warnings(result)
        if proc:
            from lsfsim.report.procfs import render_all

            typer.echo(render_all(result), err=to_stderr)
        if report:
            from lsfsim.report.html import write_report

            path = write_report(report, result, probes[0])
            typer.echo(f"report: {path}", err=to_stderr)
