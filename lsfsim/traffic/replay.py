"""Replay a pcap/pcapng capture as a traffic source, streaming."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from lsfsim.pcapio import LINKTYPE_ETHERNET, PcapError, count_records, iter_pcap
from lsfsim.traffic.base import FrameOrBlocked, TrafficSource

TIMINGS: Final = ("original", "scaled", "asap")

#: The longest frame (without FCS) a 1500-byte-MTU Ethernet carries: 1514 bytes plus
#: an 802.1Q tag.  Longer records were made on the capturing host -- GRO merged
#: received segments, TSO captured before segmentation (wirelen up to 262144) --
#: and were never on a wire in one piece, so they are not replayed (see
#: docs/model.md).
MAX_WIRE_FRAME: Final = 1518


def _records(n: int) -> str:
    return f"{n:,} record" + ("" if n == 1 else "s")


class PcapReplay(TrafficSource):
    """Frames of an Ethernet capture, in file order.

    ``timing``:
      * ``"original"``: each frame wants to start at its timestamp minus the first
        record's (``speed`` is ignored);
      * ``"scaled"``: the same divided by ``speed`` (2.0 = twice as fast);
      * ``"asap"``: every frame at time 0 -- the wire serialises them back to back,
        i.e. as fast as the link allows.

    Timestamps that go backwards in the file (it happens in real captures) are
    clamped to the previous frame's time, since the wire needs non-decreasing
    times.  Records longer than ``MAX_WIRE_FRAME`` (GRO/TSO captures) are skipped:
    such a frame cannot be on a 1500-MTU wire, so it never reaches the NIC.  What
    the first pass over the file found odd is counted (``replay_counts``) and
    said once each (``replay_warnings``).  ``loop`` plays the file that many times
    (0 = forever); each pass starts where the previous one ended (same relative
    times, shifted by the
    previous passes' span).  Frames captured with a snaplen (caplen < wirelen) are
    padded with zero bytes to their wire length: the simulated NIC receives the
    whole frame, of which only the captured part is real.
    """

    def __init__(
        self,
        path: str | Path,
        timing: str = "original",
        speed: float = 1.0,
        loop: int = 1,
        start: float = 0.0,
        name: str | None = None,
    ) -> None:
        self.path = Path(path)
        if timing not in TIMINGS:
            raise ValueError(f"timing: {timing!r} is not one of {', '.join(TIMINGS)}")
        speed = float(speed)
        if not (speed > 0 and math.isfinite(speed)):
            raise ValueError(f"speed: must be a positive number, not {speed}")
        if isinstance(loop, bool) or int(loop) != loop or loop < 0:
            raise ValueError(f"loop: must be an integer >= 0 (0 = forever), not {loop!r}")
        self.timing, self.speed, self.loop = timing, speed, int(loop)
        self.start = float(start)
        self.name = name or self.path.name
        if self.path.is_dir():
            raise IsADirectoryError(f"{self.path}: is a directory, not a capture file")
        if not self.path.exists():
            raise FileNotFoundError(f"{self.path}: no such capture file")
        if not self.path.is_file():
            # a FIFO or device cannot be read twice (counted, then replayed)
            raise OSError(f"{self.path}: not a regular file")
        # Fail early, at construction, on a file that is not an Ethernet capture.
        for rec in iter_pcap(self.path):
            self._check_linktype(rec.linktype, 0)
            break
        self._total: int | None = None
        self.records = 0            # records read in the first pass
        self.oversize = 0           # ... longer than MAX_WIRE_FRAME: not replayed
        self.caplen_over_wirelen = 0
        self.backwards = 0          # ... with a timestamp before the previous record's
        self._passes_done = 0
        #: The capture's clock at simulated time 0: the first replayed record's timestamp
        #: less ``start``, so that ``clock_origin + t`` dates simulated time ``t`` on the
        #: replay's own clock (known once the first frame has been pulled; 0 before).
        self.clock_origin = 0.0

    def _check_linktype(self, linktype: int, index: int) -> None:
        if linktype != LINKTYPE_ETHERNET:
            raise PcapError(
                f"{self.path}: record {index}: linktype {linktype} is not Ethernet "
                f"(LINKTYPE_ETHERNET = {LINKTYPE_ETHERNET}); only Ethernet captures can be replayed"
            )

    @property
    def total_frames(self) -> int | None:  # type: ignore[override]
        """Records x loops; counting reads the file once (streaming), then is cached."""
        if self.loop == 0:
            return None
        if self._total is None:
            self._total = count_records(self.path)
        return self._total * self.loop

    def describe(self) -> str:
        speed = f" x{self.speed:g}" if self.timing == "scaled" else ""
        loops = "forever" if self.loop == 0 else f"{self.loop}x"
        return f"replay {self.path.name} ({self.timing}{speed}, {loops})"

    def replay_counts(self) -> dict[str, int]:
        """What the first pass over the file found (for the JSON's ``replay``)."""
        return {"records": self.records, "skipped_oversize": self.oversize,
                "caplen_over_wirelen": self.caplen_over_wirelen,
                "ts_backwards": self.backwards}

    def replay_warnings(self) -> list[str]:
        """One line per oddity of the capture, with its count."""
        name, out = self.path.name, []
        if self._passes_done and not self.records:
            out.append(f"{name}: the capture holds no records: nothing was replayed")
        if self.oversize:
            out.append(f"{name}: {self.oversize:,} of {self.records:,} records are longer "
                       f"than an Ethernet frame ({MAX_WIRE_FRAME} bytes without FCS; GRO or "
                       f"TSO made them on the capturing host): not replayed, they never "
                       f"reach the NIC")
        if self.caplen_over_wirelen:
            out.append(f"{name}: {_records(self.caplen_over_wirelen)} with caplen > wirelen "
                       f"(a damaged capture?): replayed with the bytes captured")
        if self.backwards:
            out.append(f"{name}: {_records(self.backwards)} with a timestamp before the "
                       f"previous record's: replayed at the previous record's time")
        return out

    def frames(self) -> Iterator[FrameOrBlocked]:
        divisor = self.speed if self.timing == "scaled" else 1.0
        asap = self.timing == "asap"
        offset = self.start
        passes = 0
        while self.loop == 0 or passes < self.loop:
            first = passes == 0
            first_ts: float | None = None
            prev = offset
            prev_ts = -math.inf
            empty = True
            for n, rec in enumerate(iter_pcap(self.path)):
                empty = False
                if rec.linktype != LINKTYPE_ETHERNET:
                    self._check_linktype(rec.linktype, n)
                data = rec.data
                if first:
                    self.records += 1
                    if len(data) > rec.wirelen:
                        self.caplen_over_wirelen += 1
                    if rec.ts < prev_ts:
                        self.backwards += 1
                    prev_ts = rec.ts
                if max(rec.wirelen, len(data)) > MAX_WIRE_FRAME:
                    if first:
                        self.oversize += 1
                    continue
                if len(data) < rec.wirelen:
                    data = data + bytes(rec.wirelen - len(data))
                if first_ts is None:
                    first_ts = rec.ts
                    if first:
                        self.clock_origin = first_ts - self.start
                if asap:
                    t = offset
                else:
                    t = offset + (rec.ts - first_ts) / divisor
                    if t < prev:
                        t = prev
                prev = t
                yield (t, data)
            if first:
                self._passes_done = 1
            if empty:
                return  # nothing to loop over
            offset = prev
            passes += 1
