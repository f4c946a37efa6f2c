"""``lsfsim sweep``: every ``lsfsim run`` option, some of them varied over a grid."""

from __future__ import annotations

import os
import sys
from dataclasses import asdict
from typing import Annotated, Any

import typer

from lsfsim.cli.common import InputError, one_line_errors
from lsfsim.cli.scenario_options import ScenarioOptions, parse_overrides, scenario_options
from lsfsim.outputs import check_output

Vary = Annotated[list[str] | None, typer.Option(
    "--vary", metavar="NAME=V1,V2,...",
    help="A run option without dashes (rate, rcvbuf, reader-work, napi, ...) or a model field "
         "(kernel.rmem_max), and its values; ranges A..B+STEP and A..B*FACTOR. "
         "Several --vary: the full grid.")]
PlotX = Annotated[list[str] | None, typer.Option(
    "--x", help="The varied parameter across the plot; twice: a heatmap.")]

# the columns shown when the table is printed rather than written
HEADLINE = ("offered", "rx_missed_errors", "softnet_dropped", "sockets.0.delivered",
            "sockets.0.tp_drops", "interrupts", "latency.total.p99")


class SweepProgress:
    """A rich progress bar on stderr: points done, failures, time left."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.bar: Any = None
        self.failed = 0
        if not enabled or total == 0:
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.bar = Progress(TextColumn("sweep"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[failed]} failed"), TimeElapsedColumn(),
                            TextColumn("ETA"), TimeRemainingColumn(),
                            console=Console(stderr=True), transient=True)
        self.task = self.bar.add_task("sweep", total=total, failed=0)
        self.bar.start()

    def __call__(self, row: dict[str, Any], done: int, total: int) -> None:
        if row.get("status") != "ok":
            self.failed += 1
        if self.bar is not None:
            self.bar.update(self.task, completed=done, failed=self.failed)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def check_parallel(jobs: int | None, scheduler: str | None) -> None:
    if jobs is not None and scheduler:
        raise InputError("--jobs and --scheduler exclude each other")
    if jobs is not None and jobs < 1:
        raise InputError(f"--jobs {jobs}: must be 1 or more")


def check_out(out: str | None, resume: bool) -> None:
    """--out's extension and directory, --resume's need of --out: before anything runs."""
    from lsfsim.study.table import table_format

    if resume and not out:
        raise InputError("--resume needs --out FILE (the table to complete)")
    if out:
        table_format(out)
        check_output(out, "--out")


def print_table(df: Any, names: list[str], y: str | None) -> None:
    """The rows, with the varied parameters and a few headline columns, as a rich table."""
    from rich.console import Console
    from rich.table import Table

    columns = [*names, "seed", "status"]
    columns += [c for c in (*HEADLINE, *([y] if y else [])) if c in df.columns and
                c not in columns]
    table = Table(show_edge=False, header_style="bold")
    for col in columns:
        table.add_column(col, justify="left" if col in (*names, "status") else "right")
    for row in df.to_dict("records"):
        cells = []
        for col in columns:
            value = row.get(col)
            if col == "status" and value != "ok":
                value = f"error: {row.get('error')}"
            cells.append(_cell(value))
        table.add_row(*cells)
    Console(width=None if sys.stdout.isatty() else 250).print(table)


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else f"{value:.4g}"
    return str(value)


def register(app: typer.Typer) -> None:
    @app.command("sweep")
    @one_line_errors
    @scenario_options
    def sweep_command(
        scenario: ScenarioOptions,
        vary: Vary = None,
        repeat: int = typer.Option(
            1, "--repeat", min=1,
            help="Run each point with seeds --seed .. --seed+K-1."),
        jobs: int = typer.Option(
            None, "--jobs", "-j",
            help="Local worker processes (default: the number of cores)."),
        scheduler: str = typer.Option(
            None, "--scheduler", metavar="ADDRESS",
            help="Run the points on this dask.distributed scheduler (tcp://host:8786)."),
        out: str = typer.Option(
            None, "--out", "-o",
            help="Write the table to FILE.parquet or FILE.csv (else: print it)."),
        resume: bool = typer.Option(
            False, "--resume",
            help="Keep the rows already in --out; run only the missing (and failed) points."),
        plot: str = typer.Option(
            None, "--plot",
            help="Draw --y against --x to FILE.png (or .svg, .pdf)."),
        x: PlotX = None,
        y: str = typer.Option(
            None, "--y", metavar="COLUMN",
            help="The table column to plot (sockets.0.tp_drops, latency.total.p99, ...)."),
        hue: str = typer.Option(
            None, "--hue",
            help="One line per value of this parameter (default: of the other varied ones)."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar, no table."),
    ) -> None:
        """Run a grid of scenarios (in parallel) and collect one table row per run."""
        from lsfsim.study.params import parse_vary
        from lsfsim.study.sweep import plan_from_options, run_plan

        check_parallel(jobs, scheduler)
        check_out(out, resume)
        varies = [parse_vary(v) for v in vary or ()]
        names = [v.name for v in varies]
        if plot:
            check_plot(plot, x, y, hue, names)
        run_opts = asdict(scenario)
        sets = parse_overrides(run_opts.pop("overrides"))
        plan = plan_from_options(run_opts, sets, varies, repeat)
        progress = SweepProgress(len(plan.points), not quiet and sys.stderr.isatty())
        try:
            df = run_plan(plan, jobs=jobs, scheduler=scheduler, out=out, resume=resume,
                          on_row=progress)
        finally:
            progress.close()
        failed = int((df["status"] != "ok").sum()) if "status" in df.columns else 0
        if not out and not quiet:
            print_table(df, names, y)
        if plot and x and y:
            write_plot(df, plot, x, y, hue, names)
        if not quiet:
            where = f", table in {out}" if out else ""
            typer.echo(f"{len(df)} runs, {failed} failed{where}", err=True)


def check_plot(plot: str, x: list[str] | None, y: str | None, hue: str | None,
               names: list[str]) -> None:
    from lsfsim.study.plot import check_plot_path

    check_plot_path(plot)
    if not x or not y:
        raise InputError("--plot needs --x NAME and --y COLUMN")
    if len(x) > 2:
        raise InputError("--x: give one parameter (a line plot) or two (a heatmap)")
    for name in (*x, *([hue] if hue else [])):
        if name not in (*names, "seed"):
            raise InputError(f"--x/--hue {name}: not a varied parameter "
                             f"({', '.join(names) or 'none varied'})")
    check_output(plot, "--plot")


def write_plot(df: Any, plot: str, x: list[str], y: str, hue: str | None,
               names: list[str]) -> None:
    from lsfsim.outputs import write_output
    from lsfsim.study.plot import figure_bytes, plot_sweep

    fig, _ = plot_sweep(df, x, y, hue, varied=names)
    write_output(plot, figure_bytes(fig, os.fspath(plot)))
