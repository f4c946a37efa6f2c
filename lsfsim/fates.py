"""Where each frame ended: one record per offered frame, written as soon as it is final.

``FateTracker`` is a probe (lsfsim.probes): it follows every frame of the
traffic through the packet hooks and hands a record to its sink once the
frame's fate can no longer change, so that memory stays constant on long
runs: it holds only the frames still in flight (on the backlog, or queued on
a socket and not yet read), never the whole run.  ``FateFile`` is the sink
behind ``lsfsim run --fates FILE``: JSON lines, or CSV when the name ends in
``.csv``.

A record says where the frame ended, in the places of the result's
``conservation.places`` (each offered frame is in exactly one):

* a drop before the taps: ``mac_filtered``, ``rx_missed_errors`` (with the RX
  ring's state: host-owned descriptors of the ring's size), ``rx_length_errors``,
  ``rx_dropped``, ``softnet_dropped`` (with the backlog's length against
  ``netdev_max_backlog``);
* ``received``: it reached ``netif_receive_skb``; then, per socket whose
  packet_rcv saw it, ``filtered``, ``rcvbuf_drop`` (with ``sk_rmem_alloc``,
  the skb's truesize and ``sk_rcvbuf`` at that moment: 2.6.33 drops when
  rmem + truesize >= rcvbuf), ``delivered`` (recvfrom returned it), or, at the
  end of a run that did not drain, ``queued`` or ``in_recvfrom``;
* at the end of a run that did not drain: ``in_rx_ring``, ``in_backlog``,
  ``on_wire``.

When a frame is final:

* a drop before the taps: at the drop;
* received: when every tap registered at the time (``ptype_all``, all called in
  the one ``netif_receive_skb``) has decided and each socket that queued it has
  returned it from recvfrom.  A frame no tap saw (it came before the socket
  existed) is final when a later frame reaches the taps: frames reach
  ``netif_receive_skb`` in wire order (one RX ring, one backlog, FIFO);
* whatever is still in flight when the run ends: at ``finish``.

The times are simulated seconds: a NIC drop at the frame's DMA time (the chip
looks at a frame when its DMA would complete; the driver's drops,
``rx_length_errors`` and ``rx_dropped``, happen at its poll, later, which the
hook does not say); ``softnet_dropped`` at ``netif_rx``; ``received`` when the
driver (pre-NAPI: ``process_backlog``) handed it up; a socket's fate when
packet_rcv decided, or when recvfrom returned it.

Frames the host sends (ACKs, senders) have no wire index and no record.
"""

from __future__ import annotations

import csv
import json
from collections import deque
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any

from lsfsim.kernel.cpu import ExecContext
from lsfsim.kernel.skbuff import SkBuff
from lsfsim.probes import FrameView, SocketView

if TYPE_CHECKING:
    from lsfsim.machine import Machine

__all__ = ["NIC_PLACES", "PLACES", "SOCKET_FATES", "FateFile", "FateTracker"]

# the places of conservation.places, in path order
NIC_PLACES = ("mac_filtered", "rx_missed_errors", "rx_length_errors", "rx_dropped")
PLACES = (*NIC_PLACES, "softnet_dropped", "received", "in_rx_ring", "in_backlog", "on_wire")
SOCKET_FATES = ("filtered", "rcvbuf_drop", "delivered", "queued", "in_recvfrom")

Record = dict[str, Any]


class _Frame:
    """A frame the driver handed up and whose fate is not final yet."""

    __slots__ = ("index", "length", "t", "socks", "expected", "unread")

    def __init__(self, index: int, length: int, t: float) -> None:
        self.index = index
        self.length = length
        self.t = t                       # handed up (NAPI: polled; pre-NAPI: backlog poll)
        self.socks: list[Record] = []    # one entry per tap that decided, as it did
        self.expected = -1               # taps to hear from (ptype_all at the first verdict)
        self.unread = 0                  # sockets that queued it and have not returned it

    def record(self, place: str = "received") -> Record:
        return {"frame": self.index, "place": place, "t": self.t, "length": self.length,
                "sockets": sorted(self.socks, key=lambda s: s["sock"])}


class FateTracker:
    """A probe writing one record per offered frame to ``sink`` once it is final.

    ``sink(record)`` is called with plain dicts (see the module docstring); the
    records come in the order fates became final, not in frame order.
    """

    def __init__(self, sink: Callable[[Record], None]) -> None:
        self.sink = sink
        self.records = 0
        self._machine: Any = None
        self._taps: list[Any] = []
        self._unreceived: deque[_Frame] = deque()   # polled, not yet at netif_receive_skb
        self._by_index: dict[int, _Frame] = {}      # every frame in flight after its poll

    # --- probe protocol -------------------------------------------------------
    def attach(self, machine: Machine) -> None:
        """Keep what the records read: the taps, the ring, the backlog's limit."""
        self._machine = machine
        self._taps = machine.net.ptype_all
        self._max_backlog = machine.model.kernel.netdev_max_backlog

    def finish(self) -> None:
        """The run is over: what is still in flight gets the place it is in."""
        machine = self._machine
        dev = machine.dev
        pending: list[Record] = []
        on_backlog = {skb.id for cpu in machine.cpus for skb in cpu.softnet.input_pkt_queue}
        for frame in self._unreceived:               # pre-NAPI: on the backlog, or no tap
            self._by_index.pop(frame.index, None)
            pending.append(frame.record("in_backlog" if frame.index in on_backlog
                                        else "received"))
        self._unreceived.clear()
        waiting = {(skb.id, sock.index) for sock in machine.net.sockets
                   for skb in sock.sk_receive_queue if skb.id >= 0}
        for frame in self._by_index.values():        # queued on a socket, not read
            for entry in frame.socks:
                if entry["fate"] == "queued" and (frame.index, entry["sock"]) not in waiting:
                    entry["fate"] = "in_recvfrom"   # dequeued, recvfrom not returned
            pending.append(frame.record())
        self._by_index.clear()
        for own, wire_frame in zip(dev.rx_own, dev.rx_frame, strict=True):
            if not own and wire_frame is not None:     # DMA done, not polled
                pending.append(self._bare(wire_frame, "in_rx_ring", wire_frame.t_dma))
        in_flight = getattr(dev, "_next", None)      # left the wire, DMA not done
        if in_flight is not None:
            pending.append(self._bare(in_flight, "on_wire", in_flight.t_end))
        for record in sorted(pending, key=lambda r: r["frame"]):
            self._emit(record)

    # --- hooks ------------------------------------------------------------------
    def nic_dropped(self, frame: FrameView, place: str) -> None:
        dev = self._machine.dev
        record = self._bare(frame, place, frame.t_dma)
        record["ring_host_owned"] = dev.rx_ring_host_owned()
        record["ring_size"] = dev.rx_ring_size
        self._emit(record)

    def polled(self, ctx: ExecContext, skb: SkBuff) -> None:
        if skb.id < 0:
            return
        # frames handed up before this one and no longer on the backlog have been through
        # netif_receive_skb (NAPI: at once); those no tap saw are final now
        upto = skb.id
        backlog = ctx.cpu.softnet.input_pkt_queue
        if backlog and backlog[0].id < upto:
            upto = backlog[0].id
        self._passed(upto)
        frame = _Frame(skb.id, len(skb.data), skb.t_poll)
        self._unreceived.append(frame)
        self._by_index[frame.index] = frame

    def softnet_dropped(self, ctx: ExecContext, skb: SkBuff) -> None:
        frame = self._by_index.pop(skb.id, None)
        if frame is None:
            return
        if self._unreceived and self._unreceived[-1] is frame:
            self._unreceived.pop()                   # netif_rx runs right after the poll
        else:
            self._unreceived.remove(frame)
        record = frame.record("softnet_dropped")
        record["t"] = ctx.t
        record["backlog_len"] = len(ctx.cpu.softnet.input_pkt_queue)
        record["netdev_max_backlog"] = self._max_backlog
        self._emit(record)

    def verdict(self, ctx: ExecContext, sock: SocketView, skb: SkBuff, outcome: str,
                snaplen: int) -> None:
        index = skb.id
        if index < 0:
            return
        frame = self._by_index.get(index)
        if frame is None:
            return
        if frame.expected < 0:                       # the first tap of its netif_receive_skb
            self._received(frame)
            frame.t = skb.t_poll                     # pre-NAPI: process_backlog took it
            frame.expected = len(self._taps)
        entry: Record = {"sock": sock.index, "fate": outcome, "t": ctx.t}
        if outcome == "queued":
            entry["snaplen"] = snaplen
            frame.unread += 1
        elif outcome == "rcvbuf_drop":
            s: Any = sock
            entry["rmem_alloc"] = s.sk_rmem_alloc
            entry["truesize"] = skb.truesize
            entry["rcvbuf"] = s.sk_rcvbuf
        frame.socks.append(entry)
        self._maybe_final(frame)

    def recvfrom_returned(self, sock: SocketView, skb: SkBuff, copied: int, t: float) -> None:
        frame = self._by_index.get(skb.id) if skb.id >= 0 else None
        if frame is None:
            return
        for entry in frame.socks:
            if entry["sock"] == sock.index and entry["fate"] == "queued":
                entry["fate"] = "delivered"
                entry["t"] = t
                entry["copied"] = copied
                frame.unread -= 1
                break
        self._maybe_final(frame)

    # --- helpers ----------------------------------------------------------------
    def _received(self, frame: _Frame) -> None:
        """``frame`` reached the taps: frames polled before it reached them too."""
        self._passed(frame.index)
        queue = self._unreceived
        if queue and queue[0] is frame:
            queue.popleft()

    def _passed(self, upto: int) -> None:
        """Frames polled before frame ``upto`` went through netif_receive_skb (frames reach
        it in wire order); those still waiting for a first verdict met no tap: final."""
        queue = self._unreceived
        while queue and queue[0].index < upto:
            early = queue.popleft()
            early.expected = 0
            self._maybe_final(early)

    def _maybe_final(self, frame: _Frame) -> None:
        if frame.unread == 0 and 0 <= frame.expected <= len(frame.socks):
            del self._by_index[frame.index]
            self._emit(frame.record())

    @staticmethod
    def _bare(frame: FrameView, place: str, t: float) -> Record:
        return {"frame": frame.index, "place": place, "t": t, "length": len(frame.data),
                "sockets": []}

    def _emit(self, record: Record) -> None:
        self.records += 1
        self.sink(record)


# --- the file -------------------------------------------------------------------------
DROP_FIELDS = ("ring_host_owned", "ring_size", "backlog_len", "netdev_max_backlog")
SOCKET_FIELDS = ("fate", "t", "snaplen", "copied", "rmem_alloc", "truesize", "rcvbuf")


class FateFile:
    """A FateTracker sink writing to an open text file: JSON lines, or CSV (``csv=True``,
    one row per frame, a group of ``sockN_*`` columns per socket; empty cells where a
    field does not apply)."""

    def __init__(self, fp: IO[str], csv_format: bool = False, sockets: int = 1) -> None:
        self.fp = fp
        self.writer: Any = None
        self._encode = json.JSONEncoder(separators=(",", ":")).encode
        if csv_format:
            fields = ["frame", "place", "t", "length", *DROP_FIELDS]
            fields += [f"sock{i}_{f}" for i in range(sockets) for f in SOCKET_FIELDS]
            self.writer = csv.DictWriter(fp, fields, lineterminator="\n")
            self.writer.writeheader()

    def __call__(self, record: Record) -> None:
        if self.writer is None:
            self.fp.write(self._encode(record) + "\n")
            return
        row = {k: v for k, v in record.items() if k != "sockets"}
        for entry in record["sockets"]:
            i = entry["sock"]
            row.update({f"sock{i}_{k}": v for k, v in entry.items() if k != "sock"})
        self.writer.writerow(row)
