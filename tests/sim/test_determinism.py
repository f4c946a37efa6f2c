"""The same scenario and seed give identical results; tracing changes nothing."""

from __future__ import annotations

import json

from lsfsim.machine import Machine
from lsfsim.scenario import Scenario, SocketSpec, TrafficSpec
from lsfsim.trace.ftrace import FtraceTracer
from tests.sim.helpers import model


def _scenario(seed: int) -> Scenario:
    return Scenario(traffic=TrafficSpec(kind="poisson", rate=9e4, packets=1500, size=200),
                    sockets=[SocketSpec(rcvbuf=4000, reader_work=2e-5)], seed=seed)


def _json(result) -> str:
    return json.dumps(result.deterministic(), sort_keys=True)


def test_same_seed_same_json():
    a = Machine(model(), _scenario(7)).run()
    b = Machine(model(), _scenario(7)).run()
    assert _json(a) == _json(b)


def test_other_seed_other_run():
    a = Machine(model(), _scenario(7)).run()
    b = Machine(model(), _scenario(8)).run()
    assert _json(a) != _json(b)


def test_tracing_does_not_change_the_simulation():
    plain = Machine(model(), _scenario(3)).run()
    traced = Machine(model(), _scenario(3), tracer=FtraceTracer()).run()
    a, b = plain.deterministic(), traced.deterministic()
    for key in ("events",):
        a.pop(key)
        b.pop(key)
    fa, fb = a.pop("functions"), b.pop("functions")
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    assert fa.keys() == fb.keys()
    for fn in fa:
        assert fa[fn]["calls"] == fb[fn]["calls"], fn
        assert abs(fa[fn]["seconds"] - fb[fn]["seconds"]) < 1e-9, fn
