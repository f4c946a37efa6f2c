"""The lecture's nc transfer: TCP window, ACK clocking, timeouts; the host's ACK.

Oracles: hand calculation (sequence arithmetic, window sizes) and scapy.
"""

from __future__ import annotations

import itertools

import pytest

from lsfsim.traffic import BLOCKED, ConstantRate, NcTransfer, build_ack
from tests.traffic.helpers import frames_of, memory_growth, recomputed_ok

scapy_l2 = pytest.importorskip("scapy.layers.l2")
from scapy.layers.inet import IP, TCP, UDP  # noqa: E402
from scapy.layers.l2 import Ether  # noqa: E402

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
    assert memory_growth(clocked(), 2_000, 10_000) < 64 * 1024
