"""Sizes that follow from the machine word: struct layouts and the sysctl defaults built on them.

A model names its kernel's architecture (``kernel.arch``: ``"i386"`` or
``"x86_64"``); every size the accounting uses is derived here from the word size
and the C ABI, not typed by hand:

* ``sizeof(struct sk_buff)`` and ``sizeof(struct skb_shared_info)``, laid out
  field by field as gcc lays them out (2.6.33.2's include/linux/skbuff.h:189 and
  :307-398 with the assumed distribution config: XFRM, NF_CONNTRACK,
  BRIDGE_NETFILTER, NET_SCHED + NET_CLS_ACT, IPV6_NDISC_NODETYPE, NET_DMA,
  NETWORK_SECMARK, no KMEMCHECK).  The derivation is tabulated in
  models/README.md; the layouts are those of 2.6.33.2, so a model of another
  era gives both sizes itself (``kernel.skb``);
* ``sizeof(struct sk_filter)`` (include/linux/filter.h:131-137: refcnt, len,
  rcu_head of two pointers; 3.0 added the ``bpf_func`` pointer);
* the net.core sysctl defaults of net/core/sock.c: ``SK_WMEM_MAX = SK_RMEM_MAX
  = 256 * (sizeof(struct sk_buff) + 256)`` (:205-208; ``256 * SKB_TRUESIZE(256)``
  from 3.2), rmem_max = wmem_max = 131071 set by ``sk_init`` on a machine with
  at least 512 MiB (v2.6.33:1235 / .2:1240; the lecture's had 4 GB), and
  ``sysctl_optmem_max = sizeof(unsigned long) * (2 * UIO_MAXIOV + 512)`` (:217,
  UIO_MAXIOV 1024), 131072 from 6.8;
* ``MAX_TCP_HEADER = 128 + MAX_HEADER`` (include/net/tcp.h:54), MAX_HEADER =
  LL_MAX_HEADER 96 (CONFIG_WLAN, 2.6.33.2's netdevice.h:139-158) + 48 (a
  tunnel: IPV6_SIT defaults to y) = 144 on the assumed config.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "ARCHES",
    "SKB_SHARED_INFO_2_6_33_2",
    "SK_BUFF_2_6_33_2",
    "Abi",
    "Arch",
    "KernelSizes",
    "derive",
    "layout",
    "sizeof_sk_filter",
]

Arch = Literal["i386", "x86_64"]


@dataclass(frozen=True)
class Abi:
    """What the C ABI of an architecture says about sizes and alignments."""

    word: int          # sizeof(long) == sizeof(void *)
    s64_align: int     # alignment of long long / s64 inside a struct (4 on i386)

    def size_align(self, kind: str) -> tuple[int, int]:
        """(size, alignment) of a member type named by ``kind``."""
        if kind in ("ptr", "long"):
            return self.word, self.word
        if kind == "s64":
            return 8, self.s64_align
        if kind == "u32":
            return 4, 4
        if kind == "u16":
            return 2, 2
        if kind == "u8":
            return 1, 1
        if kind == "data_t":
            # sk_buff_data_t: a pointer, but an unsigned int offset when
            # NET_SKBUFF_DATA_USES_OFFSET (BITS_PER_LONG > 32; skbuff.h:248-256)
            return (4, 4) if self.word == 8 else (self.word, self.word)
        raise ValueError(f"unknown member type {kind!r}")


# i386 aligns long long to 4 inside structs; dma_addr_t is not used by these layouts.
ARCHES: dict[str, Abi] = {"i386": Abi(word=4, s64_align=4), "x86_64": Abi(word=8, s64_align=8)}

# A member: (name, kind, count, explicit alignment or 0).  Bit-fields are written
# as the whole storage units they fill (each group fills its units exactly here).
Member = tuple[str, str, int, int]

# struct sk_buff in 2.6.33.2 (include/linux/skbuff.h:307-398; the 2.6.34 patch
# da3f5cf1 "align sk_buff::cb to 64 bit" moved tstamp before sk and aligned cb[48]).
SK_BUFF_2_6_33_2: tuple[Member, ...] = (
    ("next", "ptr", 1, 0), ("prev", "ptr", 1, 0),
    ("tstamp", "s64", 1, 0),                     # ktime_t (KTIME_SCALAR on i386: s64)
    ("sk", "ptr", 1, 0), ("dev", "ptr", 1, 0),
    ("cb", "u8", 48, 8),                         # char cb[48] __aligned(8)
    ("_skb_dst", "long", 1, 0),
    ("sp", "ptr", 1, 0),                         # CONFIG_XFRM
    ("len", "u32", 1, 0), ("data_len", "u32", 1, 0),
    ("mac_len", "u16", 1, 0), ("hdr_len", "u16", 1, 0),
    ("csum", "u32", 1, 0),                       # union: __wsum / csum_start + csum_offset
    ("priority", "u32", 1, 0),
    ("flags1_a", "u8", 1, 0),                    # local_df, cloned, ip_summed, nohdr, nfctinfo
    ("flags1_b", "u8", 1, 0),                    # pkt_type, fclone, ipvs_property, peeked, nf_trace
    ("protocol", "u16", 1, 0),
    ("destructor", "ptr", 1, 0),
    ("nfct", "ptr", 1, 0), ("nfct_reasm", "ptr", 1, 0),   # CONFIG_NF_CONNTRACK
    ("nf_bridge", "ptr", 1, 0),                  # CONFIG_BRIDGE_NETFILTER
    ("skb_iif", "u32", 1, 0),
    ("tc_index", "u16", 1, 0), ("tc_verd", "u16", 1, 0),  # NET_SCHED, NET_CLS_ACT
    ("queue_mapping", "u16", 1, 0),
    ("ndisc_nodetype", "u8", 1, 0),              # :2, CONFIG_IPV6_NDISC_NODETYPE
    ("dma_cookie", "u32", 1, 0),                 # CONFIG_NET_DMA
    ("secmark", "u32", 1, 0),                    # CONFIG_NETWORK_SECMARK
    ("mark", "u32", 1, 0),                       # union: mark / dropcount
    ("vlan_tci", "u16", 1, 0),
    ("transport_header", "data_t", 1, 0), ("network_header", "data_t", 1, 0),
    ("mac_header", "data_t", 1, 0), ("tail", "data_t", 1, 0), ("end", "data_t", 1, 0),
    ("head", "ptr", 1, 0), ("data", "ptr", 1, 0),
    ("truesize", "u32", 1, 0),
    ("users", "u32", 1, 0),                      # atomic_t
)

# MAX_SKB_FRAGS = 65536 / PAGE_SIZE + 2 = 18 (skbuff.h:126)
MAX_SKB_FRAGS = 65536 // 4096 + 2

# struct skb_shared_info in 2.6.33.2 (skbuff.h:189; 03e6d819 removed dma_head/dma_maps).
SKB_SHARED_INFO_2_6_33_2: tuple[Member, ...] = (
    ("dataref", "u32", 1, 0),
    ("nr_frags", "u16", 1, 0), ("gso_size", "u16", 1, 0), ("gso_segs", "u16", 1, 0),
    ("gso_type", "u16", 1, 0),
    ("ip6_frag_id", "u32", 1, 0),
    ("tx_flags", "u8", 1, 0),                    # union skb_shared_tx
    ("frag_list", "ptr", 1, 0),
    ("hwtstamps", "s64", 2, 0),                  # two ktime_t
    # skb_frag_t: struct page *page; __u32 page_offset; __u32 size
    *((f"frags[{i}].{m}", kind, 1, 0) for i in range(MAX_SKB_FRAGS)
      for m, kind in (("page", "ptr"), ("page_offset", "u32"), ("size", "u32"))),
    ("destructor_arg", "ptr", 1, 0),
)


def layout(members: Sequence[Member], abi: Abi) -> tuple[dict[str, int], int]:
    """Offsets of each member and sizeof the struct, by the C rules: each member at
    the next multiple of its alignment, the size a multiple of the largest one."""
    offsets: dict[str, int] = {}
    off = 0
    biggest = 1
    for name, kind, count, explicit in members:
        size, align = abi.size_align(kind)
        align = max(align, explicit)
        off = (off + align - 1) // align * align
        offsets[name] = off
        off += size * count
        biggest = max(biggest, align)
    return offsets, (off + biggest - 1) // biggest * biggest


def sizeof_sk_filter(abi: Abi, kver: tuple[int, int, int]) -> int:
    """struct sk_filter: atomic_t refcnt, unsigned int len, (3.0-3.14: the bpf_func
    pointer,) struct rcu_head rcu (two pointers); the instructions follow.  From 3.15
    the charge is the converted program's (lsfsim.bpf.versions, x86_64 figures)."""
    pointers = 3 if kver >= (3, 0, 0) else 2
    return 4 + 4 + pointers * abi.word


@dataclass(frozen=True)
class KernelSizes:
    """Every derived size of one model (bytes), as the simulated kernel uses them."""

    arch: str
    word: int
    sizeof_sk_buff: int
    sizeof_skb_shared_info: int
    sizeof_sk_filter: int
    smp_cache_bytes: int
    net_skb_pad: int
    net_ip_align: int
    pkt_buf_skb: int
    rmem_default: int
    wmem_default: int
    rmem_max: int
    sock_min_rcvbuf: int
    optmem_max: int
    max_tcp_header: int

    def data_align(self, size: int) -> int:
        """SKB_DATA_ALIGN (skbuff.h:39-40): round up to SMP_CACHE_BYTES."""
        mask = self.smp_cache_bytes - 1
        return (size + mask) & ~mask


# MAX_HEADER on the assumed 2.6.33.2 config: LL_MAX_HEADER 96 (CONFIG_WLAN=y, its
# default) + 48 (IPV6_SIT=y, a tunnel); netdevice.h:139-158.
MAX_HEADER = 96 + 48
SK_MEM_PACKETS = 256       # _SK_MEM_PACKETS (net/core/sock.c:205)
UIO_MAXIOV = 1024          # include/linux/uio.h:27


def derive(arch: str, kver: tuple[int, int, int], *, smp_cache_bytes: int, net_skb_pad: int,
           net_ip_align: int, pkt_buf_skb: int, sizeof_sk_buff: int | None = None,
           sizeof_skb_shared_info: int | None = None, rmem_default: int | None = None,
           wmem_default: int | None = None, rmem_max: int | None = None,
           sock_min_rcvbuf: int | None = None, optmem_max: int | None = None) -> KernelSizes:
    """The sizes of a kernel built for ``arch``; any ``None`` is the kernel's own value.

    The two struct sizes come from the 2.6.33.2 layouts; a model of another era gives
    them.  The sysctl arguments are net.core values a model may set (as ``sysctl -w``
    would); None means the boot default computed from the sizes.
    """
    abi = ARCHES[arch]
    skb_size = sizeof_sk_buff if sizeof_sk_buff is not None else layout(SK_BUFF_2_6_33_2, abi)[1]
    shinfo = (sizeof_skb_shared_info if sizeof_skb_shared_info is not None
              else layout(SKB_SHARED_INFO_2_6_33_2, abi)[1])

    def align(n: int) -> int:
        return (n + smp_cache_bytes - 1) & ~(smp_cache_bytes - 1)

    if kver >= (3, 2, 0):
        # 87fb4b7b: _SK_MEM_OVERHEAD = SKB_TRUESIZE(256); sk_init's clamp is gone
        overhead = 256 + align(skb_size) + align(shinfo)
        sk_mem_max = SK_MEM_PACKETS * overhead
        default_rmem_max = sk_mem_max
    else:
        sk_mem_max = SK_MEM_PACKETS * (skb_size + 256)   # _SK_MEM_OVERHEAD
        default_rmem_max = 131071                         # sk_init, >= 512 MiB of RAM
    # SOCK_MIN_RCVBUF (include/net/sock.h): 256, then from 3.5 TCP_SKB_MIN_TRUESIZE =
    # 2048 + SKB_DATA_ALIGN(sizeof(struct sk_buff))
    default_min_rcvbuf = 2048 + align(skb_size) if kver >= (3, 5, 0) else 256
    default_optmem = 131072 if kver >= (6, 8, 0) else abi.word * (2 * UIO_MAXIOV + 512)
    return KernelSizes(
        arch=arch, word=abi.word, sizeof_sk_buff=skb_size, sizeof_skb_shared_info=shinfo,
        sizeof_sk_filter=sizeof_sk_filter(abi, kver), smp_cache_bytes=smp_cache_bytes,
        net_skb_pad=net_skb_pad, net_ip_align=net_ip_align, pkt_buf_skb=pkt_buf_skb,
        rmem_default=rmem_default if rmem_default is not None else sk_mem_max,
        wmem_default=wmem_default if wmem_default is not None else sk_mem_max,
        rmem_max=rmem_max if rmem_max is not None else default_rmem_max,
        sock_min_rcvbuf=sock_min_rcvbuf if sock_min_rcvbuf is not None else default_min_rcvbuf,
        optmem_max=optmem_max if optmem_max is not None else default_optmem,
        max_tcp_header=128 + MAX_HEADER,
    )
