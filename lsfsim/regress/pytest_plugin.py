"""pytest plugin (entry point ``pytest11``): suites as test items, and fixtures.

Collected: files named ``test_*.lsfsim.toml`` wherever pytest looks, and any
``*.lsfsim.toml`` under the ``testpaths`` of the configuration.  Each becomes
one item per filter x load (``web[10x]``), with the checks of ``lsfsim
regress``; a bad suite is a collection error of one line.  The suite is
prepared (compiled, checked, offline verdicts) once, at collection.

Fixtures:

* ``lsfsim_run(scenario_or_options)``: run a ``Scenario``, or a dict of the
  options of ``lsfsim run`` (the keywords of
  ``lsfsim.cli.scenario_options.ScenarioOptions``; ``filter`` and ``bytes`` may
  stand for ``filter_expr`` and ``nbytes``), and return the ``Result``;
* ``bpf_program(source, snaplen=262144, kernel=None)``: a ``Program`` from an
  expression or a program file;
* ``assert_same_verdicts(prog_a, prog_b, pcap, kernel="2.6.33")``: fail unless
  both programs give every frame of the capture the same verdict.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:      # imported when used: every pytest session loads this plugin
    from lsfsim.regress.runner import Outcome, Prepared, RunItem

SUFFIX = ".lsfsim.toml"


def _under_testpaths(path: Path, config: pytest.Config) -> bool:
    root = config.rootpath
    for entry in config.getini("testpaths") or ():
        base = (root / entry).resolve()
        if path.resolve().is_relative_to(base):
            return True
    return False


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    name = file_path.name
    if not name.endswith(SUFFIX):
        return None
    if name.startswith("test_") or _under_testpaths(file_path, parent.config):
        return SuiteFile.from_parent(parent, path=file_path)
    return None


class SuiteFailure(Exception):
    """A failed check of one filter at one load; its text is the report."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.message)
        self.outcome = outcome


class SuiteFile(pytest.File):
    """A suite file: one item per filter x load."""

    prepared: Prepared | None = None

    def collect(self) -> Iterator[pytest.Item]:
        from lsfsim.regress.runner import prepare
        from lsfsim.regress.suite import SuiteError, load_suite

        try:
            prepared = prepare(load_suite(self.path))
        except (SuiteError, ValueError, OSError) as exc:
            raise self.CollectError(f"lsfsim: error: {exc}") from None
        self.prepared = prepared
        self.config.add_cleanup(prepared.close)
        suite = prepared.suite
        for item in prepared.items():
            index = next(i for i, f in enumerate(suite.filters) if f.name == item.filter)
            yield SuiteItem.from_parent(self, name=item.name, run_item=item,
                                        line=suite.filter_line(index))


class SuiteItem(pytest.Item):
    """One filter of a suite at one load."""

    def __init__(self, *, run_item: RunItem, line: int | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.run_item = run_item
        self.line = line
        self.outcome: Outcome | None = None

    def runtest(self) -> None:
        parent = self.parent
        assert isinstance(parent, SuiteFile) and parent.prepared is not None
        from lsfsim.regress.runner import evaluate, run_item

        outcome = evaluate(parent.prepared, self.run_item, run_item(self.run_item))
        self.outcome = outcome
        for note in outcome.notes:
            self.add_report_section("call", "lsfsim", note)
        if not outcome.passed:
            raise SuiteFailure(outcome)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException],
                     style: Any = None) -> str | Any:
        if isinstance(excinfo.value, SuiteFailure):
            from lsfsim.regress.runner import format_load

            o = excinfo.value.outcome
            where = f"{self.path.name}:{self.line}" if self.line else self.path.name
            return (f"{where}: filter {o.item.filter} at load {format_load(o.item.load)}: "
                    f"accepted {o.accepts}, lost {o.lost} ({o.ratio:.2%})\n" + o.message)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, (self.line - 1) if self.line else None, f"lsfsim suite: {self.name}"


# --- fixtures ---------------------------------------------------------------------------

_ALIASES = {"filter": "filter_expr", "bytes": "nbytes", "packets": "count"}


def run_scenario(scenario: Any = None, /, **options: Any) -> Any:
    """Run a Scenario, or the options of ``lsfsim run`` (dict or keywords); return the Result."""
    from dataclasses import fields

    from lsfsim.cli.scenario_options import ScenarioOptions
    from lsfsim.machine import run
    from lsfsim.scenario import Scenario

    if isinstance(scenario, Scenario):
        if options:
            raise TypeError("give a Scenario or run options, not both")
        return run(scenario)
    known = {f.name for f in fields(ScenarioOptions)}
    args: dict[str, Any] = {}
    for key, value in {**(scenario or {}), **options}.items():
        key = _ALIASES.get(key, key)
        if key not in known:
            raise TypeError(f"lsfsim_run: unknown run option {key!r}")
        args[key] = value
    return run(ScenarioOptions(**args).build())


@pytest.fixture
def lsfsim_run() -> Callable[..., Any]:
    """Run a Scenario or a dict of ``lsfsim run`` options; return the Result."""
    return run_scenario


@pytest.fixture
def bpf_program() -> Callable[..., Any]:
    """Compile an expression (libpcap) or load a program file: ``bpf_program("udp")``."""
    from lsfsim.regress.compare import as_program

    return as_program


@pytest.fixture
def assert_same_verdicts() -> Callable[..., int]:
    """``assert_same_verdicts(prog_a, prog_b, pcap)``: every frame judged alike, or fail."""
    from lsfsim.regress.compare import assert_same_verdicts as helper

    return helper
