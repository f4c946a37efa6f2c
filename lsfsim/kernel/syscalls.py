"""net/socket.c: the system calls a capture program makes, with their costs.

Each returns what the C call would: a socket, 0, or an errno name (a string
such as ``"EINVAL"``), so that scenarios and tests can check failures the way
a program checks ``errno``.  They take the network stack's core (``NetCore``,
with its device and packet sockets) as their first argument, as the kernel's
reach them through the socket's network namespace.
"""

from __future__ import annotations

from lsfsim.bpf import Program
from lsfsim.kernel.af_packet import PacketSock
from lsfsim.kernel.cpu import ExecContext
from lsfsim.kernel.dev import NetCore
from lsfsim.kernel.skbuff import SkBuff

ETH_FRAME_LEN = 1514
LL_ALLOCATED_SPACE = 16


def sys_socket(net: NetCore, ctx: ExecContext) -> PacketSock:
    """socket(PF_PACKET, SOCK_RAW, htons(ETH_P_ALL)): packet_create, dev_add_pack."""
    costs = net.costs
    ctx.enter("sys_socket")
    ctx.charge("sys_socket", costs.sys_socket)
    ctx.enter("packet_create")
    ctx.charge("packet_create", costs.packet_create)
    sock = PacketSock(net.kernel, len(net.sockets), net.netdev().ifindex)
    sock.received_at_create = net.received
    net.sockets.append(sock)
    net.dev_add_pack(ctx, sock)
    ctx.exit("packet_create")
    ctx.exit("sys_socket")
    return sock


def sys_setsockopt_filter(net: NetCore, ctx: ExecContext, sock: PacketSock,
                          program: Program) -> str | None:
    """setsockopt(SOL_SOCKET, SO_ATTACH_FILTER): None on success, else the errno name."""
    ctx.enter("sys_setsockopt")
    ctx.charge("sys_setsockopt", net.costs.sys_setsockopt)
    err = sock.sk_attach_filter(ctx, program)
    ctx.exit("sys_setsockopt")
    return err


def sys_setsockopt_rcvbuf(net: NetCore, ctx: ExecContext, sock: PacketSock, val: int) -> int:
    """setsockopt(SOL_SOCKET, SO_RCVBUF); returns the resulting sk_rcvbuf."""
    ctx.enter("sys_setsockopt")
    ctx.charge("sys_setsockopt", net.costs.sys_setsockopt)
    result = sock.set_rcvbuf(val)
    ctx.exit("sys_setsockopt")
    return result


def sys_ioctl_promisc(net: NetCore, ctx: ExecContext, on: bool = True) -> None:
    """ioctl(SIOCSIFFLAGS, IFF_PROMISC): dev_set_promiscuity restarts the chip with PROM."""
    ctx.enter("sys_ioctl")
    ctx.charge("dev_set_promiscuity", net.costs.dev_set_promiscuity)
    net.netdev().set_promiscuity(on)
    ctx.exit("sys_ioctl")


def sys_sendto(net: NetCore, ctx: ExecContext, sock: PacketSock, frame: bytes) -> str | None:
    """sendto on a SOCK_RAW packet socket: packet_snd -> dev_queue_xmit.

    Returns None on success or the errno name (EMSGSIZE, EAGAIN, ENOBUFS).
    Simplification: a full send buffer returns EAGAIN instead of blocking.
    """
    costs = net.costs
    ctx.enter("sys_sendto")
    ctx.charge("sys_sendto", costs.sys_sendto)
    ctx.enter("packet_snd")
    ctx.charge("packet_snd", costs.packet_snd + len(frame) * costs.packet_snd_per_byte)
    err = None
    if len(frame) > ETH_FRAME_LEN:
        err = "EMSGSIZE"
    elif sock.sk_wmem_alloc >= sock.sk_sndbuf:
        err = "EAGAIN"
    else:
        skb = SkBuff(frame, net.kernel.truesize.alloc_skb(len(frame) + LL_ALLOCATED_SPACE))
        # skb_reserve(LL_RESERVED_SPACE) then skb_reset_network_header (af_packet.c:1112-1113):
        # SOCK_RAW copies the whole frame at data == network header, and dev_queue_xmit_nit
        # keeps it there (it is within [data, tail]), so a tap's SKF_NET_OFF + k reads
        # frame byte k (net/core/filter.c:43-52)
        skb.network_offset = 0
        skb.sk = sock
        sock.sk_wmem_alloc += skb.truesize
        if net.dev_queue_xmit(ctx, skb, net.netdev()) != 0:
            sock.sk_wmem_alloc -= skb.truesize
            err = "ENOBUFS"
    ctx.exit("packet_snd")
    ctx.exit("sys_sendto")
    return err
