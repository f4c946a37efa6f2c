"""Time series of a run: the queues, drop counters and CPU accounting, sampled.

``Sampler`` is a machine probe (``Machine(..., probes=[Sampler()])``).  It
records, on a regular grid of simulated time, the state that explains a
run's drops: RX ring occupancy, each socket's ``sk_rmem_alloc`` against
``sk_rcvbuf``, cumulative drops by place and each CPU's cumulative hi/si/sy/us
time.

How it samples, and why that way: it does not schedule events of its own.
A SimPy process ticking every interval would keep the event queue alive, and
its last tick would push ``env.now`` (the run's ``sim_seconds``) past the
last real event, so a run with a report would give different figures from
the same run without one.  Instead the probe wraps ``env.step``: before each
event it records every grid point that lies before that event's time.  The
state is constant between events, so a grid point at ``g`` sees exactly the
effects of all events at times <= g.  The run's end (no event left) adds a
final sample at ``env.now``.

Memory is bounded by the sample count, not the packet count: when the
series reach ``max_samples + 1`` points, every other point is dropped and
the interval doubles, so a run of any length keeps between ``max_samples/2``
and ``max_samples + 1`` samples on a regular grid.

The RX ring is observed as the driver sees it (``rx_ring_host_owned``); the
chip is simulated lazily, so a frame DMAed while nobody looks at the ring is
counted from the next time the driver or the interrupt logic looks.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lsfsim.simpy_fast import before_each_step
from lsfsim.vocabulary import BUCKETS

if TYPE_CHECKING:
    from lsfsim.machine import Machine

DEFAULT_INTERVAL = 100e-6
DEFAULT_MAX_SAMPLES = 2000

# NIC and softnet drop places, in the order of the summary's drop table.
NIC_DROPS = ("mac_filtered", "rx_missed_errors", "rx_oversize", "rx_dropped",
             "softnet_dropped")


class Sampler:
    """A probe recording the machine's state every ``interval`` of simulated time.

    ``series`` maps a name to a list of floats, one per sample, all of the
    same length; ``series["t"]`` holds the sample times.  Names:

    * ``ring``: RX descriptors filled by the chip and not yet returned
      (``ring_size`` holds the ring's length);
    * ``offered``, ``interrupts``, ``rx_packets``: cumulative wire frames,
      NIC interrupts and frames the driver passed up (the wire counts a
      frame when it schedules it, one frame ahead of its arrival);
    * ``drops.<place>`` for each of ``NIC_DROPS`` (cumulative);
    * ``sock<i>.rmem_alloc``, ``sock<i>.rcvbuf`` (bytes; NaN before the
      socket exists), ``sock<i>.queue_len`` (skbs), ``sock<i>.rcvbuf_drops``,
      ``sock<i>.filtered``, ``sock<i>.delivered`` (cumulative);
    * ``cpu<n>.hi`` / ``.si`` / ``.sy`` / ``.us``: cumulative seconds.
    """

    def __init__(self, interval: float | None = None,
                 max_samples: int | None = DEFAULT_MAX_SAMPLES) -> None:
        interval = DEFAULT_INTERVAL if interval is None else float(interval)
        if not interval > 0 or math.isinf(interval):
            raise ValueError(f"sampler interval must be a positive time, got {interval!r}")
        if max_samples is not None and max_samples < 2:
            raise ValueError(f"max_samples must be at least 2, got {max_samples}")
        self.interval = interval
        # an even cap, so that decimation keeps the newest sample
        self.max_samples = None if max_samples is None else max_samples + max_samples % 2
        self.machine: Machine | None = None
        self.series: dict[str, list[float]] = {}
        self.ring_size = 0
        self.nsockets = 0
        self.ncpus = 0
        self.finished = False
        self._t0 = 0.0
        self._k = 0              # the next grid point is _t0 + _k * interval
        self._due = 0.0
        self._readers: list[tuple[list[float], Callable[[], float]]] = []

    # --- probe protocol -----------------------------------------------------
    def attach(self, machine: Machine) -> None:
        """Called at the end of Machine.__init__: set up the series, wrap env.step."""
        if self.machine is not None:
            raise RuntimeError("a Sampler records one machine only")
        self.machine = machine
        for cpu in machine.cpus:
            # an interrupt step that moves the clock without an event would carry the
            # state past grid points unseen: here every step is an event
            cpu.run_ahead = False
        dev = machine.dev
        self.ring_size = dev.rx_ring_size
        self.nsockets = len(machine.apps)
        self.ncpus = len(machine.cpus)
        readers: list[tuple[str, Callable[[], float]]] = [
            ("ring", dev.rx_ring_host_owned),
            ("offered", lambda: machine.wire.offered),
            ("interrupts", lambda: dev.interrupts),
            ("rx_packets", lambda: dev.rx_packets),
            ("drops.mac_filtered", lambda: dev.mac_filtered),
            ("drops.rx_missed_errors", lambda: dev.rx_missed_true),
            ("drops.rx_oversize", lambda: dev.rx_oversize),
            ("drops.rx_dropped", lambda: dev.rx_dropped),
            ("drops.softnet_dropped",
             lambda: sum(cpu.softnet.dropped for cpu in machine.cpus)),
        ]
        for i, app in enumerate(machine.apps):
            readers += [
                (f"sock{i}.rmem_alloc", _sock_attr(app, "sk_rmem_alloc", 0.0)),
                (f"sock{i}.rcvbuf", _sock_attr(app, "sk_rcvbuf", math.nan)),
                (f"sock{i}.queue_len", _sock_queue_len(app)),
                (f"sock{i}.rcvbuf_drops", _sock_attr(app, "rcvbuf_drops", 0.0)),
                (f"sock{i}.filtered", _sock_attr(app, "filtered", 0.0)),
                (f"sock{i}.delivered", _sock_attr(app, "delivered", 0.0)),
            ]
        for cpu in machine.cpus:
            for k, bucket in enumerate(BUCKETS):
                readers.append((f"cpu{cpu.index}.{bucket}", _item_reader(cpu.acct, k)))
        self.series = {"t": []}
        self._readers = []
        for name, read in readers:
            column: list[float] = []
            self.series[name] = column
            self._readers.append((column, read))
        env = machine.env
        self._t0 = self._due = env.now

        def before_step(t_next: float) -> None:
            if t_next > self._due:
                self._catch_up(t_next)

        before_each_step(env, before_step)

    # --- recording ----------------------------------------------------------
    def _catch_up(self, t_next: float) -> None:
        """Record every grid point before ``t_next`` (the next event's time)."""
        assert self.machine is not None
        if t_next == math.inf:
            self.machine.drain_lazy(self._catch_up)   # the lazy readers' last steps
            self.finish()
            return
        cap = self.max_samples
        series_t = self.series["t"]
        while self._due < t_next:
            self._record(self._due)
            self._k += 1
            if cap is not None and len(series_t) > cap:
                self._decimate()
            # times as multiples, not sums, of the interval: no drift over a long run
            self._due = self._t0 + self._k * self.interval

    def _record(self, t: float) -> None:
        assert self.machine is not None
        self.machine.advance_lazy(t)
        self.series["t"].append(float(t))
        for column, read in self._readers:
            column.append(float(read()))

    def _decimate(self) -> None:
        """Keep every other sample and double the interval, so the grid stays
        regular.  The samples are grid points 0..cap (an even number), so the
        newest one is kept."""
        for column in self.series.values():
            del column[1::2]
        self.interval *= 2
        self._k = (self._k - 1) // 2 + 1

    def finish(self) -> None:
        """Record the final state at ``env.now`` (idempotent).

        Called when the event queue runs dry; call it after a run that
        stopped early (``max_sim_seconds``) too.  Readers of ``series`` need
        not: the plotting and report functions call it.  (This last sample may
        bring the count to ``max_samples + 1`` and lie off the grid.)
        """
        if self.machine is None:
            return
        now = self.machine.now
        times = self.series["t"]
        if not times or times[-1] < now:
            self._record(now)
        self.finished = True

    # --- reading ------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.series.get("t", ()))

    def __bool__(self) -> bool:
        """A sampler is a probe, true even before it has a sample (``if probe:``)."""
        return True

    def column(self, name: str) -> list[float]:
        """One series by name (KeyError names the known ones)."""
        try:
            return self.series[name]
        except KeyError:
            raise KeyError(f"no series {name!r}; known: {', '.join(self.series)}") from None

    def drop_places(self) -> list[str]:
        """Every cumulative drop series: NIC and softnet places, then per socket."""
        names = [f"drops.{p}" for p in NIC_DROPS]
        for i in range(self.nsockets):
            names += [f"sock{i}.filtered", f"sock{i}.rcvbuf_drops"]
        return names

    def to_dict(self) -> dict[str, Any]:
        """Plain data (for JSON): the interval, the ring size and every series."""
        return {"interval": self.interval, "ring_size": self.ring_size,
                "series": {k: list(v) for k, v in self.series.items()}}


def _sock_attr(app: Any, attr: str, missing: float) -> Callable[[], float]:
    """Read a socket attribute; the socket exists only once the program ran socket()."""
    def read() -> float:
        sock = app.sock
        return missing if sock is None else getattr(sock, attr)
    return read


def _sock_queue_len(app: Any) -> Callable[[], float]:
    def read() -> float:
        sock = app.sock
        return 0.0 if sock is None else len(sock.sk_receive_queue)
    return read


def _item_reader(values: list[float], k: int) -> Callable[[], float]:
    """A reader of ``values[k]`` as it is when called (a CPU's time in one bucket)."""
    return lambda: values[k]
