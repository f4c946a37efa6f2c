"""pcnet32's statistics as 2.6.33 reports them: CSR112 through a 16-bit read, no
multicast count, frames longer than a buffer chained over descriptors."""

from __future__ import annotations

from lsfsim.machine import Machine
from lsfsim.report.procfs import proc_net_dev
from lsfsim.scenario import Scenario, SocketSpec, TrafficSpec
from lsfsim.traffic.base import TrafficSource
from lsfsim.traffic.frames import HOST, REMOTE, make_builder

from .helpers import cbr, model


def test_rx_missed_errors_is_csr112_modulo_65536_and_conservation_uses_the_true_count():
    """A 100 ms interrupt entry holds the poll off while 70,000 frames arrive: the ring
    takes 32 and the chip misses the rest, more than CSR112's 16 bits can count."""
    m = model(**{"kernel.costs.hardirq": "100ms", "hardware.nic.link_rate": 1e9})
    n = 70_000
    result = Machine(m, cbr(1_400_000, n, size=60)).run()
    missed = n - 32
    assert result["rx_missed_true"] == missed
    assert result["conservation"]["places"]["rx_missed_errors"] == missed
    # pcnet32_get_stats: rx_missed_errors = read_csr(ioaddr, 112), a u16
    assert result["rx_missed_errors"] == result["netdev"]["rx_missed_errors"] == missed - 65536
    eth0 = proc_net_dev(result).splitlines()[-1].split()
    assert int(eth0[4]) == missed - 65536          # "drop" = rx_dropped + rx_missed_errors


def test_multicast_frames_are_not_counted_in_2_6_33():
    """eth_type_trans only sets pkt_type (eth.c:172); nobody increments stats.multicast."""
    build = make_builder("udp", REMOTE, HOST)

    def multicast(i: int) -> bytes:
        frame = bytearray(build(100, i))
        frame[0:6] = bytes.fromhex("01005e000001")
        return bytes(frame)

    m = model()
    result = Machine(m, Scenario(traffic=TrafficSpec(kind="cbr", rate=10_000, packets=50,
                                                     size=100),
                                 sockets=[SocketSpec(filter=None, promisc=False)]),
                     source=_FrameSource(multicast, 50, 10_000)).run()
    assert result["received"] == 50
    assert result["netdev"]["multicast"] == 0
    assert proc_net_dev(result).splitlines()[-1].split()[8] == "0"


def test_a_frame_longer_than_the_buffer_spreads_over_descriptors():
    """pkt_buf_skb 1000: the chip's buffer is 998 bytes, so a 1514-byte frame (+ FCS)
    takes two descriptors; pcnet32_rx_entry counts rx_errors once, on the last (ENP),
    and each descriptor takes a unit of the poll's budget."""
    m = model(**{"kernel.skb.pkt_buf_skb": 1000})
    result = Machine(m, cbr(1000, 10, size=1514)).run()
    assert result["conservation"]["places"]["rx_oversize"] == 10
    assert result["rx_errors"] == 10 and result["received"] == 0
    assert result["netdev"]["rx_length_errors"] == 0 and result["netdev"]["rx_packets"] == 0
    small = Machine(m, cbr(1000, 10, size=990)).run()      # 990 + 4 <= 998: one descriptor
    assert small["received"] == 10 and small["rx_errors"] == 0


class _FrameSource(TrafficSource):
    """Given frames at a constant rate (frames the generators do not make)."""

    name = "frames"

    def __init__(self, build, count: int, rate: float) -> None:
        self.total_frames = count
        self._build, self._gap = build, 1.0 / rate

    def frames(self):
        return ((i * self._gap, self._build(i)) for i in range(self.total_frames))
