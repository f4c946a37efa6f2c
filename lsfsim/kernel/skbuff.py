"""struct sk_buff, reduced to what the capture path reads and charges.

truesize follows __alloc_skb: ``SKB_DATA_ALIGN(size) + sizeof(struct sk_buff)``
in 2.6.33 (skb_shared_info not counted); from 3.2 ``SKB_TRUESIZE`` also counts
the aligned skb_shared_info.  skb_clone copies truesize; pskb_trim keeps it.

Simplification: the packet bytes are kept once, as the frame received from the
wire; ``len`` is the sk_buff's current length.  Pointer arithmetic (skb_push,
skb_pull) is modelled by ``len`` alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

# skb->pkt_type (include/linux/if_packet.h)
PACKET_HOST = 0
PACKET_BROADCAST = 1
PACKET_MULTICAST = 2
PACKET_OTHERHOST = 3
PACKET_OUTGOING = 4
PACKET_LOOPBACK = 5


class SkOwner(Protocol):
    """The socket an skb is charged to (kernel.sock.Sock), as its destructors see it."""

    def sock_rfree(self, skb: SkBuff) -> None: ...

    def sock_wfree(self, skb: SkBuff) -> None: ...


class SkBuff:
    """One socket buffer.  ``users`` is skb->users, ``shared`` its reading."""

    __slots__ = (
        "data", "len", "truesize", "users", "pkt_type", "protocol", "id",
        "t_wire", "t_dma", "t_irq", "t_poll", "t_backlog", "t_enq", "cloned", "sk",
        "network_offset", "tstamp",
    )

    def __init__(self, data: bytes, truesize: int, pkt_id: int = -1) -> None:
        self.data = data
        self.len = len(data)
        self.truesize = truesize
        self.users = 1
        self.pkt_type = PACKET_HOST
        self.protocol = 0
        self.id = pkt_id
        self.t_wire = 0.0   # first bit on the wire
        self.t_dma = 0.0    # descriptor handed to the host (OWN cleared)
        self.t_irq = 0.0    # the hard IRQ that led to its poll
        self.t_poll = 0.0   # pcnet32_rx_entry picked it up (pre-NAPI: process_backlog)
        self.t_backlog = 0.0   # pre-NAPI: netif_rx queued it on the CPU's backlog
        self.t_enq = 0.0    # queued on a socket
        self.tstamp = 0.0   # skb->tstamp: net_timestamp's time (0: not stamped yet)
        self.cloned = False
        self.sk: SkOwner | None = None
        # skb_network_offset as packet_rcv's filter sees it (SKF_NET_OFF loads): 14 for a
        # received frame (netif_receive_skb resets it after eth_type_trans pulled the MAC
        # header) and an IP-built one; 0 for a frame sent on a SOCK_RAW packet socket
        self.network_offset = 14

    def clone(self) -> SkBuff:
        """skb_clone: a new head sharing the data; truesize is copied."""
        nskb = SkBuff.__new__(SkBuff)
        nskb.data = self.data
        nskb.len = self.len
        nskb.truesize = self.truesize
        nskb.users = 1
        nskb.pkt_type = self.pkt_type
        nskb.protocol = self.protocol
        nskb.id = self.id
        nskb.t_wire = self.t_wire
        nskb.t_dma = self.t_dma
        nskb.t_irq = self.t_irq
        nskb.t_poll = self.t_poll
        nskb.t_backlog = self.t_backlog
        nskb.t_enq = 0.0
        nskb.tstamp = self.tstamp
        nskb.cloned = True
        nskb.sk = None
        nskb.network_offset = self.network_offset
        return nskb


@dataclass(frozen=True, slots=True)
class TruesizeRules:
    """The era's rules for skb->truesize (include/linux/skbuff.h)."""

    sizeof_sk_buff: int = 232
    sizeof_skb_shared_info: int = 320
    smp_cache_bytes: int = 64
    net_skb_pad: int = 32
    includes_shinfo: bool = False  # SKB_TRUESIZE, Linux 3.2 and later

    def data_align(self, size: int) -> int:
        """SKB_DATA_ALIGN: round up to SMP_CACHE_BYTES."""
        mask = self.smp_cache_bytes - 1
        return (size + mask) & ~mask

    def alloc_skb(self, size: int) -> int:
        """truesize of __alloc_skb(size)."""
        truesize = self.data_align(size) + self.sizeof_sk_buff
        if self.includes_shinfo:
            truesize += self.data_align(self.sizeof_skb_shared_info)
        return truesize

    def dev_alloc_skb(self, length: int) -> int:
        """truesize of dev_alloc_skb(length) = alloc_skb(length + NET_SKB_PAD)."""
        return self.alloc_skb(length + self.net_skb_pad)
