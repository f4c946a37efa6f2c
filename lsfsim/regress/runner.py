"""Run a suite: prepare (everything checked before anything runs), run filter x load, check.

``prepare`` loads the model, checks the traffic and compiles every filter and
reference; any fault is a SuiteError and nothing runs.  It then computes every
filter's offline verdicts in one pass over the traffic.  ``RunItem`` is one
filter at one load, plain data so that it can be sent to another process;
``run_item`` replays the traffic on the simulated machine (the socket
promiscuous, as tcpdump opens it) and returns its ``Figures``.  All items go
through ``_map_items``, the one place that decides how they are spread over
processes (the sweep engine's, lsfsim.study.engine).  ``evaluate`` applies the
suite's checks to one item.
"""

from __future__ import annotations

import fnmatch
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from lsfsim.config.model import Model, load_model
from lsfsim.config.units import format_duration
from lsfsim.regress.fates import Figures, FrameFates, accepted_losses, figures_of
from lsfsim.regress.suite import Suite
from lsfsim.regress.traffic import Traffic, prepare_traffic
from lsfsim.regress.verdicts import (
    FilterPlan,
    compile_filters,
    compute_verdicts,
    describe_mismatch,
)

__all__ = ["Outcome", "Prepared", "RunItem", "evaluate", "format_load", "prepare", "run_item",
           "run_prepared", "select"]


def format_load(load: float) -> str:
    """1 -> "1x", 0 -> "asap"."""
    return "asap" if load == 0 else f"{load:g}x"


def select(suite: Suite, pattern: str | None) -> list[int]:
    """Indices of the filters whose name contains ``pattern`` or matches it as a glob."""
    if not pattern:
        return list(range(len(suite.filters)))
    glob = any(c in pattern for c in "*?[")
    return [i for i, f in enumerate(suite.filters)
            if (fnmatch.fnmatchcase(f.name, pattern) if glob else pattern in f.name)]


@dataclass
class Prepared:
    """A suite checked and ready: its model, kernel, traffic and compiled filters."""

    suite: Suite
    model: Model
    kernel: str
    traffic: Traffic
    plans: list[FilterPlan]

    def items(self) -> list[RunItem]:
        sec = self.suite.section
        return [RunItem(filter=plan.name, load=load, model=self.suite.model,
                        kernel=sec.kernel,
                        pcap=str(self.traffic.replay), frames=self.traffic.count,
                        expr=plan.spec.expr, file=plan.file, snaplen=plan.spec.snaplen,
                        seed=sec.seed, rcvbuf=sec.rcvbuf, reader_work=sec.reader_work,
                        rx_ring=sec.rx_ring)
                for plan in self.plans for load in sec.loads]

    def plan(self, name: str) -> FilterPlan:
        return next(p for p in self.plans if p.name == name)

    def close(self) -> None:
        self.traffic.cleanup()


def load_machine_model(ref: str, kernel: str | None) -> Model:
    model = load_model(ref)
    if kernel is not None and kernel != model.kernel.version:
        model = model.with_overrides({"kernel.version": kernel})
    return model


def prepare(suite: Suite, indices: list[int] | None = None) -> Prepared:
    """Check everything a run needs and compute the offline verdicts.  Raises SuiteError."""
    from lsfsim.config.model import ModelError

    try:
        model = load_machine_model(suite.model, suite.section.kernel)
    except ModelError as exc:
        raise suite.error(str(exc), loc=("suite", "model")) from None
    kernel = model.kernel.version
    plans = compile_filters(suite, model, kernel, indices)
    traffic = prepare_traffic(suite, model)
    try:
        compute_verdicts(plans, traffic, model)
    except BaseException:
        traffic.cleanup()
        raise
    return Prepared(suite, model, kernel, traffic, plans)


@dataclass(frozen=True)
class RunItem:
    """One filter at one load: everything a worker process needs, as plain data."""

    filter: str
    load: float
    model: str                 # a model name or an absolute path
    kernel: str | None         # overrides the model's kernel version
    pcap: str                  # the capture to replay (absolute path)
    frames: int
    expr: str | None
    file: str | None           # absolute path of a program file
    snaplen: int
    seed: int = 1
    rcvbuf: int | None = None
    reader_work: float = 0.0
    rx_ring: int | None = None

    @property
    def name(self) -> str:
        return f"{self.filter}[{format_load(self.load)}]"

    def scenario(self) -> Any:
        """The run: the traffic replayed at this load to one promiscuous capture socket."""
        from lsfsim.scenario import Scenario

        sock: dict[str, Any] = {"promisc": True, "snaplen": self.snaplen,
                                "reader_work": self.reader_work, "rcvbuf": self.rcvbuf}
        if self.file is not None:
            sock.update(filter=None, filter_file=self.file)
        else:
            sock["filter"] = self.expr
        return Scenario.model_validate({
            "model": self.model, "traffic": {"kind": "pcap", "pcap": self.pcap, "speed": self.load},
            "sockets": [sock], "seed": self.seed, "rx_ring": self.rx_ring})


def run_item(item: RunItem) -> Figures:
    """Replay the traffic on the simulated machine and return the figures (any process)."""
    from lsfsim.machine import Machine

    model = load_machine_model(item.model, item.kernel)
    fates = FrameFates(item.frames)
    result = Machine(model, item.scenario(), probes=[fates]).run()
    return figures_of(result, fates)


def _map_items(items: Sequence[RunItem], jobs: int,
               on_result: Callable[[int, Figures], None] | None = None,
               scheduler: str | None = None) -> list[Figures]:
    """Run every item, ``jobs`` at a time (0: one per CPU) or on a Dask scheduler;
    results in the order of ``items``.

    The one place that spreads the work, through the sweep engine
    (lsfsim.study.engine.run_points): forked worker processes, or the tasks of a
    dask.distributed cluster.  Items are plain, picklable data.  A run that fails
    is a bug (the suite was checked before anything ran): it stops the suite.
    """
    from lsfsim.study.engine import Outcome as RunOutcome
    from lsfsim.study.engine import run_points

    def report(outcome: RunOutcome) -> None:
        if outcome.ok and on_result is not None:
            on_result(outcome.index, outcome.value)

    outcomes = run_points([functools.partial(run_item, item) for item in items],
                          jobs=jobs or None, scheduler=scheduler, on_result=report)
    for item, outcome in zip(items, outcomes, strict=True):
        if not outcome.ok:
            raise RuntimeError(f"filter {item.filter} at load {item.load}: {outcome.error}")
    return [o.value for o in outcomes]


@dataclass
class Outcome:
    """One filter at one load, checked."""

    item: RunItem
    accepts: int
    lost: int
    ratio: float
    p99: float
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    figures: Figures | None = None

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def message(self) -> str:
        return "\n".join(self.failures)


def _observed_mismatches(plan: FilterPlan,
                         figures: Figures) -> tuple[int, list[tuple[int, int | None]]]:
    """Frames that reached the filter in the run and whose verdict differs from the reference.

    With fates, the machine's own verdicts (a frame the receive buffer dropped
    was accepted, its length unknown); without, the offline verdicts.
    """
    from array import array

    from lsfsim.regress.fates import FILTERED, QUEUED, RCVBUF

    ref = plan.ref_caplen
    assert ref is not None
    if figures.fate is None:
        return plan.mismatch_count, [(i, plan.caplen[i]) for i in plan.mismatches]
    caplen = array("I")
    caplen.frombytes(figures.caplen or b"")
    count = 0
    shown: list[tuple[int, int | None]] = []
    for i, fate in enumerate(figures.fate):
        if fate == FILTERED:
            kept: int | None = 0
            bad = ref[i] != 0
        elif fate == QUEUED:
            kept = caplen[i]
            bad = ref[i] != kept
        elif fate == RCVBUF:
            kept = None
            bad = ref[i] == 0
        else:
            continue
        if bad:
            count += 1
            if len(shown) < 3:
                shown.append((i, kept))
    return count, shown


def evaluate(prepared: Prepared, item: RunItem, figures: Figures) -> Outcome:
    """Every check of one filter at one load."""
    plan = prepared.plan(item.filter)
    spec = plan.spec
    losses = accepted_losses(figures, plan.caplen)
    accepts = plan.accepts
    ratio = losses.lost / accepts if accepts else 0.0
    out = Outcome(item, accepts, losses.lost, ratio, figures.p99, figures=figures)
    if figures.attach_errno is not None:
        out.failures.append(f"SO_ATTACH_FILTER failed in the run: {figures.attach_errno}")
    if plan.reference is not None:
        count, shown = _observed_mismatches(plan, figures)
        if count:
            lines = [describe_mismatch(plan, prepared.traffic, prepared.model, i, kept)
                     for i, kept in shown]
            more = f" (first {len(shown)} below)" if count > len(shown) else ""
            out.failures.append(
                f"verdicts: {count} frame(s) that reached the filter differ from the reference "
                f"({plan.reference.describe()}){more}:\n  " + "\n  ".join(lines))
    if spec.accepts is not None and spec.accepts != accepts:
        out.failures.append(f"accepts: expected {spec.accepts}, the program accepts {accepts} "
                            f"of {prepared.traffic.count} frames")
    bound = spec.drop_bound(item.load)
    if bound is not None and ratio > bound:
        where = ", ".join(f"{place} {n}" for place, n in losses.places.items())
        out.failures.append(
            f"drops: {losses.lost} of {accepts} accepted frames lost ({ratio:.2%}"
            f"{'; ' + where if where else ''}), allowed {bound:.2%} at load "
            f"{format_load(item.load)}")
    if spec.max_p99_latency is not None and figures.p99 > spec.max_p99_latency:
        out.failures.append(f"latency: p99 {format_duration(figures.p99)} > "
                            f"{format_duration(spec.max_p99_latency)} at load "
                            f"{format_load(item.load)}")
    if losses.note:
        out.notes.append(losses.note)
    if plan.uses_random:
        out.notes.append("the program reads SKF_AD_RANDOM: offline verdicts use a fixed seed")
    return out


def run_prepared(prepared: Prepared, jobs: int = 1,
                 progress: Callable[[int, Figures], None] | None = None,
                 scheduler: str | None = None) -> list[Outcome]:
    """Run every item of a prepared suite and check it; outcomes in suite order.

    ``progress(i, figures)`` is called as each item finishes (in any order);
    ``scheduler``: a dask.distributed scheduler's address to run the items on.
    """
    items = prepared.items()
    figures = _map_items(items, jobs, progress, scheduler)
    return [evaluate(prepared, item, f) for item, f in zip(items, figures, strict=True)]
