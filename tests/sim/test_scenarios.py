"""Whole-machine scenarios whose numbers follow from the model by hand calculation."""

from __future__ import annotations

import math

import pytest

from lsfsim.machine import Machine
from tests.sim.helpers import cbr, model


def _run(m, scenario):
    return Machine(m, scenario).run()


def test_reader_slower_than_the_source_drops_what_the_buffer_cannot_hold():
    """10 kpps of 60-byte frames, a reader needing S = 250 us + syscall costs per packet.

    A 60-byte frame is copied (rx_copybreak) into an skb of truesize SKB_DATA_ALIGN(60 + 2 +
    32) + sizeof(sk_buff) = 312 on i386; SO_RCVBUF 1800 gives sk_rcvbuf 3600, so 11 skbs fit
    (rmem + 312 < 3600).  The reader frees one slot per S, and arrivals (every 100 us) fill
    it at once: accepted = 11 + (arrival span) / S.
    """
    m = model()
    sizes = m.kernel.sizes
    truesize = sizes.data_align(60 + sizes.net_ip_align + sizes.net_skb_pad) + sizes.sizeof_sk_buff
    assert truesize == 312
    fit = -(-3600 // truesize) - 1
    n, rate, work = 2000, 10_000.0, 250e-6
    result = _run(m, cbr(rate, n, size=60, rcvbuf=1800, reader_work=work))
    c = m.kernel.costs
    service = (work + c["sys_recvfrom"].fixed + c["packet_recvmsg"].fixed
               + c["skb_copy_datagram_iovec"](nbytes=60) + c["skb_free_datagram"].fixed)
    expected = fit + (n - 1) / rate / service
    sock = result.sockets[0]
    assert sock["rcvbuf"] == 3600
    assert sock["max_rmem_alloc"] == fit * truesize == 11 * 312
    assert abs(sock["delivered"] - expected) <= 2, (sock["delivered"], expected)
    assert sock["rcvbuf_drops"] == n - sock["delivered"]
    assert sock["tp_drops"] == sock["rcvbuf_drops"]          # never read: cumulative
    assert result["rx_missed_errors"] == 0


def test_ring_overflows_while_the_interrupt_is_held_off():
    """A 2 ms hard-IRQ entry holds the poll off; 100 frames arrive 10 us apart meanwhile.

    The chip fills the 32 descriptors and misses the other 68 (CSR112); the poll then
    delivers the 32.
    """
    m = model(**{"kernel.costs.hardirq": "2ms"})
    result = _run(m, cbr(100_000, 100, size=60))
    assert result["rx_missed_errors"] == 68
    assert result["received"] == 32
    assert result["netdev"]["rx_packets"] == 32
    assert result["rx_errors"] >= 1                      # MISS seen by an ISR pass


def test_ring_size_sets_how_many_frames_survive_the_hold_off():
    m = model(**{"kernel.costs.hardirq": "2ms", "hardware.nic.rx_ring": 64})
    result = _run(m, cbr(100_000, 100, size=60))
    assert result["rx_missed_errors"] == 100 - 64


def test_snaplen_does_not_save_buffer_space_but_shortens_the_copy():
    """Full-size frames: the rcvbuf check counts truesize (1832), not the snapped length."""
    m = model()
    runs = {}
    for snaplen in (65535, 100):
        scenario = cbr(8000, 1500, size=1514, rcvbuf=20000, reader_work=400e-6)
        scenario.sockets[0].snaplen = snaplen
        runs[snaplen] = _run(m, scenario)
    full, short = runs[65535].sockets[0], runs[100].sockets[0]
    assert full["rcvbuf_drops"] > 0
    assert short["rcvbuf_drops"] == full["rcvbuf_drops"]
    assert short["delivered"] == full["delivered"]
    per_byte = m.kernel.costs["skb_copy_datagram_iovec"].per_byte
    copy_full = runs[65535]["functions"]["skb_copy_datagram_iovec"]["seconds"]
    copy_short = runs[100]["functions"]["skb_copy_datagram_iovec"]["seconds"]
    expected_saving = full["delivered"] * (1514 - 100) * per_byte
    assert math.isclose(copy_full - copy_short, expected_saving, rel_tol=1e-9)
    assert short["delivered_bytes"] == short["delivered"] * 100


def test_napi_interrupts_per_packet_fall_as_the_rate_rises():
    """The NAPI HOWTO's inherent mitigation: one IRQ per packet at low rate, fewer above."""
    m = model()
    per_packet = []
    for rate in (5_000, 60_000, 120_000, 148_000):
        result = _run(m, cbr(rate, 3000, size=60))
        per_packet.append(result["interrupts"] / 3000)
    assert per_packet[0] == pytest.approx(1.0, abs=1e-3)
    assert all(a >= b for a, b in zip(per_packet, per_packet[1:], strict=False))
    assert per_packet[-1] < 0.6


def test_pre_napi_receive_livelock_rises_peaks_and_collapses():
    """One CPU, interrupt per packet (netif_rx): user delivery collapses past the peak."""
    m = model(**{"hardware.cpu.count": 1})
    delivered = {}
    for rate in (20_000, 60_000, 148_000):
        scenario = cbr(rate, int(rate * 0.04), size=60, reader_work=5e-6)
        scenario.napi = False
        scenario.sockets[0].rcvbuf = 20000
        result = _run(m, scenario)
        delivered[rate] = result.sockets[0]["delivered"] / 0.04
    assert delivered[60_000] > delivered[20_000]
    assert delivered[148_000] < 0.5 * delivered[60_000]


def test_netdev_budget_squeezes_a_long_poll():
    """With a budget of 16 (one poll) and a filled ring, net_rx_action stops and counts it."""
    m = model(**{"kernel.netdev_budget": 16, "kernel.costs.hardirq": "1ms"})
    result = _run(m, cbr(148_000, 200, size=60))
    assert result["time_squeeze"] >= 1
    assert result["received"] + result["rx_missed_errors"] == 200


def test_mac_filter_and_promiscuous_mode():
    from lsfsim.scenario import Scenario, SocketSpec, TrafficSpec

    m = model()
    traffic = TrafficSpec(kind="cbr", rate=10_000, packets=100, size=60)
    # frames to another host's MAC: the chip drops them unless promiscuous
    for promisc, expected in ((False, 0), (True, 100)):
        scenario = Scenario(traffic=traffic, sockets=[SocketSpec(filter=None, promisc=promisc)])
        machine = Machine(m, scenario)
        machine.dev.mac = bytes.fromhex("02aabbccddee")
        result = machine.run()
        assert result["received"] == expected
        assert result["mac_filtered"] == 100 - expected


def test_replayed_runt_and_empty_records_are_padded_on_the_wire(tmp_path):
    """A capture may hold records shorter than an Ethernet header (even empty ones)."""
    from lsfsim.pcapio import PcapWriter
    from lsfsim.scenario import Scenario, SocketSpec, TrafficSpec

    path = tmp_path / "runts.pcap"
    with PcapWriter(path) as writer:
        for i, size in enumerate((0, 5, 13, 42, 60)):
            writer.write(b"\xff" * size, ts=i * 1e-4)
    scenario = Scenario(traffic=TrafficSpec(kind="pcap", pcap=str(path)),
                        sockets=[SocketSpec(filter=None, promisc=False)])
    result = Machine(model(), scenario).run()
    assert result["offered"] == 5
    # the empty record becomes 60 zero bytes: destination 00:00:00:00:00:00 is not ours
    assert result["mac_filtered"] == 1
    assert result["received"] == 4          # broadcast frames padded to 60 bytes
    assert result["netdev"]["rx_bytes"] == 4 * 60
