"""drivers/net/pcnet32.c: the AMD PCnet chip and its Linux driver.

Chip side (AMD datasheet): a frame that passes the address filter is DMAed
into the descriptor at the chip's ring pointer if the chip owns it (OWN set);
the chip clears OWN and sets RINT, and raises the interrupt if INEA is set.
If the descriptor is host-owned the ring is full: the frame is missed (CSR112)
and MISS is latched, counted once per interrupt pass as ``rx_errors``.
CSR112 is read through ``read_csr``, which returns 16 bits (pcnet32.c:335 and :390
return u16), and pcnet32_get_stats *assigns* it to ``rx_missed_errors``
(:2661-2672), so the kernel shows the missed count modulo 65536; the simulator
keeps the true count apart (``rx_missed_true``) for its conservation law.

A frame longer than one buffer (``pkt_buf_skb - net_ip_align`` bytes with its
FCS, 1542 by default) is chained by the chip over several descriptors (STP on
the first, ENP on the last).  pcnet32_rx_entry (:1153-1252) sees status != 0x03
on each: the first and middle ones move no counter, the last one (ENP, high byte
0x01 with ERR) counts ``rx_errors`` ("Only count a general error at the end of a
packet", :1170-1171); each descriptor takes one unit of the poll's budget and is
handed back at once (:1263-1272).  pcnet32 never counts ``rx_length_errors``, and
neither it nor eth_type_trans counts ``multicast`` in 2.6.33 (eth.c:170-185 only
sets pkt_type), so both stay 0.

Driver side: pcnet32_interrupt acknowledges CSR0 (which also clears INEA),
masks the sources in CSR3 and schedules NAPI; pcnet32_poll runs pcnet32_rx for
at most ``weight`` descriptors, each through pcnet32_rx_entry (rx_copybreak:
frames up to 200 bytes are copied into a fresh skb, larger ones go up in the
ring's own skb and the slot gets a new one), returns every descriptor to the
chip at once, reclaims TX descriptors, and re-enables interrupts when it did
less than its weight.

The chip is simulated lazily: frames are taken off the wire only when the
driver looks at the ring (``advance``) or when an interrupt could fire.

Simplifications: a chained frame is missed whole (CSR112) when the chip does
not own all the descriptors it needs (the chip sets BUFF when it runs out
mid-frame [datasheet, not modelled]); the multicast address filter
accepts every multicast frame; TX completion is the end of the frame on the
(full-duplex) wire.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Generator
from typing import Any

import simpy

from lsfsim.config.model import Nic
from lsfsim.drivers.wire import Wire, WireFrame
from lsfsim.kernel.calls import ALLOC_SKB, folded
from lsfsim.kernel.context import KernelContext
from lsfsim.kernel.cpu import (
    CPU,
    ExecContext,
    Steps,
    charge,
    enter,
    exit_,
    fold,
    mark,
    self_time,
    variable,
)
from lsfsim.kernel.dev import NET_XMIT_DROP, NET_XMIT_SUCCESS, NapiStruct, NetCore
from lsfsim.kernel.skbuff import (
    PACKET_BROADCAST,
    PACKET_HOST,
    PACKET_MULTICAST,
    PACKET_OTHERHOST,
    SkBuff,
)
from lsfsim.kernel.softirq import do_irq_steps

ETH_HLEN = 14
BROADCAST = b"\xff" * 6


class _Chained:
    """What the ring holds on the first and middle descriptors of a chained frame."""

    data = b""


CHAINED: Any = _Chained()


class Pcnet32:
    """One PCnet NIC with its pcnet32 driver instance (eth0)."""

    irq = 10
    name = "eth0"

    def __init__(self, net: NetCore, nic: Nic, wire: Wire, cpu: CPU, napi: bool = True) -> None:
        kernel = net.kernel
        self.net = net
        self.env: simpy.Environment = kernel.env
        self.costs = kernel.costs
        self.config = kernel.config
        self.rng = kernel.rng
        self.hooks = kernel.hooks
        self.wire = wire
        self.cpu = cpu                      # the CPU the IRQ is routed to
        self.use_napi = napi
        self.ifindex = 2
        self.mac = bytes(int(b, 16) for b in nic.mac.split(":"))
        self.promisc = False
        self.rx_copybreak = nic.rx_copybreak
        self.memcpy_per_byte = kernel.costs.memcpy_per_byte
        self.dma_latency = nic.dma_latency
        self.dma_byte_time = 1.0 / nic.dma_rate
        self.alloc_fail_rate = nic.alloc_fail_rate
        # RX ring
        self.rx_ring_size = nic.rx_ring
        self.rx_mask = nic.rx_ring - 1
        self.rx_own = [True] * nic.rx_ring            # OWN bit: True = chip owns
        self.rx_frame: list[WireFrame | None] = [None] * nic.rx_ring
        self.cur_rx = 0                                # driver's next descriptor
        self.chip_rx = 0                               # chip's next descriptor
        # PKT_BUF_SKB (pcnet32.c:175) and NET_IP_ALIGN from the model: the ring's skbs
        # are dev_alloc_skb(PKT_BUF_SKB) + skb_reserve(NET_IP_ALIGN) (:2372-2380, :1203-1204)
        # and the chip's buffer is PKT_BUF_SIZE = PKT_BUF_SKB - NET_IP_ALIGN (:177)
        sizes = kernel.sizes
        self.pkt_buf_size = sizes.pkt_buf_skb - sizes.net_ip_align
        self.ring_truesize = kernel.truesize.dev_alloc_skb(sizes.pkt_buf_skb)
        # truesize of the fresh skb a frame of each length up to rx_copybreak is copied
        # into: dev_alloc_skb(pkt_len + NET_IP_ALIGN) (:1222)
        self.copy_truesize = [kernel.truesize.dev_alloc_skb(n + sizes.net_ip_align)
                              for n in range(min(self.rx_copybreak, self.pkt_buf_size) + 1)]
        self.fcs = nic.fcs
        # CSR0 / CSR112 state
        self.inea = True
        self.rint = False
        self.miss = False
        self.tint = False
        self.rx_missed_true = 0           # frames missed; the chip's CSR112 keeps 16 bits
        self.irq_raised = False
        self._armed = False               # an IRQ is due at _arm_when (timer or deferred)
        self._arm_when = math.inf
        self._next: WireFrame | None = None   # the wire's next frame, pulled, not yet DMAed
        # TX ring and qdisc
        self.tx_ring_size = nic.tx_ring
        self.tx_inflight: deque[tuple[float, SkBuff]] = deque()
        self.qdisc: deque[SkBuff] = deque()
        self.tx_wire_free = 0.0
        self._tint_upto = -1.0
        self.frame_time = wire.frame_time
        self.ifg_time = wire.gap_time
        # NAPI
        weight = kernel.config.napi_weight or nic.rx_ring // 2
        self.napi = NapiStruct(self.name, self.pcnet32_poll, weight)
        # counters (/proc/net/dev and the chip)
        self.interrupts = 0
        self.last_irq = 0.0
        self.mac_filtered = 0
        self.rx_packets = 0
        self.rx_bytes = 0
        self.rx_errors = 0
        self.rx_dropped = 0
        self.rx_length_errors = 0
        self.rx_over_errors = 0
        self.rx_crc_errors = 0
        self.rx_frame_errors = 0
        self.rx_fifo_errors = 0
        self.rx_oversize = 0              # frames chained over several descriptors (dropped)
        self.multicast = 0                # never counted by pcnet32 in 2.6.33
        self.tx_packets = 0
        self.tx_bytes = 0
        self.tx_errors = 0
        self.tx_dropped = 0
        self.collisions = 0
        self._build_plans(kernel)
        wire.on_unblock = self._on_wire_unblock
        self._arm(0.0)

    def _build_plans(self, kernel: KernelContext) -> None:
        """The driver's fixed call sequences, in the lecture trace's order."""
        c = kernel.costs
        plan = kernel.plan
        read_csr = charge("pcnet32_wio_read_csr", c.pcnet32_wio_read_csr)
        write_csr = charge("pcnet32_wio_write_csr", c.pcnet32_wio_write_csr)
        self.plan_isr_ack = plan(*do_irq_steps(c), enter("pcnet32_interrupt"),
                                 charge("pcnet32_interrupt", c.pcnet32_interrupt),
                                 mark("_raw_spin_lock"), read_csr, write_csr)
        # CSR3 |= 0x5f00 (mask), __napi_schedule, unlock
        self.plan_isr_napi = plan(read_csr, write_csr,
                                  charge("__napi_schedule", c.napi_schedule),
                                  mark("_raw_spin_unlock"), exit_("pcnet32_interrupt"))
        # pre-NAPI: INEA = 1, then the lock taken at the handler's entry is dropped
        self.plan_isr_inea = plan(write_csr, mark("_raw_spin_unlock"), exit_("pcnet32_interrupt"))
        self.plan_poll_enter = plan(enter("pcnet32_poll"), charge("pcnet32_poll", c.pcnet32_poll))
        # pcnet32_rx and pcnet32_rx_entry are inlined into their caller (as in the
        # lecture's trace): their cost is pcnet32_poll's self time, or
        # pcnet32_interrupt's for the pre-NAPI driver that receives in the handler.
        owner = "pcnet32_poll" if self.use_napi else "pcnet32_interrupt"
        alloc = (self_time(owner, c.pcnet32_rx_entry), enter("dev_alloc_skb"),
                 charge("dev_alloc_skb", c.dev_alloc_skb), *folded(ALLOC_SKB),
                 exit_("dev_alloc_skb"))
        eth = (enter("eth_type_trans"), charge("eth_type_trans", c.eth_type_trans),
               mark("skb_pull"), exit_("eth_type_trans"))
        # in place: the ring's skb goes up and the new one is mapped for the chip
        # (pci_map_single -> nommu_map_page; nommu has no unmap_page, no sync_for_cpu)
        put_inplace = (charge("skb_put", c.skb_put), mark("nommu_map_page"), *eth)
        put_copy = (charge("skb_put", c.skb_put), variable("memcpy", c.memcpy),
                    mark("nommu_sync_single_for_device"), *eth)
        self.plan_rx_inplace = plan(*alloc, *put_inplace)
        self.plan_rx_copy = plan(*alloc, *put_copy)
        # the same split at the allocation, for models where it can fail
        self.plan_rx_alloc = plan(*alloc)
        self.plan_put_inplace = plan(*put_inplace)
        self.plan_put_copy = plan(*put_copy)
        self.plan_rx_error = plan(self_time(owner, c.pcnet32_rx_entry))
        # pcnet32_tx is inlined too (one call site): per reclaimed descriptor, its cost is
        # the caller's and dev_kfree_skb_any frees with IRQs off (dev_kfree_skb_irq)
        self.plan_tx_reclaim = plan(self_time(owner, c.pcnet32_tx), enter("dev_kfree_skb_any"),
                                    charge("dev_kfree_skb_any", c.dev_kfree_skb_any),
                                    *folded("dev_kfree_skb_irq() { raise_softirq_irqoff(); }"),
                                    exit_("dev_kfree_skb_any"))
        # the poll's TX clean-up runs under lp->lock (spin_lock_irqsave), then the
        # completion takes it again (pcnet32.c:1389-1413)
        self.plan_tx_lock = plan(mark("_raw_spin_lock_irqsave"))
        tx_unlock = mark("_raw_spin_unlock_irqrestore")
        self.plan_poll_busy = plan(tx_unlock, exit_("pcnet32_poll"))
        self.plan_poll_done = plan(tx_unlock, mark("_raw_spin_lock_irqsave"),
                                   mark("__napi_complete"), read_csr, write_csr, write_csr,
                                   mark("_raw_spin_unlock_irqrestore"), exit_("pcnet32_poll"))
        self.plan_start_xmit = plan(enter("pcnet32_start_xmit"),
                                    charge("pcnet32_start_xmit", c.pcnet32_start_xmit),
                                    mark("_raw_spin_lock_irqsave"), mark("nommu_map_page"),
                                    write_csr, mark("_raw_spin_unlock_irqrestore"),
                                    exit_("pcnet32_start_xmit"))
        # __dev_xmit_skb's bypass (inline): sch_direct_xmit drops the qdisc root lock, takes
        # the TX lock (HARD_TX_LOCK) around dev_hard_start_xmit, then the root lock again
        self.plan_direct_xmit = plan(fold("sch_direct_xmit"), mark("_raw_spin_unlock"),
                                     mark("_raw_spin_lock"))
        self.plan_direct_xmit_exit = plan(mark("_raw_spin_unlock"), mark("_raw_spin_lock"),
                                          exit_("sch_direct_xmit"))
        self.plan_hard_start_xmit = plan(fold("dev_hard_start_xmit"))
        self.plan_hard_start_xmit_exit = plan(exit_("dev_hard_start_xmit"))
        self.plan_enqueue = plan(mark("pfifo_fast_enqueue"))
        self.plan_enqueue_drop = plan(*folded("pfifo_fast_enqueue() { kfree_skb(); }"))

    # --- chip: receive --------------------------------------------------------
    @property
    def csr112(self) -> int:
        """The chip's missed-frame counter: 16 bits, as read_csr returns it (u16)."""
        return self.rx_missed_true & 0xFFFF

    @property
    def rx_missed_errors(self) -> int:
        """pcnet32_get_stats assigns CSR112 here (pcnet32.c:2661-2672): modulo 65536."""
        return self.csr112

    def rx_ring_host_owned(self) -> int:
        """Descriptors filled by the chip and not yet returned by the driver."""
        return self.chip_rx - self.cur_rx

    def frame_in_flight(self) -> bool:
        """A frame has left the wire but its DMA is not done (the chip's lookahead)."""
        return self._next is not None

    def netdev_stats(self) -> dict[str, int]:
        """struct net_device_stats, as pcnet32_get_stats fills it (/proc/net/dev)."""
        return {
            "rx_bytes": self.rx_bytes, "rx_packets": self.rx_packets,
            "rx_errors": self.rx_errors, "rx_dropped": self.rx_dropped,
            "rx_missed_errors": self.rx_missed_errors, "rx_fifo_errors": self.rx_fifo_errors,
            "rx_length_errors": self.rx_length_errors, "rx_over_errors": self.rx_over_errors,
            "rx_crc_errors": self.rx_crc_errors, "rx_frame_errors": self.rx_frame_errors,
            "multicast": self.multicast, "tx_bytes": self.tx_bytes,
            "tx_packets": self.tx_packets, "tx_errors": self.tx_errors,
            "tx_dropped": self.tx_dropped, "collisions": self.collisions,
        }

    def check_ring(self) -> str | None:
        """The RX ring's ownership invariant: None if it holds, else what is wrong."""
        host_owned = sum(1 for own in self.rx_own if not own)
        occupancy = self.rx_ring_host_owned()
        if host_owned != occupancy or not 0 <= host_owned <= self.rx_ring_size:
            return (f"ring ownership: {host_owned} host-owned descriptors, pointers say "
                    f"{occupancy}")
        return None

    def _peek(self) -> WireFrame | None:
        frame = self._next
        if frame is None:
            wire = self.wire
            if wire.finished or wire.blocked:
                return None
            frame = wire.pull()
            if frame is None:
                return None
            frame.t_dma = frame.t_end + self.dma_latency + len(frame.data) * self.dma_byte_time
            self._next = frame
        return frame

    def advance(self, t: float) -> None:
        """Let the chip receive every frame whose DMA completes by time ``t``."""
        peek = self._peek
        while True:
            frame = self._next or peek()
            if frame is None or frame.t_dma > t:
                return
            self._next = None
            data = frame.data
            if not (data[0] & 1 or self.promisc or data.startswith(self.mac)):
                self.mac_filtered += 1
                if self.hooks.nic_dropped is not None:
                    self.hooks.nic_dropped(frame, "mac_filtered")
                continue
            i = self.chip_rx & self.rx_mask
            if len(data) + self.fcs <= self.pkt_buf_size:
                need = 1
                if self.rx_own[i]:
                    self.rx_own[i] = False
                    self.rx_frame[i] = frame
                    self.chip_rx += 1
                    self.rint = True
                    continue
            else:
                need = -(-(len(data) + self.fcs) // self.pkt_buf_size)
            if need > 1 and need <= self.rx_ring_size and all(
                    self.rx_own[(self.chip_rx + k) & self.rx_mask] for k in range(need)):
                # chained: STP ... ENP; the frame is kept on the last (ENP) descriptor
                for k in range(need):
                    j = (self.chip_rx + k) & self.rx_mask
                    self.rx_own[j] = False
                    self.rx_frame[j] = frame if k == need - 1 else CHAINED
                self.chip_rx += need
                self.rint = True
            else:
                self.rx_missed_true += 1
                self.miss = True
                if self.hooks.nic_dropped is not None:
                    self.hooks.nic_dropped(frame, "rx_missed_errors")

    # --- chip: interrupt line -----------------------------------------------
    def _next_tx_completion(self) -> float:
        for t_end, _skb in self.tx_inflight:
            if t_end > self._tint_upto:
                return t_end
        return math.inf

    def _arm(self, t_from: float) -> None:
        """While INEA is set, schedule the moment the chip will assert its IRQ.

        The chain: ``_arm`` finds the moment (a latched cause: now; else the next
        frame's DMA or TX completion), then either sets a timer (``_arm_timer`` →
        ``_arm_fire`` → ``assert_irq``) or, when the CPU's interrupt runner is busy,
        leaves the line on its ``deferred`` list, where the runner looks before it
        could notice an IRQ (``deferred_irq`` → ``assert_irq``, or a timer then).
        """
        if self._armed or not self.inea or self.irq_raised:
            return
        if self.rint or self.miss or self.tint:
            when = t_from
        else:
            frame = self._peek()
            when = frame.t_dma if frame is not None else math.inf
            if self.tx_inflight:
                when = min(when, self._next_tx_completion())
            if when == math.inf:
                return
        self._armed = True
        self._arm_when = when
        runner = self.cpu.runner
        if runner.busy:
            # the CPU's interrupt runner looks at deferred IRQ lines before it can
            # notice anything (see InterruptRunner.take_deferred): no timer needed
            runner.deferred.append(self)
        else:
            self._arm_timer(when)

    def _arm_timer(self, when: float) -> None:
        """A SimPy timer for the moment the line asserts."""
        env = self.env
        ev = env.timeout(when - env.now if when > env.now else 0.0)
        ev.callbacks.append(self._arm_fire)

    def _arm_fire(self, _ev: simpy.Event) -> None:
        """The timer fired: assert the line now."""
        self.assert_irq(self.env.now)

    @property
    def irq_due(self) -> float:
        """When the armed line asserts (meaningful while it is deferred)."""
        return self._arm_when

    def deferred_irq(self, now: float) -> None:
        """The runner looks at this deferred line at ``now``: assert it if due, else set
        the timer."""
        if self._arm_when <= now:
            self.assert_irq(self._arm_when)
        else:
            self._arm_timer(self._arm_when)

    def assert_irq(self, t: float) -> None:
        """At time ``t`` the chip asserts its IRQ line if a cause is latched (INEA set)."""
        self._armed = False
        if not self.inea or self.irq_raised:
            return
        self.advance(t)
        if self.tx_inflight and self._next_tx_completion() <= t:
            self.tint = True
            self._tint_upto = t
        if self.rint or self.miss or self.tint:
            self.irq_raised = True
            self.interrupts += 1
            self.last_irq = t
            self.cpu.runner.raise_irq(self)
        else:
            self._arm(t)

    def _on_wire_unblock(self) -> None:
        """The source has frames again (an ACK left, or its timer expired): re-arm."""
        self._arm(self.env.now)

    # --- driver: interrupt handler --------------------------------------------
    def interrupt(self, ctx: ExecContext) -> Steps | None:
        """pcnet32_interrupt: acknowledge CSR0 (INEA cleared), mask, schedule NAPI.

        Returns None when done (NAPI), or, for the pre-NAPI driver that receives
        inside the handler, its per-packet steps (kernel.cpu.Steps).
        """
        self.irq_raised = False
        ctx.run(self.plan_isr_ack)        # read CSR0, write it back: ack, INEA = 0
        self.advance(ctx.t)
        self.inea = False
        if self.miss:
            self.rx_errors += 1           # once per pass, not per missed frame
            self.miss = False
        self.rint = False
        self.tint = False
        if self.use_napi:
            ctx.run(self.plan_isr_napi)
            # NAPI cannot be scheduled here: the IRQ stays off (INEA = 0) until the poll
            # completes, so napi_schedule_prep always succeeds.
            self.net.napi_schedule(ctx, self.napi, charged=True)
            return None
        return self._interrupt_rx(ctx)

    def _interrupt_rx(self, ctx: ExecContext) -> Steps:
        """Pre-NAPI: receive in the handler and queue on the backlog with netif_rx."""
        for _ in range(2):                # max_interrupt_work
            yield from self._rx(ctx, self.rx_ring_size, napi=False)
            self.pcnet32_tx(ctx)
            self.advance(ctx.t)
            if not self.rint:
                break
            self.rint = False
        ctx.run(self.plan_isr_inea)
        self.inea = True
        self._arm(ctx.t)

    # --- driver: NAPI poll ------------------------------------------------------
    def pcnet32_poll(self, ctx: ExecContext, budget: int) -> Generator[simpy.Event, Any, int]:
        """The NAPI poll: RX up to budget, TX reclaim, complete and unmask if not busy."""
        self.napi.polls += 1
        ctx.run(self.plan_poll_enter)
        work = yield from self._rx(ctx, budget, napi=True)
        if ctx.tracer is not None:        # a mark: only the tracer sees it
            ctx.run(self.plan_tx_lock)
        self.pcnet32_tx(ctx)              # under lp->lock
        if work < budget:
            self.net.napi_complete(ctx, self.napi)
            ctx.run(self.plan_poll_done)  # __napi_complete, CSR3 unmask, CSR0 = INEA
            self.inea = True
            self._arm(ctx.t)
        elif ctx.tracer is not None:      # marks and a return: only the tracer sees them
            ctx.run(self.plan_poll_busy)
        return work

    def _rx(self, ctx: ExecContext, budget: int, napi: bool) -> Generator[simpy.Event, Any, int]:
        """pcnet32_rx: walk host-owned descriptors, one simulated step per descriptor."""
        own = self.rx_own
        frames = self.rx_frame
        mask = self.rx_mask
        runner = ctx.cpu.runner
        work = 0
        while work < budget:
            nxt = self._next
            if nxt is None or nxt.t_dma <= ctx.t:
                self.advance(ctx.t)
            i = self.cur_rx & mask
            if own[i]:
                break
            # a host-owned descriptor always holds a frame (DMA filled it before OWN cleared)
            self.pcnet32_rx_entry(ctx, frames[i], napi)  # type: ignore[arg-type]
            work += 1
            nxt = self._next
            if nxt is None or nxt.t_dma <= ctx.t:
                self.advance(ctx.t)       # frames arriving before the slot is returned
            own[i] = True                 # status = 0x8000: back to the chip
            frames[i] = None
            self.cur_rx += 1
            if own[self.cur_rx & mask] and work < budget:
                break                     # ring empty: the caller's next step continues
            if ctx.task is None:          # on the interrupt runner: one step per packet
                step = ctx.step_event()
                if step is not None:
                    yield step
                if napi and (runner.pending or runner.deferred):
                    yield from runner.preempt_point(ctx)
            else:                         # in ksoftirqd: a preemptible burst
                yield from ctx.sync()
        return work

    def pcnet32_rx_entry(self, ctx: ExecContext, frame: WireFrame, napi: bool = True) -> None:
        """One descriptor: length checks, copybreak or in-place, eth_type_trans, deliver."""
        hooks = self.hooks
        if frame is CHAINED:                       # STP or middle of a chain: status != 0x03,
            ctx.run(self.plan_rx_error)            # no counter (pcnet32.c:1163-1180)
            return
        data = frame.data
        pkt_len = len(data)
        if pkt_len < 60:
            data = data + bytes(60 - pkt_len)      # the sender's padding, as received
            pkt_len = 60
        if pkt_len + self.fcs > self.pkt_buf_size:  # ENP of a chain: rx_errors only (:1170)
            ctx.run(self.plan_rx_error)
            self.rx_errors += 1
            self.rx_oversize += 1
            if hooks.nic_dropped is not None:
                hooks.nic_dropped(frame, "rx_oversize")
            return
        in_place = pkt_len > self.rx_copybreak   # else copied into a fresh small skb
        copy_time = 0.0 if in_place else pkt_len * self.memcpy_per_byte
        if self.alloc_fail_rate:
            ctx.run(self.plan_rx_alloc)
            if self.rng.random() < self.alloc_fail_rate:
                self.rx_dropped += 1               # "Memory squeeze": the buffer stays
                if hooks.nic_dropped is not None:
                    hooks.nic_dropped(frame, "rx_dropped")
                return
            ctx.run(self.plan_put_inplace if in_place else self.plan_put_copy, copy_time)
        else:
            ctx.run(self.plan_rx_inplace if in_place else self.plan_rx_copy, copy_time)
        if in_place:                               # the ring's own skb goes up
            skb = SkBuff(data, self.ring_truesize, frame.index)
        else:
            skb = SkBuff(data, self.copy_truesize[pkt_len], frame.index)
        skb.t_wire = frame.t_start
        skb.t_dma = frame.t_dma
        skb.t_irq = self.last_irq
        skb.t_poll = ctx.t
        self.rx_bytes += pkt_len
        polled = hooks.polled
        if polled is not None:
            polled(ctx, skb)
        self.eth_type_trans(skb)
        if napi:
            self.net.netif_receive_skb(ctx, skb)
        else:
            self.net.netif_rx(ctx, skb)
        self.rx_packets += 1

    def eth_type_trans(self, skb: SkBuff) -> None:
        """Set pkt_type from the destination MAC and protocol from the ethertype.

        Its cost is charged in the receive plans above (it always follows skb_put).
        """
        data = skb.data
        if data[0] & 1:
            if data.startswith(BROADCAST):
                skb.pkt_type = PACKET_BROADCAST
            else:
                skb.pkt_type = PACKET_MULTICAST  # not counted: stats.multicast stays 0
        elif data.startswith(self.mac):
            skb.pkt_type = PACKET_HOST
        else:
            skb.pkt_type = PACKET_OTHERHOST
        ethertype = (data[12] << 8) | data[13]
        skb.protocol = ethertype if ethertype >= 1536 else 0x0004

    # --- transmit -------------------------------------------------------------
    def qdisc_enqueue(self, ctx: ExecContext, skb: SkBuff) -> int:
        """__dev_xmit_skb with pfifo_fast: bypass when idle, else queue up to tx_queue_len."""
        traced = ctx.tracer is not None       # the plans below are marks: tracer only
        if not self.qdisc and len(self.tx_inflight) < self.tx_ring_size:
            if traced:
                ctx.run(self.plan_direct_xmit)
            self.dev_hard_start_xmit(ctx, skb)
            if traced:
                ctx.run(self.plan_direct_xmit_exit)
            return NET_XMIT_SUCCESS
        if len(self.qdisc) >= self.config.tx_queue_len:
            if traced:
                ctx.run(self.plan_enqueue_drop)
            self.tx_dropped += 1
            return NET_XMIT_DROP
        if traced:
            ctx.run(self.plan_enqueue)
        self.qdisc.append(skb)
        return NET_XMIT_SUCCESS

    def dev_hard_start_xmit(self, ctx: ExecContext, skb: SkBuff) -> None:
        """The taps first (dev_queue_xmit_nit, while ptype_all is not empty), then the
        driver's ndo_start_xmit (dev.c:1806-1830)."""
        traced = ctx.tracer is not None
        if traced:
            ctx.run(self.plan_hard_start_xmit)
        if self.net.ptype_all:
            self.net.dev_queue_xmit_nit(ctx, skb)
        self.pcnet32_start_xmit(ctx, skb)
        if traced:
            ctx.run(self.plan_hard_start_xmit_exit)

    def pcnet32_start_xmit(self, ctx: ExecContext, skb: SkBuff) -> None:
        """Fill a TX descriptor (OWN|STP|ENP) and kick the chip with TDMD."""
        ctx.run(self.plan_start_xmit)             # ... write CSR0 = INEA | TDMD
        length = len(skb.data)
        self.tx_bytes += length
        start = ctx.t if ctx.t > self.tx_wire_free else self.tx_wire_free
        t_end = start + self.frame_time(length)
        self.tx_wire_free = t_end + self.ifg_time
        self.tx_inflight.append((t_end, skb))
        self.wire.notify_tx(t_end, skb.data)
        self._arm(ctx.t)

    def pcnet32_tx(self, ctx: ExecContext) -> None:
        """Reclaim transmitted descriptors; restart the queue from the qdisc."""
        inflight = self.tx_inflight
        while inflight and inflight[0][0] <= ctx.t:
            _t_end, skb = inflight.popleft()
            ctx.run(self.plan_tx_reclaim)
            self.tx_packets += 1
            owner = skb.sk
            if owner is not None:
                owner.sock_wfree(skb)
        while self.qdisc and len(inflight) < self.tx_ring_size:
            self.dev_hard_start_xmit(ctx, self.qdisc.popleft())

    def set_promiscuity(self, on: bool) -> None:
        """IFF_PROMISC sets CSR15.PROM: the address filter then accepts every frame."""
        self.promisc = on
