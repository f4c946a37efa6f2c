"""An ftrace function_graph tracer for the simulated kernel.

The simulator calls the hooks below from every ``ExecContext`` (``enter``,
``exit``, ``leaf``, ``mark``, ``irq_entry``/``irq_exit``,
``softirq_entry``/``softirq_exit``).  Each context keeps its own stack of open
calls; a finished outermost call (a *root*) is turned into output lines at once
(``commit``), so memory holds only what the selection keeps.

Times come from the cost model, never from a clock, so a parent's duration is
at least the sum of its children's.  Rules, stated once (docs/tracing.md):

* ``leaf(ctx, fn, s)`` with ``fn`` the innermost open function is that
  function's self time.  If ``fn`` is an outer open function (the cost model
  charges a caller's own work after it entered a callee), it is that caller's
  self time too.  Otherwise it is a leaf call ``fn();`` lasting ``s``.
* ``mark(ctx, fn)``: a callee folded into its caller's cost.  It is shown as a
  leaf whose duration is carved out of the caller's self time when the caller
  returns: MARK_SHARE (5 %) of the self time spent outside its callees each,
  all marks of one call together at most MARK_CAP (half) of it.
* Hard interrupts appear as ftrace shows them: ``==========>``, ``do_IRQ() {``
  ... ``}``, ``<==========``.  A softirq run from ``irq_exit`` nests inside
  ``do_IRQ`` under ``irq_exit()``; one run by ksoftirqd is a root of its own.
* Interrupt context has its own stack: an interrupt taken while a task is in
  a system call starts at depth 0, not below the task's open calls.
* Events of different contexts on one CPU arrive out of time order (a step
  is computed ahead of simulated time), so lines are sorted by (time,
  sequence) before they are written.

The tracer also accepts the lifecycle hooks (``polled``, ``verdict``,
``copied``, ``nic_dropped``): they attribute calls to frame indexes for
``--packets``.  Pass it as both ``tracer=`` and ``lifecycle=`` (or through a
``LifecycleTee``) when selecting packets.
"""

from __future__ import annotations

import fnmatch
import itertools
import json
from collections.abc import Iterable, Iterator
from typing import IO, TYPE_CHECKING, Any

from lsfsim.vocabulary import BUCKETS, HI, LEVELS

if TYPE_CHECKING:
    from lsfsim.machine import Machine

MARK_SHARE = 0.05   # each folded callee: 5 % of its caller's self time
MARK_CAP = 0.5      # all folded callees of one call: at most half of it

# root calls that make up the control path, kept by --packets
CONTROL_ROOTS = frozenset({"sys_socket", "sys_setsockopt", "sys_ioctl"})
# the calls that end one packet's processing inside a driver's receive loop
PACKET_END = frozenset({"netif_receive_skb", "netif_rx"})

# node kinds
FUNC, LEAF, MARK = 0, 1, 2

# timeline rows per CPU
ROWS = LEVELS
_ROW_OF_BUCKET = (0, 1, 2, 2)          # hi, si, sy, us

IDLE = "<idle>-0"
_EPS = 1e-12


class Node:
    """One traced call: a function with children, a leaf call, or a folded callee."""

    __slots__ = ("fn", "kind", "t0", "t1", "seq", "seq_end", "seq_out", "bucket", "charged",
                 "self_time", "children", "pkt", "irq", "marks", "open", "inner")

    def __init__(self, fn: str, kind: int, t0: float, seq: int, bucket: int) -> None:
        self.fn = fn
        self.kind = kind
        self.t0 = t0
        self.t1 = t0
        self.seq = seq
        self.seq_end = seq
        self.seq_out = seq
        self.bucket = bucket
        self.charged = 0.0          # what the cost model charged to this call (self)
        self.self_time = 0.0        # self time after folded callees were carved out
        self.children: list[Node] = []
        self.pkt: int | None = None
        self.irq = False            # a do_IRQ with its ==========> / <========== lines
        self.marks = 0
        self.open = False           # still running when the trace ended
        self.inner = 0.0            # charged while a callee was open (inside its time)

    @property
    def duration(self) -> float:
        return self.t1 - self.t0


class _State:
    """Per-context tracing state."""

    __slots__ = ("stack", "irq_pending", "softirq_in_irq", "pkt", "scope", "bound", "held",
                 "task")

    def __init__(self) -> None:
        self.stack: list[Node] = []
        self.irq_pending: Node | None = None   # do_IRQ after irq_exit, not yet closed
        self.softirq_in_irq: list[bool] = []   # per open softirq: nested in do_IRQ?
        self.pkt: int | None = None            # frame being processed in `scope`
        self.scope: Node | None = None         # the receive loop's function
        self.bound = 0                         # scope.children index of the next packet
        self.held: Node | None = None          # a recvfrom root waiting for copied()
        self.task = IDLE


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


def parse_packets(spec: str) -> frozenset[int]:
    """``"3:5"`` (inclusive), ``"7"``, ``"1,4:6"`` -> frame indexes."""
    out: set[int] = set()
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            if ":" in part:
                lo_s, hi_s = part.split(":", 1)
                lo, hi = int(lo_s), int(hi_s)
                if lo < 0 or hi < lo:
                    raise ValueError
                out.update(range(lo, hi + 1))
            else:
                n = int(part)
                if n < 0:
                    raise ValueError
                out.add(n)
        except ValueError:
            raise ValueError(f"--packets: {part!r} is not N or N:M (frame indexes, "
                             f"0-based, inclusive)") from None
    if not out:
        raise ValueError(f"--packets: {spec!r} selects no frame")
    return frozenset(out)


def parse_window(spec: str) -> tuple[float, float]:
    """``"0:2ms"``, ``"1ms:"`` -> (t0, t1) in seconds of simulated time."""
    from lsfsim.config.units import parse_duration

    if ":" not in spec:
        raise ValueError(f"--window: {spec!r} is not T0:T1 (e.g. 0:2ms)")
    lo_s, hi_s = spec.split(":", 1)
    try:
        lo = parse_duration(lo_s) if lo_s.strip() else 0.0
        hi = parse_duration(hi_s) if hi_s.strip() else float("inf")
    except ValueError as exc:
        raise ValueError(f"--window: {exc}") from None
    if hi < lo:
        raise ValueError(f"--window: {spec!r} ends before it starts")
    return lo, hi


class FtraceTracer:
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
        self.calls = calls
        self.functions = tuple(functions) if functions else None
        self.packets = frozenset(packets) if packets is not None else None
        self.window = window
        self.with_overhead = overhead
        self.overhead = 0.0
        self.ncpus = 1
        self.lines: list[Line] = []
        self.activity: dict[tuple[int, int], list[list[float]]] | None = {} if activity else None
        self._states: dict[Any, _State] = {}
        self._seq = itertools.count()
        self._match_cache: dict[str, bool] = {}
        self.roots = 0

    # --- probe protocol -----------------------------------------------------
    def attach(self, machine: Machine) -> None:
        """Learn the CPU count and the model's tracer_overhead (Machine(probes=[...]))."""
        self.ncpus = len(machine.cpus)
        if self.with_overhead:
            self.overhead = getattr(machine.costs, "tracer_overhead", 0.0)

    # --- helpers --------------------------------------------------------------
    def _state(self, ctx: Any) -> _State:
        st = self._states.get(ctx)
        if st is None:
            st = self._states[ctx] = _State()
        return st

    def _prepare(self, ctx: Any) -> _State:
        """The context's state, with any deferred do_IRQ close and held root flushed."""
        st = self._state(ctx)
        if st.irq_pending is not None:
            self._close_irq(ctx, st)
        if st.held is not None:
            held, st.held = st.held, None
            self.commit(held, ctx.cpu.index, st.task)
        return st

    def _task(self, ctx: Any) -> str:
        task = ctx.task
        if task is not None:
            return getattr(task, "name", str(task))
        # interrupt context runs on behalf of whoever holds the CPU (ftrace shows its pid)
        owner = getattr(ctx.cpu, "owner", None)
        return getattr(owner, "name", IDLE) if owner is not None else IDLE

    def _add(self, ctx: Any, st: _State, node: Node) -> None:
        """Attach a new node under the innermost open call, or start a root."""
        stack = st.stack
        if stack:
            parent = stack[-1]
            parent.children.append(node)
            if parent is st.scope and st.pkt is not None and not node.irq:
                node.pkt = st.pkt
        else:
            st.task = self._task(ctx)

    def _close(self, ctx: Any, st: _State, node: Node, t: float) -> None:
        node.t1 = t
        node.seq_end = next(self._seq)
        if node.irq:
            node.seq_out = next(self._seq)      # the <========== line
        if node.marks:
            # carve from the self time spent outside callees only, so children add up
            base = node.charged - node.inner
            share = MARK_SHARE * base
            if node.marks * share > MARK_CAP * base:
                share = MARK_CAP * base / node.marks
            carved = 0.0
            for child in node.children:
                if child.kind == MARK:
                    child.t1 = child.t0 + share
                    child.self_time = share
                    carved += share
            node.self_time = node.charged - carved
        else:
            node.self_time = node.charged
        if st.scope is node:
            st.scope, st.pkt, st.bound = None, None, 0
        elif (st.scope is not None and node.fn in PACKET_END and st.stack
              and st.stack[-1] is st.scope and st.pkt is not None):
            st.pkt = None
            st.bound = len(st.scope.children)
        if not st.stack:
            self._finish(ctx, st, node)

    def _finish(self, ctx: Any, st: _State, root: Node) -> None:
        self.roots += 1
        if root.fn == "sys_recvfrom" and self.packets is not None:
            st.held = root                 # copied() tells which frame it carried
            return
        self.commit(root, ctx.cpu.index, st.task)

    def _close_irq(self, ctx: Any, st: _State) -> None:
        node, st.irq_pending = st.irq_pending, None
        assert node is not None
        self._close(ctx, st, node, node.t1)

    # --- hooks: calls -----------------------------------------------------
    def enter(self, ctx: Any, fn: str) -> None:
        if not self.calls:
            return
        st = self._prepare(ctx)
        node = Node(fn, FUNC, ctx.t, next(self._seq), ctx.bucket)
        self._add(ctx, st, node)
        st.stack.append(node)

    def exit(self, ctx: Any, fn: str) -> None:
        if not self.calls:
            return
        st = self._prepare(ctx)
        stack = st.stack
        if not stack:
            return
        for i in range(len(stack) - 1, -1, -1):
            if stack[i].fn == fn:
                break
        else:
            return                          # an exit without its entry: ignore
        t = ctx.t
        while len(stack) > i:
            self._close(ctx, st, stack.pop(), t)

    def leaf(self, ctx: Any, fn: str, seconds: float) -> None:
        if self.activity is not None:
            self._activity(ctx, seconds)
        if not self.calls:
            return
        st = self._prepare(ctx)
        stack = st.stack
        top = len(stack) - 1
        for i in range(top, -1, -1):
            if stack[i].fn == fn:
                stack[i].charged += seconds
                if i != top:
                    stack[i].inner += seconds
                return
        node = Node(fn, LEAF, ctx.t, next(self._seq), ctx.bucket)
        node.t1 = ctx.t + seconds
        node.charged = node.self_time = seconds
        node.seq_end = node.seq
        self._add(ctx, st, node)
        if not stack:
            self._finish(ctx, st, node)

    def mark(self, ctx: Any, fn: str) -> None:
        if not self.calls:
            return
        st = self._prepare(ctx)
        stack = st.stack
        node = Node(fn, MARK, ctx.t, next(self._seq), ctx.bucket)
        self._add(ctx, st, node)
        if stack:
            stack[-1].marks += 1
            node.bucket = stack[-1].bucket
        else:
            self._finish(ctx, st, node)

    def _activity(self, ctx: Any, seconds: float) -> None:
        t0 = ctx.t
        t1 = t0 + seconds
        window = self.window
        if window is not None and (t1 < window[0] or t0 > window[1]):
            return
        assert self.activity is not None
        key = (ctx.cpu.index, _ROW_OF_BUCKET[ctx.bucket])
        row = self.activity.get(key)
        if row is None:
            self.activity[key] = [[t0, t1]]
            return
        last = row[-1]
        if last[0] <= t0 <= last[1] + _EPS:
            if t1 > last[1]:
                last[1] = t1
        else:
            row.append([t0, t1])

    # --- hooks: interrupts ------------------------------------------------
    def irq_entry(self, ctx: Any, irq: int) -> None:
        if not self.calls:
            return
        st = self._prepare(ctx)
        node = Node("do_IRQ", FUNC, ctx.t, next(self._seq), HI)
        node.irq = True
        self._add(ctx, st, node)
        node.seq = next(self._seq)          # seq - 1 is the ==========> line
        st.stack.append(node)

    def irq_exit(self, ctx: Any, irq: int) -> None:
        if not self.calls:
            return
        st = self._prepare(ctx)
        stack = st.stack
        if not stack or not stack[-1].irq:
            return
        node = stack.pop()
        node.t1 = ctx.t                     # closed later: a softirq may follow in irq_exit
        st.irq_pending = node

    def softirq_entry(self, ctx: Any) -> None:
        if not self.calls:
            return
        st = self._state(ctx)
        if st.held is not None:
            held, st.held = st.held, None
            self.commit(held, ctx.cpu.index, st.task)
        pending = st.irq_pending
        if pending is not None:
            # irq_exit() -> do_softirq() -> __do_softirq(): nest inside the do_IRQ
            st.irq_pending = None
            st.stack.append(pending)
            node = Node("irq_exit", FUNC, pending.t1, next(self._seq), HI)
            pending.children.append(node)
            st.stack.append(node)
            st.softirq_in_irq.append(True)
        else:
            st.softirq_in_irq.append(False)
        self.enter(ctx, "__do_softirq")

    def softirq_exit(self, ctx: Any) -> None:
        if not self.calls:
            return
        self.exit(ctx, "__do_softirq")
        st = self._state(ctx)
        nested = st.softirq_in_irq.pop() if st.softirq_in_irq else False
        if nested:
            t = ctx.t
            self.exit(ctx, "irq_exit")
            stack = st.stack
            if stack and stack[-1].irq:
                self._close(ctx, st, stack.pop(), t)

    # --- hooks: packet lifecycle (attribution for --packets) -----------------
    def polled(self, ctx: Any, skb: Any) -> None:
        if self.packets is None or not self.calls:
            return
        st = self._prepare(ctx)
        if not st.stack:
            return
        scope = st.stack[-1]
        if st.scope is not scope:
            st.scope, st.bound = scope, 0
        for child in scope.children[st.bound:]:
            if not child.irq:
                child.pkt = skb.id
        st.pkt = skb.id

    def verdict(self, ctx: Any, sock: Any, skb: Any, outcome: str, snaplen: int) -> None:
        pass

    def copied(self, reader: Any, skb: Any, t_deq: float, t_done: float) -> None:
        ctx = getattr(reader, "ctx", None)
        st = self._states.get(ctx) if ctx is not None else None
        if st is None or st.held is None:
            return
        held, st.held = st.held, None
        if skb.id >= 0:
            held.pkt = skb.id
        self.commit(held, ctx.cpu.index, st.task)

    def nic_dropped(self, frame: Any, place: str) -> None:
        pass

    def softnet_dropped(self, ctx: Any, skb: Any) -> None:
        pass

    # --- selection and lines ------------------------------------------------
    def finish(self) -> None:
        """Flush what is still deferred (call once the run is over).

        Calls still open (a reader blocked in recvfrom) are written as ftrace
        shows a call that has not returned: the entry line, no closing brace;
        the self time charged so far rides on the entry line.
        """
        for ctx, st in list(self._states.items()):
            if st.irq_pending is not None:
                self._close_irq(ctx, st)
            if st.held is not None:
                held, st.held = st.held, None
                self.commit(held, ctx.cpu.index, st.task)
            if st.stack:
                for node in st.stack:
                    node.open = True
                    node.t1 = ctx.t
                    node.self_time = node.charged
                root = st.stack[0]
                st.stack.clear()
                st.scope, st.pkt = None, None
                self.commit(root, ctx.cpu.index, st.task)

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

    def commit(self, root: Node, cpu: int, task: str) -> None:
        """Turn a finished outermost call into lines, if the selection keeps it."""
        window = self.window
        if window is not None and (root.t1 < window[0] or root.t0 > window[1]):
            return
        if self.packets is not None and root.fn not in CONTROL_ROOTS \
                and not self._has_packet(root, None):
            return
        out: list[Line] = []
        self._emit(root, 0, None, self.functions is None, cpu, task, out)
        self.lines.extend(out)

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

    def sorted_lines(self) -> list[Line]:
        """All lines in (time, sequence) order."""
        self.finish()
        self.lines.sort(key=lambda ln: (ln.t, ln.seq))
        return self.lines

    def busy_intervals(self) -> dict[tuple[int, str], list[tuple[float, float]]]:
        """(cpu, "hardirq" | "softirq" | "process") -> sorted, merged busy intervals."""
        if self.activity is None:
            raise ValueError("this tracer was created without activity=True")
        out: dict[tuple[int, str], list[tuple[float, float]]] = {}
        for (cpu, row), ivs in self.activity.items():
            merged: list[tuple[float, float]] = []
            for t0, t1 in sorted(ivs):
                if merged and t0 <= merged[-1][1] + _EPS:
                    if t1 > merged[-1][1]:
                        merged[-1] = (merged[-1][0], t1)
                else:
                    merged.append((t0, t1))
            out[(cpu, ROWS[row])] = merged
        return out

    # --- output ---------------------------------------------------------------
    def write_text(self, fp: IO[str]) -> int:
        """Write the function_graph text; return the number of lines written."""
        fp.write(HEADER)
        n = 0
        for text in self.iter_text():
            fp.write(text)
            fp.write("\n")
            n += 1
        return n

    def iter_text(self) -> Iterator[str]:
        lines = self.sorted_lines()
        width = len(str(max(self.ncpus - 1, max((ln.cpu for ln in lines), default=0))))
        last_task: dict[int, str] = {}
        for ln in lines:
            cpu_col = f" {ln.cpu:>{width}}) "
            prev = last_task.get(ln.cpu)
            if prev != ln.task:
                last_task[ln.cpu] = ln.task
                if prev is not None:
                    yield " ------------------------------------------"
                    yield f"{cpu_col}{_proc(prev)} => {_proc(ln.task)}"
                    yield " ------------------------------------------"
                    yield ""
            indent = "  " * ln.depth
            typ = ln.type
            if typ == "entry":
                yield f"{cpu_col}              |  {indent}{ln.fn}() {{"
            elif typ == "exit":
                yield f"{cpu_col}{format_duration(ln.duration or 0.0)}{indent}}}"
            elif typ == "leaf":
                yield f"{cpu_col}{format_duration(ln.duration or 0.0)}{indent}{ln.fn}();"
            elif typ == "irq_entry":
                yield f"{cpu_col}  ==========> |"
            else:
                yield f"{cpu_col}  <========== |"

    def write_json(self, fp: IO[str]) -> int:
        """One JSON object per line: ts, cpu, task, type, depth, fn, duration, self, ..."""
        n = 0
        last_task: dict[int, str] = {}
        for ln in self.sorted_lines():
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


HEADER = ("# tracer: function_graph\n"
          "#\n"
          "# CPU  DURATION                  FUNCTION CALLS\n"
          "# |     |   |                     |   |   |   |\n")

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


def _proc(task: str) -> str:
    """print_graph_proc: the task centred in 14 columns (names are not cut to 7)."""
    spaces = max(0, 14 - len(task))
    return " " * (spaces // 2) + task + " " * (spaces - spaces // 2)


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


__all__ = ["CONTROL_ROOTS", "FtraceTracer", "HEADER", "Line", "MARK_CAP", "MARK_SHARE",
           "find_mark", "format_duration", "parse_packets", "parse_window", "self_time_totals"]
