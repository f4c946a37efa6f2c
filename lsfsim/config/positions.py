"""Where a dotted key is defined in a model file's TOML text, for error messages.

tomllib gives data without positions; the validation errors name a field, and
the user wants the line.  A line scanner, not a TOML parser: good enough for
error messages; a key inside a multi-line string could fool it, which costs only
a line number.
"""

from __future__ import annotations

import re

__all__ = ["locate"]

_HEADER_RE = re.compile(r"^\[\[?\s*(?P<key>[^\]]+?)\s*\]\]?")
_KEY_RE = re.compile(
    r"^(?P<key>(?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*'))*)\s*="
)


def _split_key(key: str) -> tuple[str, ...]:
    parts = re.findall(r"\"[^\"]*\"|'[^']*'|[^.\s]+", key)
    return tuple(p[1:-1] if p[:1] in "\"'" else p for p in parts)


def locate(text: str | None, loc: tuple[str, ...]) -> int | None:
    """The line defining ``loc``, or the closest enclosing key or table (None if none)."""
    if not text:
        return None
    table: tuple[str, ...] = ()
    best_len, best_line = 0, None
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = _HEADER_RE.match(line)
        if m:
            table = _split_key(m["key"])
            path = table
        else:
            m = _KEY_RE.match(line)
            if not m:
                continue
            path = table + _split_key(m["key"])
        # A line defining loc or an enclosing table, or a key inside loc
        # (``nic.foo = 1`` when loc is ``...nic.nic``).
        n = min(len(path), len(loc))
        if n > best_len and loc[:n] == path[:n]:
            best_len, best_line = n, lineno
    return best_line
