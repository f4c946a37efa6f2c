"""The attach-time checker: sk_chk_filter (bpf_check_classic from 3.17) by kernel era.

What ``setsockopt(SO_ATTACH_FILTER)`` refuses, in the order the kernel finds it:
the optmem charge (ENOMEM, before anything else up to 3.16), the length, the
per-instruction rules in pc order, the final RET, check_load_and_stores (2.6.38+),
and, from 3.15, the eBPF converter and (3.17+) the optmem charge of the converted
program.  For ``semantics("libpcap")`` it is libpcap's ``bpf_validate`` instead.
"""

from __future__ import annotations

from collections.abc import Sequence

from lsfsim.bpf.errors import FilterError
from lsfsim.bpf.isa import (
    BPF_ABS,
    BPF_ALU,
    BPF_B,
    BPF_CLASS,
    BPF_DIV,
    BPF_H,
    BPF_IND,
    BPF_JA,
    BPF_JMP,
    BPF_K,
    BPF_LD,
    BPF_LDX,
    BPF_LSH,
    BPF_MEM,
    BPF_MEMWORDS,
    BPF_MOD,
    BPF_MODE,
    BPF_MSH,
    BPF_OP,
    BPF_RET,
    BPF_RSH,
    BPF_SRC,
    BPF_ST,
    BPF_STX,
    BPF_W,
    BPF_X,
    CODES_2_6_33,
    CODES_MOD_XOR,
    SKF_AD_ALU_XOR_X,
    SKF_AD_HATYPE,
    SKF_AD_IFINDEX,
    SKF_AD_MARK,
    SKF_AD_PKTTYPE,
    SKF_AD_PROTOCOL,
    SKF_AD_QUEUE,
    SKF_AD_RXHASH,
    SKF_AD_VLAN_TAG,
    SKF_AD_VLAN_TAG_PRESENT,
    SKF_AD_VLAN_TPID,
    Insn,
)
from lsfsim.bpf.versions import KernelSemantics

_LD_ABS = frozenset(BPF_LD | size | BPF_ABS for size in (BPF_W, BPF_H, BPF_B))
_MEM_CODES = frozenset((BPF_LD | BPF_MEM, BPF_LDX | BPF_MEM, BPF_ST, BPF_STX))
_RETS = frozenset((BPF_RET | BPF_K, BPF_RET | 0x10))
_SHIFT_K = frozenset((BPF_ALU | BPF_LSH | BPF_K, BPF_ALU | BPF_RSH | BPF_K))
_DIV_K = frozenset((BPF_ALU | BPF_DIV | BPF_K, BPF_ALU | BPF_MOD | BPF_K))


def allowed_codes(sem: KernelSemantics) -> frozenset[int]:
    """The exact opcodes this kernel (or libpcap's bpf_filter) can run."""
    return CODES_2_6_33 | CODES_MOD_XOR if sem.mod_xor else CODES_2_6_33


_VERDICTS: dict[tuple[tuple[Insn, ...], KernelSemantics], tuple[str, str, int | None] | None] = {}
_VERDICTS_MAX = 1024


def sk_chk_filter(insns: Sequence[Insn], sem: KernelSemantics) -> None:
    """Refuse ``insns`` as that kernel's attach path would; FilterError(errno, msg, pc).

    Verdicts are remembered per (program, semantics): Program.run checks on every call.
    """
    key = (tuple(Insn(*i) for i in insns), sem)
    try:
        cached = _VERDICTS[key]
    except KeyError:
        try:
            _check(key[0], sem)
            cached = None
        except FilterError as exc:
            cached = (exc.errno, exc.message, exc.pc)
        if len(_VERDICTS) >= _VERDICTS_MAX:
            _VERDICTS.clear()
        _VERDICTS[key] = cached
    if cached is not None:
        raise FilterError(*cached)


def _check(insns: tuple[Insn, ...], sem: KernelSemantics) -> None:
    flen = len(insns)
    if sem.libpcap:
        _bpf_validate(insns)
        return
    limit = sem.max_insns or 4096
    if sem.len_check_first:
        _check_length(flen, limit)
    elif sem.optmem_charge in ("classic", "both"):
        # <= 3.16: sock_kmalloc charges the classic copy before the checker runs.
        _charge(sem, 8 * flen + sem.filter_header, 0, "the filter copy")
    _check_length(flen, limit)
    _check_insns(insns, sem)
    if sem.mem_uninit == "reject":
        check_load_and_stores(insns)
    if sem.converter_rejects_max and flen >= limit:
        raise FilterError("EINVAL", f"the 3.15 eBPF converter refuses len >= {limit} "
                          f"(this program has {flen} instructions)")
    if sem.optmem_charge in ("both", "converted"):
        m = bpf_convert_filter(insns, sem)
        size = 8 * m + sem.filter_header
        if sem.optmem_charge == "both":
            # 3.15-3.16: the converted program is charged while the classic copy still is.
            _charge(sem, size, 8 * flen + sem.filter_header, "the converted program")
        else:
            _charge(sem, size, 0, "the converted program")


def _check_length(flen: int, limit: int) -> None:
    if flen == 0:
        raise FilterError("EINVAL", "empty program (len == 0)")
    if flen > limit:
        raise FilterError("EINVAL", f"{flen} instructions is more than BPF_MAXINSNS ({limit})")


def _charge(sem: KernelSemantics, size: int, already: int, what: str) -> None:
    """sock_kmalloc's rule: size <= optmem_max and omem_alloc + size < optmem_max."""
    if size > sem.optmem_max or already + size >= sem.optmem_max:
        raise FilterError(
            "ENOMEM",
            f"{what} needs {size} bytes of socket option memory "
            f"({already} already charged; optmem_max {sem.optmem_max})",
        )


def _check_insns(insns: Sequence[Insn], sem: KernelSemantics) -> None:
    """The per-instruction rules, in pc order, then the final RET."""
    flen = len(insns)
    codes = allowed_codes(sem)
    for pc, (code, jt, jf, k) in enumerate(insns):
        if code not in codes:
            extra = ""
            if code in CODES_MOD_XOR:
                extra = " (BPF_MOD/BPF_XOR arrived in 3.7)"
            raise FilterError("EINVAL", f"invalid opcode {code:#06x}{extra}", pc)
        if code in _DIV_K and k == 0:
            raise FilterError("EINVAL", "division by constant zero", pc)
        if code in _MEM_CODES and k >= BPF_MEMWORDS:
            raise FilterError("EINVAL", f"scratch slot M[{k}] does not exist (0-15)", pc)
        if code in _SHIFT_K and k >= 32 and sem.shift_k_reject:
            raise FilterError("EINVAL", f"shift by constant {k} >= 32", pc)
        if code == BPF_JMP | BPF_JA:
            if k >= flen - pc - 1:
                raise FilterError("EINVAL", f"ja +{k} jumps past the end ({flen} instructions)",
                                  pc)
        elif BPF_CLASS(code) == BPF_JMP and (pc + jt + 1 >= flen or pc + jf + 1 >= flen):
            raise FilterError(
                "EINVAL", f"jump target out of range (jt {jt}, jf {jf}, {flen} instructions)",
                pc)
        if (code in _LD_ABS and sem.anc_reject_unknown and k >= 0xFFFFF000
                and k - 0xFFFFF000 not in sem.ancillary):
            raise FilterError(
                "EINVAL", f"unknown ancillary offset SKF_AD_OFF+{k - 0xFFFFF000}", pc)
    if insns[-1].code not in _RETS:
        raise FilterError("EINVAL", "the last instruction is not a RET", flen - 1)


def check_load_and_stores(insns: Sequence[Insn]) -> None:
    """2.6.38+: refuse a read of M[k] that some path may reach before a store to k.

    The kernel's walk exactly: one pass in pc order with a running 16-bit mask of
    written slots (starting empty) ANDed with the mask every jump left on its
    targets; after a jump the running mask is all ones, since the next
    instruction is then reached only through its incoming mask.  A RET does not
    reset it: the analysis is path-insensitive and conservative.
    """
    flen = len(insns)
    masks = [0xFFFF] * flen
    memvalid = 0
    for pc, (code, jt, jf, k) in enumerate(insns):
        memvalid &= masks[pc]
        if code in (BPF_ST, BPF_STX):
            memvalid |= 1 << k
        elif code in (BPF_LD | BPF_MEM, BPF_LDX | BPF_MEM):
            if not memvalid >> k & 1:
                raise FilterError(
                    "EINVAL", f"M[{k}] may be read before it is written", pc)
        elif code == BPF_JMP | BPF_JA:
            masks[pc + 1 + k] &= memvalid
            memvalid = 0xFFFF
        elif BPF_CLASS(code) == BPF_JMP:
            masks[pc + 1 + jt] &= memvalid
            masks[pc + 1 + jf] &= memvalid
            memvalid = 0xFFFF


def _bpf_validate(insns: Sequence[Insn]) -> None:
    """libpcap 1.10's bpf_validate, narrowed to what its bpf_filter can run.

    bpf_validate checks classes, not exact codes: it passes codes such as 0x0e
    that bpf_filter then hits in its ``default: abort()``; those are refused here.
    A JA target is ``pc + 1 + k`` modulo 2**32, so a backward JA passes (libpcap
    compiles ``protochain`` to a loop; bpf_filter sign-extends k).
    """
    flen = len(insns)
    if flen == 0:
        raise FilterError("EINVAL", "empty program (len == 0)")
    codes = CODES_2_6_33 | CODES_MOD_XOR
    for pc, (code, jt, jf, k) in enumerate(insns):
        if code not in codes:
            raise FilterError("EINVAL", f"invalid opcode {code:#06x} (libpcap's bpf_filter "
                              "aborts on it)", pc)
        if code in _MEM_CODES and k >= BPF_MEMWORDS:
            raise FilterError("EINVAL", f"scratch slot M[{k}] does not exist (0-15)", pc)
        if code in _DIV_K and k == 0:
            raise FilterError("EINVAL", "division by constant zero", pc)
        if code == BPF_JMP | BPF_JA:
            if (pc + 1 + k) & 0xFFFFFFFF >= flen:
                raise FilterError("EINVAL", f"ja {k - (1 << 32) if k >> 31 else k} jumps "
                                  f"outside the program ({flen} instructions)", pc)
        elif BPF_CLASS(code) == BPF_JMP and (pc + jt + 1 >= flen or pc + jf + 1 >= flen):
            raise FilterError(
                "EINVAL", f"jump target out of range (jt {jt}, jf {jf}, {flen} instructions)",
                pc)
    if BPF_CLASS(insns[-1].code) != BPF_RET:
        raise FilterError("EINVAL", "the last instruction is not a RET", flen - 1)


# --- the eBPF converter (3.15+): output size and jump offsets --------------------
# eBPF instructions per ancillary load, from convert_bpf_extensions() (6.18, x86-64).
_ANC_EBPF = {SKF_AD_PROTOCOL: 2, SKF_AD_PKTTYPE: 2, SKF_AD_IFINDEX: 4, SKF_AD_HATYPE: 4,
             SKF_AD_MARK: 1, SKF_AD_RXHASH: 1, SKF_AD_QUEUE: 1, SKF_AD_VLAN_TAG: 1,
             SKF_AD_VLAN_TAG_PRESENT: 3, SKF_AD_VLAN_TPID: 2, SKF_AD_ALU_XOR_X: 1}
_ANC_CALL = 4  # PAY_OFFSET, NLATTR, NLATTR_NEST, CPU, RANDOM: three moves and a call
_S16_MIN, _S16_MAX = -(1 << 15), (1 << 15) - 1


def _ld_abs_ebpf(size: int, k: int) -> int:
    """convert_bpf_ld_abs() for LD ABS at k (x86-64: unaligned loads are fine).

    A k >= 0 gets an inline fast path (mov, [sub], jslt, load or mov+add+load,
    [bswap], ja) before the helper call; every load has the 8-instruction slow
    path (four argument moves, call, jsge, xor, exit).
    """
    if k >> 31:
        return 8
    return 1 + (k != 0) + 1 + (1 if k <= 0x7FFF else 3) + (size != 1) + 1 + 8


def _ebpf_layout(insns: Sequence[Insn], sem: KernelSemantics
                 ) -> tuple[int, list[int], list[tuple[int, int, int]]]:
    """(prologue, eBPF length of each classic instruction, jump slots (pc, slot, target))."""
    inline = sem.ld_abs_inline
    sizes: list[int] = []
    jumps: list[tuple[int, int, int]] = []
    seen_ld_abs = False
    for pc, (code, jt, jf, k) in enumerate(insns):
        cls, mode = BPF_CLASS(code), BPF_MODE(code)
        if code in _LD_ABS and k >= 0xFFFFF000 and k - 0xFFFFF000 in sem.ancillary:
            size = _ANC_EBPF.get(k - 0xFFFFF000, _ANC_CALL)
        elif cls == BPF_LD and mode == BPF_ABS:
            seen_ld_abs = True
            size = _ld_abs_ebpf({BPF_W: 4, BPF_H: 2, BPF_B: 1}[code & 0x18], k) if inline else 1
        elif cls == BPF_LD and mode == BPF_IND:
            seen_ld_abs = True
            size = 8 + (k != 0) if inline else 1
        elif code == BPF_LDX | BPF_B | BPF_MSH:
            seen_ld_abs = True
            size = 1 + _ld_abs_ebpf(1, k) + 5 if inline else 6
        elif (cls == BPF_ALU and BPF_OP(code) in (BPF_DIV, BPF_MOD)
              and BPF_SRC(code) == BPF_X and inline):
            size = 5  # X = (u32) X; if X != 0 skip; A ^= A; exit; the op
        elif code == BPF_JMP | BPF_JA:
            size = 1
            jumps.append((pc, 0, pc + 1 + k))
        elif cls == BPF_JMP:
            mov = 1 if BPF_SRC(code) == BPF_K and k >> 31 else 0  # k into a register
            if jf == 0:
                jumps.append((pc, mov, pc + 1 + jt))
                size = mov + 1
            elif jt == 0 and BPF_OP(code) != 0x40:  # JEQ/JGT/JGE turned into JNE/JLE/JLT
                jumps.append((pc, mov, pc + 1 + jf))
                size = mov + 1
            else:  # Jxx to jt, then JA to jf
                jumps.append((pc, mov, pc + 1 + jt))
                jumps.append((pc, mov + 1, pc + 1 + jf))
                size = mov + 2
        elif code == BPF_RET | BPF_K:
            size = 2
        else:
            size = 1
        sizes.append(size)
    prologue = 3 + (4 if seen_ld_abs else 0) if inline else 1
    return prologue, sizes, jumps


def bpf_convert_filter(insns: Sequence[Insn], sem: KernelSemantics) -> int:
    """The length of the eBPF program the converter makes (3.15+); EINVAL if it cannot.

    Exact for the 4.18+ converter as of 6.18 (x86-64), including its jump check:
    each converted jump offset must fit in s16, and on the first pass that fills
    the address table the forward targets still read 0, so a jump whose own eBPF
    address exceeds 32767 is refused too.  For 3.15-4.17 it is the estimate of
    docs/bpf-versions.md (loads convert to one instruction).
    """
    prologue, sizes, jumps = _ebpf_layout(insns, sem)
    if sem.ld_abs_inline:
        addrs = []
        at = prologue
        for size in sizes:
            addrs.append(at)
            at += size
        for pc, slot, target in jumps:
            stale = -addrs[pc] - 1 - slot  # pass 0: addrs[target] is still 0
            off = addrs[target] - addrs[pc] - 1 - slot
            if stale < _S16_MIN or off > _S16_MAX:
                raise FilterError(
                    "EINVAL", f"the eBPF converter cannot encode this jump (eBPF address "
                    f"{addrs[pc] + slot}, offset {off}; jump offsets are s16)", pc)
    return prologue + sum(sizes)


def converted_length(insns: Sequence[Insn], sem: KernelSemantics) -> int:
    """Number of eBPF instructions the converter makes of ``insns`` (no jump checks)."""
    prologue, sizes, _ = _ebpf_layout(insns, sem)
    return prologue + sum(sizes)
