"""include/linux/netdevice.h: struct napi_struct and struct softnet_data.

Plain data, below every other kernel unit: a CPU holds its softnet_data and
the core of the network stack (kernel.dev) works on them.  What the stack
uses of a device (struct net_device) is ``kernel.dev.NetDevice``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Generator
from typing import Any

from lsfsim.kernel.skbuff import SkBuff

NET_XMIT_SUCCESS = 0
NET_XMIT_DROP = 1


class NapiStruct:
    """struct napi_struct: a device's poll function and weight."""

    __slots__ = ("poll", "weight", "scheduled", "name", "polls")

    def __init__(self, name: str, poll: Callable[..., Generator[Any, Any, int]],
                 weight: int) -> None:
        self.name = name
        self.poll = poll
        self.weight = weight
        self.scheduled = False   # NAPI_STATE_SCHED
        self.polls = 0


class SoftnetData:
    """struct softnet_data of one CPU, with the /proc/net/softnet_stat counters."""

    def __init__(self, cpu_index: int) -> None:
        self.cpu_index = cpu_index
        self.poll_list: deque[NapiStruct] = deque()
        self.net_rx_pending = False
        self.input_pkt_queue: deque[SkBuff] = deque()   # netif_rx backlog
        self.processed = 0       # "total": netif_receive_skb and netif_rx calls
        self.dropped = 0         # netif_rx backlog overflow
        self.time_squeeze = 0
        self.cpu_collision = 0
        self.backlog: NapiStruct | None = None

    def softnet_stat(self) -> dict[str, int]:
        """This CPU's row of /proc/net/softnet_stat (the fields the model keeps)."""
        return {"cpu": self.cpu_index, "processed": self.processed, "dropped": self.dropped,
                "time_squeeze": self.time_squeeze, "cpu_collision": self.cpu_collision}

