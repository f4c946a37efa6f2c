"""tcpdump -ddd: a count line, then ``code jt jf k`` in decimal.

The reader also takes bpf_asm's one-line ``4,40 0 0 12,...`` form (what
``xt_bpf`` takes): items may be separated by commas as well as newlines.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from lsfsim.bpf.errors import ParseError
from lsfsim.bpf.formats.numbers import numbered_lines, read_field, show
from lsfsim.bpf.isa import Insn


def write_ddd(prog: Sequence[Insn]) -> str:
    return f"{len(prog)}\n" + "".join(f"{i.code} {i.jt} {i.jf} {i.k}\n" for i in prog)


def read_ddd(text: str) -> list[Insn]:
    items: list[tuple[int, int, str]] = []  # (line, column, text)
    for lineno, raw in numbered_lines(text):
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
            raise ParseError(f"expected 'code jt jf k', got {show(item)}", lineno, col)
        values = []
        offset = 0
        for text_field, name, bits in zip(fields, ("code", "jt", "jf", "k"), (16, 8, 8, 32),
                                          strict=True):
            offset = item.index(text_field, offset)
            values.append(read_field(text_field, lineno, col + offset, name, bits))
            offset += len(text_field)
        prog.append(Insn(*values))
    if len(prog) != count:
        last_line = items[-1][0]
        raise ParseError(f"expected {count} instructions, found {len(prog)}", last_line, 1)
    return prog
