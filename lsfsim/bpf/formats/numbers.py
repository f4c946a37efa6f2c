"""Reading numbers and fields out of program text, with 1-based line/column errors.

Shared by every text reader: an integer literal is decimal (leading zeros
allowed) or 0x hex with an optional sign; a 32-bit field may be written signed
or unsigned and is kept unsigned.
"""

from __future__ import annotations

import re

from lsfsim.bpf.errors import ParseError

U32 = 0xFFFFFFFF

NUM = r"[+-]?(?:0[xX][0-9a-fA-F]+|[0-9]+)"


_NUM_RE = re.compile(NUM)
MAX_DIGITS = 40  # longer literals cannot fit in 32 bits (and int() refuses > 4300 digits)


def read_int(text: str, line: int, col: int, what: str) -> int:
    """An integer literal: decimal (leading zeros allowed) or 0x hex, optional sign."""
    if not _NUM_RE.fullmatch(text):
        raise ParseError(f"expected {what}, got {show(text)}", line, col)
    if len(text) > MAX_DIGITS:
        raise ParseError(f"{what} {text[:12]}... does not fit in 32 bits", line, col)
    body = text.lstrip("+-")
    value = int(body[2:], 16) if body[:2].lower() == "0x" else int(body, 10)
    return -value if text.startswith("-") else value


def read_u32(text: str, line: int, col: int, what: str = "number") -> int:
    """A 32-bit field written signed or unsigned; returned as the unsigned value."""
    value = read_int(text, line, col, what)
    if not -(1 << 31) <= value <= U32:
        raise ParseError(f"{what} {show(text)} does not fit in 32 bits", line, col)
    return value & U32


def read_field(text: str, line: int, col: int, name: str, bits: int) -> int:
    """An unsigned field of ``bits`` bits (k may also be written as a negative s32)."""
    if bits == 32:
        return read_u32(text, line, col, name)
    value = read_int(text, line, col, name)
    if not 0 <= value < (1 << bits):
        raise ParseError(f"{name} {show(text)} does not fit in u{bits}", line, col)
    return value


def show(text: str, limit: int = 24) -> str:
    """repr() of user text for a message, cut short."""
    return repr(text if len(text) <= limit else text[:limit] + "...")


def numbered_lines(text: str) -> list[tuple[int, str]]:
    return list(enumerate(text.split("\n"), start=1))
