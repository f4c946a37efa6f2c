"""``lsfsim regress SUITE``: check filter programs against references and under load.

Exit status: 0 every check passed, 1 some check failed, 2 the suite is bad
(then nothing runs).  See docs/regress.md.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from lsfsim.cli.common import InputError, one_line_errors
from lsfsim.outputs import check_output

Junit = Annotated[str | None, typer.Option(
    "--junit", metavar="FILE", help="Also write JUnit XML (one testcase per filter x load).")]
Update = Annotated[bool, typer.Option(
    "--update", help="Write the observed accepts back into the suite (keeps its comments).")]
Pattern = Annotated[str | None, typer.Option(
    "-k", metavar="PATTERN", help="Only the filters whose name contains PATTERN (or matches it "
    "as a glob: 'web*').")]
Jobs = Annotated[int, typer.Option(
    "--jobs", "-j", min=0, help="Runs at a time, in worker processes (0: one per CPU).")]


def print_outcomes(outcomes: Sequence, console: Console) -> None:
    """The table (filter, load, accepted, dropped, p99, verdict), then each failure once."""
    from lsfsim.config.units import format_duration
    from lsfsim.regress.runner import format_load

    table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
    for column, justify in (("filter", "left"), ("load", "right"), ("accepted", "right"),
                            ("dropped", "right"), ("p99", "right"), ("verdict", "left")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for o in outcomes:
        verdict = "[green]pass[/]" if o.passed else "[bold red]FAIL[/]"
        dropped = f"{o.lost} ({o.ratio:.2%})" if o.accepts else "0"
        p99 = format_duration(o.p99) if o.figures and o.figures.latency_count else "-"
        table.add_row(o.item.filter, format_load(o.item.load), str(o.accepts), dropped, p99,
                      verdict)
    console.print(table)
    # one block per distinct failure, with the loads it occurred at
    seen: dict[tuple[str, str], list[str]] = {}
    for o in outcomes:
        for text in o.failures + o.notes:
            seen.setdefault((o.item.filter, text), []).append(format_load(o.item.load))
    for (name, text), loads in seen.items():
        console.print(f"{name} [{', '.join(loads)}]: {text}", markup=False, highlight=False,
                      soft_wrap=True)


def register(app: typer.Typer) -> None:
    @app.command("regress")
    @one_line_errors
    def regress_command(
        suite: Annotated[str, typer.Argument(metavar="SUITE.toml", help="The suite file.")],
        junit: Junit = None,
        update: Update = False,
        pattern: Pattern = None,
        jobs: Jobs = 1,
        scheduler: str = typer.Option(
            None, "--scheduler", metavar="ADDRESS",
            help="Run the filter x load items on this dask.distributed scheduler "
                 "(tcp://host:8786), as lsfsim sweep does."),
    ) -> None:
        """Run a filter regression suite: verdicts, accepts, drops and latency under load."""
        from lsfsim.regress.junit import write_junit
        from lsfsim.regress.runner import prepare, run_prepared, select
        from lsfsim.regress.suite import load_suite
        from lsfsim.regress.update import update_accepts

        loaded = load_suite(suite)
        indices = select(loaded, pattern)
        if not indices:
            raise InputError(f"-k {pattern}: no filter of {loaded.shown} matches")
        if junit is not None:
            check_output(junit, "--junit")
        if scheduler is not None and jobs != 1:
            raise InputError("--jobs and --scheduler exclude each other")
        prepared = prepare(loaded, indices)
        try:
            if update:
                changed = update_accepts(loaded.path, {p.name: p.accepts for p in prepared.plans})
                for plan in prepared.plans:
                    plan.spec = plan.spec.model_copy(update={"accepts": plan.accepts})
                for name, (old, new) in changed.items():
                    was = "new" if old is None else f"was {old}"
                    typer.echo(f"{loaded.shown}: filter {name}: accepts = {new} ({was})",
                               err=True)
            progress = _Progress(len(prepared.items()))
            try:
                outcomes = run_prepared(prepared, jobs, progress, scheduler)
            finally:
                progress.close()
        finally:
            prepared.close()
        print_outcomes(outcomes, Console(highlight=False))
        if junit is not None:
            write_junit(junit, loaded.name, outcomes)
        if not all(o.passed for o in outcomes):
            raise typer.Exit(1)


class _Progress:
    """A transient progress bar on a terminal's stderr; nothing otherwise."""

    def __init__(self, total: int) -> None:
        self.bar = None
        if sys.stderr.isatty() and total > 1:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            self.bar = Progress(TextColumn("running"), BarColumn(), MofNCompleteColumn(),
                                transient=True, console=Console(stderr=True))
            self.bar.start()
            self.task = self.bar.add_task("regress", total=total)

    def __call__(self, index: int, figures: object) -> None:
        if self.bar is not None:
            self.bar.advance(self.task)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
