"""The binary format: the array of 8-byte little-endian ``struct sock_filter``."""

from __future__ import annotations

from lsfsim.bpf.errors import ParseError
from lsfsim.bpf.isa import Insn, decode


def read_binary(blob: bytes) -> list[Insn]:
    if not blob:
        raise ParseError("empty program")
    if len(blob) % 8:
        raise ParseError(
            f"{len(blob)} bytes is not a whole number of 8-byte sock_filter instructions "
            f"({len(blob) % 8} bytes left over at offset {len(blob) - len(blob) % 8})")
    return decode(blob)
