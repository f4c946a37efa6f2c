"""Classic BPF semantics by kernel version: the table of changes since 2.6.33.

``semantics("3.10")`` answers every question the checker and the interpreters
ask that changed between releases: which opcodes and ancillary offsets exist,
how DIV K and shifts behave, how negative offsets are bounds-checked, what the
attach path charges against ``optmem_max``.  Each field names the release the
change appeared in; docs/bpf-versions.md is the same table in prose, with the
evidence for each row.

``semantics("libpcap")`` is libpcap 1.10's user-space ``bpf_filter`` and
``bpf_validate`` instead of a kernel, so that our machine can be compared
instruction for instruction with the C one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from lsfsim.bpf.isa import (
    SKF_AD_ALU_XOR_X,
    SKF_AD_CPU,
    SKF_AD_HATYPE,
    SKF_AD_IFINDEX,
    SKF_AD_MARK,
    SKF_AD_NLATTR,
    SKF_AD_NLATTR_NEST,
    SKF_AD_PAY_OFFSET,
    SKF_AD_PKTTYPE,
    SKF_AD_PROTOCOL,
    SKF_AD_QUEUE,
    SKF_AD_RANDOM,
    SKF_AD_RXHASH,
    SKF_AD_VLAN_TAG,
    SKF_AD_VLAN_TAG_PRESENT,
    SKF_AD_VLAN_TPID,
)

Release = tuple[int, int, int]

OLDEST: Release = (2, 6, 33)
"""The oldest kernel modelled: the lecture's."""

# Release in which each ancillary offset appeared (cbpf-versions.md §1, §2.5).
ANCILLARY_SINCE: dict[int, Release] = {
    SKF_AD_PROTOCOL: OLDEST,
    SKF_AD_PKTTYPE: OLDEST,
    SKF_AD_IFINDEX: OLDEST,
    SKF_AD_NLATTR: OLDEST,
    SKF_AD_NLATTR_NEST: OLDEST,
    SKF_AD_MARK: OLDEST,
    SKF_AD_QUEUE: OLDEST,
    SKF_AD_HATYPE: (2, 6, 35),
    SKF_AD_RXHASH: (2, 6, 38),
    SKF_AD_CPU: (2, 6, 38),
    SKF_AD_ALU_XOR_X: (3, 5, 0),
    SKF_AD_VLAN_TAG: (3, 8, 0),
    SKF_AD_VLAN_TAG_PRESENT: (3, 8, 0),
    SKF_AD_PAY_OFFSET: (3, 10, 0),
    SKF_AD_RANDOM: (3, 16, 0),
    SKF_AD_VLAN_TPID: (4, 1, 0),
}

BPF_PROG_HEADER = 72
"""Bytes of ``struct bpf_prog`` before its instructions on x86-64, 3.15-6.7: computed from
the 6.5 field list, not measured (docs/bpf-versions.md)."""
BPF_PROG_HEADER_6_18 = 96
"""The same, measured on Linux 6.18 (x86-64) from the exact ENOMEM threshold of
SO_ATTACH_FILTER (96 <= header < 104 with 8-byte instructions); used from 6.8 on."""

# Every release at which some field below changes; the key of a semantics is
# the latest of these not after the requested release, so that equal
# semantics share one cache entry.
CHANGE_POINTS: tuple[Release, ...] = tuple(sorted({
    OLDEST, (2, 6, 35), (2, 6, 37), (2, 6, 38), (3, 0, 0), (3, 5, 0), (3, 7, 0), (3, 8, 0),
    (3, 10, 0), (3, 13, 0), (3, 15, 0), (3, 16, 0), (3, 17, 0), (4, 1, 0), (4, 5, 0),
    (4, 18, 0), (5, 0, 0), (6, 2, 0), (6, 8, 0),
}))


@dataclass(frozen=True, slots=True)
class KernelSemantics:
    """What one kernel (or libpcap) does with a classic BPF program.

    Two semantics compare equal when they behave alike; ``version`` (the string
    asked for) does not take part in the comparison.
    """

    key: str
    """Cache key: ``"libpcap"`` or the release that opened this era, e.g. ``"3.10"``."""
    libpcap: bool
    """libpcap 1.10 ``bpf_filter``: u32 offsets checked against the captured length,
    ``BPF_LEN`` = wire length, no ancillary data, no upper length limit."""
    mod_xor: bool
    """BPF_MOD and BPF_XOR accepted (3.7; always in libpcap)."""
    ancillary: frozenset[int]
    """Ancillary offsets (``k - SKF_AD_OFF``) this kernel knows."""
    anc_runtime: bool
    """<= 2.6.37: ancillary data decoded at run time, for any width and for LD IND."""
    anc_reject_unknown: bool
    """>= 3.10: LD ABS with k >= 0xfffff000 not a known extension -> EINVAL at attach."""
    mem_uninit: str
    """Reads of a never-written M[k]: ``"garbage"`` (<= 2.6.36, stack leftovers, modelled
    as 0), ``"zero"`` (2.6.37, run-time mask), ``"reject"`` (>= 2.6.38,
    check_load_and_stores refuses the program at attach)."""
    negoff_first_byte: bool
    """<= 2.6.37: NET/LL loads check only the first byte against the tail."""
    div_reciprocal: bool
    """2.6.38 - 3.12: DIV K is a reciprocal multiplication (A/1 == 0)."""
    shift_k_reject: bool
    """>= 4.5: LSH/RSH with K >= 32 -> EINVAL.  Before, the count is K & 31 (x86)."""
    shift_x_ge32_zero: bool
    """libpcap: shifting by X >= 32 gives 0.  Kernels shift by X & 31 (x86)."""
    max_insns: int | None
    """4096 (BPF_MAXINSNS); None for libpcap."""
    len_check_first: bool
    """>= 3.17: the length is checked before anything is charged to optmem."""
    optmem_max: int
    """Default ``net.core.optmem_max`` on 64-bit: 20480, 131072 from 6.8."""
    optmem_charge: str
    """What attach charges: ``"classic"`` (<= 3.14, 8n + header), ``"both"`` (3.15-3.16,
    classic copy + converted program), ``"converted"`` (>= 3.17), ``"none"`` (libpcap)."""
    filter_header: int
    """Bytes of header charged with the program: 24 (sk_filter <= 2.6.39), 32 (3.0-3.14)
    or the bpf_prog header of the converted program."""
    converter_rejects_max: bool
    """3.15 only: the converter refuses ``len == 4096`` (EINVAL)."""
    ld_abs_inline: bool
    """>= 4.18: LD ABS/IND expand to inline eBPF plus helper calls (size estimate only)."""
    nla_helper: bool
    """>= 3.15: NLATTR/NLATTR_NEST are eBPF helper calls: a failed check gives A = 0 instead
    of dropping the packet, ``len < 4`` gives A = 0, and the nest check is fixed."""
    vlan_mode: str
    """VLAN_TAG/PRESENT: ``"cfi"`` (3.8-4.20, tag in vlan_tci with bit 0x1000 meaning
    present), ``"flag"`` (5.0-6.1, separate vlan_present), ``"all"`` (6.2+, present iff
    vlan_proto or vlan_tci is non-zero)."""
    version: str = field(default="", compare=False)
    """The version string as given."""

    @property
    def name(self) -> str:
        return "libpcap" if self.libpcap else f"Linux {self.version or self.key}"


_VERSION = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?(?:\.\d+)?(?:[-+~_].*)?")


def parse_release(kernel: str) -> Release:
    """``"6.18.44-fc-v595"`` -> (6, 18, 44); ValueError naming the string otherwise."""
    m = _VERSION.fullmatch(kernel.strip()) if isinstance(kernel, str) else None
    if m is None:
        raise ValueError(
            f"kernel version {kernel!r} is not of the form X.Y, X.Y.Z or X.Y.Z-suffix "
            "(or 'libpcap')"
        )
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)


def _era(rel: Release) -> Release:
    return max(p for p in CHANGE_POINTS if p <= rel)


def _key(rel: Release) -> str:
    return ".".join(str(n) for n in (rel if rel[2] or rel[0] == 2 else rel[:2]))


_LIBPCAP = KernelSemantics(
    key="libpcap", libpcap=True, mod_xor=True, ancillary=frozenset(), anc_runtime=False,
    anc_reject_unknown=False, mem_uninit="garbage", negoff_first_byte=False,
    div_reciprocal=False, shift_k_reject=False, shift_x_ge32_zero=True, max_insns=None,
    len_check_first=True, optmem_max=0, optmem_charge="none", filter_header=0,
    converter_rejects_max=False, ld_abs_inline=False, nla_helper=False, vlan_mode="none",
    version="libpcap",
)


@lru_cache(maxsize=256)
def semantics(kernel: str) -> KernelSemantics:
    """The semantics of kernel release ``kernel`` ("2.6.33", "6.18.44-foo") or "libpcap"."""
    if isinstance(kernel, str) and kernel.strip().lower() == "libpcap":
        return _LIBPCAP
    rel = parse_release(kernel)
    if rel < OLDEST:
        raise ValueError(f"kernel version {kernel!r} is older than 2.6.33, the oldest modelled")
    era = _era(rel)
    if rel < (2, 6, 37):
        mem = "garbage"
    elif rel < (2, 6, 38):
        mem = "zero"
    else:
        mem = "reject"
    if rel < (3, 15, 0):
        charge = "classic"
        header = 24 if rel < (3, 0, 0) else 32
    else:
        charge = "both" if rel < (3, 17, 0) else "converted"
        header = BPF_PROG_HEADER_6_18 if rel >= (6, 8, 0) else BPF_PROG_HEADER
    if rel < (3, 8, 0):
        vlan = "none"
    elif rel < (5, 0, 0):
        vlan = "cfi"
    elif rel < (6, 2, 0):
        vlan = "flag"
    else:
        vlan = "all"
    return KernelSemantics(
        key=_key(era),
        libpcap=False,
        mod_xor=rel >= (3, 7, 0),
        ancillary=frozenset(off for off, since in ANCILLARY_SINCE.items() if rel >= since),
        anc_runtime=rel < (2, 6, 38),
        anc_reject_unknown=rel >= (3, 10, 0),
        mem_uninit=mem,
        negoff_first_byte=rel < (2, 6, 38),
        div_reciprocal=(2, 6, 38) <= rel < (3, 13, 0),
        shift_k_reject=rel >= (4, 5, 0),
        shift_x_ge32_zero=False,
        max_insns=4096,
        len_check_first=rel >= (3, 17, 0),
        optmem_max=131072 if rel >= (6, 8, 0) else 20480,
        optmem_charge=charge,
        filter_header=header,
        converter_rejects_max=(3, 15, 0) <= rel < (3, 16, 0),
        ld_abs_inline=rel >= (4, 18, 0),
        nla_helper=rel >= (3, 15, 0),
        vlan_mode=vlan,
        version=kernel.strip(),
    )
