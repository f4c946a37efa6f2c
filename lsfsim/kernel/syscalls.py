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
from lsfsim.kernel.calls import folded, socketcall_steps
from lsfsim.kernel.cpu import ExecContext, charge, enter, exit_, fold, mark
from lsfsim.kernel.dev import NetCore
from lsfsim.kernel.skbuff import SkBuff

ETH_FRAME_LEN = 1514
LL_ALLOCATED_SPACE = 16


# socket(2) below sys_socket, as the lecture's trace shows it (net/socket.c __sock_create,
# sock_alloc, sock_map_fd; fs/inode.c, fs/dcache.c, fs/file_table.c).  Only
# packet_create and dev_add_pack have costs of their own: the rest is sys_socket's.
SOCK_ALLOC = (
    "security_socket_create() { cap_socket_create(); }"
    " sock_alloc() { new_inode() { alloc_inode() {"
    " sock_alloc_inode() { kmem_cache_alloc(); __init_waitqueue_head(); }"
    " inode_init_always() { security_inode_alloc() { cap_inode_alloc_security(); }"
    " __mutex_init(); } } _raw_spin_lock(); _raw_spin_unlock(); } }")
PACKET_CREATE_HEAD = (
    "capable() { security_capable() { cap_capable(); } }"
    " sk_alloc() { sk_prot_alloc() { __kmalloc() { get_slab(); memset(); }"
    " security_sk_alloc() { cap_sk_alloc_security(); } } __init_waitqueue_head(); }"
    " sock_init_data() { init_timer_key(); } __mutex_init();")
DEV_ADD_PACK = ("_raw_spin_lock_bh() { local_bh_disable() { __local_bh_disable(); } }"
                " _raw_spin_unlock_bh() { local_bh_enable_ip(); }")
# sk_add_node under the packet socket list's rwlock (RCU only after 2.6.33)
SKLIST_INSERT = ("_raw_write_lock_bh() { local_bh_disable() { __local_bh_disable(); } }"
                 " sock_prot_inuse_add(); _raw_write_unlock_bh() { local_bh_enable_ip(); }")
SOCK_CREATE_TAIL = "module_put(); security_socket_post_create() { cap_socket_post_create(); }"
SOCK_MAP_FD = (
    "sock_map_fd() { sock_alloc_file() {"
    " alloc_fd() { _raw_spin_lock(); expand_files(); _raw_spin_unlock(); }"
    " d_alloc() { kmem_cache_alloc(); memcpy(); _raw_spin_lock(); _raw_spin_unlock(); }"
    " d_instantiate() { _raw_spin_lock(); __d_instantiate() { _raw_spin_lock();"
    " _raw_spin_unlock(); inotify_d_instantiate() { _raw_spin_lock(); _raw_spin_unlock(); } }"
    " _raw_spin_unlock(); security_d_instantiate() { cap_d_instantiate(); } }"
    " alloc_file() { get_empty_filp() { kmem_cache_alloc() { memset(); }"
    " security_file_alloc() { cap_file_alloc_security(); } } } }"
    " fd_install() { _raw_spin_lock(); _raw_spin_unlock(); } }")
# sock_setsockopt's lock_sock (inline) -> lock_sock_nested, and release_sock
LOCK_SOCK = ("lock_sock_nested() { _raw_spin_lock_bh() { local_bh_disable() {"
             " __local_bh_disable(); } } _raw_spin_unlock(); local_bh_enable(); }")
RELEASE_SOCK = ("release_sock() { _raw_spin_lock_bh() { local_bh_disable() {"
                " __local_bh_disable(); } } _raw_spin_unlock_bh() { local_bh_enable_ip(); } }")


def sys_socket(net: NetCore, ctx: ExecContext) -> PacketSock:
    """socket(PF_PACKET, SOCK_RAW, htons(ETH_P_ALL)): sock_create -> __sock_create ->
    sock_alloc, packet_create (dev_add_pack), then sock_map_fd; through sys_socketcall
    on i386."""
    costs = net.costs
    sock = PacketSock(net.kernel, len(net.sockets), net.netdev().ifindex)
    sock.received_at_create = net.received
    net.sockets.append(sock)
    net.dev_add_pack(None, sock)
    call_in, call_out = socketcall_steps(net.kernel.word_bits, costs)
    ctx.run_once(
        *call_in, enter("sys_socket"), charge("sys_socket", costs.sys_socket),
        fold("sock_create"), fold("__sock_create"), *folded(SOCK_ALLOC),
        enter("packet_create"), charge("packet_create", costs.packet_create),
        *folded(PACKET_CREATE_HEAD),
        enter("dev_add_pack"), charge("dev_add_pack", costs.dev_add_pack), *folded(DEV_ADD_PACK),
        exit_("dev_add_pack"), *folded(SKLIST_INSERT), exit_("packet_create"),
        *folded(SOCK_CREATE_TAIL), exit_("__sock_create"), exit_("sock_create"),
        *folded(SOCK_MAP_FD), exit_("sys_socket"), *call_out)
    return sock


def _setsockopt(net: NetCore, ctx: ExecContext, done: bool) -> None:
    """sys_setsockopt down to sock_setsockopt's lock_sock (``done`` False), or from
    its release_sock back up (True)."""
    call_in, call_out = socketcall_steps(net.kernel.word_bits, net.costs)
    if not done:
        ctx.run_once(
            *call_in, enter("sys_setsockopt"), charge("sys_setsockopt", net.costs.sys_setsockopt),
            *folded("sockfd_lookup_light() { fget_light(); }"
                    " security_socket_setsockopt() { cap_socket_setsockopt(); }"),
            fold("sock_setsockopt"), *folded(LOCK_SOCK))
    else:
        ctx.run_once(*folded(RELEASE_SOCK), exit_("sock_setsockopt"), exit_("sys_setsockopt"),
                     *call_out)


def sys_setsockopt_filter(net: NetCore, ctx: ExecContext, sock: PacketSock,
                          program: Program) -> str | None:
    """setsockopt(SOL_SOCKET, SO_ATTACH_FILTER): None on success, else the errno name.

    sock_setsockopt copies the sock_fprog, then sk_attach_filter (lecture order)."""
    _setsockopt(net, ctx, False)
    ctx.run_once(mark("_copy_from_user"))
    err = sock.sk_attach_filter(ctx, program)
    _setsockopt(net, ctx, True)
    return err


def sys_setsockopt_rcvbuf(net: NetCore, ctx: ExecContext, sock: PacketSock, val: int) -> int:
    """setsockopt(SOL_SOCKET, SO_RCVBUF); returns the resulting sk_rcvbuf (the value is
    read with get_user, inline: no traced call)."""
    _setsockopt(net, ctx, False)
    result = sock.set_rcvbuf(val)
    _setsockopt(net, ctx, True)
    return result


def sys_ioctl_promisc(net: NetCore, ctx: ExecContext, on: bool = True) -> None:
    """ioctl(SIOCSIFFLAGS, IFF_PROMISC): dev_set_promiscuity restarts the chip with PROM."""
    ctx.enter("sys_ioctl")
    ctx.charge("dev_set_promiscuity", net.costs.dev_set_promiscuity)
    net.netdev().set_promiscuity(on)
    ctx.exit("sys_ioctl")


def sys_sendto(net: NetCore, ctx: ExecContext, sock: PacketSock, frame: bytes) -> str | None:
    """sendto on a SOCK_RAW packet socket, with its sockaddr_ll: sock_sendmsg ->
    packet_sendmsg (packet_snd, inlined) -> dev_queue_xmit.

    Returns None on success or the errno name (EMSGSIZE, EAGAIN, ENOBUFS).
    Simplification: a full send buffer returns EAGAIN instead of blocking.
    """
    copy = len(frame) * sock.packet_snd_per_byte
    if len(frame) > ETH_FRAME_LEN:
        ctx.run(sock.plan_sendto_emsgsize, copy)
        return "EMSGSIZE"
    if sock.sk_wmem_alloc >= sock.sk_sndbuf:
        ctx.run(sock.plan_sendto_eagain, copy)
        return "EAGAIN"
    ctx.run(sock.plan_sendto, copy)
    err = None
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
    if ctx.tracer is not None:                  # only the tracer sees the returns
        ctx.run(sock.plan_sendto_exit)
    return err
