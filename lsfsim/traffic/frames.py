"""Frame templates built once with scapy, then patched per frame.

Building a scapy packet costs tens of microseconds; the simulator needs more
than 200,000 frames per second.  So each protocol's header is built once with
scapy, its variable fields are zeroed, and the one's-complement sums of the
constant parts are precomputed.  A frame is then a bytearray copy of the header,
zero payload appended, a few ``struct.pack_into`` calls (lengths, IP id, TCP
sequence number) and checksums finished incrementally from the precomputed sums.

Checksums are all *correct*, L4 included: the payload is all zero bytes (like
``nc < /dev/zero``), and zeros add nothing to a one's-complement sum, so the
UDP/TCP/ICMP checksum only needs the headers and the pseudo-header.

Sizes are Ethernet frame lengths *without* the 4-byte FCS (60 = minimum frame,
1514 = maximum untagged frame at MTU 1500).
"""

from __future__ import annotations

import functools
import ipaddress
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from lsfsim.traffic.base import ETH_ZLEN

#: Defaults: the simulated machine and the lecture's remote "host optimus".
HOST_MAC: Final = "00:0c:29:4a:7b:01"
HOST_IP: Final = "192.168.1.10"
HOST_IP6: Final = "2001:db8:1::10"
REMOTE_MAC: Final = "00:0c:29:4a:7b:02"  # the remote side (its router, for an off-link host)
REMOTE_IP: Final = "208.68.139.89"  # 0xd0448b59, "host optimus" in the lecture's filter
OTHER_MAC: Final = "00:0c:29:4a:7b:99"  # unicast, not the host's: dropped unless promiscuous
OTHER_IP: Final = "192.168.1.11"
BROADCAST_MAC: Final = "ff:ff:ff:ff:ff:ff"
BROADCAST_IP: Final = "255.255.255.255"
ALL_NODES_IP6: Final = "ff02::1"
ALL_NODES_MAC: Final = "33:33:00:00:00:01"  # IPv6 has no broadcast: all-nodes multicast

#: Protocol kinds a generator can mix.
PROTOCOLS: Final = ("udp", "tcp", "icmp", "arp", "ipv6", "vlan-udp")

ETH_P_IP: Final = 0x0800
ETH_P_ARP: Final = 0x0806
ETH_P_IPV6: Final = 0x86DD
ETH_P_8021Q: Final = 0x8100

#: Header bytes before the payload, per kind (Ethernet header included).
HEADER_LEN: Final = {
    "udp": 14 + 20 + 8,
    "tcp": 14 + 20 + 20,
    "icmp": 14 + 20 + 8,
    "arp": 14 + 28,
    "ipv6": 14 + 40 + 8,
    "vlan-udp": 18 + 20 + 8,
}

_MAX_IP_LEN: Final = 0xFFFF

Builder = Callable[..., bytes]
"""``builder(size, ident, host=0) -> frame``: size is the frame length without FCS
(clamped up to :func:`min_frame_size`), ident the 16-bit IPv4 id / ICMP sequence,
host the index of the source in the builder's :class:`HostTable`."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A station's addresses: MAC, IPv4 and IPv6 (text forms)."""

    mac: str
    ip: str
    ip6: str

    @classmethod
    def make(cls, mac: str, ip: str, ip6: str | None = None) -> Endpoint:
        """Validate the addresses; derive an IPv6 address from the IPv4 one when not given."""
        mac_bytes(mac)
        v4 = ipaddress.IPv4Address(ip)
        if ip6 is None:
            ip6 = str(ipaddress.IPv6Address((0x20010DB8_0002 << 80) | int(v4)))
        ipaddress.IPv6Address(ip6)
        return cls(mac.lower(), str(v4), ip6)


def mac_bytes(mac: str) -> bytes:
    """``"00:0c:29:4a:7b:01"`` -> 6 bytes; ValueError naming the bad address."""
    parts = mac.replace("-", ":").split(":")
    try:
        if len(parts) != 6:
            raise ValueError
        raw = bytes(int(p, 16) for p in parts)
    except ValueError:
        raise ValueError(
            f"bad MAC address {mac!r} (expected six hex octets like 00:0c:29:4a:7b:01)"
        ) from None
    return raw


HOST: Final = Endpoint(HOST_MAC, HOST_IP, HOST_IP6)
REMOTE: Final = Endpoint.make(REMOTE_MAC, REMOTE_IP)
OTHER: Final = Endpoint.make(OTHER_MAC, OTHER_IP)
BROADCAST: Final = Endpoint(BROADCAST_MAC, BROADCAST_IP, ALL_NODES_IP6)


def min_frame_size(kind: str) -> int:
    """The smallest frame of ``kind``: its headers, or the Ethernet minimum of 60."""
    return max(ETH_ZLEN, HEADER_LEN[kind])


# -- one's-complement arithmetic (RFC 1071) ------------------------------------------


def csum_add(data: bytes | bytearray) -> int:
    """Unfolded-equivalent one's-complement sum of ``data`` as 16-bit big-endian words.

    Uses ``int.from_bytes(...) % 0xffff``: since 2**16 == 1 (mod 0xffff), a
    big-endian number is congruent to the sum of its 16-bit digits, which is
    what the end-around-carry sum computes (0xffff and 0 being the same value).
    """
    if len(data) & 1:
        data = bytes(data) + b"\0"
    n = int.from_bytes(data, "big")
    r = n % 0xFFFF
    return 0xFFFF if (r == 0 and n) else r


def csum_fold(s: int) -> int:
    """Fold a sum of 16-bit words into 16 bits with end-around carries."""
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def inet_checksum(data: bytes | bytearray) -> int:
    """The Internet checksum of ``data`` (what goes into the header field)."""
    return ~csum_add(data) & 0xFFFF


# -- templates (scapy, once per kind) ---------------------------------------------------


@functools.lru_cache(maxsize=64)
def _scapy_template(kind: str, sport: int, dport: int, vlan_id: int, vlan_prio: int) -> bytes:
    """Header bytes of ``kind`` for the default endpoints, built with scapy.

    The per-frame code patches addresses, lengths, ids and checksums at fixed
    offsets, so the addresses used here do not matter.
    """
    from scapy.layers.inet import ICMP, IP, TCP, UDP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import ARP, Dot1Q, Ether

    eth = Ether(src=REMOTE.mac, dst=HOST.mac)
    ip = IP(src=REMOTE.ip, dst=HOST.ip, ttl=64, id=0)
    if kind == "udp":
        pkt = eth / ip / UDP(sport=sport, dport=dport)
    elif kind == "vlan-udp":
        pkt = eth / Dot1Q(vlan=vlan_id, prio=vlan_prio) / ip / UDP(sport=sport, dport=dport)
    elif kind == "tcp":
        pkt = (
            eth
            / IP(src=REMOTE.ip, dst=HOST.ip, ttl=64, id=0, flags="DF")
            / TCP(sport=sport, dport=dport, flags="PA", seq=0, ack=1, window=65535)
        )
    elif kind == "icmp":
        pkt = eth / ip / ICMP(type=8, code=0, id=sport & 0xFFFF, seq=0)
    elif kind == "ipv6":
        pkt = eth / IPv6(src=REMOTE.ip6, dst=HOST.ip6, hlim=64) / UDP(sport=sport, dport=dport)
    elif kind == "arp":
        pkt = eth / ARP(op=1, hwsrc=REMOTE.mac, psrc=REMOTE.ip, pdst=HOST.ip)
    else:
        raise ValueError(f"unknown protocol {kind!r} (expected one of {', '.join(PROTOCOLS)})")
    raw = bytes(pkt)
    assert len(raw) == HEADER_LEN[kind], (kind, len(raw))
    return raw


class HostTable:
    """Source stations with their addresses pre-packed and pre-summed, so that a
    builder can switch the source per frame with two slice copies and one
    addition to each checksum (instead of one builder per source host)."""

    __slots__ = ("endpoints", "macs", "ip4", "ip4sum", "ip6", "ip6sum")

    def __init__(self, endpoints: Sequence[Endpoint]) -> None:
        if not endpoints:
            raise ValueError("at least one source host is needed")
        self.endpoints = tuple(endpoints)
        self.macs = [mac_bytes(e.mac) for e in self.endpoints]
        self.ip4 = [ipaddress.IPv4Address(e.ip).packed for e in self.endpoints]
        self.ip4sum = [csum_add(a) for a in self.ip4]
        self.ip6 = [ipaddress.IPv6Address(e.ip6).packed for e in self.endpoints]
        self.ip6sum = [csum_add(a) for a in self.ip6]

    def __len__(self) -> int:
        return len(self.endpoints)


def make_builder(
    kind: str,
    src: Endpoint | HostTable = REMOTE,
    dst: Endpoint = HOST,
    *,
    sport: int = 40000,
    dport: int = 5001,
    vlan_id: int = 100,
    vlan_prio: int = 0,
) -> Builder:
    """A fast ``builder(size, ident, host=0) -> bytes`` for frames of ``kind`` to ``dst``.

    ``src`` is one endpoint or a :class:`HostTable`; ``host`` picks the source in
    it.  ``dst`` may be :data:`BROADCAST`: IPv4 kinds then go to
    255.255.255.255, IPv6 to the all-nodes group ff02::1 (MAC
    33:33:00:00:00:01), and ARP becomes a broadcast who-has request for the host
    (a unicast ``dst`` gets an is-at reply instead).  ARP frames are always 60
    bytes (28-byte ARP + padding): ``size`` does not apply to them.  TCP frames
    carry PSH|ACK and a per-source sequence number advancing by each payload.
    """
    if kind not in HEADER_LEN:
        raise ValueError(f"unknown protocol {kind!r} (expected one of {', '.join(PROTOCOLS)})")
    hosts = src if isinstance(src, HostTable) else HostTable([src])
    tmpl = bytearray(_scapy_template(kind, sport, dport, vlan_id, vlan_prio))
    dmac = mac_bytes(dst.mac)
    if kind == "ipv6" and dst.mac == BROADCAST_MAC:
        dmac = mac_bytes(ALL_NODES_MAC)
    tmpl[0:6] = dmac
    tmpl[6:12] = bytes(6)  # source MAC: per frame
    if kind == "arp":
        return _arp_builder(tmpl, hosts, dst)
    if kind == "ipv6":
        return _ipv6_udp_builder(tmpl, hosts, dst)
    return _ipv4_builder(kind, tmpl, hosts, dst)


def _arp_builder(tmpl: bytearray, hosts: HostTable, dst: Endpoint) -> Builder:
    # Request (who-has <host> tell <src>) when broadcast, reply (<src> is-at) when unicast.
    o = 14
    if dst.mac == BROADCAST_MAC:
        op, tha, tpa = 1, bytes(6), ipaddress.IPv4Address(HOST.ip).packed
    else:
        op, tha, tpa = 2, mac_bytes(dst.mac), ipaddress.IPv4Address(dst.ip).packed
    struct.pack_into("!H", tmpl, o + 6, op)
    tmpl[o + 18 : o + 24] = tha
    tmpl[o + 24 : o + 28] = tpa
    tmpl += bytes(ETH_ZLEN - len(tmpl))
    cache: dict[int, bytes] = {}  # one 60-byte frame per source host, made on first use

    def build_arp(size: int, ident: int, host: int = 0) -> bytes:
        frame = cache.get(host)
        if frame is None:
            buf = bytearray(tmpl)
            mac = hosts.macs[host]
            buf[6:12] = mac
            buf[o + 8 : o + 14] = mac
            buf[o + 14 : o + 18] = hosts.ip4[host]
            frame = cache[host] = bytes(buf)
        return frame

    return build_arp


def _ipv4_builder(kind: str, tmpl: bytearray, hosts: HostTable, dst: Endpoint) -> Builder:
    o = 18 if kind == "vlan-udp" else 14
    hlen = len(tmpl)
    hmin = min_frame_size(kind)
    daddr = ipaddress.IPv4Address(dst.ip).packed
    tmpl[o + 16 : o + 20] = daddr
    # Zero the variable fields: total length, id, header checksum, source address.
    struct.pack_into("!HH", tmpl, o + 2, 0, 0)
    struct.pack_into("!H4s", tmpl, o + 10, 0, bytes(4))
    ip_base = csum_add(tmpl[o : o + 20])
    frag_ttl_proto = bytes(tmpl[o + 6 : o + 10])
    l4 = o + 20
    proto = tmpl[o + 9]
    max_size = _MAX_IP_LEN + o
    macs, addrs, addr_sums = hosts.macs, hosts.ip4, hosts.ip4sum
    pack = struct.pack_into

    if kind == "icmp":
        # ICMP echo: the checksum covers the ICMP message only; ident is the sequence number.
        icmp_id = struct.unpack_from("!H", tmpl, l4 + 4)[0]
        struct.pack_into("!H", tmpl, l4 + 2, 0)  # checksum
        struct.pack_into("!H", tmpl, l4 + 6, 0)  # sequence number
        header = bytes(tmpl)
        icmp_base = csum_add(tmpl[l4:hlen])

        def build_icmp(size: int, ident: int, host: int = 0) -> bytes:
            if size < hmin:
                size = hmin
            elif size > max_size:
                raise ValueError(f"frame size {size} exceeds the IPv4 maximum of {max_size}")
            buf = bytearray(header)
            buf += bytes(size - hlen)
            buf[6:12] = macs[host]
            s = ip_base + addr_sums[host] + (size - o) + ident
            s = (s & 0xFFFF) + (s >> 16)
            s = (s & 0xFFFF) + (s >> 16)
            pack("!HH4sH4s", buf, o + 2, size - o, ident, frag_ttl_proto, ~s & 0xFFFF, addrs[host])
            s = icmp_base + ident
            s = (s & 0xFFFF) + (s >> 16)
            pack("!HHH", buf, l4 + 2, ~s & 0xFFFF, icmp_id, ident)
            return bytes(buf)

        return build_icmp

    # UDP and TCP: the checksum covers the pseudo-header (addresses, protocol, L4 length).
    if kind == "tcp":
        struct.pack_into("!I", tmpl, l4 + 4, 0)  # seq: per frame
        struct.pack_into("!H", tmpl, l4 + 16, 0)  # checksum
    else:
        struct.pack_into("!HH", tmpl, l4 + 4, 0, 0)  # length, checksum
    header = bytes(tmpl)
    l4_base = csum_add(daddr + bytes((0, proto))) + csum_add(tmpl[l4:hlen])

    if kind == "tcp":
        seqs = [0] * len(hosts)  # each source's stream position: advances by each payload

        def build_tcp(size: int, ident: int, host: int = 0) -> bytes:
            if size < hmin:
                size = hmin
            elif size > max_size:
                raise ValueError(f"frame size {size} exceeds the IPv4 maximum of {max_size}")
            buf = bytearray(header)
            buf += bytes(size - hlen)
            buf[6:12] = macs[host]
            ip_len = size - o
            asum = addr_sums[host]
            s = ip_base + asum + ip_len + ident
            s = (s & 0xFFFF) + (s >> 16)
            s = (s & 0xFFFF) + (s >> 16)
            pack("!HH4sH4s", buf, o + 2, ip_len, ident, frag_ttl_proto, ~s & 0xFFFF, addrs[host])
            sq = seqs[host]
            seqs[host] = (sq + size - hlen) & 0xFFFFFFFF
            s = l4_base + asum + (ip_len - 20) + (sq >> 16) + (sq & 0xFFFF)
            s = (s & 0xFFFF) + (s >> 16)
            s = (s & 0xFFFF) + (s >> 16)
            pack("!I", buf, l4 + 4, sq)
            pack("!H", buf, l4 + 16, ~s & 0xFFFF)
            return bytes(buf)

        return build_tcp

    # A UDP frame of one size from one source differs from the next only in the IP
    # id and header checksum (the UDP checksum does not cover the id): cache the
    # rest as two byte strings and splice the four changing bytes in between.
    splice = struct.Struct("!H4sH").pack
    parts: dict[tuple[int, int], tuple[bytes, bytes, int]] = {}

    def udp_parts(size: int, host: int) -> tuple[bytes, bytes, int]:
        """The frame before the IP id, after the header checksum, and the checksum base."""
        buf = bytearray(header)
        buf += bytes(size - hlen)
        buf[6:12] = macs[host]
        ip_len = size - o
        asum = addr_sums[host]
        pack("!H", buf, o + 2, ip_len)
        buf[o + 12 : o + 16] = addrs[host]
        udp_len = ip_len - 20
        s = l4_base + asum + udp_len + udp_len  # in the pseudo-header and in the UDP header
        s = (s & 0xFFFF) + (s >> 16)
        s = (s & 0xFFFF) + (s >> 16)
        pack("!HH", buf, l4 + 4, udp_len, (~s & 0xFFFF) or 0xFFFF)  # 0 means "no checksum"
        return bytes(buf[: o + 4]), bytes(buf[o + 12 :]), ip_base + asum + ip_len

    def build_udp(size: int, ident: int, host: int = 0) -> bytes:
        key = (size, host)
        entry = parts.get(key)
        if entry is None:
            if size < hmin:
                size = hmin
            elif size > max_size:
                raise ValueError(f"frame size {size} exceeds the IPv4 maximum of {max_size}")
            entry = udp_parts(size, host)
            if len(parts) < 32:            # memory stays bounded with many sizes x hosts
                parts[key] = entry
        head, tail, s = entry
        s += ident
        s = (s & 0xFFFF) + (s >> 16)
        s = (s & 0xFFFF) + (s >> 16)
        return head + splice(ident, frag_ttl_proto, ~s & 0xFFFF) + tail

    return build_udp


def _ipv6_udp_builder(tmpl: bytearray, hosts: HostTable, dst: Endpoint) -> Builder:
    o = 14
    hlen = len(tmpl)
    hmin = min_frame_size("ipv6")
    daddr = ipaddress.IPv6Address(dst.ip6).packed
    tmpl[o + 8 : o + 24] = bytes(16)  # source address: per frame
    tmpl[o + 24 : o + 40] = daddr
    struct.pack_into("!H", tmpl, o + 4, 0)  # payload length
    l4 = o + 40
    struct.pack_into("!HH", tmpl, l4 + 4, 0, 0)
    header = bytes(tmpl)
    l4_base = csum_add(daddr + bytes((0, 17))) + csum_add(tmpl[l4:hlen])
    max_size = _MAX_IP_LEN + o + 40
    macs, addrs, addr_sums = hosts.macs, hosts.ip6, hosts.ip6sum
    pack = struct.pack_into

    def build_ipv6_udp(size: int, ident: int, host: int = 0) -> bytes:
        # IPv6 has no header checksum and no id; ``ident`` is unused.
        if size < hmin:
            size = hmin
        elif size > max_size:
            raise ValueError(f"frame size {size} exceeds the IPv6 maximum of {max_size}")
        buf = bytearray(header)
        buf += bytes(size - hlen)
        buf[6:12] = macs[host]
        buf[o + 8 : o + 24] = addrs[host]
        plen = size - o - 40
        pack("!H", buf, o + 4, plen)
        s = l4_base + addr_sums[host] + plen + plen
        s = (s & 0xFFFF) + (s >> 16)
        s = (s & 0xFFFF) + (s >> 16)
        pack("!HH", buf, l4 + 4, plen, (~s & 0xFFFF) or 0xFFFF)
        return bytes(buf)

    return build_ipv6_udp
