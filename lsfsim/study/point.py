"""One point of a sweep: a scenario run in a worker, returned as one flat row.

A ``RunPoint`` is plain, picklable data (a validated Scenario and the names
of the functions to time), so it runs the same in this process, in a local
worker process or as a task on a Dask cluster; calling it runs the scenario
and returns the run's ``--json`` document flattened (``flatten``).

Inclusive times.  The ``functions`` object of the JSON holds each kernel
function's *self* time; the lecture's micro-benchmarks time a call from its
start to its end, callees (and, for a sleeping ``recvfrom``, the sleep)
included, as ftrace's function_graph tracer does.  A point that asks for
``inclusive=("packet_rcv",)`` runs with ``lsfsim trace``'s tracer limited to
that function and adds ``packet_rcv_us`` (the mean duration of its finished
calls, in microseconds) and ``packet_rcv_calls``.  The tracer only listens:
the run's counters are those of the untraced run; the per-function
``seconds`` sums may differ in the last bits (they are added in another order).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from typing import Any

from lsfsim.scenario import Scenario

# wall-clock figures: differ from run to run of the same point
WALL_CLOCK = ("wall_seconds", "packets_per_wall_second")


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """Every scalar of a JSON document, nested names joined by '.' (list items by index).

    ``{"sockets": [{"tp_drops": 3}]}`` -> ``{"sockets.0.tp_drops": 3}``, the
    names pandas.json_normalize gives, with lists opened as well.
    """
    out: dict[str, Any] = {}
    if isinstance(data, dict):
        if not data and prefix:
            return out
        for key, value in data.items():
            out.update(flatten(value, f"{prefix}{key}."))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            out.update(flatten(value, f"{prefix}{i}."))
    else:
        out[prefix[:-1]] = data
    return out


@dataclass(frozen=True)
class RunPoint:
    """Run ``scenario`` and return its flattened result (plus inclusive times)."""

    scenario: Scenario
    inclusive: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)   # columns added to the row as they are
    program: str | None = None    # a BPF program (any lsfsim bpf format) for every socket

    def __call__(self) -> dict[str, Any]:
        if self.program is None:
            return self._run(self.scenario)
        # the program travels as text and becomes a file where the point runs, which
        # need not share a file system with the machine that planned the sweep
        with tempfile.TemporaryDirectory(prefix="lsfsim-") as tmp:
            path = os.path.join(tmp, "filter.txt")
            with open(path, "w", encoding="utf-8") as fp:
                fp.write(self.program)
            sockets = [s.model_copy(update={"filter": None, "filter_file": path})
                       for s in self.scenario.sockets]
            row = self._run(self.scenario.model_copy(update={"sockets": sockets}))
        for i in range(len(sockets)):
            row[f"scenario.sockets.{i}.filter_file"] = "(the point's program)"
        return row

    def _run(self, scenario: Scenario) -> dict[str, Any]:
        from lsfsim.config.model import load_model

        model = load_model(scenario.model)
        if not self.inclusive:
            from lsfsim.machine import Machine

            result = Machine(model, scenario).run()
            row = flatten(result.data)
        else:
            from lsfsim.trace import FtraceTracer, run_traced

            tracer = FtraceTracer(functions=self.inclusive)
            result = run_traced(model, scenario, tracer=tracer)
            row = flatten(result.data)
            row.update(inclusive_means(tracer, self.inclusive))
        row.update(self.extra)
        return row


def inclusive_means(tracer: Any, functions: tuple[str, ...]) -> dict[str, Any]:
    """Per function: ``{fn}_us``, ``{fn}_cpu_us`` and ``{fn}_calls`` from a tracer
    limited to ``functions``.

    ``{fn}_us`` is the mean duration of a call, start to end, as ftrace's
    function_graph shows it (a sleep inside included); ``{fn}_cpu_us`` the
    mean CPU time charged inside it (the self times of the call and of every
    call under it: no sleep, no interrupt).  Counted: every finished call of
    ``fn`` that is an outermost selected call (depth 0); a call still open at
    the end (a reader asleep in recvfrom) has no duration yet and is left out,
    as ftrace prints none for it.  The tracer writes each outermost call's
    lines together, so the lines of one call are those up to the next depth-0
    line.
    """
    wall = dict.fromkeys(functions, 0.0)
    cpu = dict.fromkeys(functions, 0.0)
    calls = dict.fromkeys(functions, 0)
    tracer.finish()
    current: str | None = None
    charged = 0.0
    for line in tracer.lines:
        if line.depth == 0 and line.type in ("entry", "leaf"):
            current, charged = (line.fn if line.fn in wall else None), 0.0
        if current is None:
            continue
        charged += line.self_time or 0.0
        if line.depth == 0 and line.type in ("exit", "leaf") and line.duration is not None:
            wall[current] += line.duration
            cpu[current] += charged
            calls[current] += 1
            current = None
    out: dict[str, Any] = {}
    for fn in functions:
        n = calls[fn]
        out[f"{fn}_us"] = wall[fn] / n * 1e6 if n else None
        out[f"{fn}_cpu_us"] = cpu[fn] / n * 1e6 if n else None
        out[f"{fn}_calls"] = n
    return out
