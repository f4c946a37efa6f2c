"""What the traffic tests share: the sample captures, frame collection, memory growth."""

from __future__ import annotations

import itertools
import tracemalloc
from pathlib import Path

from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.utils import RawPcapNgReader, RawPcapReader

from lsfsim.traffic import BLOCKED
from tests.captures import REAL_TRACES

REPO = Path(__file__).resolve().parents[2]
TRACES = REPO / "traces"


def real(name: str) -> Path:
    """A real capture by its name under traces/real/ (or the larger corpus)."""
    return REAL_TRACES / name


def frames_of(source, n: int | None = None) -> list[tuple[float, bytes]]:
    out = []
    for item in itertools.islice(source.frames(), n):
        assert item is not BLOCKED
        out.append(item)
    return out


def scapy_records(path: Path) -> list[tuple[float, bytes, int]]:
    """(timestamp, data, wirelen) through scapy's reader: an independent oracle."""
    reader = RawPcapNgReader if path.suffix == ".pcapng" else RawPcapReader
    out = []
    with reader(str(path)) as r:
        for data, meta in r:
            if reader is RawPcapReader:
                ts = meta.sec + meta.usec / 1e6
            else:
                ts = ((meta.tshigh << 32) | meta.tslow) / meta.tsresol
            out.append((ts, data, meta.wirelen))
    return out


def memory_growth(items, warm: int, more: int) -> int:
    it = iter(items)
    tracemalloc.start()
    try:
        for _ in itertools.islice(it, warm):
            pass
        before = tracemalloc.get_traced_memory()[0]
        for _ in itertools.islice(it, more):
            pass
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


def recomputed_ok(frame: bytes) -> dict[str, bool]:
    """Which checksums in ``frame`` equal what scapy computes after deleting them."""
    pkt = Ether(frame)
    result = {}
    for layer in (IP, TCP, UDP, ICMP):
        if layer in pkt:
            original = pkt[layer].chksum
            clone = Ether(frame)
            del clone[layer].chksum
            result[layer.__name__] = Ether(bytes(clone))[layer].chksum == original
    return result
