"""What became of each frame in a run, and how many accepted frames were lost.

``FrameFates`` is a probe on the machine's per-frame hooks (lsfsim.probes:
packet_rcv's verdict for each socket, the NIC's and the backlog's drops) and
keeps, per frame of the traffic, one fate code and the captured length
packet_rcv decided.  ``Figures`` is what a run
hands back to the suite runner: the counters it needs from the Result, and
the fates.

``accepted_losses`` is the one place that turns a run into "accepted frames
lost": exact from the fates when the run recorded them, else estimated from
the counters (see its docstring), so that a runner that only returns a
Result (no per-frame hook) still gets a figure.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FATES", "Figures", "FrameFates", "Losses", "accepted_losses", "figures_of"]

# fate codes; UNSEEN: the frame never reached this socket's packet_rcv (it came
# before the socket existed) and no drop place reported it
UNSEEN, MAC_FILTERED, RX_MISSED, RX_LENGTH, RX_DROPPED, SOFTNET, FILTERED, RCVBUF, QUEUED = \
    range(9)
FATES = ("unseen", "mac_filtered", "rx_missed_errors", "rx_oversize", "rx_dropped",
         "softnet_dropped", "filtered", "rcvbuf_drop", "queued")
_CODE = {name: code for code, name in enumerate(FATES)}
# where an accepted frame can be lost, in path order, and how reports name the place
LOSS_PLACES = {
    UNSEEN: "before the socket",
    MAC_FILTERED: "NIC address filter",
    RX_MISSED: "RX ring",
    RX_LENGTH: "frame too long",
    RX_DROPPED: "skb allocation",
    SOFTNET: "backlog",
    RCVBUF: "rcvbuf",
}


class FrameFates:
    """A probe keeping one fate per received frame, for one socket (lsfsim.probes)."""

    def __init__(self, frames: int, sock: int = 0) -> None:
        self.sock = sock
        self.fate = bytearray(frames)
        self.caplen = array("I", bytes(4 * frames))

    def _grow(self, index: int) -> None:
        missing = index + 1 - len(self.fate)
        self.fate.extend(bytes(missing))
        self.caplen.extend([0] * missing)

    def attach(self, machine: Any) -> None:
        """Nothing to look at: the fates come from the packet hooks alone."""

    def finish(self) -> None:
        """Nothing pending: every fate is written as its hook fires."""

    def polled(self, ctx: Any, skb: Any) -> None:
        pass

    def verdict(self, ctx: Any, sock: Any, skb: Any, outcome: str, snaplen: int) -> None:
        index = skb.id
        if index < 0 or sock.index != self.sock:      # a frame the host sent; another socket
            return
        if index >= len(self.fate):
            self._grow(index)
        self.fate[index] = _CODE[outcome]
        self.caplen[index] = snaplen

    def copied(self, reader: Any, skb: Any, t_deq: float, t_done: float) -> None:
        pass

    def nic_dropped(self, frame: Any, place: str) -> None:
        if frame.index >= len(self.fate):
            self._grow(frame.index)
        self.fate[frame.index] = _CODE[place]

    def softnet_dropped(self, ctx: Any, skb: Any) -> None:
        if skb.id >= 0:
            if skb.id >= len(self.fate):
                self._grow(skb.id)
            self.fate[skb.id] = SOFTNET


@dataclass
class Figures:
    """The part of a run the suite's checks read (picklable, small)."""

    offered: int
    received: int
    seen: int
    seen_outgoing: int
    filtered: int
    rcvbuf_drops: int
    captured: int                 # delivered + queued + in recvfrom at the end
    rx_missed_errors: int
    softnet_dropped: int
    pre_filter_drops: int         # every drop place before packet_rcv
    attach_errno: str | None
    p99: float                    # latency wire -> end of recvfrom, seconds
    latency_count: int
    sim_seconds: float
    wall_seconds: float
    fate: bytes | None = None     # per frame, when the run recorded fates
    caplen: bytes | None = None   # array("I") bytes: what packet_rcv kept per frame
    extra: dict[str, Any] = field(default_factory=dict)


def figures_of(result: Any, fates: FrameFates | None = None, sock: int = 0) -> Figures:
    """Read the figures of socket ``sock`` (and the machine-wide drops) from a Result."""
    data = result.data if hasattr(result, "data") else result
    s = data["sockets"][sock]
    places = data["conservation"]["places"]
    pre = sum(places[k] for k in ("mac_filtered", "rx_missed_errors", "rx_oversize",
                                  "rx_dropped", "softnet_dropped"))
    total = data["latency"]["total"]
    return Figures(
        offered=data["offered"], received=data["received"], seen=s["seen"],
        seen_outgoing=s["seen_outgoing"], filtered=s["filtered"],
        rcvbuf_drops=s["rcvbuf_drops"],
        captured=s["delivered"] + s["queued"] + s["in_recvfrom"],
        rx_missed_errors=data["rx_missed_true"], softnet_dropped=data["softnet_dropped"],
        pre_filter_drops=pre, attach_errno=s["attach_errno"], p99=total["p99"],
        latency_count=int(total["count"]), sim_seconds=data["sim_seconds"],
        wall_seconds=data["wall_seconds"],
        fate=bytes(fates.fate) if fates is not None else None,
        caplen=fates.caplen.tobytes() if fates is not None else None)


@dataclass
class Losses:
    """Accepted frames lost in a run: how many, where, and whether the count is exact."""

    lost: int
    places: dict[str, int]
    exact: bool
    note: str = ""


def accepted_losses(figures: Figures, accepted: array) -> Losses:
    """How many frames the program accepts (``accepted[i]`` > 0) did not reach user space.

    Exact, from the fates: an accepted frame is lost when its fate is not
    "queued" (a run drains, so every queued frame is read).

    Estimated, from the counters alone: the socket captured ``captured``
    frames, of which up to ``seen_outgoing`` may be frames the host sent (the
    taps see them; counters do not tell which were accepted), so

        lost = accepts - captured               (a lower bound)
             <= accepts - captured + seen_outgoing.

    That follows because ring and backlog losses happen before the filter:
    accepts - (seen - filtered) is the number of accepted frames lost before
    packet_rcv (seen - filtered of them passed the filter), and rcvbuf_drops
    the accepted frames lost after it; their sum is accepts - captured.  The
    split between the places is unknown; the lower bound is what the checks use.
    """
    accepts = sum(1 for kept in accepted if kept)
    if figures.fate is not None:
        places: dict[str, int] = {}
        lost = 0
        fate = figures.fate
        for i, kept in enumerate(accepted):
            if kept and fate[i] != QUEUED:
                lost += 1
                where = LOSS_PLACES.get(fate[i], FATES[fate[i]])
                places[where] = places.get(where, 0) + 1
        return Losses(lost, places, exact=True)
    lost = max(0, accepts - figures.captured)
    note = ""
    if figures.seen_outgoing:
        note = (f"estimated from counters: between {lost} and "
                f"{min(accepts, lost + figures.seen_outgoing)} "
                f"({figures.seen_outgoing} frames sent by the host reached the socket)")
    return Losses(lost, {}, exact=not figures.seen_outgoing, note=note)
