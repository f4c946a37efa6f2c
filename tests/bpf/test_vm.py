"""The reference interpreter: every opcode with hand-computed values, per era.

Where libpcap is the reference (kernel="libpcap"), the C bpf_filter through
ctypes (lsfsim.bpf.pcapc) is asked as well.
"""

from __future__ import annotations

import struct

import pytest

from lsfsim.bpf.errors import FilterError
from lsfsim.bpf.isa import SKF_AD_OFF, SKF_LL_OFF, SKF_NET_OFF, Insn
from lsfsim.bpf.meta import SkbMeta
from lsfsim.bpf.versions import semantics
from lsfsim.bpf.vm import execute, run

U32 = 0xFFFFFFFF
AD = SKF_AD_OFF & U32
NET = SKF_NET_OFF & U32
LL = SKF_LL_OFF & U32
RETA = Insn(0x16, 0, 0, 0)
PKT = bytes(range(1, 41))  # byte i is i + 1


def r(insns, packet=PKT, kernel="2.6.33", meta=None, wirelen=None) -> int:
    return run([Insn(*i) for i in insns], packet, meta, semantics(kernel), wirelen)


def pcap_oracle(insns, packet, wirelen=None, **kw) -> int:
    try:
        from lsfsim.bpf import pcapc

        return pcapc.bpf_filter([Insn(*i) for i in insns], packet, wirelen, **kw)
    except (ImportError, OSError) as exc:
        pytest.skip(f"libpcap oracle unavailable: {exc}")


# --- loads --------------------------------------------------------------------------
@pytest.mark.parametrize("kernel", ["2.6.33", "3.10", "6.18", "libpcap"])
def test_abs_loads_and_their_bounds(kernel: str) -> None:
    assert r([(0x20, 0, 0, 0), RETA], kernel=kernel) == 0x01020304
    assert r([(0x28, 0, 0, 10), RETA], kernel=kernel) == 0x0B0C
    assert r([(0x30, 0, 0, 39), RETA], kernel=kernel) == 40
    assert r([(0x20, 0, 0, 36), RETA], kernel=kernel) == 0x25262728  # ends at len
    assert r([(0x20, 0, 0, 37), (0x06, 0, 0, 9)], kernel=kernel) == 0  # one past: drop
    assert r([(0x28, 0, 0, 39), (0x06, 0, 0, 9)], kernel=kernel) == 0
    assert r([(0x30, 0, 0, 40), (0x06, 0, 0, 9)], kernel=kernel) == 0
    assert r([(0x30, 0, 0, 0), (0x06, 0, 0, 9)], packet=b"", kernel=kernel) == 0
    assert r([(0x20, 0, 0, 0x7FFFFFFF), (0x06, 0, 0, 9)], kernel=kernel) == 0


@pytest.mark.parametrize("kernel", ["2.6.33", "6.18", "libpcap"])
def test_ind_loads(kernel: str) -> None:
    assert r([(0x01, 0, 0, 4), (0x48, 0, 0, 2), RETA], kernel=kernel) == 0x0708
    assert r([(0x01, 0, 0, 38), (0x48, 0, 0, 0), RETA], kernel=kernel) == 0x2728
    assert r([(0x01, 0, 0, 38), (0x48, 0, 0, 1), (0x06, 0, 0, 9)], kernel=kernel) == 0


def test_ind_offset_wraps_in_the_kernel_not_in_libpcap() -> None:
    prog = [(0x01, 0, 0, U32), (0x50, 0, 0, 3), RETA]  # X + k = 2**32 + 2
    assert r(prog, kernel="2.6.33") == 3  # int arithmetic: offset 2
    assert r(prog, kernel="6.18") == 3
    assert r(prog, kernel="libpcap") == 0 == pcap_oracle(prog, PKT)


@pytest.mark.parametrize("kernel", ["2.6.33", "6.18", "libpcap"])
def test_len_imm_mem_and_misc(kernel: str) -> None:
    assert r([(0x80, 0, 0, 0), RETA], kernel=kernel) == 40
    assert r([(0x81, 0, 0, 0), (0x87, 0, 0, 0), RETA], kernel=kernel) == 40
    assert r([(0x00, 0, 0, 0xDEADBEEF), RETA], kernel=kernel) == 0xDEADBEEF
    assert r([(0x01, 0, 0, 77), (0x87, 0, 0, 0), RETA], kernel=kernel) == 77
    assert r([(0x00, 0, 0, 5), (0x07, 0, 0, 0), (0x00, 0, 0, 0), (0x87, 0, 0, 0), RETA],
             kernel=kernel) == 5
    prog = [(0x00, 0, 0, 11), (0x02, 0, 0, 15), (0x01, 0, 0, 22), (0x03, 0, 0, 0),
            (0x61, 0, 0, 15), (0x60, 0, 0, 0), (0x0C, 0, 0, 0), RETA]  # 22 + 11
    assert r(prog, kernel=kernel) == 33
    assert r([(0x00, 0, 0, 7), (0x06, 0, 0, 99)], kernel=kernel) == 99


def test_len_is_wirelen_when_given() -> None:
    prog = [(0x80, 0, 0, 0), RETA]
    assert r(prog, kernel="libpcap", wirelen=1514) == 1514 == pcap_oracle(prog, PKT, 1514)
    assert r(prog, kernel="libpcap") == 40
    # loads are still checked against the captured bytes
    assert r([(0x30, 0, 0, 100), (0x06, 0, 0, 1)], kernel="libpcap", wirelen=1514) == 0


@pytest.mark.parametrize("kernel", ["2.6.33", "6.18", "libpcap"])
def test_ldx_msh(kernel: str) -> None:
    pkt = bytes(14) + b"\x46" + bytes(10)
    assert r([(0xB1, 0, 0, 14), (0x87, 0, 0, 0), RETA], pkt, kernel) == 24
    assert r([(0xB1, 0, 0, 25), (0x06, 0, 0, 1)], pkt, kernel) == 0  # out of bounds


def test_uninitialised_scratch_reads_zero_before_2_6_38() -> None:
    prog = [(0x00, 0, 0, 5), (0x60, 0, 0, 9), (0x04, 0, 0, 1), RETA]
    assert r(prog, kernel="2.6.33") == 1
    assert r(prog, kernel="2.6.37") == 1


# --- ALU ----------------------------------------------------------------------------------
ALU_CASES = [
    # (op, A, operand, expected)
    (0x00, 0xFFFFFFFF, 2, 1),  # add wraps
    (0x10, 0, 1, 0xFFFFFFFF),  # sub wraps
    (0x20, 0x10001, 0x10001, 0x00020001),  # mul keeps 32 bits
    (0x30, 100, 7, 14),
    (0x40, 0xF0, 0x0F, 0xFF),
    (0x50, 0xF0F0, 0x0FF0, 0x00F0),
    (0x60, 0x80000001, 1, 2),
    (0x70, 0x80000000, 31, 1),
]


@pytest.mark.parametrize("op, a, v, want", ALU_CASES)
@pytest.mark.parametrize("kernel", ["2.6.33", "3.13", "6.18", "libpcap"])
def test_alu_k_and_x(op: int, a: int, v: int, want: int, kernel: str) -> None:
    assert r([(0x00, 0, 0, a), (0x04 | op, 0, 0, v), RETA], kernel=kernel) == want
    assert r([(0x00, 0, 0, a), (0x01, 0, 0, v), (0x0C | op, 0, 0, 0), RETA],
             kernel=kernel) == want


@pytest.mark.parametrize("kernel", ["3.7", "6.18", "libpcap"])
def test_mod_xor_neg(kernel: str) -> None:
    assert r([(0x00, 0, 0, 100), (0x94, 0, 0, 7), RETA], kernel=kernel) == 2
    assert r([(0x00, 0, 0, 100), (0x01, 0, 0, 7), (0x9C, 0, 0, 0), RETA], kernel=kernel) == 2
    assert r([(0x00, 0, 0, 0xFF00), (0xA4, 0, 0, 0x0FF0), RETA], kernel=kernel) == 0xF0F0
    assert r([(0x00, 0, 0, 1), (0x84, 0, 0, 0), RETA], kernel=kernel) == 0xFFFFFFFF
    assert r([(0x00, 0, 0, 0), (0x84, 0, 0, 0), RETA], kernel=kernel) == 0


@pytest.mark.parametrize("kernel", ["2.6.33", "3.7", "6.18", "libpcap"])
def test_division_by_x_zero_returns_0(kernel: str) -> None:
    assert r([(0x00, 0, 0, 7), (0x3C, 0, 0, 0), (0x06, 0, 0, 99)], kernel=kernel) == 0
    if kernel != "2.6.33":
        assert r([(0x00, 0, 0, 7), (0x9C, 0, 0, 0), (0x06, 0, 0, 99)], kernel=kernel) == 0


def _reciprocal(a: int, k: int) -> int:
    """cbpf-versions §2.3: R = ((2**32 + k - 1) div k) mod 2**32; A' = (A * R) >> 32."""
    rec = (((1 << 32) + k - 1) // k) % (1 << 32)
    return (a * rec) >> 32


@pytest.mark.parametrize("a, k", [(1000, 1), (4294967291, 7), (0xFFFFFFFF, 3), (12345, 10),
                                  (0xFFFFFFFF, 0xFFFFFFFF)])
def test_div_k_reciprocal_era(a: int, k: int) -> None:
    prog = [(0x00, 0, 0, a), (0x34, 0, 0, k), RETA]
    for kernel in ("2.6.33", "2.6.37", "3.13", "6.18", "libpcap"):
        assert r(prog, kernel=kernel) == a // k
    for kernel in ("2.6.38", "3.0", "3.12"):
        assert r(prog, kernel=kernel) == _reciprocal(a, k)


def test_reciprocal_quirks_by_hand() -> None:
    assert r([(0x00, 0, 0, 1000), (0x34, 0, 0, 1), RETA], kernel="3.0") == 0  # A/1 == 0
    # 4294967291 = 7 * 613566755 + 6: one too high
    assert r([(0x00, 0, 0, 4294967291), (0x34, 0, 0, 7), RETA], kernel="3.0") == 613566756
    # MOD K stays exact in the reciprocal era
    assert r([(0x00, 0, 0, 4294967291), (0x94, 0, 0, 7), RETA], kernel="3.7") == 6


@pytest.mark.parametrize("count", [31, 32, 33, 63, 255, 0x7FFFFFFF])
def test_shift_counts(count: int) -> None:
    a = 0x80000401
    lsh_k = [(0x00, 0, 0, a), (0x64, 0, 0, count), RETA]
    rsh_k = [(0x00, 0, 0, a), (0x74, 0, 0, count), RETA]
    lsh_x = [(0x00, 0, 0, a), (0x01, 0, 0, count), (0x6C, 0, 0, 0), RETA]
    rsh_x = [(0x00, 0, 0, a), (0x01, 0, 0, count), (0x7C, 0, 0, 0), RETA]
    masked = count & 31
    for kernel in ("2.6.33", "4.4"):  # x86: the count is masked to 5 bits
        assert r(lsh_k, kernel=kernel) == (a << masked) & U32
        assert r(rsh_k, kernel=kernel) == a >> masked
    for kernel in ("2.6.33", "6.18"):
        assert r(lsh_x, kernel=kernel) == (a << masked) & U32
        assert r(rsh_x, kernel=kernel) == a >> masked
    # libpcap: X >= 32 gives 0; K is masked (the compiled C), as libpcap itself says
    want_x = ((a << count) & U32 if count < 32 else 0, a >> count if count < 32 else 0)
    assert (r(lsh_x, kernel="libpcap"), r(rsh_x, kernel="libpcap")) == want_x
    assert r(lsh_x, kernel="libpcap") == pcap_oracle(lsh_x, PKT)
    assert r(rsh_x, kernel="libpcap") == pcap_oracle(rsh_x, PKT)
    assert r(lsh_k, kernel="libpcap") == pcap_oracle(lsh_k, PKT) == (a << masked) & U32
    assert r(rsh_k, kernel="libpcap") == pcap_oracle(rsh_k, PKT) == a >> masked


# --- jumps and returns ---------------------------------------------------------------------
@pytest.mark.parametrize("op, a, v, taken", [
    (0x10, 5, 5, True), (0x10, 5, 6, False),
    (0x20, 6, 5, True), (0x20, 5, 5, False),
    (0x30, 5, 5, True), (0x30, 4, 5, False),
    (0x40, 6, 2, True), (0x40, 6, 1, False),
    (0x20, 0xFFFFFFFF, 1, True),  # unsigned
])
def test_conditional_jumps(op: int, a: int, v: int, taken: bool) -> None:
    tail = [(0x06, 0, 0, 111), (0x06, 0, 0, 222)]
    want = 222 if taken else 111
    assert r([(0x00, 0, 0, a), (0x05 | op, 1, 0, v)] + tail) == want
    assert r([(0x00, 0, 0, a), (0x01, 0, 0, v), (0x0D | op, 1, 0, 0)] + tail) == want


def test_ja_and_step_counts() -> None:
    prog = [Insn(0x05, 0, 0, 2), Insn(0x06, 0, 0, 1), Insn(0x06, 0, 0, 2), Insn(0x06, 0, 0, 3)]
    assert execute(prog, PKT, None, semantics("2.6.33")) == (3, 2)
    # a failing load counts itself and ends the run
    prog = [Insn(0x00, 0, 0, 1), Insn(0x20, 0, 0, 100), Insn(0x06, 0, 0, 1)]
    assert execute(prog, PKT, None, semantics("6.18")) == (0, 2)


def test_return_values_are_u32() -> None:
    assert r([(0x06, 0, 0, 0xFFFFFFFF)]) == 0xFFFFFFFF
    assert r([(0x00, 0, 0, 0x80000000), RETA]) == 0x80000000


def test_libpcap_backward_jumps() -> None:
    loop = [Insn(0x00, 0, 0, 0), Insn(0x04, 0, 0, 1), Insn(0x15, 1, 0, 5),
            Insn(0x05, 0, 0, U32 - 2), RETA]  # add until A == 5
    assert execute(loop, PKT, None, semantics("libpcap")) == (5, 2 + 5 * 2 + 4 * 1)
    assert r(loop, kernel="libpcap") == pcap_oracle(loop, PKT, allow_backward=True) == 5
    with pytest.raises(FilterError) as err:
        r([Insn(0x05, 0, 0, U32), RETA], kernel="libpcap")  # ja -1: for ever
    assert err.value.errno == "ELOOP" and err.value.pc == 0


# --- negative offsets ------------------------------------------------------------------------
def test_net_and_ll_offsets() -> None:
    meta = SkbMeta(network_offset=14)
    for kernel in ("2.6.33", "6.18"):
        assert r([(0x30, 0, 0, NET), RETA], meta=meta, kernel=kernel) == 15
        assert r([(0x28, 0, 0, NET + 2), RETA], meta=meta, kernel=kernel) == 0x1112
        assert r([(0x30, 0, 0, LL), RETA], meta=meta, kernel=kernel) == 1
        assert r([(0x20, 0, 0, LL + 36), RETA], meta=meta, kernel=kernel) == 0x25262728
        assert r([(0x30, 0, 0, LL - 1), (0x06, 0, 0, 1)], kernel=kernel) == 0
        assert r([(0x30, 0, 0, NET + 26), (0x06, 0, 0, 1)], meta=meta, kernel=kernel) == 0
        # IND reaches them too: X + k negative
        assert r([(0x01, 0, 0, 3), (0x50, 0, 0, NET), RETA], meta=meta,
                 kernel=kernel) == 18
    assert r([(0x30, 0, 0, NET), RETA], meta=SkbMeta(network_offset=0)) == 1


def test_negative_offsets_across_the_end_by_era() -> None:
    # a 4-byte LL load starting 2 bytes before the end: <= 2.6.37 checks the first byte only
    prog = [(0x20, 0, 0, LL + 38), RETA]
    assert r(prog, kernel="2.6.33") == 0x27280000  # past the end reads as 0 here
    assert r(prog, kernel="2.6.37") == 0x27280000
    assert r(prog, kernel="2.6.38") == 0
    assert r([(0x20, 0, 0, LL + 40), (0x06, 0, 0, 1)], kernel="2.6.33") == 0
    assert r([(0x20, 0, 0, NET + 25), RETA], meta=SkbMeta(network_offset=14),
             kernel="2.6.33") == 0x28000000


def test_libpcap_has_no_negative_offsets() -> None:
    for k in (NET, LL, AD, AD + 44, AD + 48):
        for code in (0x20, 0x28, 0x30):
            prog = [(code, 0, 0, k), (0x06, 0, 0, 9)]
            assert r(prog, kernel="libpcap") == 0 == pcap_oracle(prog, PKT)


# --- ancillary data --------------------------------------------------------------------------
META = SkbMeta(protocol=0x86DD, pkt_type=3, ifindex=7, mark=0xCAFEBABE, queue_mapping=5,
               hatype=772, rxhash=0x12345678, cpu=1, vlan_tci=0x1234, vlan_present=1,
               vlan_proto=0x88A8, random_seed=42)


@pytest.mark.parametrize("off, value, since", [
    (0, 0x86DD, "2.6.33"), (4, 3, "2.6.33"), (8, 7, "2.6.33"), (20, 0xCAFEBABE, "2.6.33"),
    (24, 5, "2.6.33"), (28, 772, "2.6.35"), (32, 0x12345678, "2.6.38"), (36, 1, "2.6.38"),
    (60, 0x88A8, "4.1"),
])
@pytest.mark.parametrize("width", [0x20, 0x28, 0x30])
def test_ancillary_field_values(off: int, value: int, since: str, width: int) -> None:
    prog = [(width, 0, 0, AD + off), RETA]
    assert r(prog, kernel=since, meta=META) == value  # every width gives the whole value
    assert r(prog, kernel="6.18", meta=META) == value


def test_ancillary_appears_with_its_release() -> None:
    hatype = [(0x20, 0, 0, AD + 28), (0x04, 0, 0, 1), RETA]
    assert r(hatype, kernel="2.6.34", meta=META) == 0  # unknown offset: drop
    assert r(hatype, kernel="2.6.35", meta=META) == 773
    rxhash = [(0x20, 0, 0, AD + 32), (0x04, 0, 0, 1), RETA]
    assert r(rxhash, kernel="2.6.37", meta=META) == 0
    assert r(rxhash, kernel="2.6.38", meta=META) == 0x12345679
    # unknown offsets 2.6.38 - 3.9 pass the checker and drop at run time
    assert r([(0x20, 0, 0, AD + 64), (0x06, 0, 0, 1)], kernel="3.9", meta=META) == 0


def test_ancillary_through_ind_only_before_2_6_38() -> None:
    prog = [(0x01, 0, 0, AD), (0x48, 0, 0, 20), (0x04, 0, 0, 1), RETA]  # X + 20 = mark
    assert r(prog, kernel="2.6.33", meta=META) == 0xCAFEBABF
    assert r(prog, kernel="2.6.37", meta=META) == 0xCAFEBABF
    assert r(prog, kernel="2.6.38", meta=META) == 0
    assert r(prog, kernel="6.18", meta=META) == 0
    # LDX MSH never reaches ancillary data
    assert r([(0xB1, 0, 0, AD), (0x06, 0, 0, 1)], kernel="2.6.33", meta=META) == 0


def test_alu_xor_x() -> None:
    prog = [(0x00, 0, 0, 0xF0F0), (0x01, 0, 0, 0x0FF0), (0x20, 0, 0, AD + 40), RETA]
    assert r(prog, kernel="3.5") == 0xFF00
    assert r(prog, kernel="3.4") == 0  # unknown: drop


def test_vlan_by_era() -> None:
    tag = [(0x20, 0, 0, AD + 44), RETA]
    present = [(0x20, 0, 0, AD + 48), RETA]
    meta = SkbMeta(vlan_tci=0x1234, vlan_present=1, vlan_proto=0x8100)  # DEI bit 0x1000 set
    assert r(tag, kernel="3.8", meta=meta) == 0x0234
    assert r(tag, kernel="4.20", meta=meta) == 0x0234
    assert r(tag, kernel="5.0", meta=meta) == 0x1234
    for kernel in ("3.8", "5.0", "6.2"):
        assert r(present, kernel=kernel, meta=meta) == 1
        assert r(present, kernel=kernel, meta=SkbMeta(vlan_tci=0x1234)) == 0
        assert r(tag, kernel=kernel, meta=SkbMeta(vlan_tci=0x1234)) == 0
    odd = SkbMeta(vlan_tci=0, vlan_present=1, vlan_proto=0)
    assert r(present, kernel="6.1", meta=odd) == 1
    assert r(present, kernel="6.2", meta=odd) == 0
    assert r(present, kernel="3.7", meta=meta) == 0  # not there yet: drop


def test_random_is_a_reproducible_stream() -> None:
    prog = [(0x20, 0, 0, AD + 56), (0x02, 0, 0, 0), (0x20, 0, 0, AD + 56), (0x61, 0, 0, 0),
            (0xAC, 0, 0, 0), RETA]  # first ^ second
    first = [(0x20, 0, 0, AD + 56), RETA]
    a = r(first, kernel="3.16", meta=SkbMeta(random_seed=1))
    assert a == r(first, kernel="6.18", meta=SkbMeta(random_seed=1))
    assert a != r(first, kernel="3.16", meta=SkbMeta(random_seed=2))
    assert r(prog, kernel="3.16", meta=SkbMeta(random_seed=1)) != 0  # two draws differ
    values = {r(first, kernel="3.16", meta=SkbMeta(random_seed=s)) for s in range(200)}
    assert len(values) == 200 and max(values) > 1 << 31


def _nla(atype: int, body: bytes) -> bytes:
    """A netlink attribute, host order (x86: little-endian), padded to 4."""
    return struct.pack("<HH", 4 + len(body), atype) + body + bytes(-len(body) % 4)


NL = _nla(1, b"abcde") + _nla(2, _nla(7, b"xy") + _nla(9, b"zzzz")) + _nla(0x4003, b"q")


def test_nlattr_walk() -> None:
    find = [(0x01, 0, 0, 2), (0x20, 0, 0, AD + 12), RETA]  # A = 0, X = type
    assert r(find, NL) == 12  # 12 bytes of type 1 (5 + pad), then type 2
    assert r([(0x01, 0, 0, 3), (0x20, 0, 0, AD + 12), RETA], NL) == 32  # flag bits ignored
    assert r([(0x01, 0, 0, 1), (0x20, 0, 0, AD + 12), RETA], NL) == 0
    assert r([(0x01, 0, 0, 8), (0x20, 0, 0, AD + 12), RETA], NL) == 0  # not found: A = 0
    # nested: inside the attribute at A = 12, type 9 is the second inner one
    nest = [(0x00, 0, 0, 12), (0x01, 0, 0, 9), (0x20, 0, 0, AD + 16), RETA]
    assert r(nest, NL) == 12 + 4 + 8
    assert r(nest, NL, kernel="6.18") == 24


def test_nlattr_failures_by_era() -> None:
    past = [(0x00, 0, 0, 100), (0x20, 0, 0, AD + 12), (0x04, 0, 0, 1), RETA]  # A > len - 4
    assert r(past, NL, kernel="3.14") == 0  # the interpreter drops
    assert r(past, NL, kernel="3.15") == 1  # the helper returns A = 0
    tiny = [(0x20, 0, 0, AD + 12), (0x04, 0, 0, 1), RETA]
    assert r(tiny, b"\x01\x02", kernel="3.14") == 1  # len < 4: nothing found, A = 0
    assert r(tiny, b"\x01\x02", kernel="3.15") == 1
    # a nested attribute claiming more than the packet: refused from 3.15 only
    bad = struct.pack("<HH", 200, 2) + _nla(7, b"ab")
    nest = [(0x01, 0, 0, 7), (0x20, 0, 0, AD + 16), RETA]
    assert r(nest, bad, kernel="3.14") == 4
    assert r(nest, bad, kernel="3.15") == 0


def _ipv4(proto: int, ihl: int = 5, frag: int = 0, l4: bytes = bytes(40)) -> bytes:
    ip = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, 20 + len(l4), 0, frag, 64, proto, 0,
                     bytes(4), bytes(4)) + bytes(max(0, ihl * 4 - 20))
    return bytes(12) + b"\x08\x00" + ip + l4


@pytest.mark.parametrize("packet, protocol, want", [
    (_ipv4(6, l4=bytes(12) + b"\x50" + bytes(27)), 0x0800, 14 + 20 + 20),
    (_ipv4(6, l4=bytes(12) + b"\x80" + bytes(27)), 0x0800, 14 + 20 + 32),
    (_ipv4(6, l4=bytes(12) + b"\x20" + bytes(27)), 0x0800, 14 + 20 + 20),  # doff < 5
    (_ipv4(6, ihl=6, l4=bytes(12) + b"\x50" + bytes(27)), 0x0800, 14 + 24 + 20),
    (_ipv4(17), 0x0800, 14 + 20 + 8),
    (_ipv4(1), 0x0800, 14 + 20 + 8),
    (_ipv4(132), 0x0800, 14 + 20 + 12),
    (_ipv4(47), 0x0800, 14 + 20),  # no L4 header known
    (_ipv4(17, frag=0x0010), 0x0800, 14 + 20),  # a later fragment: no L4 header
    (_ipv4(17, frag=0x2000), 0x0800, 14 + 20 + 8),  # the first fragment has one
    (_ipv4(6, l4=bytes(5)), 0x0800, 14 + 20),  # doff not captured
    (_ipv4(6, ihl=4), 0x0800, 0),  # bad IHL: dissection fails
    (_ipv4(6)[:30], 0x0800, 0),  # truncated IP header
    (bytes(12) + b"\x86\xdd" + struct.pack("!IHBB", 0x60000000, 8, 17, 64) + bytes(40),
     0x86DD, 14 + 40 + 8),
    (bytes(12) + b"\x86\xdd" + struct.pack("!IHBB", 0x60000000, 8, 0, 64) + bytes(32)
     + bytes([17, 0]) + bytes(6) + bytes(8), 0x86DD, 14 + 40 + 8 + 8),  # hop-by-hop
    (bytes(14) + bytes(28), 0x0806, 14),  # ARP: the dissector stops at the network header
    (bytes(40), 0x1234, 0),
])
def test_pay_offset(packet: bytes, protocol: int, want: int) -> None:
    prog = [(0x20, 0, 0, AD + 52), RETA]
    meta = SkbMeta(protocol=protocol, network_offset=14)
    assert r(prog, packet, kernel="3.10", meta=meta) == want
    assert r(prog, packet, kernel="6.18", meta=meta) == want
    assert r([(0x20, 0, 0, AD + 52), (0x06, 0, 0, 1)], packet, "3.9", meta) == 0  # unknown
