"""Tests of the reports: sampler, plots, HTML page, /proc views.

``run`` builds and runs a small scenario through the Python API (each
distinct scenario once per test session).
"""

from __future__ import annotations

import functools
from typing import Any

# Two small runs that drop packets in different places, each well under a second:
# a slow reader behind a small receive buffer (socket drops), and the pre-NAPI
# driver on the virtualised testbed at a high rate of small frames (backlog drops).
SLOW_READER: dict[str, Any] = {
    "model": "testbed",
    "traffic": {"kind": "cbr", "rate": 8000, "packets": 2000, "size": 1514},
    "sockets": [{"reader_work": 200e-6, "rcvbuf": 30000}],
}
NO_NAPI: dict[str, Any] = {
    "model": "testbed-vm",
    "traffic": {"kind": "cbr", "rate": 200000, "packets": 3000, "size": 60},
    "napi": False,
}


def run(spec: dict[str, Any], sampler: Any = None, **machine_options: Any) -> tuple[Any, Any]:
    """Run a scenario (dict of Scenario fields) with an optional probe; (machine, result)."""
    from lsfsim.config.model import load_model
    from lsfsim.machine import Machine
    from lsfsim.scenario import Scenario

    scenario = Scenario(**spec)
    machine = Machine(load_model(scenario.model), scenario,
                      probes=[sampler] if sampler is not None else [], **machine_options)
    return machine, machine.run()


@functools.cache
def sampled(name: str) -> tuple[Any, Any]:
    """(result, sampler) of a named scenario with a default Sampler, cached."""
    from lsfsim.report.sampler import Sampler

    sampler = Sampler()
    _machine, result = run({"SLOW_READER": SLOW_READER, "NO_NAPI": NO_NAPI}[name], sampler)
    return result, sampler
