"""Result files: written whole or not at all, links followed, the definition stored."""

from __future__ import annotations

import json
import os
import threading

import pyarrow.parquet as pq
import pytest

from lsfsim.study.output import write_output
from lsfsim.study.table import CSV_PREFIX, META_KEY, encode, read_table


def test_a_regular_file_is_replaced_whole(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("old\n")
    os.chmod(path, 0o640)
    write_output(path, b"new\n")
    assert path.read_bytes() == b"new\n" and (path.stat().st_mode & 0o777) == 0o640
    assert os.listdir(tmp_path) == ["t.csv"]


def test_a_failed_write_leaves_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "t.csv"
    path.write_text("old\n")

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(OSError):
        write_output(path, b"new\n")
    assert path.read_text() == "old\n" and os.listdir(tmp_path) == ["t.csv"]


def test_a_symlink_is_followed_and_kept(tmp_path):
    target = tmp_path / "real.csv"
    target.write_text("old\n")
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    write_output(link, b"new\n")
    assert link.is_symlink() and target.read_text() == "new\n"


def test_a_fifo_is_written_through(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []

    def read() -> None:
        with open(fifo, "rb") as fp:
            got.append(fp.read())

    reader = threading.Thread(target=read)
    reader.start()
    write_output(fifo, b"rows\n")
    reader.join(10)
    assert got == [b"rows\n"]


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_the_definition_travels_with_the_table(tmp_path, fmt):
    definition = {"format": "lsfsim-sweep/1", "vary": {"rate": [1.0, 2.0]}, "base": {"x": 1}}
    rows = [{"rate": 1.0, "seed": 1, "status": "ok", "error": None, "offered": 5},
            {"rate": 2.0, "seed": 1, "status": "error", "error": "E: bad", "offered": None}]
    path = tmp_path / f"t.{fmt}"
    path.write_bytes(encode(rows, definition, fmt))
    if fmt == "parquet":
        assert json.loads(pq.read_schema(path).metadata[META_KEY]) == definition
    else:
        assert path.read_text().startswith(CSV_PREFIX)
    found, back = read_table(path)
    assert found == definition
    assert [r["status"] for r in back] == ["ok", "error"] and back[1]["offered"] is None
