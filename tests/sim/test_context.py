"""Kernel units with a KernelContext and no Machine: packet_rcv as a unit."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
import simpy

from lsfsim.bpf import Program
from lsfsim.config.model import load_model
from lsfsim.kernel.af_packet import PacketSock
from lsfsim.kernel.context import KernelContext
from lsfsim.kernel.cpu import SI, SOFTIRQ
from lsfsim.kernel.skbuff import SkBuff
from lsfsim.probes import Hooks

HOST_MAC = bytes.fromhex("000c29aabbcc")


class Verdicts:
    """A probe with two hooks: the filter's return value and packet_rcv's decision."""

    def __init__(self) -> None:
        self.filter: list[tuple[int, int]] = []
        self.outcomes: list[tuple[int, str, int]] = []

    def filter_verdict(self, ctx: Any, sock: Any, skb: SkBuff, verdict: int, insns: int) -> None:
        self.filter.append((verdict, insns))

    def verdict(self, ctx: Any, sock: Any, skb: SkBuff, outcome: str, snaplen: int) -> None:
        self.outcomes.append((sock.index, outcome, snaplen))


def _udp_skb(length: int = 200, truesize: int = 2048) -> SkBuff:
    data = bytearray(length)
    data[0:6] = HOST_MAC
    data[12:14] = b"\x08\x00"
    data[14] = 0x45
    data[16:18] = (length - 14).to_bytes(2, "big")
    data[23] = 17                                   # UDP
    skb = SkBuff(bytes(data), truesize)
    skb.protocol = 0x0800
    return skb


def _kernel(model: str = "testbed", probe: Any = None) -> KernelContext:
    return KernelContext(simpy.Environment(), load_model(model).kernel, ncpus=1, seed=1,
                         hooks=Hooks([probe] if probe is not None else []))


def test_packet_rcv_queues_and_charges_its_plan_without_a_machine():
    probe = Verdicts()
    kernel = _kernel(probe=probe)
    sock = PacketSock(kernel, 0, ifindex=2)
    ctx = kernel.exec_context(kernel.cpus[0], SOFTIRQ, SI)
    skb = _udp_skb()
    sock.packet_rcv(ctx, skb, shared=False)
    c = kernel.costs
    assert ctx.t == pytest.approx(c.packet_rcv + c.skb_queue_tail + c.sock_def_readable,
                                  rel=1e-12)
    assert list(sock.sk_receive_queue) == [skb]          # not shared: queued as is
    assert sock.sk_rmem_alloc == skb.truesize
    assert probe.outcomes == [(0, "queued", 200)]
    assert probe.filter == []                            # no filter attached
    assert sock.packet_statistics() == {"tp_packets": 1, "tp_drops": 0}


def test_the_filter_verdict_hook_sees_every_filter_run():
    probe = Verdicts()
    kernel = _kernel(probe=probe)
    sock = PacketSock(kernel, 0, ifindex=2)
    ctx = kernel.exec_context(kernel.cpus[0], SOFTIRQ, SI)
    assert sock.sk_attach_filter(ctx, Program.from_expression("tcp", snaplen=96)) is None
    sock.packet_rcv(ctx, _udp_skb(), shared=True)
    assert probe.filter[0][0] == 0 and probe.filter[0][1] > 0
    assert probe.outcomes == [(0, "filtered", 0)]
    assert sock.filtered == 1 and not sock.sk_receive_queue


def test_a_full_receive_buffer_drops_by_the_eras_rule():
    """2.6.33 drops when rmem + truesize >= rcvbuf; 3.2 and later when rmem >= rcvbuf."""
    for model, queued in (("testbed", 1), ("modern", 2)):
        kernel = _kernel(model)
        sock = PacketSock(kernel, 0, ifindex=2)
        sock.sk_rcvbuf = 2500
        ctx = kernel.exec_context(kernel.cpus[0], SOFTIRQ, SI)
        for _ in range(3):
            sock.packet_rcv(ctx, _udp_skb(truesize=1400), shared=False)
        assert len(sock.sk_receive_queue) == queued, model
        assert sock.counters()["rcvbuf_drops"] == 3 - queued


@pytest.mark.parametrize(("modules", "not_loaded"), [
    ("lsfsim.kernel.af_packet, lsfsim.kernel.context, lsfsim.kernel.softirq, "
     "lsfsim.kernel.dev, lsfsim.kernel.ip, lsfsim.kernel.syscalls", ("lsfsim.machine",
                                                                     "lsfsim.traffic")),
    ("lsfsim.drivers.pcnet32, lsfsim.user, lsfsim.result", ("lsfsim.machine",)),
])
def test_the_kernel_units_load_without_the_machine(modules, not_loaded):
    code = (f"import sys; import {modules}; "
            f"bad = [m for m in sys.modules if m.startswith({not_loaded!r})]; "
            "print(bad); sys.exit(1 if bad else 0)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
