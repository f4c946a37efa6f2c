"""Which traced calls become lines: ftrace's set_graph_function, packets, a time window.

A finished call tree (trace.calltree) is kept or dropped whole by the time
window and the packet selection, then walked into ``Line``s: with
``functions`` globs only those calls and what they call are written, the way
ftrace's set_graph_function works; ``overhead`` adds the model's
tracer_overhead per traced call to the durations written.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from typing import Any

from lsfsim.trace.calltree import Node, syscall_name
from lsfsim.vocabulary import BUCKETS

# root calls that make up the control path, kept by --packets
CONTROL_ROOTS = frozenset({"sys_socket", "sys_setsockopt", "sys_ioctl"})


class Line:
    """One output line (ftrace text) or event (JSON)."""

    __slots__ = ("t", "seq", "cpu", "task", "type", "depth", "fn", "duration", "self_time",
                 "charged", "bucket", "pkt")

    def __init__(self, t: float, seq: int, cpu: int, task: str, type_: str, depth: int,
                 fn: str, duration: float | None, self_time: float, charged: float,
                 bucket: int, pkt: int | None) -> None:
        self.t = t
        self.seq = seq
        self.cpu = cpu
        self.task = task
        self.type = type_
        self.depth = depth
        self.fn = fn
        self.duration = duration
        self.self_time = self_time
        self.charged = charged
        self.bucket = bucket
        self.pkt = pkt

    def as_dict(self) -> dict[str, Any]:
        return {"ts": self.t, "cpu": self.cpu, "task": self.task, "type": self.type,
                "depth": self.depth, "fn": self.fn, "duration": self.duration,
                "self": self.self_time, "charged": self.charged,
                "ctx": BUCKETS[self.bucket], "pkt": self.pkt}


class Selection:
    """What the user asked to see, applied to finished call trees."""

    def __init__(self, functions: tuple[str, ...] | None, packets: frozenset[int] | None,
                 window: tuple[float, float] | None) -> None:
        self.functions = functions
        self.packets = packets
        self.window = window
        self.overhead = 0.0
        self._match_cache: dict[str, bool] = {}

    def lines(self, root: Node, cpu: int, task: str) -> list[Line]:
        """The lines of a finished outermost call, or none if the selection drops it."""
        window = self.window
        if window is not None and (root.t1 < window[0] or root.t0 > window[1]):
            return []
        if self.packets is not None and syscall_name(root) not in CONTROL_ROOTS \
                and not self._has_packet(root, None):
            return []
        out: list[Line] = []
        self._emit(root, 0, None, self.functions is None, cpu, task, out)
        return out

    def _matches(self, fn: str) -> bool:
        hit = self._match_cache.get(fn)
        if hit is None:
            assert self.functions is not None
            hit = self._match_cache[fn] = any(fnmatch.fnmatchcase(fn, g)
                                              for g in self.functions)
        return hit

    def _has_packet(self, node: Node, inherited: int | None) -> bool:
        pkt = node.pkt if node.pkt is not None else inherited
        assert self.packets is not None
        if pkt is not None:
            return pkt in self.packets
        return any(self._has_packet(c, None) for c in node.children)

    def _emit(self, node: Node, depth: int, inherited: int | None, selected: bool, cpu: int,
              task: str, out: list[Line]) -> int:
        """Append the node's lines; return the number of traced calls in its subtree."""
        pkt = node.pkt if node.pkt is not None else inherited
        packets = self.packets
        if packets is not None and pkt is not None and pkt not in packets:
            return _count(node)
        sel = selected or self._matches(node.fn)
        if not node.children and not node.open:
            if sel:
                dur = node.duration + self.overhead
                if node.irq:
                    out.append(Line(node.t0, node.seq - 1, cpu, task, "irq_entry", depth,
                                    node.fn, None, 0.0, 0.0, node.bucket, pkt))
                out.append(Line(node.t0, node.seq, cpu, task, "leaf", depth, node.fn, dur,
                                node.self_time, node.charged, node.bucket, pkt))
                if node.irq:
                    out.append(Line(node.t1, node.seq_out, cpu, task, "irq_exit", depth,
                                    node.fn, None, 0.0, 0.0, node.bucket, pkt))
            return 1
        if not sel:
            n = 1
            for child in node.children:
                n += self._emit(child, depth, pkt, False, cpu, task, out)
            return n
        mark = len(out)
        if node.irq:
            out.append(Line(node.t0, node.seq - 1, cpu, task, "irq_entry", depth, node.fn,
                            None, 0.0, 0.0, node.bucket, pkt))
        entry = Line(node.t0, node.seq, cpu, task, "entry", depth, node.fn, None, 0.0, 0.0,
                     node.bucket, pkt)
        out.append(entry)
        n = 1
        for child in node.children:
            n += self._emit(child, depth + 1, pkt, True, cpu, task, out)
        if node.open:
            entry.self_time = node.self_time
            entry.charged = node.charged
            return n
        dur = node.duration + n * self.overhead
        if len(out) == mark + 1 + node.irq:
            # every child was filtered out: ftrace prints such a call as a leaf
            entry.type = "leaf"
            entry.duration = dur
            entry.self_time = node.self_time
            entry.charged = node.charged
        else:
            out.append(Line(node.t1, node.seq_end, cpu, task, "exit", depth, node.fn, dur,
                            node.self_time, node.charged, node.bucket, pkt))
        if node.irq:
            out.append(Line(node.t1, node.seq_out, cpu, task, "irq_exit", depth, node.fn,
                            None, 0.0, 0.0, node.bucket, pkt))
        return n


def _count(node: Node) -> int:
    return 1 + sum(_count(c) for c in node.children)


def self_time_totals(lines: Iterable[Line]) -> dict[tuple[int, str], float]:
    """(cpu, bucket) -> the sum of self times in ``lines`` (for accounting checks)."""
    totals: dict[tuple[int, str], float] = {}
    for ln in lines:
        if ln.type in ("exit", "leaf", "entry"):
            key = (ln.cpu, BUCKETS[ln.bucket])
            totals[key] = totals.get(key, 0.0) + ln.self_time
    return totals
