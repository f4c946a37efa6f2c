"""The sweep's result file: a tidy table written as rows arrive, resumable.

Formats, by the extension of ``--out``:

* ``.parquet`` (or ``.pq``): Apache Parquet through pyarrow; the sweep's
  definition is in the file's key-value metadata under ``lsfsim.sweep``;
* ``.csv``: the definition is the first line, a comment
  ``# lsfsim-sweep {...json...}``, and the table follows (read it with
  ``pandas.read_csv(path, skiprows=1)``).

While a sweep runs, every finished row is appended at once to a journal
beside the file, ``FILE.journal`` (JSON lines, the definition first), and
the table itself is rewritten atomically from time to time and at the end,
after which the journal is removed.  A sweep stopped in any way (Ctrl-C, a
killed process, a lost machine) thus leaves the table as last written plus
a journal holding every row that finished since; ``--resume`` reads both.

The definition says what the rows mean: the base run options, the ``--set``
fields, the names of the varied parameters (with the values asked for),
``--repeat``, the first seed and the inclusive times measured.  ``--resume``
accepts a file whose base options, fields, varied names and measurements
are those of the new sweep (the values and the repeat count may grow) and
refuses any other before writing anything.
"""

from __future__ import annotations

import io
import json
import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from lsfsim.cli.common import InputError
from lsfsim.outputs import write_output

FORMAT = "lsfsim-sweep/1"
META_KEY = b"lsfsim.sweep"
CSV_PREFIX = "# lsfsim-sweep "
EXTENSIONS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}
# the definition's parts that must match for --resume
SAME_FOR_RESUME = ("base", "set", "inclusive")


def table_format(path: str | os.PathLike[str], option: str = "--out") -> str:
    """"parquet" or "csv" from the file's extension; InputError otherwise."""
    suffix = Path(path).suffix.lower()
    if suffix not in EXTENSIONS:
        raise InputError(f"{option} {os.fspath(path)}: unknown extension {suffix or '(none)'!r}"
                         f"; use .parquet or .csv")
    return EXTENSIONS[suffix]


def row_key(row: dict[str, Any], names: Sequence[str]) -> str:
    """The identity of a row: its varied values and its seed (as text, as a CSV keeps them)."""
    return json.dumps([str(_plain(row.get(n))) for n in (*names, "seed")])


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):            # numpy scalar
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def compatible(old: dict[str, Any], new: dict[str, Any]) -> str | None:
    """None when rows of ``old`` can be kept in ``new``; else what differs."""
    if old.get("format") != FORMAT:
        return "not a table of lsfsim sweep"
    for part in SAME_FOR_RESUME:
        if old.get(part) != new.get(part):
            return f"its {part} differs ({_short(old.get(part))} vs {_short(new.get(part))})"
    if sorted(old.get("vary", {})) != sorted(new.get("vary", {})):
        return f"it varies {', '.join(old.get('vary', {})) or 'nothing'}, not " \
               f"{', '.join(new.get('vary', {})) or 'nothing'}"
    return None


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 80 else text[:77] + "..."


class SweepFile:
    """``--out FILE`` and its journal."""

    def __init__(self, path: str | os.PathLike[str], definition: dict[str, Any]) -> None:
        self.path = Path(path)
        self.format = table_format(self.path)
        self.definition = definition
        self.journal = self.path.with_name(self.path.name + ".journal")
        self._fp: Any = None

    # --- reading -------------------------------------------------------------
    def previous_rows(self) -> list[dict[str, Any]]:
        """The rows of the file and of its journal (for --resume), after checking both."""
        rows: dict[str, dict[str, Any]] = {}
        names = list(self.definition["vary"])
        sources = []
        if self.path.exists():
            sources.append((self.path, *read_table(self.path)))
        if self.journal.exists():
            sources.append((self.journal, *read_journal(self.journal)))
        for where, definition, found in sources:
            why = compatible(definition, self.definition)
            if why is not None:
                raise InputError(f"--resume: {where}: made by a different sweep: {why}")
            for row in found:
                rows[row_key(row, names)] = row
        return list(rows.values())

    # --- writing -------------------------------------------------------------
    def start(self) -> None:
        """Begin a journal (replacing any other): the definition line."""
        self._fp = open(self.journal, "w", encoding="utf-8")  # noqa: SIM115 - kept open
        self._fp.write(json.dumps({"definition": self.definition}) + "\n")
        self._fp.flush()

    def append(self, row: dict[str, Any]) -> None:
        """Put one finished row in the journal, on disk before the next arrives.

        The journal begins with the first row: a sweep that fails before any
        point finished (a scheduler out of reach) leaves no file behind."""
        if self._fp is None:
            self.start()
        self._fp.write(json.dumps(row, default=_plain) + "\n")
        self._fp.flush()
        os.fsync(self._fp.fileno())

    def save(self, rows: list[dict[str, Any]], *, final: bool) -> None:
        """Write the whole table atomically; after the final save, drop the journal."""
        write_output(self.path, encode(rows, self.definition, self.format))
        if final:
            self.close()
            self.journal.unlink(missing_ok=True)

    def close(self) -> None:
        if self._fp is not None:
            self._fp.close()
            self._fp = None


def frame(rows: Iterable[dict[str, Any]]) -> Any:
    """The rows as a pandas DataFrame (columns in first-seen order)."""
    import pandas as pd

    return pd.DataFrame(list(rows))


def encode(rows: list[dict[str, Any]], definition: dict[str, Any], fmt: str) -> bytes:
    """The file's bytes: Parquet with the definition in its metadata, or commented CSV."""
    df = frame(rows)
    text = json.dumps(definition, sort_keys=True, default=_plain)
    if fmt == "csv":
        return (CSV_PREFIX + text + "\n" + df.to_csv(index=False)).encode()
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(_arrow_safe(df), preserve_index=False)
    meta = dict(table.schema.metadata or {})
    meta[META_KEY] = text.encode()
    table = table.replace_schema_metadata(meta)
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def _arrow_safe(df: Any) -> Any:
    """Object columns holding several Python types (rare) as strings, for Arrow."""
    for col in df.columns:
        if df[col].dtype == object:
            kinds = {type(v) for v in df[col] if v is not None and not _isnan(v)}
            if len(kinds) > 1:
                df[col] = [None if v is None else str(v) for v in df[col]]
    return df


def _isnan(v: Any) -> bool:
    return isinstance(v, float) and math.isnan(v)


def read_table(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(definition, rows) of a table written by a sweep; InputError if it is not one."""
    fmt = table_format(path, "--resume")
    try:
        if fmt == "csv":
            import pandas as pd

            with open(path, encoding="utf-8") as fp:
                first = fp.readline()
            if not first.startswith(CSV_PREFIX):
                raise InputError(f"--resume: {path}: not made by lsfsim sweep "
                                 f"(its first line is not '{CSV_PREFIX.strip()} ...')")
            definition = json.loads(first[len(CSV_PREFIX):])
            df = pd.read_csv(path, skiprows=1)
        else:
            import pyarrow.parquet as pq

            table = pq.read_table(path)
            raw = (table.schema.metadata or {}).get(META_KEY)
            if raw is None:
                raise InputError(f"--resume: {path}: not made by lsfsim sweep "
                                 f"(no {META_KEY.decode()} metadata)")
            definition = json.loads(raw)
            df = table.to_pandas()
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - any unreadable file is one line
        raise InputError(f"--resume: {path}: cannot read it ({type(exc).__name__}: "
                         f"{' '.join(str(exc).split())})") from None
    rows = [{k: (None if _isnan(v) else v) for k, v in r.items()}
            for r in df.to_dict("records")]
    return definition, rows


def read_journal(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(definition, rows) of a journal; a last line cut short by a crash is ignored."""
    rows = []
    definition: dict[str, Any] = {}
    with open(path, encoding="utf-8") as fp:
        for n, line in enumerate(fp):
            try:
                item = json.loads(line)
            except json.JSONDecodeError:
                continue
            if n == 0:
                definition = item.get("definition", {}) if isinstance(item, dict) else {}
            elif isinstance(item, dict):
                rows.append(item)
    return definition, rows
