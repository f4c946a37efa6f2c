"""Capture files: what a capture program's recvfrom returned, as ``tcpdump -w`` writes it.

``CaptureWriter`` is a probe (lsfsim.probes).  On each ``recvfrom_returned``
of a socket it writes, it appends one pcap record (LINKTYPE_ETHERNET, the
socket's snaplen in the file header), in the order recvfrom returned them:

* caplen   = the bytes recvfrom copied: the skb's length after packet_rcv cut
  it to min(filter verdict, skb->len) (pskb_trim), and at most the reader's
  buffer;
* orig_len = the frame's length as packet_rcv saw it (skb->len with the MAC
  header, without the FCS), which recvfrom's MSG_TRUNC gives a reader;
* ts       = skb->tstamp, set by net_timestamp in netif_receive_skb (netif_rx
  for the pre-NAPI driver, dev_queue_xmit_nit for outgoing frames), as
  SIOCGSTAMP returns it -- on the traffic's clock: a replayed capture's own
  clock (its first replayed record's timestamp at simulated time 0), 0 for
  generated traffic.

Frames the socket dropped (tp_drops) never reach recvfrom, so are not written.
Records are streamed as they come (the file object's buffer, flushed every
``FLUSH_EVERY`` records), so memory stays constant however long the run.  A
regular file appears whole at the end; on Ctrl-C it is kept with the records
written so far (``open_output(keep_partial=True)``).  A FIFO is written
through.  See docs/capture.md.
"""

from __future__ import annotations

import math
import os
from types import TracebackType
from typing import Any

from lsfsim.outputs import check_output
from lsfsim.pcapio import LINKTYPE_ETHERNET, PcapWriter
from lsfsim.probes import SocketView

#: The placeholder of a capture file's name replaced by the socket's number.
SOCKET_FIELD = "{socket}"
#: Records between two flushes: a reader of a FIFO sees packets as the run goes.
FLUSH_EVERY = 1024
_UNSEEN: Any = object()


def capture_paths(template: str, sockets: int) -> dict[int, str]:
    """The file of each socket a ``-w`` name writes: ``{socket}`` in the name gives one
    file per socket (its number in place of the field); without it, socket 0 only."""
    if sockets < 1:
        raise ValueError("the scenario has no capture socket to write")
    if SOCKET_FIELD in template:
        return {i: template.replace(SOCKET_FIELD, str(i)) for i in range(sockets)}
    return {0: template}


def check_capture_paths(paths: dict[int, str], what: str = "-w") -> None:
    """check_output on each file (before a run), and no two sockets writing one file."""
    seen: dict[str, int] = {}
    for index, path in paths.items():
        check_output(path, what)
        key = os.path.realpath(path) if path != "-" else path
        if key in seen:
            raise ValueError(f"sockets {seen[key]} and {index} would both write {path}")
        seen[key] = index


class CaptureWriter:
    """Probe writing socket ``i``'s received packets to ``paths[i]`` (a pcap file each).

    Use it as a context manager around the run, so that an interrupted run
    still closes (and keeps) its files::

        with CaptureWriter({0: "out.pcap"}) as capture:
            Machine(model, scenario, probes=[capture]).run()
    """

    def __init__(self, paths: dict[int, str], flush_every: int = FLUSH_EVERY) -> None:
        self.paths = dict(paths)
        self.flush_every = flush_every
        self.writers: dict[int, PcapWriter] = {}
        self.counts: dict[int, int] = dict.fromkeys(self.paths, 0)
        self._machine: Any = None
        self._by_sock: dict[int, tuple[PcapWriter, int] | None] = {}   # id(sock) -> writer
        self._base = 0          # whole seconds of the traffic clock at simulated time 0
        self._frac = 0.0        # ... and the rest
        self._clock_known = False
        self._pending = 0       # records since the last flush
        self._closed = False

    # --- the probe's life ------------------------------------------------------
    def attach(self, machine: Any) -> None:
        """Open every file (a FIFO waits here for its reader) and write its header."""
        specs = machine.scenario.sockets
        for index in self.paths:
            if index >= len(specs):
                raise ValueError(f"-w: socket {index} does not exist "
                                 f"(the scenario has {len(specs)})")
        self._machine = machine
        for index, path in sorted(self.paths.items()):
            self.writers[index] = PcapWriter(path, LINKTYPE_ETHERNET,
                                             snaplen=specs[index].snaplen, keep_partial=True)

    def finish(self) -> None:
        """The run is over: flush and close every file (a regular file appears now)."""
        self.close()

    def close(self, exc: tuple[Any, Any, Any] | None = None) -> None:
        """Close every file; ``exc`` (an exception's triple) passes the run's error on, so
        that open_output keeps (Ctrl-C) or removes (anything else) what was written."""
        if self._closed:
            return
        self._closed = True
        for writer in self.writers.values():
            if exc is None:
                writer.close()
            else:
                writer.__exit__(*exc)

    def __enter__(self) -> CaptureWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close(None if exc_type is None else (exc_type, exc, tb))

    # --- the hook ---------------------------------------------------------------
    def _writer_of(self, sock: SocketView) -> tuple[PcapWriter, int] | None:
        """The file of a socket seen for the first time (capture program i's socket)."""
        found = None
        for app in self._machine.apps:
            if app.sock is sock and app.index in self.writers:
                found = (self.writers[app.index], app.index)
        self._by_sock[id(sock)] = found
        return found

    def _set_clock(self) -> None:
        """The traffic clock at simulated time 0: known once the first frame was pulled."""
        origin = float(getattr(self._machine.source, "clock_origin", 0.0))
        self._base = math.floor(origin)
        self._frac = origin - self._base
        self._clock_known = True

    def recvfrom_returned(self, sock: SocketView, skb: Any, copied: int, t: float) -> None:
        """recvfrom returned ``skb`` with ``copied`` bytes: one record."""
        entry = self._by_sock.get(id(sock), _UNSEEN)
        if entry is _UNSEEN:
            entry = self._writer_of(sock)
        if entry is None:
            return
        if not self._clock_known:
            self._set_clock()
        writer, index = entry
        data = skb.data
        writer.write(data[:copied], self._frac + skb.tstamp, len(data), self._base)
        self.counts[index] += 1
        self._pending += 1
        if self._pending >= self.flush_every:
            self._pending = 0
            for w in self.writers.values():
                w.flush()
