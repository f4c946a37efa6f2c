"""Plots of a sweep's table: a column against one parameter, or a heatmap over two.

``plot_sweep(df, x=["rate"], y="sockets.0.delivered", hue="napi")`` draws one
line per value of ``hue`` (without ``hue``: per combination of the other
varied parameters), the mean over seeds with the standard deviation as error
bars when a point ran with several seeds.  With two ``x`` names it draws a
heatmap of the mean (first name across, second up).  Only rows with status
"ok" are drawn.  Like ``lsfsim.report.plots`` it returns the figure and the
numbers it drew, and builds the figure without pyplot.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import matplotlib
from matplotlib.figure import Figure

from lsfsim.cli.common import InputError


def plot_sweep(df: Any, x: Sequence[str], y: str, hue: str | None = None,
               varied: Sequence[str] = (), title: str | None = None,
               logx: bool | None = None) -> tuple[Figure, dict[str, Any]]:
    """The figure and ``{"series": {label: (xs, means, stds)}}`` or ``{"heatmap": ...}``."""
    for name in (*x, y, *([hue] if hue else [])):
        if name not in df.columns:
            raise InputError(f"--plot: no column {name!r} in the table")
    ok = df[df["status"] == "ok"] if "status" in df.columns else df
    if ok.empty:
        raise InputError("--plot: no point finished without error: nothing to draw")
    fig = Figure(figsize=(7, 4.5), layout="constrained")
    ax = fig.add_subplot()
    if len(x) == 2:
        arrays = _heatmap(fig, ax, ok, x[0], x[1], y)
    elif len(x) == 1:
        groups = [hue] if hue else [n for n in varied if n not in (x[0],)]
        arrays = _lines(ax, ok, x[0], y, groups, logx)
    else:
        raise InputError("--x: give one parameter (a line plot) or two (a heatmap)")
    ax.set_title(title or f"{y} against {' and '.join(x)}", fontsize=10)
    return fig, arrays


def _order(values: Any) -> list[Any]:
    """Distinct values in the order of the table (the grid's order)."""
    return list(dict.fromkeys(values))


def _numeric(series: Any) -> bool:
    import pandas as pd

    return bool(pd.api.types.is_numeric_dtype(series)) and not pd.api.types.is_bool_dtype(series)


def _lines(ax: Any, df: Any, x: str, y: str, groups: list[str],
           logx: bool | None) -> dict[str, Any]:
    numeric_x = _numeric(df[x])
    categories = _order(df[x])
    series: dict[str, Any] = {}
    keys = groups or []
    grouped = df.groupby(keys, sort=False, dropna=False) if keys else [((), df)]
    for key, part in grouped:
        key = key if isinstance(key, tuple) else (key,)
        label = ", ".join(f"{k}={v}" for k, v in zip(keys, key, strict=True)) or y
        stats = part.groupby(x, sort=False)[y].agg(["mean", "std", "count"])
        stats = stats.reindex([c for c in categories if c in stats.index])
        xs = list(stats.index) if numeric_x else [categories.index(c) for c in stats.index]
        means = stats["mean"].to_numpy(dtype=float)
        stds = stats["std"].fillna(0.0).to_numpy(dtype=float)
        if (stats["count"] > 1).any():
            ax.errorbar(xs, means, yerr=stds, marker="o", ms=3, capsize=2, label=label)
        else:
            ax.plot(xs, means, marker="o", ms=3, label=label)
        series[label] = (xs, list(means), list(stds))
    if not numeric_x:
        ax.set_xticks(range(len(categories)), [str(c) for c in categories])
    elif logx or (logx is None and _spans_decades(df[x])):
        ax.set_xscale("log", base=2)
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.grid(True, alpha=0.3)
    if len(series) > 1:
        ax.legend(fontsize=8)
    return {"series": series}


def _spans_decades(values: Any) -> bool:
    positive = values[values > 0]
    return len(positive) == len(values) and positive.max() / positive.min() >= 64


def _heatmap(fig: Figure, ax: Any, df: Any, x: str, y2: str, y: str) -> dict[str, Any]:
    table = df.pivot_table(index=y2, columns=x, values=y, aggfunc="mean", sort=False)
    table = table.reindex(index=[v for v in _order(df[y2]) if v in table.index],
                          columns=[v for v in _order(df[x]) if v in table.columns])
    image = ax.imshow(table.to_numpy(dtype=float), origin="lower", aspect="auto",
                      cmap="viridis")
    ax.set_xticks(range(len(table.columns)), [str(c) for c in table.columns], rotation=45)
    ax.set_yticks(range(len(table.index)), [str(c) for c in table.index])
    ax.set_xlabel(x)
    ax.set_ylabel(y2)
    fig.colorbar(image, ax=ax, label=y)
    if table.size <= 100:
        for (i, j), value in _cells(table):
            ax.text(j, i, f"{value:.3g}", ha="center", va="center", fontsize=7, color="w")
    return {"heatmap": table}


def _cells(table: Any) -> list[tuple[tuple[int, int], float]]:
    values = table.to_numpy(dtype=float)
    return [((i, j), values[i, j]) for i in range(values.shape[0])
            for j in range(values.shape[1]) if values[i, j] == values[i, j]]


def figure_bytes(fig: Figure, path: str) -> bytes:
    """The figure encoded for ``path``'s extension (png, svg, pdf)."""
    fmt = path.rsplit(".", 1)[-1].lower() if "." in path else ""
    supported = fig.canvas.get_supported_filetypes()
    if fmt not in supported:
        raise InputError(f"--plot {path}: unknown image extension {('.' + fmt) if fmt else ''!r}"
                         f"; use .png, .svg or .pdf")
    buf = io.BytesIO()
    with matplotlib.rc_context({"savefig.dpi": 120}):
        fig.savefig(buf, format=fmt)
    return buf.getvalue()


def check_plot_path(path: str) -> None:
    """Refuse an image extension matplotlib cannot write, before a sweep runs."""
    figure_bytes_ok = Figure().canvas.get_supported_filetypes()
    fmt = path.rsplit(".", 1)[-1].lower() if "." in path else ""
    if fmt not in figure_bytes_ok:
        raise InputError(f"--plot {path}: unknown image extension {('.' + fmt) if fmt else ''!r}"
                         f"; use .png, .svg or .pdf")
