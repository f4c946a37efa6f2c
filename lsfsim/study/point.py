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

    def __call__(self) -> dict[str, Any]:
        from lsfsim.config.model import load_model

        model = load_model(self.scenario.model)
        if not self.inclusive:
            from lsfsim.machine import Machine

            result = Machine(model, self.scenario).run()
            row = flatten(result.data)
        else:
            from lsfsim.trace import FtraceTracer, run_traced

            tracer = FtraceTracer(functions=self.inclusive)
            result = run_traced(model, self.scenario, tracer=tracer)
            row = flatten(result.data)
            row.update(inclusive_means(tracer, self.inclusive))
        row.update(self.extra)
        return row


def inclusive_means(tracer: Any, functions: tuple[str, ...]) -> dict[str, Any]:
    """``{fn}_us`` and ``{fn}_calls`` from a tracer limited to ``functions``.

    Counted: every finished call of ``fn`` that is the outermost selected call
    (depth 0); calls still open at the end (a reader asleep in recvfrom) have
    no duration yet and are left out, as ftrace prints no duration for them.
    """
    total = dict.fromkeys(functions, 0.0)
    calls = dict.fromkeys(functions, 0)
    for line in tracer.sorted_lines():
        if line.depth == 0 and line.fn in total and line.type in ("exit", "leaf") \
                and line.duration is not None:
            total[line.fn] += line.duration
            calls[line.fn] += 1
    out: dict[str, Any] = {}
    for fn in functions:
        out[f"{fn}_us"] = total[fn] / calls[fn] * 1e6 if calls[fn] else None
        out[f"{fn}_calls"] = calls[fn]
    return out
