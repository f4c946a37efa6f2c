"""The call trees of ftrace's function_graph tracer, built from ExecContext's hooks.

The simulator calls the hooks below from every ``ExecContext`` (``enter``,
``exit``, ``leaf``, ``mark``, ``irq_entry``/``irq_exit``,
``softirq_entry``/``softirq_exit``).  Each context keeps its own stack of open
calls; a finished outermost call (a *root*) is handed to ``commit`` at once
(trace.ftrace keeps or drops it), so memory holds only what the selection keeps.

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
* ``fold(ctx, fn)`` ... ``exit(ctx, fn)``: a folded callee with callees of its
  own (``lock_sock_nested() { _raw_spin_lock_bh() { ... } ... }``).  It takes
  its share of its caller's self time as a mark does; its own folded callees
  then split MARK_CAP (half) of that share equally.  Calls charged inside it
  (``schedule`` under ``schedule_timeout``) add their real time to its duration.
* Hard interrupts appear as ftrace shows them: ``==========>``, ``do_IRQ() {``
  ... ``}``, ``<==========``.  A softirq run from ``irq_exit`` nests inside
  ``do_IRQ`` under ``irq_exit()``; one run by ksoftirqd is a root of its own.
* Interrupt context has its own stack: an interrupt taken while a task is in
  a system call starts at depth 0, not below the task's open calls.
* Events of different contexts on one CPU arrive out of time order (a step
  is computed ahead of simulated time), so lines are sorted by (time,
  sequence) before they are written.

The packet hooks ``polled`` and ``copied`` attribute calls to frame
indexes, for selecting packets (``--packets``).
"""

from __future__ import annotations

import itertools
from typing import Any

from lsfsim.trace.activity import ActivityLog
from lsfsim.vocabulary import HI, IRQ_ENTRY

MARK_SHARE = 0.05   # each folded callee: 5 % of its caller's self time
MARK_CAP = 0.5      # all folded callees of one call: at most half of it

# the calls that end one packet's processing inside a driver's receive loop
PACKET_END = frozenset({"netif_receive_skb", "netif_rx"})

# node kinds
FUNC, LEAF, MARK, FOLD = 0, 1, 2, 3

IDLE = "<idle>-0"


def syscall_name(root: Node) -> str:
    """The system call a root call serves: on i386 the socket calls are reached
    through ``sys_socketcall``, whose one ``sys_*`` callee names it."""
    if root.fn == "sys_socketcall":
        for child in root.children:
            if child.fn.startswith("sys_"):
                return child.fn
    return root.fn


class Node:
    """One traced call: a function with children, a leaf call, or a folded callee."""

    __slots__ = ("fn", "kind", "t0", "t1", "seq", "seq_end", "seq_out", "bucket", "charged",
                 "self_time", "children", "pkt", "irq", "marks", "open", "inner", "extra")

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
        self.extra = 0.0            # a fold's carved share, shown beyond its span

    @property
    def duration(self) -> float:
        return self.t1 - self.t0 + self.extra


class ContextState:
    """One execution context's tracing state: its open calls and what they serve."""

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


class CallTreeBuilder:
    """The hooks of a call tracer, building one call tree per outermost call.

    ``commit(root, cpu, task)`` receives each finished tree; ``packets`` (frame
    indexes or None) says whether calls must be attributed to frames; ``calls``
    False builds nothing (only ``activity`` is recorded, if given).
    """

    def __init__(self, packets: frozenset[int] | None, calls: bool,
                 activity: ActivityLog | None) -> None:
        self.packets = packets
        self.calls = calls
        self.activity_log = activity
        self._states: dict[Any, ContextState] = {}
        self._seq = itertools.count()
        self.roots = 0

    def commit(self, root: Node, cpu: int, task: str) -> None:
        """A finished outermost call (defined by the tracer)."""
        raise NotImplementedError

    # --- helpers --------------------------------------------------------------
    def _state(self, ctx: Any) -> ContextState:
        st = self._states.get(ctx)
        if st is None:
            st = self._states[ctx] = ContextState()
        return st

    def _prepare(self, ctx: Any) -> ContextState:
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

    def _add(self, ctx: Any, st: ContextState, node: Node) -> None:
        """Attach a new node under the innermost open call, or start a root."""
        stack = st.stack
        if stack:
            parent = stack[-1]
            parent.children.append(node)
            if parent is st.scope and st.pkt is not None and not node.irq:
                node.pkt = st.pkt
        else:
            st.task = self._task(ctx)

    def _close(self, ctx: Any, st: ContextState, node: Node, t: float) -> None:
        node.t1 = t
        node.seq_end = next(self._seq)
        if node.irq:
            node.seq_out = next(self._seq)      # the <========== line
        if node.kind == FOLD:
            pass                            # its share is known when its caller closes
        elif node.marks:
            # carve from the self time spent outside callees only, so children add up
            base = node.charged - node.inner
            share = MARK_SHARE * base
            if node.marks * share > MARK_CAP * base:
                share = MARK_CAP * base / node.marks
            node.self_time = node.charged - self._carve(node, share)
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

    def _carve(self, node: Node, share: float) -> float:
        """Give each folded callee of ``node`` ``share`` (a fold passes part of it on
        to its own folded callees); return what was carved."""
        carved = 0.0
        for child in node.children:
            if child.kind == MARK:
                child.t1 = child.t0 + share
                child.self_time = share
                carved += share
            elif child.kind == FOLD:
                child.extra = share
                inner = self._carve(child, MARK_CAP * share / child.marks) if child.marks else 0.0
                child.self_time = share - inner
                carved += share
        return carved

    def _finish(self, ctx: Any, st: ContextState, root: Node) -> None:
        self.roots += 1
        if self.packets is not None and syscall_name(root) == "sys_recvfrom":
            st.held = root                 # copied() tells which frame it carried
            return
        self.commit(root, ctx.cpu.index, st.task)

    def _close_irq(self, ctx: Any, st: ContextState) -> None:
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
        if self.activity_log is not None:
            self.activity_log.record(ctx, seconds)
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

    def fold(self, ctx: Any, fn: str) -> None:
        if not self.calls:
            return
        st = self._prepare(ctx)
        stack = st.stack
        node = Node(fn, FOLD, ctx.t, next(self._seq), ctx.bucket)
        self._add(ctx, st, node)
        if stack:
            stack[-1].marks += 1
            node.bucket = stack[-1].bucket
        stack.append(node)

    # --- hooks: interrupts ------------------------------------------------
    def irq_entry(self, ctx: Any, irq: int) -> None:
        if not self.calls:
            return
        st = self._prepare(ctx)
        node = Node(IRQ_ENTRY.get(irq, "do_IRQ"), FUNC, ctx.t, next(self._seq), HI)
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
        if ctx is None:
            return
        st = self._states.get(ctx)
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

    # --- the end ------------------------------------------------------------
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
