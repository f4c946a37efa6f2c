"""Interrupt steps that move the clock instead of waiting give exactly the timed run.

When no other event is due before an interrupt step ends, the runner moves the
SimPy clock to the step's end and goes on (CPU.interrupt_step).  The oracle is
the same run with every step a timeout (``cpu.run_ahead = False``); every
figure, every packet's life and the ftrace output must be the same.
"""

from __future__ import annotations

import dataclasses
import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lsfsim.machine import Machine
from lsfsim.scenario import Scenario, SenderSpec, SocketSpec, TrafficSpec
from lsfsim.trace.ftrace import FtraceTracer
from lsfsim.trace.lifecycle import LifecycleRecorder
from tests.sim.helpers import model, same_results
from tests.sim.test_conservation import MODELS, scenarios


def _run(m, scenario: Scenario, run_ahead: bool, trace: bool = False) -> tuple[dict, int, str]:
    lifecycle = LifecycleRecorder()
    tracer = FtraceTracer() if trace else None
    machine = Machine(m, scenario, tracer=tracer,
                      probes=[lifecycle, tracer] if tracer is not None else [lifecycle])
    for cpu in machine.cpus:
        cpu.run_ahead = run_ahead
    data = machine.run().deterministic()
    data["lives"] = [dataclasses.asdict(life) for life in lifecycle.sorted()]
    text = ""
    if tracer is not None:
        tracer.finish()
        out = io.StringIO()
        tracer.write_text(out)
        text = out.getvalue()
    return data, data.pop("events"), text


NAMED = {
    # a saturated IRQ CPU: steps follow each other with nothing in between
    "saturated": Scenario(traffic=TrafficSpec(kind="cbr", rate=1.48e5, packets=4000, size=60)),
    # a process-driven reader (two per socket) and a sender between the steps
    "processes": Scenario(traffic=TrafficSpec(kind="poisson", rate=9e4, packets=3000, size=200),
                          sockets=[SocketSpec(readers=2, rcvbuf=6000, reader_work=1e-5)],
                          senders=[SenderSpec(rate=2e4, count=200, size=60)]),
    # the lecture's transfer: ACKs, TX completions, the source's clocking
    "nc": Scenario(traffic=TrafficSpec(kind="nc", bytes=300_000)),
    # pre-NAPI livelock, ksoftirqd
    "livelock": Scenario(traffic=TrafficSpec(kind="cbr", rate=9e4, packets=3000, size=60),
                         napi=False),
    # a run cut at a time limit: steps must not carry the clock past it
    "undrained": Scenario(traffic=TrafficSpec(kind="cbr", rate=1.48e5, packets=5000, size=60),
                          sockets=[SocketSpec(reader_work=1e-4)], drain=False,
                          max_sim_seconds=0.01),
}


@pytest.mark.parametrize("name", sorted(NAMED))
def test_run_ahead_equals_timed_steps(name: str) -> None:
    m = model("testbed", **{"hardware.cpu.count": 1}) if name == "livelock" else model()
    ahead, ahead_events, ahead_trace = _run(m, NAMED[name], True, trace=True)
    timed, timed_events, timed_trace = _run(m, NAMED[name], False, trace=True)
    same_results(ahead, timed)
    assert ahead_trace == timed_trace
    assert ahead_events <= timed_events
    if name == "saturated":
        assert ahead_events < 0.1 * timed_events
    if name == "undrained":
        assert ahead["sim_seconds"] == 0.01


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario=scenarios(), model_name=st.sampled_from(sorted(MODELS)))
def test_random_scenarios_agree(scenario: Scenario, model_name: str) -> None:
    ahead = _run(MODELS[model_name], scenario, True)[0]
    timed = _run(MODELS[model_name], scenario, False)[0]
    same_results(ahead, timed)
