"""``lsfsim run``: simulate a scenario and print (or write) what happened."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from lsfsim.cli import options
from lsfsim.cli.common import InputError, one_line_errors
from lsfsim.config.units import parse_duration

TRAFFIC_KINDS = ("nc", "cbr", "poisson", "onoff", "pcap")


def scenario_from_options(*, model: str, traffic: str | None, rate: float | None,
                          size: int | None, packets: int | None, nbytes: int | None,
                          duration: str | None, pcap: str | None, speed: float | None,
                          filter_expr: str | None, filter_file: str | None,
                          snaplen: int | None, rcvbuf: int | None, rx_ring: int | None,
                          sockets: int, readers: int, reader_work: str | None,
                          no_napi: bool, seed: int, no_drain: bool, promisc: bool,
                          reader_cpu: int | None = None, senders: int = 0,
                          send_rate: float = 1000.0, send_count: int = 1000,
                          overrides: list[str] | dict[str, Any] | None = None) -> Any:
    """Build a Scenario from command-line options (defaults: the lecture's run).

    ``overrides``: the ``--set FIELD=VALUE`` strings (or a ready dict), checked
    against the model when the machine is built."""
    from pydantic import ValidationError

    from lsfsim.scenario import LECTURE_FILTER, Scenario, SenderSpec, SocketSpec, TrafficSpec

    if traffic is not None and traffic not in TRAFFIC_KINDS:
        raise InputError(f"--traffic: {traffic!r} is not one of {', '.join(TRAFFIC_KINDS)}")
    if pcap and traffic is None:
        traffic = "pcap"
    kind = traffic or "nc"
    if filter_expr is not None and filter_file is not None:
        raise InputError("--filter and --filter-file exclude each other")
    if filter_file is not None and not Path(filter_file).is_file():
        raise InputError(f"--filter-file: {filter_file}: no such file")
    if pcap is not None and not Path(pcap).is_file():
        raise InputError(f"--pcap: {pcap}: no such file")
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
        sock_fields["filter"] = None
        sock_fields["filter_file"] = filter_file
    elif filter_expr is not None:
        sock_fields["filter"] = filter_expr
    else:
        sock_fields["filter"] = LECTURE_FILTER
    if snaplen is not None:
        sock_fields["snaplen"] = snaplen
    if rcvbuf is not None:
        sock_fields["rcvbuf"] = rcvbuf
    try:
        return Scenario(model=model, traffic=TrafficSpec(**traffic_fields),
                        sockets=[SocketSpec(**sock_fields) for _ in range(sockets)],
                        senders=[SenderSpec(rate=send_rate, count=send_count)
                                 for _ in range(senders)],
                        napi=not no_napi, seed=seed, drain=not no_drain, rx_ring=rx_ring,
                        max_sim_seconds=seconds if no_drain else None,
                        overrides=parse_overrides(overrides))
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise InputError(f"scenario: {where}: {err['msg']}") from None


def parse_overrides(items: list[str] | dict[str, Any] | None) -> dict[str, Any]:
    """``["kernel.rmem_max=16MiB", ...]`` (``--set``) -> ``{"kernel.rmem_max": "16MiB"}``."""
    if isinstance(items, dict):
        return dict(items)
    out: dict[str, Any] = {}
    for item in items or ():
        field, sep, value = item.partition("=")
        if not sep or not field.strip() or not value.strip():
            raise InputError(f"--set: {item!r}: expected FIELD=VALUE, e.g. kernel.rmem_max=16MiB")
        out[field.strip()] = value.strip()
    return out


class _LateProgress:
    """A progress bar that appears only once a run has taken more than a few seconds."""

    def __init__(self, after: float = 2.0) -> None:
        self.after = after
        self.started = time.perf_counter()
        self.bar: Any = None
        self.task: Any = None

    def __call__(self, fraction: float) -> None:
        if self.bar is None:
            if time.perf_counter() - self.started < self.after or not sys.stderr.isatty():
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


def register(app: typer.Typer) -> None:
    @app.command("run")
    @one_line_errors
    def run_command(
        model: options.Model = "testbed",
        traffic: options.Traffic = None,
        rate: options.Rate = None,
        size: options.Size = None,
        packets: options.Packets = None,
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
        reader_cpu: options.ReaderCpu = None,
        no_napi: options.NoNapi = False,
        promisc: options.Promisc = False,
        seed: options.Seed = 1,
        no_drain: options.NoDrain = False,
        senders: options.Senders = 0,
        send_rate: options.SendRate = 1000.0,
        send_count: options.SendCount = 1000,
        set_: options.Set = None,
        json_out: str = typer.Option(None, "--json", help="Write every counter and statistic to FILE ('-': stdout)."),
        report: str = typer.Option(None, "--report", help="Write a self-contained HTML report (with plots) to DIR."),
        proc: bool = typer.Option(False, "--proc", help="Print /proc/net/dev, softnet_stat, packet and PACKET_STATISTICS as at the end."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No summary."),
    ) -> None:
        """Simulate a scenario (default: the lecture's 100 MB nc transfer) and summarise it."""
        from lsfsim.config.model import load_model
        from lsfsim.machine import Machine
        from lsfsim.report.summary import print_summary

        scenario = scenario_from_options(
            model=model, traffic=traffic, rate=rate, size=size, packets=packets, nbytes=nbytes,
            duration=duration, pcap=pcap, speed=speed, filter_expr=filter_expr,
            filter_file=filter_file, snaplen=snaplen, rcvbuf=rcvbuf, rx_ring=rx_ring,
            sockets=sockets, readers=readers, reader_work=reader_work, no_napi=no_napi,
            seed=seed, no_drain=no_drain, promisc=promisc, reader_cpu=reader_cpu,
            senders=senders, send_rate=send_rate, send_count=send_count, overrides=set_)
        if report and Path(report).exists() and not Path(report).is_dir():
            raise InputError(f"--report: {report}: exists and is not a directory")
        if json_out and json_out != "-" and not Path(json_out).resolve().parent.is_dir():
            raise InputError(f"--json: {json_out}: no such directory")
        loaded = load_model(model)
        probes = []
        if report:
            from lsfsim.report.sampler import Sampler

            probes.append(Sampler())
        machine = Machine(loaded, scenario, probes=probes)
        progress = _LateProgress()
        try:
            result = machine.run(progress=progress)
        finally:
            progress.close()
        # with --json -, stdout carries the JSON alone: the rest goes to stderr
        to_stderr = json_out == "-"
        if json_out == "-":
            typer.echo(result.to_json())
        elif json_out:
            result.write_json(json_out)
        if not quiet:
            print_summary(result, Console(stderr=True) if to_stderr else None)
        if proc:
            from lsfsim.report.procfs import render_all

            typer.echo(render_all(result), err=to_stderr)
        if report:
            from lsfsim.report.html import write_report

            path = write_report(report, result, probes[0])
            typer.echo(f"report: {path}", err=to_stderr)
