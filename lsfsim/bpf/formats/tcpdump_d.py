"""Reading tcpdump -d text (libpcap's bpf_image) back into instructions.

The ``(000)`` prefixes are optional, so text pasted without them reads too;
jump targets are absolute instruction numbers, as bpf_image prints them.  The
writer is ``image.write_d``.
"""

from __future__ import annotations

import re

from lsfsim.bpf.errors import ParseError
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
    PCAP_ANCILLARY,
    PKTLEN,
    U32,
    X,
    is_jump,
)
from lsfsim.bpf.formats.numbers import NUM, numbered_lines, read_field, read_u32, show
from lsfsim.bpf.isa import SKF_AD_OFF, Insn

_D_LINE = re.compile(r"^(\s*)(?:\(([0-9]{1,10})\)(\s+))?(\S+)")
_D_JUMP = re.compile(r"^(.*?)\s*\bjt\s+(\S+)\s+jf\s+(\S+)\s*$")
_D_ABS = re.compile(rf"^\[\s*({NUM})\s*\]$")
_D_ANC = re.compile(r"^\[\s*([A-Za-z_]\w*)\s*\]$")
_D_IND = re.compile(rf"^\[\s*x\s*\+\s*({NUM})\s*\]$")
_D_MEM = re.compile(rf"^M\[\s*({NUM})\s*\]$")
_D_MSH = re.compile(rf"^4\s*\*\s*\(\s*\[\s*({NUM})\s*\]\s*&\s*0xf\s*\)$")
_D_IMM = re.compile(rf"^#\s*({NUM})$")
_D_PLAIN = re.compile(rf"^({NUM})$")

_D_ANC_OFFSETS = {name: off for off, name in PCAP_ANCILLARY.items()}
_D_ANC_OFFSETS.update({"vlan_avail": 48, "vlan_pr": 48, "rand": 56})

# (mnemonic, operand kind) -> code, for reading bpf_image text back
_D_CODES: dict[tuple[str, str], int] = {}
for _code, (_op, _kind) in IMAGE.items():
    _D_CODES[(_op, "k" if _kind in (DEC, HEX) else _kind)] = _code
_D_CODES[("ret", "a")] = 0x16


def read_d(text: str) -> list[Insn]:
    prog: list[Insn] = []
    for lineno, raw in numbered_lines(text):
        line = raw.rstrip("\r")
        if not line.strip():
            continue
        m = _D_LINE.match(line)
        if m is None:  # pragma: no cover - \S+ always matches a non-blank line
            raise ParseError("expected an instruction", lineno, 1)
        pc = len(prog)
        if m.group(2) is not None and int(m.group(2)) != pc:
            raise ParseError(f"expected instruction number ({pc:03d}), got ({m.group(2)})",
                             lineno, len(m.group(1)) + 1)
        op = m.group(4).lower()
        op_col = m.start(4) + 1
        rest = line[m.end(4):]
        rest_col = m.end(4) + 1 + (len(rest) - len(rest.lstrip()))
        rest = rest.strip()
        jt = jf = 0
        jm = _D_JUMP.match(rest)
        if jm is not None:
            rest = jm.group(1).strip()
            targets = []
            for g in (2, 3):
                col = rest_col + jm.start(g)
                target = read_field(jm.group(g), lineno, col, "jump target", 31)
                delta = target - pc - 1
                if not 0 <= delta <= 255:
                    raise ParseError(
                        f"jump target {target} out of reach of instruction {pc} "
                        f"(must be {pc + 1}..{pc + 256})", lineno, col)
                targets.append(delta)
            jt, jf = targets
        insn = _parse_d_operand(op, rest, pc, lineno, op_col, rest_col)
        if jm is not None and not is_jump(insn.code):
            raise ParseError(f"'{op}' takes no jt/jf", lineno, rest_col + jm.start(2))
        if jm is None and is_jump(insn.code):
            raise ParseError(f"expected 'jt N jf M' after {show(op + ' ' + rest)}", lineno,
                             rest_col + len(rest))
        prog.append(insn._replace(jt=jt, jf=jf))
    if not prog:
        raise ParseError("no instructions", 1, 1)
    return prog


def _parse_d_operand(op: str, rest: str, pc: int, lineno: int, op_col: int,
                     col: int) -> Insn:
    k = 0
    kind: str
    if op == "unimp":
        m = _D_PLAIN.match(rest)
        if m is None:
            raise ParseError("expected the opcode after 'unimp' (as 0x..)", lineno, col)
        return Insn(read_field(m.group(1), lineno, col, "opcode", 16), 0, 0, 0)
    if rest == "":
        kind = NONE
    elif rest.lower() in ("x", "%x"):
        kind = X
    elif rest.lower() in ("a", "%a"):
        kind = "a"
    elif rest.lower() == "#pktlen":
        kind = PKTLEN
    elif (m := _D_IMM.match(rest)) is not None:
        kind, k = "k", read_u32(m.group(1), lineno, col + m.start(1))
    elif (m := _D_IND.match(rest)) is not None:
        kind, k = IND, read_u32(m.group(1), lineno, col + m.start(1))
    elif (m := _D_ABS.match(rest)) is not None:
        kind, k = ABS, read_u32(m.group(1), lineno, col + m.start(1))
    elif (m := _D_ANC.match(rest)) is not None:
        name = m.group(1).lower()
        if name not in _D_ANC_OFFSETS:
            raise ParseError(f"unknown ancillary load {show(m.group(1))}", lineno,
                             col + m.start(1))
        kind, k = ABS, (SKF_AD_OFF + _D_ANC_OFFSETS[name]) & U32
    elif (m := _D_MEM.match(rest)) is not None:
        kind, k = MEM, read_u32(m.group(1), lineno, col + m.start(1))
    elif (m := _D_MSH.match(rest)) is not None:
        kind, k = MSH, read_u32(m.group(1), lineno, col + m.start(1))
    elif (m := _D_PLAIN.match(rest)) is not None and op == "ja":
        target = read_u32(m.group(1), lineno, col)
        kind, k = JA, (target - pc - 1) & U32
    else:
        raise ParseError(f"cannot read operand {show(rest)} of {show(op)}", lineno, col)
    code = _D_CODES.get((op, kind))
    if code is None:
        if not any(o == op for o, _ in _D_CODES):
            raise ParseError(f"unknown instruction {show(op)}", lineno, op_col)
        raise ParseError(f"'{op}' does not take operand {show(rest)}", lineno, col)
    return Insn(code, 0, 0, k)
