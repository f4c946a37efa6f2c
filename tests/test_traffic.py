"""Traffic sources: timing, content, determinism, replay, the nc transfer.

Oracles: hand calculation (rates, gaps, header sizes, sequence arithmetic),
scapy (protocol parsing and checksum recomputation, an independent pcap
reader), a bit-by-bit RFC 1071 checksum written here, and the tcpdump binary.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import shutil
import statistics
import struct
import subprocess
import sys
import tracemalloc
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lsfsim.pcapio import PcapError, PcapWriter
from lsfsim.traffic import (
    BLOCKED,
    IMIX,
    PROTOCOLS,
    ConstantRate,
    NcTransfer,
    OnOff,
    PcapReplay,
    Poisson,
    build_ack,
    min_frame_size,
    parse_mix,
    parse_size,
)
from lsfsim.traffic.frames import csum_add, inet_checksum
from tests.captures import REAL_TRACES

REPO = Path(__file__).resolve().parents[1]
TRACES = REPO / "traces"

scapy_l2 = pytest.importorskip("scapy.layers.l2")
from scapy.layers.inet import ICMP, IP, TCP, UDP  # noqa: E402
from scapy.layers.inet6 import IPv6  # noqa: E402
from scapy.layers.l2 import ARP, Dot1Q, Ether  # noqa: E402
from scapy.utils import RawPcapNgReader, RawPcapReader  # noqa: E402


def real(name: str) -> Path:
    """A real capture by its name under traces/real/ (or the larger corpus)."""
    return REAL_TRACES / name


def frames_of(source, n: int | None = None) -> list[tuple[float, bytes]]:
    out = []
    for item in itertools.islice(source.frames(), n):
        assert item is not BLOCKED
        out.append(item)
    return out


# -- checksums ---------------------------------------------------------------------------


def rfc1071(data: bytes) -> int:
    """The textbook algorithm: 32-bit accumulator, fold, complement."""
    if len(data) % 2:
        data += b"\0"
    total = 0
    for i in range(0, len(data), 2):
        total += (data[i] << 8) | data[i + 1]
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


@given(st.binary(max_size=200))
def test_inet_checksum_matches_rfc1071(data: bytes) -> None:
    assert inet_checksum(data) == rfc1071(data)


def test_checksum_edge_cases() -> None:
    assert inet_checksum(b"\xff\xff") == rfc1071(b"\xff\xff") == 0
    assert inet_checksum(b"\x00\x00") == 0xFFFF
    assert csum_add(b"\xff\xff\x00\x01") == 1  # 0xffff + 1 wraps to 1


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


# -- timing ------------------------------------------------------------------------------


def test_cbr_times_are_i_over_rate() -> None:
    src = ConstantRate(1000, size=100, count=500, start=0.25)
    times = [t for t, _ in frames_of(src)]
    assert len(times) == 500 == src.total_frames
    assert times == [0.25 + i / 1000 for i in range(500)]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert max(abs(g - 1e-3) for g in gaps) < 1e-12


def test_cbr_duration_and_count_stop_whichever_first() -> None:
    # i / 1000 < 0.05  <=>  i <= 49: 50 frames.
    assert len(frames_of(ConstantRate(1000, duration=0.05))) == 50
    assert ConstantRate(1000, duration=0.05).total_frames == 50
    assert len(frames_of(ConstantRate(1000, duration=0.05, count=20))) == 20
    assert len(frames_of(ConstantRate(1000, duration=0.0205, count=50))) == 21
    assert ConstantRate(1000, duration=0.0205, count=50).total_frames == 21


def test_poisson_mean_rate_and_exponential_gaps() -> None:
    rate, n = 10_000.0, 10_000
    times = [t for t, _ in frames_of(Poisson(rate, size=60, count=n, seed=7))]
    assert len(times) == n
    gaps = [times[0]] + [b - a for a, b in itertools.pairwise(times)]
    mean = statistics.fmean(gaps)
    # The mean of n exponential gaps has a relative standard deviation of 1/sqrt(n) = 1%.
    assert abs(mean * rate - 1) < 0.04
    # Exponential: coefficient of variation 1, P(gap < mean) = 1 - 1/e.
    assert abs(statistics.pstdev(gaps) / mean - 1) < 0.05
    below = sum(g < 1 / rate for g in gaps) / n
    assert abs(below - (1 - math.exp(-1))) < 0.02
    assert all(g >= 0 for g in gaps)


def test_onoff_fixed_duty_cycle() -> None:
    # 10 ms on at 10,000/s = 100 frames per burst, 30 ms off: 25 bursts in 1 s.
    src = OnOff(10_000, on=0.01, off=0.03, size=60, duration=1.0)
    times = [t for t, _ in frames_of(src)]
    assert len(times) == 2500
    assert src.duty_cycle == 0.25
    for t in times:
        phase = t - math.floor(t / 0.04 + 1e-9) * 0.04
        assert -1e-9 < phase < 0.01
    gaps = sorted({round(b - a, 9) for a, b in itertools.pairwise(times)})
    assert gaps == [1e-4, 0.0301]


def test_onoff_exponential_duty_cycle() -> None:
    src = OnOff(10_000, on=0.01, off=0.03, size=60, duration=30.0, exponential=True, seed=3)
    times = [t for t, _ in frames_of(src)]
    # Long-run rate: rate * on / (on + off) = 2,500 frames/s (bursts hold ceil(on * rate)).
    assert abs(len(times) / 30.0 / 2500 - 1) < 0.1
    assert all(b >= a for a, b in itertools.pairwise(times))
    burst_gaps = [b - a for a, b in itertools.pairwise(times) if b - a > 2e-4]
    assert len(burst_gaps) > 500  # many distinct bursts, of varying spacing
    assert statistics.pstdev(burst_gaps) > 0.01


# -- content ---------------------------------------------------------------------------

# Hand-counted header bytes: Ethernet 14 (+4 VLAN tag), IPv4 20, IPv6 40, UDP 8,
# TCP 20, ICMP echo 8; the Ethernet minimum frame is 60 bytes without FCS.
MIN_SIZES = {"udp": 60, "tcp": 60, "icmp": 60, "arp": 60, "ipv6": 62, "vlan-udp": 60}
LAYERS = {
    "udp": (IP, UDP),
    "tcp": (IP, TCP),
    "icmp": (IP, ICMP),
    "arp": (ARP,),
    "ipv6": (IPv6, UDP),
    "vlan-udp": (Dot1Q, IP, UDP),
}


@pytest.mark.parametrize("kind", PROTOCOLS)
@pytest.mark.parametrize("size", [60, 61, 590, 1514])
def test_frames_parse_as_intended(kind: str, size: int) -> None:
    src = ConstantRate(
        1000,
        size=size,
        proto=kind,
        count=30,
        hosts=3,
        broadcast_fraction=0.3,
        other_fraction=0.3,
        seed=11,
    )
    assert min_frame_size(kind) == MIN_SIZES[kind]
    for _, frame in frames_of(src):
        expected = 60 if kind == "arp" else max(size, MIN_SIZES[kind])
        assert len(frame) == expected
        pkt = Ether(frame)
        for layer in LAYERS[kind]:
            assert layer in pkt, (kind, pkt.summary())
        assert all(recomputed_ok(frame).values()), (kind, size, recomputed_ok(frame))
        if IP in pkt:
            assert pkt[IP].len == len(frame) - (18 if kind == "vlan-udp" else 14)
        if kind == "ipv6":
            assert pkt[IPv6].plen == len(frame) - 54
        if UDP in pkt:
            assert (
                pkt[UDP].len
                == len(frame) - (62 if kind == "ipv6" else 42 + 4 * (kind == "vlan-udp")) + 8
            )
            assert (pkt[UDP].sport, pkt[UDP].dport) == (40000, 5001)
        if kind == "vlan-udp":
            assert pkt[Dot1Q].vlan == 100


def test_destinations_and_hosts() -> None:
    n = 6000
    src = Poisson(
        50_000,
        size=60,
        proto="udp:3,tcp:1",
        count=n,
        hosts=8,
        broadcast_fraction=0.1,
        other_fraction=0.2,
        seed=5,
    )
    pkts = [Ether(f) for _, f in frames_of(src)]
    dsts = Counter(p.dst for p in pkts)
    assert set(dsts) == {"00:0c:29:4a:7b:01", "00:0c:29:4a:7b:99", "ff:ff:ff:ff:ff:ff"}
    # Binomial proportions: 3 standard deviations of sqrt(p(1-p)/n) are under 1.6 %.
    assert abs(dsts["ff:ff:ff:ff:ff:ff"] / n - 0.1) < 0.016
    assert abs(dsts["00:0c:29:4a:7b:99"] / n - 0.2) < 0.02
    assert abs(sum(UDP in p for p in pkts) / n - 0.75) < 0.02
    for p in pkts:
        if p.dst == "ff:ff:ff:ff:ff:ff":
            assert p[IP].dst == "255.255.255.255"
        elif p.dst == "00:0c:29:4a:7b:99":
            assert p[IP].dst == "192.168.1.11"
        else:
            assert p[IP].dst == "192.168.1.10"
    sources = {(p.src, p[IP].src) for p in pkts}
    assert len(sources) == 8
    assert ("00:0c:29:4a:7b:02", "208.68.139.89") in sources
    for mac, ip in sources - {("00:0c:29:4a:7b:02", "208.68.139.89")}:
        assert int(mac[:2], 16) & 0x03 == 0x02  # locally administered unicast
        a, b, c, d = map(int, ip.split("."))
        assert (a, b & 0xFE) == (198, 18) and d not in (0, 255)


def test_ipv6_and_arp_broadcast_forms() -> None:
    src = ConstantRate(
        1000, size=100, proto="ipv6:1,arp:1", count=200, broadcast_fraction=0.5, seed=2
    )
    for _, frame in frames_of(src):
        p = Ether(frame)
        if IPv6 in p and p.dst == "33:33:00:00:00:01":
            assert p[IPv6].dst == "ff02::1"
        elif ARP in p:
            if p.dst == "ff:ff:ff:ff:ff:ff":
                assert (p[ARP].op, p[ARP].pdst) == (1, "192.168.1.10")
            else:
                assert (p[ARP].op, p[ARP].pdst, p[ARP].hwdst) == (2, "192.168.1.10", p.dst)
        else:
            assert p.dst == "00:0c:29:4a:7b:01"


def test_tcp_sequence_numbers_follow_payload() -> None:
    src = ConstantRate(1000, size="uniform(60,300)", proto="tcp", count=50, hosts=2, seed=9)
    next_seq: dict[str, int] = {}
    for _, frame in frames_of(src):
        p = Ether(frame)
        seg = p[TCP]
        assert seg.seq == next_seq.get(p[IP].src, 0)
        next_seq[p[IP].src] = seg.seq + p[IP].len - 40


def test_ip_ids_and_icmp_sequence_count_frames() -> None:
    frames = frames_of(ConstantRate(1000, size=80, proto="icmp", count=5, seed=1))
    assert [Ether(f)[IP].id for _, f in frames] == [0, 1, 2, 3, 4]
    assert [Ether(f)[ICMP].seq for _, f in frames] == [0, 1, 2, 3, 4]


def test_same_seed_same_bytes() -> None:
    def digest(seed: int) -> str:
        src = Poisson(
            20_000,
            size="imix",
            proto="udp,tcp,icmp,arp,ipv6,vlan-udp",
            count=2000,
            hosts=16,
            broadcast_fraction=0.1,
            other_fraction=0.1,
            seed=seed,
        )
        h = hashlib.sha256()
        for t, f in frames_of(src):
            h.update(struct.pack("!d", t) + f)
        return h.hexdigest()

    assert digest(42) == digest(42)
    assert digest(42) != digest(43)


def test_sizes_distributions() -> None:
    import random

    rng = random.Random(1)
    draws = Counter(IMIX.sample(rng) for _ in range(12_000))
    assert set(draws) == {60, 590, 1514}  # 64/594/1518 with FCS
    for size, weight in ((60, 7), (590, 4), (1514, 1)):
        assert abs(draws[size] / 12_000 - weight / 12) < 0.02
    assert IMIX.mean == pytest.approx((7 * 60 + 4 * 590 + 1514) / 12)
    uni = parse_size("uniform(60,70)")
    vals = Counter(uni.sample(rng) for _ in range(5000))
    assert set(vals) == set(range(60, 71))
    assert parse_size("1514").mean == 1514
    assert parse_size("100:1,200:3").mean == pytest.approx(175)
    assert parse_size([(100, 1), (300, 1)]).mean == 200
    for bad in ("59", "foo", "uniform(100,60)", "100:-1", "70000"):
        with pytest.raises(ValueError, match="size"):
            parse_size(bad)


def test_bad_arguments_name_the_field() -> None:
    with pytest.raises(ValueError, match="proto"):
        parse_mix("udp,sctp")
    with pytest.raises(ValueError, match="rate_pps"):
        ConstantRate(0)
    with pytest.raises(ValueError, match="broadcast_fraction"):
        Poisson(10, broadcast_fraction=1.5)
    with pytest.raises(ValueError, match="MAC"):
        Poisson(10, src_mac="00:11:22")
    with pytest.raises(ValueError, match="timing"):
        PcapReplay(TRACES / "mixed.pcap", timing="fast")


def test_tcpdump_finds_all_checksums_correct(tmp_path: Path) -> None:
    tcpdump = shutil.which("tcpdump")
    if tcpdump is None:
        pytest.skip("tcpdump binary not installed")
    src = Poisson(
        10_000,
        size="uniform(60,1514)",
        proto="udp,tcp,icmp,arp,ipv6,vlan-udp",
        count=600,
        hosts=5,
        broadcast_fraction=0.1,
        seed=21,
    )
    path = tmp_path / "gen.pcap"
    with PcapWriter(path) as w:
        for t, f in frames_of(src):
            w.write(f, 1e9 + t)
    kinds = Counter()
    for _, f in frames_of(src):
        p = Ether(f)
        kinds["udp" if UDP in p else "tcp" if TCP in p else "other"] += 1
    out = subprocess.run(
        [tcpdump, "-nn", "-vv", "-r", str(path)], capture_output=True, text=True, check=True
    ).stdout
    assert "bad" not in out and "incorrect" not in out and "wrong" not in out
    assert out.count("udp sum ok") == kinds["udp"]
    assert out.count("(correct)") == kinds["tcp"]


# -- memory --------------------------------------------------------------------------------


def _memory_growth(items, warm: int, more: int) -> int:
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


def test_generators_stream_in_constant_memory() -> None:
    src = Poisson(
        1e6,
        size="imix",
        proto="udp,tcp,icmp,arp,ipv6,vlan-udp",
        hosts=50,
        broadcast_fraction=0.1,
        other_fraction=0.1,
        seed=1,
    )
    assert _memory_growth(src.frames(), 10_000, 90_000) < 64 * 1024


def test_replay_streams_in_constant_memory() -> None:
    src = PcapReplay(TRACES / "mixed.pcap", timing="asap", loop=0)
    assert _memory_growth(src.frames(), 2_000, 20_000) < 64 * 1024


def test_nc_streams_in_constant_memory() -> None:
    src = NcTransfer(total_bytes=10**9)

    def clocked():
        pending = []
        for item in src.frames():
            if item is BLOCKED:
                for t, f in pending:
                    src.on_transmit(t, build_ack(f))
                pending.clear()
                continue
            pending.append(item)
            yield item

    # (tracemalloc slows build_ack some 30-fold, hence fewer frames than above)
    assert _memory_growth(clocked(), 2_000, 10_000) < 64 * 1024


# -- replay ----------------------------------------------------------------------------------


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


@pytest.mark.parametrize("name", ["tcpdump-tests/of10_s4810.pcap", "tcpdump-tests/mptcp-v0.pcap"])
def test_replay_timing_modes(name: str) -> None:
    path = real(name)
    recs = scapy_records(path)
    ts0 = recs[0][0]
    expected, high = [], -math.inf
    for ts, _, _ in recs:
        high = max(high, ts - ts0)  # backward timestamps are clamped
        expected.append(high)
    orig = frames_of(PcapReplay(path, timing="original", speed=9.0))
    assert [f for _, f in orig] == [d + bytes(w - len(d)) for _, d, w in recs]
    assert [t for t, _ in orig] == pytest.approx(expected, abs=2e-6)
    scaled = frames_of(PcapReplay(path, timing="scaled", speed=4.0))
    assert [t for t, _ in scaled] == pytest.approx([e / 4 for e in expected], abs=1e-6)
    assert {t for t, _ in frames_of(PcapReplay(path, timing="asap", start=0.5))} == {0.5}


def test_replay_pads_snapped_frames() -> None:
    path = real("tcpdump-tests/vrrp-vrrp_print-oobr-2.pcap")
    # Records are longer than the header's snapshot length: read as libpcap reads them.
    snaplen = struct.unpack_from("<I", path.read_bytes(), 16)[0]
    recs = [(ts, data[:snaplen], wirelen) for ts, data, wirelen in scapy_records(path)]
    assert any(len(d) < w for _, d, w in recs)
    out = frames_of(PcapReplay(path))
    for (_, data, wirelen), (_, frame) in zip(recs, out, strict=True):
        assert len(frame) == wirelen
        assert frame[: len(data)] == data and not any(frame[len(data) :])


def test_replay_loops_and_counts() -> None:
    recs = scapy_records(TRACES / "vlan.pcap")
    span = recs[-1][0] - recs[0][0]
    src = PcapReplay(TRACES / "vlan.pcap", loop=3)
    assert src.total_frames == 3 * len(recs)
    out = frames_of(src)
    assert len(out) == 3 * len(recs)
    assert all(b[0] >= a[0] for a, b in itertools.pairwise(out))
    assert out[len(recs)][0] == pytest.approx(span, abs=2e-6)
    assert out[-1][0] == pytest.approx(3 * span, abs=6e-6)
    assert PcapReplay(TRACES / "vlan.pcap", loop=0).total_frames is None


def test_replay_pcapng() -> None:
    recs = scapy_records(TRACES / "mixed.pcapng")
    out = frames_of(PcapReplay(TRACES / "mixed.pcapng", timing="original"))
    assert [f for _, f in out] == [d for _, d, _ in recs]
    assert [t for t, _ in out] == pytest.approx([ts - recs[0][0] for ts, _, _ in recs], abs=2e-6)


def test_replay_rejects_non_ethernet(tmp_path: Path) -> None:
    path = tmp_path / "raw.pcap"
    with PcapWriter(path, linktype=101) as w:  # LINKTYPE_RAW
        w.write(bytes(IP(dst="10.0.0.1") / UDP()), 1.0)
    with pytest.raises(PcapError, match=r"raw\.pcap.*linktype 101"):
        PcapReplay(path)


def test_replay_rejects_real_non_ethernet() -> None:
    path = real("libpcap-filter-tests/arcnet-rfc1051-arp-icmp-http.pcap")
    with pytest.raises(PcapError, match="arcnet-rfc1051-arp-icmp-http.pcap.*linktype"):
        PcapReplay(path)


# -- the nc transfer ----------------------------------------------------------------------------


def test_nc_total_frames_for_the_lecture() -> None:
    # 100,000,000 / 1448 = 69,060.77 -> 69,061 data segments, plus the FIN.
    assert NcTransfer().total_frames == 69_062


def test_nc_window_blocks_and_resumes() -> None:
    src = NcTransfer(total_bytes=10**6, initial_cwnd=3, delay=20e-6, seed=4)
    it = src.frames()
    first = [next(it) for _ in range(3)]
    assert next(it) is BLOCKED
    assert next(it) is BLOCKED  # still closed without ACKs
    src.on_transmit(0.0002, build_ack(first[0][1]))  # one segment acked: cwnd 4, 2 in flight
    resumed = [next(it), next(it)]
    assert next(it) is BLOCKED
    assert [t for t, _ in resumed] == [pytest.approx(0.00022)] * 2
    src.on_transmit(0.0005, build_ack(resumed[-1][1]))  # one cumulative ACK for 4 segments
    # cwnd grew by one per acked segment (not per ACK): 3 + 1 + 4 = 8, nothing in flight.
    assert src.cwnd == 8
    burst = list(itertools.takewhile(lambda x: x is not BLOCKED, it))
    assert len(burst) == 8
    seqs = [Ether(f)[TCP].seq for _, f in first + resumed + burst]
    assert [(s - seqs[0]) % 2**32 for s in seqs] == [1448 * i for i in range(13)]


def test_nc_timeout_writes_off_lost_segments() -> None:
    src = NcTransfer(total_bytes=10**6, initial_cwnd=3, rto=0.2)
    it = src.frames()
    lost = [next(it) for _ in range(3)]
    assert next(it) is BLOCKED
    src.on_timeout(0.2)
    assert (src.timeouts, src.abandoned_bytes, src.in_flight) == (1, 3 * 1448, 0)
    after = [next(it) for _ in range(3)]
    assert next(it) is BLOCKED
    assert [t for t, _ in after] == [0.2] * 3
    # No retransmission: new data follows the lost segments in sequence space.
    seq0 = Ether(lost[0][1])[TCP].seq
    assert [(Ether(f)[TCP].seq - seq0) % 2**32 for _, f in after] == [4344, 5792, 7240]
    src.on_transmit(0.3, build_ack(after[-1][1]))
    assert src.snd_una == 6 * 1448 and src.cwnd == 6


def test_nc_ignores_foreign_frames() -> None:
    src = NcTransfer(total_bytes=10**6)
    it = src.frames()
    seg = [next(it) for _ in range(3)][0][1]
    ack = build_ack(seg)
    wrong_port = bytearray(ack)
    wrong_port[36:38] = b"\x00\x50"
    udp = frames_of(ConstantRate(1000, size=60, count=1))[0][1]
    for frame in (bytes(wrong_port), udp, build_ack(seg, window=1)[:40]):
        src.on_transmit(1.0, frame)
    assert next(it) is BLOCKED and src.snd_una == 0
    src.on_transmit(1.0, ack)
    src.on_transmit(1.0, ack)  # duplicate: no further effect
    assert src.snd_una == 1448 and src.cwnd == 4


def test_nc_window_never_exceeds_rwnd() -> None:
    src = NcTransfer(total_bytes=400 * 1448, rwnd=20 * 1448 + 100, initial_cwnd=2)
    pending: list[bytes] = []
    max_flight = 0
    for item in src.frames():
        if item is BLOCKED:
            src.on_transmit(0.0, build_ack(pending.pop(0)))  # ACK the oldest only
            continue
        pending.append(item[1])
        max_flight = max(max_flight, src.in_flight)
        assert src.snd_nxt - src.snd_una <= src.rwnd
    assert max_flight == 20  # rwnd // mss
    assert src.cwnd == 20


def run_closed_loop(src: NcTransfer, link_bps: float, host_delay: float):
    """Serialise ``src`` on a full-duplex link; the host ACKs every segment after host_delay."""
    import heapq

    out, acks, free = [], [], 0.0
    it = src.frames()
    while True:
        while acks and acks[0][0] <= free:
            t, _, a = heapq.heappop(acks)
            src.on_transmit(t, a)
        item = next(it, None)
        if item is None:
            return out
        if item is BLOCKED:
            t, _, a = heapq.heappop(acks)
            src.on_transmit(t, a)
            continue
        t, frame = item
        start = max(t, free)
        free = start + (len(frame) + 24) * 8 / link_bps
        out.append((start, free, frame))
        heapq.heappush(acks, (free + host_delay, len(out), build_ack(frame)))


def test_nc_closed_loop_transfer() -> None:
    total = 300 * 1448 + 100
    src = NcTransfer(total_bytes=total, seed=8)
    out = run_closed_loop(src, 100e6, 10e-6)
    assert len(out) == src.total_frames == 302
    pkts = [Ether(f) for _, _, f in out]
    isn = pkts[0][TCP].seq - 1
    offset = 0
    for p in pkts[:-1]:
        assert p[TCP].seq == (isn + 1 + offset) % 2**32
        offset += p[IP].len - 52
        assert p[TCP].options[2] == ("Timestamp", p[TCP].options[2][1])
    assert offset == total
    assert [len(f) for _, _, f in out[:-2]] == [1514] * 300
    assert len(out[-2][2]) == 66 + 100 and "P" in str(pkts[-2][TCP].flags)
    fin = pkts[-1][TCP]
    assert "F" in str(fin.flags) and fin.seq == (isn + 1 + total) % 2**32
    assert all(all(recomputed_ok(f).values()) for _, _, f in out[::37])
    # The round trip (123 us + 10 us + 20 us) is shorter than 3 segments' wire time, so
    # even the initial window keeps the 100 Mbit/s link busy: no idle gaps at all.
    for (_, end, _), (start, _, _) in itertools.pairwise(out):
        assert start == pytest.approx(end, abs=1e-12)


def test_build_ack_against_scapy() -> None:
    base = Ether(src="00:11:22:33:44:55", dst="00:0c:29:4a:7b:01")
    seg = (
        base
        / IP(src="10.1.2.3", dst="192.168.1.10", options=[b"\x01\x01\x01\x01"])
        / TCP(
            sport=1234,
            dport=80,
            seq=4_294_967_000,
            ack=777,
            flags="PA",
            options=[("NOP", None), ("NOP", None), ("Timestamp", (1111, 2222))],
        )
        / (b"x" * 500)
    )
    ack = Ether(build_ack(bytes(seg), tsval=3333, window=512, ip_id=9))
    assert (ack.src, ack.dst) == ("00:0c:29:4a:7b:01", "00:11:22:33:44:55")
    assert (ack[IP].src, ack[IP].dst, ack[IP].id) == ("192.168.1.10", "10.1.2.3", 9)
    assert (ack[TCP].sport, ack[TCP].dport) == (80, 1234)
    assert ack[TCP].ack == (4_294_967_000 + 500) % 2**32 and ack[TCP].seq == 777
    assert ack[TCP].flags == "A" and ack[TCP].window == 512
    assert dict(ack[TCP].options)["Timestamp"] == (3333, 1111)
    assert len(bytes(ack)) == 66 and all(recomputed_ok(bytes(ack)).values())

    plain = base / IP(src="10.1.2.3", dst="192.168.1.10") / TCP(flags="A", seq=5) / b"ab"
    padded = bytes(plain) + bytes(60 - len(plain))  # Ethernet padding is not payload
    a2 = build_ack(padded)
    assert len(a2) == 60 and Ether(a2)[TCP].ack == 7 and all(recomputed_ok(a2).values())
    assert Ether(build_ack(bytes(base / IP() / TCP(flags="S", seq=10))))[TCP].ack == 11
    assert Ether(build_ack(bytes(base / IP() / TCP(flags="FA", seq=10))))[TCP].ack == 11
    assert build_ack(bytes(base / IP() / TCP(flags="A"))) is None
    assert build_ack(bytes(base / IP() / TCP(flags="R") / b"zz")) is None
    assert build_ack(bytes(base / IP() / UDP() / b"zz")) is None


# -- sample captures --------------------------------------------------------------------------


def test_sample_traces_are_reproducible_and_small(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(TRACES / "make_traces.py"), str(tmp_path)],
        check=True,
        capture_output=True,
    )
    made = sorted(p.name for p in tmp_path.iterdir())
    assert made == ["lecture-nc-head.pcap", "mixed.pcap", "mixed.pcapng", "vlan.pcap"]
    for name in made:
        assert (tmp_path / name).read_bytes() == (TRACES / name).read_bytes(), name
    assert sum((TRACES / n).stat().st_size for n in made) < 200_000
    nc = scapy_records(TRACES / "lecture-nc-head.pcap")
    assert len(nc) == 200
    # Each segment takes 123 us on the wire and its ACK follows 15 us after it arrives,
    # before the next segment has arrived: data and ACKs alternate, 100 of each.
    assert [w for _, _, w in nc] == [1514, 66] * 100
    assert all(len(d) == min(w, 96) for _, d, w in nc)  # snaplen 96
