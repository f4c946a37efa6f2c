"""``lsfsim run``: simulate a scenario and print (or write) what happened."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from typing import Any

import typer
from rich.console import Console

from lsfsim.cli import options
from lsfsim.cli.common import InputError, check_input_file, one_line_errors
from lsfsim.config.units import parse_duration
from lsfsim.outputs import check_output, check_output_dir

TRAFFIC_KINDS = ("nc", "cbr", "poisson", "onoff", "pcap")


def scenario_from_options(*, model: str | None, traffic: str | None, rate: float | None,
                          size: int | None, packets: int | None, nbytes: int | None,
                          duration: str | None, pcap: str | None, speed: float | None,
                          filter_expr: str | None, filter_file: str | None,
                          snaplen: int | None, rcvbuf: int | None, rx_ring: int | None,
                          sockets: int, readers: int, reader_work: str | None,
                          no_napi: bool, seed: int, no_drain: bool, promisc: bool = True,
                          reader_cpu: int | None = None, senders: int = 0,
                          send_rate: float = 1000.0, send_count: int = 1000,
                          allow_refused_filter: bool = False) -> Any:
    """Build a Scenario from command-line options (defaults: the lecture's run).

    The lecture's filter belongs to the lecture's scenario: with ``--traffic``,
    ``--pcap`` or ``--model`` given, the socket has no filter unless one is
    given, as tcpdump with no expression.  ``packets`` is the number of frames
    to offer (``--count``).
    """
    from pydantic import ValidationError

    from lsfsim.scenario import (
        LECTURE_FILTER,
        MAX_SOCKETS,
        Scenario,
        SenderSpec,
        SocketSpec,
        TrafficSpec,
    )

    if traffic is not None and traffic not in TRAFFIC_KINDS:
        raise InputError(f"--traffic: {traffic!r} is not one of {', '.join(TRAFFIC_KINDS)}")
    lecture = traffic is None and pcap is None and model is None
    if pcap and traffic is None:
        traffic = "pcap"
    kind = traffic or "nc"
    if filter_expr is not None and filter_file is not None:
        raise InputError("--filter and --filter-file exclude each other")
    if filter_file is not None:
        check_input_file(filter_file, "--filter-file", regular=False)
    if pcap is not None:
        check_input_file(pcap, "--pcap")
    if model is not None and os.path.exists(model):
        check_input_file(model, "--model", regular=False)
    if sockets > MAX_SOCKETS:
        raise InputError(f"--sockets: {sockets} is more than {MAX_SOCKETS}: every socket is "
                         f"a tap each frame visits, and such a run would take hours")
    try:
        seconds = parse_duration(duration) if duration else None
        work = parse_duration(reader_work) if reader_work else 0.0
    except ValueError as exc:
        raise InputError(f"--duration/--reader-work: {exc}") from None
    traffic_fields: dict[str, Any] = {"kind": kind}
    for key, value in (("rate", rate), ("size", size), ("packets", packets),
                       ("bytes", nbytes), ("duration", seconds), ("pcap", pcap),
                       ("speed", speed)):
        if value is not None:
            traffic_fields[key] = value
    if kind != "nc" and size is None:
        traffic_fields.setdefault("size", 1514)
    sock_fields: dict[str, Any] = {"readers": readers, "reader_work": work, "promisc": promisc,
                                   "cpu": reader_cpu}
    if filter_file is not None:
        sock_fields["filter_file"] = filter_file
    elif filter_expr is not None:
        sock_fields["filter"] = filter_expr
    elif lecture:
        sock_fields["filter"] = LECTURE_FILTER
    if snaplen is not None:
        sock_fields["snaplen"] = snaplen
    if rcvbuf is not None:
        sock_fields["rcvbuf"] = rcvbuf
    try:
        return Scenario(model=model or "testbed", traffic=TrafficSpec(**traffic_fields),
                        sockets=[SocketSpec(**sock_fields) for _ in range(sockets)],
                        senders=[SenderSpec(rate=send_rate, count=send_count)
                                 for _ in range(senders)],
                        napi=not no_napi, seed=seed, drain=not no_drain, rx_ring=rx_ring,
                        max_sim_seconds=seconds if no_drain else None,
                        allow_refused_filter=allow_refused_filter)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise InputError(f"scenario: {where}: {err['msg']}") from None


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
    def run_command(
        model: options.Model = None,
        traffic: options.Traffic = None,
        rate: options.Rate = None,
        size: options.Size = None,
        count: options.Count = None,
        packets: options.Packets = None,
        nbytes: options.Bytes = None,
        duration: options.Duration = None,
        pcap: options.Pcap = None,
        speed: options.Speed = None,
        filter_expr: options.Filter = None,
        filter_file: options.FilterFile = None,
        allow_refused_filter: options.AllowRefusedFilter = False,
        snaplen: options.Snaplen = None,
        rcvbuf: options.Rcvbuf = None,
        rx_ring: options.RxRing = None,
        sockets: options.Sockets = 1,
        readers: options.Readers = 1,
        reader_work: options.ReaderWork = None,
        reader_cpu: options.ReaderCpu = None,
        no_napi: options.NoNapi = False,
        promisc: options.Promisc = True,
        seed: options.Seed = 1,
        no_drain: options.NoDrain = False,
        senders: options.Senders = 0,
        send_rate: options.SendRate = 1000.0,
        send_count: options.SendCount = 1000,
        write: str = typer.Option(
            None, "--write", "-w", metavar="FILE",
            help="Write the packets socket 0's recvfrom returned to FILE, a pcap file as "
                 "tcpdump -w writes ('-': stdout); '{socket}' in FILE writes one file per "
                 "socket, with its number in place."),
        json_out: str = typer.Option(None, "--json", help="Write every counter and statistic to FILE ('-': stdout)."),
        report: str = typer.Option(None, "--report", help="Write a self-contained HTML report (with plots) to DIR."),
        proc: bool = typer.Option(False, "--proc", help="Print /proc/net/dev, softnet_stat, packet and PACKET_STATISTICS as at the end."),
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
        scenario = scenario_from_options(
            model=model, traffic=traffic, rate=rate, size=size,
            packets=frame_count(count, packets), nbytes=nbytes,
            duration=duration, pcap=pcap, speed=speed, filter_expr=filter_expr,
            filter_file=filter_file, snaplen=snaplen, rcvbuf=rcvbuf, rx_ring=rx_ring,
            sockets=sockets, readers=readers, reader_work=reader_work, no_napi=no_napi,
            seed=seed, no_drain=no_drain, promisc=promisc, reader_cpu=reader_cpu,
            senders=senders, send_rate=send_rate, send_count=send_count,
            allow_refused_filter=allow_refused_filter)
        capture = capture_writer(write, json_out, len(scenario.sockets))
        loaded = load_model(scenario.model)
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
            try:
                with refused_filter_is_input_error():
                    machine = Machine(loaded, scenario, probes=probes)
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
        # with --json - or -w -, stdout carries that file alone: the rest goes to stderr
        to_stderr = json_out == "-" or write == "-"
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
