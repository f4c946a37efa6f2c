"""Program text formats: tcpdump -d/-dd/-ddd, bpf_asm, and raw sock_filter arrays.

* ``tcpdump-d``: libpcap's ``bpf_dump(prog, 1)``, one ``bpf_image()`` line per
  instruction (``(000) ldh      [12]``).  Written byte for byte as libpcap
  1.10 writes it, including ``unimp 0x..`` for codes it has no mnemonic for
  and the symbolic Linux ancillary offsets (``ld [proto]``).
* ``tcpdump-dd``: ``{ 0x28, 0, 0, 0x0000000c },`` (C initialisers).
* ``tcpdump-ddd``: a count line, then ``code jt jf k`` in decimal.  Also read:
  bpf_asm's one-line ``4,40 0 0 12,...`` form (what ``xt_bpf`` takes).
* ``bpf_asm``: the assembler syntax of the kernel's tools/bpf/bpf_asm
  (bpf_exp.l / bpf_exp.y): labels, ``jeq #k, Lt, Lf``, ``ld [x + k]``, ``ld proto``.
* ``binary``: the array of 8-byte little-endian ``struct sock_filter``.

``tcpdump-d`` and ``bpf_asm`` keep only the fields an instruction uses (see
``canonical``); ``bpf_asm`` has no syntax for opcodes outside the instruction
set and refuses them.  The other formats are lossless.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from lsfsim.bpf.errors import ParseError
from lsfsim.bpf.isa import (
    BPF_CLASS,
    BPF_JA,
    BPF_JMP,
    BPF_OP,
    SKF_AD_OFF,
    Insn,
    check_fields,
    decode,
    encode,
    s32,
)

__all__ = ["FORMATS", "canonical", "detect", "format", "insn_text", "load", "parse"]

FORMATS = ("tcpdump-d", "tcpdump-dd", "tcpdump-ddd", "bpf_asm", "binary")

_U32 = 0xFFFFFFFF

# --- bpf_image() (libpcap 1.10 bpf_image.c) ------------------------------------
# Operand kinds: how bpf_image prints the operand of each opcode it knows.
_DEC, _HEX, _NONE, _ABS, _IND, _MEM, _MSH, _PKTLEN, _X, _JA = (
    "dec", "hex", "none", "abs", "ind", "mem", "msh", "pktlen", "x", "ja")

_IMAGE: dict[int, tuple[str, str]] = {
    0x06: ("ret", _DEC), 0x16: ("ret", _NONE),
    0x20: ("ld", _ABS), 0x28: ("ldh", _ABS), 0x30: ("ldb", _ABS),
    0x80: ("ld", _PKTLEN),
    0x40: ("ld", _IND), 0x48: ("ldh", _IND), 0x50: ("ldb", _IND),
    0x00: ("ld", _HEX), 0x01: ("ldx", _HEX),
    0xB1: ("ldxb", _MSH),
    0x60: ("ld", _MEM), 0x61: ("ldx", _MEM), 0x02: ("st", _MEM), 0x03: ("stx", _MEM),
    0x05: ("ja", _JA),
    0x25: ("jgt", _HEX), 0x35: ("jge", _HEX), 0x15: ("jeq", _HEX), 0x45: ("jset", _HEX),
    0x2D: ("jgt", _X), 0x3D: ("jge", _X), 0x1D: ("jeq", _X), 0x4D: ("jset", _X),
    0x0C: ("add", _X), 0x1C: ("sub", _X), 0x2C: ("mul", _X), 0x3C: ("div", _X),
    0x9C: ("mod", _X), 0x5C: ("and", _X), 0x4C: ("or", _X), 0xAC: ("xor", _X),
    0x6C: ("lsh", _X), 0x7C: ("rsh", _X),
    0x04: ("add", _DEC), 0x14: ("sub", _DEC), 0x24: ("mul", _DEC), 0x34: ("div", _DEC),
    0x94: ("mod", _DEC), 0x54: ("and", _HEX), 0x44: ("or", _HEX), 0xA4: ("xor", _HEX),
    0x64: ("lsh", _DEC), 0x74: ("rsh", _DEC),
    0x84: ("neg", _NONE), 0x07: ("tax", _NONE), 0x87: ("txa", _NONE),
}

# bpf_image's names for SKF_AD_OFF + n (libpcap's ``offsets[]``; "vlanp" and
# "random" are libpcap's spellings where bpf_asm says "vlan_avail" and "rand").
_PCAP_ANCILLARY: dict[int, str] = {
    0: "proto", 4: "type", 8: "ifidx", 12: "nla", 16: "nlan", 20: "mark", 24: "queue",
    28: "hatype", 32: "rxhash", 36: "cpu", 40: "xor_x", 44: "vlan_tci", 48: "vlanp",
    52: "poff", 56: "random", 60: "vlan_tpid",
}

# bpf_asm's lexer (bpf_exp.l): extension names, with their aliases.  It has no
# "xor_x" (an ALU extension, not a load).
_ASM_EXTENSIONS: dict[str, int] = {
    "proto": 0, "type": 4, "poff": 52, "ifidx": 8, "nla": 12, "nlan": 16, "mark": 20,
    "queue": 24, "hatype": 28, "rxhash": 32, "cpu": 36, "vlan_tci": 44, "vlan_pr": 48,
    "vlan_avail": 48, "vlan_tpid": 60, "rand": 56,
}
_ASM_EXT_NAME: dict[int, str] = {
    0: "proto", 4: "type", 8: "ifidx", 12: "nla", 16: "nlan", 20: "mark", 24: "queue",
    28: "hatype", 32: "rxhash", 36: "cpu", 44: "vlan_tci", 48: "vlan_avail", 52: "poff",
    56: "rand", 60: "vlan_tpid",
}


def _is_jump(code: int) -> bool:
    """bpf_image prints jt/jf for every JMP-class code whose op is not JA."""
    return BPF_CLASS(code) == BPF_JMP and BPF_OP(code) != BPF_JA


def _operand(insn: Insn, pc: int) -> tuple[str, str]:
    entry = _IMAGE.get(insn.code)
    if entry is None:
        return "unimp", f"0x{insn.code:x}"
    op, kind = entry
    k = insn.k
    if kind == _DEC:
        text = f"#{s32(k)}"
    elif kind == _HEX:
        text = f"#0x{k:x}"
    elif kind == _NONE:
        text = ""
    elif kind == _ABS:
        off = s32(k) - SKF_AD_OFF
        name = _PCAP_ANCILLARY.get(off) if 0 <= off < 64 else None
        text = f"[{name}]" if name else f"[{s32(k)}]"
    elif kind == _IND:
        text = f"[x + {s32(k)}]"
    elif kind == _MEM:
        text = f"M[{s32(k)}]"
    elif kind == _MSH:
        text = f"4*([{s32(k)}]&0xf)"
    elif kind == _PKTLEN:
        text = "#pktlen"
    elif kind == _X:
        text = "x"
    else:  # _JA: the absolute target, computed in C as unsigned and printed with %d
        text = str(s32((pc + 1 + k) & _U32))
    return op, text


def insn_text(insn: Sequence[int], pc: int) -> str:
    """libpcap's ``bpf_image(insn, pc)`` without the ``(000) `` prefix."""
    insn = Insn(*insn)
    op, operand = _operand(insn, pc)
    if _is_jump(insn.code):
        return f"{op:<8} {operand:<16} jt {pc + 1 + insn.jt}\tjf {pc + 1 + insn.jf}"
    return f"{op:<8} {operand}"


# --- writing -------------------------------------------------------------------
def format(insns: Iterable[Sequence[int]], fmt: str = "tcpdump-d") -> str | bytes:  # noqa: A001
    """Render a program; text formats end with a newline, ``binary`` gives bytes."""
    prog = [Insn(*i) for i in insns]
    for pc, insn in enumerate(prog):
        check_fields(insn, pc)
    if fmt == "tcpdump-d":
        return "".join(f"({pc:03d}) {insn_text(insn, pc)}\n" for pc, insn in enumerate(prog))
    if fmt == "tcpdump-dd":
        return "".join(
            f"{{ 0x{i.code:x}, {i.jt}, {i.jf}, 0x{i.k:08x} }},\n" for i in prog)
    if fmt == "tcpdump-ddd":
        return f"{len(prog)}\n" + "".join(f"{i.code} {i.jt} {i.jf} {i.k}\n" for i in prog)
    if fmt == "bpf_asm":
        return _format_asm(prog)
    if fmt == "binary":
        return encode(prog)
    raise ValueError(_unknown_format(fmt))


def _unknown_format(fmt: object) -> str:
    return f"unknown program format {fmt!r} (choose from {', '.join(FORMATS)})"


# bpf_asm renderings: code -> (mnemonic, operand kind)
_ASM: dict[int, tuple[str, str]] = {
    0x06: ("ret", _DEC), 0x16: ("ret", "a"), 0x0E: ("ret", _X),
    0x20: ("ld", _ABS), 0x28: ("ldh", _ABS), 0x30: ("ldb", _ABS),
    0x80: ("ld", "len"), 0x81: ("ldx", "len"),
    0x40: ("ld", _IND), 0x48: ("ldh", _IND), 0x50: ("ldb", _IND),
    0x00: ("ld", _HEX), 0x01: ("ldx", _HEX), 0xB1: ("ldxb", _MSH),
    0x60: ("ld", _MEM), 0x61: ("ldx", _MEM), 0x02: ("st", _MEM), 0x03: ("stx", _MEM),
    0x05: ("ja", _JA), 0x07: ("tax", _NONE), 0x87: ("txa", _NONE),
}
for _code, (_op, _kind) in _IMAGE.items():
    if BPF_CLASS(_code) in (4, 5) and _code not in _ASM:  # ALU and conditional jumps
        _ASM[_code] = (_op, _kind)


def canonical(insns: Iterable[Sequence[int]]) -> list[Insn]:
    """The program with the fields its instructions ignore set to zero.

    That is what survives ``tcpdump-d`` (bpf_image prints nothing else) and
    ``bpf_asm`` (which cannot write anything else): libpcap's code generator
    leaves stale k values in ``tax`` and the like; the machine ignores them.
    """
    out = []
    for insn in insns:
        insn = Insn(*insn)
        kind = _IMAGE.get(insn.code, ("", _NONE))[1]
        keep_k = kind in (_DEC, _HEX, _ABS, _IND, _MEM, _MSH, _JA)
        jumps = _is_jump(insn.code)
        out.append(Insn(insn.code, insn.jt if jumps else 0, insn.jf if jumps else 0,
                        insn.k if keep_k else 0))
    return out


def _format_asm(prog: list[Insn]) -> str:
    """bpf_asm text with ``l<pc>`` labels on jump targets; ignored fields are dropped."""
    n = len(prog)
    targets: set[int] = set()
    for pc, insn in enumerate(prog):
        if insn.code not in _ASM:
            raise ValueError(f"instruction {pc}: code 0x{insn.code:x} has no bpf_asm syntax")
        kind = _ASM[insn.code][1]
        if kind == _JA:
            dest = [(pc + 1 + insn.k) & _U32]
        elif _is_jump(insn.code):
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
        op, kind = _ASM[insn.code]
        k = insn.k
        if kind == _ABS:
            off = s32(k) - SKF_AD_OFF
            name = _ASM_EXT_NAME.get(off) if 0 <= off < 64 else None
            operand = name if name else f"[{s32(k)}]"
        elif kind == _JA:
            operand = f"l{(pc + 1 + k) & _U32}"
        elif kind in ("a", "len", _X):
            operand = kind
        elif kind == _NONE:
            operand = ""
        elif kind == _DEC:
            operand = f"#{s32(k)}"
        elif kind == _HEX:
            operand = f"#0x{k:x}"
        elif kind == _IND:
            operand = f"[x + {s32(k)}]"
        elif kind == _MEM:
            operand = f"M[{s32(k)}]"
        else:  # _MSH
            operand = f"4*([{s32(k)}]&0xf)"
        if _is_jump(insn.code):
            operand += f", l{pc + 1 + insn.jt}, l{pc + 1 + insn.jf}"
        label = f"l{pc}:" if pc in targets else ""
        lines.append(f"{label}\t{op} {operand}".rstrip() + "\n")
    return "".join(lines)


# --- reading: common helpers --------------------------------------------------------
_NUM = r"[+-]?(?:0[xX][0-9a-fA-F]+|[0-9]+)"


_NUM_RE = re.compile(_NUM)
_MAX_DIGITS = 40  # longer literals cannot fit in 32 bits (and int() refuses > 4300 digits)


def _int(text: str, line: int, col: int, what: str) -> int:
    """An integer literal: decimal (leading zeros allowed) or 0x hex, optional sign."""
    if not _NUM_RE.fullmatch(text):
        raise ParseError(f"expected {what}, got {_show(text)}", line, col)
    if len(text) > _MAX_DIGITS:
        raise ParseError(f"{what} {text[:12]}... does not fit in 32 bits", line, col)
    body = text.lstrip("+-")
    value = int(body[2:], 16) if body[:2].lower() == "0x" else int(body, 10)
    return -value if text.startswith("-") else value


def _num(text: str, line: int, col: int, what: str = "number") -> int:
    """A 32-bit field written signed or unsigned; returned as the unsigned value."""
    value = _int(text, line, col, what)
    if not -(1 << 31) <= value <= _U32:
        raise ParseError(f"{what} {_show(text)} does not fit in 32 bits", line, col)
    return value & _U32


def _field(text: str, line: int, col: int, name: str, bits: int) -> int:
    """An unsigned field of ``bits`` bits (k may also be written as a negative s32)."""
    if bits == 32:
        return _num(text, line, col, name)
    value = _int(text, line, col, name)
    if not 0 <= value < (1 << bits):
        raise ParseError(f"{name} {_show(text)} does not fit in u{bits}", line, col)
    return value


def _show(text: str, limit: int = 24) -> str:
    """repr() of user text for a message, cut short."""
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _lines(text: str) -> list[tuple[int, str]]:
    return list(enumerate(text.split("\n"), start=1))


# --- tcpdump -d ---------------------------------------------------------------------
_D_LINE = re.compile(r"^(\s*)(?:\(([0-9]{1,10})\)(\s+))?(\S+)")
_D_JUMP = re.compile(r"^(.*?)\s*\bjt\s+(\S+)\s+jf\s+(\S+)\s*$")
_D_ABS = re.compile(rf"^\[\s*({_NUM})\s*\]$")
_D_ANC = re.compile(r"^\[\s*([A-Za-z_]\w*)\s*\]$")
_D_IND = re.compile(rf"^\[\s*x\s*\+\s*({_NUM})\s*\]$")
_D_MEM = re.compile(rf"^M\[\s*({_NUM})\s*\]$")
_D_MSH = re.compile(rf"^4\s*\*\s*\(\s*\[\s*({_NUM})\s*\]\s*&\s*0xf\s*\)$")
_D_IMM = re.compile(rf"^#\s*({_NUM})$")
_D_PLAIN = re.compile(rf"^({_NUM})$")

_D_ANC_OFFSETS = {name: off for off, name in _PCAP_ANCILLARY.items()}
_D_ANC_OFFSETS.update({"vlan_avail": 48, "vlan_pr": 48, "rand": 56})

# (mnemonic, operand kind) -> code, for reading bpf_image text back
_D_CODES: dict[tuple[str, str], int] = {}
for _code, (_op, _kind) in _IMAGE.items():
    _D_CODES[(_op, "k" if _kind in (_DEC, _HEX) else _kind)] = _code
_D_CODES[("ret", "a")] = 0x16


def _parse_d(text: str) -> list[Insn]:
    prog: list[Insn] = []
    for lineno, raw in _lines(text):
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
                target = _field(jm.group(g), lineno, col, "jump target", 31)
                delta = target - pc - 1
                if not 0 <= delta <= 255:
                    raise ParseError(
                        f"jump target {target} out of reach of instruction {pc} "
                        f"(must be {pc + 1}..{pc + 256})", lineno, col)
                targets.append(delta)
            jt, jf = targets
        insn = _parse_d_operand(op, rest, pc, lineno, op_col, rest_col)
        if jm is not None and not _is_jump(insn.code):
            raise ParseError(f"'{op}' takes no jt/jf", lineno, rest_col + jm.start(2))
        if jm is None and _is_jump(insn.code):
            raise ParseError(f"expected 'jt N jf M' after {_show(op + ' ' + rest)}", lineno,
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
        return Insn(_field(m.group(1), lineno, col, "opcode", 16), 0, 0, 0)
    if rest == "":
        kind = _NONE
    elif rest.lower() in ("x", "%x"):
        kind = _X
    elif rest.lower() in ("a", "%a"):
        kind = "a"
    elif rest.lower() == "#pktlen":
        kind = _PKTLEN
    elif (m := _D_IMM.match(rest)) is not None:
        kind, k = "k", _num(m.group(1), lineno, col + m.start(1))
    elif (m := _D_IND.match(rest)) is not None:
        kind, k = _IND, _num(m.group(1), lineno, col + m.start(1))
    elif (m := _D_ABS.match(rest)) is not None:
        kind, k = _ABS, _num(m.group(1), lineno, col + m.start(1))
    elif (m := _D_ANC.match(rest)) is not None:
        name = m.group(1).lower()
        if name not in _D_ANC_OFFSETS:
            raise ParseError(f"unknown ancillary load {_show(m.group(1))}", lineno,
                             col + m.start(1))
        kind, k = _ABS, (SKF_AD_OFF + _D_ANC_OFFSETS[name]) & _U32
    elif (m := _D_MEM.match(rest)) is not None:
        kind, k = _MEM, _num(m.group(1), lineno, col + m.start(1))
    elif (m := _D_MSH.match(rest)) is not None:
        kind, k = _MSH, _num(m.group(1), lineno, col + m.start(1))
    elif (m := _D_PLAIN.match(rest)) is not None and op == "ja":
        target = _num(m.group(1), lineno, col)
        kind, k = _JA, (target - pc - 1) & _U32
    else:
        raise ParseError(f"cannot read operand {_show(rest)} of {_show(op)}", lineno, col)
    code = _D_CODES.get((op, kind))
    if code is None:
        if not any(o == op for o, _ in _D_CODES):
            raise ParseError(f"unknown instruction {_show(op)}", lineno, op_col)
        raise ParseError(f"'{op}' does not take operand {_show(rest)}", lineno, col)
    return Insn(code, 0, 0, k)


# --- tcpdump -dd --------------------------------------------------------------------
_DD_ITEM = re.compile(
    rf"^\s*\{{\s*({_NUM})\s*,\s*({_NUM})\s*,\s*({_NUM})\s*,\s*({_NUM})\s*\}}\s*,?\s*$")
_DD_WRAPPER = re.compile(
    r"^\s*(?:(?:static|const)\s+)*struct\s+(?:sock_filter|bpf_insn)\s+\w+\s*\[\s*\w*\s*\]"
    r"\s*=\s*\{\s*$|^\s*\}\s*;\s*$")


def _parse_dd(text: str) -> list[Insn]:
    prog: list[Insn] = []
    for lineno, raw in _lines(text):
        line = raw.rstrip("\r")
        if not line.strip() or _DD_WRAPPER.match(line):
            continue
        m = _DD_ITEM.match(line)
        if m is None:
            col = len(line) - len(line.lstrip()) + 1
            raise ParseError("expected '{ code, jt, jf, k },'", lineno, col)
        fields = [
            _field(m.group(g), lineno, m.start(g) + 1, name, bits)
            for g, name, bits in ((1, "code", 16), (2, "jt", 8), (3, "jf", 8), (4, "k", 32))
        ]
        prog.append(Insn(*fields))
    if not prog:
        raise ParseError("no instructions", 1, 1)
    return prog


# --- tcpdump -ddd (and bpf_asm's "n,c t f k,..." line) ---------------------------
def _parse_ddd(text: str) -> list[Insn]:
    items: list[tuple[int, int, str]] = []  # (line, column, text)
    for lineno, raw in _lines(text):
        pos = 0
        for part in raw.rstrip("\r").split(","):
            stripped = part.strip()
            if stripped:
                items.append((lineno, pos + len(part) - len(part.lstrip()) + 1, stripped))
            pos += len(part) + 1
    if not items:
        raise ParseError("expected the instruction count", 1, 1)
    lineno, col, first = items[0]
    if not re.fullmatch(r"[0-9]{1,10}", first):
        raise ParseError(f"expected the instruction count, got {first[:20]!r}", lineno, col)
    count = int(first)
    prog: list[Insn] = []
    for lineno, col, item in items[1:]:
        if len(prog) == count:
            raise ParseError(f"more instructions than the count {count}", lineno, col)
        fields = item.split()
        if len(fields) != 4:
            raise ParseError(f"expected 'code jt jf k', got {_show(item)}", lineno, col)
        values = []
        offset = 0
        for text_field, name, bits in zip(fields, ("code", "jt", "jf", "k"), (16, 8, 8, 32),
                                          strict=True):
            offset = item.index(text_field, offset)
            values.append(_field(text_field, lineno, col + offset, name, bits))
            offset += len(text_field)
        prog.append(Insn(*values))
    if len(prog) != count:
        last_line = items[-1][0]
        raise ParseError(f"expected {count} instructions, found {len(prog)}", last_line, 1)
    return prog


# --- bpf_asm ----------------------------------------------------------------------
# Token kinds: "op" (mnemonic, lower case), "num", "label", "ext" (offset), "len",
# or the punctuation character itself; "eof" at the end.
_KEYWORDS = {
    "ldb", "ldh", "ld", "ldi", "ldx", "ldxi", "ldxb", "st", "stx", "jmp", "ja", "jeq", "jneq",
    "jne", "jlt", "jle", "jgt", "jge", "jset", "add", "sub", "mul", "div", "mod", "neg", "and",
    "xor", "or", "lsh", "rsh", "ret", "tax", "txa",
}
_PUNCT = set(":,#%[]()+*&")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# flex's number rules, tried for the longest match (ties: the first rule wins).
_NUMBER_RULES = (
    (re.compile(r"0[xX][0-9a-fA-F]+"), 16, 0),
    (re.compile(r"0[bB][01]+"), 2, 2),
    (re.compile(r"0|[-+]?[1-9][0-9]*"), 10, 0),
    (re.compile(r"0[0-7]+"), 8, 1),
)
_HASH_WORDS = sorted(["len", *_ASM_EXTENSIONS], key=len, reverse=True)
_COMMENT = re.compile(r"/\*(?:[^*]|\*[^/])*\*/", re.DOTALL)


class _Tok:
    __slots__ = ("kind", "value", "text", "line", "col")

    def __init__(self, kind: str, value: object, text: str, line: int, col: int) -> None:
        self.kind, self.value, self.text, self.line, self.col = kind, value, text, line, col

    def show(self) -> str:
        return "end of input" if self.kind == "eof" else _show(self.text)


def _lex(text: str) -> list[_Tok]:
    """Tokens as flex would cut them from bpf_exp.l's rules (longest match first)."""
    toks: list[_Tok] = []
    i, n, line, line_start = 0, len(text), 1, 0

    def col() -> int:
        return i - line_start + 1

    while i < n:
        c = text[i]
        if c == "\n":
            i += 1
            line, line_start = line + 1, i
            continue
        if c in " \t\r":  # bpf_asm itself refuses \r; we let CRLF files through
            i += 1
            continue
        if c == ";":
            end = text.find("\n", i)
            i = n if end < 0 else end
            continue
        if text.startswith("/*", i):
            m = _COMMENT.match(text, i)
            if m is None:
                raise ParseError("unterminated /* comment", line, col())
            for _ in range(text.count("\n", i, m.end())):
                line += 1
            last_nl = text.rfind("\n", i, m.end())
            if last_nl >= 0:
                line_start = last_nl + 1
            i = m.end()
            continue
        if c == "#":
            # "#len" / "#proto" ... beat '#'; at the start of a line "^#.*" (a
            # comment) beats them unless it is no longer than they are.
            best = 0
            for word in _HASH_WORDS:
                if text[i + 1 : i + 1 + len(word)].lower() == word:
                    best = len(word) + 1
                    break
            at_bol = i == line_start
            if at_bol:
                end = text.find("\n", i)
                end = n if end < 0 else end
                if end - i > max(best, 1):
                    i = end
                    continue
            if best:
                word = text[i + 1 : i + best].lower()
                kind, value = ("len", None) if word == "len" else ("ext", _ASM_EXTENSIONS[word])
                toks.append(_Tok(kind, value, text[i : i + best], line, col()))
                i += best
            else:
                toks.append(_Tok("#", None, "#", line, col()))
                i += 1
            continue
        if c.isascii() and (c.isdigit() or c in "+-"):
            best_len, best = 0, None
            for rx, base, skip in _NUMBER_RULES:
                m = rx.match(text, i)
                if m is not None and m.end() - i > best_len:
                    best_len, best = m.end() - i, (m.group(), base, skip)
            if best is not None:
                word, base, skip = best
                # an absurdly long literal is out of range whatever its value
                value = int(word[skip:], base) if len(word) <= _MAX_DIGITS else 1 << 64
                toks.append(_Tok("num", value, word, line, col()))
                i += best_len
                continue
            if c == "+":
                toks.append(_Tok("+", None, "+", line, col()))
                i += 1
                continue
            raise ParseError(f"unknown character {c!r}", line, col())
        m = _WORD.match(text, i)
        if m is not None:
            word = m.group()
            low = word.lower()
            if low in _KEYWORDS:
                toks.append(_Tok("op", low, word, line, col()))
            elif low == "len":
                toks.append(_Tok("len", None, word, line, col()))
            elif low in _ASM_EXTENSIONS:
                toks.append(_Tok("ext", _ASM_EXTENSIONS[low], word, line, col()))
            elif len(word) >= 2:
                toks.append(_Tok("label", word, word, line, col()))
            elif low in ("x", "a", "m"):
                toks.append(_Tok(low if low != "m" else "M", None, word, line, col()))
            else:
                raise ParseError(f"unknown character {c!r}", line, col())
            i = m.end()
            continue
        if c in _PUNCT:
            toks.append(_Tok(c, None, c, line, col()))
            i += 1
            continue
        raise ParseError(f"unknown character {c!r}", line, col())
    toks.append(_Tok("eof", None, "", line, i - line_start + 1))
    return toks


class _AsmParser:
    """Recursive descent over bpf_exp.y's grammar."""

    def __init__(self, toks: list[_Tok]) -> None:
        self.toks = toks
        self.pos = 0
        self.insns: list[Insn] = []
        self.labels: dict[str, int] = {}
        self.label_tok: dict[str, _Tok] = {}
        # (pc, which, label token): which in "k", "jt", "jf"
        self.refs: list[tuple[int, str, _Tok]] = []

    # token helpers
    def peek(self, ahead: int = 0) -> _Tok:
        return self.toks[min(self.pos + ahead, len(self.toks) - 1)]

    def next(self) -> _Tok:
        tok = self.peek()
        self.pos += 1
        return tok

    def expect(self, kind: str, what: str | None = None) -> _Tok:
        tok = self.peek()
        if tok.kind != kind:
            raise ParseError(f"expected {what or repr(kind)}, got {tok.show()}", tok.line, tok.col)
        return self.next()

    def fail(self, what: str) -> ParseError:
        tok = self.peek()
        return ParseError(f"expected {what}, got {tok.show()}", tok.line, tok.col)

    def number(self) -> int:
        tok = self.expect("num", "a number")
        value = tok.value
        assert isinstance(value, int)
        if not -(1 << 31) <= value <= _U32:
            raise ParseError(f"number {_show(tok.text)} does not fit in 32 bits", tok.line,
                             tok.col)
        return value & _U32

    # grammar
    def program(self) -> list[Insn]:
        while self.peek().kind != "eof":
            while self.peek().kind == "label" and self.peek(1).kind == ":":
                tok = self.next()
                self.next()
                if tok.text in self.labels:
                    first = self.label_tok[tok.text]
                    raise ParseError(
                        f"label {_show(tok.text)} already defined at line {first.line}",
                        tok.line, tok.col)
                self.labels[tok.text] = len(self.insns)
                self.label_tok[tok.text] = tok
            tok = self.peek()
            if tok.kind != "op":
                raise self.fail("an instruction")
            self.instruction(self.next().value)  # type: ignore[arg-type]
        if not self.insns:
            tok = self.peek()
            raise ParseError("no instructions", tok.line, tok.col)
        self.resolve()
        return self.insns

    def emit(self, code: int, k: int = 0) -> None:
        self.insns.append(Insn(code, 0, 0, k))

    def ref(self, which: str) -> None:
        tok = self.expect("label", "a label")
        self.refs.append((len(self.insns), which, tok))

    def indexed(self, size: int) -> bool:
        """``[x + k]``, ``[%x + k]`` or ``[k]`` after ld/ldh/ldb; True if it was one."""
        if self.peek().kind != "[":
            return False
        self.next()
        if self.peek().kind in ("x", "%"):
            if self.peek().kind == "%":
                self.next()
            self.expect("x", "'x'")
            # "[x+4]": flex reads "+4" as a number; we take it as '+' 4.
            if self.peek().kind == "num" and self.peek().text.startswith("+"):
                k = self.number()
            else:
                self.expect("+", "'+'")
                k = self.number()
            self.expect("]", "']'")
            self.emit(0x40 | size, k)
        else:
            k = self.number()
            self.expect("]", "']'")
            self.emit(0x20 | size, k)
        return True

    def mem(self, code: int) -> None:
        self.expect("M", "'M'")
        self.expect("[", "'['")
        k = self.number()
        self.expect("]", "']'")
        self.emit(code, k)

    def msh(self) -> None:
        four_tok = self.peek()
        four = self.number()
        self.expect("*", "'*'")
        self.expect("(", "'('")
        self.expect("[", "'['")
        k = self.number()
        self.expect("]", "']'")
        self.expect("&", "'&'")
        mask_tok = self.peek()
        mask = self.number()
        self.expect(")", "')'")
        if four != 4 or mask != 0xF:
            bad = four_tok if four != 4 else mask_tok
            raise ParseError("only 4*([k]&0xf) is supported", bad.line, bad.col)
        self.emit(0xB1, k)

    def src(self) -> tuple[int, int]:
        """``#k`` -> (BPF_K, k); ``x`` / ``%x`` -> (BPF_X, 0)."""
        kind = self.peek().kind
        if kind == "#":
            self.next()
            return 0x00, self.number()
        if kind == "%":
            self.next()
            self.expect("x", "'x'")
            return 0x08, 0
        if kind == "x":
            self.next()
            return 0x08, 0
        raise self.fail("'#k' or 'x'")

    def instruction(self, op: str) -> None:
        size = {"ld": 0x00, "ldh": 0x08, "ldb": 0x10}
        if op in ("ldb", "ldh"):
            if self.peek().kind == "ext":
                self.emit(0x20 | size[op], (SKF_AD_OFF + self.next().value) & _U32)  # type: ignore[operator]
            elif not self.indexed(size[op]):
                raise self.fail("'[k]', '[x + k]' or an extension")
        elif op == "ld":
            kind = self.peek().kind
            if kind == "#":
                self.next()
                self.emit(0x00, self.number())
            elif kind == "len":
                self.next()
                self.emit(0x80)
            elif kind == "ext":
                self.emit(0x20, (SKF_AD_OFF + self.next().value) & _U32)  # type: ignore[operator]
            elif kind == "M":
                self.mem(0x60)
            elif not self.indexed(0x00):
                raise self.fail("'#k', 'len', 'M[k]', '[k]', '[x + k]' or an extension")
        elif op in ("ldi", "ldxi"):
            if self.peek().kind == "#":
                self.next()
            self.emit(0x00 if op == "ldi" else 0x01, self.number())
        elif op == "ldx":
            kind = self.peek().kind
            if kind == "#":
                self.next()
                self.emit(0x01, self.number())
            elif kind == "len":
                self.next()
                self.emit(0x81)
            elif kind == "M":
                self.mem(0x61)
            elif kind == "num":
                self.msh()
            else:
                raise self.fail("'#k', 'len', 'M[k]' or '4*([k]&0xf)'")
        elif op == "ldxb":
            self.msh()
        elif op in ("st", "stx"):
            self.mem(0x02 if op == "st" else 0x03)
        elif op in ("jmp", "ja"):
            self.ref("k")
            self.emit(0x05)
        elif op in ("jeq", "jgt", "jge", "jset"):
            base = {"jeq": 0x15, "jgt": 0x25, "jge": 0x35, "jset": 0x45}[op]
            src, k = self.src()
            self.expect(",", "','")
            self.ref("jt")
            if self.peek().kind == ",":
                self.next()
                self.ref("jf")
            self.emit(base | src, k)
        elif op in ("jneq", "jne", "jlt", "jle"):
            # The negated forms jump on false: jneq = jeq, jlt = jge, jle = jgt.
            base = {"jneq": 0x15, "jne": 0x15, "jlt": 0x35, "jle": 0x25}[op]
            src, k = self.src()
            self.expect(",", "','")
            self.ref("jf")
            self.emit(base | src, k)
        elif op in ("add", "sub", "mul", "div", "mod", "and", "or", "xor", "lsh", "rsh"):
            alu = {"add": 0x00, "sub": 0x10, "mul": 0x20, "div": 0x30, "or": 0x40,
                   "and": 0x50, "lsh": 0x60, "rsh": 0x70, "mod": 0x90, "xor": 0xA0}[op]
            src, k = self.src()
            self.emit(0x04 | alu | src, k)
        elif op == "neg":
            self.emit(0x84)
        elif op == "tax":
            self.emit(0x07)
        elif op == "txa":
            self.emit(0x87)
        else:  # ret
            kind = self.peek().kind
            if kind == "%":
                self.next()
                kind = self.peek().kind
                if kind not in ("a", "x"):
                    raise self.fail("'a' or 'x'")
            if kind == "a":
                self.next()
                self.emit(0x16)
            elif kind == "x":
                self.next()
                self.emit(0x0E)
            elif kind == "#":
                self.next()
                self.emit(0x06, self.number())
            else:
                raise self.fail("'#k', 'a' or 'x'")

    def resolve(self) -> None:
        for pc, which, tok in self.refs:
            target = self.labels.get(tok.text)
            if target is None:
                raise ParseError(f"no such label {_show(tok.text)}", tok.line, tok.col)
            insn = self.insns[pc]
            if which == "k":
                self.insns[pc] = insn._replace(k=(target - pc - 1) & _U32)
                continue
            delta = target - pc - 1
            if not 0 <= delta <= 255:
                raise ParseError(
                    f"instruction {pc} jumps to instruction {target} ({_show(tok.text)}), "
                    "which is out of range (0..255 ahead)", tok.line, tok.col)
            self.insns[pc] = insn._replace(**{which: delta})


def _parse_asm(text: str) -> list[Insn]:
    return _AsmParser(_lex(text)).program()


# --- binary ---------------------------------------------------------------------
def _parse_binary(blob: bytes) -> list[Insn]:
    if not blob:
        raise ParseError("empty program")
    if len(blob) % 8:
        raise ParseError(
            f"{len(blob)} bytes is not a whole number of 8-byte sock_filter instructions "
            f"({len(blob) % 8} bytes left over at offset {len(blob) - len(blob) % 8})")
    return decode(blob)


# --- detection and entry points ---------------------------------------------------
_TEXT_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0e-\x1f\x7f]")
_FIRST_DDD = re.compile(r"^\s*[0-9]+\s*(,.*)?$")
_D_PREFIX = re.compile(r"^\s*\([0-9]+\)")
_D_JTJF = re.compile(r"\bjt\s+[0-9]+\s+jf\s+[0-9]+\s*$", re.MULTILINE)


def _as_text(data: bytes) -> str | None:
    if _TEXT_CONTROL.search(data):
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def detect(data: str | bytes) -> str:
    """Guess the format of a program: binary, then by the first non-blank line."""
    if isinstance(data, bytes):
        text = _as_text(data)
        if text is None:
            return "binary"
    else:
        text = data
    first = next((ln for ln in text.split("\n") if ln.strip()), "")
    if _FIRST_DDD.match(first):
        return "tcpdump-ddd"
    if first.lstrip().startswith("{") or _DD_WRAPPER.match(first):
        return "tcpdump-dd"
    if _D_PREFIX.match(first) or _D_JTJF.search(text):
        return "tcpdump-d"
    return "bpf_asm"


_PARSERS = {
    "tcpdump-d": _parse_d,
    "tcpdump-dd": _parse_dd,
    "tcpdump-ddd": _parse_ddd,
    "bpf_asm": _parse_asm,
}


def parse(data: str | bytes, fmt: str | None = None) -> list[Insn]:
    """Read a program in ``fmt`` (one of FORMATS), or in the detected format if None.

    Raises ParseError (1-based line and column, what was expected); ValueError
    only for an unknown ``fmt``.
    """
    if fmt is not None and fmt not in FORMATS:
        raise ValueError(_unknown_format(fmt))
    detected = fmt is None
    if fmt is None:
        fmt = detect(data)
    if fmt == "binary":
        if isinstance(data, str):
            try:
                data = data.encode("latin-1")
            except UnicodeEncodeError:
                raise ParseError("binary programs must be given as bytes") from None
        return _parse_binary(data)
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ParseError(f"not UTF-8 text (byte 0x{data[exc.start]:02x} at offset "
                             f"{exc.start}); binary programs need the 'binary' format") from None
    if not data.strip():
        raise ParseError("empty program", 1, 1)
    if fmt == "bpf_asm" and detected:
        try:
            return _parse_asm(data)
        except ParseError as asm_error:
            # tcpdump -d text pasted without its "(000)" prefixes reads the same
            try:
                return _parse_d(data)
            except ParseError:
                raise asm_error from None
    return _PARSERS[fmt](data)


def load(path: str | Path, fmt: str | None = None) -> list[Insn]:
    """Read a program file; ``.bin`` files and files with non-text bytes are binary."""
    if fmt is not None and fmt not in FORMATS:
        raise ValueError(_unknown_format(fmt))
    blob = Path(path).read_bytes()
    if fmt is None and Path(path).suffix.lower() == ".bin":
        fmt = "binary"
    return parse(blob, fmt)
