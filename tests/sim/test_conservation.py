"""Conservation laws under random scenarios: every offered frame ends in one named place."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lsfsim.machine import Machine
from lsfsim.scenario import Scenario, SenderSpec, SocketSpec, TrafficSpec
from tests.sim.helpers import model

FILTERS = [None, "udp", "tcp", "host 208.68.139.89", "ip[2:2] > 300", "not ip"]


@st.composite
def scenarios(draw):
    kind = draw(st.sampled_from(["cbr", "poisson", "onoff"]))
    traffic = TrafficSpec(kind=kind, rate=draw(st.sampled_from([2e3, 3e4, 9e4, 1.48e5])),
                          packets=draw(st.integers(1, 250)),
                          size=draw(st.sampled_from([60, 61, 200, 201, 600, 1514])),
                          proto=draw(st.sampled_from(["udp", "tcp", "icmp"])),
                          on=2e-4, off=3e-4)
    sockets = [
        SocketSpec(filter=draw(st.sampled_from(FILTERS)),
                   snaplen=draw(st.sampled_from([60, 96, 65535])),
                   rcvbuf=draw(st.sampled_from([None, 300, 2000, 20000])),
                   readers=draw(st.integers(0, 2)),
                   reader_work=draw(st.sampled_from([0.0, 2e-5, 3e-4])),
                   promisc=draw(st.booleans()))
        for _ in range(draw(st.integers(0, 3)))
    ]
    senders = [SenderSpec(rate=5e3, count=draw(st.integers(1, 20)), size=60)
               for _ in range(draw(st.integers(0, 1)))]
    return Scenario(traffic=traffic, sockets=sockets, senders=senders,
                    napi=draw(st.booleans()), seed=draw(st.integers(0, 2**16)),
                    rx_ring=draw(st.sampled_from([None, 4, 8])))


MODELS = {"testbed": model("testbed"), "testbed-vm": model("testbed-vm"),
          "one-cpu": model("testbed", **{"hardware.cpu.count": 1}),
          "modern": model("modern")}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario=scenarios(), model_name=st.sampled_from(sorted(MODELS)))
def test_every_frame_is_accounted_for(scenario, model_name):
    result = Machine(MODELS[model_name], scenario).run()   # run() checks the invariants too
    d = result.data
    places = d["conservation"]["places"]
    assert sum(places.values()) == d["offered"]
    # drained: nothing left in the ring, the backlog or on the wire
    assert places["in_rx_ring"] == places["in_backlog"] == places["on_wire"] == 0
    assert d["received"] == d["netdev"]["rx_packets"] - d["softnet_dropped"]
    for sock in d["sockets"]:
        assert sock["seen"] == (sock["filtered"] + sock["rcvbuf_drops"] + sock["delivered"]
                                + sock["queued"] + sock["in_recvfrom"])
        assert sock["rmem_alloc"] >= 0
        assert sock["in_recvfrom"] == 0
        if sock["readers"]:
            assert sock["queued"] == 0 and sock["rmem_alloc"] == 0
        assert sock["rcvbuf_drops"] == sock["sk_drops"]


def test_undrained_run_counts_what_is_still_queued():
    scenario = Scenario(traffic=TrafficSpec(kind="cbr", rate=1.48e5, packets=5000, size=60),
                        sockets=[SocketSpec(filter=None, reader_work=1e-4)],
                        drain=False, max_sim_seconds=0.01)
    result = Machine(model(), scenario).run()
    d = result.data
    assert sum(d["conservation"]["places"].values()) == d["offered"]
    sock = d["sockets"][0]
    assert sock["queued"] > 0
    assert d["offered"] < 5000
