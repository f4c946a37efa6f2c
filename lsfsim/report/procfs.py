"""The end state of a run as the files a student would read on the real machine.

Each function renders one file with the header text and the column layout
of Linux 2.6.33's seq_file show function, from a ``Result`` alone, so a
simulated run and a real ``cat /proc/net/...`` can be laid side by side:

* ``/proc/net/dev``: dev_seq_show / dev_seq_printf_stats (net/core/dev.c);
* ``/proc/net/softnet_stat``: softnet_seq_show (net/core/dev.c), nine
  ``%08x`` fields per CPU (received_rps only appeared in 2.6.35);
* ``/proc/net/packet``: packet_seq_show (net/packet/af_packet.c);
* ``getsockopt(PACKET_STATISTICS)`` per socket, as a capture program prints it.

Simplifications: the machine has no loopback traffic, so ``lo`` is all
zeros; counters the model does not keep (compressed, tx_fifo, carrier) are 0;
the ``sk`` pointers and inodes are invented, stable per socket index.
"""

from __future__ import annotations

from typing import Any

from lsfsim.result import Result

# dev_seq_show: the two header lines, unchanged since 2.6.
DEV_HEADER = ("Inter-|   Receive                            "
              "                    |  Transmit\n"
              " face |bytes    packets errs drop fifo frame "
              "compressed multicast|bytes    packets errs "
              "drop fifo colls carrier compressed\n")
# dev_seq_printf_stats in 2.6.33 (it became "%6s: %7llu ..." with 64-bit stats later).
DEV_LINE = ("%6s:%8lu %7lu %4lu %4lu %4lu %5lu %10lu %9lu "
            "%8lu %7lu %4lu %4lu %4lu %5lu %7lu %10lu\n")
# softnet_seq_show in 2.6.33: total, dropped, time_squeeze, 0 x 5 (was fastroute),
# cpu_collision.
SOFTNET_LINE = "%08x %08x %08x %08x %08x %08x %08x %08x %08x\n"
# packet_seq_show
PACKET_HEADER = "sk       RefCnt Type Proto  Iface R Rmem   User   Inode\n"
PACKET_LINE = "%p %-6d %-4d %04x   %-5d %1d %-6u %-6u %-6lu\n"

SOCK_RAW = 3
ETH_P_ALL = 0x0003
# A running, unbound ETH_P_ALL socket holds three references in 2.6.33's
# packet_create: sk_alloc, the prot hook (sock_hold when running) and
# sk_add_node on the packet socket list.
PACKET_SOCK_REFCNT = 3
# Invented but plausible: direct-mapping kernel addresses (x86_64's 0xffff8800...,
# i386's lowmem above PAGE_OFFSET 0xc0000000), packet_sock objects 0x800 apart in
# their slab; sockfs inode numbers.
_FAKE_SK_BASE = 0xFFFF88003D8C4000
_FAKE_SK_BASE_I386 = 0xF58C4000
_FAKE_SK_STRIDE = 0x800
_FAKE_INODE_BASE = 7364


def _c_format(fmt: str, *args: Any, word: int = 8) -> str:
    """Apply a C format string: Python's % ignores the ``l`` length modifier;
    ``%p`` (a kernel pointer: 16 hex digits on x86_64, 8 on i386) is handled here."""
    return (fmt.replace("%p", f"%0{2 * word}x") % args)


def fake_sk_pointer(index: int, arch: str = "x86_64") -> int:
    """The invented ``struct sock *`` of socket ``index`` (stable across runs)."""
    base = _FAKE_SK_BASE_I386 if arch == "i386" else _FAKE_SK_BASE
    return base + index * _FAKE_SK_STRIDE


def fake_inode(index: int) -> int:
    """The invented sockfs inode of socket ``index``."""
    return _FAKE_INODE_BASE + index


def proc_net_dev(result: Result) -> str:
    """/proc/net/dev: lo (no traffic is simulated on it) then eth0."""
    nd = result.data["netdev"]
    rx_frame = (nd["rx_length_errors"] + nd["rx_over_errors"] + nd["rx_crc_errors"]
                + nd["rx_frame_errors"])
    lines = [DEV_HEADER, _c_format(DEV_LINE, "lo", *([0] * 16))]
    lines.append(_c_format(
        DEV_LINE, "eth0",
        nd["rx_bytes"], nd["rx_packets"], nd["rx_errors"],
        nd["rx_dropped"] + nd["rx_missed_errors"],      # "drop"
        nd["rx_fifo_errors"],                           # "fifo"
        rx_frame,                                       # "frame"
        0,                                              # rx_compressed
        nd["multicast"],
        nd["tx_bytes"], nd["tx_packets"], nd["tx_errors"], nd["tx_dropped"],
        0,                                              # tx_fifo_errors
        nd["collisions"],
        0,                                              # carrier + aborted + window + heartbeat
        0,                                              # tx_compressed
    ))
    return "".join(lines)


def proc_net_softnet_stat(result: Result) -> str:
    """/proc/net/softnet_stat: one line per CPU, counters as unsigned 32-bit hex."""
    out = []
    for s in result.data["softnet"]:
        fields = [s["processed"], s["dropped"], s["time_squeeze"], 0, 0, 0, 0, 0,
                  s["cpu_collision"]]
        out.append(_c_format(SOFTNET_LINE, *(v & 0xFFFFFFFF for v in fields)))
    return "".join(out)


def proc_net_packet(result: Result) -> str:
    """/proc/net/packet: one line per PF_PACKET socket.

    The simulated capture program does not bind(), so Iface is 0 (all
    devices), as for the lecture's program; tcpdump binds and shows eth0's
    ifindex.  The list is printed newest first, as sk_add_node inserts at the
    head of the packet socket list.
    """
    out = [PACKET_HEADER]
    arch = result.data.get("arch", "x86_64")
    for s in sorted(result.data["sockets"], key=lambda s: -s["index"]):
        i = s["index"]
        out.append(_c_format(PACKET_LINE, fake_sk_pointer(i, arch), PACKET_SOCK_REFCNT,
                             SOCK_RAW, ETH_P_ALL, 0, 1, s["rmem_alloc"], 0, fake_inode(i),
                             word=4 if arch == "i386" else 8))
    return "".join(out)


def packet_statistics(result: Result) -> str:
    """getsockopt(fd, SOL_PACKET, PACKET_STATISTICS) once per socket at the end.

    tp_packets counts accepted and dropped packets (the kernel adds tp_drops
    before returning); the values are what ``result.data`` reports.
    """
    out = []
    for s in result.data["sockets"]:
        out.append(f"socket {s['index']}: getsockopt(PACKET_STATISTICS) = "
                   f"{{ tp_packets = {s['tp_packets']}, tp_drops = {s['tp_drops']} }}\n")
    return "".join(out)


def render_all(result: Result) -> str:
    """All four views, each under a ``==> NAME <==`` line, as ``head FILE...`` shows files."""
    parts = [
        ("/proc/net/dev", proc_net_dev(result)),
        ("/proc/net/softnet_stat", proc_net_softnet_stat(result)),
        ("/proc/net/packet", proc_net_packet(result)),
        ("getsockopt(PACKET_STATISTICS)", packet_statistics(result) or "(no sockets)\n"),
    ]
    return "\n".join(f"==> {title} <==\n{body}" for title, body in parts).rstrip("\n")
