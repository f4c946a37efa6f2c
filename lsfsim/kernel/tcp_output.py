"""net/ipv4/tcp_output.c: the ACK the host's TCP sends (tcp_send_ack), as frame bytes.

The simulated host acknowledges the lecture's nc transfer; ``build_ack`` makes
the frame that tcp_send_ack would hand to dev_queue_xmit.  It lives with the
kernel (the host's behaviour), and the traffic sources use it too, to play the
host's side in their own tests.

Simplification: the ACK number is the end of the segment acknowledged (holes
are not tracked), the window is given, and no option but timestamps is echoed.
"""

from __future__ import annotations

import struct
from typing import Final

TCP_FIN: Final = 0x01
TCP_SYN: Final = 0x02
TCP_RST: Final = 0x04
TCP_PSH: Final = 0x08
TCP_ACK: Final = 0x10

#: NOP, NOP, Timestamps(kind 8, length 10): the 12 option bytes Linux puts on
#: every segment of a connection that negotiated timestamps.
_TS_OPTION_PREFIX: Final = b"\x01\x01\x08\x0a"

_ETH = struct.Struct("!6s6sH")
_IPV4 = struct.Struct("!BBHHHBBH4s4s")
_TCP = struct.Struct("!HHIIBBHHH")
# Whole ACK frames: Ethernet + IPv4 + TCP (+ NOP NOP TS option), padded to 60 without options.
_ACK_TS = struct.Struct("!6s6sHBBHHHBBH4s4sHHIIBBHHH4sII")
_ACK_PLAIN = struct.Struct("!6s6sHBBHHHBBH4s4sHHIIBBHHH6x")


def fold16(s: int) -> int:
    s = (s & 0xFFFF) + (s >> 16)
    return (s & 0xFFFF) + (s >> 16)


def tcp_timestamps(
    frame: bytes | bytearray, opt_start: int, opt_end: int
) -> tuple[int, int] | None:
    """(TSval, TSecr) from the TCP options in ``frame[opt_start:opt_end]``, if present."""
    if opt_end - opt_start >= 12 and frame[opt_start : opt_start + 4] == _TS_OPTION_PREFIX:
        return struct.unpack_from("!II", frame, opt_start + 4)  # Linux's layout: the fast path
    i = opt_start
    while i < opt_end:
        kind = frame[i]
        if kind == 0:  # end of option list
            return None
        if kind == 1:  # NOP
            i += 1
            continue
        if i + 1 >= opt_end:
            return None
        length = frame[i + 1]
        if length < 2:
            return None
        if kind == 8 and length == 10 and i + 10 <= opt_end:
            tsval, tsecr = struct.unpack_from("!II", frame, i + 2)
            return tsval, tsecr
        i += length
    return None


def build_ack(
    frame: bytes | bytearray,
    *,
    window: int = 65535,
    tsval: int | None = None,
    ip_id: int = 0,
) -> bytes | None:
    """The ACK the receiving host sends for the TCP segment ``frame`` (untagged
    Ethernet/IPv4/TCP), or None if it needs none (not TCP/IPv4, RST, or a bare ACK).

    MACs, addresses and ports are swapped; ``ack = seq + payload length`` (+1 for
    SYN or FIN); the ACK's own seq is the segment's ack field.  Lengths come from
    the IP header, so Ethernet padding is ignored.  If the segment carries the
    timestamps option so does the ACK (TSecr = the segment's TSval; TSval =
    ``tsval``, default the segment's TSval), making a 66-byte frame; otherwise a
    54-byte one padded to 60.  IP and TCP checksums are correct.  ``window`` is
    the raw 16-bit window field (scaled by the connection's window scale).
    """
    if len(frame) < 54:
        return None
    dmac, smac, ethertype = _ETH.unpack_from(frame, 0)
    if ethertype != 0x0800:
        return None
    vihl, _tos, tot_len, _id, frag, _ttl, proto, _ck, saddr, daddr = _IPV4.unpack_from(frame, 14)
    ihl = (vihl & 0x0F) * 4
    if vihl >> 4 != 4 or proto != 6 or ihl < 20 or frag & 0x3FFF:  # not a first fragment
        return None
    l4 = 14 + ihl
    if len(frame) < l4 + 20 or tot_len < ihl + 20:
        return None
    sport, dport, seq, ack, doff_byte, flags, _win, _ck, _urg = _TCP.unpack_from(frame, l4)
    doff = (doff_byte >> 4) * 4
    if doff < 20 or tot_len < ihl + doff:
        return None
    payload = tot_len - ihl - doff
    if flags & TCP_RST:
        return None
    seg_len = payload + (1 if flags & TCP_SYN else 0) + (1 if flags & TCP_FIN else 0)
    if seg_len == 0:
        return None  # a bare ACK is not acknowledged
    ts = tcp_timestamps(frame, l4 + 20, min(l4 + doff, len(frame)))

    ack_no = (seq + seg_len) & 0xFFFFFFFF
    my_seq = ack if flags & TCP_ACK else 0
    window &= 0xFFFF
    ip_id &= 0xFFFF
    # Checksums from the field values (cheaper than summing the built bytes).
    a_src = int.from_bytes(daddr, "big")  # the ACK goes from the segment's destination...
    a_dst = int.from_bytes(saddr, "big")  # ...back to its source
    addr_sum = (a_src >> 16) + (a_src & 0xFFFF) + (a_dst >> 16) + (a_dst & 0xFFFF)
    tcp_sum = (
        addr_sum
        + 6
        + dport
        + sport
        + (my_seq >> 16)
        + (my_seq & 0xFFFF)
        + (ack_no >> 16)
        + (ack_no & 0xFFFF)
        + TCP_ACK
        + window
    )
    if ts is not None:
        tv = (ts[0] if tsval is None else tsval) & 0xFFFFFFFF
        te = ts[0]
        tcp_len = 32
        tcp_sum += tcp_len + (tcp_len << 10) + 0x0101 + 0x080A
        tcp_sum += (tv >> 16) + (tv & 0xFFFF) + (te >> 16) + (te & 0xFFFF)
        ip_len = 52
        ip_sum = 0x4500 + ip_len + ip_id + 0x4000 + 0x4006 + addr_sum
        return _ACK_TS.pack(
            smac,
            dmac,
            0x0800,
            0x45,
            0,
            ip_len,
            ip_id,
            0x4000,
            64,
            6,
            ~fold16(ip_sum) & 0xFFFF,
            daddr,
            saddr,
            dport,
            sport,
            my_seq,
            ack_no,
            0x80,
            TCP_ACK,
            window,
            ~fold16(tcp_sum) & 0xFFFF,
            0,
            _TS_OPTION_PREFIX,
            tv,
            te,
        )
    tcp_len = 20
    tcp_sum += tcp_len + (tcp_len << 10)
    ip_len = 40
    ip_sum = 0x4500 + ip_len + ip_id + 0x4000 + 0x4006 + addr_sum
    return _ACK_PLAIN.pack(
        smac,
        dmac,
        0x0800,
        0x45,
        0,
        ip_len,
        ip_id,
        0x4000,
        64,
        6,
        ~fold16(ip_sum) & 0xFFFF,
        daddr,
        saddr,
        dport,
        sport,
        my_seq,
        ack_no,
        0x50,
        TCP_ACK,
        window,
        ~fold16(tcp_sum) & 0xFFFF,
        0,
    )
