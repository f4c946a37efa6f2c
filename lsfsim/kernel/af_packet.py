"""net/packet/af_packet.c: PF_PACKET sockets (packet_create, packet_rcv,
packet_recvmsg, packet_snd, PACKET_STATISTICS).

packet_rcv follows 2.6.33 step by step: push the MAC header back, run the
filter, snaplen = min(len, verdict) (0 drops silently), the receive-buffer
check by *truesize*, clone when shared, trim, charge, queue, wake.  Two rules
changed later and follow the kernel version: the rcvbuf test (``rmem +
truesize >= rcvbuf`` until 3.1, ``rmem >= rcvbuf`` from 3.2) and tp_drops
(assigned the cumulative sk_drops until 3.0, incremented from 3.1).
"""

from __future__ import annotations

from typing import Any

from lsfsim.bpf import FilterError, Program, SkbMeta, uses_skb_meta
from lsfsim.kernel.context import KernelContext
from lsfsim.kernel.cpu import ExecContext, Plan, charge, enter, exit_, mark, variable
from lsfsim.kernel.skbuff import PACKET_LOOPBACK, SkBuff
from lsfsim.kernel.sock import Sock

ETH_P_ALL = 0x0003
SOCK_RAW = 3
# A running, unbound ETH_P_ALL socket holds three references in 2.6.33's
# packet_create: sk_alloc, the prot hook (sock_hold when running) and
# sk_add_node on the packet socket list.
PACKET_SOCK_REFCNT = 3
SIZEOF_SK_FILTER = 24   # struct sk_filter on x86_64, 2.6.33 (cbpf-versions.md §4)


class PacketSock(Sock):
    """A PF_PACKET, SOCK_RAW, ETH_P_ALL socket and its statistics."""

    def __init__(self, kernel: KernelContext, index: int, ifindex: int) -> None:
        super().__init__(kernel, index)
        self.name = f"sock{index}"
        self.ifindex = ifindex            # the device's, for the filter's ancillary loads
        self.rng = kernel.rng
        self._on_filter = kernel.hooks.filter_verdict
        self._on_verdict = kernel.hooks.verdict
        self.program: Program | None = None
        self._filter: Any = None          # CompiledFilter.counted
        self._needs_meta = False
        # PACKET_STATISTICS (po->stats), reset on each getsockopt
        self.tp_packets = 0
        self.tp_drops = 0
        # cumulative counters of the simulator
        self.seen = 0            # packet_rcv calls
        self.seen_outgoing = 0
        self.filtered = 0        # filter returned 0
        self.rcvbuf_drops = 0    # drop_n_acct
        self.queued_total = 0    # ever queued
        self.delivered = 0       # copied to user space by recvfrom
        self.delivered_bytes = 0
        self.truncated = 0       # MSG_TRUNC: buffer shorter than the packet
        self.received_at_create = 0   # netif_receive_skb count when the tap was added
        kver = kernel.kver
        self._relaxed_rcvbuf = kver >= (3, 2)
        self._tp_drops_assign = kver < (3, 1)
        self._per_insn = kernel.costs.sk_run_filter_per_insn
        self._copy_per_byte = kernel.costs.skb_copy_datagram_iovec_per_byte
        self._build_plans(kernel)

    def _build_plans(self, kernel: KernelContext) -> None:
        """packet_rcv's and packet_recvmsg's fixed call sequences (lecture trace order)."""
        c = kernel.costs
        plan = kernel.plan
        head = (enter("packet_rcv"), charge("packet_rcv", c.packet_rcv), mark("skb_push"),
                mark("local_bh_disable"))
        run_filter = (variable("sk_run_filter", c.sk_run_filter), mark("local_bh_enable"))
        no_filter = (mark("local_bh_enable"),)
        self.plan_rcv_filter = plan(*head, *run_filter)
        self.plan_rcv_nofilter = plan(*head, *no_filter)
        # drop_n_restore / drop_n_acct: consume_skb drops our reference (a whole free when
        # the skb was not shared)
        self.plan_drop_shared = plan(charge("consume_skb", c.kfree_skb), exit_("packet_rcv"))
        self.plan_drop_owned = plan(charge("consume_skb", c.consume_skb), exit_("packet_rcv"))
        self.plan_loopback = plan(*head, mark("local_bh_enable"), charge("consume_skb", c.kfree_skb),
                                  exit_("packet_rcv"))
        clone = (enter("skb_clone"), charge("skb_clone", c.skb_clone), exit_("skb_clone"),
                 charge("kfree_skb", c.kfree_skb))
        queue = (mark("eth_header_parse"), mark("_raw_spin_lock"),
                 charge("__skb_queue_tail", c.skb_queue_tail), mark("_raw_spin_unlock"))
        # the whole accepted path, from the entry, for each (filtered, shared, wakes a
        # sleeper): joined from these parts when first needed (see _accept_plan)
        self.accept_plans = kernel.plan_group(
            head=head, filter=run_filter, no_filter=no_filter, clone=clone, queue=queue,
            readable=self.readable_steps(c, False), readable_wake=self.readable_steps(c, True),
            exit=(exit_("packet_rcv"),))
        # sys_recvfrom -> sock_recvmsg -> packet_recvmsg -> skb_recv_datagram (may sleep)
        self.plan_recvfrom = plan(enter("sys_recvfrom"), charge("sys_recvfrom", c.sys_recvfrom),
                                  mark("sockfd_lookup_light"), enter("sock_recvmsg"),
                                  enter("packet_recvmsg"),
                                  charge("packet_recvmsg", c.packet_recvmsg),
                                  enter("skb_recv_datagram"))
        # ... dequeued: copy (variable: bytes), free, return to user space
        self.plan_recvfrom_done = plan(
            mark("_raw_spin_lock_irqsave"), exit_("skb_recv_datagram"),
            variable("skb_copy_datagram_iovec", c.skb_copy_datagram_iovec),
            mark("sock_recv_ts_and_drops"), enter("skb_free_datagram"),
            charge("skb_free_datagram", c.skb_free_datagram), mark("sock_rfree"),
            exit_("skb_free_datagram"), exit_("packet_recvmsg"), exit_("sock_recvmsg"),
            mark("move_addr_to_user"), exit_("sys_recvfrom"))

    def _accept_plan(self, key: int) -> Plan:
        """The accepted path's plan; ``key`` = 4 * filtered + 2 * shared + wakes a sleeper."""
        names = ("head", "filter" if key & 4 else "no_filter", *(("clone",) if key & 2 else ()),
                 "queue", "readable_wake" if key & 1 else "readable", "exit")
        return self.accept_plans.get(key, names)

    # --- control path -------------------------------------------------------
    def sk_attach_filter(self, ctx: ExecContext, program: Program) -> str | None:
        """SO_ATTACH_FILTER: charge, copy, sk_chk_filter; return the errno name or None.

        On failure the socket keeps its previous filter, as in the kernel.
        """
        costs = self.kernel.costs
        config = self.kernel.config
        n = len(program)
        ctx.enter("sk_attach_filter")
        ctx.charge("sk_attach_filter", costs.sk_attach_filter + n * costs.sk_attach_filter_per_insn)
        size = 8 * n + SIZEOF_SK_FILTER
        if size > config.optmem_max or self.sk_omem_alloc + size >= config.optmem_max:
            ctx.exit("sk_attach_filter")
            return "ENOMEM"
        ctx.charge("sk_chk_filter", costs.sk_chk_filter + n * costs.sk_chk_filter_per_insn)
        try:
            compiled = program.compile(config.version)
        except FilterError as exc:
            ctx.exit("sk_attach_filter")
            return exc.errno
        self.sk_omem_alloc = size
        self.program = program
        self._filter = compiled.counted
        self._needs_meta = uses_skb_meta(program.insns)
        ctx.exit("sk_attach_filter")
        return None

    # --- receive ------------------------------------------------------------
    def packet_rcv(self, ctx: ExecContext, skb: SkBuff, shared: bool,
                   outgoing: bool = False) -> None:
        """The ETH_P_ALL tap: filter, rcvbuf check, clone, trim, queue, wake."""
        lazy = self.lazy_reader
        if lazy is not None:             # the reader as it is when this step starts
            now = self.env.now
            if lazy.next_time <= now:
                lazy.advance(now)
        self.seen += 1
        if outgoing:
            self.seen_outgoing += 1
        if skb.pkt_type == PACKET_LOOPBACK:
            ctx.run(self.plan_loopback)
            return
        snaplen = skb.len
        filt = self._filter
        filter_time = 0.0
        if filt is not None:
            res, ninsns = filt(skb.data, self._meta(ctx, skb) if self._needs_meta else None)
            if self._on_filter is not None:
                self._on_filter(ctx, self, skb, res, ninsns)
            filter_time = ninsns * self._per_insn
            if res == 0:                          # drop_n_restore: silent
                ctx.run(self.plan_rcv_filter, filter_time)
                self.filtered += 1
                if self._on_verdict is not None:
                    self._on_verdict(ctx, self, skb, "filtered", 0)
                ctx.run(self.plan_drop_shared if shared else self.plan_drop_owned)
                return
            if res < snaplen:
                snaplen = res
        rmem = self.sk_rmem_alloc
        if (rmem >= self.sk_rcvbuf if self._relaxed_rcvbuf
                else rmem + skb.truesize >= self.sk_rcvbuf):
            if filt is not None:
                ctx.run(self.plan_rcv_filter, filter_time)
            else:
                ctx.run(self.plan_rcv_nofilter)
            self._drop_n_acct(ctx, skb, shared)
            return
        # entry and filter, skb_clone when shared (then kfree_skb of our reference),
        # queue, sock_def_readable: one plan, as nothing reads the clock in between
        key = (4 if filt is not None else 0) + (2 if shared else 0) + (1 if self._sleepers else 0)
        plan = self.accept_plans.plans.get(key)
        ctx.run(plan if plan is not None else self._accept_plan(key), filter_time)
        if shared:
            skb = skb.clone()
        if snaplen < skb.len:
            skb.len = snaplen                     # pskb_trim: truesize unchanged
        self.skb_set_owner_r(skb)
        self.tp_packets += 1
        self.queued_total += 1
        skb.t_enq = ctx.t
        self.sk_receive_queue.append(skb)
        if self._on_verdict is not None:
            self._on_verdict(ctx, self, skb, "queued", snaplen)
        self.sock_def_readable(ctx)

    def _drop_n_acct(self, ctx: ExecContext, skb: SkBuff, shared: bool) -> None:
        if self._on_verdict is not None:
            self._on_verdict(ctx, self, skb, "rcvbuf_drop", 0)
        self.sk_drops += 1
        self.rcvbuf_drops += 1
        if self._tp_drops_assign:
            self.tp_drops = self.sk_drops   # the 2.6.33 quirk: assignment, not increment
        else:
            self.tp_drops += 1
        ctx.run(self.plan_drop_shared if shared else self.plan_drop_owned)

    def _meta(self, ctx: ExecContext, skb: SkBuff) -> SkbMeta:
        return SkbMeta(protocol=skb.protocol, pkt_type=skb.pkt_type, ifindex=self.ifindex,
                       hatype=1, cpu=ctx.cpu.index, network_offset=14,
                       random_seed=self.rng.getrandbits(32))   # prandom_u32, per run

    # --- recvfrom -----------------------------------------------------------
    def packet_recvmsg(self, ctx: ExecContext, buflen: int) -> SkBuff:
        """Dequeue the head skb and copy min(len, buflen) bytes (MSG_TRUNC if short).

        The caller (sys_recvfrom in the reader thread) has charged the entry and
        slept while the queue was empty.  The receive-buffer charge is released
        (sock_rfree) by the caller once the copy's time has passed: rmem is freed
        only after the copy to user space, as in skb_free_datagram.
        """
        skb = self.sk_receive_queue.popleft()
        copied = skb.len if skb.len <= buflen else buflen
        if copied < skb.len:
            self.truncated += 1
        ctx.run(self.plan_recvfrom_done, copied * self._copy_per_byte)
        self.delivered_bytes += copied
        return skb

    # --- PACKET_STATISTICS --------------------------------------------------
    def packet_statistics(self) -> dict[str, int]:
        """What getsockopt(PACKET_STATISTICS) would return now, without its reset:
        tp_packets counts the accepted and the dropped packets, as the kernel adds
        tp_drops before returning."""
        return {"tp_packets": self.tp_packets + self.tp_drops, "tp_drops": self.tp_drops}

    def proc_net_packet_row(self) -> dict[str, int]:
        """This socket's line of /proc/net/packet (packet_seq_show), but for the sk
        pointer and the inode, which the simulator does not have."""
        return {"refcnt": PACKET_SOCK_REFCNT, "type": SOCK_RAW, "proto": ETH_P_ALL,
                "iface": 0, "running": 1, "rmem": self.sk_rmem_alloc, "user": 0}

    def counters(self) -> dict[str, int]:
        """Everything the socket counts, for the result: its receive buffer, what
        packet_rcv saw and decided, what recvfrom delivered, what is still held."""
        queued = len(self.sk_receive_queue)
        return {
            "rcvbuf": self.sk_rcvbuf,
            "seen": self.seen,
            "seen_outgoing": self.seen_outgoing,
            "filtered": self.filtered,
            "rcvbuf_drops": self.rcvbuf_drops,
            **self.packet_statistics(),
            "sk_drops": self.sk_drops,
            "delivered": self.delivered,
            "delivered_bytes": self.delivered_bytes,
            "truncated": self.truncated,
            "queued": queued,
            "in_recvfrom": self.queued_total - self.delivered - queued,
            "rmem_alloc": self.proc_net_packet_row()["rmem"],
            "max_rmem_alloc": self.max_rmem,
        }

    def packet_getsockopt_statistics(self) -> tuple[int, int]:
        """getsockopt(PACKET_STATISTICS): (tp_packets + tp_drops, tp_drops), then reset."""
        drops = self.tp_drops
        packets = self.tp_packets + drops
        self.tp_packets = 0
        self.tp_drops = 0
        return packets, drops
