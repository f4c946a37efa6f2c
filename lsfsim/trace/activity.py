"""Busy intervals per CPU and context, recorded beside the call trees (for timelines)."""

from __future__ import annotations

from typing import Any

from lsfsim.vocabulary import LEVELS

# timeline rows per CPU
ROWS = LEVELS
_ROW_OF_BUCKET = (0, 1, 2, 2)          # hi, si, sy, us
_EPS = 1e-12


class ActivityLog:
    """Every charged interval of CPU time, by CPU and row (hardirq, softirq, process),
    merged as it comes; ``window`` (t0, t1) keeps only what overlaps it."""

    def __init__(self, window: tuple[float, float] | None = None) -> None:
        self.window = window
        self.rows: dict[tuple[int, int], list[list[float]]] = {}

    def record(self, ctx: Any, seconds: float) -> None:
        """``seconds`` of CPU time charged in ``ctx`` from ``ctx.t`` on."""
        t0 = ctx.t
        t1 = t0 + seconds
        window = self.window
        if window is not None and (t1 < window[0] or t0 > window[1]):
            return
        key = (ctx.cpu.index, _ROW_OF_BUCKET[ctx.bucket])
        row = self.rows.get(key)
        if row is None:
            self.rows[key] = [[t0, t1]]
            return
        last = row[-1]
        if last[0] <= t0 <= last[1] + _EPS:
            if t1 > last[1]:
                last[1] = t1
        else:
            row.append([t0, t1])

    def busy_intervals(self) -> dict[tuple[int, str], list[tuple[float, float]]]:
        """(cpu, "hardirq" | "softirq" | "process") -> sorted, merged busy intervals."""
        out: dict[tuple[int, str], list[tuple[float, float]]] = {}
        for (cpu, row), ivs in self.rows.items():
            merged: list[tuple[float, float]] = []
            for t0, t1 in sorted(ivs):
                if merged and t0 <= merged[-1][1] + _EPS:
                    if t1 > merged[-1][1]:
                        merged[-1] = (merged[-1][0], t1)
                else:
                    merged.append((t0, t1))
            out[(cpu, ROWS[row])] = merged
        return out
