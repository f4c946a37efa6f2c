"""drivers/net/pcnet32.c: the AMD PCnet chip and its Linux driver.

Chip side (AMD datasheet): a frame that passes the address filter is DMAed
into the descriptor at the chip's ring pointer if the chip owns it (OWN set);
the chip clears OWN and sets RINT, and raises the interrupt if INEA is set.
If the descriptor is host-owned the ring is full: the frame is missed (CSR112,
``rx_missed_errors``) and MISS is latched, counted once per interrupt pass as
``rx_errors``.

Driver side: pcnet32_interrupt acknowledges CSR0 (which also clears INEA),
masks the sources in CSR3 and schedules NAPI; pcnet32_poll runs pcnet32_rx for
at most ``weight`` descriptors, each through pcnet32_rx_entry (rx_copybreak:
frames up to 200 bytes are copied into a fresh skb, larger ones go up in the
ring's own skb and the slot gets a new one), returns every descriptor to the
chip at once, reclaims TX descriptors, and re-enables interrupts when it did
less than its weight.

The chip is simulated lazily: frames are taken off the wire only when the
driver looks at the ring (``advance``) or when an interrupt could fire.

Simplifications: frames longer than one 1542-byte buffer (jabber) are counted
as rx_errors without consuming descriptors; the multicast address filter
accepts every multicast frame; TX completion is the end of the frame on the
(full-duplex) wire.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import simpy

from lsfsim.drivers.wire import Wire, WireFrame
from lsfsim.kernel.cpu import CPU, ExecContext
from lsfsim.kernel.dev import NET_XMIT_DROP, NET_XMIT_SUCCESS, NapiStruct
from lsfsim.kernel.skbuff import (
    PACKET_BROADCAST,
    PACKET_HOST,
    PACKET_MULTICAST,
    PACKET_OTHERHOST,
    SkBuff,
)

if TYPE_CHECKING:
    from lsfsim.machine import Machine

PKT_BUF_SKB = 1544
NET_IP_ALIGN = 2
PKT_BUF_SIZE = PKT_BUF_SKB - NET_IP_ALIGN
ETH_HLEN = 14
BROADCAST = b"\xff" * 6


class Pcnet32:
    """One PCnet NIC with its pcnet32 driver instance (eth0)."""

    irq = 10
    name = "eth0"

    def __init__(self, machine: Machine, wire: Wire, cpu: CPU, napi: bool = True) -> None:
        nic = machine.model.hardware.nic
        self.machine = machine
        self.env: simpy.Environment = machine.env
        self.costs = machine.costs
        self.wire = wire
        self.cpu = cpu                      # the CPU the IRQ is routed to
        self.use_napi = napi
        self.ifindex = 2
        self.mac = bytes(int(b, 16) for b in nic.mac.split(":"))
        self.promisc = False
        self.rx_copybreak = nic.rx_copybreak
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
        self.ring_truesize = machine.truesize.dev_alloc_skb(PKT_BUF_SKB)
        # CSR0 / CSR112 state
        self.inea = True
        self.rint = False
        self.miss = False
        self.tint = False
        self.csr112 = 0
        self.irq_raised = False
        self._armed = False
        self._next: WireFrame | None = None
        # TX ring and qdisc
        self.tx_ring_size = nic.tx_ring
        self.tx_inflight: deque[tuple[float, SkBuff]] = deque()
        self.qdisc: deque[SkBuff] = deque()
        self.tx_wire_free = 0.0
        self._tint_upto = -1.0
        self.frame_time = wire.frame_time
        self.ifg_time = wire.ifg * wire.byte_time
        # NAPI
        weight = machine.kernel.napi_weight or nic.rx_ring // 2
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
        self.multicast = 0
        self.tx_packets = 0
        self.tx_bytes = 0
        self.tx_errors = 0
        self.tx_dropped = 0
        self.collisions = 0
        wire.on_unblock = self._on_wire_unblock
        self._arm(0.0)

    # --- chip: receive --------------------------------------------------------
    @property
    def rx_missed_errors(self) -> int:
        """pcnet32_get_stats copies the missed-frame count (CSR112) here."""
        return self.csr112

    def rx_ring_host_owned(self) -> int:
        """Descriptors filled by the chip and not yet returned by the driver."""
        return self.chip_rx - self.cur_rx

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
            if not (data[0] & 1 or self.promisc or data[:6] == self.mac):
                self.mac_filtered += 1
                if self.machine.lifecycle is not None:
                    self.machine.lifecycle.nic_dropped(frame, "mac_filtered")
                continue
            i = self.chip_rx & self.rx_mask
            if self.rx_own[i]:
                self.rx_own[i] = False
                self.rx_frame[i] = frame
                self.chip_rx += 1
                self.rint = True
            else:
                self.csr112 += 1
                self.miss = True
                if self.machine.lifecycle is not None:
                    self.machine.lifecycle.nic_dropped(frame, "rx_missed_errors")

    # --- chip: interrupt line -----------------------------------------------
    def _next_tx_completion(self) -> float:
        for t_end, _skb in self.tx_inflight:
            if t_end > self._tint_upto:
                return t_end
        return math.inf

    def _arm(self, t_from: float) -> None:
        """While INEA is set, schedule the moment the chip will assert its IRQ."""
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
        env = self.env
        ev = env.timeout(when - env.now if when > env.now else 0.0)
        ev.callbacks.append(self._arm_fire)

    def _arm_fire(self, _ev: simpy.Event) -> None:
        self._armed = False
        if not self.inea or self.irq_raised:
            return
        now = self.env.now
        self.advance(now)
        if self.tx_inflight and self._next_tx_completion() <= now:
            self.tint = True
            self._tint_upto = now
        if self.rint or self.miss or self.tint:
            self.irq_raised = True
            self.interrupts += 1
            self.last_irq = now
            self.cpu.runner.raise_irq(self)
        else:
            self._arm(now)

    def _on_wire_unblock(self) -> None:
        self._arm(self.env.now)

    # --- driver: interrupt handler --------------------------------------------
    def interrupt(self, ctx: ExecContext) -> Generator[simpy.Event, Any, None]:
        """pcnet32_interrupt: acknowledge CSR0 (INEA cleared), mask, schedule NAPI."""
        costs = self.costs
        self.irq_raised = False
        ctx.enter("pcnet32_interrupt")
        ctx.charge("pcnet32_interrupt", costs.pcnet32_interrupt)
        ctx.mark("_raw_spin_lock")
        self.advance(ctx.t)
        ctx.charge("pcnet32_wio_read_csr", costs.pcnet32_wio_read_csr)     # read CSR0
        ctx.charge("pcnet32_wio_write_csr", costs.pcnet32_wio_write_csr)   # ack, INEA = 0
        self.inea = False
        if self.miss:
            self.rx_errors += 1           # once per pass, not per missed frame
            self.miss = False
        self.rint = False
        self.tint = False
        if self.use_napi:
            ctx.charge("pcnet32_wio_read_csr", costs.pcnet32_wio_read_csr)   # CSR3
            ctx.charge("pcnet32_wio_write_csr", costs.pcnet32_wio_write_csr) # mask 0x5f00
            if not self.napi.scheduled:
                self.machine.net.napi_schedule(ctx, self.napi)
            ctx.mark("_raw_spin_unlock")
            ctx.exit("pcnet32_interrupt")
            return
        # pre-NAPI: receive in the handler and queue on the backlog with netif_rx
        for _ in range(2):                # max_interrupt_work
            yield from self._rx(ctx, self.rx_ring_size, napi=False)
            self.pcnet32_tx(ctx)
            self.advance(ctx.t)
            if not self.rint:
                break
            self.rint = False
        ctx.charge("pcnet32_wio_write_csr", costs.pcnet32_wio_write_csr)   # INEA = 1
        self.inea = True
        ctx.exit("pcnet32_interrupt")
        self._arm(ctx.t)

    # --- driver: NAPI poll ------------------------------------------------------
    def pcnet32_poll(self, ctx: ExecContext, budget: int) -> Generator[simpy.Event, Any, int]:
        """The NAPI poll: RX up to budget, TX reclaim, complete and unmask if not busy."""
        costs = self.costs
        self.napi.polls += 1
        ctx.enter("pcnet32_poll")
        ctx.charge("pcnet32_poll", costs.pcnet32_poll)
        work = yield from self._rx(ctx, budget, napi=True)
        ctx.mark("_raw_spin_lock_irqsave")
        self.pcnet32_tx(ctx)
        ctx.mark("_raw_spin_unlock_irqrestore")
        if work < budget:
            ctx.mark("_raw_spin_lock_irqsave")
            ctx.mark("__napi_complete")
            self.machine.net.napi_complete(ctx, self.napi)
            ctx.charge("pcnet32_wio_read_csr", costs.pcnet32_wio_read_csr)
            ctx.charge("pcnet32_wio_write_csr", costs.pcnet32_wio_write_csr)  # CSR3 unmask
            ctx.charge("pcnet32_wio_write_csr", costs.pcnet32_wio_write_csr)  # CSR0 = INEA
            ctx.mark("_raw_spin_unlock_irqrestore")
            self.inea = True
            self._arm(ctx.t)
        ctx.exit("pcnet32_poll")
        return work

    def _rx(self, ctx: ExecContext, budget: int, napi: bool) -> Generator[simpy.Event, Any, int]:
        """pcnet32_rx: walk host-owned descriptors, one simulated step per descriptor."""
        own = self.rx_own
        frames = self.rx_frame
        mask = self.rx_mask
        runner = ctx.cpu.runner
        work = 0
        while work < budget:
            self.advance(ctx.t)
            i = self.cur_rx & mask
            if own[i]:
                break
            self.pcnet32_rx_entry(ctx, frames[i], napi)
            work += 1
            self.advance(ctx.t)           # frames arriving before the slot is returned
            own[i] = True                 # status = 0x8000: back to the chip
            frames[i] = None
            self.cur_rx += 1
            yield from ctx.sync()
            if napi:
                yield from runner.preempt_point(ctx)
        return work

    def pcnet32_rx_entry(self, ctx: ExecContext, frame: WireFrame, napi: bool = True) -> None:
        """One descriptor: length checks, copybreak or in-place, eth_type_trans, deliver."""
        costs = self.costs
        machine = self.machine
        # pcnet32_rx and pcnet32_rx_entry are inlined into pcnet32_poll (as in the
        # lecture's trace), so their cost is the poll's self time.
        ctx.charge("pcnet32_poll", costs.pcnet32_rx_entry)
        data = frame.data
        pkt_len = len(data)
        if pkt_len < 60:
            data = data + bytes(60 - pkt_len)      # the sender's padding, as received
            pkt_len = 60
        if pkt_len + 4 > PKT_BUF_SIZE:
            self.rx_errors += 1
            self.rx_length_errors += 1
            return
        if pkt_len > self.rx_copybreak:
            ctx.enter("dev_alloc_skb")
            ctx.charge("dev_alloc_skb", costs.dev_alloc_skb)
            ctx.exit("dev_alloc_skb")
            if self.alloc_fail_rate and machine.rng.random() < self.alloc_fail_rate:
                self.rx_dropped += 1              # "Memory squeeze": buffer stays in the ring
                return
            skb = SkBuff(data, self.ring_truesize, frame.index)
            ctx.charge("skb_put", costs.skb_put)
        else:
            ctx.enter("dev_alloc_skb")
            ctx.charge("dev_alloc_skb", costs.dev_alloc_skb)
            ctx.exit("dev_alloc_skb")
            if self.alloc_fail_rate and machine.rng.random() < self.alloc_fail_rate:
                self.rx_dropped += 1
                return
            skb = SkBuff(data, machine.truesize.dev_alloc_skb(pkt_len + NET_IP_ALIGN), frame.index)
            ctx.charge("skb_put", costs.skb_put)
            ctx.charge("memcpy", costs.memcpy + pkt_len * costs.memcpy_per_byte)
            ctx.mark("nommu_sync_single_for_device")
        skb.t_wire = frame.t_start
        skb.t_dma = frame.t_dma
        skb.t_irq = self.last_irq
        skb.t_poll = ctx.t
        self.rx_bytes += pkt_len
        lifecycle = machine.lifecycle
        if lifecycle is not None:
            lifecycle.polled(ctx, skb)
        self.eth_type_trans(ctx, skb)
        if napi:
            machine.net.netif_receive_skb(ctx, skb)
        else:
            machine.net.netif_rx(ctx, skb)
        self.rx_packets += 1

    def eth_type_trans(self, ctx: ExecContext, skb: SkBuff) -> None:
        """Set pkt_type from the destination MAC and protocol from the ethertype."""
        ctx.enter("eth_type_trans")
        ctx.charge("eth_type_trans", self.costs.eth_type_trans)
        ctx.mark("skb_pull")
        data = skb.data
        if data[0] & 1:
            if data[:6] == BROADCAST:
                skb.pkt_type = PACKET_BROADCAST
            else:
                skb.pkt_type = PACKET_MULTICAST
                self.multicast += 1
        elif data[:6] != self.mac:
            skb.pkt_type = PACKET_OTHERHOST
        else:
            skb.pkt_type = PACKET_HOST
        ethertype = (data[12] << 8) | data[13]
        skb.protocol = ethertype if ethertype >= 1536 else 0x0004
        ctx.exit("eth_type_trans")

    # --- transmit -------------------------------------------------------------
    def qdisc_enqueue(self, ctx: ExecContext, skb: SkBuff) -> int:
        """__dev_xmit_skb with pfifo_fast: bypass when idle, else queue up to tx_queue_len."""
        if not self.qdisc and len(self.tx_inflight) < self.tx_ring_size:
            self.dev_hard_start_xmit(ctx, skb)
            return NET_XMIT_SUCCESS
        if len(self.qdisc) >= self.machine.kernel.tx_queue_len:
            self.tx_dropped += 1
            return NET_XMIT_DROP
        self.qdisc.append(skb)
        return NET_XMIT_SUCCESS

    def dev_hard_start_xmit(self, ctx: ExecContext, skb: SkBuff) -> None:
        if self.machine.net.ptype_all:
            self.machine.net.dev_queue_xmit_nit(ctx, skb)
        self.pcnet32_start_xmit(ctx, skb)

    def pcnet32_start_xmit(self, ctx: ExecContext, skb: SkBuff) -> None:
        """Fill a TX descriptor (OWN|STP|ENP) and kick the chip with TDMD."""
        costs = self.costs
        ctx.enter("pcnet32_start_xmit")
        ctx.charge("pcnet32_start_xmit", costs.pcnet32_start_xmit)
        ctx.charge("pcnet32_wio_write_csr", costs.pcnet32_wio_write_csr)   # INEA | TDMD
        ctx.exit("pcnet32_start_xmit")
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
        costs = self.costs
        inflight = self.tx_inflight
        while inflight and inflight[0][0] <= ctx.t:
            _t_end, skb = inflight.popleft()
            ctx.charge("pcnet32_tx", costs.pcnet32_tx)
            ctx.charge("dev_kfree_skb_any", costs.dev_kfree_skb_any)
            self.tx_packets += 1
            owner = skb.sk
            if owner is not None:
                owner.sock_wfree(skb)
        while self.qdisc and len(inflight) < self.tx_ring_size:
            self.dev_hard_start_xmit(ctx, self.qdisc.popleft())

    def set_promiscuity(self, on: bool) -> None:
        """IFF_PROMISC sets CSR15.PROM: the address filter then accepts every frame."""
        self.promisc = on
