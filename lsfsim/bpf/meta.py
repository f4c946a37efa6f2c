"""SkbMeta: the sk_buff fields a filter can see through ancillary loads."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class SkbMeta:
    """What ``SKF_AD_OFF + n`` loads read, named after the sk_buff fields.

    ``network_offset`` is where ``SKF_NET_OFF`` loads start (skb->network_header
    relative to the MAC header at offset 0); ``random_seed`` seeds SKF_AD_RANDOM
    so that runs are reproducible.
    """

    protocol: int = 0
    pkt_type: int = 0
    ifindex: int = 0
    mark: int = 0
    queue_mapping: int = 0
    hatype: int = 1
    rxhash: int = 0
    cpu: int = 0
    vlan_tci: int = 0
    vlan_present: int = 0
    vlan_proto: int = 0x8100
    network_offset: int = 14
    random_seed: int = 0


DEFAULT_META = SkbMeta()
