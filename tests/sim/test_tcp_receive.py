"""The host's TCP receiver (tcp_v4_rcv): it answers only frames addressed to this station."""

from __future__ import annotations

from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether

from lsfsim.config.model import load_model
from lsfsim.machine import run
from lsfsim.pcapio import PcapWriter
from lsfsim.scenario import Scenario, SocketSpec, TrafficSpec


def _segments(path: Path, dst_mac: str, n: int = 6) -> Path:
    with PcapWriter(path) as out:
        for i in range(n):
            frame = (Ether(src="00:11:22:33:44:55", dst=dst_mac)
                     / IP(src="208.68.139.89", dst="10.0.0.2")
                     / TCP(sport=5001, dport=40000, flags="PA", seq=1 + 100 * i)
                     / (b"x" * 100))
            out.write(bytes(frame), ts=i * 1e-3)
    return path


@pytest.mark.parametrize("where, acks", [
    ("host", 3),                        # every second data segment is acknowledged
    ("ff:ff:ff:ff:ff:ff", 0),           # PACKET_BROADCAST: discarded by tcp_v4_rcv
    ("01:00:5e:00:00:fb", 0),           # PACKET_MULTICAST: likewise
])
def test_only_segments_addressed_to_the_host_are_acknowledged(tmp_path, where, acks):
    mac = load_model("testbed").hardware.nic.mac if where == "host" else where
    pcap = _segments(tmp_path / "s.pcap", mac)
    result = run(Scenario(traffic=TrafficSpec(kind="pcap", pcap=str(pcap)),
                          sockets=[SocketSpec(promisc=True)]))
    assert result["received"] == 6
    assert result["acks_sent"] == acks
