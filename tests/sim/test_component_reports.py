"""Components report their own counters, and the result carries exactly those."""

from __future__ import annotations

from lsfsim.machine import InvariantError, Machine
from lsfsim.report.procfs import proc_net_packet

from .helpers import cbr, model


def _run(**socket):
    machine = Machine(model(**{"hardware.nic.link_rate": 1e9}),
                      cbr(1_400_000, 1500, **socket))
    return machine, machine.run()


def test_the_result_holds_what_each_component_reports():
    machine, result = _run(rcvbuf=3000, reader_work=10e-6)
    assert result["rx_missed_errors"] > 0 and result.sockets[0]["rcvbuf_drops"] > 0
    assert result["netdev"] == machine.dev.netdev_stats()
    assert result["softnet"] == [cpu.softnet.softnet_stat() for cpu in machine.cpus]
    sock = machine.sockets[0]
    stats = sock.packet_statistics()
    assert {k: result.sockets[0][k] for k in stats} == stats
    assert result.sockets[0]["rmem_alloc"] == sock.proc_net_packet_row()["rmem"]
    assert result["conservation"]["places"]["in_rx_ring"] == machine.dev.rx_ring_host_owned()


def test_packet_statistics_is_getsockopt_without_its_reset():
    machine, _result = _run()
    sock = machine.sockets[0]
    view = sock.packet_statistics()
    assert sock.packet_statistics() == view                    # reading does not reset
    assert sock.packet_getsockopt_statistics() == (view["tp_packets"], view["tp_drops"])
    assert sock.packet_statistics() == {"tp_packets": 0, "tp_drops": 0}


def test_the_proc_net_packet_row_is_the_one_procfs_prints():
    machine, result = _run()
    row = machine.sockets[0].proc_net_packet_row()
    line = proc_net_packet(result).splitlines()[1].split()
    assert [int(line[1]), int(line[2]), int(line[3], 16), int(line[4]), int(line[5]),
            int(line[6]), int(line[7])] == [row[k] for k in ("refcnt", "type", "proto",
                                                             "iface", "running", "rmem",
                                                             "user")]


def test_the_ring_check_names_a_broken_ownership():
    machine, result = _run()
    dev = machine.dev
    assert dev.check_ring() is None
    dev.rx_own[dev.cur_rx & dev.rx_mask] = False      # a descriptor the pointers disown
    assert "ring ownership" in dev.check_ring()
    try:
        machine.check_invariants(result)
    except InvariantError as exc:
        assert "ring ownership" in str(exc)
    else:
        raise AssertionError("the broken ring went unnoticed")
