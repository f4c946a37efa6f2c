"""prove_equivalent: equal programs are proved equal, different ones give a witness that
lsfsim's interpreter and libpcap's bpf_filter both confirm.

Oracles: libpcap's optimizer (its output must be equivalent to its input), libpcap's
bpf_filter on the witness, the reference interpreter on witnesses and on random
packets, and small programs whose equivalence is argued by hand in each test.
"""

from __future__ import annotations

import dataclasses
import random

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from lsfsim.bpf import Program, pcapc
from lsfsim.bpf.equiv import (
    Equivalent,
    NotModelled,
    SolverTimeout,
    Witness,
    evaluator,
    prove_equivalent,
)
from lsfsim.bpf.isa import Insn
from tests.bpf.strategies import metas, packets, programs

# The lecture's figure "Example of a BPF program for host optimus" (tcpdump 4.0.0 on
# Mac OS X 10.6, snaplen 65535), as printed there.
LECTURE = """\
ldh [12]
jeq #0x800 jt 2 jf 6
ld [26]
jeq #0xd0448b59 jt 12 jf 4
ld [30]
jeq #0xd0448b59 jt 12 jf 13
jeq #0x806 jt 8 jf 7
jeq #0x8035 jt 8 jf 13
ld [28]
jeq #0xd0448b59 jt 12 jf 10
ld [38]
jeq #0xd0448b59 jt 12 jf 13
ret #65535
ret #0
"""


def asm(text: str) -> list[Insn]:
    return list(Program.parse(text, "bpf_asm").insns)


def expr(text: str, **kw) -> list[Insn]:
    return pcapc.compile_expression(text, **kw)


@pytest.mark.parametrize("expression", [
    "tcp port 80",
    "host 208.68.139.89",
    "udp and not port 53",
    "arp or (ip and icmp)",
    "ip[2:2] > 100 and tcp[13] & 2 != 0",
    "tcp port 80 and (((ip[2:2] - ((ip[0]&0xf)<<2)) - ((tcp[12]&0xf0)>>2)) != 0)",
    "ip6 and tcp[13] & 2 != 0 or udp",
    "net 10.0.0.0/8 and portrange 1000-2000",
])
def test_libpcap_optimizer_keeps_the_meaning(expression: str) -> None:
    optimized, plain = expr(expression), expr(expression, optimize=False)
    assert optimized != plain  # the optimizer did change the code
    result = prove_equivalent(optimized, plain)
    assert isinstance(result, Equivalent), result


def test_tcp_port_80_is_not_tcp_dst_port_80() -> None:
    old, new = expr("tcp port 80"), expr("tcp dst port 80")
    result = prove_equivalent(old, new)
    assert isinstance(result, Witness)
    pkt = result.packet
    assert len(pkt) <= 1514
    # our interpreter and libpcap's C bpf_filter both tell the programs apart on it
    assert Program(old).run(pkt) != Program(new).run(pkt)
    assert (result.value_a, result.value_b) == (Program(old).run(pkt), Program(new).run(pkt))
    assert pcapc.bpf_filter(old, pkt) != pcapc.bpf_filter(new, pkt)
    assert result.libpcap == (pcapc.bpf_filter(old, pkt), pcapc.bpf_filter(new, pkt))
    # the only packets that differ: TCP from port 80 to another port
    assert result.value_a == 262144 and result.value_b == 0
    ihl = (pkt[14] & 0x0F) * 4
    assert pkt[12:14] in (b"\x08\x00", b"\x86\xdd")
    if pkt[12:14] == b"\x08\x00":
        assert pkt[23] == 6 and pkt[14 + ihl:16 + ihl] == b"\x00\x50"


def test_lecture_program_against_todays_libpcap() -> None:
    lecture = Program.parse(LECTURE, "tcpdump-d").insns
    today = expr("host 208.68.139.89")  # default snaplen, as `lsfsim bpf compile` uses
    result = prove_equivalent(lecture, today)
    # the same packets are accepted, but today's libpcap keeps 262144 bytes, not 65535
    assert isinstance(result, Witness)
    assert (result.value_a, result.value_b) == (65535, 262144)
    assert Program(lecture).run(result.packet) == 65535
    assert pcapc.bpf_filter(today, result.packet) == 262144
    # with the lecture's snaplen, today's code means the same as the 2009 code
    result = prove_equivalent(lecture, expr("host 208.68.139.89", snaplen=65535))
    assert isinstance(result, Equivalent)


def test_out_of_bounds_load_returns_zero() -> None:
    # "ldb [100]" fails (program returns 0) exactly on packets shorter than 101 bytes
    old = asm("ldb [100]\nret #1")
    new = asm("ld len\njge #101, yes, no\nyes: ret #1\nno: ret #0")
    assert isinstance(prove_equivalent(old, new), Equivalent)
    off_by_one = asm("ld len\njge #100, yes, no\nyes: ret #1\nno: ret #0")
    result = prove_equivalent(old, off_by_one)
    assert isinstance(result, Witness) and len(result.packet) == 100


def test_division_by_zero_returns_zero() -> None:
    old = asm("ld len\ntax\nld #1000\ndiv x\nret a")
    new = asm("ld len\njeq #0, zero, nz\nzero: ret #0\nnz: tax\nld #1000\ndiv x\nret a")
    assert isinstance(prove_equivalent(old, new), Equivalent)
    # ... and modulo: 1000 % len is 1000 only for len > 1000; len == 0 returns 0
    mod = asm("ld len\ntax\nld #1000\nmod x\njeq #1000, yes, no\nyes: ret #1\nno: ret #0")
    never = asm("ret #0")
    assert isinstance(prove_equivalent(mod, never, kernel="3.10", max_len=1000), Equivalent)
    result = prove_equivalent(mod, never, kernel="3.10", max_len=1514)
    assert isinstance(result, Witness) and len(result.packet) == 1001  # the shortest


def test_ancillary_loads_are_free_inputs() -> None:
    by_field = asm("ld proto\njeq #0x800, yes, no\nyes: ret #-1\nno: ret #0")
    by_bytes = asm("ldh [12]\njeq #0x800, yes, no\nyes: ret #-1\nno: ret #0")
    result = prove_equivalent(by_field, by_bytes)
    # skb->protocol is not tied to the frame's bytes: a witness exists and verifies
    assert isinstance(result, Witness)
    assert "protocol" in result.meta_fields
    assert Program(by_field).run(result.packet, result.meta) != \
        Program(by_bytes).run(result.packet, result.meta)
    assert result.libpcap is None  # libpcap has no skb to read
    same = asm("ld #7\nld proto\nret a")
    assert isinstance(prove_equivalent(same, asm("ld proto\nret a")), Equivalent)
    assert isinstance(prove_equivalent(asm("ld proto\nret a"), asm("ld type\nret a")), Witness)


@pytest.mark.parametrize("kernel", ["3.10", "5.4", "6.2"])
def test_vlan_fields_by_era(kernel: str) -> None:
    # without a tag both return 0, with one both return the TCI
    tag = asm("ld vlan_avail\njeq #1, yes, no\nyes: ld vlan_tci\nret a\nno: ret #0")
    plain = asm("ld vlan_tci\nret a")
    assert isinstance(prove_equivalent(tag, plain, kernel=kernel), Equivalent)
    # 3.8-4.20 keep "present" in bit 0x1000 of vlan_tci: the DEI bit never shows
    dei = asm("ld vlan_tci\nand #0x1000\nret a")
    result = prove_equivalent(dei, asm("ret #0"), kernel=kernel)
    if kernel == "3.10":
        assert isinstance(result, Equivalent)
    else:
        assert isinstance(result, Witness) and result.value_a == 0x1000
        assert result.meta.vlan_tci & 0x1000


def test_witness_meta_verifies_for_vlan() -> None:
    result = prove_equivalent(asm("ld vlan_avail\nret a"), asm("ret #0"), kernel="6.18")
    assert isinstance(result, Witness)
    assert result.meta.vlan_present or result.meta.vlan_tci or result.meta.vlan_proto
    assert Program(asm("ld vlan_avail\nret a")).run(result.packet, result.meta, "6.18") == 1


def test_indirect_loads_below_the_network_header() -> None:
    # LD IND at X + k < 0 reads relative to the network header (SKF_NET_OFF): with X = 0,
    # [x - 0x100000] is byte 14.  On 2.6.33 only its first byte must be inside.
    old = asm("ldx #0\nldb [x + -1048576]\nret a")
    new = asm("ldb [14]\nret a")
    assert isinstance(prove_equivalent(old, new, kernel="2.6.33"), Equivalent)
    assert isinstance(prove_equivalent(old, new, kernel="4.5"), Equivalent)
    wide_old = asm("ldx #0\nldh [x + -1048576]\nret a")
    wide_new = asm("ldh [14]\nret a")
    # 2.6.33: a packet of exactly 15 bytes reads [14] and a 0; 4.5: it fails, as [14:2] does
    assert isinstance(prove_equivalent(wide_old, wide_new, kernel="4.5"), Equivalent)
    result = prove_equivalent(wide_old, wide_new, kernel="2.6.33")
    assert isinstance(result, Witness) and len(result.packet) == 15


def test_loads_relative_to_the_mac_header() -> None:
    # SKF_LL_OFF + n is byte n of the frame, by LD ABS and by LD IND
    assert isinstance(prove_equivalent(asm("ldb [-2097152]\nret a"), asm("ldb [0]\nret a")),
                      Equivalent)
    assert isinstance(prove_equivalent(asm("ldx #2\nldh [x + -2097154]\nret a"),
                                       asm("ldh [0]\nret a"), kernel="3.10"), Equivalent)


def test_not_modelled_and_timeout() -> None:
    with pytest.raises(NotModelled, match="rand"):
        prove_equivalent(asm("ld rand\nret a"), asm("ret #0"), kernel="3.16")
    with pytest.raises(NotModelled, match="backwards"):
        prove_equivalent(expr("ip protochain 6"), asm("ret #0"), kernel="libpcap")
    # factoring a 32-bit number: no answer in a millisecond
    factor = asm("ld [14]\ntax\nld [18]\nmul x\njeq #3999999979, l1, no\nl1: ld [14]\n"
                 "jgt #1, l2, no\nl2: ld [18]\njgt #1, l3, no\nl3: ret #1\nno: ret #0")
    with pytest.raises(SolverTimeout):
        prove_equivalent(factor, asm("ret #0"), timeout=0.001)


def test_refused_programs_and_bad_lengths() -> None:
    from lsfsim.bpf import FilterError

    with pytest.raises(FilterError):
        prove_equivalent(asm("ld #1\nmod #3\nret a"), asm("ret #0"), kernel="2.6.33")
    # an extension 2.6.33 does not know is a load that fails: the program returns 0
    assert isinstance(prove_equivalent(asm("ld vlan_tci\nret a"), asm("ret #0")), Equivalent)
    with pytest.raises(ValueError, match="max_len"):
        prove_equivalent(asm("ret #0"), asm("ret #0"), max_len=70000)


# --- properties -----------------------------------------------------------------------
def _mutant(prog: list[Insn], rnd: random.Random) -> list[Insn]:
    """The program with one instruction's k nudged: often equivalent, often not."""
    pc = rnd.randrange(len(prog))
    code, jt, jf, k = prog[pc]
    out = list(prog)
    out[pc] = Insn(code, jt, jf, (k + rnd.choice((1, -1, 0x100))) & 0xFFFFFFFF)
    return out


def _runs(prog: list[Insn], pkt: bytes, meta, kernel: str) -> int:
    return Program(prog).run(pkt, meta, kernel)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["2.6.33", "3.10", "6.18", "libpcap"]).flatmap(
    lambda k: st.tuples(st.just(k), programs(k, max_len=12), programs(k, max_len=12),
                        st.randoms(use_true_random=False))),
       st.lists(st.tuples(packets(0, 48), metas()), min_size=8, max_size=8))
def test_prover_agrees_with_the_interpreter(case, samples) -> None:
    kernel, a, b, rnd = case
    if rnd.random() < 0.5:
        b = _mutant(a, rnd)
    samples = [(p, dataclasses.replace(m, network_offset=14)) for p, m in samples]
    from lsfsim.bpf import FilterError

    try:
        Program(b).check(kernel)
    except FilterError:
        assume(False)
    try:
        result = prove_equivalent(a, b, kernel=kernel, max_len=48, timeout=20)
        same = prove_equivalent(a, a, kernel=kernel, max_len=48, timeout=20)
    except NotModelled:
        assume(False)
        return
    assert isinstance(same, Equivalent)
    if isinstance(result, Witness):
        assert len(result.packet) <= 48
        assert _runs(a, result.packet, result.meta, kernel) == result.value_a
        assert _runs(b, result.packet, result.meta, kernel) == result.value_b
        assert result.value_a != result.value_b
    else:
        for pkt, meta in samples:
            assert _runs(a, pkt, meta, kernel) == _runs(b, pkt, meta, kernel), (pkt, meta)


# --- the formulas, evaluated, against the interpreter -------------------------------------
def _check_formula(prog: list[Insn], formula, pkt: bytes, meta, kernel: str) -> None:
    assert formula(pkt, meta) == _runs(prog, pkt, meta, kernel), (kernel, prog, pkt.hex(), meta)


ALU = ["add", "sub", "mul", "div", "mod", "and", "or", "xor", "lsh", "rsh"]
JUMPS = ["jeq", "jgt", "jge", "jset"]
EDGES = [0, 1, 2, 7, 31, 32, 33, 100, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE, 0xFFFFFFFF]


@pytest.mark.parametrize("kernel", ["2.6.33", "3.10", "libpcap"])
def test_formula_of_every_alu_and_jump_on_edge_values(kernel: str) -> None:
    """A from [14], X from [18], both over edge values; every operation with K and X."""
    ops = ALU if kernel != "2.6.33" else [op for op in ALU if op not in ("mod", "xor")]
    shift_k = (1, 3, 31, 32) if kernel in ("2.6.33", "3.10", "libpcap") else (1, 3, 31)
    k_progs, x_progs = [], []
    for op in ops:
        x_progs.append(asm(f"ld [18]\ntax\nld [14]\n{op} x\nret a"))
        for k in shift_k if op in ("lsh", "rsh") else (1, 3, 32, 0x80000000):
            k_progs.append(asm(f"ld [14]\n{op} #{k}\nret a"))
    for op in JUMPS:
        x_progs.append(asm(f"ld [18]\ntax\nld [14]\n{op} x, yes, no\nyes: ret #1\nno: ret #2"))
        for k in (0, 7, 0x80000000):
            k_progs.append(asm(f"ld [14]\n{op} #{k}, yes, no\nyes: ret #1\nno: ret #2"))
    k_progs.append(asm("ld [14]\nneg\nret a"))
    for progs, xs in ((k_progs, (0,)), (x_progs, (0, 1, 31, 32, 0x80000000))):
        for prog in progs:
            formula = evaluator(prog, kernel)
            for a in EDGES + [x + d for x in (7, 0x80000000) for d in (-1, 1)]:
                for x in xs:
                    pkt = bytes(14) + a.to_bytes(4, "big") + x.to_bytes(4, "big")
                    _check_formula(prog, formula, pkt, None, kernel)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["2.6.33", "2.6.37", "3.0", "3.10", "4.5", "6.18", "libpcap"]).flatmap(
    lambda k: st.tuples(st.just(k), programs(k, max_len=16))),
       st.lists(st.tuples(packets(0, 64), metas()), min_size=6, max_size=6))
def test_formula_matches_the_interpreter(case, samples) -> None:
    kernel, prog = case
    try:
        formula = evaluator(prog, kernel)
    except NotModelled:
        assume(False)
        return
    for pkt, meta in samples:
        _check_formula(prog, formula, pkt, dataclasses.replace(meta, network_offset=14), kernel)
