"""Scenarios: what runs on the simulated machine (traffic, sockets, readers, senders).

A scenario is data, validated once (pydantic); the machine is built from it
and a model.  ``Scenario()`` with no arguments is the lecture's experiment:
the testbed model, one PF_PACKET socket with the "host 208.68.139.89" filter
read by one thread, and a 100 MB nc transfer from that host.  The lecture's
filter comes with the default ``sockets`` only: a ``SocketSpec()`` of one's own
has no filter, as tcpdump with no expression.  Like tcpdump (and the
lecture's program), a capture program puts the interface into promiscuous
mode unless ``promisc=False`` (tcpdump's ``-p``).
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

LECTURE_HOST = "208.68.139.89"
LECTURE_FILTER = f"host {LECTURE_HOST}"
#: packets per second of generated traffic when no rate is given
DEFAULT_RATE = 10_000.0
#: capture programs in one scenario: every socket is a tap each frame visits, so
#: the run's cost grows with sockets x frames; beyond this a run would seem to hang
MAX_SOCKETS = 1024


class TrafficSpec(BaseModel):
    """The offered traffic.  Sizes are frame lengths without the FCS (60..1514)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["nc", "cbr", "poisson", "onoff", "pcap"] = "nc"
    rate: float | None = Field(None, gt=0, description="packets per second")
    size: int = Field(1514, ge=60, le=1514)
    packets: int | None = Field(None, gt=0)
    bytes: int | None = Field(None, gt=0)
    duration: float | None = Field(None, gt=0, description="seconds of traffic")
    pcap: str | None = None
    speed: float | None = Field(None, ge=0, description="pcap replay: x times faster; 0 = asap")
    on: float = Field(1e-3, gt=0, description="onoff: seconds on")
    off: float = Field(1e-3, gt=0, description="onoff: seconds off")
    proto: Literal["udp", "tcp", "icmp"] = "udp"
    src: str = LECTURE_HOST
    _rate_given: bool = PrivateAttr(True)    # False: the rate is DEFAULT_RATE, not asked for

    @model_validator(mode="after")
    def _needs(self) -> TrafficSpec:
        if self.kind == "pcap" and not self.pcap:
            raise ValueError("traffic kind 'pcap' needs a capture file (--pcap FILE)")
        if self.kind in ("cbr", "poisson", "onoff") and self.rate is None:
            self.rate = DEFAULT_RATE
            self._rate_given = False
        if self.kind in ("cbr", "poisson", "onoff") and not (
            self.packets or self.duration or self.bytes
        ):
            self.packets = 10_000
        return self


class SocketSpec(BaseModel):
    """One capture program: a PF_PACKET socket, its filter and its reader threads."""

    model_config = ConfigDict(extra="forbid")

    filter: str | None = None
    filter_file: str | None = None
    snaplen: int = Field(65535, ge=1, le=262144)
    rcvbuf: int | None = Field(None, ge=1, description="the value passed to SO_RCVBUF")
    readers: int = Field(1, ge=0, le=64)
    reader_work: float = Field(0.0, ge=0, description="seconds of user work per packet")
    buflen: int = Field(65536, ge=1, description="recvfrom buffer length")
    promisc: bool = True
    cpu: int | None = Field(None, ge=0, description="pin the readers to this CPU")

    @field_validator("filter")
    @classmethod
    def _empty_is_none(cls, v: str | None) -> str | None:
        return v if v is None or v.strip() else None

    @model_validator(mode="after")
    def _one_filter(self) -> SocketSpec:
        if self.filter is not None and self.filter_file is not None:
            raise ValueError("filter and filter_file exclude each other: give one")
        return self


class SenderSpec(BaseModel):
    """A program sending raw frames with sendto through packet_snd."""

    model_config = ConfigDict(extra="forbid")

    rate: float = Field(1000.0, gt=0)
    count: int = Field(1000, ge=1)
    size: int = Field(60, ge=60, le=1514)


class Scenario(BaseModel):
    """Everything a run needs besides the model."""

    model_config = ConfigDict(extra="forbid")

    model: str = "testbed"
    traffic: TrafficSpec = Field(default_factory=TrafficSpec)
    sockets: list[SocketSpec] = Field(
        default_factory=lambda: [SocketSpec(filter=LECTURE_FILTER)], max_length=MAX_SOCKETS,
        description="capture programs; by default the lecture's one")
    senders: list[SenderSpec] = Field(default_factory=list)
    napi: bool = True
    seed: int = 1
    drain: bool = True
    rx_ring: int | None = None
    max_sim_seconds: float | None = Field(None, gt=0, description="hard stop of simulated time")
    allow_refused_filter: bool = Field(
        default=False, description="run even if the kernel refuses a filter (the socket stays "
                           "unfiltered, as the kernel leaves it); otherwise FilterRefused")
    overrides: dict[str, str | int | float | bool] = Field(
        default_factory=dict,
        description="model fields to change, as --set gives them: {'kernel.rmem_max': '16MiB'}")

    @model_serializer(mode="wrap")
    def _without_empty_overrides(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # a run without --set dumps exactly as before overrides existed
        data = handler(self)
        if not data.get("overrides"):
            data.pop("overrides", None)
        return data


# pydantic's complaints when a plain (unit-less) int, float or bool field gets a string
_PLAIN_TYPES = ("valid integer", "valid number", "valid boolean")
_BOOLS = {"true": True, "false": False, "yes": True, "no": False, "1": True, "0": False}


def apply_overrides(model: Any, overrides: dict[str, Any]) -> Any:
    """``model.with_overrides(overrides)``, with ``--set``'s strings typed as needed.

    The command line gives every value as a string.  Fields with units parse
    strings themselves ("16MiB", "2us"); a plain count such as ``rx_ring`` or a
    flag such as ``vm`` accepts only a number or a boolean, so a bare number or
    true/false is converted for such a field, and only for it: a bare "350"
    for a duration is still refused (ns? us?) with the model's own message.
    """
    items = dict(overrides)
    from lsfsim.config.model import ModelError

    while True:
        try:
            return model.with_overrides(items)
        except ModelError as exc:
            value = items.get(exc.field or "")
            typed = _typed(value) if any(t in exc.detail for t in _PLAIN_TYPES) else None
            if typed is None:
                raise
            items[exc.field or ""] = typed


def _typed(value: Any) -> int | float | bool | None:
    """A bare number or boolean written as a string, as that type; else None."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if re.fullmatch(r"[+-]?\d+", text):
        return int(text)
    if re.fullmatch(r"[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?", text):
        return float(text)
    return _BOOLS.get(text.lower())
