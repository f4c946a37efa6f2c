"""truesize rules and SO_RCVBUF, against the 2.6.33 figures of the reference facts."""

from __future__ import annotations

import pytest

from lsfsim.kernel.skbuff import TruesizeRules
from tests.sim.helpers import idle_machine, model


@pytest.mark.parametrize(("sizeof_sk_buff", "in_place", "copy60", "copy200"), [
    (232, 1832, 360, 488),   # x86_64 (facts §1, worked values)
    (184, 1784, 312, 440),   # i386
])
def test_truesize_2_6_33(sizeof_sk_buff, in_place, copy60, copy200):
    rules = TruesizeRules(sizeof_sk_buff=sizeof_sk_buff, smp_cache_bytes=64, net_skb_pad=32)
    assert rules.dev_alloc_skb(1544) == in_place
    assert rules.dev_alloc_skb(60 + 2) == copy60
    assert rules.dev_alloc_skb(200 + 2) == copy200


def test_truesize_counts_shared_info_from_3_2():
    old = TruesizeRules()
    new = TruesizeRules(includes_shinfo=True, sizeof_skb_shared_info=320)
    assert new.dev_alloc_skb(1544) - old.dev_alloc_skb(1544) == 320


def test_machine_picks_the_era_truesize_rule():
    assert idle_machine().dev.ring_truesize == 1784             # i386: 1600 + 184
    assert idle_machine(model("testbed-x86_64")).dev.ring_truesize == 1832
    modern = idle_machine(model("modern"))
    assert modern.truesize.includes_shinfo


@pytest.mark.parametrize(("name", "rcvbuf", "truesize", "frames"), [
    ("testbed", 112640, 1784, 63), ("testbed-x86_64", 124928, 1832, 68)])
def test_default_queue_capacity_in_full_frames(name, rcvbuf, truesize, frames):
    """ceil(rcvbuf / truesize) - 1 packets fit: 63 for 112640 / 1784 on i386, 68 for
    124928 / 1832 on x86_64 (packet_rcv's rmem + truesize >= rcvbuf, af_packet.c:576)."""
    machine = idle_machine(model(name))
    sock = machine.sockets[0]
    assert sock.sk_rcvbuf == rcvbuf
    assert machine.dev.ring_truesize == truesize
    fits = 0
    while sock.sk_rmem_alloc + truesize < sock.sk_rcvbuf:
        sock.sk_rmem_alloc += truesize
        fits += 1
    assert fits == frames == -(-rcvbuf // truesize) - 1


@pytest.mark.parametrize(("val", "expected"), [
    (1000, 2000),          # doubled
    (10, 256),             # at least SOCK_MIN_RCVBUF (2.6.33)
    (10**6, 262142),       # clamped to rmem_max 131071, then doubled
])
def test_so_rcvbuf(val, expected):
    sock = idle_machine().sockets[0]
    assert sock.set_rcvbuf(val) == expected


def test_so_rcvbuf_minimum_modern_kernel():
    sock = idle_machine(model("modern")).sockets[0]
    assert sock.set_rcvbuf(0) == model("modern").kernel.sizes.sock_min_rcvbuf
