"""net/packet/af_packet.c: PF_PACKET sockets (packet_create, packet_rcv,
packet_recvmsg, packet_snd, PACKET_STATISTICS).

packet_rcv follows 2.6.33 step by step: push the MAC header back, run the
filter, snaplen = min(len, verdict) (0 drops silently), the receive-buffer
check by *truesize*, clone when shared, trim, charge, queue, wake.  Two rules
changed later and follow the kernel version, checked against the trees of each
release:

* the rcvbuf test: ``atomic_read(&sk->sk_rmem_alloc) + skb->truesize >=
  (unsigned)sk->sk_rcvbuf`` (v2.6.33 af_packet.c:576-578; still so in 3.1.0 at
  :911) became ``atomic_read(&sk->sk_rmem_alloc) >= sk->sk_rcvbuf`` in 3.2 (3.2.0
  :1633), by commit 0fd7bac6b6157eed6cf0cb86a1e88ba29e57c033 "net: relax rcvbuf
  limits" (Eric Dumazet), the follow-up of 87fb4b7b533 "net: more accurate skb
  truesize" (3.2-rc1).  Its author date was not verified (late 2011).
* tp_drops: ``po->stats.tp_drops = atomic_inc_return(&sk->sk_drops)`` (v2.6.33
  :628-629, still in 3.0.8 at :657) became ``tp_drops++; atomic_inc(&sk->sk_drops)``
  under the receive queue's lock in 3.1 (3.1.0 :965-966); 3.0.27 has it through a
  stable backport.  The commit's hash could not be found (no 3.0 -> 3.1 history
  was at hand).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from lsfsim.bpf import FilterError, Program, SkbMeta, uses_skb_meta
from lsfsim.bpf.versions import KernelSemantics, semantics
from lsfsim.config.arch import KernelSizes
from lsfsim.config.model import Kernel as KernelConfig
from lsfsim.kernel.calls import (
    ALLOC_SKB,
    KFREE_SKB_OWNED,
    LOCAL_BH_DISABLE,
    SKB_CLONE_CALLEES,
    copy_to_user,
    folded,
    socketcall_steps,
)
from lsfsim.kernel.context import KernelContext
from lsfsim.kernel.cpu import (
    ExecContext,
    Plan,
    Step,
    charge,
    enter,
    exit_,
    fold,
    mark,
    self_time,
    variable,
)
from lsfsim.kernel.skbuff import PACKET_LOOPBACK, SkBuff
from lsfsim.kernel.sock import Sock

ETH_P_ALL = 0x0003
SOCK_RAW = 3
# A running, unbound ETH_P_ALL socket holds three references in 2.6.33's
# packet_create: sk_alloc, the prot hook (sock_hold when running) and
# sk_add_node on the packet socket list.
PACKET_SOCK_REFCNT = 3


def sock_kmalloc_refusal(ninsns: int, sizes: KernelSizes, omem_alloc: int = 0) -> str | None:
    """sk_attach_filter's charge (net/core/filter.c:506): sock_kmalloc(8 * len +
    sizeof(struct sk_filter)) fails, and the attach returns -ENOMEM (:507-508), unless
    ``size <= optmem_max && sk_omem_alloc + size < optmem_max`` (net/core/sock.c
    v2.6.33:1350 / .2:1355-1370: a strict test).  It runs before sk_chk_filter, so on
    i386 (optmem_max 10240, sk_filter 16 bytes) 1277 instructions attach and 1278 to
    4096 are ENOMEM, not EINVAL; on x86_64 (20480, 24) the limit is 2556.

    Returns None when the allocation succeeds, else the reason (one line)."""
    size = 8 * ninsns + sizes.sizeof_sk_filter
    if size <= sizes.optmem_max and omem_alloc + size < sizes.optmem_max:
        return None
    return (f"sock_kmalloc: the filter takes {size} bytes (8 x {ninsns} instructions + "
            f"struct sk_filter {sizes.sizeof_sk_filter} on {sizes.arch})"
            + (f", {omem_alloc} already charged" if omem_alloc else "")
            + f", net.core.optmem_max is {sizes.optmem_max}")


def attach_semantics(config: KernelConfig) -> KernelSemantics:
    """The filter checker of ``config``'s release, with this machine's optmem_max and,
    while the charge is the classic copy (up to 3.14), its struct sk_filter size."""
    sem = semantics(config.version)
    sizes = config.sizes
    if sem.optmem_charge == "classic":
        return dataclasses.replace(sem, optmem_max=sizes.optmem_max,
                                   filter_header=sizes.sizeof_sk_filter)
    return dataclasses.replace(sem, optmem_max=sizes.optmem_max)


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
        self._relaxed_rcvbuf = kver >= (3, 2)      # 0fd7bac6b615 "net: relax rcvbuf limits"
        self._tp_drops_assign = kver < (3, 1)      # 3.1.0 af_packet.c:965-966 (hash unknown)
        self._per_insn = kernel.costs.sk_run_filter_per_insn
        self._copy_per_byte = kernel.costs.skb_copy_datagram_iovec_per_byte
        self._attach_semantics = attach_semantics(kernel.config)
        self._build_plans(kernel)

    def _build_plans(self, kernel: KernelContext) -> None:
        """packet_rcv's, packet_recvmsg's and packet_sendmsg's fixed call sequences, nested
        as in the lecture's traces (tests/trace/kernel_trees.txt).  Inline functions
        are not calls: run_filter and __skb_queue_tail are packet_rcv's (so is their
        cost), packet_snd (one call site) is packet_sendmsg's."""
        c = kernel.costs
        plan = kernel.plan
        head = (enter("packet_rcv"), charge("packet_rcv", c.packet_rcv), mark("skb_push"),
                *folded(LOCAL_BH_DISABLE))
        run_filter = (variable("sk_run_filter", c.sk_run_filter), mark("local_bh_enable"))
        no_filter = (mark("local_bh_enable"),)
        self.plan_rcv_filter = plan(*head, *run_filter)
        self.plan_rcv_nofilter = plan(*head, *no_filter)
        # drop_n_restore / drop_n_acct: consume_skb drops our reference (a whole free when
        # the skb was not shared)
        self.plan_drop_shared = plan(charge("consume_skb", c.kfree_skb), exit_("packet_rcv"))
        self.plan_drop_owned = plan(enter("consume_skb"), charge("consume_skb", c.consume_skb),
                                    *folded(KFREE_SKB_OWNED), exit_("consume_skb"),
                                    exit_("packet_rcv"))
        self.plan_loopback = plan(*head, mark("local_bh_enable"),
                                  charge("consume_skb", c.kfree_skb),
                                  exit_("packet_rcv"))
        clone = (enter("skb_clone"), charge("skb_clone", c.skb_clone), *folded(SKB_CLONE_CALLEES),
                 exit_("skb_clone"), charge("kfree_skb", c.kfree_skb))
        # dev_parse_header is inline (its callee eth_header_parse is traced); pskb_trim,
        # skb_set_owner_r and __skb_queue_tail are inline: their cost is packet_rcv's own
        queue = (mark("eth_header_parse"), mark("_raw_spin_lock"),
                 self_time("packet_rcv", c.skb_queue_tail), mark("_raw_spin_unlock"))
        # the whole accepted path, from the entry, for each (filtered, shared, wakes a
        # sleeper): joined from these parts when first needed (see _accept_plan)
        self.accept_plans = kernel.plan_group(
            head=head, filter=run_filter, no_filter=no_filter, clone=clone, queue=queue,
            readable=self.readable_steps(c, False), readable_wake=self.readable_steps(c, True),
            exit=(exit_("packet_rcv"),))
        bits = kernel.word_bits
        call_in, call_out = socketcall_steps(bits, c)
        to_user = copy_to_user(bits)
        # sys_recvfrom -> sock_recvmsg -> packet_recvmsg -> skb_recv_datagram ->
        # __skb_recv_datagram: a look at the queue under its lock (sleep if empty)
        peek = (mark("_raw_spin_lock_irqsave"), mark("_raw_spin_unlock_irqrestore"))
        self.plan_recvfrom = plan(
            *call_in, enter("sys_recvfrom"), charge("sys_recvfrom", c.sys_recvfrom),
            *folded("sockfd_lookup_light() { fget_light(); }"), fold("sock_recvmsg"),
            *folded("security_socket_recvmsg() { cap_socket_recvmsg(); }"),
            enter("packet_recvmsg"), charge("packet_recvmsg", c.packet_recvmsg),
            fold("skb_recv_datagram"), fold("__skb_recv_datagram"), *peek)
        # ... the queue was empty: wait_for_packet -> schedule_timeout -> schedule spans
        # the sleep, as in ftrace (a context switch away, the wait, and one back)
        self.plan_sleep = plan(
            fold("wait_for_packet"),
            *folded("prepare_to_wait_exclusive() { _raw_spin_lock_irqsave();"
                    " _raw_spin_unlock_irqrestore(); }"),
            fold("schedule_timeout"), enter("schedule"), charge("schedule", c.schedule))
        self.plan_woken = plan(self_time("schedule", c.schedule), exit_("schedule"),
                               exit_("schedule_timeout"), mark("finish_wait"),
                               exit_("wait_for_packet"), *peek)
        # ... dequeued: copy (variable: bytes), the sockaddr_ll, free, return to user space
        self.plan_recvfrom_done = plan(
            exit_("__skb_recv_datagram"), exit_("skb_recv_datagram"),
            enter("skb_copy_datagram_iovec"),
            variable("skb_copy_datagram_iovec", c.skb_copy_datagram_iovec),
            *folded(f"memcpy_toiovec() {{ {to_user}(); }}"), exit_("skb_copy_datagram_iovec"),
            mark("sock_recv_ts_and_drops"), mark("memcpy"),
            enter("skb_free_datagram"), charge("skb_free_datagram", c.skb_free_datagram),
            *folded("consume_skb() { __kfree_skb() { skb_release_head_state() { sock_rfree(); }"
                    " skb_release_data() { kfree(); } kmem_cache_free(); } }"),
            exit_("skb_free_datagram"), exit_("packet_recvmsg"), exit_("sock_recvmsg"),
            *folded(f"move_addr_to_user() {{ audit_sockaddr(); {to_user}(); }}"),
            exit_("sys_recvfrom"), *call_out)
        # sys_sendto -> sock_sendmsg -> packet_sendmsg (packet_snd inlined: its cost is
        # packet_sendmsg's) -> dev_queue_xmit (net/socket.c, af_packet.c:1151)
        send_head = (
            *call_in, enter("sys_sendto"), charge("sys_sendto", c.sys_sendto),
            *folded("sockfd_lookup_light() { fget_light(); }"
                    " move_addr_to_kernel() { _copy_from_user(); audit_sockaddr(); }"),
            fold("sock_sendmsg"), *folded("security_socket_sendmsg() { cap_socket_sendmsg(); }"),
            enter("packet_sendmsg"), variable("packet_sendmsg", c.packet_snd),
            *folded("dev_get_by_index() { dev_get_by_index_rcu(); }"))
        send_tail = (exit_("packet_sendmsg"), exit_("sock_sendmsg"), exit_("sys_sendto"),
                     *call_out)
        self.plan_sendto = plan(*send_head, *folded(
            f"sock_alloc_send_skb() {{ sock_alloc_send_pskb() {{ {ALLOC_SKB} }} }} skb_put();"
            " memcpy_fromiovec() { _copy_from_user(); }"))
        self.plan_sendto_exit = plan(*send_tail)
        self.plan_sendto_emsgsize = plan(*send_head, *send_tail)
        self.plan_sendto_eagain = plan(
            *send_head, *folded("sock_alloc_send_skb() { sock_alloc_send_pskb(); }"), *send_tail)
        self.packet_snd_per_byte = c.packet_snd_per_byte

    def _accept_plan(self, key: int) -> Plan:
        """The accepted path's plan; ``key`` = 4 * filtered + 2 * shared + wakes a sleeper."""
        names = ("head", "filter" if key & 4 else "no_filter", *(("clone",) if key & 2 else ()),
                 "queue", "readable_wake" if key & 1 else "readable", "exit")
        return self.accept_plans.get(key, names)

    # --- control path -------------------------------------------------------
    def sk_attach_filter(self, ctx: ExecContext, program: Program) -> str | None:
        """SO_ATTACH_FILTER (net/core/filter.c:496): sock_kmalloc, copy, sk_chk_filter.

        Returns the errno name or None.  On failure the socket keeps its previous
        filter, as in the kernel.
        """
        err, steps = self._attach(program)
        ctx.run_once(*steps)
        return err

    def _attach(self, program: Program) -> tuple[str | None, tuple[Step, ...]]:
        """sk_attach_filter's effect: the errno name or None, and the calls it made."""
        costs = self.kernel.costs
        sizes = self.kernel.sizes
        n = len(program)
        size = 8 * n + sizes.sizeof_sk_filter
        steps: list[Step] = [enter("sk_attach_filter"),
                             charge("sk_attach_filter", costs.sk_attach_filter)]
        # sock_kmalloc fails before copy_from_user (net/core/filter.c:506-511): a refused
        # filter costs no copy
        if sock_kmalloc_refusal(n, sizes, self.sk_omem_alloc) is not None:
            steps += (mark("sock_kmalloc"), exit_("sk_attach_filter"))
            return "ENOMEM", tuple(steps)
        steps += (*folded("sock_kmalloc() { __kmalloc() { get_slab(); } }"),
                  mark("_copy_from_user"),
                  charge("sk_attach_filter", n * costs.sk_attach_filter_per_insn),
                  charge("sk_chk_filter", costs.sk_chk_filter + n * costs.sk_chk_filter_per_insn))
        try:
            compiled = program.compile(self._attach_semantics)
        except FilterError as exc:
            steps += (mark("kfree"), exit_("sk_attach_filter"))   # sk_filter_uncharge
            return exc.errno, tuple(steps)
        # rcu_read_lock_bh / rcu_read_unlock_bh around the swap; the old filter, if
        # any, is released after a grace period (sk_filter_delayed_uncharge)
        steps += (*folded(LOCAL_BH_DISABLE), mark("local_bh_enable"))
        if self.program is not None:
            steps.append(mark("call_rcu_bh"))
        steps.append(exit_("sk_attach_filter"))
        self.sk_omem_alloc = size
        self.program = program
        self._filter = compiled.counted
        self._needs_meta = uses_skb_meta(program.insns)
        return None, tuple(steps)

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
                       hatype=1, cpu=ctx.cpu.index, network_offset=skb.network_offset,
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
