"""The lecture's workload, "transfer 100MB using nc": a bulk TCP sender.

A remote host (208.68.139.89, "host optimus") sends ``total_bytes`` to the
simulated host over an established TCP connection, as fast as the wire and the
window allow.  The window is clocked by the ACKs the simulated host transmits
(:meth:`NcTransfer.on_transmit`); when it is full the source yields
:data:`~lsfsim.traffic.base.BLOCKED`.

Simplifications (the subject is packet capture, not TCP):
  * the connection is already established: no SYN / SYN-ACK exchange; the
    transfer ends with one FIN, sent right after the last data segment
    whatever the window (it carries no data), and nothing waits for its ACK;
  * congestion control is slow start only: cwnd grows by one segment per newly
    acknowledged segment, up to ``rwnd // mss``; no ssthresh, no congestion
    avoidance;
  * no loss recovery: a segment lost at the receiver is never retransmitted.
    :func:`build_ack` acknowledges each received segment's end (not the
    cumulative point), so later segments still open the window past a hole.  If
    every segment in flight is lost, no ACK returns: after ``rto`` seconds
    BLOCKED the simulator calls :meth:`NcTransfer.on_timeout`, which writes the
    lost data off and restarts slow start (a real sender would retransmit);
  * the payload is zero bytes (``nc < /dev/zero``), which also keeps the TCP
    checksum cheap to compute exactly;
  * the host's advertised window is not read from its ACKs: ``rwnd`` is given.
"""

from __future__ import annotations

import ipaddress
import math
import random
import struct
from collections.abc import Iterator
from typing import Final

from lsfsim.kernel.tcp_output import TCP_ACK, TCP_FIN, TCP_PSH, fold16, tcp_timestamps
from lsfsim.kernel.tcp_output import build_ack as build_ack  # the host's side, re-exported
from lsfsim.traffic.base import BLOCKED, FrameOrBlocked, TrafficSource
from lsfsim.traffic.frames import (
    HOST_IP,
    HOST_MAC,
    REMOTE_IP,
    REMOTE_MAC,
    csum_add,
    mac_bytes,
)

_TS_HZ: Final = 1000  # the sender's TSval clock: jiffies at HZ=1000

class NcTransfer(TrafficSource):
    """A bulk TCP transfer to the host, window-limited and ACK-clocked.

    Data segments are Ethernet/IPv4/TCP with the timestamps option (12 bytes),
    so ``mss=1448`` makes 1514-byte frames.  ``rwnd`` is the receiver's window
    in bytes (with window scaling it may exceed 65535); ``initial_cwnd`` is in
    segments; ``delay`` the one-way delay from the host back to the sender: after
    an ACK at time t reopens a full window, the next segment wants to start at
    ``t + delay`` (while the window is open segments are ready at once and the
    wire serialises them).
    ``isn`` (the sequence number before the first data byte) defaults to a value
    drawn from ``seed``.
    """

    def __init__(
        self,
        total_bytes: int = 100 * 10**6,
        mss: int = 1448,
        sender: str = REMOTE_IP,
        sport: int = 39172,
        dport: int = 5001,
        rwnd: int = 65535,
        initial_cwnd: int = 3,
        delay: float = 20e-6,
        *,
        sender_mac: str = REMOTE_MAC,
        receiver: str = HOST_IP,
        receiver_mac: str = HOST_MAC,
        timestamps: bool = True,
        isn: int | None = None,
        seed: int = 0,
        start: float = 0.0,
        rto: float | None = 0.2,
        name: str = "nc",
    ) -> None:
        if isinstance(total_bytes, bool) or int(total_bytes) != total_bytes or total_bytes < 0:
            raise ValueError(f"total_bytes: must be an integer >= 0, not {total_bytes!r}")
        if not 1 <= mss <= 65535 - 40 - 12:
            raise ValueError(f"mss: {mss} is outside [1, {65535 - 52}]")
        if rwnd < mss:
            raise ValueError(f"rwnd: {rwnd} bytes is less than one segment (mss {mss})")
        if initial_cwnd < 1:
            raise ValueError(f"initial_cwnd: must be >= 1 segment, not {initial_cwnd}")
        if not (delay >= 0 and math.isfinite(delay)):
            raise ValueError(f"delay: must be a number >= 0, not {delay}")
        for what, port in (("sport", sport), ("dport", dport)):
            if not 0 <= port <= 0xFFFF:
                raise ValueError(f"{what}: {port} is not a port number")
        self.total_bytes, self.mss, self.rwnd = int(total_bytes), int(mss), int(rwnd)
        self.initial_cwnd, self.delay = int(initial_cwnd), float(delay)
        self.sport, self.dport, self.timestamps = sport, dport, bool(timestamps)
        self.sender, self.receiver = (
            str(ipaddress.IPv4Address(sender)),
            str(ipaddress.IPv4Address(receiver)),
        )
        self.sender_mac, self.receiver_mac = sender_mac, receiver_mac
        if rto is not None and not (rto > 0 and math.isfinite(rto)):
            raise ValueError(f"rto: must be a positive number of seconds or None, not {rto}")
        self.seed, self.start, self.name, self.rto = seed, float(start), name, rto
        rng = random.Random(f"{seed}:nc")
        self.isn = rng.getrandbits(32) if isn is None else int(isn) & 0xFFFFFFFF
        self._ip_id0 = rng.getrandbits(16)
        self._ts0 = rng.getrandbits(32)
        self._peer_seq = rng.getrandbits(32)  # the host's sequence number (it sends no data)
        self._peer_ts0 = rng.getrandbits(32)
        self.nsegs = -(-self.total_bytes // self.mss)
        self.total_frames = self.nsegs + 1  # + FIN
        self.max_cwnd = self.rwnd // self.mss
        self._template = self._build_template(sender_mac, receiver_mac)
        self._reset()

    # -- state -------------------------------------------------------------------------

    def _reset(self) -> None:
        self.snd_una = 0  # bytes acknowledged (stream offset, not wrapped)
        self.snd_nxt = 0  # bytes sent
        self.fin_sent = False
        self.fin_acked = False
        self.cwnd = min(self.initial_cwnd, self.max_cwnd)
        self.acks = 0  # ACKs that advanced snd_una
        self.timeouts = 0
        self.abandoned_bytes = 0  # in flight when a timeout gave up on them
        self._now = self.start
        self._blocked = False
        self._ts_recent = self._peer_ts0

    @property
    def in_flight(self) -> int:
        """Segments sent and not yet acknowledged."""
        return self._segs_covered(self.snd_nxt) - self._segs_covered(self.snd_una)

    def _segs_covered(self, offset: int) -> int:
        # Whole segments below ``offset``; the last, short segment counts when reached.
        return self.nsegs if offset >= self.total_bytes else offset // self.mss

    def on_transmit(self, t: float, frame: bytes) -> None:
        """Take an ACK the host sent: advance snd_una, grow cwnd, reopen the window.

        Frames that are not ACKs of this connection (other protocols, other
        ports, stale or impossible ack numbers) are ignored.
        """
        if len(frame) < 54 or frame[12:14] != b"\x08\x00":
            return
        ihl = (frame[14] & 0x0F) * 4
        l4 = 14 + ihl
        if frame[23] != 6 or len(frame) < l4 + 20:
            return
        sport, dport, _seq, ack, doff_byte, flags = struct.unpack_from("!HHIIBB", frame, l4)
        if sport != self.dport or dport != self.sport or not flags & TCP_ACK:
            return
        if frame[26:30] != self._daddr or frame[30:34] != self._saddr:
            return
        una_seq = (self.isn + 1 + self.snd_una) & 0xFFFFFFFF
        advance = (ack - una_seq) & 0xFFFFFFFF
        limit = self.snd_nxt - self.snd_una + (1 if self.fin_sent else 0)
        if advance == 0 or advance > limit:
            return  # duplicate, old, or acknowledging what was never sent
        if self.fin_sent and advance == limit:
            self.fin_acked = True
            advance -= 1
        before = self._segs_covered(self.snd_una)
        self.snd_una += advance
        self.cwnd = min(self.max_cwnd, self.cwnd + self._segs_covered(self.snd_una) - before)
        self.acks += 1
        ts = tcp_timestamps(frame, l4 + 20, min(l4 + (doff_byte >> 4) * 4, len(frame)))
        if ts is not None:
            self._ts_recent = ts[0]
        if self._blocked and t + self.delay > self._now:
            # The ACK reopens a closed window: the next segment leaves the sender
            # ``delay`` later.  (While the window is open, a segment is ready at
            # once and the wire decides when it starts.)
            self._now = t + self.delay

    def on_timeout(self, t: float) -> None:
        """Blocked for ``rto`` with no ACK: every segment in flight was lost.

        Simplified RTO: the lost data is *not* retransmitted (no loss recovery);
        the sender writes it off (``abandoned_bytes``), restarts slow start from
        the initial window and goes on with new data at time ``t``.
        """
        if not self._blocked or self.snd_nxt == self.snd_una:
            return
        self.timeouts += 1
        self.abandoned_bytes += self.snd_nxt - self.snd_una
        self.snd_una = self.snd_nxt
        self.cwnd = min(self.initial_cwnd, self.max_cwnd)
        if t > self._now:
            self._now = t

    # -- frames ------------------------------------------------------------------------

    def _build_template(self, sender_mac: str, receiver_mac: str) -> bytes:
        """The data-segment header, built once with scapy (variable fields patched per frame)."""
        from scapy.layers.inet import IP, TCP
        from scapy.layers.l2 import Ether

        options = [("NOP", None), ("NOP", None), ("Timestamp", (0, 0))] if self.timestamps else []
        pkt = (
            Ether(src=sender_mac, dst=receiver_mac)
            / IP(src=self.sender, dst=self.receiver, ttl=64, id=0, flags="DF")
            / TCP(
                sport=self.sport,
                dport=self.dport,
                flags="A",
                seq=0,
                ack=0,
                window=65535,
                options=options,
            )
        )
        mac_bytes(sender_mac)
        mac_bytes(receiver_mac)
        raw = bytearray(bytes(pkt))
        self._saddr = bytes(raw[26:30])
        self._daddr = bytes(raw[30:34])
        return bytes(raw)

    def frames(self) -> Iterator[FrameOrBlocked]:
        """Data segments while the window allows, BLOCKED while it is full, then a FIN."""
        self._reset()
        tmpl = bytearray(self._template)
        hlen = len(tmpl)
        l4 = 34
        # Zero the variable fields and precompute the sums of the constant rest.
        struct.pack_into("!HH", tmpl, 16, 0, 0)  # IP total length, id
        struct.pack_into("!H", tmpl, 24, 0)  # IP checksum
        struct.pack_into("!II", tmpl, l4 + 4, 0, 0)  # seq, ack
        struct.pack_into("!H", tmpl, l4 + 16, 0)  # TCP checksum
        if self.timestamps:
            struct.pack_into("!II", tmpl, l4 + 24, 0, 0)
        ip_base = csum_add(tmpl[14:34])
        frag_ttl_proto = bytes(tmpl[20:24])
        ack_no = (self._peer_seq + 1) & 0xFFFFFFFF
        tcp_base = (
            csum_add(self._saddr + self._daddr + bytes((0, 6)))
            + csum_add(tmpl[l4:hlen])
            + (ack_no >> 16)
            + (ack_no & 0xFFFF)
        )
        struct.pack_into("!I", tmpl, l4 + 8, ack_no)
        header = bytes(tmpl)
        tcp_hlen = hlen - l4
        mss, total, nsegs = self.mss, self.total_bytes, self.nsegs
        isn1 = self.isn + 1
        ts_on, ts0 = self.timestamps, self._ts0
        start = self.start
        pack = struct.pack_into

        def segment(offset: int, length: int, extra_flags: int, ip_id: int, t: float) -> bytes:
            buf = bytearray(header)
            if length:
                buf += bytes(length)
            ip_len = 20 + tcp_hlen + length
            s = fold16(ip_base + ip_len + ip_id)
            pack("!HH4sH", buf, 16, ip_len, ip_id, frag_ttl_proto, ~s & 0xFFFF)
            seq = (isn1 + offset) & 0xFFFFFFFF
            s = tcp_base + tcp_hlen + length + (seq >> 16) + (seq & 0xFFFF) + extra_flags
            pack("!I", buf, l4 + 4, seq)
            if extra_flags:
                buf[l4 + 13] |= extra_flags
            if ts_on:
                tv = (ts0 + int((t - start) * _TS_HZ)) & 0xFFFFFFFF
                te = self._ts_recent
                s += (tv >> 16) + (tv & 0xFFFF) + (te >> 16) + (te & 0xFFFF)
                pack("!II", buf, l4 + 24, tv, te)
            s = fold16(fold16(s))
            pack("!H", buf, l4 + 16, ~s & 0xFFFF)
            return bytes(buf)

        ip_id = self._ip_id0
        seg = 0
        while seg < nsegs:
            offset = seg * mss
            length = mss if offset + mss <= total else total - offset
            if (
                seg - self._segs_covered(self.snd_una) >= self.cwnd
                or offset + length - self.snd_una > self.rwnd
            ):
                self._blocked = True
                yield BLOCKED
                continue
            self._blocked = False
            t = self._now
            flags = TCP_PSH if seg == nsegs - 1 else 0
            self.snd_nxt = offset + length
            yield (t, segment(offset, length, flags, ip_id, t))
            ip_id = (ip_id + 1) & 0xFFFF
            seg += 1
        self.fin_sent = True
        t = self._now
        yield (t, segment(total, 0, TCP_FIN, ip_id, t))

    def describe(self) -> str:
        return (
            f"{self.name}: {self.total_bytes} bytes {self.sender}:{self.sport} -> "
            f"{self.receiver}:{self.dport}, mss {self.mss}, rwnd {self.rwnd}, "
            f"initial cwnd {self.initial_cwnd}, delay {self.delay * 1e6:g} us"
        )
