"""Streaming pcap / pcapng reader and a classic pcap writer.

The reader parses the file formats by hand (``struct`` on a buffered file)
rather than through scapy: it streams in constant memory, is several times
faster, and can say exactly which record of which file is damaged.

Formats read: classic pcap in both byte orders with micro- or nanosecond
timestamps (magics 0xa1b2c3d4 / 0xa1b23c4d), the "modified" pcap of old
Linux patches (0xa1b2cd34, 24-byte record headers), and pcapng (Section
Header, Interface Description, Enhanced/Simple/obsolete Packet blocks; any
other block is skipped; several sections with different byte orders).
"""

from __future__ import annotations

import contextlib
import io
import math
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, BinaryIO, NamedTuple

from lsfsim.outputs import open_output

__all__ = [
    "LINKTYPE_ETHERNET",
    "PcapError",
    "PcapReader",
    "PcapRecord",
    "PcapWriter",
    "RECORD_HEADER",
    "count_records",
    "iter_pcap",
]

LINKTYPE_ETHERNET = 1

MAGIC_USEC = 0xA1B2C3D4
MAGIC_NSEC = 0xA1B23C4D
MAGIC_MODIFIED = 0xA1B2CD34  # Kuznetzov's patched libpcap: 24-byte record headers
PCAPNG_SHB = 0x0A0D0D0A
PCAPNG_BYTE_ORDER_MAGIC = 0x1A2B3C4D

# libpcap refuses records bigger than this (MAXIMUM_SNAPLEN in pcap-int.h).
MAXIMUM_SNAPLEN = 262144
# ... but only complains about really absurd ones; we do the same.
_IMPLAUSIBLE_CAPLEN = 256 * 1024 * 1024

_BLOCK_IDB, _BLOCK_PB, _BLOCK_SPB, _BLOCK_EPB = 1, 2, 3, 6

#: A classic pcap record header as PcapWriter writes it (little-endian): seconds,
#: fraction (micro- or nanoseconds), caplen, wirelen.
RECORD_HEADER = struct.Struct("<IIII")


class PcapError(ValueError):
    """A file that is not a capture, or a damaged one.  One line, naming file and record."""


class PcapRecord(NamedTuple):
    """One captured packet.  ``data`` is what was captured (``len(data)`` is caplen)."""

    ts: float
    data: bytes
    wirelen: int
    linktype: int


class _Interface(NamedTuple):
    linktype: int
    snaplen: int
    units_per_sec: int  # timestamp units per second (if_tsresol)
    offset: int  # if_tsoffset, seconds


class PcapReader:
    """Iterate over the records of a pcap or pcapng file, in constant memory.

    ``linktype``, ``snaplen``, ``nanosecond`` and ``format`` describe the file
    (for pcapng: its first interface, once the first packet has been read or
    after construction if the IDB precedes everything else, which it must).
    """

    def __init__(self, path: str | Path, fileobj: BinaryIO | None = None) -> None:
        self.path = str(path)
        self._own = fileobj is None
        self._f: BinaryIO = fileobj if fileobj is not None else open(path, "rb")  # noqa: SIM115
        self._offset = 0
        self.linktype = -1
        self.snaplen = 0
        self.nanosecond = False
        self.format = "pcap"
        try:
            self._init_header()
        except BaseException:
            self.close()
            raise

    # --- plumbing -------------------------------------------------------------
    def _err(self, message: str) -> PcapError:
        return PcapError(f"{self.path}: {message}")

    def _read(self, n: int) -> bytes:
        data = self._f.read(n)
        self._offset += len(data)
        return data

    def flush(self) -> None:
        """Hand what is buffered to the file (a reader of a FIFO sees it now)."""
        self._f.flush()

    def close(self) -> None:
        if self._own:
            self._f.close()

    def __enter__(self) -> PcapReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- headers --------------------------------------------------------------
    def _init_header(self) -> None:
        head = self._read(4)
        if len(head) < 4:
            raise self._err(f"not a pcap or pcapng file ({len(head)} bytes long)")
        le = struct.unpack("<I", head)[0]
        be = struct.unpack(">I", head)[0]
        if le == PCAPNG_SHB:
            self.format = "pcapng"
            self._head = head
            return
        for magic, order in ((le, "<"), (be, ">")):
            if magic in (MAGIC_USEC, MAGIC_NSEC, MAGIC_MODIFIED):
                self._order = order
                self.nanosecond = magic == MAGIC_NSEC
                self._rec_extra = 8 if magic == MAGIC_MODIFIED else 0
                break
        else:
            raise self._err(f"not a pcap or pcapng file (magic 0x{be:08x})")
        rest = self._read(20)
        if len(rest) < 20:
            raise self._err("truncated pcap file header")
        major, minor, _zone, _sigfigs, snaplen, network = struct.unpack(
            self._order + "HHiIII", rest
        )
        if major != 2:
            raise self._err(f"unsupported pcap version {major}.{minor}")
        self.snaplen = snaplen
        # The top bits of the link-layer header type field carry the FCS length.
        self.linktype = network & 0x03FFFFFF

    # --- iteration ------------------------------------------------------------
    def __iter__(self) -> Iterator[PcapRecord]:
        if self.format == "pcapng":
            return self._iter_pcapng()
        return self._iter_pcap()

    def _iter_pcap(self) -> Iterator[PcapRecord]:
        hdr_len = 16 + self._rec_extra
        unpack = struct.Struct(self._order + "IIII").unpack_from
        scale = 1e-9 if self.nanosecond else 1e-6
        linktype = self.linktype
        # libpcap's reader (sf-pcap.c) cuts a record longer than the file's snapshot
        # length down to it; a header snaplen of 0 or above the maximum counts as the maximum.
        snapshot = self.snaplen if 0 < self.snaplen <= MAXIMUM_SNAPLEN else MAXIMUM_SNAPLEN
        read = self._f.read
        index = 0
        offset = self._offset
        while True:
            hdr = read(hdr_len)
            if len(hdr) < hdr_len:
                if hdr:
                    raise self._err(
                        f"truncated record header of record {index + 1} at offset {offset} "
                        f"({len(hdr)} of {hdr_len} bytes)"
                    )
                return
            index += 1
            sec, frac, caplen, wirelen = unpack(hdr)
            if caplen > _IMPLAUSIBLE_CAPLEN:
                raise self._err(
                    f"record {index} at offset {offset}: capture length {caplen} is implausible"
                )
            data = read(caplen)
            if len(data) < caplen:
                raise self._err(
                    f"truncated record {index} at offset {offset} "
                    f"(capture length {caplen}, only {len(data)} bytes left)"
                )
            offset += hdr_len + caplen
            self._offset = offset
            if caplen > snapshot:
                data = data[:snapshot]
            yield PcapRecord(sec + frac * scale, data, wirelen, linktype)

    def _iter_pcapng(self) -> Iterator[PcapRecord]:
        order = "<"
        interfaces: list[_Interface] = []
        index = 0
        first = True
        while True:
            block_offset = self._offset - (4 if first else 0)
            if first:
                head = self._head + self._read(4)
                first = False
            else:
                head = self._read(8)
            if not head:
                return
            if len(head) < 8:
                raise self._err(f"truncated block header at offset {block_offset}")
            btype_le = struct.unpack_from("<I", head)[0]
            if btype_le == PCAPNG_SHB:
                # The byte order of a section is that of its byte-order magic.
                bom = self._read(4)
                if len(bom) < 4:
                    raise self._err(f"truncated section header at offset {block_offset}")
                if struct.unpack("<I", bom)[0] == PCAPNG_BYTE_ORDER_MAGIC:
                    order = "<"
                elif struct.unpack(">I", bom)[0] == PCAPNG_BYTE_ORDER_MAGIC:
                    order = ">"
                else:
                    raise self._err(
                        f"bad pcapng byte-order magic 0x{struct.unpack('>I', bom)[0]:08x} "
                        f"at offset {block_offset + 8}"
                    )
                total = struct.unpack_from(order + "I", head, 4)[0]
                body = bom + self._block_rest(total, 12, block_offset, order)
                major = struct.unpack_from(order + "H", body, 4)[0]
                if major != 1:
                    raise self._err(f"unsupported pcapng version {major} at offset {block_offset}")
                interfaces = []
                continue
            btype, total = struct.unpack_from(order + "II", head)
            body = self._block_rest(total, 8, block_offset, order)
            if btype == _BLOCK_IDB:
                iface = self._parse_idb(body, order, block_offset)
                interfaces.append(iface)
                if self.linktype < 0:
                    self.linktype, self.snaplen = iface.linktype, iface.snaplen
                    self.nanosecond = iface.units_per_sec >= 1_000_000_000
                continue
            if btype not in (_BLOCK_EPB, _BLOCK_SPB, _BLOCK_PB):
                continue  # name resolution, statistics, secrets, custom ...
            index += 1
            yield self._parse_packet(btype, body, order, interfaces, index, block_offset)

    def _block_rest(self, total: int, have: int, block_offset: int, order: str) -> bytes:
        """Read the rest of a block of ``total`` bytes; return its body (no trailer)."""
        if total < 12 or total % 4 or total > _IMPLAUSIBLE_CAPLEN:
            raise self._err(f"bad pcapng block length {total} at offset {block_offset}")
        rest = self._read(total - have)
        if len(rest) < total - have:
            raise self._err(
                f"truncated pcapng block at offset {block_offset} "
                f"(length {total}, only {have + len(rest)} bytes left)"
            )
        trailer = struct.unpack_from(order + "I", rest, len(rest) - 4)[0]
        if trailer != total:
            raise self._err(
                f"pcapng block at offset {block_offset}: trailing length {trailer} "
                f"does not match {total}"
            )
        return rest[:-4]

    def _parse_idb(self, body: bytes, order: str, block_offset: int) -> _Interface:
        if len(body) < 8:
            raise self._err(f"interface description block at offset {block_offset} too short")
        linktype, _reserved, snaplen = struct.unpack_from(order + "HHI", body)
        units, offset = 1_000_000, 0
        pos = 8
        while pos + 4 <= len(body):
            code, length = struct.unpack_from(order + "HH", body, pos)
            value = body[pos + 4 : pos + 4 + length]
            if code == 0:  # opt_endofopt
                break
            if len(value) < length:
                raise self._err(f"interface description block at offset {block_offset}: "
                                f"option {code} overruns the block")
            if code == 9 and length >= 1:  # if_tsresol
                res = value[0]
                units = 2 ** (res & 0x7F) if res & 0x80 else 10 ** (res & 0x7F)
            elif code == 14 and length >= 8:  # if_tsoffset
                offset = struct.unpack_from(order + "q", value)[0]
            pos += 4 + ((length + 3) & ~3)
        return _Interface(linktype, snaplen, units, offset)

    def _parse_packet(
        self, btype: int, body: bytes, order: str, interfaces: list[_Interface],
        index: int, block_offset: int,
    ) -> PcapRecord:
        where = f"record {index} at offset {block_offset}"
        if btype == _BLOCK_SPB:
            if len(body) < 4:
                raise self._err(f"{where}: simple packet block too short")
            if not interfaces:
                raise self._err(f"{where}: packet before any interface description block")
            wirelen = struct.unpack_from(order + "I", body)[0]
            iface = interfaces[0]
            caplen = min(wirelen, len(body) - 4)
            if iface.snaplen:
                caplen = min(caplen, iface.snaplen)
            return PcapRecord(0.0, bytes(body[4 : 4 + caplen]), wirelen, iface.linktype)
        if btype == _BLOCK_EPB:
            if len(body) < 20:
                raise self._err(f"{where}: enhanced packet block too short")
            if_id, ts_hi, ts_lo, caplen, wirelen = struct.unpack_from(order + "IIIII", body)
            start = 20
        else:  # obsolete Packet Block
            if len(body) < 20:
                raise self._err(f"{where}: packet block too short")
            if_id, _drops, ts_hi, ts_lo, caplen, wirelen = struct.unpack_from(
                order + "HHIIII", body
            )
            start = 20
        if if_id >= len(interfaces):
            raise self._err(f"{where}: unknown interface {if_id}")
        if start + caplen > len(body):
            raise self._err(f"{where}: capture length {caplen} overruns the block")
        iface = interfaces[if_id]
        stamp = (ts_hi << 32) | ts_lo
        sec, frac = divmod(stamp, iface.units_per_sec)
        ts = sec + iface.offset + frac / iface.units_per_sec
        return PcapRecord(ts, bytes(body[start : start + caplen]), wirelen, iface.linktype)


def iter_pcap(path: str | Path) -> Iterator[PcapRecord]:
    """Yield the records of a pcap/pcapng file one at a time; the file is closed at the end."""
    with PcapReader(path) as reader:
        yield from reader


def count_records(path: str | Path) -> int:
    """Number of records in a capture file (reads it through)."""
    return sum(1 for _ in iter_pcap(path))


class PcapWriter:
    """Write a classic pcap file (little-endian, micro- or nanosecond timestamps).

    Packets longer than ``snaplen`` are cut to it, as a capture would; their
    wire length stays the original one.  ``keep_partial`` is open_output's: a
    file written when Ctrl-C comes is kept with the records written so far
    (each record is written whole, so every prefix is a valid file).
    """

    def __init__(
        self,
        path_or_file: str | Path | IO[bytes],
        linktype: int = LINKTYPE_ETHERNET,
        snaplen: int = MAXIMUM_SNAPLEN,
        nanosecond: bool = False,
        keep_partial: bool = False,
    ) -> None:
        if not 0 <= linktype < (1 << 32) or not 0 < snaplen < (1 << 32):
            raise ValueError(f"bad pcap header: linktype {linktype}, snaplen {snaplen}")
        self._stack = contextlib.ExitStack()
        if isinstance(path_or_file, (str, Path)):
            # a regular file appears whole at close(); a FIFO or device is written through
            self._f: IO[bytes] = self._stack.enter_context(
                open_output(path_or_file, "wb", keep_partial=keep_partial))
            self._own = True
        else:
            self._f = path_or_file
            self._own = False
        self.linktype = linktype
        self.snaplen = snaplen
        self.nanosecond = nanosecond
        self._units = 1_000_000_000 if nanosecond else 1_000_000
        magic = MAGIC_NSEC if nanosecond else MAGIC_USEC
        self._f.write(struct.pack("<IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype))
        self.count = 0

    def write(self, data: bytes, ts: float = 0.0, wirelen: int | None = None,
              base: int = 0) -> None:
        """Append one packet captured at ``base + ts`` seconds.

        ``base`` (whole seconds) keeps a small ``ts`` precise: an epoch time near
        1.7e9 s has a double's resolution of 0.24 us, a time near 0 much finer.
        """
        if wirelen is None:
            wirelen = len(data)
        caplen = min(len(data), self.snaplen)
        if not math.isfinite(ts) or ts + base < 0:
            raise ValueError(f"bad timestamp {base + ts!r}")
        # Split before scaling: ts * 1e9 would not fit a double's 53 bits exactly.
        sec = math.floor(ts)
        frac = round((ts - sec) * self._units)
        sec += base
        if frac >= self._units:
            sec, frac = sec + 1, frac - self._units
        if sec >= (1 << 32):
            raise ValueError(f"timestamp {ts!r} does not fit a 32-bit pcap record header")
        self._f.write(RECORD_HEADER.pack(sec, frac, caplen, wirelen))
        self._f.write(data[:caplen])
        self.count += 1

    def write_packed(self, chunk: bytes, records: int) -> None:
        """Append ``records`` records already packed into ``chunk`` (each a RECORD_HEADER
        then its bytes, caplen at most the snaplen): for a writer batching its records."""
        self._f.write(chunk)
        self.count += records

    def write_record(self, record: PcapRecord) -> None:
        self.write(record.data, record.ts, record.wirelen)

    def flush(self) -> None:
        """Hand what is buffered to the file (a reader of a FIFO sees it now)."""
        self._f.flush()

    def close(self) -> None:
        if self._own:
            self._stack.close()
        else:
            self._f.flush()

    def __enter__(self) -> PcapWriter:
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._own and exc[0] is not None:
            self._stack.__exit__(*exc)    # an error: the temporary file goes, the old stays
        else:
            self.close()


def read_all(data: bytes, name: str = "<bytes>") -> list[PcapRecord]:
    """Parse an in-memory capture (for tests and small files)."""
    with PcapReader(name, io.BytesIO(data)) as reader:
        return list(reader)
