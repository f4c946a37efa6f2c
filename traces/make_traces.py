#!/usr/bin/env python3
"""Write the small, deterministic sample captures of this folder.

    python traces/make_traces.py [output-dir]

Every byte is a function of the code and the seeds below: running it again
rewrites identical files.  Timestamps count from 2010-04-01 00:00:00 UTC (the
days of Linux 2.6.33.2).  See README.md for what each file holds.
"""

from __future__ import annotations

import heapq
import itertools
import sys
from collections.abc import Iterable, Iterator
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a source checkout

from lsfsim.pcapio import PcapWriter  # noqa: E402
from lsfsim.traffic import (  # noqa: E402
    BLOCKED,
    ConstantRate,
    NcTransfer,
    OnOff,
    Poisson,
    TrafficSource,
    build_ack,
)

EPOCH = 1270080000  # 2010-04-01T00:00:00Z
LINK_BPS = 100e6  # a 100 Mbit/s link (pcnet32 PCnet-FAST)
WIRE_OVERHEAD = 4 + 8 + 12  # FCS, preamble + SFD, inter-frame gap
HOST_ACK_DELAY = 15e-6  # from the end of a segment's reception to the ACK on the wire
HOST_TS0 = 426898440  # the host's TCP timestamp clock at t = 0 (1 kHz)
MIX = "udp:5,tcp:3,icmp:1,arp:1,ipv6:1,vlan-udp:1"
SMALL_SIZES = "60:7,128:3,256:2"  # small frames keep the files small


def wire_time(frame: bytes) -> float:
    return (len(frame) + WIRE_OVERHEAD) * 8 / LINK_BPS


def serialise(source: TrafficSource, n: int) -> Iterator[tuple[float, bytes]]:
    """(end of reception, frame) for the first ``n`` frames of an open-loop source."""
    free = 0.0
    for item in itertools.islice(source.frames(), n):
        assert item is not BLOCKED
        t, frame = item
        free = max(t, free) + wire_time(frame)
        yield free, frame


def nc_head(n: int) -> list[tuple[float, bytes]]:
    """The first ``n`` frames, both directions, of the nc transfer on a 100 Mbit/s
    full-duplex link, the host ACKing every segment ``HOST_ACK_DELAY`` after it arrives."""
    src = NcTransfer(seed=0)
    frames = src.frames()
    out: list[tuple[float, bytes]] = []
    acks: list[tuple[float, int, bytes]] = []  # pending host transmissions (heap)
    free = 0.0
    ip_id = itertools.count(0x4000)
    while len(out) < n + 8:  # a few more, so no ACK due before the n-th frame is missing
        while acks and acks[0][0] <= free:
            t, _, ack = heapq.heappop(acks)
            src.on_transmit(t, ack)
            out.append((t, ack))
        item = next(frames, None)
        if item is None:
            break
        if item is BLOCKED:
            t, _, ack = heapq.heappop(acks)  # the window reopens with the next ACK
            src.on_transmit(t, ack)
            out.append((t, ack))
            continue
        t, frame = item
        free = max(t, free) + wire_time(frame)
        out.append((free, frame))
        reply = build_ack(frame, ip_id=next(ip_id), tsval=HOST_TS0 + int(free * 1000))
        if reply is not None:
            i = len(out)
            heapq.heappush(acks, (free + HOST_ACK_DELAY, i, reply))
    out.sort(key=lambda r: r[0])
    return out[:n]


def write_pcap(path: Path, records: Iterable[tuple[float, bytes]], snaplen: int = 262144) -> int:
    with PcapWriter(path, snaplen=snaplen) as w:
        for t, frame in records:
            # Round to the microsecond grid first: EPOCH + t in a double is only good
            # to 0.24 us, which would let the writer's rounding decide the last digit.
            w.write(frame, EPOCH + round(t * 1e6) / 1e6)
        return w.count


def write_pcapng(path: Path, records: Iterable[tuple[float, bytes]]) -> int:
    from scapy.utils import PcapNgWriter

    w = PcapNgWriter(str(path))
    w.linktype = 1  # Ethernet
    w.write_header(None)
    n = 0
    for t, frame in records:
        # Decimal: exact microseconds (the writer multiplies by 10**6 and truncates).
        w.write_packet(frame, sec=Decimal(EPOCH) + Decimal(round(t * 1e6)) / Decimal(10**6))
        n += 1
    w.close()
    return n


def main(argv: list[str]) -> int:
    outdir = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parent
    outdir.mkdir(parents=True, exist_ok=True)
    made: dict[str, int] = {}

    made["lecture-nc-head.pcap"] = write_pcap(
        outdir / "lecture-nc-head.pcap", nc_head(200), snaplen=96
    )
    mixed = Poisson(
        10_000,
        size=SMALL_SIZES,
        proto=MIX,
        hosts=4,
        broadcast_fraction=0.05,
        other_fraction=0.05,
        count=500,
        seed=1,
    )
    made["mixed.pcap"] = write_pcap(outdir / "mixed.pcap", serialise(mixed, 500))

    vlan_sources = [
        ConstantRate(
            2_000, size="uniform(60,128)", proto="vlan-udp", vlan_id=100, count=50, seed=2
        ),
        Poisson(2_000, size="uniform(60,128)", proto="vlan-udp", vlan_id=200, count=50, seed=3),
        OnOff(5_000, on=0.002, off=0.008, size=60, proto="udp:1,arp:1", count=20, seed=4),
    ]
    streams = [
        ((t, i, f) for t, f in (x for x in s.frames() if x is not BLOCKED))
        for i, s in enumerate(vlan_sources)
    ]
    merged = ((t, f) for t, _, f in heapq.merge(*streams))
    made["vlan.pcap"] = write_pcap(outdir / "vlan.pcap", serialise_times(merged))

    mixed_ng = Poisson(
        5_000, size=SMALL_SIZES, proto=MIX, hosts=3, broadcast_fraction=0.1, count=100, seed=5
    )
    made["mixed.pcapng"] = write_pcapng(outdir / "mixed.pcapng", serialise(mixed_ng, 100))

    for name, count in made.items():
        print(f"{outdir / name}: {count} frames, {(outdir / name).stat().st_size} bytes")
    return 0


def serialise_times(items: Iterable[tuple[float, bytes]]) -> Iterator[tuple[float, bytes]]:
    """The wire's serialisation for an already merged (time, frame) stream."""
    free = 0.0
    for t, frame in items:
        free = max(t, free) + wire_time(frame)
        yield free, frame


if __name__ == "__main__":
    sys.exit(main(sys.argv))
