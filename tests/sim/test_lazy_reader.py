"""A lazily evaluated reader gives exactly the results of the same thread run as a SimPy process.

The oracle is the process-driven reader (``Machine(..., lazy_readers=False)``):
every figure of the run but the SimPy event count must be equal, and so must
the ftrace output.
"""

from __future__ import annotations

import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lsfsim.machine import Machine
from lsfsim.scenario import Scenario, SenderSpec, SocketSpec, TrafficSpec
from lsfsim.trace.ftrace import FtraceTracer
from tests.sim.helpers import model, same_results
from tests.sim.test_conservation import MODELS, scenarios


def _both(m, scenario: Scenario, **options) -> tuple[Machine, dict, Machine, dict]:
    lazy = Machine(m, scenario, **options)
    lazy_data = lazy.run().deterministic()
    process = Machine(m, scenario, lazy_readers=False, **options)
    process_data = process.run().deterministic()
    assert not process.lazy_readers
    for data in (lazy_data, process_data):
        data.pop("events")
    return lazy, lazy_data, process, process_data


NAMED = {
    # the lecture's transfer, light load: the reader sleeps and wakes for every frame
    "nc": Scenario(traffic=TrafficSpec(kind="nc", bytes=400_000)),
    # a slow reader behind a small buffer: the queue never empties, rcvbuf drops
    "slow reader": Scenario(traffic=TrafficSpec(kind="cbr", rate=3e4, packets=3000, size=1514),
                            sockets=[SocketSpec(rcvbuf=20000, reader_work=1e-4)]),
    # bursts that the reader catches up with during the gaps
    "on/off": Scenario(traffic=TrafficSpec(kind="onoff", rate=1.48e5, packets=4000, size=200,
                                           on=2e-3, off=3e-3),
                       sockets=[SocketSpec(snaplen=96, reader_work=3e-6)]),
    # pre-NAPI, receive in the interrupt handler; a small buffer
    "no napi": Scenario(traffic=TrafficSpec(kind="poisson", rate=6e4, packets=3000, size=60),
                        sockets=[SocketSpec(rcvbuf=3000)], napi=False),
    # a filter that passes every other frame (the IP id's low bit), truncated copies
    "filtered": Scenario(traffic=TrafficSpec(kind="cbr", rate=9e4, packets=3000, size=600),
                         sockets=[SocketSpec(filter="ip[5] & 1 = 1", buflen=100)]),
}


@pytest.mark.parametrize("name", sorted(NAMED))
def test_lazy_reader_equals_process_reader(name: str) -> None:
    lazy, a, _process, b = _both(model(), NAMED[name])
    assert lazy.lazy_readers                       # it was evaluated lazily
    assert a["sockets"][0]["delivered"] > 0
    same_results(a, b)


def test_undrained_run_stops_the_lazy_reader_at_the_limit() -> None:
    scenario = Scenario(traffic=TrafficSpec(kind="cbr", rate=1.48e5, packets=5000, size=60),
                        sockets=[SocketSpec(reader_work=1e-4)], drain=False,
                        max_sim_seconds=0.01)
    lazy, a, _process, b = _both(model(), scenario)
    assert lazy.lazy_readers
    assert a["sockets"][0]["queued"] > 0           # cut in the middle of the backlog
    same_results(a, b)


def _planned(machine: Machine) -> list[bool]:
    return [app.lazy_reader for app in machine.apps]


def test_a_shared_cpu_keeps_the_process_reader() -> None:
    """Two readers on one socket, a reader on the IRQ's CPU, a sender beside a reader:
    none of them may run lazily."""
    one_cpu = model("testbed", **{"hardware.cpu.count": 1})
    two_readers = Scenario(traffic=TrafficSpec(kind="cbr", rate=1e4, packets=100),
                           sockets=[SocketSpec(readers=2)])
    assert _planned(Machine(model(), two_readers)) == [False]
    one = Scenario(traffic=TrafficSpec(kind="cbr", rate=1e4, packets=100))
    assert _planned(Machine(one_cpu, one)) == [False]
    # CPUs are handed out reader by reader, then to senders, away from the IRQ's first:
    # socket 0's reader gets CPU1, socket 1's CPU0 (the IRQ's), the sender CPU1 again
    shared = Scenario(traffic=TrafficSpec(kind="cbr", rate=1e4, packets=100),
                      sockets=[SocketSpec(), SocketSpec()],
                      senders=[SenderSpec(rate=1e3, count=10, size=60)])
    assert _planned(Machine(model(), shared)) == [False, False]
    alone = Scenario(traffic=TrafficSpec(kind="cbr", rate=1e4, packets=100),
                     senders=[SenderSpec(rate=1e3, count=10, size=60)])
    assert _planned(Machine(model(), alone)) == [True]      # the sender is on CPU0
    assert _planned(Machine(model(), Scenario())) == [True]


def test_traces_are_identical() -> None:
    scenario = Scenario(traffic=TrafficSpec(kind="poisson", rate=9e4, packets=600, size=200),
                        sockets=[SocketSpec(rcvbuf=4000, reader_work=2e-5)], seed=3)
    texts = []
    for lazy in (True, False):
        tracer = FtraceTracer()
        machine = Machine(model(), scenario, tracer=tracer, lazy_readers=lazy)
        machine.run()
        assert bool(machine.lazy_readers) is lazy
        out = io.StringIO()
        tracer.finish()
        tracer.write_text(out)
        texts.append(out.getvalue())
    assert texts[0].count("packet_recvmsg") > 500
    assert texts[0] == texts[1]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario=scenarios(), model_name=st.sampled_from(sorted(MODELS)))
def test_random_scenarios_agree(scenario: Scenario, model_name: str) -> None:
    _lazy, a, _process, b = _both(MODELS[model_name], scenario)
    same_results(a, b)
