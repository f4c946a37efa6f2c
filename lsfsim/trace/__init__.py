"""Teaching views of a run: ftrace-style call graphs, per-packet lifecycles, timelines.

``run_traced(model, scenario, tracer=..., recorder=...)`` runs a machine with
both listeners wired in (tracer as ``tracer=`` and probe, recorder and tracer
through the lifecycle hooks) and returns the Result.
"""

from __future__ import annotations

from typing import Any

from lsfsim.trace.ftrace import FtraceTracer, format_duration, parse_packets, parse_window
from lsfsim.trace.lifecycle import LifecycleRecorder, LifecycleTee, PacketLife

__all__ = ["FtraceTracer", "LifecycleRecorder", "LifecycleTee", "PacketLife",
           "format_duration", "parse_packets", "parse_window", "run_traced"]


def run_traced(model: Any, scenario: Any, tracer: FtraceTracer | None = None,
               recorder: LifecycleRecorder | None = None, source: Any = None,
               progress: Any = None) -> Any:
    """Run ``scenario`` on ``model`` (a Model or a model name) with the given listeners."""
    from lsfsim.config.model import load_model
    from lsfsim.machine import Machine

    if isinstance(model, str):
        model = load_model(model)
    listeners = [x for x in (recorder, tracer) if x is not None]
    lifecycle: Any = None
    if len(listeners) == 1:
        lifecycle = listeners[0]
    elif listeners:
        lifecycle = LifecycleTee(*listeners)
    machine = Machine(model, scenario, tracer=tracer, lifecycle=lifecycle, source=source,
                      probes=listeners)
    result = machine.run(progress=progress)
    if tracer is not None:
        tracer.finish()
    return result
