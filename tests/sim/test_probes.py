"""Probes (lsfsim.probes): attach and finish once, packet hooks wired only when
defined, and observers that never change a run."""

from __future__ import annotations

from typing import Any

from lsfsim.machine import Machine
from lsfsim.probes import HOOKS, Hooks
from lsfsim.scenario import Scenario, SocketSpec, TrafficSpec

from .helpers import model


class CaptureWriter:
    """What a capture-file writer needs: every packet recvfrom returns, with its bytes."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self.records: list[tuple[int, int, int, float]] = []   # sock, frame, bytes, time

    def attach(self, machine: Machine) -> None:
        self.events.append("attach")

    def recvfrom_returned(self, sock: Any, skb: Any, copied: int, t: float) -> None:
        self.records.append((sock.index, skb.id, copied, t))

    def finish(self) -> None:
        self.events.append("finish")


class FilterChecker:
    """What a regression checker of filters needs: every filter verdict."""

    def __init__(self) -> None:
        self.verdicts: list[tuple[int, int, int]] = []

    def attach(self, machine: Machine) -> None:
        pass

    def filter_verdict(self, ctx: Any, sock: Any, skb: Any, verdict: int, insns: int) -> None:
        self.verdicts.append((sock.index, skb.id, verdict))

    def finish(self) -> None:
        pass


def _scenario() -> Scenario:
    return Scenario(traffic=TrafficSpec(kind="poisson", rate=40_000, packets=600, size=300,
                                        proto="udp"),
                    sockets=[SocketSpec(filter="udp", snaplen=100, buflen=80),
                             SocketSpec(filter="tcp", readers=2)], seed=3)


def test_hooks_are_none_unless_a_listener_defines_them():
    hooks = Hooks([FilterChecker()])
    assert hooks.filter_verdict is not None
    assert all(getattr(hooks, name) is None for name in HOOKS if name != "filter_verdict")
    assert hooks and not Hooks()


def test_several_listeners_of_one_hook_are_called_in_order():
    calls = []

    class A:
        def polled(self, ctx, skb):
            calls.append(("a", skb))

    class B:
        def polled(self, ctx, skb):
            calls.append(("b", skb))

    Hooks([A(), B()]).polled(None, 7)
    assert calls == [("a", 7), ("b", 7)]


def test_a_capture_writer_sees_every_packet_recvfrom_returns():
    writer = CaptureWriter()
    result = Machine(model(), _scenario(), probes=[writer]).run()
    assert writer.events == ["attach", "finish"]
    for sock in result.sockets:
        mine = [r for r in writer.records if r[0] == sock["index"]]
        assert len(mine) == sock["delivered"]
        assert sum(r[2] for r in mine) == sock["delivered_bytes"]
    udp = [r for r in writer.records if r[0] == 0]
    assert udp and all(r[2] == 80 for r in udp)     # snaplen 100, then a buffer of 80
    times = [r[3] for r in udp]
    assert times == sorted(times)                   # one reader: in order


def test_a_filter_checker_sees_every_verdict():
    checker = FilterChecker()
    result = Machine(model(), _scenario(), probes=[checker]).run()
    for sock in result.sockets:
        mine = [v for v in checker.verdicts if v[0] == sock["index"]]
        assert len(mine) == sock["seen"]
        assert sum(1 for v in mine if v[2] == 0) == sock["filtered"]
    assert {v[2] for v in checker.verdicts if v[0] == 0} == {100}   # udp: ret #snaplen


def test_probes_do_not_change_the_run():
    plain = Machine(model(), _scenario()).run().deterministic()
    watched = Machine(model(), _scenario(), probes=[CaptureWriter(), FilterChecker()]).run()
    assert watched.deterministic() == plain
