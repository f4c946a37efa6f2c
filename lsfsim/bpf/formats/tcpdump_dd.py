"""tcpdump -dd: C initialisers, ``{ 0x28, 0, 0, 0x0000000c },``.

The reader skips a ``struct sock_filter name[] = {`` ... ``};`` wrapper around them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from lsfsim.bpf.errors import ParseError
from lsfsim.bpf.formats.numbers import NUM, numbered_lines, read_field
from lsfsim.bpf.isa import Insn

_DD_ITEM = re.compile(
    rf"^\s*\{{\s*({NUM})\s*,\s*({NUM})\s*,\s*({NUM})\s*,\s*({NUM})\s*\}}\s*,?\s*$")
DD_WRAPPER = re.compile(
    r"^\s*(?:(?:static|const)\s+)*struct\s+(?:sock_filter|bpf_insn)\s+\w+\s*\[\s*\w*\s*\]"
    r"\s*=\s*\{\s*$|^\s*\}\s*;\s*$")


def write_dd(prog: Sequence[Insn]) -> str:
    return "".join(f"{{ 0x{i.code:x}, {i.jt}, {i.jf}, 0x{i.k:08x} }},\n" for i in prog)


def read_dd(text: str) -> list[Insn]:
    prog: list[Insn] = []
    for lineno, raw in numbered_lines(text):
        line = raw.rstrip("\r")
        if not line.strip() or DD_WRAPPER.match(line):
            continue
        m = _DD_ITEM.match(line)
        if m is None:
            col = len(line) - len(line.lstrip()) + 1
            raise ParseError("expected '{ code, jt, jf, k },'", lineno, col)
        fields = [
            read_field(m.group(g), lineno, m.start(g) + 1, name, bits)
            for g, name, bits in ((1, "code", 16), (2, "jt", 8), (3, "jf", 8), (4, "k", 32))
        ]
        prog.append(Insn(*fields))
    if not prog:
        raise ParseError("no instructions", 1, 1)
    return prog
