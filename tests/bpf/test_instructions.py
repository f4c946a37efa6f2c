"""Decoded instructions: decode and assemble are inverse on every opcode a kernel runs,
each class matches the kernel's case label, and uses_skb_meta says which programs read
sk_buff fields."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from lsfsim.bpf import SkbMeta, uses_skb_meta
from lsfsim.bpf.formats import canonical
from lsfsim.bpf.instructions import (
    TAX,
    TXA,
    ALUOp,
    ALUOpConstant,
    ALUOpX,
    Invalid,
    Jump,
    JumpIf,
    JumpIfX,
    JumpTest,
    LoadAbsolute,
    LoadConstant,
    LoadIndirect,
    LoadLength,
    LoadMemShift,
    LoadScratch,
    NegateA,
    RetA,
    RetConstant,
    StoreScratch,
    assemble,
    decode,
    successors,
)
from lsfsim.bpf.isa import (
    BPF_A,
    BPF_ABS,
    BPF_ALU,
    BPF_B,
    BPF_DIV,
    BPF_H,
    BPF_IMM,
    BPF_IND,
    BPF_JA,
    BPF_JGT,
    BPF_JMP,
    BPF_JSET,
    BPF_K,
    BPF_LD,
    BPF_LDX,
    BPF_LEN,
    BPF_MEM,
    BPF_MISC,
    BPF_MSH,
    BPF_NEG,
    BPF_RET,
    BPF_ST,
    BPF_STX,
    BPF_TAX,
    BPF_TXA,
    BPF_W,
    BPF_X,
    BPF_XOR,
    CODES_2_6_33,
    CODES_MOD_XOR,
    Insn,
)
from tests.bpf.strategies import packets, programs

KNOWN = sorted(CODES_2_6_33 | CODES_MOD_XOR)


# The kernel's case labels (net/core/filter.c) and what each decodes to.
CASES = [
    (BPF_LD | BPF_W | BPF_ABS, 0, 0, 12, LoadAbsolute(4, 12)),
    (BPF_LD | BPF_H | BPF_ABS, 0, 0, 12, LoadAbsolute(2, 12)),
    (BPF_LD | BPF_B | BPF_IND, 0, 0, 14, LoadIndirect(1, 14)),
    (BPF_LD | BPF_W | BPF_LEN, 0, 0, 0, LoadLength("A")),
    (BPF_LDX | BPF_W | BPF_LEN, 0, 0, 0, LoadLength("X")),
    (BPF_LD | BPF_IMM, 0, 0, 7, LoadConstant("A", 7)),
    (BPF_LDX | BPF_W | BPF_IMM, 0, 0, 7, LoadConstant("X", 7)),
    (BPF_LD | BPF_MEM, 0, 0, 3, LoadScratch("A", 3)),
    (BPF_LDX | BPF_W | BPF_MEM, 0, 0, 3, LoadScratch("X", 3)),
    (BPF_LDX | BPF_B | BPF_MSH, 0, 0, 14, LoadMemShift(14)),
    (BPF_ST, 0, 0, 5, StoreScratch("A", 5)),
    (BPF_STX, 0, 0, 5, StoreScratch("X", 5)),
    (BPF_ALU | BPF_DIV | BPF_K, 0, 0, 3, ALUOpConstant(ALUOp.DIV, 3)),
    (BPF_ALU | BPF_XOR | BPF_X, 0, 0, 0, ALUOpX(ALUOp.XOR)),
    (BPF_ALU | BPF_NEG, 0, 0, 0, NegateA()),
    (BPF_JMP | BPF_JA, 0, 0, 4, Jump(4)),
    (BPF_JMP | BPF_JGT | BPF_K, 1, 2, 9, JumpIf(JumpTest.JGT, 9, 1, 2)),
    (BPF_JMP | BPF_JSET | BPF_X, 1, 2, 0, JumpIfX(JumpTest.JSET, 1, 2)),
    (BPF_RET | BPF_K, 0, 0, 96, RetConstant(96)),
    (BPF_RET | BPF_A, 0, 0, 0, RetA()),
    (BPF_MISC | BPF_TAX, 0, 0, 0, TAX()),
    (BPF_MISC | BPF_TXA, 0, 0, 0, TXA()),
]


def test_kernel_case_labels() -> None:
    for code, jt, jf, k, want in CASES:
        assert decode(Insn(code, jt, jf, k)) == want, hex(code)
        assert assemble(want) == Insn(code, jt, jf, k)
    assert {code for code, *_ in CASES} <= set(KNOWN)


def test_every_known_code_round_trips() -> None:
    for code in KNOWN:
        insn = Insn(code, 3, 4, 0x11223344)
        ins = decode(insn)
        assert not isinstance(ins, Invalid)
        assert assemble(ins) == canonical([insn])[0], hex(code)


def test_other_codes_are_invalid() -> None:
    known = set(KNOWN)
    for code in range(0x10000):
        if code not in known:
            assert decode(Insn(code, 0, 0, 0)) == Invalid(code)
    # RET X (0x0e) exists in bpf_asm's syntax, but no kernel runs it
    assert decode(Insn(BPF_RET | BPF_X, 0, 0, 0)) == Invalid(0x0E)


def test_ancillary_offset() -> None:
    assert LoadAbsolute(2, 0xFFFFF000).ancillary == 0
    assert LoadAbsolute(4, 0xFFFFF038).ancillary == 56
    assert LoadAbsolute(4, 0xFFFFEFFF).ancillary is None
    assert LoadAbsolute(4, 12).ancillary is None


def test_successors() -> None:
    assert successors(JumpIf(JumpTest.JEQ, 1, 2, 5), 10) == (13, 16)
    assert successors(JumpIfX(JumpTest.JEQ, 2, 2), 10) == (13,)
    assert successors(Jump(3), 1) == (5,)
    assert successors(RetA(), 4) == ()
    assert successors(LoadLength("A"), 4) == (5,)


def _reads_meta_by_running(insns: list[Insn], pkt: bytes) -> bool:
    """Does the verdict change when the sk_buff fields change?  (A witness that the
    program reads them; the converse need not hold on one packet.)"""
    from lsfsim.bpf import Program

    prog = Program(insns)
    plain = prog.run(pkt, SkbMeta(), "3.10")
    other = SkbMeta(protocol=0x86DD, pkt_type=3, ifindex=9, mark=7, queue_mapping=2,
                    hatype=772, rxhash=5, cpu=1, network_offset=0)
    return plain != prog.run(pkt, other, "3.10")


@settings(max_examples=150, deadline=None)
@given(programs("3.10"), packets(0, 80))
def test_uses_skb_meta_covers_every_program_that_reads_them(insns, pkt) -> None:
    if _reads_meta_by_running(insns, pkt):
        assert uses_skb_meta(insns)


def test_uses_skb_meta_cases() -> None:
    ld_abs = BPF_LD | BPF_H | BPF_ABS
    assert not uses_skb_meta([Insn(ld_abs, 0, 0, 12), Insn(BPF_RET | BPF_A, 0, 0, 0)])
    assert uses_skb_meta([Insn(ld_abs, 0, 0, 0xFFFFF000), Insn(BPF_RET | BPF_A, 0, 0, 0)])
    assert uses_skb_meta([Insn(BPF_LD | BPF_B | BPF_IND, 0, 0, 0), Insn(BPF_RET | BPF_A, 0, 0, 0)])
    assert uses_skb_meta([Insn(BPF_LD | BPF_W | BPF_ABS, 0, 0, 0xFFF00000),
                          Insn(BPF_RET | BPF_A, 0, 0, 0)])


@given(st.sampled_from(KNOWN), st.integers(0, 255), st.integers(0, 255),
       st.integers(0, 0xFFFFFFFF))
def test_decode_assemble_decode(code: int, jt: int, jf: int, k: int) -> None:
    ins = decode(Insn(code, jt, jf, k))
    assert decode(assemble(ins)) == ins


def test_names_are_the_kernels() -> None:
    assert ALUOp.XOR == BPF_XOR and JumpTest.JSET == BPF_JSET
    assert assemble(LoadConstant("X", 1)).code == BPF_LDX | BPF_W | BPF_IMM
    assert BPF_A == 0x10 and BPF_NEG == 0x80 and BPF_TAX == 0 and BPF_TXA == 0x80
    assert BPF_LEN == 0x80 and BPF_MEM == 0x60 and BPF_IMM == 0 and BPF_MSH == 0xA0
    assert BPF_IND == 0x40 and BPF_JA == 0 and BPF_ALU == 4


def test_uses_skb_meta_msh_below_the_network_header() -> None:
    # ldxb 4*([SKF_NET_OFF]&0xf) reads the first byte of the network header
    prog = [Insn(BPF_LDX | BPF_B | BPF_MSH, 0, 0, 0xFFF00000), Insn(BPF_MISC | BPF_TXA, 0, 0, 0),
            Insn(BPF_RET | BPF_A, 0, 0, 0)]
    assert uses_skb_meta(prog)
    assert _reads_meta_by_running(prog, bytes(14) + b"\x45" + bytes(19))
