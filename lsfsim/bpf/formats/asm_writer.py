"""Writing bpf_asm text: ``l<pc>`` labels on jump targets, ignored fields dropped.

bpf_asm has no syntax for opcodes outside the instruction set, nor for a jump
past the end of the program: both are refused with a ValueError.
"""

from __future__ import annotations

from lsfsim.bpf.formats.image import (
    ABS,
    DEC,
    HEX,
    IMAGE,
    IND,
    JA,
    MEM,
    MSH,
    NONE,
    U32,
    X,
    is_jump,
)
from lsfsim.bpf.isa import BPF_CLASS, SKF_AD_OFF, Insn, s32

ASM_EXT_NAME: dict[int, str] = {
    0: "proto", 4: "type", 8: "ifidx", 12: "nla", 16: "nlan", 20: "mark", 24: "queue",
    28: "hatype", 32: "rxhash", 36: "cpu", 44: "vlan_tci", 48: "vlan_avail", 52: "poff",
    56: "rand", 60: "vlan_tpid",
}

# bpf_asm renderings: code -> (mnemonic, operand kind)
ASM: dict[int, tuple[str, str]] = {
    0x06: ("ret", DEC), 0x16: ("ret", "a"), 0x0E: ("ret", X),
    0x20: ("ld", ABS), 0x28: ("ldh", ABS), 0x30: ("ldb", ABS),
    0x80: ("ld", "len"), 0x81: ("ldx", "len"),
    0x40: ("ld", IND), 0x48: ("ldh", IND), 0x50: ("ldb", IND),
    0x00: ("ld", HEX), 0x01: ("ldx", HEX), 0xB1: ("ldxb", MSH),
    0x60: ("ld", MEM), 0x61: ("ldx", MEM), 0x02: ("st", MEM), 0x03: ("stx", MEM),
    0x05: ("ja", JA), 0x07: ("tax", NONE), 0x87: ("txa", NONE),
}
for _code, (_op, _kind) in IMAGE.items():
    if BPF_CLASS(_code) in (4, 5) and _code not in ASM:  # ALU and conditional jumps
        ASM[_code] = (_op, _kind)


def write_asm(prog: list[Insn]) -> str:
    """bpf_asm text with ``l<pc>`` labels on jump targets; ignored fields are dropped."""
    n = len(prog)
    targets: set[int] = set()
    for pc, insn in enumerate(prog):
        if insn.code not in ASM:
            raise ValueError(f"instruction {pc}: code 0x{insn.code:x} has no bpf_asm syntax")
        kind = ASM[insn.code][1]
        if kind == JA:
            dest = [(pc + 1 + insn.k) & U32]
        elif is_jump(insn.code):
            dest = [pc + 1 + insn.jt, pc + 1 + insn.jf]
        else:
            dest = []
        for d in dest:
            if d >= n:
                raise ValueError(f"instruction {pc} jumps to {d}, past the end of the program; "
                                 "bpf_asm cannot express it")
            targets.add(d)
    lines = []
    for pc, insn in enumerate(prog):
        op, kind = ASM[insn.code]
        k = insn.k
        if kind == ABS:
            off = s32(k) - SKF_AD_OFF
            name = ASM_EXT_NAME.get(off) if 0 <= off < 64 else None
            operand = name if name else f"[{s32(k)}]"
        elif kind == JA:
            operand = f"l{(pc + 1 + k) & U32}"
        elif kind in ("a", "len", X):
            operand = kind
        elif kind == NONE:
            operand = ""
        elif kind == DEC:
            operand = f"#{s32(k)}"
        elif kind == HEX:
            operand = f"#0x{k:x}"
        elif kind == IND:
            operand = f"[x + {s32(k)}]"
        elif kind == MEM:
            operand = f"M[{s32(k)}]"
        else:  # MSH
            operand = f"4*([{s32(k)}]&0xf)"
        if is_jump(insn.code):
            operand += f", l{pc + 1 + insn.jt}, l{pc + 1 + insn.jf}"
        label = f"l{pc}:" if pc in targets else ""
        lines.append(f"{label}\t{op} {operand}".rstrip() + "\n")
    return "".join(lines)
