"""pcap/pcapng reading and writing, checked against tcpdump (libpcap's savefile reader).

Oracles: ``tcpdump -tt -r`` prints one line per record (a timestamp, or
"[Invalid header ...]" / "[Error converting time]"), so it gives the record
count and the timestamps to the microsecond (or nanosecond).  Files with
unusual headers are assembled here by hand with ``struct`` from the format
specifications, independently of the writer under test.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import tracemalloc
from pathlib import Path

import pytest

from lsfsim.pcapio import PcapError, PcapReader, PcapRecord, PcapWriter, count_records, iter_pcap
from tests.captures import FULL_CORPUS, REAL_TRACES, real_captures

TRACES = REAL_TRACES
TCPDUMP = shutil.which("tcpdump")
needs_tcpdump = pytest.mark.skipif(TCPDUMP is None, reason="tcpdump is not installed")

_LINE = re.compile(r"^(?:(\d+\.\d+) |\[Invalid header|\[Error converting time\])")


def tcpdump_stamps(path: Path, nano: bool = False) -> tuple[list[str | None], str]:
    """One entry per record tcpdump reads: its -tt timestamp text (None if not printed)."""
    cmd = [TCPDUMP, "-r", str(path), "-tt", "-n", "-q"]
    if nano:
        cmd.insert(1, "--time-stamp-precision=nano")
    proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace")
    stamps: list[str | None] = []
    for line in proc.stdout.split("\n"):
        m = _LINE.match(line)
        if m:
            stamps.append(m.group(1))
    return stamps, proc.stderr




# --- real captures -------------------------------------------------------------------
@needs_tcpdump
def test_every_real_trace_matches_tcpdump() -> None:
    """Record count and every printable timestamp agree with tcpdump, on all captures."""
    traces = real_captures()
    checked_stamps = 0
    for path in traces:
        stamps, _ = tcpdump_stamps(path)
        records = list(iter_pcap(path))
        assert len(records) == len(stamps), path.name
        for rec, stamp in zip(records, stamps, strict=True):
            if stamp is not None:
                assert f"{rec.ts:.6f}" == stamp, path.name
                checked_stamps += 1
            assert len(rec.data) <= max(rec.wirelen, len(rec.data))
    assert len(traces) > (400 if FULL_CORPUS else 60)
    assert checked_stamps > (5000 if FULL_CORPUS else 1000)


def test_traces_agree_with_scapy_bytes() -> None:
    """Packet bytes and wire lengths agree with scapy's reader (where scapy does not cut)."""
    from scapy.utils import RawPcapReader

    traces = real_captures()
    compared = 0
    for path in traces[:: 7 if FULL_CORPUS else 1]:
        with PcapReader(path) as reader:
            ours = list(reader)
        # libpcap, and lsfsim with it, cuts a pcap record to the file's snapshot length;
        # scapy does not.
        cut = reader.snaplen if reader.format == "pcap" else None
        theirs = list(RawPcapReader(str(path)))
        assert len(ours) == len(theirs)
        for rec, (data, meta) in zip(ours, theirs, strict=True):
            if len(data) < 65535:  # scapy cuts larger records to its MTU
                assert rec.data == data[:cut]
                assert rec.wirelen == meta.wirelen
                compared += 1
    assert compared > 200


def test_pcapng_trace_and_linktype() -> None:
    path = TRACES / "libpcap-filter-tests" / "rarp_req_reply.pcapng"
    with PcapReader(path) as reader:
        assert reader.format == "pcapng"
        records = list(reader)
    assert records and all(r.linktype == 1 for r in records)
    if TCPDUMP:
        stamps, _ = tcpdump_stamps(path)
        assert [f"{r.ts:.6f}" for r in records] == stamps


@needs_tcpdump
def test_records_longer_than_the_snapshot_length_are_cut_like_libpcap(tmp_path: Path) -> None:
    """A file whose records exceed its header's snaplen (41 here, records of 54 bytes)."""
    path = TRACES / "tcpdump-tests" / "vrrp-vrrp_print-oobr-2.pcap"
    header_snaplen = struct.unpack_from("<I", path.read_bytes(), 16)[0]
    first_caplen = struct.unpack_from("<I", path.read_bytes(), 24 + 8)[0]
    assert header_snaplen < first_caplen
    kept = tmp_path / "kept.pcap"
    subprocess.run([TCPDUMP, "-r", str(path), "-w", str(kept)], check=True, capture_output=True)
    theirs = [(r.data, r.wirelen) for r in iter_pcap(kept)]
    assert [(r.data, r.wirelen) for r in iter_pcap(path)] == theirs
    assert {len(data) for data, _ in theirs} == {header_snaplen}


def test_big_endian_trace() -> None:
    path = TRACES / "tcpdump-tests" / "isup.pcap"
    assert path.read_bytes()[:4] == bytes.fromhex("a1b2c3d4")  # written big-endian
    assert count_records(path) > 0


# --- writer, against tcpdump -------------------------------------------------------------
@needs_tcpdump
@pytest.mark.parametrize("nano", [False, True])
def test_writer_output_read_by_tcpdump(tmp_path: Path, nano: bool) -> None:
    path = tmp_path / "w.pcap"
    stamps = [0.0, 1.5, 1234567890.123456, 1700000000.000001]
    if nano:
        stamps.append(1700000000.25)
    frame = bytes.fromhex("ffffffffffff00112233445508060001080006040001") + bytes(38)
    with PcapWriter(path, linktype=1, snaplen=1000, nanosecond=nano) as writer:
        for ts in stamps:
            writer.write(frame, ts)
    theirs, err = tcpdump_stamps(path, nano=nano)
    assert "snapshot length 1000" in err and "EN10MB" in err
    ours = [r.ts for r in iter_pcap(path)]
    if nano:  # a float holds ~0.2 us at 1.7e9 s: compare within that
        assert [float(t) for t in theirs] == pytest.approx(ours, abs=5e-7)
        assert theirs[-1] == "1700000000.250000000"
    else:
        assert theirs == [f"{ts:.6f}" for ts in ours]
    assert ours == pytest.approx(stamps, abs=1e-6)


def test_writer_cuts_to_snaplen(tmp_path: Path) -> None:
    path = tmp_path / "s.pcap"
    with PcapWriter(path, snaplen=64) as writer:
        writer.write(bytes(range(200)), 1.0)
        writer.write(b"abc", 2.0, wirelen=1500)
    recs = list(iter_pcap(path))
    assert [(len(r.data), r.wirelen) for r in recs] == [(64, 200), (3, 1500)]
    assert recs[0].data == bytes(range(64))
    # the header, byte for byte: magic, 2.4, zone 0, sigfigs 0, snaplen 64, linktype 1
    assert path.read_bytes()[:24] == struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 64, 1)


def test_writer_rejects_bad_values(tmp_path: Path) -> None:
    with PcapWriter(tmp_path / "x.pcap") as writer:
        with pytest.raises(ValueError):
            writer.write(b"x", -1.0)
        with pytest.raises(ValueError):
            writer.write(b"x", float("nan"))
        with pytest.raises(ValueError):
            writer.write(b"x", 2.0**33)
    with pytest.raises(ValueError):
        PcapWriter(tmp_path / "y.pcap", snaplen=0)


# --- hand-built files ----------------------------------------------------------------------
def classic(order: str, magic: int, records: list[tuple[int, int, bytes, int]],
            linktype: int = 1, snaplen: int = 65535) -> bytes:
    out = struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype)
    for sec, frac, data, wirelen in records:
        out += struct.pack(order + "IIII", sec, frac, len(data), wirelen) + data
    return out


@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("nano", [False, True])
def test_classic_both_orders_and_resolutions(tmp_path: Path, order: str, nano: bool) -> None:
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    recs = [(10, 250, b"\x01" * 20, 60), (11, 999, b"\x02" * 30, 30)]
    path = tmp_path / "c.pcap"
    path.write_bytes(classic(order, magic, recs, linktype=101, snaplen=96))
    with PcapReader(path) as reader:
        got = list(reader)
        assert (reader.linktype, reader.snaplen, reader.nanosecond) == (101, 96, nano)
    scale = 1e-9 if nano else 1e-6
    assert [r.ts for r in got] == [10 + 250 * scale, 11 + 999 * scale]
    assert [(r.data, r.wirelen, r.linktype) for r in got] == [
        (b"\x01" * 20, 60, 101), (b"\x02" * 30, 30, 101)]
    if TCPDUMP:
        theirs, _ = tcpdump_stamps(path, nano=True)
        scale = 1 if nano else 1000
        assert theirs == [f"10.{250 * scale:09d}", f"11.{999 * scale:09d}"]


def test_linktype_fcs_bits_are_masked(tmp_path: Path) -> None:
    path = tmp_path / "fcs.pcap"
    # FCS-length bits (0x10000000 | 4 << 28 ...) live above the 26-bit link type
    path.write_bytes(classic("<", 0xA1B2C3D4, [(1, 0, b"x" * 14, 14)], linktype=0x14000001))
    assert next(iter_pcap(path)).linktype == 1


def pcapng_block(order: str, btype: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    total = len(body) + 12
    return struct.pack(order + "II", btype, total) + body + struct.pack(order + "I", total)


def pcapng_file(order: str = "<", tsresol: int | None = None) -> bytes:
    shb = pcapng_block(order, 0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1))
    opts = b""
    if tsresol is not None:
        opts = struct.pack(order + "HH", 9, 1) + bytes([tsresol]) + b"\0\0\0"
        opts += struct.pack(order + "HH", 0, 0)
    idb = pcapng_block(order, 1, struct.pack(order + "HHI", 1, 0, 0) + opts)
    stamp = 1_600_000_000 * (10**9 if tsresol == 9 else 10**6) + 123
    epb = pcapng_block(order, 6, struct.pack(order + "IIIII", 0, stamp >> 32, stamp & 0xFFFFFFFF,
                                             5, 64) + b"hello")
    spb = pcapng_block(order, 3, struct.pack(order + "I", 3) + b"abc")
    nrb = pcapng_block(order, 4, struct.pack(order + "HH", 0, 0))  # skipped
    return shb + idb + nrb + epb + spb


@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("tsresol", [None, 9])
def test_pcapng_blocks(tmp_path: Path, order: str, tsresol: int | None) -> None:
    path = tmp_path / "n.pcapng"
    path.write_bytes(pcapng_file(order, tsresol))
    recs = list(iter_pcap(path))
    assert [(r.data, r.wirelen, r.linktype) for r in recs] == [(b"hello", 64, 1), (b"abc", 3, 1)]
    unit = 1e-9 if tsresol == 9 else 1e-6
    assert recs[0].ts == pytest.approx(1_600_000_000 + 123 * unit, abs=1e-9)
    if TCPDUMP:
        theirs, _ = tcpdump_stamps(path, nano=True)
        assert theirs[0] == f"1600000000.{123 * (1 if tsresol == 9 else 1000):09d}"
        assert len(theirs) == 2


# --- damaged files -----------------------------------------------------------------------------
def test_not_a_capture(tmp_path: Path) -> None:
    path = tmp_path / "junk.pcap"
    path.write_bytes(b"GIF89a, not a capture at all")
    junk = r"junk\.pcap: not a pcap or pcapng file \(magic 0x47494638\)"
    with pytest.raises(PcapError, match=junk):
        list(iter_pcap(path))
    empty = tmp_path / "empty.pcap"
    empty.write_bytes(b"")
    with pytest.raises(PcapError, match="empty.pcap: not a pcap or pcapng file"):
        list(iter_pcap(empty))
    short = tmp_path / "short.pcap"
    short.write_bytes(struct.pack("<I", 0xA1B2C3D4) + b"\0" * 5)
    with pytest.raises(PcapError, match="short.pcap: truncated pcap file header"):
        list(iter_pcap(short))


@needs_tcpdump
@pytest.mark.parametrize("cut", [3, 10, 16, 31])
def test_truncated_record_is_named(tmp_path: Path, cut: int) -> None:
    """Cut inside record 3; the first two are delivered, then a one-line error."""
    recs = [(1, 0, b"a" * 40, 40), (2, 0, b"b" * 40, 40), (3, 0, b"c" * 40, 40)]
    whole = classic("<", 0xA1B2C3D4, recs)
    third_at = 24 + 2 * (16 + 40)
    path = tmp_path / "t.pcap"
    path.write_bytes(whole[: third_at + cut])
    got: list[PcapRecord] = []
    with pytest.raises(PcapError) as info:
        for rec in iter_pcap(path):
            got.append(rec)
    message = str(info.value)
    assert len(got) == 2
    assert f"record 3 at offset {third_at}" in message and message.startswith(str(path))
    assert "\n" not in message
    theirs, err = tcpdump_stamps(path)
    assert len(theirs) == 2 and "truncated" in err


def test_truncated_pcapng_and_bad_blocks(tmp_path: Path) -> None:
    good = pcapng_file()
    path = tmp_path / "cut.pcapng"
    path.write_bytes(good[:-5])
    with pytest.raises(PcapError, match="truncated pcapng block at offset"):
        list(iter_pcap(path))
    bad = bytearray(good)
    struct.pack_into("<I", bad, 4, 13)  # SHB length not a multiple of 4
    path.write_bytes(bytes(bad))
    with pytest.raises(PcapError, match="bad pcapng block length 13 at offset 0"):
        list(iter_pcap(path))
    # an EPB naming interface 5 that was never described
    shb = good[:28]
    epb = pcapng_block("<", 6, struct.pack("<IIIII", 5, 0, 0, 1, 1) + b"x")
    path.write_bytes(shb + epb)
    with pytest.raises(PcapError, match="record 1 at offset 28: unknown interface 5"):
        list(iter_pcap(path))


def test_streaming_uses_constant_memory(tmp_path: Path) -> None:
    """Reading 20 MB holds a record at a time, not the file."""
    path = tmp_path / "big.pcap"
    payload = bytes(1000)
    with PcapWriter(path) as writer:
        for i in range(20_000):
            writer.write(payload, i * 1e-4)
    tracemalloc.start()
    try:
        n = 0
        for _ in iter_pcap(path):
            n += 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert n == 20_000
    assert peak < 1_000_000, peak


def test_read_rate(tmp_path: Path) -> None:
    """Well over 100k records/s: a pcap replay must not be bounded by the reader."""
    import time

    path = tmp_path / "rate.pcap"
    with PcapWriter(path) as writer:
        for i in range(50_000):
            writer.write(b"\0" * 60, i * 1e-5)
    start = time.perf_counter()
    assert count_records(path) == 50_000
    rate = 50_000 / (time.perf_counter() - start)
    assert rate > 100_000, f"{rate:.0f} records/s"
