"""net/core/sock.c and datagram.c: receive-buffer accounting and wake-ups.

A socket's receive queue is byte-accounted by skb->truesize in
``sk_rmem_alloc``; skb_set_owner_r charges it when packet_rcv queues, and the
destructor sock_rfree releases it only when recvfrom has finished copying
(skb_free_datagram).  Readers sleep on the socket's wait queue as exclusive
waiters; sock_def_readable wakes one.
"""

from __future__ import annotations

from collections import deque
from typing import Protocol

from lsfsim.kernel.context import KernelContext
from lsfsim.kernel.costs import Costs
from lsfsim.kernel.cpu import ExecContext, charge, enter, exit_, fold, mark
from lsfsim.kernel.skbuff import SkBuff

SO_RCVBUF = 8
SO_ATTACH_FILTER = 26


class Sleeper(Protocol):
    """A task asleep on a socket's wait queue (user.Reader)."""

    def try_to_wake_up(self, t: float) -> None: ...


class LazyReader(Protocol):
    """A socket's only reader when it is run lazily (user.Reader): packet_rcv brings it
    up to the present before looking at the socket."""

    next_time: float

    def advance(self, t: float) -> None: ...


class Sock:
    """struct sock, reduced to receive-side accounting."""

    def __init__(self, kernel: KernelContext, index: int) -> None:
        self.kernel = kernel
        self.env = kernel.env
        self.index = index
        sizes = kernel.sizes
        self.sk_rcvbuf = sizes.rmem_default
        self.sk_rmem_alloc = 0
        self.sk_drops = 0
        self.sk_omem_alloc = 0
        self.sk_sndbuf = sizes.wmem_default
        self.sk_wmem_alloc = 0
        self.sk_receive_queue: deque[SkBuff] = deque()
        self._sleepers: deque[Sleeper] = deque()   # readers asleep in recvfrom
        self.max_rmem = 0
        # the socket's only reader when it is evaluated lazily (see user.Reader)
        self.lazy_reader: LazyReader | None = None

    @staticmethod
    def readable_steps(costs: Costs, wake: bool) -> tuple[tuple[int, str, float], ...]:
        """sock_def_readable's calls (net/core/sock.c): the callback lock, and when a
        reader sleeps in recvfrom, wake_up_interruptible_sync_poll's way down to
        try_to_wake_up (receiver_wake_function is datagram.c's wait_for_packet's)."""
        woken: tuple[tuple[int, str, float], ...] = ()
        if wake:
            chain = ("__wake_up_common", "receiver_wake_function", "autoremove_wake_function",
                     "default_wake_function")
            woken = (fold("__wake_up_sync_key"), mark("_raw_spin_lock_irqsave"),
                     *(fold(fn) for fn in chain),
                     charge("try_to_wake_up", costs.try_to_wake_up),
                     *(exit_(fn) for fn in reversed(chain)),
                     mark("_raw_spin_unlock_irqrestore"), exit_("__wake_up_sync_key"))
        return (enter("sock_def_readable"), charge("sock_def_readable", costs.sock_def_readable),
                mark("_raw_read_lock"), *woken, mark("_raw_read_unlock"),
                exit_("sock_def_readable"))

    # --- SO_RCVBUF ----------------------------------------------------------
    def set_rcvbuf(self, val: int) -> int:
        """sock_setsockopt(SO_RCVBUF): clamp to rmem_max, double, at least SOCK_MIN_RCVBUF."""
        sizes = self.kernel.sizes
        val = min(int(val), sizes.rmem_max)
        self.sk_rcvbuf = max(2 * val, sizes.sock_min_rcvbuf)
        return self.sk_rcvbuf

    # --- rmem ---------------------------------------------------------------
    def skb_set_owner_r(self, skb: SkBuff) -> None:
        skb.sk = self
        self.sk_rmem_alloc += skb.truesize
        if self.sk_rmem_alloc > self.max_rmem:
            self.max_rmem = self.sk_rmem_alloc

    def sock_rfree(self, skb: SkBuff) -> None:
        self.sk_rmem_alloc -= skb.truesize
        skb.sk = None

    def sock_wfree(self, skb: SkBuff) -> None:
        """Destructor of a transmitted skb: release its sndbuf charge."""
        self.sk_wmem_alloc -= skb.truesize
        skb.sk = None

    # --- wait queue ---------------------------------------------------------
    def prepare_to_wait_exclusive(self, task: Sleeper) -> None:
        """A reader joins the wait queue; sock_def_readable wakes one at a time."""
        self._sleepers.append(task)

    def sock_def_readable(self, ctx: ExecContext) -> None:
        """sk_data_ready: wake one exclusive sleeper at this moment.

        Its cost is charged by the caller's plan (see ``readable_steps``).
        """
        if self._sleepers:
            self._sleepers.popleft().try_to_wake_up(ctx.t)

    @property
    def sleepers(self) -> int:
        return len(self._sleepers)
