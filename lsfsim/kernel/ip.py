"""The protocol handlers behind the taps: ip_rcv (with a TCP receiver), arp_rcv, ipv6_rcv.

The IP stack is a sink whose CPU time is charged (ip_rcv drops PACKET_OTHERHOST;
host-bound packets pay ip_local_deliver).  The one thing it sends back is what
the lecture's nc transfer needs: a TCP receiver acknowledging every second data
segment (delayed ACK), through dev_queue_xmit, so that the taps see outgoing
ACKs and the sender is ACK-clocked.

Simplification: no reassembly, no routing, no ICMP errors; the ACK number is the
end of the highest segment seen (holes are not tracked).
"""

from __future__ import annotations

from lsfsim.kernel.cpu import ExecContext, charge, enter, exit_
from lsfsim.kernel.dev import NetCore
from lsfsim.kernel.skbuff import PACKET_HOST, PACKET_OTHERHOST, SkBuff
from lsfsim.kernel.tcp_output import build_ack

IPPROTO_TCP = 6


class IpStack:
    """ip_rcv and friends, as sinks with costs."""

    def __init__(self, net: NetCore) -> None:
        self.net = net
        self.kernel = net.kernel
        self.costs = net.kernel.costs
        self.truesize = net.kernel.truesize
        # MAX_TCP_HEADER = 128 + MAX_HEADER (include/net/tcp.h:54; config.arch)
        self.ack_truesize = self.truesize.alloc_skb(net.kernel.sizes.max_tcp_header)
        self.delivered = 0
        self.otherhost = 0
        self.acks_sent = 0
        self._unacked_segments = 0
        c = self.costs
        plan = net.kernel.plan
        self.plan_otherhost = plan(enter("ip_rcv"), charge("ip_rcv", c.ip_rcv),
                                   charge("kfree_skb", c.consume_skb), exit_("ip_rcv"))
        self.plan_local = plan(enter("ip_rcv"), charge("ip_rcv", c.ip_rcv),
                               charge("ip_local_deliver", c.ip_local_deliver))
        self.plan_local_exit = plan(charge("consume_skb", c.consume_skb), exit_("ip_rcv"))
        self.plan_local_all = plan(*self.plan_local.steps, *self.plan_local_exit.steps)
        self.plan_other = plan(charge("ip_rcv", c.ip_rcv), charge("kfree_skb", c.consume_skb))

    def ip_rcv(self, ctx: ExecContext, skb: SkBuff) -> None:
        if skb.pkt_type == PACKET_OTHERHOST:
            self.otherhost += 1
            ctx.run(self.plan_otherhost)
            return
        self.delivered += 1
        data = skb.data
        if len(data) > 34 and data[23] == IPPROTO_TCP:
            ctx.run(self.plan_local)
            self.tcp_v4_rcv(ctx, skb)
            ctx.run(self.plan_local_exit)
        else:
            ctx.run(self.plan_local_all)

    def tcp_v4_rcv(self, ctx: ExecContext, skb: SkBuff) -> None:
        """A data segment for us: ACK every second one, and at once on FIN.

        A segment that came in a broadcast or multicast frame is discarded first
        (net/ipv4/tcp_ipv4.c, tcp_v4_rcv: ``if (skb->pkt_type != PACKET_HOST) goto
        discard_it;``): TCP answers only frames addressed to this station."""
        if skb.pkt_type != PACKET_HOST:
            return
        data = skb.data
        ihl = (data[14] & 0x0F) * 4
        tcp = 14 + ihl
        if len(data) < tcp + 20:
            return
        flags = data[tcp + 13]
        total_len = (data[16] << 8) | data[17]
        payload = total_len - ihl - (data[tcp + 12] >> 4) * 4
        fin = flags & 0x01
        if payload <= 0 and not fin:
            return
        self._unacked_segments += 1
        if self._unacked_segments < 2 and not fin:
            return
        self._unacked_segments = 0
        self.tcp_send_ack(ctx, skb)

    def tcp_send_ack(self, ctx: ExecContext, skb: SkBuff) -> None:
        """Build the ACK (kernel.tcp_output) and transmit it through the device."""
        frame = build_ack(skb.data)
        if frame is None:
            return
        ctx.enter("tcp_send_ack")
        ctx.charge("tcp_send_ack", self.costs.tcp_send_ack)
        # buff = alloc_skb(MAX_TCP_HEADER, GFP_ATOMIC) (net/ipv4/tcp_output.c:2684), the
        # headers built into its reserved headroom: truesize SKB_DATA_ALIGN(272) + sizeof
        # (struct sk_buff) = 504 on i386, whatever the ACK's length
        ack = SkBuff(frame, self.ack_truesize)
        self.acks_sent += 1
        self.net.dev_queue_xmit(ctx, ack, self.net.netdev())
        ctx.exit("tcp_send_ack")

    def other_rcv(self, ctx: ExecContext, skb: SkBuff) -> None:
        """arp_rcv / ipv6_rcv: a sink with ip_rcv's cost."""
        ctx.run(self.plan_other)
