"""``lsfsim run --report DIR``: one self-contained HTML page about a run.

The page needs nothing but itself: the CSS is inline and the plots are
embedded as ``data:`` URIs, so it can be mailed, archived or opened offline.
It holds the same tables as the terminal summary (built from
``summary_tables``, so both always agree), the plots, the /proc views, and
the scenario and model the run used.  The plots are also written next to it
as PNG and SVG files for slides.
"""

from __future__ import annotations

import base64
import json
from html import escape
from pathlib import Path
from typing import Any

from rich.table import Table

from lsfsim.report.plots import PLOTS, all_plots, figure_bytes
from lsfsim.report.procfs import render_all
from lsfsim.report.sampler import Sampler
from lsfsim.report.summary import summary_tables
from lsfsim.result import Result

CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 62em; color: #222;
       padding: 0 1em; line-height: 1.4; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; }
h2 { font-size: 1.2em; border-bottom: 1px solid #ccc; margin-top: 2em; }
table { border-collapse: collapse; margin: 0.8em 0 1.2em 0; font-size: 0.92em; }
caption { text-align: left; font-weight: bold; padding-bottom: 0.3em; }
th, td { border: 1px solid #ddd; padding: 0.2em 0.6em; }
th { background: #f3f3f3; }
td.right, th.right { text-align: right; font-variant-numeric: tabular-nums; }
td.center, th.center { text-align: center; }
pre { background: #f7f7f7; border: 1px solid #e3e3e3; padding: 0.6em; overflow-x: auto;
      font-size: 0.85em; }
figure { margin: 1em 0 2em 0; }
figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 0.9em; color: #444; }
.meta { color: #555; font-size: 0.9em; }
"""

PLOT_CAPTIONS = {
    "rx_ring": "Descriptors the chip has filled and the driver has not yet taken. When the "
               "line reaches the ring size, further frames are missed (rx_missed_errors).",
    "socket_queues": "sk_rmem_alloc counts each queued skb's truesize, not its captured "
                     "length; packet_rcv drops a packet when its truesize would take "
                     "sk_rmem_alloc to sk_rcvbuf.",
    "drops": "Cumulative drops at each place that dropped anything.",
    "cpu": "Share of each interval spent in hard interrupts, softirq, system calls and "
           "user work on each CPU.",
    "rates": "Offered load, frames the driver passed up, and NIC interrupts per "
             "millisecond; with NAPI, interrupts fall as the load rises.",
    "latency": "Where a packet's time goes from the wire to user space (log scale).",
}


def table_html(table: Table) -> str:
    """A rich Table (as printed by the summary) as an HTML table."""
    columns = table.columns
    rows = list(zip(*(list(col.cells) for col in columns), strict=True)) if columns else []
    align = [col.justify if col.justify in ("right", "center") else "" for col in columns]

    def cls(i: int) -> str:
        return f' class="{align[i]}"' if align[i] else ""

    out = ["<table>"]
    if table.title:
        out.append(f"<caption>{escape(str(table.title))}</caption>")
    out.append("<thead><tr>" + "".join(
        f"<th{cls(i)}>{escape(str(col.header))}</th>" for i, col in enumerate(columns))
        + "</tr></thead>")
    out.append("<tbody>")
    for row in rows:
        out.append("<tr>" + "".join(
            f"<td{cls(i)}>{escape(str(cell))}</td>" for i, cell in enumerate(row)) + "</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


def _json_block(data: Any) -> str:
    return f"<pre>{escape(json.dumps(data, indent=2, sort_keys=True, default=str))}</pre>"


def render_report(result: Result, sampler: Sampler | None = None,
                  images: dict[str, bytes] | None = None) -> str:
    """The report page as text.  ``images`` maps plot names to PNG bytes (rendered
    here when not given)."""
    d = result.data
    if images is None:
        images = {name: figure_bytes(fig, "png")
                  for name, _title, fig, _arrays in all_plots(result, sampler)}
    titles = {name: title for name, title, _fn, _needs in PLOTS}
    title = f"lsfsim: {d['model']} (Linux {d['kernel_version']})"
    traffic = d["scenario"]["traffic"]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(title)}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f'<p class="meta">{escape(traffic["kind"])} traffic: {d["offered"]:,} frames offered, '
        f'{d["sim_seconds"] * 1e3:.3f} ms simulated, seed {d["scenario"]["seed"]}, '
        f'NAPI {"on" if d["scenario"]["napi"] else "off"}.</p>',
        "<h2>Summary</h2>",
    ]
    parts += [table_html(t) for t in summary_tables(result)]
    if images:
        parts.append("<h2>Over time</h2>")
        if sampler is not None and len(sampler):
            parts.append(f'<p class="meta">{len(sampler):,} samples, one every '
                         f'{sampler.interval * 1e6:g} µs of simulated time.</p>')
        for name, png in images.items():
            data = base64.b64encode(png).decode("ascii")
            parts.append(
                f'<figure><img alt="{escape(titles.get(name, name))}" '
                f'src="data:image/png;base64,{data}">'
                f"<figcaption><b>{escape(titles.get(name, name))}.</b> "
                f"{escape(PLOT_CAPTIONS.get(name, ''))}</figcaption></figure>")
    parts += [
        "<h2>/proc at the end of the run</h2>",
        f"<pre>{escape(render_all(result))}</pre>",
        "<h2>Scenario</h2>",
        _json_block(d["scenario"]),
    ]
    machine = getattr(sampler, "machine", None)
    if machine is not None:
        parts += ["<h2>Model</h2>", "<details><summary>"
                  f"{escape(d['model'])}: every figure the run used (SI units)</summary>",
                  _json_block(machine.model.to_dict()), "</details>"]
    parts.append(
        f'<p class="meta">lsfsim {escape(str(d["lsfsim_version"]))}, '
        f'{d["events"]:,} events, {d["wall_seconds"]:.2f} s wall clock.</p>')
    parts.append("</body></html>\n")
    return "\n".join(parts)


def write_report(directory: str | Path, result: Result, sampler: Sampler | None) -> Path:
    """Write DIR/index.html (self-contained) and DIR/NAME.png, NAME.svg per plot.

    Every file is written to a temporary name and renamed, index.html last,
    so an interrupted write never leaves a half-written report.
    """
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise NotADirectoryError(f"--report: {directory}: exists and is not a directory")
    directory.mkdir(parents=True, exist_ok=True)
    images: dict[str, bytes] = {}
    for name, _title, fig, _arrays in all_plots(result, sampler):
        png = figure_bytes(fig, "png")
        images[name] = png
        _write_atomic(directory / f"{name}.png", png)
        _write_atomic(directory / f"{name}.svg", figure_bytes(fig, "svg"))
    index = directory / "index.html"
    _write_atomic(index, render_report(result, sampler, images).encode("utf-8"))
    return index


def _write_atomic(path: Path, data: bytes) -> None:
    """A regular file is replaced atomically; see lsfsim.outputs for the other kinds."""
    from lsfsim.outputs import write_output

    write_output(path, data)
