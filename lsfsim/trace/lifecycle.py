"""Per-packet lifecycles: every stage a frame went through, with its simulated time.

A ``LifecycleRecorder`` is a probe (``Machine(probes=[recorder])``, see
lsfsim.probes): it learns the wire's timing when attached and listens to the
packet hooks.  For each frame index it
keeps: first and last bit on the wire, DMA done (descriptor OWN cleared), the
hard IRQ that led to its poll, the poll (CPU and context), one verdict per
socket (filtered, receive-buffer drop, queued with its snaplen), and each copy
to user space (reader, CPU, dequeue and end of recvfrom), or the place the NIC
dropped it.

Order of the stages (what the tests check, and why one pair is not ordered):

    wire start < wire end <= DMA done <= poll <= verdict <= queued <= dequeued <= copied
    IRQ <= poll

The IRQ is *not* always after the DMA: pcnet32 masks its interrupt while NAPI
polls, and a poll takes every descriptor whose DMA is done by the time it
looks at the ring.  A frame whose DMA completes during a NAPI run started by
an earlier IRQ is picked up by that run, so its ``t_irq`` precedes its
``t_dma``.

Pre-NAPI (``--no-napi``) the driver's receive runs in the interrupt handler:
it takes the descriptor (``t_poll``, hard-IRQ context), ``netif_rx`` queues the
skb on the CPU's backlog (``t_backlog``), and ``process_backlog``, the
backlog's poll in the softirq, takes it later (``t_backlog_poll``) and hands it
to ``netif_receive_skb``; the frame waits on the backlog in between.  Then

    poll <= backlog <= backlog poll <= verdict

Frames the host sends (pkt_type PACKET_OUTGOING, skb.id == -1) have no wire
index and are not recorded.

Drop places (``nic_dropped(frame, place)``; ``softnet_dropped(ctx, skb)`` for the
pre-NAPI backlog) are listed in DROP_PLACES (see docs/tracing.md); ``drop_points``
gives every drop of a frame, with its time, for the timeline's markers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lsfsim.kernel.cpu import ExecContext
from lsfsim.kernel.skbuff import SkBuff
from lsfsim.probes import FrameView, SocketView, TaskView
from lsfsim.vocabulary import LEVELS, PROCESS

if TYPE_CHECKING:
    from lsfsim.machine import Machine

OUTCOMES = ("filtered", "rcvbuf_drop", "queued")
DROP_PLACES = {
    "mac_filtered": "NIC address filter",
    "rx_missed_errors": "NIC: RX ring full (CSR112)",
    "rx_dropped": "driver: dev_alloc_skb failed",
    "rx_oversize": "driver: frame chained over descriptors (rx_errors)",
    "softnet_dropped": "netif_rx: backlog full",
}


@dataclass
class Verdict:
    """packet_rcv's decision for one socket."""

    sock: int
    outcome: str                 # "filtered" | "rcvbuf_drop" | "queued"
    t: float                     # when packet_rcv decided
    snaplen: int                 # bytes kept (queued only)
    t_enq: float | None = None   # queued on sk_receive_queue


@dataclass
class Copy:
    """One recvfrom that returned the packet."""

    sock: int
    reader: str
    cpu: int
    t_deq: float                 # taken off the receive queue
    t_done: float                # recvfrom's copy to user space finished


@dataclass
class PacketLife:
    """Everything that happened to one frame index."""

    index: int
    length: int | None = None
    t_wire: float | None = None        # first bit of the preamble
    t_wire_end: float | None = None    # last bit of the FCS
    t_dma: float | None = None         # DMA done, OWN cleared
    t_irq: float | None = None         # the hard IRQ that led to its poll
    t_poll: float | None = None        # taken off the ring by the driver's poll
    poll_cpu: int | None = None
    poll_context: str | None = None    # "softirq" or "ksoftirqd/N" (or "hardirq" pre-NAPI)
    napi: bool = True                  # False: the pre-NAPI driver (netif_rx, backlog)
    t_backlog: float | None = None     # pre-NAPI: netif_rx queued it on the backlog
    t_backlog_poll: float | None = None   # pre-NAPI: process_backlog took it off
    backlog_cpu: int | None = None
    backlog_context: str | None = None    # "softirq" or "ksoftirqd/N"
    dropped: str | None = None         # a key of DROP_PLACES
    t_drop: float | None = None        # when dropped after its poll (softnet_dropped)
    verdicts: list[Verdict] = field(default_factory=list)
    copies: list[Copy] = field(default_factory=list)

    def stages(self) -> list[tuple[str, float, str]]:
        """(stage, time, where) in the order they happened."""
        out: list[tuple[str, float, str]] = []
        if self.t_wire is not None:
            size = f"{self.length} bytes" if self.length is not None else ""
            out.append(("on the wire (first bit)", self.t_wire, size))
        if self.t_wire_end is not None:
            out.append(("on the wire (last bit)", self.t_wire_end, ""))
        if self.dropped is not None and self.t_poll is None:
            out.append((f"dropped: {self.dropped}", self.nic_drop_time(),
                        DROP_PLACES.get(self.dropped, "NIC")))
            return out
        if self.t_dma is not None:
            out.append(("DMA done (OWN cleared)", self.t_dma, "NIC"))
        if self.t_irq is not None:
            run = "same NAPI run" if self.napi else "same handler run"
            note = f"before this frame's DMA: {run}" if (
                self.t_dma is not None and self.t_irq < self.t_dma) else ""
            out.append(("IRQ raised", self.t_irq, note))
        if self.t_poll is not None:
            where = f"CPU {self.poll_cpu} {self.poll_context}"
            if self.napi:
                out.append(("polled (pcnet32_poll)", self.t_poll, where))
            else:
                out.append(("taken off the ring (pcnet32_rx)", self.t_poll,
                            f"{where}: pcnet32_interrupt"))
        if self.t_backlog is not None:
            out.append(("netif_rx: queued on the backlog", self.t_backlog,
                        f"CPU {self.poll_cpu} input_pkt_queue"))
        if self.t_backlog_poll is not None:
            out.append(("process_backlog takes it", self.t_backlog_poll,
                        f"CPU {self.backlog_cpu} {self.backlog_context}"))
        for v in self.verdicts:
            if v.outcome == "queued":
                out.append((f"sock{v.sock}: filter accepts", v.t, f"snaplen {v.snaplen}"))
                if v.t_enq is not None:
                    out.append((f"sock{v.sock}: queued", v.t_enq, "sk_receive_queue"))
            elif v.outcome == "filtered":
                out.append((f"sock{v.sock}: dropped by the filter", v.t, "sk_run_filter = 0"))
            else:
                out.append((f"sock{v.sock}: dropped, receive buffer full", v.t, "sk_rcvbuf"))
        if self.dropped is not None and self.t_drop is not None:
            out.append((f"dropped: {self.dropped}", self.t_drop,
                        DROP_PLACES.get(self.dropped, "")))
        for c in self.copies:
            out.append((f"sock{c.sock}: dequeued by recvfrom", c.t_deq,
                        f"{c.reader} CPU {c.cpu}"))
            out.append((f"sock{c.sock}: copied to user", c.t_done, f"{c.reader} CPU {c.cpu}"))
        out.sort(key=lambda s: s[1])
        return out

    def nic_drop_time(self) -> float:
        """When the NIC or driver dropped the frame: the address filter at the frame's
        last bit, the others when its DMA would have been done."""
        if self.dropped == "mac_filtered" and self.t_wire_end is not None:
            return self.t_wire_end
        if self.t_dma is not None:
            return self.t_dma
        return self.t_wire_end or self.t_wire or 0.0

    def drop_points(self) -> list[tuple[float, str]]:
        """(time, what) of every drop of this frame: the NIC's or the backlog's, and each
        socket that dropped it (its filter, or a full receive buffer)."""
        points: list[tuple[float, str]] = []
        if self.dropped is not None:
            t = self.t_drop if self.t_drop is not None else self.nic_drop_time()
            points.append((t, f"{DROP_PLACES.get(self.dropped, self.dropped)} "
                              f"({self.dropped})"))
        for v in self.verdicts:
            if v.outcome == "filtered":
                points.append((v.t, f"sock{v.sock}: filter returned 0"))
            elif v.outcome == "rcvbuf_drop":
                points.append((v.t, f"sock{v.sock}: receive buffer full"))
        return points

    @property
    def fate(self) -> str:
        """A one-word summary: where the frame ended."""
        if self.dropped:
            return self.dropped
        if self.t_poll is None:
            return "not polled"
        if not self.napi and self.t_backlog_poll is None and not self.verdicts:
            return "on the backlog"
        if self.copies:
            return "copied"
        if any(v.outcome == "queued" for v in self.verdicts):
            return "queued"
        if self.verdicts:
            return self.verdicts[0].outcome
        return "no socket"


def _context_name(ctx: ExecContext) -> str:
    """Where kernel code ran, as the lifecycle names it: a thread's name in process
    context (ksoftirqd/N), else the level (hardirq, softirq)."""
    task = ctx.task
    if task is not None and ctx.level == PROCESS:
        return str(getattr(task, "name", "process"))
    return LEVELS[ctx.level]


class LifecycleRecorder:
    """Records the lifecycle of the selected frame indexes (all when ``packets`` is None).

    A probe (lsfsim.probes) with the hooks polled, verdict, copied, nic_dropped and
    softnet_dropped."""

    def __init__(self, packets: Any = None) -> None:
        self.packets = frozenset(packets) if packets is not None else None
        self.records: dict[int, PacketLife] = {}
        self._frame_time: Any = None
        self._napi = True

    def attach(self, machine: Machine) -> None:
        """Learn the wire's timing and the driver's mode (Machine(probes=[recorder]))."""
        self._frame_time = machine.wire.frame_time
        self._napi = machine.scenario.napi

    def finish(self) -> None:
        """Nothing is pending: every hook records at once."""

    def _get(self, index: int) -> PacketLife | None:
        if index < 0 or (self.packets is not None and index not in self.packets):
            return None
        rec = self.records.get(index)
        if rec is None:
            rec = self.records[index] = PacketLife(index)
        return rec

    # --- hooks ----------------------------------------------------------------
    def polled(self, ctx: ExecContext, skb: SkBuff) -> None:
        rec = self._get(skb.id)
        if rec is None:
            return
        rec.length = len(skb.data)
        rec.t_wire = skb.t_wire
        if self._frame_time is not None:
            rec.t_wire_end = skb.t_wire + self._frame_time(len(skb.data))
        rec.t_dma = skb.t_dma
        rec.t_irq = skb.t_irq
        rec.t_poll = skb.t_poll
        rec.poll_cpu = ctx.cpu.index
        rec.poll_context = _context_name(ctx)
        rec.napi = self._napi

    def verdict(self, ctx: ExecContext, sock: SocketView, skb: SkBuff, outcome: str,
                snaplen: int) -> None:
        rec = self._get(skb.id)
        if rec is None:
            return
        t_enq = skb.t_enq if outcome == "queued" else None
        if not rec.napi and rec.t_backlog_poll is None:
            # the backlog's times travel with the skb (and its clones): netif_rx set
            # t_backlog, process_backlog t_poll, in the context this verdict runs in
            rec.t_backlog = skb.t_backlog
            rec.t_backlog_poll = skb.t_poll
            rec.backlog_cpu = ctx.cpu.index
            rec.backlog_context = _context_name(ctx)
        rec.verdicts.append(Verdict(sock.index, outcome, ctx.t, snaplen, t_enq))

    def copied(self, reader: TaskView, skb: SkBuff, t_deq: float, t_done: float) -> None:
        rec = self._get(skb.id)
        if rec is None:
            return
        sock = getattr(reader, "sock", None)
        rec.copies.append(Copy(sock.index if sock is not None else -1, reader.name,
                               reader.cpu.index, t_deq, t_done))

    def nic_dropped(self, frame: FrameView, place: str) -> None:
        rec = self._get(frame.index)
        if rec is None:
            return
        rec.length = len(frame.data)
        rec.t_wire = frame.t_start
        rec.t_wire_end = frame.t_end
        rec.t_dma = frame.t_dma
        rec.dropped = place

    def softnet_dropped(self, ctx: ExecContext, skb: SkBuff) -> None:
        """netif_rx found the backlog full (pre-NAPI): the skb is freed after its poll."""
        rec = self._get(skb.id)
        if rec is None:
            return
        rec.dropped = "softnet_dropped"
        rec.t_drop = ctx.t

    # --- reading ------------------------------------------------------------
    def __getitem__(self, index: int) -> PacketLife:
        return self.records[index]

    def __contains__(self, index: int) -> bool:
        return index in self.records

    def sorted(self) -> list[PacketLife]:
        return [self.records[i] for i in sorted(self.records)]


def render_table(rec: PacketLife) -> Any:
    """A rich Table of one packet's stages: time, step from the previous stage, where."""
    from rich.table import Table

    table = Table(title=f"frame {rec.index}: {rec.fate}", title_justify="left")
    table.add_column("stage")
    table.add_column("time (us)", justify="right")
    table.add_column("+ (us)", justify="right")
    table.add_column("where / note")
    prev: float | None = None
    for stage, t, where in rec.stages():
        step = "" if prev is None else f"{(t - prev) * 1e6:+.3f}"
        table.add_row(stage, f"{t * 1e6:.3f}", step, where)
        prev = t
    return table
