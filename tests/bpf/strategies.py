"""Hypothesis strategies for classic BPF: valid programs, packets and skb metadata.

``programs(kernel)`` draws programs that the checker of that kernel accepts: exact
opcodes, in-range jumps, scratch slots written before they are read wherever the
kernel (>= 2.6.38) or libpcap needs it, ancillary offsets only where the kernel
knows them.  The generator is biased toward the interesting corners: loads that
end exactly at or just past the packet end, negative NET/LL/ancillary offsets,
IND loads with X from MSH, shifts and divisions by edge constants, jumps of every
kind.
"""

from __future__ import annotations

import struct

from hypothesis import strategies as st

from lsfsim.bpf.isa import (
    BPF_A,
    BPF_ABS,
    BPF_ADD,
    BPF_ALU,
    BPF_AND,
    BPF_B,
    BPF_DIV,
    BPF_H,
    BPF_IMM,
    BPF_IND,
    BPF_JA,
    BPF_JEQ,
    BPF_JGE,
    BPF_JGT,
    BPF_JMP,
    BPF_JSET,
    BPF_K,
    BPF_LD,
    BPF_LDX,
    BPF_LEN,
    BPF_LSH,
    BPF_MEM,
    BPF_MISC,
    BPF_MOD,
    BPF_MSH,
    BPF_MUL,
    BPF_NEG,
    BPF_OR,
    BPF_RET,
    BPF_RSH,
    BPF_ST,
    BPF_STX,
    BPF_SUB,
    BPF_TAX,
    BPF_TXA,
    BPF_W,
    BPF_X,
    BPF_XOR,
    SKF_AD_OFF,
    SKF_LL_OFF,
    SKF_NET_OFF,
    Insn,
)
from lsfsim.bpf.meta import SkbMeta
from lsfsim.bpf.versions import semantics

U32 = 0xFFFFFFFF
_ALU_OPS = (BPF_ADD, BPF_SUB, BPF_MUL, BPF_DIV, BPF_OR, BPF_AND, BPF_LSH, BPF_RSH)
_JMP_OPS = (BPF_JEQ, BPF_JGT, BPF_JGE, BPF_JSET)
_SIZES = {BPF_W: 4, BPF_H: 2, BPF_B: 1}
_EDGE_K = (0, 1, 2, 3, 4, 7, 8, 12, 14, 15, 16, 31, 32, 33, 63, 0x800, 0xFFFF, 0x7FFFFFFF,
           0x80000000, 0xFFFFFFFE, U32)


def _u32(v: int) -> int:
    return v & U32


@st.composite
def _offset(draw, size: int, max_packet: int, negative: bool, ancillary: list[int]) -> int:
    """An ABS/IND/MSH offset k (u32): in the packet, at its end, negative, or wild."""
    kind = draw(st.integers(0, 9))
    if kind <= 4:
        return draw(st.integers(0, max_packet + 2))
    if kind == 5:  # straddling a likely packet end
        end = draw(st.sampled_from((14, 20, 34, 42, 54, 60, 64, max_packet)))
        return max(0, end - size + draw(st.integers(-1, 2)))
    if kind == 6 and negative:
        return _u32(SKF_NET_OFF + draw(st.integers(0, 70)))
    if kind == 7 and negative:
        return _u32(SKF_LL_OFF + draw(st.integers(0, 70)))
    if kind == 8 and ancillary:
        return _u32(SKF_AD_OFF + draw(st.sampled_from(ancillary)))
    if kind == 9:
        return draw(st.one_of(st.sampled_from((U32, _u32(SKF_LL_OFF - 1), 0x7FFFFFFF,
                                               _u32(SKF_AD_OFF + 64), _u32(SKF_NET_OFF - 1))),
                              st.integers(0, U32)))
    return draw(st.integers(0, 64))


@st.composite
def programs(draw, kernel: str = "2.6.33", ancillary: bool = True,
             allow_mod_xor: bool | None = None, max_len: int = 40) -> list[Insn]:
    """A program (list of Insn) that ``sk_chk_filter(.., semantics(kernel))`` accepts.

    ``ancillary`` lets ABS/IND loads use the ancillary offsets that kernel knows
    (for libpcap they are just out-of-range loads).  ``allow_mod_xor`` defaults
    to what the kernel accepts; True for a kernel without them is an error.
    """
    sem = semantics(kernel)
    if allow_mod_xor is None:
        allow_mod_xor = sem.mod_xor
    elif allow_mod_xor and not sem.mod_xor:
        raise ValueError(f"kernel {kernel} has no BPF_MOD/BPF_XOR")
    if max_len < 1:
        raise ValueError("max_len must be at least 1")
    if sem.max_insns is not None:
        max_len = min(max_len, sem.max_insns - (1 if sem.converter_rejects_max else 0))
    n = draw(st.integers(min_value=1, max_value=max_len))
    anc = sorted(sem.ancillary) if ancillary else []
    if ancillary and sem.libpcap:
        anc = [0, 4, 44, 48]  # libpcap: out-of-range loads; 44/48 are its VLAN special cases
    # IND loads reach the ancillary range only on <= 2.6.37, yet any kernel must accept them.
    track_mem = sem.mem_uninit == "reject" or sem.libpcap
    alu_ops = _ALU_OPS + ((BPF_MOD, BPF_XOR) if allow_mod_xor else ())
    masks = [0xFFFF] * n  # check_load_and_stores' incoming masks
    memvalid = 0
    out: list[Insn] = []
    for pc in range(n - 1):
        memvalid &= masks[pc]
        room = n - pc - 2  # largest jump offset that stays in the program
        kind = draw(st.sampled_from(
            ("ld", "ld", "ld", "ldx", "st", "alu", "alu", "jmp", "jmp", "ja", "misc", "ret",
             "ldmem")))
        if kind == "ldmem":
            slots = [s for s in range(16) if memvalid >> s & 1] if track_mem else list(range(16))
            if not slots:
                kind = "st"
            else:
                slot = draw(st.sampled_from(slots))
                out.append(Insn(draw(st.sampled_from((BPF_LD, BPF_LDX))) | BPF_MEM, 0, 0, slot))
                continue
        if kind == "ld":
            mode = draw(st.sampled_from((BPF_ABS, BPF_ABS, BPF_IND, BPF_IMM, BPF_LEN)))
            if mode == BPF_IMM:
                out.append(Insn(BPF_LD | BPF_IMM, 0, 0, draw(st.sampled_from(_EDGE_K))))
            elif mode == BPF_LEN:
                out.append(Insn(BPF_LD | BPF_W | BPF_LEN, 0, 0, 0))
            else:
                size = draw(st.sampled_from((BPF_W, BPF_H, BPF_B)))
                k = draw(_offset(_SIZES[size], 80, True, anc))
                if (mode == BPF_ABS and sem.anc_reject_unknown and k >= 0xFFFFF000
                        and k - 0xFFFFF000 not in sem.ancillary):
                    k = _u32(SKF_AD_OFF + draw(st.sampled_from(anc))) if anc else 14
                if mode == BPF_IND:
                    # X is usually a small header length; k then a small offset.
                    k = draw(st.one_of(st.just(k), st.integers(0, 40)))
                out.append(Insn(BPF_LD | size | mode, 0, 0, k))
        elif kind == "ldx":
            mode = draw(st.sampled_from((BPF_IMM, BPF_LEN, BPF_MSH, BPF_MSH)))
            if mode == BPF_MSH:
                k = draw(_offset(1, 80, True, [0, 4]))
                out.append(Insn(BPF_LDX | BPF_B | BPF_MSH, 0, 0, k))
            elif mode == BPF_IMM:
                out.append(Insn(BPF_LDX | BPF_W | BPF_IMM, 0, 0,
                                draw(st.one_of(st.sampled_from(_EDGE_K), st.integers(0, 60)))))
            else:
                out.append(Insn(BPF_LDX | BPF_W | BPF_LEN, 0, 0, 0))
        elif kind == "st":
            slot = draw(st.integers(0, 15))
            out.append(Insn(draw(st.sampled_from((BPF_ST, BPF_STX))), 0, 0, slot))
            memvalid |= 1 << slot
        elif kind == "alu":
            op = draw(st.sampled_from(alu_ops + (BPF_NEG,)))
            if op == BPF_NEG:
                out.append(Insn(BPF_ALU | BPF_NEG, 0, 0, 0))
                continue
            src = draw(st.sampled_from((BPF_K, BPF_X)))
            k = 0
            if src == BPF_K:
                k = draw(st.one_of(st.sampled_from(_EDGE_K), st.integers(0, U32)))
                if op in (BPF_DIV, BPF_MOD) and k == 0:
                    k = draw(st.sampled_from((1, 2, 3, 7, 0x10000, U32)))
                if op in (BPF_LSH, BPF_RSH) and sem.shift_k_reject:
                    k &= 31
            out.append(Insn(BPF_ALU | op | src, 0, 0, k))
        elif kind == "jmp" and room >= 0:
            op = draw(st.sampled_from(_JMP_OPS))
            src = draw(st.sampled_from((BPF_K, BPF_X)))
            k = 0 if src == BPF_X else draw(st.one_of(st.sampled_from(_EDGE_K),
                                                      st.integers(0, U32)))
            jt = draw(st.integers(0, min(room, 255)))
            jf = draw(st.integers(0, min(room, 255)))
            out.append(Insn(BPF_JMP | op | src, jt, jf, k))
            masks[pc + 1 + jt] &= memvalid
            masks[pc + 1 + jf] &= memvalid
            memvalid = 0xFFFF
        elif kind == "ja" and room >= 0:
            k = draw(st.integers(0, room))
            out.append(Insn(BPF_JMP | BPF_JA, 0, 0, k))
            masks[pc + 1 + k] &= memvalid
            memvalid = 0xFFFF
        elif kind == "misc":
            out.append(Insn(BPF_MISC | draw(st.sampled_from((BPF_TAX, BPF_TXA))), 0, 0, 0))
        elif kind == "ret":
            out.append(_ret(draw))
        else:  # a jump with no room left: a plain load instead
            out.append(Insn(BPF_LD | BPF_IMM, 0, 0, draw(st.integers(0, U32))))
    out.append(_ret(draw))
    return out


def _ret(draw) -> Insn:
    if draw(st.booleans()):
        return Insn(BPF_RET | BPF_A, 0, 0, 0)
    return Insn(BPF_RET | BPF_K, 0, 0,
                draw(st.one_of(st.sampled_from((0, 1, 96, 0xFFFF, 262144, U32)),
                               st.integers(0, U32))))


def _ethernet(ethertype: int, payload: bytes) -> bytes:
    return bytes(6) + b"\x02\x00\x00\x00\x00\x01" + struct.pack("!H", ethertype) + payload


@st.composite
def _structured_packet(draw, max_size: int) -> bytes:
    """Ethernet + IPv4/IPv6/ARP/802.1Q with plausible headers, then truncated."""
    kind = draw(st.sampled_from(("ipv4", "ipv4", "ipv6", "arp", "vlan", "nl")))
    proto = draw(st.sampled_from((6, 17, 1, 2, 33, 132, 58, 47, draw(st.integers(0, 255)))))
    l4 = draw(st.binary(min_size=0, max_size=40))
    if proto == 6 and len(l4) >= 13:
        l4 = l4[:12] + bytes([draw(st.integers(0, 15)) << 4]) + l4[13:]
    if kind in ("ipv4", "vlan"):
        ihl = draw(st.sampled_from((5, 5, 5, 6, 4, 15)))
        frag = draw(st.sampled_from((0, 0, 0x4000, 0x2000, 0x0010)))
        ip = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, 20 + len(l4), 0, frag, 64, proto, 0,
                         bytes([10, 0, 0, 1]), bytes([208, 68, 139, 89]))
        ip += bytes(max(0, ihl * 4 - 20))
        frame = _ethernet(0x0800, ip + l4)
        if kind == "vlan":
            frame = frame[:12] + struct.pack("!HH", 0x8100, draw(st.integers(0, 0xFFFF))) + \
                frame[12:]
    elif kind == "ipv6":
        ip6 = struct.pack("!IHBB16s16s", 0x60000000, len(l4), proto, 64, bytes(16), bytes(16))
        frame = _ethernet(0x86DD, ip6 + l4)
    elif kind == "arp":
        frame = _ethernet(0x0806, draw(st.binary(min_size=28, max_size=28)))
    else:  # netlink attributes from offset 0, for NLATTR walks
        attrs = b""
        for _ in range(draw(st.integers(0, 5))):
            body = draw(st.binary(max_size=9))
            nla_len = draw(st.sampled_from((4 + len(body), 4 + len(body), 0, 3, 200)))
            attrs += struct.pack("<HH", nla_len, draw(st.integers(0, 6) | st.integers(0, 0xFFFF)))
            attrs += body + bytes(-len(body) % 4)
        frame = attrs
    cut = draw(st.integers(0, len(frame)))
    if draw(st.booleans()):
        cut = len(frame)
    return frame[: min(cut, max_size)]


def packets(min_size: int = 0, max_size: int = 128) -> st.SearchStrategy[bytes]:
    """Packets as bytes: random bytes, or Ethernet frames with real-looking headers."""
    raw = st.binary(min_size=min_size, max_size=max_size)
    return st.one_of(raw, _structured_packet(max_size).filter(lambda p: len(p) >= min_size))


def metas() -> st.SearchStrategy[SkbMeta]:
    """SkbMeta with every field drawn, including odd network offsets and VLAN states."""
    return st.builds(
        SkbMeta,
        protocol=st.sampled_from((0x0800, 0x86DD, 0x0806, 0x8100, 0)) | st.integers(0, 0xFFFF),
        pkt_type=st.integers(0, 7),
        ifindex=st.integers(0, 1000) | st.integers(0, 0x7FFFFFFF),
        mark=st.integers(0, 0xFFFFFFFF),
        queue_mapping=st.integers(0, 0xFFFF),
        hatype=st.sampled_from((1, 772, 0xFFFE)) | st.integers(0, 0xFFFF),
        rxhash=st.integers(0, 0xFFFFFFFF),
        cpu=st.integers(0, 3),
        vlan_tci=st.integers(0, 0xFFFF),
        vlan_present=st.integers(0, 1),
        vlan_proto=st.sampled_from((0x8100, 0x88A8, 0)),
        network_offset=st.sampled_from((14, 14, 18, 0)) | st.integers(0, 80),
        random_seed=st.integers(0, 2**64 - 1),
    )
