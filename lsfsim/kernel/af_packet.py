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

from typing import TYPE_CHECKING, Any

from lsfsim.bpf import FilterError, Program, SkbMeta
from lsfsim.kernel.cpu import ExecContext
from lsfsim.kernel.skbuff import PACKET_LOOPBACK, SkBuff
from lsfsim.kernel.sock import Sock

if TYPE_CHECKING:
    from lsfsim.machine import Machine

ETH_P_ALL = 0x0003
SIZEOF_SK_FILTER = 24   # struct sk_filter on x86_64, 2.6.33 (cbpf-versions.md §4)


def uses_skb_meta(program: Program) -> bool:
    """Whether a program can read sk_buff fields (ancillary loads), so needs an SkbMeta."""
    for code, _jt, _jf, k in program.insns:
        if code & 0x07 == 0x00 and code & 0xE0 in (0x20, 0x40):   # LD ABS / LD IND
            if code & 0xE0 == 0x40 or k & 0x80000000:
                return True
    return False


class PacketSock(Sock):
    """A PF_PACKET, SOCK_RAW, ETH_P_ALL socket and its statistics."""

    def __init__(self, machine: Machine, index: int) -> None:
        super().__init__(machine, index)
        self.name = f"sock{index}"
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
        kver = machine.kver
        self._relaxed_rcvbuf = kver >= (3, 2)
        self._tp_drops_assign = kver < (3, 1)

    # --- control path -------------------------------------------------------
    def sk_attach_filter(self, ctx: ExecContext, program: Program) -> str | None:
        """SO_ATTACH_FILTER: charge, copy, sk_chk_filter; return the errno name or None.

        On failure the socket keeps its previous filter, as in the kernel.
        """
        costs = self.machine.costs
        kernel = self.machine.kernel
        n = len(program)
        ctx.enter("sk_attach_filter")
        ctx.charge("sk_attach_filter", costs.sk_attach_filter + n * costs.sk_attach_filter_per_insn)
        size = 8 * n + SIZEOF_SK_FILTER
        if size > kernel.optmem_max or self.sk_omem_alloc + size >= kernel.optmem_max:
            ctx.exit("sk_attach_filter")
            return "ENOMEM"
        ctx.charge("sk_chk_filter", costs.sk_chk_filter + n * costs.sk_chk_filter_per_insn)
        try:
            compiled = program.compile(kernel.version)
        except FilterError as exc:
            ctx.exit("sk_attach_filter")
            return exc.errno
        self.sk_omem_alloc = size
        self.program = program
        self._filter = compiled.counted
        self._needs_meta = uses_skb_meta(program)
        ctx.exit("sk_attach_filter")
        return None

    # --- receive ------------------------------------------------------------
    def packet_rcv(self, ctx: ExecContext, skb: SkBuff, shared: bool,
                   outgoing: bool = False) -> None:
        """The ETH_P_ALL tap: filter, rcvbuf check, clone, trim, queue, wake."""
        costs = self.machine.costs
        ctx.enter("packet_rcv")
        ctx.charge("packet_rcv", costs.packet_rcv)
        ctx.mark("skb_push")
        self.seen += 1
        if outgoing:
            self.seen_outgoing += 1
        if skb.pkt_type == PACKET_LOOPBACK:
            ctx.charge("consume_skb", costs.kfree_skb)
            ctx.exit("packet_rcv")
            return
        snaplen = skb.len
        filt = self._filter
        if filt is not None:
            meta = self._meta(ctx, skb) if self._needs_meta else None
            res, ninsns = filt(skb.data, meta)
            ctx.mark("local_bh_disable")
            ctx.charge("sk_run_filter", costs.sk_run_filter + ninsns * costs.sk_run_filter_per_insn)
            ctx.mark("local_bh_enable")
            if res == 0:
                self.filtered += 1
                if self.machine.lifecycle is not None:
                    self.machine.lifecycle.verdict(ctx, self, skb, "filtered", 0)
                ctx.charge("consume_skb", costs.kfree_skb if shared else costs.consume_skb)
                ctx.exit("packet_rcv")
                return
            if res < snaplen:
                snaplen = res
        rmem = self.sk_rmem_alloc
        if (rmem >= self.sk_rcvbuf if self._relaxed_rcvbuf
                else rmem + skb.truesize >= self.sk_rcvbuf):
            self._drop_n_acct(ctx, skb, shared)
            return
        if shared:
            ctx.enter("skb_clone")
            ctx.charge("skb_clone", costs.skb_clone)
            ctx.exit("skb_clone")
            ctx.charge("kfree_skb", costs.kfree_skb)
            skb = skb.clone()
        if snaplen < skb.len:
            skb.len = snaplen                     # pskb_trim: truesize unchanged
        ctx.mark("eth_header_parse")
        ctx.mark("_raw_spin_lock")
        ctx.charge("__skb_queue_tail", costs.skb_queue_tail)
        ctx.mark("_raw_spin_unlock")
        self.skb_set_owner_r(skb)
        self.tp_packets += 1
        self.queued_total += 1
        skb.t_enq = ctx.t
        self.sk_receive_queue.append(skb)
        if self.machine.lifecycle is not None:
            self.machine.lifecycle.verdict(ctx, self, skb, "queued", snaplen)
        self.sock_def_readable(ctx)
        ctx.exit("packet_rcv")

    def _drop_n_acct(self, ctx: ExecContext, skb: SkBuff, shared: bool) -> None:
        costs = self.machine.costs
        if self.machine.lifecycle is not None:
            self.machine.lifecycle.verdict(ctx, self, skb, "rcvbuf_drop", 0)
        self.sk_drops += 1
        self.rcvbuf_drops += 1
        if self._tp_drops_assign:
            self.tp_drops = self.sk_drops   # the 2.6.33 quirk: assignment, not increment
        else:
            self.tp_drops += 1
        ctx.charge("consume_skb", costs.kfree_skb if shared else costs.consume_skb)
        ctx.exit("packet_rcv")

    def _meta(self, ctx: ExecContext, skb: SkBuff) -> SkbMeta:
        dev = self.machine.dev
        return SkbMeta(protocol=skb.protocol, pkt_type=skb.pkt_type, ifindex=dev.ifindex,
                       hatype=1, cpu=ctx.cpu.index, network_offset=14,
                       random_seed=self.machine.seed)

    # --- recvfrom -----------------------------------------------------------
    def packet_recvmsg_begin(self, ctx: ExecContext) -> None:
        """sock_recvmsg -> packet_recvmsg -> skb_recv_datagram, up to the dequeue.

        The caller (the reader thread) sleeps here while the queue is empty.
        """
        ctx.enter("sock_recvmsg")
        ctx.enter("packet_recvmsg")
        ctx.enter("skb_recv_datagram")
        ctx.charge("packet_recvmsg", self.machine.costs.packet_recvmsg)

    def packet_recvmsg_finish(self, ctx: ExecContext, buflen: int) -> SkBuff:
        """Dequeue, skb_copy_datagram_iovec (MSG_TRUNC if buflen is short), skb_free_datagram.

        The receive-buffer charge is released (sock_rfree) by the caller once the
        copy's time has passed: rmem is freed only after the copy to user space.
        """
        costs = self.machine.costs
        skb = self.sk_receive_queue.popleft()
        ctx.mark("_raw_spin_lock_irqsave")
        ctx.exit("skb_recv_datagram")
        copied = skb.len if skb.len <= buflen else buflen
        if copied < skb.len:
            self.truncated += 1
        ctx.charge("skb_copy_datagram_iovec",
                   costs.skb_copy_datagram_iovec + copied * costs.skb_copy_datagram_iovec_per_byte)
        ctx.mark("sock_recv_ts_and_drops")
        ctx.enter("skb_free_datagram")
        ctx.charge("skb_free_datagram", costs.skb_free_datagram)
        ctx.mark("sock_rfree")
        ctx.exit("skb_free_datagram")
        ctx.exit("packet_recvmsg")
        ctx.exit("sock_recvmsg")
        self.delivered_bytes += copied
        return skb

    # --- PACKET_STATISTICS --------------------------------------------------
    def packet_getsockopt_statistics(self) -> tuple[int, int]:
        """getsockopt(PACKET_STATISTICS): (tp_packets + tp_drops, tp_drops), then reset."""
        drops = self.tp_drops
        packets = self.tp_packets + drops
        self.tp_packets = 0
        self.tp_drops = 0
        return packets, drops
