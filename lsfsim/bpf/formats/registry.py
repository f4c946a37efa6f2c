"""The entry points: read, load and write a program in any of the five formats.

Each format's reader and writer lives in its own module; this one routes to
them, detects the format when none is given, and turns text/bytes mismatches
into ParseError.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from lsfsim.bpf.errors import ParseError
from lsfsim.bpf.formats.asm_parser import read_asm
from lsfsim.bpf.formats.asm_writer import write_asm
from lsfsim.bpf.formats.binary import read_binary
from lsfsim.bpf.formats.detect import detect
from lsfsim.bpf.formats.image import write_d
from lsfsim.bpf.formats.tcpdump_d import read_d
from lsfsim.bpf.formats.tcpdump_dd import read_dd, write_dd
from lsfsim.bpf.formats.tcpdump_ddd import read_ddd, write_ddd
from lsfsim.bpf.isa import Insn, check_fields, encode

FORMATS = ("tcpdump-d", "tcpdump-dd", "tcpdump-ddd", "bpf_asm", "binary")


def format(insns: Iterable[Sequence[int]], fmt: str = "tcpdump-d") -> str | bytes:  # noqa: A001
    """Render a program; text formats end with a newline, ``binary`` gives bytes."""
    prog = [Insn(*i) for i in insns]
    for pc, insn in enumerate(prog):
        check_fields(insn, pc)
    if fmt == "tcpdump-d":
        return write_d(prog)
    if fmt == "tcpdump-dd":
        return write_dd(prog)
    if fmt == "tcpdump-ddd":
        return write_ddd(prog)
    if fmt == "bpf_asm":
        return write_asm(prog)
    if fmt == "binary":
        return encode(prog)
    raise ValueError(unknown_format(fmt))


def unknown_format(fmt: object) -> str:
    return f"unknown program format {fmt!r} (choose from {', '.join(FORMATS)})"


_READERS = {
    "tcpdump-d": read_d,
    "tcpdump-dd": read_dd,
    "tcpdump-ddd": read_ddd,
    "bpf_asm": read_asm,
}


def parse(data: str | bytes, fmt: str | None = None) -> list[Insn]:
    """Read a program in ``fmt`` (one of FORMATS), or in the detected format if None.

    Raises ParseError (1-based line and column, what was expected); ValueError
    only for an unknown ``fmt``.
    """
    if fmt is not None and fmt not in FORMATS:
        raise ValueError(unknown_format(fmt))
    detected = fmt is None
    if fmt is None:
        fmt = detect(data)
    if fmt == "binary":
        if isinstance(data, str):
            try:
                data = data.encode("latin-1")
            except UnicodeEncodeError:
                raise ParseError("binary programs must be given as bytes") from None
        return read_binary(data)
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
            return read_asm(data)
        except ParseError as asm_error:
            # tcpdump -d text pasted without its "(000)" prefixes reads the same
            try:
                return read_d(data)
            except ParseError:
                raise asm_error from None
    return _READERS[fmt](data)


def load(path: str | Path, fmt: str | None = None) -> list[Insn]:
    """Read a program file; ``.bin`` files and files with non-text bytes are binary."""
    if fmt is not None and fmt not in FORMATS:
        raise ValueError(unknown_format(fmt))
    blob = Path(path).read_bytes()
    if fmt is None and Path(path).suffix.lower() == ".bin":
        fmt = "binary"
    return parse(blob, fmt)
