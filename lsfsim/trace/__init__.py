"""Teaching views of a run: ftrace-style call graphs, per-packet lifecycles, timelines.

``run_traced(model, scenario, tracer=..., recorder=...)`` runs a machine with
both listeners wired in (the tracer as ``tracer=`` and as a probe, the
recorder as a probe: both see the packet hooks) and returns the Result.
"""

from __future__ import annotations

from typing import Any

from lsfsim.trace.ftrace import FtraceTracer, format_duration
from lsfsim.trace.lifecycle import LifecycleRecorder, PacketLife

__all__ = ["FtraceTracer", "LifecycleRecorder", "PacketLife",
           "format_duration", "run_traced"]


def run_traced(model: Any, scenario: Any, tracer: FtraceTracer | None = None,
               recorder: LifecycleRecorder | None = None, source: Any = None,
               progress: Any = None, probes: Any = ()) -> Any:
    """Run ``scenario`` on ``model`` (a Model or a model name) with the given listeners
    (and more ``probes``)."""
    from lsfsim.config.model import load_model
    from lsfsim.machine import Machine

    if isinstance(model, str):
        model = load_model(model)
    listeners: list[Any] = [x for x in (recorder, tracer) if x is not None]
    machine = Machine(model, scenario, tracer=tracer, source=source,
                      probes=[*listeners, *probes])
    return machine.run(progress=progress)
