"""Guessing a program's format from its bytes: binary, then by the first non-blank line."""

from __future__ import annotations

import re

from lsfsim.bpf.formats.tcpdump_dd import DD_WRAPPER

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
    if first.lstrip().startswith("{") or DD_WRAPPER.match(first):
        return "tcpdump-dd"
    if _D_PREFIX.match(first) or _D_JTJF.search(text):
        return "tcpdump-d"
    return "bpf_asm"
