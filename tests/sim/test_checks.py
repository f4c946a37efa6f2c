"""lsfsim.checks and the scenario's honest defaults, through the Python API: refused
filters, the lecture's filter, promiscuous capture, replay oddities, rate warnings."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from lsfsim.checks import FilterRefused, attach_verdict, link_capacity
from lsfsim.machine import Machine, run
from lsfsim.pcapio import PcapWriter
from lsfsim.scenario import LECTURE_FILTER, MAX_SOCKETS, Scenario, SocketSpec, TrafficSpec
from lsfsim.traffic.frames import HOST, OTHER, REMOTE, make_builder
from lsfsim.traffic.replay import MAX_WIRE_FRAME, PcapReplay
from tests.sim.helpers import NoTraffic, model

TRACES = Path(__file__).resolve().parents[2] / ".." / "shared" / "traces"

# sk_chk_filter refuses these (2.6.33): a jump past the end, a missing final RET
BAD_JUMP = "(000) ldh [12]\n(001) jeq #0x800 jt 2 jf 3\n(002) ret #65535\n"
NO_RET = "(000) ldh [12]\n(001) ldb [23]\n"


def _prog(tmp_path: Path, text: str, name: str = "prog.txt") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def _long_program(tmp_path: Path, n: int) -> str:
    """n instructions: n - 1 loads then ret (valid, but 8 n + 24 bytes to charge)."""
    lines = [f"({i:03d}) ldh [12]" for i in range(n - 1)] + [f"({n - 1:03d}) ret #65535"]
    return _prog(tmp_path, "\n".join(lines) + "\n", f"long{n}.txt")


def _cbr(count: int = 20, size: int = 60, **kw) -> TrafficSpec:
    return TrafficSpec(kind="cbr", rate=10_000, packets=count, size=size, **kw)


# --- 3: a filter the kernel refuses ---------------------------------------------------

@pytest.mark.parametrize("text, pc, rule", [(BAD_JUMP, 1, "jump"), (NO_RET, 1, "RET")])
def test_a_refused_filter_stops_the_run(tmp_path, text, pc, rule):
    scenario = Scenario(traffic=_cbr(), sockets=[SocketSpec(filter_file=_prog(tmp_path, text))])
    with pytest.raises(FilterRefused) as info:
        run(scenario)
    assert info.value.errno == "EINVAL" and info.value.pc == pc and info.value.socket == 0
    assert "EINVAL" in str(info.value) and rule in str(info.value)


def test_optmem_max_refusal_is_enomem(tmp_path):
    m = model()
    # 8 n + sizeof(struct sk_filter) >= optmem_max is refused; one instruction fewer attaches
    sizes = m.kernel.sizes
    n = (sizes.optmem_max - sizes.sizeof_sk_filter + 7) // 8
    big, fits = _long_program(tmp_path, n), _long_program(tmp_path, n - 1)
    with pytest.raises(FilterRefused, match="ENOMEM.*optmem_max") as info:
        Machine(m, Scenario(traffic=_cbr(), sockets=[SocketSpec(filter_file=big)]))
    assert info.value.errno == "ENOMEM"
    Machine(m, Scenario(traffic=_cbr(), sockets=[SocketSpec(filter_file=fits)]))


def test_allowed_refusal_runs_unfiltered_and_says_so(tmp_path):
    scenario = Scenario(traffic=_cbr(count=30),
                        sockets=[SocketSpec(filter_file=_prog(tmp_path, BAD_JUMP))],
                        allow_refused_filter=True)
    result = run(scenario)
    sock = result.sockets[0]
    assert sock["attach_errno"] == "EINVAL"                  # what the simulated kernel said
    assert sock["filter_refused"].startswith("EINVAL at instruction 1: jump")
    assert sock["filtered"] == 0 and sock["delivered"] == 30  # unfiltered, as the kernel
    assert any("refused the filter" in w for w in result["warnings"])


@pytest.mark.parametrize("name", ["testbed", "testbed-x86_64", "modern"])
def test_the_check_before_the_run_agrees_with_the_simulated_kernel(tmp_path, name):
    """attach_verdict and sk_attach_filter (run at the socket's setup) reach the same errno."""
    m = model(name)
    n_enomem = (m.kernel.sizes.optmem_max - m.kernel.sizes.sizeof_sk_filter + 7) // 8
    files = [_prog(tmp_path, BAD_JUMP, "a"), _prog(tmp_path, NO_RET, "b"),
             _long_program(tmp_path, n_enomem), _long_program(tmp_path, 40)]
    for path in files:
        scenario = Scenario(traffic=_cbr(count=1), allow_refused_filter=True,
                            sockets=[SocketSpec(filter_file=path, readers=0)])
        machine = Machine(m, scenario, source=NoTraffic())
        machine.env.run(until=1e-3)
        verdict = attach_verdict(machine.apps[0].program, m)
        assert machine.apps[0].attach_errno == (verdict.errno if verdict else None), path


# --- 4: the lecture's filter belongs to the lecture's scenario ------------------------

def test_the_lecture_filter_comes_with_the_default_scenario_only():
    assert Scenario().sockets[0].filter == LECTURE_FILTER
    assert Scenario().traffic.kind == "nc"
    assert SocketSpec().filter is None
    assert Scenario(sockets=[SocketSpec()]).sockets[0].filter is None


# --- 5: promiscuous by default --------------------------------------------------------

def _capture(path: Path, frames: list[bytes], step: float = 1e-4) -> str:
    with PcapWriter(path) as writer:
        for i, frame in enumerate(frames):
            writer.write(frame, ts=i * step)
    return str(path)


def test_replay_of_other_stations_frames_is_captured_unless_not_promiscuous(tmp_path):
    build = make_builder("udp", REMOTE, OTHER)             # to another station's MAC
    pcap = _capture(tmp_path / "other.pcap", [build(200, i) for i in range(40)])
    traffic = TrafficSpec(kind="pcap", pcap=pcap)
    assert SocketSpec().promisc is True
    result = run(Scenario(traffic=traffic, sockets=[SocketSpec()]))
    assert result["mac_filtered"] == 0 and result.sockets[0]["delivered"] == 40
    assert result["warnings"] == []
    result = run(Scenario(traffic=traffic, sockets=[SocketSpec(promisc=False)]))
    assert result["mac_filtered"] == 40 and result.sockets[0]["delivered"] == 0
    (warning,) = result["warnings"]
    assert "40 of 40 frames" in warning and "not promiscuous" in warning


def test_promiscuous_mode_does_not_change_the_lecture_scenarios_packets():
    """The lecture's frames are addressed to the host: IFF_PROMISC changes no packet count."""
    def counts(promisc: bool) -> dict:
        sock = SocketSpec(filter=LECTURE_FILTER, promisc=promisc)
        data = run(Scenario(traffic=TrafficSpec(bytes=60_000), sockets=[sock])).data
        return {k: data[k] for k in ("offered", "received", "mac_filtered", "rx_missed_errors")} \
            | {k: data["sockets"][0][k] for k in ("seen", "filtered", "delivered", "tp_drops")}

    assert counts(True) == counts(False)


# --- 6, 7: replayed captures ----------------------------------------------------------

def test_records_longer_than_a_wire_frame_are_not_replayed(tmp_path):
    build = make_builder("tcp", REMOTE, HOST)
    path = tmp_path / "gro.pcap"
    with PcapWriter(path, snaplen=96) as writer:
        for i in range(10):
            writer.write(build(1514, i), ts=i * 1e-3)                  # on the wire
            writer.write(build(1514, i) + bytes(1448), ts=i * 1e-3 + 1e-4,
                         wirelen=2962)                                 # merged by GRO
        writer.write(build(MAX_WIRE_FRAME, 99), ts=0.02)               # the longest kept
    result = run(Scenario(traffic=TrafficSpec(kind="pcap", pcap=str(path)),
                          sockets=[SocketSpec()]))
    assert result["offered"] == 11
    assert result["rx_missed_errors"] == 0 and result["netdev"]["rx_length_errors"] == 0
    assert result["replay"] == {"records": 21, "skipped_oversize": 10,
                                "caplen_over_wirelen": 0, "ts_backwards": 0}
    (warning,) = result["warnings"]
    assert "10 of 21 records are longer than an Ethernet frame" in warning


def test_odd_captures_are_warned_about(tmp_path):
    build = make_builder("udp", REMOTE, HOST)
    path = tmp_path / "odd.pcap"
    with PcapWriter(path) as writer:
        writer.write(build(100, 0), ts=1.0)
        writer.write(build(100, 1), ts=0.5)                       # backwards
        writer.write(build(100, 2), ts=0.7, wirelen=80)           # caplen 100 > wirelen 80
        writer.write(build(100, 3), ts=0.6)                       # backwards again
    source = PcapReplay(path)
    frames = list(source.frames())
    assert [t for t, _ in frames] == [0.0, 0.0, 0.0, 0.0]        # clamped, never backwards
    assert source.replay_counts() == {"records": 4, "skipped_oversize": 0,
                                      "caplen_over_wirelen": 1, "ts_backwards": 2}
    warnings = source.replay_warnings()
    assert len(warnings) == 2
    assert "1 record with caplen > wirelen" in warnings[0]
    assert "2 records with a timestamp before" in warnings[1]
    empty = tmp_path / "empty.pcap"
    with PcapWriter(empty):
        pass
    result = run(Scenario(traffic=TrafficSpec(kind="pcap", pcap=str(empty)),
                          sockets=[SocketSpec()]))
    assert result["offered"] == 0
    assert result["warnings"] == ["empty.pcap: the capture holds no records: nothing was "
                                  "replayed"]


def test_a_real_gro_capture(tmp_path):
    path = TRACES / "tcpdump-tests" / "bigtcp-ipv4.pcap"
    if not path.is_file():
        pytest.skip(f"no {path}")
    result = run(Scenario(traffic=TrafficSpec(kind="pcap", pcap=str(path)),
                          sockets=[SocketSpec()]))
    assert result["replay"]["skipped_oversize"] == result["replay"]["records"] == 1
    assert result["offered"] == 0 and result["rx_missed_errors"] == 0


def test_link_capacity_is_the_wires_back_to_back_rate():
    from lsfsim.drivers.wire import Wire

    m = model()
    nic = m.hardware.nic
    wire = Wire(NoTraffic(), nic.link_rate, preamble=nic.preamble, fcs=nic.fcs, ifg=nic.ifg,
                min_frame=nic.min_frame)
    for size in (42, 60, 64, 1514):
        assert link_capacity(m, size) == pytest.approx(
            1 / (wire.frame_time(size) + wire.gap_time), rel=1e-12)
    assert round(link_capacity(m, 1514)) == 8127          # 100 Mbit/s, 1538 byte times
    assert round(link_capacity(m, 64)) == 142_045          # not 148,810: --size has no FCS


def test_a_rate_above_the_link_is_warned_about_and_not_reached():
    result = run(Scenario(traffic=TrafficSpec(kind="cbr", rate=1e12, packets=300, size=1514),
                          sockets=[SocketSpec()]))
    (warning,) = result["warnings"]
    assert "1,000,000,000,000 frames/s" in warning and "at most 8,127 frames/s" in warning
    ok = run(Scenario(traffic=TrafficSpec(kind="cbr", rate=8000, packets=30, size=1514),
                      sockets=[SocketSpec()]))
    assert ok["warnings"] == []


# --- 8, 9: bounds and exclusive fields ------------------------------------------------

def test_sockets_are_bounded():
    Scenario(sockets=[SocketSpec()] * MAX_SOCKETS)
    with pytest.raises(ValidationError, match="at most 1024"):
        Scenario(sockets=[SocketSpec()] * (MAX_SOCKETS + 1))


def test_filter_and_filter_file_exclude_each_other():
    with pytest.raises(ValidationError, match="exclude each other"):
        SocketSpec(filter="udp", filter_file="prog.txt")
    SocketSpec(filter_file="prog.txt")


# --- 10: capture files that are not files ---------------------------------------------

def test_replay_names_what_the_capture_path_is(tmp_path):
    with pytest.raises(IsADirectoryError, match="is a directory"):
        PcapReplay(tmp_path)
    with pytest.raises(OSError, match="not a regular file"):
        PcapReplay("/dev/null")
    with pytest.raises(FileNotFoundError, match="no such capture file"):
        PcapReplay(tmp_path / "nope.pcap")


@pytest.mark.parametrize(("name", "largest"), [("testbed", 1277), ("testbed-x86_64", 2556)])
def test_the_largest_filter_on_each_arch_from_the_command_line(tmp_path, name, largest):
    """sock_kmalloc(8 n + sizeof(struct sk_filter)) < optmem_max: on i386 8 n + 16 < 10240
    (1277 attach, 1278 is ENOMEM although sk_chk_filter allows 4096), on x86_64
    8 n + 24 < 20480 (2556)."""
    from typer.testing import CliRunner

    from lsfsim.cli.main import app

    def run_with(n: int):
        path = _long_program(tmp_path, n)
        return CliRunner().invoke(app, ["run", "-q", "--model", name, "--traffic", "cbr",
                                        "--count", "5", "--filter-file", path])

    ok = run_with(largest)
    assert ok.exit_code == 0, ok.stderr
    refused = run_with(largest + 1)
    assert refused.exit_code == 2
    line = refused.stderr.strip()
    assert "\n" not in line and "ENOMEM" in line
    size = 8 * (largest + 1) + {"testbed": 16, "testbed-x86_64": 24}[name]
    assert f"takes {size} bytes" in line
