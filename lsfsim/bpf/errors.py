"""Errors of the BPF toolchain, each naming where the fault is."""

from __future__ import annotations


class FilterError(Exception):
    """A program the kernel's checker refuses (or cannot run).

    ``errno`` is the errno name the kernel returns (``"EINVAL"``, ``"ENOMEM"``,
    ``"EPERM"``); ``pc`` the index of the faulty instruction when one is at fault.
    """

    def __init__(self, errno: str, message: str, pc: int | None = None) -> None:
        self.errno = errno
        self.pc = pc
        self.message = message
        where = f" at instruction {pc}" if pc is not None else ""
        super().__init__(f"{errno}{where}: {message}")


class ParseError(ValueError):
    """Program text that does not parse; ``line`` and ``column`` are 1-based."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None) -> None:
        self.line = line
        self.column = column
        self.message = message
        where = ""
        if line is not None:
            where = f"line {line}" + (f", column {column}" if column is not None else "") + ": "
        super().__init__(f"{where}{message}")


class CompileError(ValueError):
    """libpcap's pcap_compile refused an expression; the text is libpcap's."""
