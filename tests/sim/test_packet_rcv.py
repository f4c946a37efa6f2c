"""packet_rcv and sk_attach_filter, called directly as the kernel would."""

from __future__ import annotations

import pytest

from lsfsim.bpf import Program
from lsfsim.kernel.skbuff import PACKET_OUTGOING
from tests.sim.helpers import frame_skb, idle_machine, model, process_ctx, softirq_ctx


def _feed(machine, n, shared=True, in_place=True, length=1514):
    sock = machine.sockets[0]
    ctx = softirq_ctx(machine)
    for _ in range(n):
        sock.packet_rcv(ctx, frame_skb(machine, length, in_place), shared)
    return sock


def test_rcvbuf_check_uses_truesize_not_snaplen():
    """rcvbuf 3600 holds one 1832-byte in-place buffer (x86_64), however short the snaplen."""
    for snaplen in (65535, 60):
        machine = idle_machine(model("testbed-x86_64"))
        sock = machine.sockets[0]
        sock.set_rcvbuf(1800)
        ctx = process_ctx(machine)
        assert sock.sk_attach_filter(ctx, Program.from_insns([(0x06, 0, 0, snaplen)])) is None
        _feed(machine, 5)
        assert sock.queued_total == 1
        assert sock.rcvbuf_drops == 4
        assert sock.sk_rmem_alloc == 1832
        assert sock.sk_receive_queue[0].len == min(snaplen, 1514)
        assert sock.sk_receive_queue[0].truesize == 1832   # pskb_trim keeps truesize


def test_relaxed_rcvbuf_rule_from_3_2():
    """From 3.2 the test is rmem >= rcvbuf: the queue overshoots by one skb."""
    machine = idle_machine(model("testbed-x86_64", **{"kernel.version": "3.2"}))
    sock = machine.sockets[0]
    sock.set_rcvbuf(1800)
    _feed(machine, 5)
    assert sock.queued_total == 2


def test_tp_drops_is_assigned_the_cumulative_sk_drops_on_2_6_33():
    machine = idle_machine(model("testbed-x86_64"))
    sock = machine.sockets[0]
    sock.set_rcvbuf(1800)
    _feed(machine, 4)                         # 1 queued, 3 dropped
    assert sock.packet_getsockopt_statistics() == (1 + 3, 3)
    _feed(machine, 2)                         # 2 more drops, nothing queued
    # the quirk: tp_drops = sk_drops = 5 (cumulative), tp_packets reported = 0 + 5
    assert sock.packet_getsockopt_statistics() == (5, 5)
    assert sock.packet_getsockopt_statistics() == (0, 0)


def test_tp_drops_increments_from_3_1():
    machine = idle_machine(model("testbed-x86_64", **{"kernel.version": "3.1"}))
    sock = machine.sockets[0]
    sock.set_rcvbuf(1800)
    _feed(machine, 4)
    assert sock.packet_getsockopt_statistics() == (4, 3)
    _feed(machine, 2)
    assert sock.packet_getsockopt_statistics() == (2, 2)


def test_shared_skb_is_cloned_and_last_handler_is_not():
    machine = idle_machine()
    sock = machine.sockets[0]
    _feed(machine, 1, shared=True)
    machine.fold_profile()
    assert machine.calls.get("skb_clone") == 1
    assert sock.sk_receive_queue[-1].cloned
    _feed(machine, 1, shared=False)
    machine.fold_profile()
    assert machine.calls.get("skb_clone") == 1
    assert not sock.sk_receive_queue[-1].cloned


def test_filter_zero_drops_silently():
    machine = idle_machine()
    sock = machine.sockets[0]
    ret0 = Program.from_insns([(0x06, 0, 0, 0)])
    assert sock.sk_attach_filter(process_ctx(machine), ret0) is None
    _feed(machine, 3)
    assert sock.filtered == 3
    assert sock.packet_getsockopt_statistics() == (0, 0)
    assert sock.sk_rmem_alloc == 0


def test_filter_cost_grows_with_instructions_executed():
    machine = idle_machine()
    sock = machine.sockets[0]
    ctx = process_ctx(machine)
    costs = machine.costs
    sock.sk_attach_filter(ctx, Program.from_expression("host 208.68.139.89", snaplen=65535))
    _feed(machine, 1)       # ldh [12]; jeq #0x800 -> ld [26]; jeq; ld [30]; jeq; ret #0 = 7 insns
    expected = costs.sk_run_filter + 7 * costs.sk_run_filter_per_insn
    machine.fold_profile()
    assert abs(machine.profile["sk_run_filter"] - expected) < 1e-15


def test_invalid_filter_keeps_the_old_one():
    machine = idle_machine()
    sock = machine.sockets[0]
    ctx = process_ctx(machine)
    good = Program.from_insns([(0x06, 0, 0, 100)])
    assert sock.sk_attach_filter(ctx, good) is None
    bad = Program.from_insns([(0x15, 5, 0, 1), (0x06, 0, 0, 0)])     # jump out of range
    assert sock.sk_attach_filter(ctx, bad) == "EINVAL"
    assert sock.program is good
    _feed(machine, 1)
    assert sock.sk_receive_queue[0].len == 100


@pytest.mark.parametrize(("name", "largest"), [("testbed", 1277), ("testbed-x86_64", 2556)])
def test_long_filter_is_enomem_on_2_6_33(name, largest):
    """8*n + sizeof(sk_filter) must stay below optmem_max: on i386 (10240, 16 bytes) 1277
    fits and 1278 does not; on x86_64 (20480, 24 bytes) 2556 and 2557."""
    machine = idle_machine(model(name))
    sock = machine.sockets[0]
    ctx = process_ctx(machine)
    body = [(0x00, 0, 0, 0)] * (largest - 1) + [(0x06, 0, 0, 1)]
    assert sock.sk_attach_filter(ctx, Program.from_insns(body)) is None
    sock.sk_omem_alloc = 0
    longer = [(0x00, 0, 0, 0)] * largest + [(0x06, 0, 0, 1)]
    assert sock.sk_attach_filter(ctx, Program.from_insns(longer)) == "ENOMEM"


def test_outgoing_frames_reach_other_taps_not_the_sender():
    from lsfsim.kernel import syscalls

    machine = idle_machine()
    tap = machine.sockets[0]
    ctx = process_ctx(machine)
    sender = syscalls.sys_socket(machine.net, ctx)
    frame = bytes(frame_skb(machine, 100).data)
    assert syscalls.sys_sendto(machine.net, ctx, sender, frame) is None
    assert tap.seen_outgoing == 1
    assert tap.sk_receive_queue[-1].pkt_type == PACKET_OUTGOING
    assert sender.seen == 0
    assert syscalls.sys_sendto(machine.net, ctx, sender, bytes(1515)) == "EMSGSIZE"
