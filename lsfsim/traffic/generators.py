"""Open-loop traffic generators: constant rate, Poisson, on/off bursts.

Each generator is a timing process (when frames want to start) times a content
process (which protocol, size, source host and destination each frame has).
The two draw from separate ``random.Random`` streams derived from ``seed``, so
changing e.g. the size distribution does not change the arrival times.  Never
the global ``random``: a source is reproducible from its arguments alone.
"""

from __future__ import annotations

import abc
import bisect
import ipaddress
import itertools
import math
import random
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Final

from lsfsim.traffic.base import ETH_ZLEN, FrameOrBlocked, TrafficSource
from lsfsim.traffic.frames import (
    BROADCAST,
    HOST_IP,
    HOST_IP6,
    HOST_MAC,
    OTHER_IP,
    OTHER_MAC,
    PROTOCOLS,
    REMOTE_IP,
    REMOTE_MAC,
    Builder,
    Endpoint,
    HostTable,
    make_builder,
    min_frame_size,
)

_MAX_FRAME: Final = 65535 + 18

# -- size distributions -----------------------------------------------------------------


class SizeDist(abc.ABC):
    """Frame sizes in bytes, Ethernet header included, FCS excluded."""

    @abc.abstractmethod
    def sample(self, rng: random.Random) -> int:
        """One size."""

    @property
    @abc.abstractmethod
    def mean(self) -> float:
        """The expected size (before per-protocol clamping to the minimum frame)."""

    @abc.abstractmethod
    def describe(self) -> str:
        """Short text, parseable back by :func:`parse_size`."""


def _check_size(n: int, what: str = "size") -> int:
    if isinstance(n, bool) or not isinstance(n, int):
        raise ValueError(f"{what}: {n!r} is not an integer number of bytes")
    if not ETH_ZLEN <= n <= _MAX_FRAME:
        raise ValueError(
            f"{what}: {n} bytes is outside [{ETH_ZLEN}, {_MAX_FRAME}] "
            f"(frame sizes exclude the 4-byte FCS: the Ethernet minimum is {ETH_ZLEN})"
        )
    return n


class FixedSize(SizeDist):
    def __init__(self, size: int) -> None:
        self.size = _check_size(size)

    def sample(self, rng: random.Random) -> int:
        return self.size

    @property
    def mean(self) -> float:
        return float(self.size)

    def describe(self) -> str:
        return str(self.size)


class UniformSize(SizeDist):
    """Uniform over the integers ``a..b`` inclusive."""

    def __init__(self, a: int, b: int) -> None:
        self.a, self.b = _check_size(a), _check_size(b)
        if self.a > self.b:
            raise ValueError(f"size: uniform({a},{b}) has its bounds reversed")
        self._span = self.b - self.a + 1

    def sample(self, rng: random.Random) -> int:
        return self.a + int(rng.random() * self._span)

    @property
    def mean(self) -> float:
        return (self.a + self.b) / 2

    def describe(self) -> str:
        return f"uniform({self.a},{self.b})"


class EmpiricalSize(SizeDist):
    """Sizes drawn with the given relative weights."""

    def __init__(self, pairs: Iterable[tuple[int, float]], name: str | None = None) -> None:
        self.pairs = tuple((_check_size(int(s)), float(w)) for s, w in pairs)
        if not self.pairs:
            raise ValueError("size: an empirical distribution needs at least one (size, weight)")
        if any(w < 0 or not math.isfinite(w) for _, w in self.pairs):
            raise ValueError("size: weights must be finite and >= 0")
        total = sum(w for _, w in self.pairs)
        if total <= 0:
            raise ValueError("size: the weights sum to zero")
        self._sizes = [s for s, _ in self.pairs]
        self._cum = list(itertools.accumulate(w / total for _, w in self.pairs))
        self._cum[-1] = 1.0
        self.name = name

    def sample(self, rng: random.Random) -> int:
        return self._sizes[bisect.bisect_right(self._cum, rng.random())]

    @property
    def mean(self) -> float:
        total = sum(w for _, w in self.pairs)
        return sum(s * w for s, w in self.pairs) / total

    def describe(self) -> str:
        return self.name or ",".join(f"{s}:{w:g}" for s, w in self.pairs)


#: The classic simple IMIX, 7:4:1 of 64/594/1518-byte frames counted *with* FCS,
#: i.e. 60/590/1514 bytes here, where sizes exclude the FCS.
IMIX: Final = EmpiricalSize([(60, 7), (590, 4), (1514, 1)], name="imix")

_UNIFORM_RE = re.compile(r"uniform\s*[(:]\s*(\d+)\s*[,-]\s*(\d+)\s*\)?", re.IGNORECASE)


def parse_size(spec: int | str | SizeDist | Sequence[tuple[int, float]]) -> SizeDist:
    """``1514``, ``"imix"``, ``"uniform(60,1514)"``, ``"60:7,590:4,1514:1"``, a list of
    ``(size, weight)`` pairs, or a :class:`SizeDist`."""
    if isinstance(spec, SizeDist):
        return spec
    if isinstance(spec, int):
        return FixedSize(spec)
    if isinstance(spec, str):
        text = spec.strip()
        if text.lower() == "imix":
            return IMIX
        if text.isdigit():
            return FixedSize(int(text))
        m = _UNIFORM_RE.fullmatch(text)
        if m:
            return UniformSize(int(m[1]), int(m[2]))
        try:
            pairs = [_pair(item) for item in text.split(",")]
        except ValueError:
            raise ValueError(
                f"size: cannot read {spec!r} (expected N, 'imix', 'uniform(A,B)' "
                "or 'SIZE:WEIGHT,SIZE:WEIGHT,...')"
            ) from None
        return EmpiricalSize(pairs)
    return EmpiricalSize(spec)


def _pair(item: str) -> tuple[int, float]:
    size, _, weight = item.partition(":")
    return int(size), float(weight) if weight else 1.0


def parse_mix(
    spec: str | Mapping[str, float] | Sequence[tuple[str, float]],
) -> list[tuple[str, float]]:
    """Protocol weights: ``"udp"``, ``"udp:7,tcp:3"``, ``{"udp": 7, "tcp": 3}`` or pairs.

    Kinds are those of :data:`lsfsim.traffic.frames.PROTOCOLS`.
    """
    if isinstance(spec, str):
        pairs: list[tuple[str, float]] = []
        for item in spec.split(","):
            kind, _, weight = item.strip().partition(":")
            try:
                pairs.append((kind.strip().lower(), float(weight) if weight else 1.0))
            except ValueError:
                raise ValueError(f"proto: bad weight {weight!r} in {spec!r}") from None
    elif isinstance(spec, Mapping):
        pairs = [(str(k).lower(), float(v)) for k, v in spec.items()]
    else:
        pairs = [(str(k).lower(), float(v)) for k, v in spec]
    if not pairs:
        raise ValueError("proto: empty protocol mix")
    for kind, share in pairs:
        if kind not in PROTOCOLS:
            raise ValueError(
                f"proto: unknown protocol {kind!r} (expected one of {', '.join(PROTOCOLS)})"
            )
        if share < 0 or not math.isfinite(share):
            raise ValueError(f"proto: weight of {kind} must be finite and >= 0, not {share}")
    if sum(w for _, w in pairs) <= 0:
        raise ValueError("proto: the weights sum to zero")
    return pairs


# -- the generators ---------------------------------------------------------------------

_DST_HOST, _DST_OTHER, _DST_BCAST = 0, 1, 2
#: 198.18.0.0/15 without the .0 and .255 addresses of each /24.
_HOST_POOL: Final = 512 * 254


def _check_positive(value: float, what: str) -> float:
    value = float(value)
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{what}: must be a positive number, not {value}")
    return value


def _check_fraction(value: float, what: str) -> float:
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{what}: must be within [0, 1], not {value}")
    return value


class _Generator(TrafficSource):
    """Content and stopping rules shared by the open-loop generators."""

    kind_name = "generator"

    def __init__(
        self,
        *,
        size: int | str | SizeDist | Sequence[tuple[int, float]] = 1514,
        proto: str | Mapping[str, float] | Sequence[tuple[str, float]] = "udp",
        count: int | None = None,
        duration: float | None = None,
        seed: int = 0,
        start: float = 0.0,
        hosts: int = 1,
        src_ip: str = REMOTE_IP,
        src_mac: str = REMOTE_MAC,
        dst_ip: str = HOST_IP,
        dst_mac: str = HOST_MAC,
        dst_ip6: str = HOST_IP6,
        other_fraction: float = 0.0,
        other_mac: str = OTHER_MAC,
        other_ip: str = OTHER_IP,
        broadcast_fraction: float = 0.0,
        sport: int = 40000,
        dport: int = 5001,
        vlan_id: int = 100,
        name: str | None = None,
    ) -> None:
        self.size = parse_size(size)
        self.mix = parse_mix(proto)
        if count is not None and (isinstance(count, bool) or int(count) != count or count < 0):
            raise ValueError(f"count: must be a non-negative integer, not {count!r}")
        self.count = None if count is None else int(count)
        self.duration = None if duration is None else _check_positive(duration, "duration")
        self.seed = seed
        self.start = float(start)
        if isinstance(hosts, bool) or int(hosts) != hosts or not 1 <= hosts <= 1 << 16:
            raise ValueError(f"hosts: must be an integer in [1, {1 << 16}], not {hosts!r}")
        self.hosts = int(hosts)
        self.other_fraction = _check_fraction(other_fraction, "other_fraction")
        self.broadcast_fraction = _check_fraction(broadcast_fraction, "broadcast_fraction")
        if self.other_fraction + self.broadcast_fraction > 1.0:
            raise ValueError("other_fraction + broadcast_fraction must not exceed 1")
        for what, port in (("sport", sport), ("dport", dport)):
            if not 0 <= port <= 0xFFFF:
                raise ValueError(f"{what}: {port} is not a port number")
        if not 0 <= vlan_id <= 4095:
            raise ValueError(f"vlan_id: {vlan_id} is outside [0, 4095]")
        self.sport, self.dport, self.vlan_id = sport, dport, vlan_id
        self.src = Endpoint.make(src_mac, src_ip)
        self.dst = Endpoint.make(dst_mac, dst_ip, dst_ip6)
        self.other = Endpoint.make(other_mac, other_ip)
        if name is not None:
            self.name = name
        else:
            self.name = self.kind_name

    # Subclasses: the desired start times, an endless non-decreasing stream.
    @abc.abstractmethod
    def _times(self, rng: random.Random) -> Iterator[float]: ...

    def _timing_text(self) -> str:
        return ""

    def describe(self) -> str:
        mix = ",".join(f"{k}:{w:g}" for k, w in self.mix) if len(self.mix) > 1 else self.mix[0][0]
        parts = [f"{self.name}: {self._timing_text()}", f"size {self.size.describe()}", mix]
        if self.hosts > 1:
            parts.append(f"{self.hosts} hosts")
        if self.other_fraction:
            parts.append(f"{self.other_fraction:g} to other MAC")
        if self.broadcast_fraction:
            parts.append(f"{self.broadcast_fraction:g} broadcast")
        if self.count is not None:
            parts.append(f"count {self.count}")
        if self.duration is not None:
            parts.append(f"duration {self.duration:g} s")
        parts.append(f"seed {self.seed}")
        return ", ".join(parts)

    def source_hosts(self) -> list[Endpoint]:
        """The source stations: ``src`` first, then hosts drawn from 198.18.0.0/15
        (the benchmarking range) with locally administered MACs, deterministically."""
        out = [self.src]
        if self.hosts == 1:
            return out
        rng = random.Random(f"{self.seed}:hosts")
        base = int(ipaddress.IPv4Address("198.18.0.0"))
        for i in rng.sample(range(_HOST_POOL), self.hosts):  # one spare for a clash with src
            ip = str(ipaddress.IPv4Address(base + (i // 254) * 256 + i % 254 + 1))  # no .0/.255
            if ip == self.src.ip:
                continue
            mac = bytes([0x02]) + rng.getrandbits(40).to_bytes(5, "big")  # locally administered
            out.append(Endpoint.make(":".join(f"{b:02x}" for b in mac), ip))
            if len(out) == self.hosts:
                break
        return out

    def frames(self) -> Iterator[FrameOrBlocked]:
        rng = random.Random(f"{self.seed}:content")
        times = self._times(random.Random(f"{self.seed}:time"))
        count, end = self.count, None if self.duration is None else self.start + self.duration
        hosts = HostTable(self.source_hosts())
        nhosts = len(hosts)
        dsts = (self.dst, self.other, BROADCAST)
        kinds = [k for k, _ in self.mix]
        total_w = sum(w for _, w in self.mix)
        cum = list(itertools.accumulate(w / total_w for _, w in self.mix))
        cum[-1] = 1.0
        single_kind = len(kinds) == 1
        size_sample, size_rng = self.size.sample, rng
        fixed = self.size.size if isinstance(self.size, FixedSize) else None
        bf, of = self.broadcast_fraction, self.broadcast_fraction + self.other_fraction
        pick_dst = bool(of)
        # One builder per (protocol, destination kind): at most 6 x 3.
        builders: dict[tuple[int, int], Builder] = {}
        sport, dport, vlan_id = self.sport, self.dport, self.vlan_id
        if single_kind and fixed is not None and nhosts == 1 and not pick_dst:
            # nothing to draw per frame: one builder, one size, one source
            build = make_builder(kinds[0], hosts, self.dst, sport=sport, dport=dport,
                                 vlan_id=vlan_id)
            yield from _same_frames(times, count, end, build, fixed)
            return
        for n, t in enumerate(times):
            if (count is not None and n >= count) or (end is not None and t >= end):
                return
            k = 0 if single_kind else bisect.bisect_right(cum, rng.random())
            size = fixed if fixed is not None else size_sample(size_rng)
            h = 0 if nhosts == 1 else int(rng.random() * nhosts)
            d = _DST_HOST
            if pick_dst:
                r = rng.random()
                d = _DST_BCAST if r < bf else (_DST_OTHER if r < of else _DST_HOST)
            cached = builders.get((k, d))
            if cached is None:
                cached = builders[(k, d)] = make_builder(
                    kinds[k], hosts, dsts[d], sport=sport, dport=dport, vlan_id=vlan_id
                )
            yield (t, cached(size, n & 0xFFFF, h))  # n doubles as the IPv4 id / ICMP sequence

    @property
    def min_size(self) -> int:
        """The smallest frame this mix can produce (protocol minimums)."""
        return min(min_frame_size(k) for k, _ in self.mix)


def _same_frames(times: Iterator[float], count: int | None, end: float | None,
                 build: Builder, size: int) -> Iterator[FrameOrBlocked]:
    """Frames of one kind, size and source at the given times (the common cbr case)."""
    if count is None:
        count = -1
    for n, t in enumerate(times):
        if n == count or (end is not None and t >= end):
            return
        yield (t, build(size, n & 0xFFFF, 0))


class ConstantRate(_Generator):
    """Constant frame rate: frame ``i`` wants to start at ``start + i / rate_pps``.

    Times are computed as ``i / rate`` rather than accumulated, so gaps do not
    drift over millions of frames.
    """

    kind_name = "cbr"

    def __init__(self, rate_pps: float, size: int | str | SizeDist = 1514, **kw: object) -> None:
        self.rate = _check_positive(rate_pps, "rate_pps")
        super().__init__(size=size, **kw)  # type: ignore[arg-type]
        self.total_frames = self._count_known()

    def _count_known(self) -> int | None:
        n: int | None = None
        if self.duration is not None:
            # Frames with i / rate < duration.
            n = math.ceil(self.duration * self.rate)
            while n > 0 and (n - 1) / self.rate >= self.duration:
                n -= 1
            while n / self.rate < self.duration:
                n += 1
        if self.count is not None:
            n = self.count if n is None else min(n, self.count)
        return n

    def _times(self, rng: random.Random) -> Iterator[float]:
        start, rate = self.start, self.rate
        for i in itertools.count():
            yield start + i / rate

    def _timing_text(self) -> str:
        return f"{self.rate:g} pps constant"


class Poisson(_Generator):
    """Poisson arrivals: exponential gaps of mean ``1 / rate_pps`` (first one after ``start``)."""

    kind_name = "poisson"

    def __init__(self, rate_pps: float, size: int | str | SizeDist = 1514, **kw: object) -> None:
        self.rate = _check_positive(rate_pps, "rate_pps")
        super().__init__(size=size, **kw)  # type: ignore[arg-type]
        self.total_frames = self.count if self.duration is None else None

    def _times(self, rng: random.Random) -> Iterator[float]:
        t, rate, expo = self.start, self.rate, rng.expovariate
        while True:
            t += expo(rate)
            yield t

    def _timing_text(self) -> str:
        return f"{self.rate:g} pps Poisson"


class OnOff(_Generator):
    """Bursts: ``on`` seconds at ``rate_pps`` (constant rate inside the burst), then
    ``off`` seconds silent.  With ``exponential=True`` each on and off period is
    drawn from an exponential distribution of mean ``on`` / ``off`` instead.

    Frames of a burst start at ``burst_start + k / rate`` for ``k / rate < on``, so
    a fixed-length burst holds ``ceil(on * rate)`` frames and the long-run rate is
    ``rate * on / (on + off)``.
    """

    kind_name = "onoff"

    def __init__(
        self,
        rate_pps: float,
        on: float,
        off: float,
        size: int | str | SizeDist = 1514,
        exponential: bool = False,
        **kw: object,
    ) -> None:
        self.rate = _check_positive(rate_pps, "rate_pps")
        self.on = _check_positive(on, "on")
        off = float(off)
        if not (off >= 0 and math.isfinite(off)):
            raise ValueError(f"off: must be a number >= 0, not {off}")
        self.off = off
        self.exponential = bool(exponential)
        super().__init__(size=size, **kw)  # type: ignore[arg-type]
        self.total_frames = self.count if self.duration is None else None

    @property
    def duty_cycle(self) -> float:
        return self.on / (self.on + self.off)

    def _times(self, rng: random.Random) -> Iterator[float]:
        rate, start = self.rate, self.start
        burst = start
        for j in itertools.count():
            if self.exponential:
                on_len = rng.expovariate(1.0 / self.on)
                off_len = rng.expovariate(1.0 / self.off) if self.off > 0 else 0.0
            else:
                # Multiply rather than accumulate so period starts do not drift.
                burst = start + j * (self.on + self.off)
                on_len, off_len = self.on, self.off
            for k in itertools.count():
                dt = k / rate
                if dt >= on_len:
                    break
                yield burst + dt
            if self.exponential:
                burst += on_len + off_len

    def _timing_text(self) -> str:
        shape = "exponential" if self.exponential else "fixed"
        return f"{self.rate:g} pps on {self.on:g} s / off {self.off:g} s ({shape})"
