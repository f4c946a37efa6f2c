"""``lsfsim study NAME``: the lecture's evaluation and other what-if studies, ready to run."""

from __future__ import annotations

import sys
from typing import Any

import typer

from lsfsim.cli.common import one_line_errors
from lsfsim.outputs import check_output_dir


def print_conclusion(name: str, title: str, table: Any, sentence: str) -> None:
    """The conclusion table and its sentence, on stdout."""
    from rich.console import Console
    from rich.table import Table

    from lsfsim.cli.sweep_cmd import _cell

    out = Table(title=f"{name}: {title}", show_edge=False, header_style="bold",
                title_justify="left")
    for col in table.columns:
        out.add_column(str(col), justify="right")
    for row in table.to_dict("records"):
        out.add_row(*(_cell(v) for v in row.values()))
    console = Console(width=None if sys.stdout.isatty() else 160)
    console.print(out)
    console.print(sentence, soft_wrap=True)


def register(app: typer.Typer) -> None:
    @app.command("study")
    @one_line_errors
    def study_command(
        name: str = typer.Argument(
            ..., metavar="NAME",
            help="attach | snaplen | recvfrom | livelock | buffers"),
        out: str = typer.Option(
            ".", "--out", "-o",
            help="Directory for NAME.parquet (or .csv) and NAME.png."),
        fmt: str = typer.Option("parquet", "--format", help="Table format: parquet or csv."),
        jobs: int = typer.Option(
            None, "--jobs", "-j",
            help="Local worker processes (default: the number of cores)."),
        scheduler: str = typer.Option(
            None, "--scheduler", metavar="ADDRESS",
            help="Run the points on this dask.distributed scheduler."),
        quick: bool = typer.Option(
            False, "--quick",
            help="Small transfers and grids: seconds instead of minutes."),
    ) -> None:
        """Run a ready study (a sweep underneath): its table, its figure, its conclusion."""
        from lsfsim.cli.sweep_cmd import check_parallel
        from lsfsim.study.studies import STUDIES, run_study

        check_parallel(jobs, scheduler)
        check_output_dir(out, "--out")        # before the study runs, which takes minutes
        _, table, sentence = run_study(name, out, fmt=fmt, jobs=jobs, scheduler=scheduler,
                                       quick=quick)
        print_conclusion(name, STUDIES[name].title, table, sentence)
        typer.echo(f"written: {out.rstrip('/')}/{name}.{fmt}, {out.rstrip('/')}/{name}.png",
                   err=True)
