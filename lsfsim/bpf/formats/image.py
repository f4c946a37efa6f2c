"""tcpdump -d: libpcap 1.10's ``bpf_image()``, one line per instruction.

Written byte for byte as libpcap 1.10 writes it (bpf_image.c), including
``unimp 0x..`` for codes it has no mnemonic for and the symbolic Linux
ancillary offsets (``ld [proto]``).  The table ``IMAGE`` (opcode -> mnemonic,
operand kind) is also what the tcpdump -d reader and the bpf_asm writer start
from, and ``canonical`` says which fields survive this text.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from lsfsim.bpf.isa import BPF_CLASS, BPF_JA, BPF_JMP, BPF_OP, SKF_AD_OFF, Insn, s32

U32 = 0xFFFFFFFF

# Operand kinds: how bpf_image prints the operand of each opcode it knows.
DEC, HEX, NONE, ABS, IND, MEM, MSH, PKTLEN, X, JA = (
    "dec", "hex", "none", "abs", "ind", "mem", "msh", "pktlen", "x", "ja")

IMAGE: dict[int, tuple[str, str]] = {
    0x06: ("ret", DEC), 0x16: ("ret", NONE),
    0x20: ("ld", ABS), 0x28: ("ldh", ABS), 0x30: ("ldb", ABS),
    0x80: ("ld", PKTLEN),
    0x40: ("ld", IND), 0x48: ("ldh", IND), 0x50: ("ldb", IND),
    0x00: ("ld", HEX), 0x01: ("ldx", HEX),
    0xB1: ("ldxb", MSH),
    0x60: ("ld", MEM), 0x61: ("ldx", MEM), 0x02: ("st", MEM), 0x03: ("stx", MEM),
    0x05: ("ja", JA),
    0x25: ("jgt", HEX), 0x35: ("jge", HEX), 0x15: ("jeq", HEX), 0x45: ("jset", HEX),
    0x2D: ("jgt", X), 0x3D: ("jge", X), 0x1D: ("jeq", X), 0x4D: ("jset", X),
    0x0C: ("add", X), 0x1C: ("sub", X), 0x2C: ("mul", X), 0x3C: ("div", X),
    0x9C: ("mod", X), 0x5C: ("and", X), 0x4C: ("or", X), 0xAC: ("xor", X),
    0x6C: ("lsh", X), 0x7C: ("rsh", X),
    0x04: ("add", DEC), 0x14: ("sub", DEC), 0x24: ("mul", DEC), 0x34: ("div", DEC),
    0x94: ("mod", DEC), 0x54: ("and", HEX), 0x44: ("or", HEX), 0xA4: ("xor", HEX),
    0x64: ("lsh", DEC), 0x74: ("rsh", DEC),
    0x84: ("neg", NONE), 0x07: ("tax", NONE), 0x87: ("txa", NONE),
}

# bpf_image's names for SKF_AD_OFF + n (libpcap's ``offsets[]``; "vlanp" and
# "random" are libpcap's spellings where bpf_asm says "vlan_avail" and "rand").
PCAP_ANCILLARY: dict[int, str] = {
    0: "proto", 4: "type", 8: "ifidx", 12: "nla", 16: "nlan", 20: "mark", 24: "queue",
    28: "hatype", 32: "rxhash", 36: "cpu", 40: "xor_x", 44: "vlan_tci", 48: "vlanp",
    52: "poff", 56: "random", 60: "vlan_tpid",
}


def is_jump(code: int) -> bool:
    """bpf_image prints jt/jf for every JMP-class code whose op is not JA."""
    return BPF_CLASS(code) == BPF_JMP and BPF_OP(code) != BPF_JA


def _operand(insn: Insn, pc: int) -> tuple[str, str]:
    entry = IMAGE.get(insn.code)
    if entry is None:
        return "unimp", f"0x{insn.code:x}"
    op, kind = entry
    k = insn.k
    if kind == DEC:
        text = f"#{s32(k)}"
    elif kind == HEX:
        text = f"#0x{k:x}"
    elif kind == NONE:
        text = ""
    elif kind == ABS:
        off = s32(k) - SKF_AD_OFF
        name = PCAP_ANCILLARY.get(off) if 0 <= off < 64 else None
        text = f"[{name}]" if name else f"[{s32(k)}]"
    elif kind == IND:
        text = f"[x + {s32(k)}]"
    elif kind == MEM:
        text = f"M[{s32(k)}]"
    elif kind == MSH:
        text = f"4*([{s32(k)}]&0xf)"
    elif kind == PKTLEN:
        text = "#pktlen"
    elif kind == X:
        text = "x"
    else:  # JA: the absolute target, computed in C as unsigned and printed with %d
        text = str(s32((pc + 1 + k) & U32))
    return op, text


def insn_text(insn: Sequence[int], pc: int) -> str:
    """libpcap's ``bpf_image(insn, pc)`` without the ``(000) `` prefix."""
    insn = Insn(*insn)
    op, operand = _operand(insn, pc)
    if is_jump(insn.code):
        return f"{op:<8} {operand:<16} jt {pc + 1 + insn.jt}\tjf {pc + 1 + insn.jf}"
    return f"{op:<8} {operand}"


def write_d(prog: Sequence[Insn]) -> str:
    """``bpf_dump(prog, 1)``: ``(000) ldh      [12]`` lines."""
    return "".join(f"({pc:03d}) {insn_text(insn, pc)}\n" for pc, insn in enumerate(prog))


def canonical(insns: Iterable[Sequence[int]]) -> list[Insn]:
    """The program with the fields its instructions ignore set to zero.

    That is what survives ``tcpdump-d`` (bpf_image prints nothing else) and
    ``bpf_asm`` (which cannot write anything else): libpcap's code generator
    leaves stale k values in ``tax`` and the like; the machine ignores them.
    """
    out = []
    for insn in insns:
        insn = Insn(*insn)
        kind = IMAGE.get(insn.code, ("", NONE))[1]
        keep_k = kind in (DEC, HEX, ABS, IND, MEM, MSH, JA)
        jumps = is_jump(insn.code)
        out.append(Insn(insn.code, insn.jt if jumps else 0, insn.jf if jumps else 0,
                        insn.k if keep_k else 0))
    return out
