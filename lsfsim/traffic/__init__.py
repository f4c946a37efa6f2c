"""Traffic sources: what arrives at the simulated NIC.

Open-loop generators (constant rate, Poisson, on/off bursts) with size
distributions and protocol mixes, replay of pcap/pcapng captures, and the
lecture's closed-loop workload, a 100 MB TCP transfer with nc.
"""

from lsfsim.traffic.base import BLOCKED, ETH_FRAME_LEN, ETH_ZLEN, Frame, TrafficSource
from lsfsim.traffic.frames import PROTOCOLS, Endpoint, make_builder, min_frame_size
from lsfsim.traffic.generators import (
    IMIX,
    ConstantRate,
    EmpiricalSize,
    FixedSize,
    OnOff,
    Poisson,
    SizeDist,
    UniformSize,
    parse_mix,
    parse_size,
)
from lsfsim.traffic.nc import NcTransfer, build_ack
from lsfsim.traffic.replay import PcapReplay

__all__ = [
    "BLOCKED",
    "ETH_FRAME_LEN",
    "ETH_ZLEN",
    "IMIX",
    "PROTOCOLS",
    "ConstantRate",
    "EmpiricalSize",
    "Endpoint",
    "FixedSize",
    "Frame",
    "NcTransfer",
    "OnOff",
    "PcapReplay",
    "Poisson",
    "SizeDist",
    "TrafficSource",
    "UniformSize",
    "build_ack",
    "make_builder",
    "min_frame_size",
    "parse_mix",
    "parse_size",
]
