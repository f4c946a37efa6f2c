"""The reference interpreter: sk_run_filter, one dispatch per instruction.

This is the plain, obviously-correct machine the compiled filters (jit.py) and
the tracer (dbg.py) are checked against.  It does not check the program: the
caller (Program.run) runs sk_chk_filter first, so jumps stay inside the
program and the last instruction is a RET.

The packet is the skb as packet_rcv hands it to the filter: offset 0 is the MAC
header, ``len(packet)`` is ``skb->len``.  A failed load ends the program with 0,
as the kernel's ``load_pointer`` returning NULL does.  Helpers shared with the
code generator (loads, ancillary values, the flow dissector of PAY_OFFSET, the
RANDOM stream) live here so that both engines compute the same thing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from lsfsim.bpf.errors import FilterError
from lsfsim.bpf.instructions import (
    TAX,
    TXA,
    ALUOp,
    ALUOpConstant,
    ALUOpX,
    Jump,
    JumpIf,
    JumpIfX,
    JumpTest,
    LoadAbsolute,
    LoadConstant,
    LoadIndirect,
    LoadLength,
    LoadMemShift,
    LoadScratch,
    NegateA,
    RetA,
    RetConstant,
    StoreScratch,
    decode_program,
)
from lsfsim.bpf.isa import (
    BPF_MEMWORDS,
    SKF_AD_ALU_XOR_X,
    SKF_AD_CPU,
    SKF_AD_HATYPE,
    SKF_AD_IFINDEX,
    SKF_AD_MARK,
    SKF_AD_NLATTR,
    SKF_AD_NLATTR_NEST,
    SKF_AD_OFF,
    SKF_AD_PAY_OFFSET,
    SKF_AD_PKTTYPE,
    SKF_AD_PROTOCOL,
    SKF_AD_QUEUE,
    SKF_AD_RANDOM,
    SKF_AD_RXHASH,
    SKF_AD_VLAN_TAG,
    SKF_AD_VLAN_TAG_PRESENT,
    SKF_AD_VLAN_TPID,
    SKF_LL_OFF,
    SKF_NET_OFF,
    Insn,
)
from lsfsim.bpf.meta import DEFAULT_META, SkbMeta
from lsfsim.bpf.versions import KernelSemantics

U32 = 0xFFFFFFFF

# Ancillary loads that only read an sk_buff field: offset -> (SkbMeta field, mask of the
# kernel's field width).  PROTOCOL is ntohs(skb->protocol), PKTTYPE a 3-bit field,
# QUEUE and HATYPE u16.
ANC_FIELDS: dict[int, tuple[str, int]] = {
    SKF_AD_PROTOCOL: ("protocol", 0xFFFF),
    SKF_AD_PKTTYPE: ("pkt_type", 0x7),
    SKF_AD_IFINDEX: ("ifindex", U32),
    SKF_AD_MARK: ("mark", U32),
    SKF_AD_QUEUE: ("queue_mapping", 0xFFFF),
    SKF_AD_HATYPE: ("hatype", 0xFFFF),
    SKF_AD_RXHASH: ("rxhash", U32),
    SKF_AD_CPU: ("cpu", U32),
}


# --- packet loads ------------------------------------------------------------------
def load_kernel(pkt: bytes, k: int, size: int, sem: KernelSemantics,
                meta: SkbMeta) -> int | None:
    """load_pointer(): ``size`` big-endian bytes at the signed offset ``k``, or None.

    k >= 0 reads the packet (skb_header_pointer).  Negative k: SKF_NET_OFF and
    SKF_LL_OFF ranges relative to the network header (``meta.network_offset``) and
    the MAC header (0).  <= 2.6.37 a k in the ancillary range is no packet load at
    all (the caller decodes it), and only the first byte of a NET/LL access is
    checked against the tail: bytes past the end of ``pkt`` then read as 0 (the
    real kernel reads whatever lies in the skb's tailroom).  From 2.6.38 the
    ancillary range falls into the NET branch (network header + ~1 MiB: never
    inside a packet) and the whole access must fit.
    """
    n = len(pkt)
    if k >= 0:
        if k + size <= n:
            return int.from_bytes(pkt[k:k + size], "big")
        return None
    if sem.anc_runtime and k >= SKF_AD_OFF:
        return None
    if k >= SKF_NET_OFF:
        off = meta.network_offset + (k - SKF_NET_OFF)
    elif k >= SKF_LL_OFF:
        off = k - SKF_LL_OFF
    else:
        return None
    if off < 0:
        return None
    if sem.negoff_first_byte:
        if off >= n:
            return None
        return int.from_bytes(pkt[off:off + size].ljust(size, b"\0"), "big")
    if off + size <= n:
        return int.from_bytes(pkt[off:off + size], "big")
    return None


def load_libpcap(pkt: bytes, off: int, size: int) -> int | None:
    """libpcap's bpf_filter: u32 offsets (IND: X + k without wrap-around) against buflen."""
    if off + size <= len(pkt):
        return int.from_bytes(pkt[off:off + size], "big")
    return None


# --- ancillary data ----------------------------------------------------------------
def random_u32(seed: int, index: int) -> int:
    """The ``index``-th value of SKF_AD_RANDOM in one run: splitmix64 of the seed.

    The kernel's prandom_u32() is not reproducible; here each run draws a fixed
    stream from ``meta.random_seed`` (the simulator gives each packet its own seed).
    """
    z = (seed + (index + 1) * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return (z ^ (z >> 31)) >> 32


def _u16le(pkt: bytes, off: int) -> int:
    """A host-order (x86: little-endian) u16; bytes past the packet read as 0."""
    return int.from_bytes(pkt[off:off + 2].ljust(2, b"\0"), "little")


def nla_find(pkt: bytes, start: int, length: int, attrtype: int) -> int | None:
    """nla_find(): the offset of the first attribute of ``attrtype`` in [start, start+length).

    ``nla_ok`` is ``rem >= 4 && 4 <= nla_len <= rem``; the type is compared without
    the NESTED/NET_BYTEORDER flag bits.  Attributes are host-order (little-endian).
    """
    pos, rem = start, length
    while rem >= 4:
        nla_len = _u16le(pkt, pos)
        if nla_len < 4 or nla_len > rem:
            break
        if _u16le(pkt, pos + 2) & 0x3FFF == attrtype:
            return pos
        step = (nla_len + 3) & ~3
        pos += step
        rem -= step
    return None


def nlattr(pkt: bytes, a: int, x: int, nest: bool, sem: KernelSemantics) -> int | None:
    """SKF_AD_NLATTR(_NEST): A = offset of attribute type X from offset A, else 0.

    <= 3.14 (interpreter): ``A > len - 4`` drops the packet (None); the nest check
    ``nla_len > A - len`` (unsigned) never fires, so the nested walk may run past
    the packet (those bytes read as 0 here).  >= 3.15 (eBPF helpers): every failed
    check gives A = 0, ``len < 4`` included, and the nest check is
    ``nla_len > len - A``.
    """
    n = len(pkt)
    if sem.nla_helper:
        if n < 4 or a > n - 4:
            return 0
        if nest:
            nla_len = _u16le(pkt, a)
            if nla_len > n - a:
                return 0
            found = nla_find(pkt, a + 4, nla_len - 4, x)
        else:
            found = nla_find(pkt, a, n - a, x)
        return 0 if found is None else found
    if n >= 4 and a > n - 4:
        return None  # the interpreter's "return 0"
    # n < 4: skb->len - sizeof(struct nlattr) wraps (size_t), so A passes; the walk's
    # remaining length (len - A as int) is then < 4 or negative and finds nothing.
    if nest:
        nla_len = _u16le(pkt, a)
        found = nla_find(pkt, a + 4, nla_len - 4, x)
    else:
        found = nla_find(pkt, a, n - a, x)
    return 0 if found is None else found


def ancillary(off: int, a: int, x: int, pkt: bytes, meta: SkbMeta, sem: KernelSemantics,
              rnd: int) -> int | None:
    """The value an ancillary load puts in A (None: the program returns 0).

    ``off`` must be in ``sem.ancillary``; ``rnd`` is how many RANDOM loads this
    run has made before this one.
    """
    field = ANC_FIELDS.get(off)
    if field is not None:
        return getattr(meta, field[0]) & field[1]
    if off in (SKF_AD_NLATTR, SKF_AD_NLATTR_NEST):
        return nlattr(pkt, a, x, off == SKF_AD_NLATTR_NEST, sem)
    if off == SKF_AD_ALU_XOR_X:
        return a ^ x
    if off == SKF_AD_RANDOM:
        return random_u32(meta.random_seed, rnd)
    if off == SKF_AD_PAY_OFFSET:
        return skb_get_poff(pkt, meta)
    if off in (SKF_AD_VLAN_TAG, SKF_AD_VLAN_TAG_PRESENT, SKF_AD_VLAN_TPID):
        return vlan_value(off, meta, sem)
    raise ValueError(f"ancillary offset {off} is not known")  # pragma: no cover


def vlan_value(off: int, meta: SkbMeta, sem: KernelSemantics) -> int:
    """VLAN_TAG / VLAN_TAG_PRESENT / VLAN_TPID by era.

    ``meta.vlan_tci``/``vlan_proto`` describe the tag taken off the frame and count
    only when ``meta.vlan_present`` is set: a skb that never carried a tag has
    both zero.  3.8-4.20 keep "present" in bit 0x1000 of vlan_tci, so VLAN_TAG
    loses the DEI bit; 5.0 has a separate flag; 6.2 says present iff
    vlan_proto or vlan_tci is non-zero.
    """
    present = bool(meta.vlan_present)
    tci = meta.vlan_tci & 0xFFFF if present else 0
    proto = meta.vlan_proto & 0xFFFF if present else 0
    if off == SKF_AD_VLAN_TPID:
        return proto
    if sem.vlan_mode == "cfi":
        skb_tci = tci | 0x1000 if present else 0
        return skb_tci & ~0x1000 if off == SKF_AD_VLAN_TAG else skb_tci >> 12 & 1
    if off == SKF_AD_VLAN_TAG:
        return tci
    if sem.vlan_mode == "all":
        return int(bool(proto or tci))
    return int(present)


# --- PAY_OFFSET: the flow dissector ------------------------------------------------
# L4 header bytes by IP protocol: UDP, UDP-Lite, ICMP, ICMPv6, IGMP 8; DCCP, SCTP 12.
_L4_HEADER = {17: 8, 136: 8, 1: 8, 58: 8, 2: 8, 33: 12, 132: 12}
_MAX_FLOW_DISSECT_HDRS = 15


def skb_get_poff(pkt: bytes, meta: SkbMeta) -> int:
    """skb_get_poff(): payload offset = transport offset + the L4 header length, or 0.

    A model of today's __skb_flow_dissect with the basic keys, starting from
    skb->protocol (``meta.protocol``) at the network header: IPv4 (with
    fragments, IP-in-IP, IPv6-in-IP), IPv6 (hop-by-hop, routing, destination and
    fragment headers), 802.1Q/802.1ad tags in the data, MPLS, ARP/RARP, FCoE, PTP
    and TIPC.  Not modelled: GRE and other tunnels, PPPoE, batman, HSR/PRP (the
    dissector gives up: 0).  Older kernels' dissectors differ in such corners
    (3.10 ignores the L4 header of every fragment).
    """
    n = len(pkt)
    proto = meta.protocol & 0xFFFF
    nhoff = meta.network_offset
    ip_proto = 0
    hdrs = 0
    frag = first_frag = False

    def have(off: int, size: int) -> bool:
        return off >= 0 and off + size <= n

    while True:  # proto_again
        if proto == 0x0800:
            if not have(nhoff, 20) or pkt[nhoff] & 0x0F < 5:
                return 0
            ihl = pkt[nhoff] & 0x0F
            ip_proto = pkt[nhoff + 9]
            frag_off = int.from_bytes(pkt[nhoff + 6:nhoff + 8], "big")
            nhoff += ihl * 4
            if frag_off & 0x3FFF:  # MF or an offset: ip_is_fragment
                frag = True
                first_frag = not frag_off & 0x1FFF
                break  # FLOW_DISSECT_RET_OUT_GOOD: the 1st fragment is not parsed further
        elif proto == 0x86DD:
            if not have(nhoff, 40):
                return 0
            ip_proto = pkt[nhoff + 6]
            nhoff += 40
        elif proto in (0x8100, 0x88A8):
            if not have(nhoff, 4):
                return 0
            proto = int.from_bytes(pkt[nhoff + 2:nhoff + 4], "big")
            nhoff += 4
            hdrs += 1
            if hdrs > _MAX_FLOW_DISSECT_HDRS:
                break
            continue
        elif proto in (0x8847, 0x8848):  # MPLS: without MPLS keys, stop after one label
            nhoff += 4
            break
        elif proto in (0x0806, 0x8035):  # ARP/RARP: no ARP key, done
            break
        elif proto == 0x88F7:  # PTP over Ethernet: a 34-byte header
            if not have(nhoff, 34):
                return 0
            nhoff += 34
            break
        elif proto == 0x8906:  # FCoE
            if n - nhoff < 38:
                return 0
            nhoff += 38
            break
        elif proto == 0x88CA:  # TIPC: the basic header must be there
            if not have(nhoff, 16):
                return 0
            break
        else:
            return 0
        # ip_proto_again: IPv6 extension headers, then encapsulations
        done = False
        while proto == 0x86DD and ip_proto in (0, 43, 60, 44):
            if ip_proto == 44:  # fragment header
                if not have(nhoff, 8):
                    return 0
                frag = True
                first_frag = not int.from_bytes(pkt[nhoff + 2:nhoff + 4], "big") & 0xFFF8
                ip_proto = pkt[nhoff]
                nhoff += 8
                done = True
                break
            if not have(nhoff, 2):  # hop-by-hop, routing, destination options
                return 0
            ip_proto, nhoff = pkt[nhoff], nhoff + ((pkt[nhoff + 1] + 1) << 3)
            hdrs += 1
            if hdrs > _MAX_FLOW_DISSECT_HDRS:
                done = True
                break
        if done or ip_proto not in (4, 41, 137):
            break
        proto = {4: 0x0800, 41: 0x86DD, 137: 0x8847}[ip_proto]  # IP-in-IP, 6-in-4, MPLS
        hdrs += 1
        if hdrs > _MAX_FLOW_DISSECT_HDRS:
            break
    thoff = min(nhoff, n, 0xFFFF)
    if frag and not first_frag:
        return thoff
    if ip_proto == 6:
        if not have(thoff + 12, 1):
            return thoff
        return thoff + max(20, (pkt[thoff + 12] & 0xF0) >> 2)
    return thoff + _L4_HEADER.get(ip_proto, 0)


# --- ALU helpers -------------------------------------------------------------------
def reciprocal_value(k: int) -> int:
    """2.6.38-3.12 reciprocal_value(): ceil(2**32 / k) truncated to u32 (k == 1 gives 0)."""
    return (((1 << 32) + k - 1) // k) & U32


def div_k(a: int, k: int, sem: KernelSemantics) -> int:
    """A / k: exact, or the reciprocal multiplication of 2.6.38-3.12."""
    if sem.div_reciprocal:
        return (a * reciprocal_value(k)) >> 32
    return a // k


# --- the interpreter ---------------------------------------------------------------
MAX_BACKWARD_JUMPS = 100_000
"""libpcap only (kernels jump forward only): a run taking more backward jumps than this
raises FilterError("ELOOP").  libpcap 1.10 itself would loop for ever; a terminating
``protochain`` loop advances at least 8 bytes per turn, so needs far fewer."""

StepHook = Callable[[int, int, int, list[int], int | None], None]
"""on_step(pc, A, X, M, verdict): after each instruction; verdict set when it ends the run."""


def run(insns: Sequence[Insn], packet: bytes, meta: SkbMeta | None, sem: KernelSemantics,
        wirelen: int | None = None) -> int:
    """Run a checked program on ``packet``; return what it returns (u32)."""
    return execute(insns, packet, meta, sem, wirelen)[0]


def execute(insns: Sequence[Insn], packet: bytes, meta: SkbMeta | None,
            sem: KernelSemantics, wirelen: int | None = None,
            on_step: StepHook | None = None) -> tuple[int, int]:
    """sk_run_filter: return (verdict, instructions executed, the final one included).

    ``wirelen`` is what BPF_LEN loads (libpcap: the wire length; default
    ``len(packet)``, which is skb->len in the kernel: leave it None there).
    Loads are always checked against ``len(packet)``.  The cases follow the
    kernel's switch, one per named instruction (instructions.py).
    """
    meta = DEFAULT_META if meta is None else meta
    prog = decode_program(insns)
    pkt = bytes(packet)
    length = (len(pkt) if wirelen is None else wirelen) & U32
    pcap = sem.libpcap
    a = x = 0
    mem = [0] * BPF_MEMWORDS  # <= 2.6.36: stack garbage, modelled as 0 (see versions.py)
    rnd = 0
    pc = steps = backward = 0
    flen = len(prog)
    while pc < flen:
        # Any: the dispatch below tests ``type(ins) is X`` (cheaper than isinstance or
        # match), which mypy does not narrow; each case reads only its class's fields.
        ins: Any = prog[pc]
        steps += 1
        ret: int | None = None  # set when this instruction ends the program
        nxt = pc + 1
        kind = type(ins)  # one identity test per case: cheaper than match's class patterns
        if kind is LoadAbsolute:
            val, rnd, fail = load_abs_ind(False, ins.k, ins.size, a, x, pkt, meta, sem, rnd)
            if fail:
                ret = 0
            else:
                a = val
        elif kind is JumpIf:
            test, k = ins.test, ins.k
            if test is _JEQ:
                cond = a == k
            elif test is _JGT:
                cond = a > k
            elif test is _JGE:
                cond = a >= k
            else:  # JSET
                cond = (a & k) != 0
            nxt = pc + 1 + (ins.jt if cond else ins.jf)
        elif kind is LoadIndirect:
            val, rnd, fail = load_abs_ind(True, ins.k, ins.size, a, x, pkt, meta, sem, rnd)
            if fail:
                ret = 0
            else:
                a = val
        elif kind is JumpIfX:
            nxt = pc + 1 + (ins.jt if _test(ins.test, a, x) else ins.jf)
        elif kind is RetConstant:
            ret = ins.k
        elif kind is RetA:
            ret = a
        elif kind is LoadMemShift:  # X = 4 * (pkt[k] & 0xf)
            k = ins.k
            b = load_libpcap(pkt, k, 1) if pcap else load_kernel(pkt, _s32(k), 1, sem, meta)
            if b is None:
                ret = 0
            else:
                x = (b & 0x0F) << 2
        elif kind is LoadConstant:
            if ins.dst == "A":
                a = ins.k
            else:
                x = ins.k
        elif kind is LoadLength:
            if ins.dst == "A":
                a = length
            else:
                x = length
        elif kind is LoadScratch:
            if ins.dst == "A":
                a = mem[ins.n]
            else:
                x = mem[ins.n]
        elif kind is StoreScratch:
            mem[ins.n] = a if ins.src == "A" else x
        elif kind is ALUOpConstant:
            a, ret = _alu(ins.op, a, ins.k, False, sem)
        elif kind is ALUOpX:
            a, ret = _alu(ins.op, a, x, True, sem)
        elif kind is NegateA:
            a = -a & U32
        elif kind is Jump:
            k = ins.k
            if pcap and k >> 31:  # libpcap: a backward jump (protochain loops)
                backward += 1
                if backward > MAX_BACKWARD_JUMPS:
                    raise FilterError("ELOOP", f"no RET after {MAX_BACKWARD_JUMPS} "
                                      "backward jumps: the program loops", pc)
                nxt = pc + 1 + _s32(k)
            else:
                nxt = pc + 1 + k
        elif kind is TAX:
            x = a
        elif kind is TXA:
            a = x
        else:  # pragma: no cover - refused by the checker
            raise FilterError("EINVAL", f"invalid opcode {insns[pc][0]:#06x}", pc)
        if on_step is not None:
            on_step(pc, a, x, mem, ret)
        if ret is not None:
            return ret & U32, steps
        pc = nxt
    return 0, steps  # falling off the end: impossible after the checker


_JEQ, _JGT, _JGE = JumpTest.JEQ, JumpTest.JGT, JumpTest.JGE


def _test(test: JumpTest, a: int, src: int) -> bool:
    """The condition of a conditional jump (JumpIfX; JumpIf is inlined in execute)."""
    if test is _JEQ:
        return a == src
    if test is _JGT:
        return a > src
    if test is _JGE:
        return a >= src
    return (a & src) != 0  # JSET


def _alu(op: ALUOp, a: int, src: int, use_x: bool, sem: KernelSemantics) -> tuple[int, int | None]:
    """One ALU operation: (new A, None), or (A, 0) when it ends the run (A / 0, A % 0)."""
    if op == ALUOp.ADD:
        return (a + src) & U32, None
    if op == ALUOp.SUB:
        return (a - src) & U32, None
    if op == ALUOp.MUL:
        return (a * src) & U32, None
    if op == ALUOp.DIV:
        if not use_x:
            return div_k(a, src, sem), None
        return (a, 0) if src == 0 else (a // src, None)
    if op == ALUOp.MOD:
        return (a, 0) if src == 0 else (a % src, None)
    if op == ALUOp.OR:
        return a | src, None
    if op == ALUOp.AND:
        return a & src, None
    if op == ALUOp.XOR:
        return a ^ src, None
    # LSH, RSH
    if sem.libpcap and use_x and src >= 32:
        return 0, None
    n = src & 31  # x86 masks the count (libpcap K shifts alike)
    return ((a << n) & U32 if op == ALUOp.LSH else a >> n), None


def _s32(k: int) -> int:
    return k - (1 << 32) if k & 0x80000000 else k


def load_abs_ind(ind: bool, k: int, size: int, a: int, x: int, pkt: bytes, meta: SkbMeta,
                 sem: KernelSemantics, rnd: int) -> tuple[int, int, bool]:
    """An LD ABS (``ind`` False) or LD IND: (value, RANDOM loads so far, failed)."""
    if sem.libpcap:
        val = load_libpcap(pkt, x + k if ind else k, size)
        return (val or 0), rnd, val is None
    off = _s32((x + k) & U32) if ind else _s32(k)
    if not ind and not sem.anc_runtime and off < 0 and off - SKF_AD_OFF in sem.ancillary:
        # >= 2.6.38: decoded at attach, LD ABS only.
        anc = off - SKF_AD_OFF
        val = ancillary(anc, a, x, pkt, meta, sem, rnd)
        return (val or 0), rnd + (anc == SKF_AD_RANDOM), val is None
    val = load_kernel(pkt, off, size, sem, meta)
    if val is None and sem.anc_runtime and SKF_AD_OFF <= off < 0:
        # <= 2.6.37: the failed load falls into the run-time ancillary switch.
        anc = off - SKF_AD_OFF
        if anc in sem.ancillary:
            val = ancillary(anc, a, x, pkt, meta, sem, rnd)
            return (val or 0), rnd + (anc == SKF_AD_RANDOM), val is None
    return (val or 0), rnd, val is None
