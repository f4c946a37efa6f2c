"""Probes: observers of a run, behind one small interface.

A probe is given to ``Machine(..., probes=[...])``.  The machine calls
``attach(machine)`` once everything is built, and ``finish()`` when the run is
over (after the result is collected).  Between the two, a probe sees the run
through any of the *packet hooks* below that it defines as methods: the
machine looks for each hook by name on every probe and hands the kernel one
callable per hook (``Hooks``), or None when no probe wants it, so a hook no
probe defines costs one ``is None`` test where it would fire.

The tracer that sees every kernel call is wired separately
(``Machine(tracer=...)``, ``kernel.cpu.CallTracer``), as it is called from the
innermost loop.

Existing probes: trace.ftrace.FtraceTracer, trace.lifecycle.LifecycleRecorder,
report.sampler.Sampler.  A new one (a capture-file writer, a regression
checker) is a class with ``attach``, ``finish`` and the hooks it needs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol, TypeVar

from lsfsim.kernel.cpu import CPU, ExecContext
from lsfsim.kernel.skbuff import SkBuff

M = TypeVar("M", contravariant=True)


class Probe(Protocol[M]):
    """The interface every probe implements (``M`` is the machine type)."""

    def attach(self, machine: M) -> None:
        """The machine is built (before its first event): look at what it holds."""
        ...

    def finish(self) -> None:
        """The run is over: flush what is pending.  Called once by the machine."""
        ...


class SocketView(Protocol):
    """A packet socket, as hooks see it."""

    @property
    def index(self) -> int: ...


class TaskView(Protocol):
    """A user thread (a reader), as hooks see it."""

    @property
    def name(self) -> str: ...

    @property
    def cpu(self) -> CPU: ...


class FrameView(Protocol):
    """A frame as the NIC took it off the wire (drivers.wire.FrameView)."""

    @property
    def index(self) -> int: ...

    @property
    def data(self) -> bytes: ...

    @property
    def t_start(self) -> float: ...

    @property
    def t_end(self) -> float: ...

    @property
    def t_dma(self) -> float: ...


class PacketHooks(Protocol):
    """The packet hooks, each optional: a probe defines the ones it needs."""

    def polled(self, ctx: ExecContext, skb: SkBuff) -> None:
        """pcnet32_rx_entry made an skb of a frame (before eth_type_trans)."""
        ...

    def filter_verdict(self, ctx: ExecContext, sock: SocketView, skb: SkBuff, verdict: int,
                       insns: int) -> None:
        """packet_rcv ran the socket's filter: it returned ``verdict`` (0 drops, else
        the bytes to keep) after ``insns`` instructions."""
        ...

    def verdict(self, ctx: ExecContext, sock: SocketView, skb: SkBuff, outcome: str,
                snaplen: int) -> None:
        """packet_rcv decided: "filtered", "rcvbuf_drop" or "queued" (``snaplen`` kept)."""
        ...

    def copied(self, reader: TaskView, skb: SkBuff, t_deq: float, t_done: float) -> None:
        """A reader's recvfrom dequeued ``skb`` at ``t_deq`` and finished copying at ``t_done``."""
        ...

    def recvfrom_returned(self, sock: SocketView, skb: SkBuff, copied: int, t: float) -> None:
        """recvfrom on ``sock`` returned ``skb`` to user space at ``t`` with ``copied``
        bytes (the packet's first ``copied`` bytes: what a capture file would keep)."""
        ...

    def nic_dropped(self, frame: FrameView, place: str) -> None:
        """The NIC or its driver dropped a frame (``place``: its counter's name)."""
        ...

    def softnet_dropped(self, ctx: ExecContext, skb: SkBuff) -> None:
        """netif_rx found the backlog full (pre-NAPI)."""
        ...


HOOKS = ("polled", "filter_verdict", "verdict", "copied", "recvfrom_returned", "nic_dropped",
         "softnet_dropped")


def _fan_out(methods: list[Callable[..., None]]) -> Callable[..., None]:
    def call_all(*args: Any) -> None:
        for method in methods:
            method(*args)
    return call_all


class Hooks:
    """One callable (or None) per packet hook, gathered from the listeners that define it.

    The kernel fires a hook as ``hook = hooks.verdict`` then
    ``if hook is not None: hook(...)``; listeners are called in the order given.
    """

    polled: Callable[[ExecContext, SkBuff], None] | None
    filter_verdict: Callable[[ExecContext, SocketView, SkBuff, int, int], None] | None
    verdict: Callable[[ExecContext, SocketView, SkBuff, str, int], None] | None
    copied: Callable[[TaskView, SkBuff, float, float], None] | None
    recvfrom_returned: Callable[[SocketView, SkBuff, int, float], None] | None
    nic_dropped: Callable[[FrameView, str], None] | None
    softnet_dropped: Callable[[ExecContext, SkBuff], None] | None

    def __init__(self, listeners: Iterable[object] = ()) -> None:
        listeners = list(listeners)
        for name in HOOKS:
            methods = [getattr(x, name) for x in listeners if callable(getattr(x, name, None))]
            if not methods:
                setattr(self, name, None)
            elif len(methods) == 1:
                setattr(self, name, methods[0])
            else:
                setattr(self, name, _fan_out(methods))

    def __bool__(self) -> bool:
        """Whether any hook has a listener."""
        return any(getattr(self, name) is not None for name in HOOKS)
