"""pcap replay: timing modes, padding, loops, pcapng, refusals; the sample captures.

Oracles: scapy's pcap readers (independent of lsfsim.pcapio), hand calculation.
"""

from __future__ import annotations

import itertools
import math
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from lsfsim.pcapio import PcapError, PcapWriter
from lsfsim.traffic import PcapReplay
from lsfsim.traffic.replay import MAX_WIRE_FRAME
from tests.traffic.helpers import TRACES, frames_of, memory_growth, real, scapy_records

scapy_l2 = pytest.importorskip("scapy.layers.l2")
from scapy.layers.inet import IP, UDP  # noqa: E402

# -- replay ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["tcpdump-tests/of10_s4810.pcap", "tcpdump-tests/mptcp-v0.pcap"])
def test_replay_timing_modes(name: str) -> None:
    path = real(name)
    # records longer than an Ethernet frame (GRO/TSO captures) are not replayed
    recs = [r for r in scapy_records(path) if max(r[2], len(r[1])) <= MAX_WIRE_FRAME]
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
    recs = [(ts, data[:snaplen], wirelen) for ts, data, wirelen in scapy_records(path)
            if max(wirelen, len(data)) <= MAX_WIRE_FRAME]
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


def test_replay_streams_in_constant_memory() -> None:
    src = PcapReplay(TRACES / "mixed.pcap", timing="asap", loop=0)
    assert memory_growth(src.frames(), 2_000, 20_000) < 64 * 1024


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
