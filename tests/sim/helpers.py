"""Helpers for simulator tests: small models and scenarios, direct kernel calls."""

from __future__ import annotations

from typing import Any

import pytest

from lsfsim.config.model import Model, load_model
from lsfsim.kernel.cpu import PROCESS, SI, SOFTIRQ, ExecContext
from lsfsim.kernel.skbuff import SkBuff
from lsfsim.machine import Machine
from lsfsim.scenario import Scenario, SocketSpec, TrafficSpec
from lsfsim.traffic.base import TrafficSource


class NoTraffic(TrafficSource):
    """A source that never sends: for calling kernel functions by hand."""

    name = "none"
    total_frames = 0

    def frames(self):
        return iter(())


def model(name: str = "testbed", **overrides: Any) -> Model:
    m = load_model(name)
    return m.with_overrides(overrides) if overrides else m


def cbr(rate: float, packets: int, size: int = 60, **socket: Any) -> Scenario:
    sock = {"filter": None, "promisc": False, **socket}
    return Scenario(traffic=TrafficSpec(kind="cbr", rate=rate, packets=packets, size=size),
                    sockets=[SocketSpec(**sock)])


def idle_machine(m: Model | None = None, **socket: Any) -> Machine:
    """A machine with one socket whose traffic never comes (for direct kernel calls)."""
    scenario = Scenario(traffic=TrafficSpec(kind="cbr", rate=1.0, packets=1, size=60),
                        sockets=[SocketSpec(**{"filter": None, "readers": 0, "promisc": False,
                                                **socket})])
    machine = Machine(m or model(), scenario, source=NoTraffic())
    machine.env.run(until=1e-3)          # the control path (socket, setsockopt) has run
    return machine


def softirq_ctx(machine: Machine) -> ExecContext:
    return ExecContext(machine.env, machine.cpus[0], SOFTIRQ, SI, machine.profile, machine.calls)


def process_ctx(machine: Machine) -> ExecContext:
    return ExecContext(machine.env, machine.cpus[0], PROCESS, SI, machine.profile, machine.calls,
                       task=object())


def frame_skb(machine: Machine, length: int = 1514, in_place: bool = True) -> SkBuff:
    """An incoming IPv4 skb as pcnet32 hands it up (in-place buffer or copybreak copy)."""
    data = bytearray(length)
    data[0:6] = bytes(int(b, 16) for b in machine.model.hardware.nic.mac.split(":"))
    data[12:14] = b"\x08\x00"
    data[14] = 0x45
    truesize = (machine.dev.ring_truesize if in_place
                else machine.truesize.dev_alloc_skb(length + 2))
    skb = SkBuff(bytes(data), truesize)
    skb.protocol = 0x0800
    return skb


def same_results(a: Any, b: Any, path: str = "") -> None:
    """Equal, counts exactly; sums of seconds to the last bits only, as threads on
    different CPUs add to a shared total (a latency mean, a function's time) in a
    different order when one of them runs lazily."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), path
        for key in a:
            same_results(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            same_results(x, y, f"{path}[{i}]")
    elif isinstance(a, float):
        assert b == pytest.approx(a, rel=1e-12, abs=1e-18), path
    else:
        assert a == b, path
