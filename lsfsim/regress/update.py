"""``--update``: write the observed ``accepts`` back into the suite, snapshot style.

tomlkit edits the document in place, so comments, blank lines, key order and
quoting stay as the author wrote them; a filter without ``accepts`` gets the
key after its program (``expr`` or ``file``).  The file is replaced
atomically: a failed write leaves the suite as it was.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import tomlkit

__all__ = ["update_accepts"]


def update_accepts(path: str | Path,
                   accepts: Mapping[str, int]) -> dict[str, tuple[int | None, int]]:
    """Set ``accepts`` of the filters named in ``accepts``; return {name: (old, new)} changed."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    doc = tomlkit.parse(text)
    changed: dict[str, tuple[int | None, int]] = {}
    for table in doc.get("filter", []):
        name = table.get("name")
        if name not in accepts:
            continue
        new = accepts[name]
        old = table.get("accepts")
        if old == new:
            continue
        if "accepts" in table:
            table["accepts"] = new
        else:
            _insert_after(table, ("snaplen", "expr", "file"), "accepts", new)
        changed[str(name)] = (None if old is None else int(old), new)
    if changed:
        from lsfsim.outputs import write_output

        write_output(path, tomlkit.dumps(doc))   # atomic; the suite's mode and owner kept
    return changed


def _insert_after(table: tomlkit.items.Table, after: tuple[str, ...], key: str,
                  value: int) -> None:
    """Add ``key`` right after the first of ``after`` present, else at the end.

    tomlkit has no public "insert at"; its container's ``_insert_at`` is used
    when present, else the key goes at the table's end.
    """
    container = table.value
    body_keys = [k.key if k is not None else None for k, _ in container.body]
    insert_at = getattr(container, "_insert_at", None)
    for anchor in after:
        if anchor in body_keys and insert_at is not None:
            position = body_keys.index(anchor) + 1
            if position < len(body_keys):
                insert_at(position, key, value)
                return
            break
    table.add(key, value)
