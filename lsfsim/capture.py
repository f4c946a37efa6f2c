"""Capture files: what a capture program's recvfrom returned, as ``tcpdump -w`` writes it.

``CaptureWriter`` is a probe (lsfsim.probes).  On each ``recvfrom_returned``
of a socket it writes, it appends one pcap record (LINKTYPE_ETHERNET, the
socket's snaplen in the file header), in the order recvfrom returned them:

* caplen   = the bytes recvfrom copied: the skb's length after packet_rcv cut
  it to min(filter verdict, skb->len) (pskb_trim), and at most the reader's
  buffer;
* orig_len = the frame's length as packet_rcv saw it (skb->len with the MAC
  header, without the FCS: PACKET_SKB_CB(skb)->origlen, PACKET_AUXDATA's tp_len);
* ts       = skb->tstamp, set by net_timestamp in netif_receive_skb (netif_rx
  for the pre-NAPI driver, dev_queue_xmit_nit for outgoing frames), as
  SIOCGSTAMP returns it -- on the traffic's clock: a replayed capture's own
  clock (its first replayed record's timestamp at simulated time 0), 0 for
  generated traffic.

Frames the socket dropped (tp_drops) never reach recvfrom, so are not written.
Records are streamed as they come: the hook notes the skb, every ``BATCH``
records are packed and written in one call, the file is flushed every
``FLUSH_EVERY``; memory stays constant however long the run.  A
regular file appears whole at the end; on Ctrl-C it is kept with the records
written so far (``open_output(keep_partial=True)``).  A FIFO is written
through.  See docs/capture.md.
"""

from __future__ import annotations

import contextlib
import math
import os
import struct
from types import TracebackType
from typing import Any

from lsfsim.outputs import OutputError, check_output
from lsfsim.pcapio import LINKTYPE_ETHERNET, RECORD_HEADER, PcapWriter
from lsfsim.probes import SocketView

#: The placeholder of a capture file's name replaced by the socket's number.
SOCKET_FIELD = "{socket}"
#: Records between two flushes: a reader of a FIFO sees packets as the run goes.
FLUSH_EVERY = 1024
#: Records packed before they are handed to the file object in one write.
BATCH = 256
_pack = RECORD_HEADER.pack
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


class _SocketFile:
    """One socket's file and the packets recvfrom returned since the last write."""

    __slots__ = ("index", "path", "writer", "snaplen", "pending", "copied", "count", "base",
                 "frac")

    def __init__(self, index: int, path: str, writer: PcapWriter, snaplen: int) -> None:
        self.index = index
        self.path = path
        self.writer = writer
        self.snaplen = snaplen
        # the skbs recvfrom returned and the bytes it copied of each, not yet written (two
        # lists, not a list of pairs: no object allocated per packet, none for the GC)
        self.pending: list[Any] = []
        self.copied: list[int] = []
        self.count = 0                      # records written (handed to the file)
        self.base = 0       # whole seconds of the traffic clock at simulated time 0
        self.frac = 0.0     # ... and the rest

    def write_batch(self, flush_every: int) -> None:
        """Pack the pending records and hand them to the file in one write; flush the
        file every ``flush_every`` records."""
        pending = self.pending
        if not pending:
            return
        try:
            parts = self._packed()
        except struct.error:                      # a replay's clock past 2106
            raise OutputError(f"-w: {self.path}: a timestamp does not fit a pcap record "
                              f"header (32-bit seconds)") from None
        n = len(pending)
        try:
            self.writer.write_packed(b"".join(parts), n)
            pending.clear()
            self.copied.clear()
            before = self.count
            self.count += n
            if before // flush_every != self.count // flush_every:
                self.writer.flush()
        except OSError as exc:
            raise self.error(exc) from exc

    def _packed(self) -> list[bytes]:
        """Each pending record packed: its header, then the bytes recvfrom copied."""
        base, frac, snaplen = self.base, self.frac, self.snaplen
        parts: list[bytes] = []
        append = parts.append
        for skb, copied in zip(self.pending, self.copied, strict=True):
            # skb->tstamp on the traffic's clock, in microseconds (rounded to the nearest),
            # split into whole seconds and the rest
            usec = int((frac + skb.tstamp) * 1e6 + 0.5)
            sec = usec // 1_000_000
            data = skb.data
            if copied > snaplen:              # libpcap cuts at its snapshot length too
                copied = snaplen
            append(_pack(base + sec, usec - sec * 1_000_000, copied, len(data)))
            append(data[:copied])
        return parts

    def flush(self) -> None:
        """Write what is pending and flush the file."""
        self.write_batch(1 << 62)
        try:
            self.writer.flush()
        except OSError as exc:
            raise self.error(exc) from exc

    def error(self, exc: OSError) -> OutputError:
        """A failed write, as one line naming the file."""
        return OutputError(f"-w: {self.path}: {exc.strerror or exc}")


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
        self.files: dict[int, _SocketFile] = {}
        self._machine: Any = None
        self._by_sock: dict[object, _SocketFile | None] = {}   # socket -> its file, or None
        self._closed = False

    @property
    def counts(self) -> dict[int, int]:
        """Records written so far per socket (after close: those in the file)."""
        counts = dict.fromkeys(self.paths, 0)
        counts.update((i, f.count + len(f.pending)) for i, f in self.files.items())
        return counts

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
            snaplen = specs[index].snaplen
            writer = PcapWriter(path, LINKTYPE_ETHERNET, snaplen=snaplen, keep_partial=True)
            self.files[index] = _SocketFile(index, path, writer, snaplen)

    def finish(self) -> None:
        """The run is over: flush and close every file (a regular file appears now)."""
        self.close()

    def close(self, exc: tuple[Any, Any, Any] | None = None) -> None:
        """Write what is batched and close every file; ``exc`` (an exception's triple)
        passes the run's error on, so that open_output keeps (Ctrl-C: every record
        written is whole) or removes (anything else) what was written."""
        if self._closed:
            return
        self._closed = True
        with contextlib.ExitStack() as stack:      # every file is closed, whatever fails
            for f in self.files.values():
                stack.callback(self._close_one, f, exc)

    @staticmethod
    def _close_one(f: _SocketFile, exc: tuple[Any, Any, Any] | None) -> None:
        """Write what is pending (unless the run failed) and close; a write that fails
        here is the file's error (a regular file is then not renamed into place)."""
        try:
            try:
                if exc is None or exc[0] is KeyboardInterrupt:
                    f.flush()
            except BaseException as error:
                exc = (type(error), error, error.__traceback__)
                raise
            finally:
                f.pending.clear()
                f.copied.clear()
                if exc is None:
                    f.writer.close()
                else:
                    f.writer.__exit__(*exc)
        except OSError as error:
            if isinstance(error, OutputError):
                raise
            raise f.error(error) from error

    def __enter__(self) -> CaptureWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close(None if exc_type is None else (exc_type, exc, tb))

    # --- the hook ---------------------------------------------------------------
    def _file_of(self, sock: object) -> _SocketFile | None:
        """The file of a socket seen for the first time (capture program i's socket)."""
        found: _SocketFile | None = None
        for app in self._machine.apps:
            if app.sock is sock and app.index in self.files:
                found = self.files[app.index]
        self._by_sock[sock] = found
        if found is not None:
            # the traffic clock at simulated time 0: known once the first frame was pulled
            origin = float(getattr(self._machine.source, "clock_origin", 0.0))
            found.base = math.floor(origin)
            found.frac = origin - found.base
        return found

    def recvfrom_returned(self, sock: SocketView, skb: Any, copied: int, t: float) -> None:
        """recvfrom returned ``skb`` with ``copied`` bytes: one record, batched."""
        f = self._by_sock.get(sock, _UNSEEN)
        if f is _UNSEEN:
            f = self._file_of(sock)
        if f is None:
            return
        pending = f.pending
        pending.append(skb)
        f.copied.append(copied)
        if len(pending) >= BATCH:
            f.write_batch(self.flush_every)
