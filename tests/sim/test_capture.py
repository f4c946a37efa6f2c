"""``lsfsim run -w``: the capture file of what recvfrom returned.

Oracles: libpcap's own ``bpf_filter`` (lsfsim.bpf.pcapc) decides which frames
of a real capture a socket gets and how many bytes of each; ``tcpdump -r``
reads the files we write; the replayed capture's own timestamps bound ours.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lsfsim.bpf import pcapc
from lsfsim.capture import BATCH, CaptureWriter, capture_paths
from lsfsim.cli.main import app
from lsfsim.config.model import load_model
from lsfsim.kernel.skbuff import PACKET_OUTGOING
from lsfsim.machine import Machine
from lsfsim.pcapio import LINKTYPE_ETHERNET, PcapReader, iter_pcap
from lsfsim.scenario import Scenario, SenderSpec, SocketSpec, TrafficSpec
from lsfsim.traffic.replay import MAX_WIRE_FRAME
from tests.captures import REAL_TRACES, real_captures

REPO = Path(__file__).resolve().parents[2]
TCPDUMP = shutil.which("tcpdump")
needs_tcpdump = pytest.mark.skipif(TCPDUMP is None, reason="tcpdump is not installed")
runner = CliRunner()


def tcpdump_count(path: Path) -> int:
    """Records tcpdump reads from ``path``; it must read them without complaint."""
    proc = subprocess.run([TCPDUMP, "--count", "-r", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.startswith("reading from file") and "error" not in proc.stderr.lower()
    m = re.fullmatch(r"(\d+) packets?\n", proc.stdout)
    assert m, proc.stdout
    return int(m.group(1))


def expected_records(path: Path, expr: str, snaplen: int) -> list[tuple[float, bytes, int]]:
    """What a socket with ``expr`` must return for a replay of ``path``, by libpcap's
    bpf_filter: (original timestamp, bytes kept, frame length) of each accepted frame,
    the frame being what the NIC receives (the record padded to its wire length, then
    to the 60-byte minimum; records too long for a wire are not replayed)."""
    program = pcapc.compile_expression(expr, snaplen=snaplen)
    out = []
    for rec in iter_pcap(path):
        if max(rec.wirelen, len(rec.data)) > MAX_WIRE_FRAME:
            continue
        frame = rec.data + bytes(max(0, rec.wirelen - len(rec.data)))
        frame += bytes(max(0, 60 - len(frame)))
        verdict = pcapc.bpf_filter(program, frame)
        if verdict:
            out.append((rec.ts, frame[:min(verdict, len(frame))], len(frame)))
    return out


class OutgoingRecorder:
    """A probe noting, for each packet recvfrom returns, whether the host sent it."""

    def __init__(self) -> None:
        self.flags: list[bool] = []

    def attach(self, machine: object) -> None: ...

    def finish(self) -> None: ...

    def recvfrom_returned(self, sock, skb, copied, t) -> None:
        self.flags.append(skb.pkt_type == PACKET_OUTGOING)


def capture_run(scenario: Scenario, tmp_path: Path, name: str = "out.pcap",
                extra: list | None = None, **run: object) -> tuple[Path, CaptureWriter, dict]:
    path = tmp_path / name
    with CaptureWriter({0: str(path)}) as capture:
        machine = Machine(load_model(scenario.model), scenario,
                          probes=[capture, *(extra or [])])
        result = machine.run(**run)     # type: ignore[arg-type]
    return path, capture, result.data


def replay(path: Path, expr: str, snaplen: int = 96, **socket: object) -> Scenario:
    return Scenario(traffic=TrafficSpec(kind="pcap", pcap=str(path)),
                    sockets=[SocketSpec(filter=expr, snaplen=snaplen, **socket)])


# --- a replay of real captures: exactly what libpcap accepts -------------------------------
@needs_tcpdump
@pytest.mark.parametrize("name,expr", [
    ("tcpdump-tests/ssh.pcap", "tcp"),
    ("tcpdump-tests/mptcp-v0.pcap", "tcp"),
    ("tcpdump-tests/dhcp-rfc4388.pcap", "udp or arp"),
    ("tcpdump-tests/eapon1.pcap", "udp or arp"),
    ("tcpdump-tests/ntp-control.pcap", "ip6 and udp"),
    ("tcpdump-tests/bgp-4byte-asn.pcap", "not tcp"),
])
def test_replay_writes_exactly_what_libpcap_accepts(tmp_path, name, expr):
    source = REAL_TRACES / name
    want = expected_records(source, expr, 96)
    path, capture, data = capture_run(replay(source, expr), tmp_path)
    sock = data["sockets"][0]
    assert sock["tp_drops"] == 0 and sock["truncated"] == 0         # a light load
    assert tcpdump_count(path) == len(want) == sock["delivered"] == capture.counts[0]
    with PcapReader(path) as reader:
        got = list(reader)
        assert (reader.linktype, reader.snaplen) == (LINKTYPE_ETHERNET, 96)
    assert len(want) > 0
    for (ts0, kept, length), rec in zip(want, got, strict=True):
        assert rec.data == kept                   # cut at min(verdict, length), in order
        assert rec.wirelen == length
        # the replay's clock: the original time plus the wire, DMA, IRQ and poll
        assert 0 < rec.ts - ts0 < 1e-3, (rec.ts, ts0)


@pytest.mark.slow
@needs_tcpdump
def test_every_real_capture_replays_to_what_libpcap_accepts(tmp_path):
    """The same on every Ethernet capture of the corpus (counts and bytes)."""
    checked = 0
    for source in real_captures():
        try:
            records = list(iter_pcap(source))
        except ValueError:
            continue                               # damaged on purpose
        if not records or any(r.linktype != LINKTYPE_ETHERNET for r in records):
            continue
        for expr in ("tcp", "udp or arp"):
            want = expected_records(source, expr, 96)
            outgoing = OutgoingRecorder()
            path, _capture, data = capture_run(replay(source, expr), tmp_path,
                                               extra=[outgoing])
            records = list(iter_pcap(path))
            assert data["sockets"][0]["delivered"] == len(records)
            # the frames received, not the host's own (the model's TCP may answer one)
            got = [r for r, out in zip(records, outgoing.flags, strict=True) if not out]
            assert [(r.data, r.wirelen) for r in got] == [(k, n) for _t, k, n in want], \
                source.name
            checked += 1
    assert checked > 40


def test_snaplen_header_and_the_readers_buffer_cut(tmp_path):
    """caplen is what recvfrom copied: a buffer shorter than the packet cuts it
    (MSG_TRUNC), orig_len stays the frame's length."""
    source = REAL_TRACES / "tcpdump-tests/ssh.pcap"
    path, _capture, data = capture_run(replay(source, "tcp", snaplen=65535, buflen=100),
                                       tmp_path)
    with PcapReader(path) as reader:
        got = list(reader)
        assert reader.snaplen == 65535
    want = expected_records(source, "tcp", 65535)
    assert [r.data for r in got] == [k[:100] for _t, k, _n in want]
    assert [r.wirelen for r in got] == [n for _t, _k, n in want]
    assert data["sockets"][0]["truncated"] == sum(1 for _t, k, _n in want if len(k) > 100) > 0


# --- generated traffic: its clock starts at 0 -----------------------------------------------
@pytest.mark.parametrize("napi", [True, False])
def test_generated_traffic_is_stamped_from_zero(tmp_path, napi):
    rate, count = 20_000.0, 300
    scenario = Scenario(traffic=TrafficSpec(kind="cbr", rate=rate, packets=count, size=200),
                        sockets=[SocketSpec()], senders=[SenderSpec(rate=2000, count=20)],
                        napi=napi)
    path, _capture, data = capture_run(scenario, tmp_path)
    got = list(iter_pcap(path))
    assert len(got) == data["sockets"][0]["delivered"] == count + 20
    stamps = [r.ts for r in got]
    assert stamps == sorted(stamps)
    received = [r for r in got if r.data[:6] != b"\xff" * 6 and len(r.data) == 200]
    assert len(received) == count
    for i, rec in enumerate(received):            # frame i starts on the wire at i / rate
        assert 0 < rec.ts - i / rate < 1e-3
    outgoing = [r for r in got if len(r.data) == 60]
    assert len(outgoing) == 20 and all(0 < r.ts < 0.02 for r in outgoing)


# --- what the socket dropped is not written ---------------------------------------------------
def test_an_overloaded_socket_writes_only_what_it_delivered(tmp_path):
    scenario = Scenario(traffic=TrafficSpec(kind="cbr", rate=100_000, packets=3000, size=300),
                        sockets=[SocketSpec(rcvbuf=20_000, reader_work=100e-6)])
    path, capture, data = capture_run(scenario, tmp_path)
    sock = data["sockets"][0]
    assert sock["rcvbuf_drops"] > 1000             # the receive buffer overflowed
    assert tcpdump_count(path) == capture.counts[0] == sock["delivered"]
    assert sock["delivered"] + sock["rcvbuf_drops"] == 3000


# --- Ctrl-C: a valid file of what was written so far ------------------------------------------
def test_an_interrupted_run_leaves_a_valid_file(tmp_path):
    scenario = Scenario(traffic=TrafficSpec(kind="cbr", rate=50_000, packets=20_000, size=100),
                        sockets=[SocketSpec()])
    calls = []

    def ctrl_c(fraction: float) -> None:
        calls.append(fraction)
        if len(calls) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        capture_run(scenario, tmp_path, progress=ctrl_c, report_every=5000)
    path = tmp_path / "out.pcap"
    records = list(iter_pcap(path))
    assert 0 < len(records) < 20_000
    if TCPDUMP:
        assert tcpdump_count(path) == len(records)
    assert [p.name for p in tmp_path.iterdir()] == ["out.pcap"]     # no temporary left


@needs_tcpdump
def test_ctrl_c_on_the_command_line_keeps_the_file(tmp_path):
    """A real SIGINT to ``lsfsim run -w``: exit 130, the file kept and readable."""
    out = tmp_path / "cap.pcap"
    proc = subprocess.Popen(
        [sys.executable, "-m", "lsfsim", "run", "--traffic", "cbr", "--rate", "20000",
         "--count", "2000000", "--size", "60", "-q", "-w", str(out)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:        # until records have reached the disk
            tmp = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
            if tmp and tmp[0].stat().st_size > 24 + 2 * 1024 * 76:
                break
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        _stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    m = re.search(r"cap\.pcap: the ([\d,]+) packets written before the interrupt", stderr)
    assert m, stderr
    assert tcpdump_count(out) == int(m.group(1).replace(",", "")) >= 2048
    assert [p.name for p in tmp_path.iterdir()] == ["cap.pcap"]


# --- the command line: tcpdump reads it, FIFOs, several sockets, bad paths ----------------
@needs_tcpdump
def test_cli_write_is_read_by_tcpdump(tmp_path):
    out = tmp_path / "c.pcap"
    res = runner.invoke(app, ["run", "--traffic", "cbr", "--count", "400", "--filter", "udp",
                              "--snaplen", "64", "-q", "--json", "-", "--write", str(out)])
    assert res.exit_code == 0, res.output
    assert tcpdump_count(out) == 400
    proc = subprocess.run([TCPDUMP, "-r", str(out), "-n", "-tt"], capture_output=True,
                          text=True, check=True)
    first = proc.stdout.splitlines()[0]
    assert first.startswith("0.000") and " UDP" in first and "snapshot length 64" in proc.stderr


@needs_tcpdump
def test_cli_writes_through_a_fifo_to_its_reader(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    # tcpdump -r FIFO reads while lsfsim writes (its open waits for our open, and ours
    # for its)
    reader = subprocess.Popen([TCPDUMP, "--count", "-r", str(fifo)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        res = runner.invoke(app, ["run", "--traffic", "cbr", "--count", "3000", "-q",
                                  "--json", "-", "-w", str(fifo)])
        stdout, stderr = reader.communicate(timeout=60)
    finally:
        if reader.poll() is None:
            reader.kill()
    assert res.exit_code == 0, res.output
    assert reader.returncode == 0, stderr
    assert stdout == "3000 packets\n"
    assert fifo.is_fifo()


def test_socket_field_writes_one_file_per_socket(tmp_path):
    assert capture_paths("a.pcap", 3) == {0: "a.pcap"}
    assert capture_paths("s{socket}.pcap", 2) == {0: "s0.pcap", 1: "s1.pcap"}
    res = runner.invoke(app, ["run", "--traffic", "cbr", "--count", "200", "--sockets", "2",
                              "--filter", "udp", "-q", "-w", str(tmp_path / "s{socket}.pcap")])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s0.pcap", "s1.pcap"]
    first, second = (list(iter_pcap(tmp_path / f"s{i}.pcap")) for i in (0, 1))
    assert len(first) == len(second) == 200
    assert [r.data for r in first] == [r.data for r in second]


@pytest.mark.parametrize("args,message", [
    (["-w", "/nonexistent/dir/x.pcap"], "-w: /nonexistent/dir/x.pcap: no such directory"),
    (["-w", "-", "--json", "-"], "-w - and --json - would both write to stdout"),
    (["-w", "x.pcap", "--sockets", "0"], "the scenario has no capture socket"),
])
def test_bad_write_paths_fail_before_the_run(args, message):
    res = runner.invoke(app, ["run", "--traffic", "cbr", "--count", "10", "-q", *args])
    assert res.exit_code == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lsfsim: error: ") and message in lines[0]


def test_records_are_streamed_to_the_file_as_the_run_goes(tmp_path):
    """Constant memory: at most a batch of packets is held, the rest is in the file."""
    scenario = Scenario(traffic=TrafficSpec(kind="cbr", rate=50_000, packets=8000, size=100),
                        sockets=[SocketSpec()])
    sizes, held = [], []
    with CaptureWriter({0: str(tmp_path / "out.pcap")}) as capture:
        def look(_fraction: float) -> None:
            tmp = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
            sizes.append(tmp[0].stat().st_size)
            held.append(len(capture.files[0].pending))

        Machine(load_model("testbed"), scenario, probes=[capture]).run(progress=look,
                                                                       report_every=1000)
    assert len(sizes) > 5 and sizes == sorted(sizes) and sizes[-1] > sizes[0] > 0
    assert max(held) < BATCH
    assert (tmp_path / "out.pcap").stat().st_size == 24 + 8000 * (16 + 100)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full")
@pytest.mark.parametrize("count", ["30", "3000"])         # failing at the end, or mid-run
def test_a_failing_write_is_one_line_naming_the_file(count):
    res = runner.invoke(app, ["run", "--traffic", "cbr", "--count", count, "-q",
                              "-w", "/dev/full"])
    assert res.exit_code == 2
    assert res.stderr == "lsfsim: error: -w: /dev/full: No space left on device\n"


def test_a_replay_clock_past_2106_is_one_line(tmp_path):
    """pcap seconds are 32 bits: a stamp after 2106-02-07 cannot be written."""
    from lsfsim.pcapio import PcapWriter

    late = tmp_path / "late.pcap"
    with PcapWriter(late) as w:
        w.write(bytes(60), ts=float((1 << 32) - 1) + 0.999999)
    res = runner.invoke(app, ["run", "--pcap", str(late), "-q", "-w", str(tmp_path / "o.pcap")])
    assert res.exit_code == 2
    assert res.stderr == (f"lsfsim: error: -w: {tmp_path / 'o.pcap'}: a timestamp does not "
                          f"fit a pcap record header (32-bit seconds)\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["late.pcap"]
