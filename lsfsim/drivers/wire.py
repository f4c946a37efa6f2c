"""The Ethernet link between the traffic source and the NIC.

A frame of L bytes (without FCS, padded to the 60-byte minimum) occupies the
wire for (preamble 8 + L + FCS 4) byte times, then the inter-frame gap of 12.
The wire serialises frames: one starts at max(the time the source wants, the
end of the previous frame's gap).  Frames are pulled lazily, one ahead, so a
run of any length keeps constant memory.

Frames the simulated host transmits are reported to the source at the time
their last bit leaves (``notify_tx``), which is how the nc source is ACK-clocked.
A source that waits for them (BLOCKED) and has a retransmission timeout
(``source.rto``) gets its timer here, on the remote side of the link: after
``rto`` with nothing transmitted by the host, ``timeout`` lets it write off
what it has in flight.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator

import simpy

from lsfsim.traffic.base import BLOCKED, TrafficSource


class WireFrame:
    """A frame on the wire with its timing."""

    __slots__ = ("data", "t_start", "t_end", "t_dma", "index")

    def __init__(self, data: bytes, t_start: float, t_end: float, index: int) -> None:
        self.data = data
        self.t_start = t_start  # first bit of the preamble
        self.t_end = t_end      # last bit of the FCS
        self.t_dma = t_end      # DMA into the ring done (set by the NIC)
        self.index = index


class Wire:
    """Serialises a source's frames at the link rate; one frame of lookahead."""

    def __init__(self, source: TrafficSource, link_rate: float, preamble: int = 8,
                 fcs: int = 4, ifg: int = 12, min_frame: int = 60,
                 stop_time: float | None = None, env: simpy.Environment | None = None) -> None:
        self.source = source
        self.env = env            # for the source's retransmission timer (none without)
        self.byte_time = 8.0 / link_rate
        self.preamble = preamble
        self.fcs = fcs
        self.ifg = ifg
        self.min_frame = min_frame
        self.stop_time = stop_time
        self.framing = preamble + fcs         # bytes a frame holds the wire besides its own
        self.gap_time = ifg * self.byte_time  # the inter-frame gap, in seconds
        self._frames: Iterator = source.frames()
        self._feedback: deque[tuple[float, bytes]] = deque()
        self.free_at = 0.0
        self.offered = 0          # frames put on the wire
        self.offered_bytes = 0
        self.blocked = False      # the source waits for the host to transmit
        self.tx_count = 0         # frames the host has transmitted
        self.finished = False
        self.on_unblock: Callable[[], None] | None = None
        self._rto_armed = False

    def frame_time(self, length: int) -> float:
        """Time a frame of ``length`` bytes (no FCS) holds the wire, gap excluded."""
        return (max(length, self.min_frame) + self.framing) * self.byte_time

    def pull(self) -> WireFrame | None:
        """The next frame with its wire timing, or None (blocked or finished)."""
        if self.finished:
            return None
        feedback = self._feedback
        while True:
            while feedback and feedback[0][0] <= self.free_at:
                self.source.on_transmit(*feedback.popleft())
            item = next(self._frames, None)
            if item is None:
                self.finished = True
                return None
            if item is BLOCKED:
                if feedback:
                    self.source.on_transmit(*feedback.popleft())
                    continue
                self.blocked = True
                if self.source.rto and self.env is not None and not self._rto_armed:
                    self._arm_rto()
                return None
            t_want, data = item
            free_at = self.free_at
            start = t_want if t_want > free_at else free_at
            if self.stop_time is not None and start >= self.stop_time:
                self.finished = True
                return None
            length = len(data)
            min_frame = self.min_frame
            if length < min_frame:
                # the sender pads a short frame to the minimum (a replayed capture may
                # even hold empty records)
                data = data.ljust(min_frame, b"\0")
            byte_time = self.byte_time
            end = start + ((length if length > min_frame else min_frame)
                           + self.framing) * byte_time
            self.free_at = end + self.gap_time
            index = self.offered
            self.offered = index + 1
            self.offered_bytes += length
            return WireFrame(data, start, end, index)

    def _arm_rto(self) -> None:
        """The remote sender's retransmission timer, while it waits for the host's ACKs."""
        env = self.env
        rto = self.source.rto
        assert env is not None and rto is not None
        self._rto_armed = True
        tx_count = self.tx_count

        def expire(_ev: simpy.Event) -> None:
            self._rto_armed = False
            if self.blocked and self.tx_count == tx_count:
                self.timeout(env.now)
            elif self.blocked:
                self._arm_rto()

        env.timeout(rto).callbacks.append(expire)

    def timeout(self, t: float) -> None:
        """The source has waited ``source.rto`` for the host with nothing sent: let it
        give up on what it has in flight (TCP's retransmission timer)."""
        if self.blocked and not self._feedback:
            self.source.on_timeout(t)
            self.blocked = False
            if self.on_unblock is not None:
                self.on_unblock()

    def notify_tx(self, t_end: float, frame: bytes) -> None:
        """The host's frame finished leaving at ``t_end``; tell the source in time order."""
        self.tx_count += 1
        self._feedback.append((t_end, frame))
        if self.blocked:
            self.blocked = False
            if self.on_unblock is not None:
                self.on_unblock()
