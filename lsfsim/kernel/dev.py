"""net/core/dev.c: NAPI, netif_receive_skb, the netif_rx backlog, dev_queue_xmit.

Delivery follows netif_receive_skb in 2.6.33: every ETH_P_ALL tap on
``ptype_all`` (most recently registered first, as dev_add_pack inserts at the
head), then the protocol handler from ``ptype_base``.  ``deliver_skb`` takes
an extra reference for every handler but the last, so a tap sees a shared
skb (and clones it) unless it is the last handler.  deliver_skb is static
inline (dev.c:2242): never a call in a trace, its cost is netif_receive_skb's.

Transmit: dev_queue_xmit -> __dev_xmit_skb (inline) -> sch_direct_xmit ->
dev_hard_start_xmit -> dev_queue_xmit_nit (the taps) and the driver, with the
qdisc root lock and the device's TX lock between (sch_generic.c:112).
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any, Protocol

import simpy

from lsfsim.kernel.af_packet import PacketSock
from lsfsim.kernel.calls import LOCAL_BH_DISABLE, SKB_CLONE_CALLEES, folded
from lsfsim.kernel.context import KernelContext
from lsfsim.kernel.cpu import ExecContext, charge, enter, exit_, mark, self_time
from lsfsim.kernel.netdevice import (  # noqa: F401  (re-exported: they are net/core's too)
    NET_XMIT_DROP,
    NET_XMIT_SUCCESS,
    NapiStruct,
    SoftnetData,
)
from lsfsim.kernel.skbuff import PACKET_OUTGOING, SkBuff

ETH_P_IP = 0x0800
ETH_P_ARP = 0x0806
ETH_P_IPV6 = 0x86DD


class NetDevice(Protocol):
    """What the stack and the system calls use of a network device (struct net_device)."""

    name: str
    ifindex: int

    def qdisc_enqueue(self, ctx: ExecContext, skb: SkBuff) -> int: ...

    def set_promiscuity(self, on: bool) -> None: ...


class NetCore:
    """Protocol demultiplexing and transmit: the network stack's core (net/core/dev.c),
    with the device and the packet sockets registered in it."""

    def __init__(self, kernel: KernelContext) -> None:
        self.kernel = kernel
        self.config = kernel.config
        self.costs = kernel.costs
        self.hooks = kernel.hooks
        self.ptype_all: list[PacketSock] = []
        self.ptype_base: dict[int, Callable[[ExecContext, SkBuff], None]] = {}
        self.dev: NetDevice | None = None      # register_netdev
        self.sockets: list[PacketSock] = []    # every packet socket, in creation order
        self.received = 0          # skbs handed to netif_receive_skb (incoming)
        self.no_handler = 0        # freed: no tap and no protocol handler
        c = self.costs
        plan = kernel.plan
        # netif_receive_skb's entry, with the first deliver_skb when the first tap shares
        # the skb (key 1) or without (key 0); deliver_skb is inline: netif_receive_skb's time
        self.receive_plans = kernel.plan_group(
            receive=(enter("netif_receive_skb"), charge("netif_receive_skb", c.netif_receive_skb)),
            deliver=(self_time("netif_receive_skb", c.deliver_skb),))
        self.plan_deliver = plan(*self.receive_plans.parts["deliver"])
        self.plan_no_handler = plan(charge("kfree_skb", c.kfree_skb))
        self.plan_receive_exit = plan(exit_("netif_receive_skb"))
        # netif_rx: __napi_schedule for the backlog's first skb (napi_schedule is inline)
        self.plan_netif_rx = plan(charge("netif_rx", c.netif_rx))
        self.plan_netif_rx_first = plan(enter("netif_rx"), charge("netif_rx", c.netif_rx),
                                        charge("__napi_schedule", c.napi_schedule),
                                        exit_("netif_rx"))
        self.plan_netif_rx_drop = plan(enter("netif_rx"), charge("netif_rx", c.netif_rx),
                                       mark("kfree_skb"), exit_("netif_rx"))
        # dev_queue_xmit: rcu_read_lock_bh, then __dev_xmit_skb under the qdisc root lock
        self.plan_xmit = plan(enter("dev_queue_xmit"), charge("dev_queue_xmit", c.dev_queue_xmit),
                              *folded(LOCAL_BH_DISABLE), mark("_raw_spin_lock"))
        self.plan_xmit_exit = plan(mark("_raw_spin_unlock"), mark("local_bh_enable"),
                                   exit_("dev_queue_xmit"))
        # dev_queue_xmit_nit: one call, a clone per tap handed to its packet_rcv
        self.plan_nit = plan(enter("dev_queue_xmit_nit"),
                             charge("dev_queue_xmit_nit", c.dev_queue_xmit_nit))
        self.plan_nit_clone = plan(enter("skb_clone"), charge("skb_clone", c.skb_clone),
                                   *folded(SKB_CLONE_CALLEES), exit_("skb_clone"))
        self.plan_nit_exit = plan(exit_("dev_queue_xmit_nit"))

    # --- registration -------------------------------------------------------
    def register_netdev(self, dev: NetDevice) -> None:
        """The machine's one network device (eth0)."""
        self.dev = dev

    def netdev(self) -> NetDevice:
        """The registered device (a machine always has one)."""
        if self.dev is None:
            raise RuntimeError("no network device registered")
        return self.dev

    def dev_add_pack(self, ctx: ExecContext | None, sock: PacketSock) -> None:
        """Register a tap at the head of ptype_all (list_add_rcu)."""
        if ctx is not None:
            ctx.charge("dev_add_pack", self.costs.dev_add_pack)
        self.ptype_all.insert(0, sock)

    # --- receive ------------------------------------------------------------
    def napi_schedule(self, ctx: ExecContext, napi: NapiStruct, charged: bool = False) -> bool:
        """napi_schedule_prep + __napi_schedule: add to this CPU's poll list, raise NET_RX.

        ``charged``: the caller's plan already charged __napi_schedule.
        """
        if napi.scheduled:
            return False
        napi.scheduled = True
        if not charged:
            ctx.charge("__napi_schedule", self.costs.napi_schedule)
        softnet = ctx.cpu.softnet
        softnet.poll_list.append(napi)
        softnet.net_rx_pending = True
        return True

    def napi_complete(self, ctx: ExecContext, napi: NapiStruct) -> None:
        """__napi_complete: off the poll list, SCHED cleared."""
        poll_list = ctx.cpu.softnet.poll_list
        if napi in poll_list:
            poll_list.remove(napi)
        napi.scheduled = False

    def netif_receive_skb(self, ctx: ExecContext, skb: SkBuff) -> None:
        """Hand an incoming skb to every tap, then to its protocol handler."""
        # net_timestamp (unless netif_rx stamped it).  Simplification: the kernel stamps only
        # while a socket wants stamps (netstamp_needed); the model always stamps.
        if not skb.tstamp:
            skb.tstamp = ctx.t
        ctx.cpu.softnet.processed += 1
        self.received += 1
        handler = self.ptype_base.get(skb.protocol)
        taps = self.ptype_all
        last = len(taps) - 1
        # the entry, with the first deliver_skb when the first tap shares the skb
        first_shared = last >= 0 and (handler is not None or last > 0)
        key = 1 if first_shared else 0
        plan = self.receive_plans.plans.get(key)
        if plan is None:
            plan = self.receive_plans.get(key, ("receive", "deliver") if key else ("receive",))
        ctx.run(plan)
        for i, sock in enumerate(taps):
            shared = handler is not None or i < last
            if shared and i:
                ctx.run(self.plan_deliver)          # atomic_inc(&skb->users)
            sock.packet_rcv(ctx, skb, shared)
        if handler is not None:
            handler(ctx, skb)
        elif not taps:
            self.no_handler += 1
            ctx.run(self.plan_no_handler)
        if ctx.tracer is not None:                  # only the tracer sees a bare return
            ctx.run(self.plan_receive_exit)

    def netif_rx(self, ctx: ExecContext, skb: SkBuff) -> bool:
        """Pre-NAPI receive: queue on the CPU's backlog (<= netdev_max_backlog + 1)."""
        softnet = ctx.cpu.softnet
        if not skb.tstamp:
            skb.tstamp = ctx.t          # net_timestamp
        softnet.processed += 1
        queue = softnet.input_pkt_queue
        if len(queue) <= self.config.netdev_max_backlog:
            backlog = softnet.backlog
            assert backlog is not None            # every CPU has one (the machine sets it)
            if not queue and not backlog.scheduled:   # napi_schedule_prep succeeds
                ctx.run(self.plan_netif_rx_first)
                self.napi_schedule(ctx, backlog, charged=True)
            else:
                ctx.run(self.plan_netif_rx)
            skb.t_backlog = ctx.t                 # joins the backlog (lifecycle, latency)
            queue.append(skb)
            return True
        ctx.run(self.plan_netif_rx_drop)
        softnet.dropped += 1
        hook = self.hooks.softnet_dropped
        if hook is not None:
            hook(ctx, skb)
        return False

    def process_backlog(self, ctx: ExecContext, budget: int) -> Generator[simpy.Event, Any, int]:
        """The backlog's NAPI poll: up to weight_p skbs, stopping when jiffies changes."""
        softnet = ctx.cpu.softnet
        queue = softnet.input_pkt_queue
        runner = ctx.cpu.runner
        jiffies = self.kernel.jiffies
        start_time = jiffies.read(ctx.t)        # dev.c:2839 (2.6.33.2)
        ctx.enter("process_backlog")
        ctx.charge("process_backlog", self.costs.process_backlog)
        backlog = softnet.backlog
        assert backlog is not None
        backlog.polls += 1
        work = 0
        while work < budget and queue:
            skb = queue.popleft()
            skb.t_poll = ctx.t                    # the backlog's poll took it (t_backlog: queued)
            self.netif_receive_skb(ctx, skb)
            work += 1
            if ctx.task is None:
                step = ctx.step_event()
                if step is not None:
                    yield step
                if runner.pending or runner.deferred:
                    yield from runner.preempt_point(ctx)
            else:
                yield from ctx.sync()
            if jiffies.read(ctx.t) != start_time:   # dev.c:2855: jiffies == start_time
                break
        if not queue:
            self.napi_complete(ctx, backlog)
        ctx.exit("process_backlog")
        return work

    # --- transmit -----------------------------------------------------------
    def dev_queue_xmit(self, ctx: ExecContext, skb: SkBuff, dev: NetDevice) -> int:
        """Queue an skb for transmission through the device's qdisc (pfifo_fast)."""
        ctx.run(self.plan_xmit)
        result = dev.qdisc_enqueue(ctx, skb)
        if ctx.tracer is not None:                  # marks and a return: only the tracer's
            ctx.run(self.plan_xmit_exit)
        return result

    def dev_queue_xmit_nit(self, ctx: ExecContext, skb: SkBuff) -> None:
        """Give a clone of an outgoing skb to every tap but the sender (PACKET_OUTGOING):
        ``ptype->func`` is called directly, so packet_rcv nests here (dev.c)."""
        skb.tstamp = ctx.t              # net_timestamp, before the clones copy it
        ctx.run(self.plan_nit)
        for sock in self.ptype_all:
            if sock is skb.sk:
                continue
            ctx.run(self.plan_nit_clone)
            skb2 = skb.clone()
            skb2.pkt_type = PACKET_OUTGOING
            skb2.sk = None
            sock.packet_rcv(ctx, skb2, False, outgoing=True)
        if ctx.tracer is not None:
            ctx.run(self.plan_nit_exit)
