"""An ftrace function_graph tracer for the simulated kernel, from four parts:

* trace.calltree: the hooks ExecContext calls, building one call tree per
  outermost call (the rules of durations and folded callees are there);
* trace.selection: which calls become lines (functions, packets, window);
* trace.activity: busy intervals per CPU and context, for timelines;
* trace.output: the function_graph text and the JSON lines.

``FtraceTracer`` ties them and is a probe (lsfsim.probes): give it as
``Machine(tracer=..., probes=[...])`` (``trace.run_traced`` does), so that it
learns the CPU count and, through the packet hooks ``polled`` and ``copied``,
which frame each call served (``--packets``).  The command line's option
parsing is in cli.trace_options.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import IO, TYPE_CHECKING

from lsfsim.trace import output
from lsfsim.trace.activity import ROWS, ActivityLog
from lsfsim.trace.calltree import MARK_CAP, MARK_SHARE, CallTreeBuilder, Node
from lsfsim.trace.output import HEADER, find_mark, format_duration
from lsfsim.trace.selection import CONTROL_ROOTS, Line, Selection, self_time_totals

if TYPE_CHECKING:
    from lsfsim.machine import Machine


class FtraceTracer(CallTreeBuilder):
    """Records the simulated kernel's calls as ftrace's function_graph tracer shows them.

    ``functions``: globs (set_graph_function): only those calls and what they call.
    ``packets``: frame indexes: the calls made while processing them, plus the
    control path (socket, setsockopt, ioctl).  ``window``: (t0, t1) seconds:
    outermost calls overlapping it.  ``overhead``: add the model's
    ``tracer_overhead`` per traced call to the emitted durations.
    ``activity``: also keep busy intervals per CPU and context (for timelines);
    ``calls=False`` keeps only those (no call graph at all).
    """

    def __init__(self, functions: Iterable[str] | None = None,
                 packets: Iterable[int] | None = None,
                 window: tuple[float, float] | None = None,
                 overhead: bool = False, activity: bool = False, calls: bool = True) -> None:
        selected = frozenset(packets) if packets is not None else None
        super().__init__(selected, calls, ActivityLog(window) if activity else None)
        self.selection = Selection(tuple(functions) if functions else None, selected, window)
        self.functions = self.selection.functions
        self.window = window
        self.with_overhead = overhead
        self.ncpus = 1
        self.lines: list[Line] = []

    # --- probe protocol -----------------------------------------------------
    def attach(self, machine: Machine) -> None:
        """Learn the CPU count and the model's tracer_overhead (Machine(probes=[...]))."""
        self.ncpus = len(machine.cpus)
        if self.with_overhead:
            self.selection.overhead = getattr(machine.costs, "tracer_overhead", 0.0)

    @property
    def overhead(self) -> float:
        """Seconds added per traced call to the durations written."""
        return self.selection.overhead

    def commit(self, root: Node, cpu: int, task: str) -> None:
        """Turn a finished outermost call into lines, if the selection keeps it."""
        self.lines.extend(self.selection.lines(root, cpu, task))

    # --- reading ------------------------------------------------------------
    def sorted_lines(self) -> list[Line]:
        """All lines in (time, sequence) order."""
        self.finish()
        self.lines.sort(key=lambda ln: (ln.t, ln.seq))
        return self.lines

    def busy_intervals(self) -> dict[tuple[int, str], list[tuple[float, float]]]:
        """(cpu, "hardirq" | "softirq" | "process") -> sorted, merged busy intervals."""
        if self.activity_log is None:
            raise ValueError("this tracer was created without activity=True")
        return self.activity_log.busy_intervals()

    # --- output ---------------------------------------------------------------
    def write_text(self, fp: IO[str], abstime: bool = False) -> int:
        """Write the function_graph text (``abstime``: with funcgraph-abstime's time
        column); return the number of lines written."""
        return output.write_text(self.sorted_lines(), self.ncpus, fp, abstime)

    def iter_text(self, abstime: bool = False) -> Iterator[str]:
        return output.iter_text(self.sorted_lines(), self.ncpus, abstime)

    def write_json(self, fp: IO[str]) -> int:
        """One JSON object per line: ts, cpu, task, type, depth, fn, duration, self, ..."""
        return output.write_json(self.sorted_lines(), fp)


__all__ = ["CONTROL_ROOTS", "HEADER", "MARK_CAP", "MARK_SHARE", "ROWS", "FtraceTracer", "Line",
           "find_mark", "format_duration", "self_time_totals"]
