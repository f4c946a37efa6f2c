"""Deferred IRQ lines give exactly the run that a timer per IRQ gives.

While a CPU's interrupt runner is busy, a NIC whose line would assert does not
set a SimPy timer: the runner asserts it at its next look (preemption point or
before idling) with the time it was due.  The oracle is the same run with the
runner never counted busy, so that every line gets its timer.
"""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lsfsim.kernel.softirq import InterruptRunner
from lsfsim.machine import Machine
from lsfsim.scenario import Scenario, SocketSpec, TrafficSpec
from lsfsim.trace.lifecycle import LifecycleRecorder
from tests.sim.helpers import model, same_results
from tests.sim.test_conservation import MODELS, scenarios


def _run(m, scenario: Scenario) -> tuple[dict, int]:
    """The run's data (with every packet's life: when its IRQ was raised...) and events."""
    lifecycle = LifecycleRecorder()
    data = Machine(m, scenario, probes=[lifecycle]).run().deterministic()
    data["lives"] = [dataclasses.asdict(life) for life in lifecycle.sorted()]
    return data, data.pop("events")


def _with_timers(m, scenario: Scenario) -> tuple[dict, int]:
    original = InterruptRunner.busy
    InterruptRunner.busy = property(lambda self: False)
    try:
        return _run(m, scenario)
    finally:
        InterruptRunner.busy = original


def _deferred(m, scenario: Scenario) -> tuple[dict, int]:
    return _run(m, scenario)


NAMED = {
    # NAPI under load: polls of several frames, the line re-armed at each poll's end
    "napi": Scenario(traffic=TrafficSpec(kind="cbr", rate=1.2e5, packets=4000, size=60)),
    # pre-NAPI livelock on one CPU: IRQs taken between backlog packets
    "livelock": Scenario(traffic=TrafficSpec(kind="cbr", rate=6e4, packets=3000, size=60),
                         napi=False),
    # the nc transfer: TX completions of the ACKs share the line
    "nc": Scenario(traffic=TrafficSpec(kind="nc", bytes=300_000),
                   sockets=[SocketSpec(reader_work=5e-6)]),
}


@pytest.mark.parametrize("name", sorted(NAMED))
def test_deferred_lines_equal_timers(name: str) -> None:
    m = model("testbed", **{"hardware.cpu.count": 1}) if name == "livelock" else model()
    deferred, deferred_events = _deferred(m, NAMED[name])
    timers, timer_events = _with_timers(m, NAMED[name])
    same_results(deferred, timers)
    assert deferred["interrupts"] > 100
    if name == "napi":                             # the point of deferring: fewer events
        assert deferred_events < 0.8 * timer_events


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario=scenarios(), model_name=st.sampled_from(sorted(MODELS)))
def test_random_scenarios_agree(scenario: Scenario, model_name: str) -> None:
    same_results(_deferred(MODELS[model_name], scenario)[0],
          _with_timers(MODELS[model_name], scenario)[0])
