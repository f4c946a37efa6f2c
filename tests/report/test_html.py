"""The HTML report: self-contained, complete, written atomically."""

from __future__ import annotations

import base64
import re
from html import escape
from pathlib import Path

import pytest

from lsfsim.report import html as report_html
from lsfsim.report.html import table_html, write_report
from lsfsim.report.plots import PLOTS
from lsfsim.report.procfs import render_all
from lsfsim.report.summary import summary_tables
from tests.report import sampled

DATA_URI = re.compile(r"data:[a-z]+/[a-z+.-]+;base64,[A-Za-z0-9+/=]*")


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    result, sampler = sampled("SLOW_READER")
    path = write_report(tmp_path_factory.mktemp("report") / "out", result, sampler)
    return path, path.read_text(encoding="utf-8")


def test_written_where_asked(report: tuple[Path, str]) -> None:
    path, text = report
    assert path.name == "index.html" and path.is_file()
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    for name, *_ in PLOTS:
        assert (path.parent / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
        assert b"<svg" in (path.parent / f"{name}.svg").read_bytes()
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


def test_no_external_resources(report: tuple[Path, str]) -> None:
    _path, text = report
    outside = DATA_URI.sub("DATA", text)        # base64 may contain "//"
    for bad in ("http:", "https:", "//", "url(", "@import", "href="):
        assert bad not in outside, bad
    sources = re.findall(r"""src\s*=\s*["']?([^"' >]*)""", outside)
    assert sources and all(s == "DATA" for s in sources)
    assert "<script" not in outside and "<link" not in outside


def test_every_plot_is_embedded_as_a_png(report: tuple[Path, str]) -> None:
    path, text = report
    uris = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
    assert len(uris) == len(PLOTS)
    for uri in uris:
        png = base64.b64decode(uri, validate=True)
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
    # the embedded images are the files written next to the page
    files = {(path.parent / f"{name}.png").read_bytes() for name, *_ in PLOTS}
    assert {base64.b64decode(u) for u in uris} == files


def test_summary_tables_proc_and_scenario_are_in(report: tuple[Path, str]) -> None:
    result, _sampler = sampled("SLOW_READER")
    _path, text = report
    for table in summary_tables(result):
        assert escape(str(table.title)) in text
        for column in table.columns:
            for cell in column.cells:
                assert f">{escape(str(cell))}</td>" in text
    assert escape(render_all(result)) in text
    drops = result.sockets[0]["rcvbuf_drops"]
    assert f">{drops:,}</td>" in text
    assert escape('"reader_work": 0.0002') in text         # the scenario, as JSON
    assert "pcnet32_rx_entry" in text                      # the model's costs


def test_table_html_keeps_rows_and_alignment() -> None:
    from rich.table import Table

    t = Table(title="a <title>")
    t.add_column("name")
    t.add_column("n", justify="right")
    t.add_row("x & y", "1")
    t.add_row("z", "22")
    out = table_html(t)
    assert "<caption>a &lt;title&gt;</caption>" in out
    assert out.count("<tr>") == 3
    assert '<td>x &amp; y</td><td class="right">1</td>' in out


def test_report_without_sampler(tmp_path: Path) -> None:
    result, _sampler = sampled("SLOW_READER")
    text = write_report(tmp_path, result, None).read_text()
    assert text.count("data:image/png;base64,") == 1      # the latency plot only


def test_interrupted_write_keeps_the_previous_report(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    result, sampler = sampled("SLOW_READER")
    monkeypatch.setattr(report_html, "figure_bytes",
                        lambda _fig, fmt: b"\x89PNG fake " + fmt.encode())
    index = write_report(tmp_path, result, sampler)
    before = index.read_bytes()

    def broken(*_args: object, **_kw: object) -> str:
        raise OSError("disk full")

    monkeypatch.setattr(report_html, "render_report", broken)
    with pytest.raises(OSError, match="disk full"):
        write_report(tmp_path, result, sampler)
    assert index.read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_target_that_is_a_file(tmp_path: Path) -> None:
    result, sampler = sampled("SLOW_READER")
    target = tmp_path / "report"
    target.write_text("x")
    with pytest.raises(NotADirectoryError, match="report"):
        write_report(target, result, sampler)


def test_report_files_follow_links_and_keep_modes(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The report's files go through lsfsim.outputs: a linked index.html stays a link,
    an existing plot keeps its mode."""
    import os
    import stat

    result, sampler = sampled("SLOW_READER")
    monkeypatch.setattr(report_html, "figure_bytes",
                        lambda _fig, fmt: b"\x89PNG fake " + fmt.encode())
    elsewhere = tmp_path / "published.html"
    elsewhere.write_text("old")
    out = tmp_path / "out"
    out.mkdir()
    (out / "index.html").symlink_to(elsewhere)
    (out / "cpu.png").write_bytes(b"old")
    os.chmod(out / "cpu.png", 0o604)
    write_report(out, result, sampler)
    assert (out / "index.html").is_symlink() and "<html" in elsewhere.read_text()
    assert stat.S_IMODE(os.stat(out / "cpu.png").st_mode) == 0o604
    assert (out / "cpu.png").read_bytes() == b"\x89PNG fake png"
