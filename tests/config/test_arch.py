"""Sizes derived from the machine word (lsfsim.config.arch) against the 2.6.33.2 layouts.

The figures checked here are the research tables for the lecture's i386 build and a
64-bit build of the same kernel; each is asserted through its formula's pieces (the
offsets of the struct members, the sock.c and pcnet32.c formulas), so a wrong ABI
rule or a wrong member fails on the piece that is wrong.
"""

from __future__ import annotations

import pytest

from lsfsim.config import load_model
from lsfsim.config.arch import (
    ARCHES,
    MAX_SKB_FRAGS,
    SK_BUFF_2_6_33_2,
    SKB_SHARED_INFO_2_6_33_2,
    layout,
    sizeof_sk_filter,
)


def test_i386_sk_buff_layout_member_by_member():
    offsets, size = layout(SK_BUFF_2_6_33_2, ARCHES["i386"])
    # long long (tstamp) is 4-aligned inside an i386 struct; cb[48] is __aligned(8)
    assert offsets["tstamp"] == 8 and offsets["sk"] == 16 and offsets["cb"] == 24
    assert offsets["len"] == 80 and offsets["destructor"] == 104
    assert offsets["skb_iif"] == 120 and offsets["queue_mapping"] == 128
    assert offsets["dma_cookie"] == 132        # after the 3-byte flags2 group, 4-aligned
    assert offsets["vlan_tci"] == 144
    # sk_buff_data_t is a pointer on i386 (NET_SKBUFF_DATA_USES_OFFSET needs 64 bits)
    assert offsets["transport_header"] == 148 and offsets["head"] == 168
    assert offsets["truesize"] == 176 and offsets["users"] == 180
    assert size == 184 == offsets["users"] + 4          # a multiple of cb's alignment 8


def test_x86_64_sk_buff_layout_member_by_member():
    offsets, size = layout(SK_BUFF_2_6_33_2, ARCHES["x86_64"])
    assert offsets["cb"] == 40 and offsets["len"] == 104 and offsets["destructor"] == 128
    assert offsets["skb_iif"] == 160 and offsets["mark"] == 180
    assert offsets["transport_header"] == 188           # u32 offsets, not pointers
    assert offsets["head"] == 208 and offsets["truesize"] == 224 and offsets["users"] == 228
    assert size == 232


@pytest.mark.parametrize(("arch", "frag", "header", "size"), [
    ("i386", 12, 40, 260), ("x86_64", 16, 48, 344)])
def test_skb_shared_info_is_its_frags_between_a_header_and_destructor_arg(arch, frag, header,
                                                                          size):
    abi = ARCHES[arch]
    offsets, total = layout(SKB_SHARED_INFO_2_6_33_2, abi)
    assert MAX_SKB_FRAGS == 18
    assert offsets["frags[0].page"] == header
    assert offsets["destructor_arg"] == header + MAX_SKB_FRAGS * frag
    assert total == header + MAX_SKB_FRAGS * frag + abi.word == size


@pytest.mark.parametrize(("arch", "word"), [("i386", 4), ("x86_64", 8)])
def test_sk_filter_is_two_ints_and_an_rcu_head(arch, word):
    abi = ARCHES[arch]
    assert abi.word == word
    assert sizeof_sk_filter(abi, (2, 6, 33)) == 4 + 4 + 2 * word == {4: 16, 8: 24}[word]
    assert sizeof_sk_filter(abi, (3, 0, 0)) == 4 + 4 + 3 * word      # + bpf_func (3.0)


@pytest.mark.parametrize(("name", "arch"), [("testbed", "i386"), ("testbed-vm", "i386"),
                                            ("testbed-x86_64", "x86_64")])
def test_the_models_derive_every_size_from_their_arch(name, arch):
    m = load_model(name)
    s = m.kernel.sizes
    word = ARCHES[arch].word
    assert m.kernel.arch == arch and s.word == word
    assert s.sizeof_sk_buff == layout(SK_BUFF_2_6_33_2, ARCHES[arch])[1]
    # net/core/sock.c:205-214: SK_RMEM_MAX = 256 * (sizeof(struct sk_buff) + 256)
    assert s.rmem_default == s.wmem_default == 256 * (s.sizeof_sk_buff + 256)
    assert s.rmem_max == 131071                                  # sk_init, >= 512 MiB
    assert s.optmem_max == word * (2 * 1024 + 512)               # sock.c:217
    assert s.max_tcp_header == 128 + 96 + 48                     # tcp.h:54, MAX_HEADER 144
    # the research table: i386 184 / 112640 / 10240 / 16, x86_64 232 / 124928 / 20480 / 24
    expected = {"i386": (184, 112640, 10240, 16), "x86_64": (232, 124928, 20480, 24)}[arch]
    assert (s.sizeof_sk_buff, s.rmem_default, s.optmem_max, s.sizeof_sk_filter) == expected


@pytest.mark.parametrize(("name", "full", "copy60", "ack"), [
    ("testbed", 1784, 312, 504), ("testbed-x86_64", 1832, 360, 552)])
def test_truesize_of_a_full_frame_a_copybreak_copy_and_an_ack(name, full, copy60, ack):
    from tests.sim.helpers import idle_machine

    machine = idle_machine(load_model(name))
    s = machine.kernel_context.sizes
    # pcnet32: dev_alloc_skb(PKT_BUF_SKB) -> __alloc_skb(1544 + NET_SKB_PAD): 1600 + sk_buff
    assert machine.dev.ring_truesize == s.data_align(1544 + 32) + s.sizeof_sk_buff == full
    # copybreak: dev_alloc_skb(60 + NET_IP_ALIGN): SKB_DATA_ALIGN(94) = 128
    assert machine.dev.copy_truesize[60] == s.data_align(60 + 2 + 32) + s.sizeof_sk_buff == copy60
    # tcp_send_ack: alloc_skb(MAX_TCP_HEADER): SKB_DATA_ALIGN(272) = 320
    assert machine.ip.ack_truesize == s.data_align(272) + s.sizeof_sk_buff == ack


def test_a_sysctl_in_the_model_overrides_the_derived_default():
    m = load_model("testbed").with_overrides({"kernel.rmem_default": 262144})
    assert m.kernel.sizes.rmem_default == 262144
    assert m.kernel.sizes.wmem_default == 112640                 # the others stay derived


def test_an_unknown_arch_is_refused_with_the_choices():
    from lsfsim.config.errors import ModelError

    with pytest.raises(ModelError, match="kernel.arch.*i386.*x86_64"):
        load_model("testbed").with_overrides({"kernel.arch": "arm"})
