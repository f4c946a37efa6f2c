"""The running Linux kernel as an oracle for classic BPF socket filters.

Two questions are put to the kernel:

* does ``setsockopt(SO_ATTACH_FILTER)`` accept a program, and with which errno
  does it refuse it (:func:`attach_errno`);
* how many bytes of a frame does a PF_PACKET socket capture through a program
  (:class:`LoopbackOracle`), i.e. ``min(filter return, skb->len)`` as
  ``packet_rcv`` trims it.

How a capture is measured.  A ``SOCK_RAW``/``ETH_P_ALL`` socket bound to ``lo``
gets the program under test with a short prefix.  Test frames are sent on ``lo``
by a second packet socket whose ``SO_MARK`` is a per-oracle random value, and
each is followed by a sentinel frame sent with a second mark.  The prefix

* refuses ``PACKET_OUTGOING`` copies (``dev_queue_xmit_nit`` hands every frame
  sent on ``lo`` to the taps once on the way out, and ``loopback_xmit`` ->
  ``netif_rx`` delivers it again as received; ``PACKET_IGNORE_OUTGOING`` is set
  too, where the kernel has it);
* accepts the sentinel whole and refuses any other traffic on ``lo``;
* resets A to 0 and falls through into the program under test.

The prefix only touches A (X and M[] are left alone, and no store precedes the
program, so ``check_load_and_stores`` sees the same thing), and jumps are
relative, so the program keeps its meaning.  Both frames go through the same
CPU's backlog (the process is pinned to one CPU while the oracle is open), so
the sentinel arrives after the test frame has been filtered: whatever is queued
before it is the test frame's capture, and nothing queued means "dropped" -- no
timeout decides anything (a timeout only reports a lost sentinel as an error).

What the program sees on the receive side of ``lo`` (``loopback_xmit`` ->
``eth_type_trans`` -> ``__netif_receive_skb_core`` -> ``packet_rcv``) is given by
:meth:`LoopbackOracle.meta_for`: skb->protocol from ``eth_type_trans``,
pkt_type from the destination address against lo's (all-zero) address and
broadcast address, ifindex and ``dev->type`` (ARPHRD_LOOPBACK) of lo, the
sender's mark, queue 0, no hash, no VLAN tag, network header at 14.

:func:`loopback_safe` rewrites frames that the receive path would change
(802.1Q/802.1ad frames are untagged by ``skb_vlan_untag`` before the taps) or
that would reach the host's protocol stack (IP, ARP, ... addressed to the
host): those are readdressed to another host so that ``ip_rcv`` and friends
drop them.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import platform
import secrets
import socket
import struct
from collections.abc import Iterable, Sequence
from pathlib import Path

from lsfsim.bpf.isa import (
    BPF_ABS,
    BPF_IMM,
    BPF_JEQ,
    BPF_JMP,
    BPF_K,
    BPF_LD,
    BPF_RET,
    BPF_W,
    SKF_AD_MARK,
    SKF_AD_OFF,
    SKF_AD_PKTTYPE,
    Insn,
    encode,
)
from lsfsim.bpf.meta import SkbMeta

# include/uapi/linux/if_ether.h, if_packet.h, asm-generic/socket.h, if_arp.h
ETH_P_ALL = 0x0003
ETH_P_802_3 = 0x0001
ETH_P_802_2 = 0x0004
ETH_P_802_3_MIN = 0x0600
ETH_P_8021Q = 0x8100
ETH_P_8021AD = 0x88A8
SOL_PACKET = 263
PACKET_IGNORE_OUTGOING = 23
SO_ATTACH_FILTER = 26
SO_DETACH_FILTER = 27
SO_MARK = 36
PACKET_HOST, PACKET_BROADCAST, PACKET_MULTICAST, PACKET_OTHERHOST, PACKET_OUTGOING = range(5)
ARPHRD_LOOPBACK = 772

SENTINEL_ETHERTYPE = 0x88B5
"""IEEE 802 "local experimental" ethertype: nothing in the kernel handles it."""

STACK_ETHERTYPES = frozenset(
    {0x0800, 0x0806, 0x8035, 0x86DD, 0x8847, 0x8848, 0x8863, 0x8864, 0x0805, 0x8137,
     0x809B, 0x80F3, 0x6003, 0x88CA, 0x8906, 0x8914, 0x88F7, 0x892F, 0x88FB, 0x4305}
)
"""Ethertypes with a protocol handler in a usual kernel (IPv4, ARP, RARP, IPv6,
MPLS, PPPoE, X.25, IPX, AppleTalk, DECnet, TIPC, FCoE, PTP, HSR, batman).  Frames
of these types, or 802.2/802.3 frames, are always sent to another host."""

MIN_FRAME = 14
MAX_FRAME = 1500
RECV_MAX = 65536
TIMEOUT_S = 2.0

_AD = SKF_AD_OFF & 0xFFFFFFFF


class SockFprog(ctypes.Structure):
    """``struct sock_fprog { unsigned short len; struct sock_filter *filter; }``."""

    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def running_kernel() -> str:
    """The running kernel's release string (``uname -r``), e.g. ``6.18.44-...``."""
    return platform.release()


def optmem_max() -> int | None:
    """``net.core.optmem_max``: the socket option-memory limit filters are charged to."""
    try:
        return int(Path("/proc/sys/net/core/optmem_max").read_text())
    except (OSError, ValueError):
        return None


def _setsockopt_filter(sock: socket.socket, insns: Sequence[Insn]) -> None:
    """``setsockopt(SOL_SOCKET, SO_ATTACH_FILTER, &fprog)``; raises OSError on refusal."""
    blob = encode(list(insns))
    buf = ctypes.create_string_buffer(blob, max(len(blob), 8))
    fprog = SockFprog(len(insns), ctypes.addressof(buf))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, bytes(fprog))


_check_socket: socket.socket | None = None


def attach_errno(insns: Sequence[Insn]) -> str | None:
    """Attach ``insns`` to an unbound packet socket; the errno name, or None if accepted.

    One socket is reused (closing a packet socket waits for an RCU grace period):
    its filter is detached first, which uncharges it at once, so every attach
    starts with nothing charged to the socket's option memory -- the ENOMEM
    threshold of a first attach (a replaced filter would stay charged while the
    new one is charged).
    """
    global _check_socket
    if len(insns) > 0xFFFF:
        raise ValueError(f"{len(insns)} instructions do not fit sock_fprog.len (u16)")
    if _check_socket is None:
        _check_socket = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    sock = _check_socket
    with contextlib.suppress(OSError):  # ENOENT: nothing attached
        sock.setsockopt(socket.SOL_SOCKET, SO_DETACH_FILTER, 0)
    try:
        _setsockopt_filter(sock, insns)
    except OSError as exc:
        return errno.errorcode.get(exc.errno, str(exc.errno))
    return None


def eth_type_trans_protocol(frame: bytes) -> int:
    """skb->protocol (host order) as ``eth_type_trans`` sets it for a frame on lo."""
    proto = int.from_bytes(frame[12:14], "big")
    if proto >= ETH_P_802_3_MIN:
        return proto
    # Novell raw 802.3 (IPX without LLC) starts its payload with 0xFFFF.
    if frame[14:16] == b"\xff\xff":
        return ETH_P_802_3
    return ETH_P_802_2


def _sysfs(ifname: str, attr: str) -> str:
    return Path(f"/sys/class/net/{ifname}/{attr}").read_text().strip()


def _mac(text: str) -> bytes:
    return bytes.fromhex(text.replace(":", ""))


def prefix(test_mark: int, sentinel_mark: int) -> list[Insn]:
    """The instructions put before the program under test (see the module docstring)."""
    ld_abs_w = BPF_LD | BPF_W | BPF_ABS
    jeq_k = BPF_JMP | BPF_JEQ | BPF_K
    return [
        Insn(ld_abs_w, 0, 0, _AD + SKF_AD_PKTTYPE),          # 0: A = skb->pkt_type
        Insn(jeq_k, 4, 0, PACKET_OUTGOING),                  # 1: outgoing copy -> 6
        Insn(ld_abs_w, 0, 0, _AD + SKF_AD_MARK),             # 2: A = skb->mark
        Insn(jeq_k, 3, 0, test_mark),                        # 3: test frame -> 7
        Insn(jeq_k, 0, 1, sentinel_mark),                    # 4: sentinel -> 5, other -> 6
        Insn(BPF_RET | BPF_K, 0, 0, 0xFFFFFFFF),             # 5: keep the sentinel whole
        Insn(BPF_RET | BPF_K, 0, 0, 0),                      # 6: not ours
        Insn(BPF_LD | BPF_W | BPF_IMM, 0, 0, 0),             # 7: A = 0, as at entry
    ]


def unavailable_reason(ifname: str = "lo") -> str | None:
    """Why the kernel oracle cannot run here, or None when it can."""
    if platform.system() != "Linux" or not hasattr(socket, "AF_PACKET"):
        return "kernel oracle needs Linux PF_PACKET sockets"
    if os.geteuid() != 0:
        return "kernel oracle needs root (CAP_NET_RAW and CAP_NET_ADMIN for SO_MARK)"
    try:
        flags = int(_sysfs(ifname, "flags"), 16)
    except (OSError, ValueError):
        return f"no network interface {ifname!r}"
    if not flags & 0x1:  # IFF_UP
        return f"interface {ifname!r} is down"
    try:
        with LoopbackOracle(ifname) as oracle:
            oracle.attach([Insn(BPF_RET | BPF_K, 0, 0, 0xFFFFFFFF)])
            frame = loopback_safe(bytes(6) + bytes.fromhex("020000000001") + b"\x12\x34"
                                  + b"lsfsim" * 10, oracle)
            if oracle.capture(frame) != len(frame):
                return "kernel oracle self-test: an accept-all filter did not capture a frame"
    except OSError as exc:
        return f"PF_PACKET on {ifname!r} does not work here: {exc}"
    except RuntimeError as exc:
        return f"kernel oracle self-test failed: {exc}"
    return None


def loopback_safe(frame: bytes, oracle: LoopbackOracle | None = None) -> bytes:
    """``frame`` changed so that lo's receive path leaves it alone (see module docstring).

    VLAN and sentinel ethertypes are changed in their lowest bit; frames for the
    host's protocol stack get a unicast destination that is not lo's address.
    """
    if not MIN_FRAME <= len(frame) <= MAX_FRAME:
        raise ValueError(f"frame of {len(frame)} bytes, want {MIN_FRAME}..{MAX_FRAME}")
    dev_addr = oracle.dev_addr if oracle else bytes(6)
    dst, rest = frame[:6], frame[6:12]
    proto = int.from_bytes(frame[12:14], "big")
    if proto in (ETH_P_8021Q, ETH_P_8021AD, SENTINEL_ETHERTYPE):
        proto ^= 1
    if proto < ETH_P_802_3_MIN or proto in STACK_ETHERTYPES:
        dst = bytes([(dst[0] | 0x02) & 0xFE]) + dst[1:]
        if dst == dev_addr:
            dst = dst[:5] + bytes([dst[5] ^ 1])
    return dst + rest + proto.to_bytes(2, "big") + frame[14:]


class LoopbackOracle:
    """Capture lengths of frames on ``lo`` through a filter, as the running kernel gives them.

    Use as a context manager; :meth:`attach` a program, then :meth:`capture`
    frames (which must satisfy :func:`loopback_safe`).
    """

    def __init__(self, ifname: str = "lo") -> None:
        self.ifname = ifname
        self.ifindex = socket.if_nametoindex(ifname)
        self.hatype = int(_sysfs(ifname, "type"))
        self.dev_addr = _mac(_sysfs(ifname, "address"))
        self.broadcast = _mac(_sysfs(ifname, "broadcast"))
        self.test_mark, self.sentinel_mark = (secrets.randbits(31) | 1, secrets.randbits(31) | 2)
        if self.test_mark == self.sentinel_mark:
            self.sentinel_mark ^= 4
        self._nonce = secrets.token_bytes(8)
        self._seq = 0
        self._socks: list[socket.socket] = []
        self._saved_affinity = os.sched_getaffinity(0)
        self.cpu = min(self._saved_affinity)
        try:
            os.sched_setaffinity(0, {self.cpu})
            # Protocol 0 receives nothing: attach a refuse-all filter before binding
            # to ETH_P_ALL so that no stray frame is ever queued.
            self._rx = self._open(0)
            _setsockopt_filter(self._rx, [Insn(BPF_RET | BPF_K, 0, 0, 0)])
            self._rx.bind((ifname, ETH_P_ALL))
            with contextlib.suppress(OSError):  # before 4.20 the prefix alone does it
                self._rx.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
            self._rx.settimeout(TIMEOUT_S)
            self._tx_test = self._open(0)
            self._tx_test.setsockopt(socket.SOL_SOCKET, SO_MARK, self.test_mark)
            self._tx_sentinel = self._open(0)
            self._tx_sentinel.setsockopt(socket.SOL_SOCKET, SO_MARK, self.sentinel_mark)
        except BaseException:
            self.close()
            raise

    def _open(self, proto: int) -> socket.socket:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, proto)
        self._socks.append(sock)
        return sock

    def close(self) -> None:
        for sock in self._socks:
            sock.close()
        self._socks.clear()
        os.sched_setaffinity(0, self._saved_affinity)

    def __enter__(self) -> LoopbackOracle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the skb a filter on lo sees -------------------------------------------
    def pkt_type(self, frame: bytes) -> int:
        """skb->pkt_type from ``eth_type_trans`` (lo's broadcast address is all zeros,
        so ff:ff:ff:ff:ff:ff counts as multicast there)."""
        dst = frame[:6]
        if dst == self.dev_addr:
            return PACKET_HOST
        if dst[0] & 1:
            return PACKET_BROADCAST if dst == self.broadcast else PACKET_MULTICAST
        return PACKET_OTHERHOST

    def meta_for(self, frame: bytes) -> SkbMeta:
        """The SkbMeta of ``frame`` as the filter on lo's receive side sees it."""
        return SkbMeta(
            protocol=eth_type_trans_protocol(frame),
            pkt_type=self.pkt_type(frame),
            ifindex=self.ifindex,
            mark=self.test_mark,
            queue_mapping=0,
            hatype=self.hatype,
            rxhash=0,          # nothing computes a flow hash on lo without RPS
            cpu=self.cpu,      # netif_rx queues to the sending CPU's backlog
            vlan_tci=0,
            vlan_present=0,
            vlan_proto=0,      # untagged skb: vlan_proto is never set
            network_offset=14,
        )

    # --- the oracle ------------------------------------------------------------
    def attach(self, insns: Sequence[Insn]) -> None:
        """Attach ``prefix + insns``; raises OSError when the kernel refuses it."""
        _setsockopt_filter(self._rx, prefix(self.test_mark, self.sentinel_mark) + list(insns))

    def _sentinel(self) -> bytes:
        self._seq += 1
        return (bytes.fromhex("020000000002") + bytes.fromhex("020000000001")
                + SENTINEL_ETHERTYPE.to_bytes(2, "big") + self._nonce
                + struct.pack("!Q", self._seq) + bytes(30))

    def capture(self, frame: bytes) -> int:
        """Send ``frame`` on lo; return how many bytes the filtered socket captured (0: none)."""
        if loopback_safe(frame, self) != frame:
            raise ValueError("frame would be changed by lo's receive path; use loopback_safe()")
        sentinel = self._sentinel()
        self._tx_test.sendto(frame, (self.ifname, 0))
        self._tx_sentinel.sendto(sentinel, (self.ifname, 0))
        captured: list[bytes] = []
        while True:
            try:
                data = self._rx.recv(RECV_MAX)
            except TimeoutError:
                raise RuntimeError(f"sentinel {self._seq} not received within {TIMEOUT_S} s"
                                   ) from None
            if data == sentinel:
                break
            captured.append(data)
        if not captured:
            return 0
        if len(captured) > 1 or frame[: len(captured[0])] != captured[0]:
            raise RuntimeError(f"unexpected capture(s) before sentinel {self._seq}: "
                               f"{[c[:32].hex() for c in captured]}")
        return len(captured[0])

    def captures(self, insns: Sequence[Insn], frames: Iterable[bytes]) -> list[int]:
        """Attach ``insns`` and capture each frame in turn."""
        self.attach(insns)
        return [self.capture(frame) for frame in frames]
