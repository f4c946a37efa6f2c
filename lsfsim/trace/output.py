"""The two outputs of the ftrace tracer: function_graph text and JSON lines.

Both take the lines in (time, sequence) order (FtraceTracer.sorted_lines).
The text follows kernel/trace/trace_functions_graph.c: the duration column
with its overhead marks, the CPU column, context-switch banners between
tasks, and ``==========>`` / ``<==========`` around hard interrupts.  With
``abstime`` each line starts with the event's time, as ftrace's
``funcgraph-abstime`` option prints it (print_graph_abs_time, 2.6.33:
``"%5lu.%06lu |  "``, seconds then microseconds, truncated); the simulated
clock starts at 0 where the kernel's trace clock counts from boot.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import IO

from lsfsim.trace.selection import Line

HEADER = ("# tracer: function_graph\n"
          "#\n"
          "# CPU  DURATION                  FUNCTION CALLS\n"
          "# |     |   |                     |   |   |   |\n")
# print_graph_headers with TRACE_GRAPH_PRINT_ABS_TIME: its column before the CPU's
HEADER_ABSTIME = ("# tracer: function_graph\n"
                  "#\n"
                  "#     TIME        CPU  DURATION                  FUNCTION CALLS\n"
                  "#      |          |     |   |                     |   |   |   |\n")

# trace_find_mark (kernel/trace/trace_output.c): the first threshold exceeded, in ns
_MARKS = ((1_000_000_000, "$"), (100_000_000, "@"), (10_000_000, "*"), (1_000_000, "#"),
          (100_000, "!"), (10_000, "+"))


def find_mark(ns: int) -> str:
    """ftrace's overhead marker for a duration in nanoseconds (strictly greater than)."""
    for limit, sym in _MARKS:
        if ns > limit:
            return sym
    return " "


def format_duration(seconds: float) -> str:
    """The duration column as print_graph_duration writes it, up to and with ``|  ``."""
    ns = max(0, round(seconds * 1e9))
    usecs, rem = divmod(ns, 1000)
    text = str(usecs)
    length = len(text)
    if length < 7:
        # snprintf(nsecs_str, min(5, 8 - len), "%03lu"): at most 7 digits in all
        nsecs = f"{rem:03d}"[: min(5, 8 - length) - 1]
        text += "." + nsecs
        length += len(nsecs) + 1
    return f"{find_mark(ns)} {text} us {' ' * max(0, 8 - length)}|  "


def format_abs_time(seconds: float) -> str:
    """The absolute-time column as print_graph_abs_time writes it, with its ``|  ``:
    ``%5lu.%06lu`` of the nanosecond clock split by do_div into seconds and the
    remainder, then the remainder divided by 1000 (truncated to microseconds)."""
    ns = max(0, round(seconds * 1e9))
    secs, rem = divmod(ns, 1_000_000_000)
    return f"{secs:5d}.{rem // 1000:06d} |  "


def _proc(task: str) -> str:
    """print_graph_proc: the task centred in 14 columns (names are not cut to 7)."""
    spaces = max(0, 14 - len(task))
    return " " * (spaces // 2) + task + " " * (spaces - spaces // 2)


def write_text(lines: list[Line], ncpus: int, fp: IO[str], abstime: bool = False) -> int:
    """Write the header and the function_graph text; return the number of lines written."""
    fp.write(HEADER_ABSTIME if abstime else HEADER)
    n = 0
    for text in iter_text(lines, ncpus, abstime):
        fp.write(text)
        fp.write("\n")
        n += 1
    return n


def iter_text(lines: list[Line], ncpus: int, abstime: bool = False) -> Iterator[str]:
    """The function_graph text, line by line (no header), from time-sorted lines.

    ``abstime``: each call and interrupt line starts with its time (an entry's or a
    leaf's at the call, a closing brace's at the return); the context-switch banner
    has none, as in verif_pid."""
    width = len(str(max(ncpus - 1, max((ln.cpu for ln in lines), default=0))))
    last_task: dict[int, str] = {}
    for ln in lines:
        cpu_col = f" {ln.cpu:>{width}}) "
        stamp = format_abs_time(ln.t) if abstime else ""
        prev = last_task.get(ln.cpu)
        if prev != ln.task:
            last_task[ln.cpu] = ln.task
            if prev is not None:
                yield " ------------------------------------------"
                yield f" {ln.cpu:>{width}}) {_proc(prev)} => {_proc(ln.task)}"
                yield " ------------------------------------------"
                yield ""
        indent = "  " * ln.depth
        typ = ln.type
        if typ == "entry":
            yield f"{stamp}{cpu_col}              |  {indent}{ln.fn}() {{"
        elif typ == "exit":
            yield f"{stamp}{cpu_col}{format_duration(ln.duration or 0.0)}{indent}}}"
        elif typ == "leaf":
            yield f"{stamp}{cpu_col}{format_duration(ln.duration or 0.0)}{indent}{ln.fn}();"
        elif typ == "irq_entry":
            yield f"{stamp}{cpu_col}  ==========> |"
        else:
            yield f"{stamp}{cpu_col}  <========== |"


def write_json(lines: list[Line], fp: IO[str]) -> int:
    """One JSON object per line: ts, cpu, task, type, depth, fn, duration, self, ..."""
    n = 0
    last_task: dict[int, str] = {}
    for ln in lines:
        prev = last_task.get(ln.cpu)
        if prev != ln.task:
            last_task[ln.cpu] = ln.task
            if prev is not None:
                fp.write(json.dumps({"ts": ln.t, "cpu": ln.cpu, "type": "switch",
                                     "prev": prev, "next": ln.task}) + "\n")
                n += 1
        fp.write(json.dumps(ln.as_dict()) + "\n")
        n += 1
    return n
