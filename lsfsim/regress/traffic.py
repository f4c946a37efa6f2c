"""A suite's traffic: one capture the machine replays, and its frames as the NIC receives them.

Several captures are joined into one temporary pcap, each starting where the
previous one ended (the gap between them is nil); a ``[suite.generate]`` table
is run through lsfsim's generator once and written out the same way
(nanosecond timestamps, so the replay keeps the generator's timing).  Each
frame keeps its origin, file and record number (from 0, as lsfsim numbers
frames everywhere: ``lsfsim bpf debug FILE CAPTURE --packet N`` steps through
it), for the reports.

A frame "as received" is what PcapReplay and pcnet32 make of a record: a
record captured with a snaplen is padded with zeros to its wire length, a
frame shorter than 60 bytes to 60 (the sender's padding).  That is what
packet_rcv hands to the filter, so it is what the offline verdicts are
computed on.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lsfsim.config.model import Model
from lsfsim.pcapio import LINKTYPE_ETHERNET, PcapError, PcapWriter, iter_pcap
from lsfsim.regress.suite import Suite, SuiteError

__all__ = ["Traffic", "as_received", "prepare_traffic"]

ETH_ZLEN = 60


def as_received(data: bytes, wirelen: int) -> bytes:
    """The frame the simulated NIC receives for a record (see the module docstring)."""
    if len(data) < wirelen:
        data = data + bytes(wirelen - len(data))
    if len(data) < ETH_ZLEN:
        data = data.ljust(ETH_ZLEN, b"\0")
    return data


@dataclass
class Traffic:
    """The file to replay and where each of its frames came from."""

    replay: Path
    parts: list[tuple[str, int]]          # (file as shown, number of records), in order
    count: int
    _tmp: Any = field(default=None, repr=False)   # TemporaryDirectory holding ``replay``

    def where(self, index: int) -> tuple[str, int]:
        """(file, record number from 0) of frame ``index`` (from 0) of the replay."""
        for name, n in self.parts:
            if index < n:
                return name, index
            index -= n
        raise IndexError(index)

    def frames(self) -> Iterator[bytes]:
        """Every frame of the replay, as received."""
        for rec in iter_pcap(self.replay):
            yield as_received(rec.data, rec.wirelen)

    def cleanup(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


def _check_capture(suite: Suite, path: Path) -> int:
    """Records of an Ethernet capture; a damaged or non-Ethernet one is a SuiteError."""
    shown = _shown(suite, path)
    n = 0
    try:
        for rec in iter_pcap(path):
            if rec.linktype != LINKTYPE_ETHERNET:
                raise suite.error(
                    f"{shown}: record {n}: linktype {rec.linktype} is not Ethernet "
                    f"(LINKTYPE_ETHERNET = {LINKTYPE_ETHERNET}); only Ethernet captures can be "
                    "replayed", loc=("suite", "traffic"))
            n += 1
    except PcapError as exc:
        raise suite.error(str(exc), loc=("suite", "traffic")) from None
    except OSError as exc:
        raise suite.error(f"{shown}: {exc.strerror or exc}", loc=("suite", "traffic")) from None
    return n


def _shown(suite: Suite, path: Path) -> str:
    try:
        return str(path.relative_to(suite.path.parent))
    except ValueError:
        return str(path)


def prepare_traffic(suite: Suite, model: Model) -> Traffic:
    """Check every capture (or run the generator) and return the traffic to replay."""
    if suite.section.generate is not None:
        return _generate(suite, model)
    parts = [(_shown(suite, p), _check_capture(suite, p)) for p in suite.captures]
    if len(suite.captures) == 1:
        return Traffic(suite.captures[0], parts, parts[0][1])
    tmp = tempfile.TemporaryDirectory(prefix="lsfsim-regress-")
    replay = Path(tmp.name) / "traffic.pcap"
    offset = 0.0
    with PcapWriter(replay, nanosecond=True) as out:
        for path in suite.captures:
            first = last = None
            for rec in iter_pcap(path):
                if first is None:
                    first = rec.ts
                # PcapReplay clamps backward timestamps; so does this join
                t = max(offset + (rec.ts - first), last if last is not None else offset)
                out.write(rec.data, t, rec.wirelen)
                last = t
            if last is not None:
                offset = last
    return Traffic(replay, parts, sum(n for _, n in parts), tmp)


def _generate(suite: Suite, model: Model) -> Traffic:
    """Run the ``[suite.generate]`` traffic options through lsfsim's generator once."""
    from pydantic import ValidationError

    from lsfsim.machine import build_source
    from lsfsim.scenario import Scenario, TrafficSpec

    gen = suite.section.generate
    assert gen is not None
    fields = {k: v for k, v in gen.model_dump().items() if v is not None and k != "traffic"}
    try:
        spec = TrafficSpec.model_validate({"kind": gen.traffic, **fields})
    except ValidationError as exc:
        err = exc.errors()[0]
        raise suite.error(err["msg"], loc=("suite", "generate")) from None
    source = build_source(Scenario.model_validate({"traffic": spec, "sockets": [],
                                                   "seed": suite.section.seed}), model)
    tmp = tempfile.TemporaryDirectory(prefix="lsfsim-regress-")
    replay = Path(tmp.name) / "generated.pcap"
    n = 0
    with PcapWriter(replay, nanosecond=True) as out:
        for item in source.frames():
            if isinstance(item, tuple):
                t, data = item
            else:                   # pragma: no cover - open-loop generators never block
                raise SuiteError("the generator blocked", file=suite.shown)
            out.write(data, t)
            n += 1
    return Traffic(replay, [("generated", n)], n, tmp)
