"""The traffic-source interface the simulator pulls frames from.

A source is a lazy stream of ``(desired start time, frame)`` pairs.  The
simulated wire serialises them (a frame starts at ``max(desired, wire free)``),
so a source never needs to know the link rate.  A closed-loop source (a TCP
sender) may yield :data:`BLOCKED` when it cannot send until the simulated host
transmits something, and learns what the host sent through
:meth:`TrafficSource.on_transmit`.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from typing import Final, TypeAlias


class _Blocked:
    """Sentinel type: nothing can be sent until the host transmits (window closed)."""

    _instance: _Blocked | None = None

    def __new__(cls) -> _Blocked:
        # A singleton, so that ``item is BLOCKED`` is the one test callers need.
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "BLOCKED"

    def __reduce__(self) -> str:
        return "BLOCKED"


BLOCKED: Final = _Blocked()

#: One item of :meth:`TrafficSource.frames`: (seconds from the start of the run,
#: Ethernet frame without FCS).
Frame: TypeAlias = tuple[float, bytes]
FrameOrBlocked: TypeAlias = Frame | _Blocked

#: Ethernet frame size limits without the 4-byte FCS, the convention of every
#: size in this package (a "64-byte minimum frame" is 60 bytes here).
ETH_ZLEN: Final = 60
ETH_FRAME_LEN: Final = 1514


class TrafficSource(abc.ABC):
    """A deterministic, streaming source of Ethernet frames addressed to the host.

    ``frames()`` yields ``(t, frame)`` with non-decreasing ``t`` (seconds from
    the start of the run) and ``frame`` the bytes from the Ethernet header on,
    without FCS -- or :data:`BLOCKED`.  Sources hold constant memory however
    many frames they produce.
    """

    name: str = "source"
    #: Seconds a BLOCKED source may wait for ``on_transmit`` before the simulator
    #: should call :meth:`on_timeout` (``None``: never).  A TCP sender whose
    #: segments in flight were all lost would otherwise wait forever.
    rto: float | None = None
    #: Number of frames ``frames()`` will yield, when known in advance (for
    #: progress bars); ``None`` when unbounded or unknown.
    total_frames: int | None = None

    @abc.abstractmethod
    def frames(self) -> Iterator[FrameOrBlocked]:
        """Yield ``(desired start time, frame)`` pairs or :data:`BLOCKED`."""

    def on_transmit(self, t: float, frame: bytes) -> None:  # noqa: B027 - optional hook
        """The simulated host put ``frame`` on the wire at time ``t`` (ACK clocking).

        Open-loop sources ignore it.
        """

    def on_timeout(self, t: float) -> None:  # noqa: B027 - optional hook
        """The source has been BLOCKED for ``rto`` seconds with nothing transmitted."""

    def describe(self) -> str:
        """One line for logs and reports."""
        return self.name

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.describe()}>"
