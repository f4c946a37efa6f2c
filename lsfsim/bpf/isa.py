"""Classic BPF instruction set: opcodes, ``struct sock_filter`` and constants.

The numbers are those of ``include/linux/filter.h`` (2.6.33) and today's
``include/uapi/linux/bpf_common.h``/``filter.h``.  A program is a sequence of
``Insn(code, jt, jf, k)``, the 8-byte ``struct sock_filter`` that user space
hands to ``setsockopt(SO_ATTACH_FILTER)``.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

# --- instruction classes (code & 0x07) -------------------------------------
BPF_LD, BPF_LDX, BPF_ST, BPF_STX = 0x00, 0x01, 0x02, 0x03
BPF_ALU, BPF_JMP, BPF_RET, BPF_MISC = 0x04, 0x05, 0x06, 0x07

# --- ld/ldx fields ----------------------------------------------------------
BPF_W, BPF_H, BPF_B = 0x00, 0x08, 0x10
BPF_IMM, BPF_ABS, BPF_IND, BPF_MEM, BPF_LEN, BPF_MSH = 0x00, 0x20, 0x40, 0x60, 0x80, 0xA0

# --- alu/jmp fields ---------------------------------------------------------
BPF_ADD, BPF_SUB, BPF_MUL, BPF_DIV = 0x00, 0x10, 0x20, 0x30
BPF_OR, BPF_AND, BPF_LSH, BPF_RSH = 0x40, 0x50, 0x60, 0x70
BPF_NEG, BPF_MOD, BPF_XOR = 0x80, 0x90, 0xA0
BPF_JA, BPF_JEQ, BPF_JGT, BPF_JGE, BPF_JSET = 0x00, 0x10, 0x20, 0x30, 0x40
BPF_K, BPF_X = 0x00, 0x08

# --- ret / misc -------------------------------------------------------------
BPF_A = 0x10
BPF_TAX, BPF_TXA = 0x00, 0x80

# --- limits -----------------------------------------------------------------
BPF_MAXINSNS = 4096
BPF_MEMWORDS = 16

# --- special load offsets (negative k, as a signed 32-bit int) ------------
SKF_AD_OFF = -0x1000
SKF_NET_OFF = -0x100000
SKF_LL_OFF = -0x200000

# ancillary data offsets, added to SKF_AD_OFF
SKF_AD_PROTOCOL = 0
SKF_AD_PKTTYPE = 4
SKF_AD_IFINDEX = 8
SKF_AD_NLATTR = 12
SKF_AD_NLATTR_NEST = 16
SKF_AD_MARK = 20
SKF_AD_QUEUE = 24
SKF_AD_HATYPE = 28
SKF_AD_RXHASH = 32
SKF_AD_CPU = 36
SKF_AD_ALU_XOR_X = 40
SKF_AD_VLAN_TAG = 44
SKF_AD_VLAN_TAG_PRESENT = 48
SKF_AD_PAY_OFFSET = 52
SKF_AD_RANDOM = 56
SKF_AD_VLAN_TPID = 60

ANCILLARY_NAMES: dict[int, str] = {
    SKF_AD_PROTOCOL: "proto",
    SKF_AD_PKTTYPE: "type",
    SKF_AD_IFINDEX: "ifidx",
    SKF_AD_NLATTR: "nla",
    SKF_AD_NLATTR_NEST: "nlan",
    SKF_AD_MARK: "mark",
    SKF_AD_QUEUE: "queue",
    SKF_AD_HATYPE: "hatype",
    SKF_AD_RXHASH: "rxhash",
    SKF_AD_CPU: "cpu",
    SKF_AD_ALU_XOR_X: "xor_x",
    SKF_AD_VLAN_TAG: "vlan_tci",
    SKF_AD_VLAN_TAG_PRESENT: "vlan_avail",
    SKF_AD_PAY_OFFSET: "poff",
    SKF_AD_RANDOM: "rand",
    SKF_AD_VLAN_TPID: "vlan_tpid",
}
"""Ancillary offset -> the name bpf_asm uses (``ld proto``, ``ld #len`` ...)."""


def BPF_CLASS(code: int) -> int:  # noqa: N802 - the kernel's macro names
    return code & 0x07


def BPF_SIZE(code: int) -> int:  # noqa: N802
    return code & 0x18


def BPF_MODE(code: int) -> int:  # noqa: N802
    return code & 0xE0


def BPF_OP(code: int) -> int:  # noqa: N802
    return code & 0xF0


def BPF_SRC(code: int) -> int:  # noqa: N802
    return code & 0x08


def BPF_RVAL(code: int) -> int:  # noqa: N802
    return code & 0x18


def BPF_MISCOP(code: int) -> int:  # noqa: N802
    return code & 0xF8


# The 45 codes sk_chk_filter accepts in 2.6.33 (net/core/filter.c), and the
# ALU codes that came later.  Anything else is an invalid instruction.
CODES_2_6_33: frozenset[int] = frozenset(
    [
        # ALU, K and X forms
        *(BPF_ALU | op | src
          for op in (BPF_ADD, BPF_SUB, BPF_MUL, BPF_DIV, BPF_OR, BPF_AND, BPF_LSH, BPF_RSH)
          for src in (BPF_K, BPF_X)),
        BPF_ALU | BPF_NEG,
        # LD
        *(BPF_LD | size | mode for size in (BPF_W, BPF_H, BPF_B) for mode in (BPF_ABS, BPF_IND)),
        BPF_LD | BPF_W | BPF_LEN, BPF_LD | BPF_IMM, BPF_LD | BPF_MEM,
        # LDX
        BPF_LDX | BPF_W | BPF_IMM, BPF_LDX | BPF_W | BPF_MEM, BPF_LDX | BPF_W | BPF_LEN,
        BPF_LDX | BPF_B | BPF_MSH,
        # MISC
        BPF_MISC | BPF_TAX, BPF_MISC | BPF_TXA,
        # RET
        BPF_RET | BPF_K, BPF_RET | BPF_A,
        # ST/STX
        BPF_ST, BPF_STX,
        # JMP
        BPF_JMP | BPF_JA,
        *(BPF_JMP | op | src
          for op in (BPF_JEQ, BPF_JGT, BPF_JGE, BPF_JSET) for src in (BPF_K, BPF_X)),
    ]
)
CODES_MOD_XOR: frozenset[int] = frozenset(
    BPF_ALU | op | src for op in (BPF_MOD, BPF_XOR) for src in (BPF_K, BPF_X)
)
"""BPF_MOD and BPF_XOR, accepted by Linux from 3.7 (and by libpcap)."""


class Insn(NamedTuple):
    """One ``struct sock_filter``: ``{u16 code; u8 jt; u8 jf; u32 k}``."""

    code: int
    jt: int
    jf: int
    k: int


SOCK_FILTER = struct.Struct("<HBBI")
"""The 8-byte ``struct sock_filter`` as an x86 (little-endian) process lays it out."""


def check_fields(insn: Insn, pc: int | None = None) -> None:
    """Raise ValueError unless every field fits its C type."""
    where = f"instruction {pc}: " if pc is not None else ""
    for name, value, bits in (("code", insn.code, 16), ("jt", insn.jt, 8),
                              ("jf", insn.jf, 8), ("k", insn.k, 32)):
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < (1 << bits):
            raise ValueError(f"{where}{name}={value!r} does not fit in u{bits}")


def encode(insns: list[Insn] | tuple[Insn, ...]) -> bytes:
    """Pack instructions as the array of ``struct sock_filter`` user space passes."""
    return b"".join(SOCK_FILTER.pack(*insn) for insn in insns)


def decode(blob: bytes) -> list[Insn]:
    """Unpack an array of ``struct sock_filter``; its length must be a multiple of 8."""
    if len(blob) % SOCK_FILTER.size:
        raise ValueError(
            f"{len(blob)} bytes is not a whole number of 8-byte sock_filter instructions"
        )
    return [Insn(*fields) for fields in SOCK_FILTER.iter_unpack(blob)]


def s32(k: int) -> int:
    """k as the kernel's signed int (offsets of ABS/IND loads are ``int``)."""
    return k - (1 << 32) if k & 0x80000000 else k
