"""Frame content of the generators: protocols, sizes, addresses, checksums.

Oracles: scapy (protocol parsing and checksum recomputation), a bit-by-bit
RFC 1071 checksum written here, the tcpdump binary, hand calculation.
"""

from __future__ import annotations

import hashlib
import shutil
import struct
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lsfsim.pcapio import PcapWriter
from lsfsim.traffic import (
    IMIX,
    PROTOCOLS,
    ConstantRate,
    PcapReplay,
    Poisson,
    min_frame_size,
    parse_mix,
    parse_size,
)
from lsfsim.traffic.frames import csum_add, inet_checksum
from tests.traffic.helpers import TRACES, frames_of, recomputed_ok

scapy_l2 = pytest.importorskip("scapy.layers.l2")
from scapy.layers.inet import ICMP, IP, TCP, UDP  # noqa: E402
from scapy.layers.inet6 import IPv6  # noqa: E402
from scapy.layers.l2 import ARP, Dot1Q, Ether  # noqa: E402

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
