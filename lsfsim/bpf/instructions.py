"""Classic BPF instructions decoded once into named classes.

A ``struct sock_filter`` packs what an instruction does into the bits of its
16-bit ``code``; the kernel's ``sk_run_filter`` (net/core/filter.c) unpacks them
with one ``case BPF_LD|BPF_W|BPF_ABS:`` label per opcode.  ``decode`` does the
same unpacking once, into one small class per kind of instruction, named as
golang.org/x/net/bpf names them (``LoadAbsolute``, ``JumpIf``, ``RetA`` ...),
so that the interpreter, the code generator and the tracer dispatch on names
instead of masks.  ``assemble`` is the inverse: ``assemble(decode(i))`` is
``i`` with the fields the instruction ignores set to zero (formats.canonical).

Decoding is strict: exactly the opcodes some kernel or libpcap runs
(isa.CODES_2_6_33 and the later BPF_MOD/BPF_XOR) decode to an instruction;
any other code becomes ``Invalid``, which the checker refuses before a program
runs.  Which codes a given kernel accepts is still check.py's business.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Literal

from lsfsim.bpf.isa import (
    BPF_A,
    BPF_ABS,
    BPF_ADD,
    BPF_ALU,
    BPF_AND,
    BPF_B,
    BPF_DIV,
    BPF_H,
    BPF_IMM,
    BPF_IND,
    BPF_JA,
    BPF_JEQ,
    BPF_JGE,
    BPF_JGT,
    BPF_JMP,
    BPF_JSET,
    BPF_K,
    BPF_LD,
    BPF_LDX,
    BPF_LEN,
    BPF_LSH,
    BPF_MEM,
    BPF_MISC,
    BPF_MOD,
    BPF_MSH,
    BPF_MUL,
    BPF_NEG,
    BPF_OR,
    BPF_RET,
    BPF_RSH,
    BPF_ST,
    BPF_STX,
    BPF_SUB,
    BPF_TAX,
    BPF_TXA,
    BPF_W,
    BPF_X,
    BPF_XOR,
    CODES_2_6_33,
    CODES_MOD_XOR,
    SKF_AD_OFF,
    Insn,
)

Register = Literal["A", "X"]
"""The two registers: the accumulator A and the index register X."""


class ALUOp(IntEnum):
    """BPF_OP of an ALU instruction (BPF_NEG is its own class, NegateA)."""

    ADD = BPF_ADD
    SUB = BPF_SUB
    MUL = BPF_MUL
    DIV = BPF_DIV
    OR = BPF_OR
    AND = BPF_AND
    LSH = BPF_LSH
    RSH = BPF_RSH
    MOD = BPF_MOD
    XOR = BPF_XOR


class JumpTest(IntEnum):
    """BPF_OP of a conditional jump: jump to jt if ``A <test> operand``, else to jf."""

    JEQ = BPF_JEQ
    JGT = BPF_JGT
    JGE = BPF_JGE
    JSET = BPF_JSET


_SIZE_BITS = {4: BPF_W, 2: BPF_H, 1: BPF_B}
_SIZE_BYTES = {BPF_W: 4, BPF_H: 2, BPF_B: 1}
_ANC_FIRST = SKF_AD_OFF & 0xFFFFFFFF  # 0xfffff000: where the ancillary range starts


# --- loads ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class LoadConstant:
    """BPF_LD|BPF_IMM, BPF_LDX|BPF_W|BPF_IMM: ``dst = k``."""

    dst: Register
    k: int


@dataclass(frozen=True, slots=True)
class LoadLength:
    """BPF_LD|BPF_W|BPF_LEN, BPF_LDX|BPF_W|BPF_LEN: ``dst = skb->len`` (libpcap: wire length)."""

    dst: Register


@dataclass(frozen=True, slots=True)
class LoadScratch:
    """BPF_LD|BPF_MEM, BPF_LDX|BPF_W|BPF_MEM: ``dst = M[n]``."""

    dst: Register
    n: int


@dataclass(frozen=True, slots=True)
class LoadAbsolute:
    """BPF_LD|{W,H,B}|BPF_ABS: ``A = size`` big-endian bytes at offset k.

    k is the u32 field; as the kernel's signed int a negative k reaches the
    NET/LL ranges or, from SKF_AD_OFF up, the ancillary data (``ancillary``).
    """

    size: int
    k: int

    @property
    def ancillary(self) -> int | None:
        """The ancillary offset ``k - SKF_AD_OFF`` when k is in SKF_AD_OFF's range."""
        return self.k - _ANC_FIRST if self.k >= _ANC_FIRST else None


@dataclass(frozen=True, slots=True)
class LoadIndirect:
    """BPF_LD|{W,H,B}|BPF_IND: ``A = size`` big-endian bytes at offset X + k."""

    size: int
    k: int


@dataclass(frozen=True, slots=True)
class LoadMemShift:
    """BPF_LDX|BPF_B|BPF_MSH: ``X = 4 * (pkt[k] & 0xf)``, the IPv4 header length."""

    k: int


# --- stores --------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class StoreScratch:
    """BPF_ST (src A), BPF_STX (src X): ``M[n] = src``."""

    src: Register
    n: int


# --- arithmetic ----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ALUOpConstant:
    """BPF_ALU|op|BPF_K: ``A = A op k``."""

    op: ALUOp
    k: int


@dataclass(frozen=True, slots=True)
class ALUOpX:
    """BPF_ALU|op|BPF_X: ``A = A op X``."""

    op: ALUOp


@dataclass(frozen=True, slots=True)
class NegateA:
    """BPF_ALU|BPF_NEG: ``A = -A``."""


# --- jumps ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Jump:
    """BPF_JMP|BPF_JA: skip k instructions (k is u32; libpcap's loops use a negative one)."""

    k: int


@dataclass(frozen=True, slots=True)
class JumpIf:
    """BPF_JMP|test|BPF_K: skip jt instructions if ``A test k``, else jf."""

    test: JumpTest
    k: int
    jt: int
    jf: int


@dataclass(frozen=True, slots=True)
class JumpIfX:
    """BPF_JMP|test|BPF_X: skip jt instructions if ``A test X``, else jf."""

    test: JumpTest
    jt: int
    jf: int


# --- returns and register moves ------------------------------------------------------
@dataclass(frozen=True, slots=True)
class RetConstant:
    """BPF_RET|BPF_K: return k (bytes of the packet to keep; 0 drops it)."""

    k: int


@dataclass(frozen=True, slots=True)
class RetA:
    """BPF_RET|BPF_A: return A."""


@dataclass(frozen=True, slots=True)
class TAX:
    """BPF_MISC|BPF_TAX: ``X = A``."""


@dataclass(frozen=True, slots=True)
class TXA:
    """BPF_MISC|BPF_TXA: ``A = X``."""


@dataclass(frozen=True, slots=True)
class Invalid:
    """A code no kernel runs: the checker refuses the program."""

    code: int


Instruction = (LoadConstant | LoadLength | LoadScratch | LoadAbsolute | LoadIndirect
               | LoadMemShift | StoreScratch | ALUOpConstant | ALUOpX | NegateA | Jump
               | JumpIf | JumpIfX | RetConstant | RetA | TAX | TXA | Invalid)

LOADS_A = (LoadConstant, LoadLength, LoadScratch, LoadAbsolute, LoadIndirect)
PACKET_LOADS = (LoadAbsolute, LoadIndirect, LoadMemShift)
"""The instructions that read packet bytes (or, through negative offsets, skb fields)."""
RETURNS = (RetConstant, RetA)
CONDITIONAL_JUMPS = (JumpIf, JumpIfX)


def _reg(cls: int) -> Register:
    return "A" if cls == BPF_LD else "X"


def decode(insn: Sequence[int]) -> Instruction:
    """The named instruction of one ``struct sock_filter`` (Invalid if no kernel runs it)."""
    code, jt, jf, k = insn
    if code not in _KNOWN:
        return Invalid(code)
    cls = code & 0x07
    if cls in (BPF_LD, BPF_LDX):
        mode = code & 0xE0
        if mode == BPF_IMM:
            return LoadConstant(_reg(cls), k)
        if mode == BPF_LEN:
            return LoadLength(_reg(cls))
        if mode == BPF_MEM:
            return LoadScratch(_reg(cls), k)
        if mode == BPF_MSH:
            return LoadMemShift(k)
        size = _SIZE_BYTES[code & 0x18]
        return LoadAbsolute(size, k) if mode == BPF_ABS else LoadIndirect(size, k)
    if cls in (BPF_ST, BPF_STX):
        return StoreScratch("A" if cls == BPF_ST else "X", k)
    if cls == BPF_ALU:
        if code & 0xF0 == BPF_NEG:
            return NegateA()
        op = ALUOp(code & 0xF0)
        return ALUOpX(op) if code & BPF_X else ALUOpConstant(op, k)
    if cls == BPF_JMP:
        if code & 0xF0 == BPF_JA:
            return Jump(k)
        test = JumpTest(code & 0xF0)
        return JumpIfX(test, jt, jf) if code & BPF_X else JumpIf(test, k, jt, jf)
    if cls == BPF_RET:
        return RetA() if code & 0x18 == BPF_A else RetConstant(k)
    return TAX() if code == BPF_MISC | BPF_TAX else TXA()


_KNOWN = CODES_2_6_33 | CODES_MOD_XOR
_DECODED: dict[tuple[Insn, ...], tuple[Instruction, ...]] = {}
_DECODED_MAX = 1024


_LAST: list[tuple[object, tuple[Instruction, ...]]] = [((), ())]


def decode_program(insns: Sequence[Insn]) -> tuple[Instruction, ...]:
    """Every instruction decoded; remembered per program (the interpreter asks per run).

    The program asked last is recognised by identity (no hashing: Program.run passes
    the same tuple on every call), others by value.
    """
    last_key, last = _LAST[0]
    if insns is last_key:  # a tuple (set below only for tuples): it cannot have changed
        return last
    key = insns if isinstance(insns, tuple) else tuple(insns)
    prog = _DECODED.get(key)
    if prog is None:
        if len(_DECODED) >= _DECODED_MAX:
            _DECODED.clear()
        prog = _DECODED[key] = tuple(decode(i) for i in key)
    if isinstance(insns, tuple):
        _LAST[0] = (insns, prog)
    return prog


def assemble(ins: Instruction) -> Insn:
    """The ``struct sock_filter`` of an instruction; ignored fields are zero."""
    reg = BPF_LD if getattr(ins, "dst", "A") == "A" else BPF_LDX
    match ins:
        case LoadConstant(k=k):
            return Insn(reg | BPF_W | BPF_IMM, 0, 0, k)
        case LoadLength():
            return Insn(reg | BPF_W | BPF_LEN, 0, 0, 0)
        case LoadScratch(n=n):
            return Insn(reg | BPF_W | BPF_MEM, 0, 0, n)
        case LoadAbsolute(size=size, k=k):
            return Insn(BPF_LD | _SIZE_BITS[size] | BPF_ABS, 0, 0, k)
        case LoadIndirect(size=size, k=k):
            return Insn(BPF_LD | _SIZE_BITS[size] | BPF_IND, 0, 0, k)
        case LoadMemShift(k=k):
            return Insn(BPF_LDX | BPF_B | BPF_MSH, 0, 0, k)
        case StoreScratch(src=src, n=n):
            return Insn(BPF_ST if src == "A" else BPF_STX, 0, 0, n)
        case ALUOpConstant(op=op, k=k):
            return Insn(BPF_ALU | op | BPF_K, 0, 0, k)
        case ALUOpX(op=op):
            return Insn(BPF_ALU | op | BPF_X, 0, 0, 0)
        case NegateA():
            return Insn(BPF_ALU | BPF_NEG, 0, 0, 0)
        case Jump(k=k):
            return Insn(BPF_JMP | BPF_JA, 0, 0, k)
        case JumpIf(test=test, k=k, jt=jt, jf=jf):
            return Insn(BPF_JMP | test | BPF_K, jt, jf, k)
        case JumpIfX(test=test, jt=jt, jf=jf):
            return Insn(BPF_JMP | test | BPF_X, jt, jf, 0)
        case RetConstant(k=k):
            return Insn(BPF_RET | BPF_K, 0, 0, k)
        case RetA():
            return Insn(BPF_RET | BPF_A, 0, 0, 0)
        case TAX():
            return Insn(BPF_MISC | BPF_TAX, 0, 0, 0)
        case TXA():
            return Insn(BPF_MISC | BPF_TXA, 0, 0, 0)
        case Invalid(code=code):
            return Insn(code, 0, 0, 0)
    raise TypeError(f"not a BPF instruction: {ins!r}")  # pragma: no cover


def successors(ins: Instruction, pc: int) -> tuple[int, ...]:
    """Where control can go after the instruction at ``pc`` (none after a RET)."""
    if isinstance(ins, (JumpIf, JumpIfX)):
        if ins.jt == ins.jf:
            return (pc + 1 + ins.jt,)
        return (pc + 1 + ins.jt, pc + 1 + ins.jf)
    if isinstance(ins, Jump):
        return (pc + 1 + ins.k,)
    if isinstance(ins, RETURNS):
        return ()
    return (pc + 1,)


def uses_skb_meta(insns: Sequence[Insn]) -> bool:
    """Whether a program can read sk_buff fields, so that a run needs an SkbMeta.

    True when some LD ABS or LDX MSH has a negative offset (the NET range is
    relative to skb->network_header; from SKF_AD_OFF up, ancillary data) or there
    is any LD IND (X + k may be negative at run time).
    """
    for ins in decode_program(tuple(insns)):
        if isinstance(ins, LoadIndirect):
            return True
        if isinstance(ins, (LoadAbsolute, LoadMemShift)) and ins.k & 0x80000000:
            return True
    return False
