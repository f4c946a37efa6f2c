"""``lsfsim bpf`` commands, end to end.

Oracles: the lecture's printed program, the tcpdump binary (-d output,
tcpdump's own filtering of a capture), sk_chk_filter's rules of 2.6.33
worked by hand, and the shape of a one-line error.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lsfsim.bpf.formats import parse
from lsfsim.bpf.isa import Insn, encode
from lsfsim.cli import bpf_cmd
from lsfsim.cli.main import app as main_app
from lsfsim.pcapio import PcapReader, PcapWriter, iter_pcap
from tests.captures import REAL_TRACES

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO / ".." / "shared"
LECTURE = SHARED / "seed" / "lsf-lecture.txt"
TRACES = REAL_TRACES
TCPDUMP = shutil.which("tcpdump")
needs_tcpdump = pytest.mark.skipif(TCPDUMP is None, reason="tcpdump is not installed")

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(bpf_cmd.app, list(args))


def assert_one_line_error(result, *fragments: str) -> None:
    assert result.exit_code == 2, (result.stdout, result.stderr)
    err = result.stderr.strip()
    assert err.startswith("lsfsim: error: "), err
    assert "\n" not in err and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in err, err


def lecture_program() -> list[str]:
    """The 14 instructions of the lecture's "host optimus" figure (printed without pcs)."""
    if not LECTURE.exists():
        pytest.skip(f"{LECTURE} absent")
    lines = LECTURE.read_text(encoding="utf-8").splitlines()
    end = next(i for i, line in enumerate(lines) if "Example of a BPF program for" in line)
    body = [line for line in lines[:end] if line.strip()][-14:]
    assert body[0].split() == ["ldh", "[12]"] and body[-1].split() == ["ret", "#0"]
    return body


def first_linktype(path: Path) -> int | None:
    with PcapReader(path) as reader:
        return reader.linktype


def normalise(text_lines: list[str]) -> list[list[str]]:
    return [re.sub(r"^\s*\(\d+\)", "", line).split() for line in text_lines]


@pytest.fixture(scope="module")
def frames() -> list[bytes]:
    """Hand-made Ethernet frames: IPv4/TCP, IPv4/UDP, ARP, a 13-byte runt."""
    eth = bytes.fromhex("001122334455665544332211")
    ip_tcp = eth + b"\x08\x00" + bytes.fromhex(
        "450000280001000040060000c0a80001d0448b59") + bytes.fromhex(
        "30390050000000000000000050022000000000000000")
    ip_udp = eth + b"\x08\x00" + bytes.fromhex(
        "4500001c0001000040110000c0a80001c0a80002") + bytes.fromhex("0035003500080000")
    arp = b"\xff" * 6 + eth[6:] + b"\x08\x06" + bytes(28)
    return [ip_tcp, ip_udp, arp, eth + b"\x08"]


@pytest.fixture()
def capture(tmp_path: Path, frames: list[bytes]) -> Path:
    path = tmp_path / "f.pcap"
    with PcapWriter(path) as writer:
        for i, frame in enumerate(frames):
            writer.write(frame, 1.0 + i, wirelen=len(frame) + (100 if i == 1 else 0))
    return path


@pytest.fixture()
def tcp_prog(tmp_path: Path) -> Path:
    path = tmp_path / "tcp.txt"
    result = invoke("compile", "-s", "96", "tcp")
    assert result.exit_code == 0
    path.write_text(result.stdout)
    return path


# --- compile ----------------------------------------------------------------------------
def test_compile_prints_the_lecture_program() -> None:
    result = invoke("compile", "-s", "65535", "host 208.68.139.89")
    assert result.exit_code == 0, result.stderr
    ours = result.stdout.splitlines()
    assert len(ours) == 14
    assert normalise(ours) == normalise(lecture_program())
    # the lecture's constant is the address: 0xd0.0x44.0x8b.0x59 = 208.68.139.89
    assert "#0xd0448b59" in result.stdout


@needs_tcpdump
@pytest.mark.parametrize("optimize", [True, False])
def test_compile_matches_tcpdump_d(tmp_path: Path, optimize: bool) -> None:
    pcap = tmp_path / "e.pcap"
    with PcapWriter(pcap, snaplen=262144) as writer:
        writer.write(bytes(60))
    for expr in ("tcp port 80", "ip protochain 6", "vlan and udp"):
        flags = [] if optimize else ["-O"]
        want = subprocess.run([TCPDUMP, "-d", *flags, "-r", str(pcap), expr],
                              capture_output=True, text=True, check=True).stdout
        result = invoke("compile", *flags, *expr.split())  # words joined as tcpdump does
        assert result.exit_code == 0, result.stderr
        assert result.stdout == want


def test_compile_formats_and_output(tmp_path: Path) -> None:
    d = invoke("compile", "tcp").stdout
    for fmt in ("tcpdump-dd", "tcpdump-ddd", "bpf_asm"):
        result = invoke("compile", "--format", fmt, "tcp")
        assert result.exit_code == 0
        assert parse(result.stdout, fmt) == parse(d)
    out = tmp_path / "tcp.bin"
    assert invoke("compile", "-f", "binary", "-o", str(out), "tcp").exit_code == 0
    assert out.read_bytes() == encode(parse(d))
    assert_one_line_error(invoke("compile", "-f", "binary", "tcp"), "-o FILE")
    assert_one_line_error(invoke("compile", "-f", "asm", "tcp"), "unknown format 'asm'")
    assert_one_line_error(invoke("compile", "tcp port 99999"), "illegal port number")
    assert_one_line_error(invoke("compile", "-y", "FOO", "tcp"), "unknown link type 'FOO'")


# --- convert --------------------------------------------------------------------------------
def test_convert_between_formats(tmp_path: Path, tcp_prog: Path) -> None:
    want = parse(tcp_prog.read_text())
    text_out = {}
    for fmt in ("tcpdump-d", "tcpdump-dd", "tcpdump-ddd", "bpf_asm"):
        result = invoke("convert", str(tcp_prog), "--to", fmt)
        assert result.exit_code == 0, result.stderr
        text_out[fmt] = result.stdout
        assert parse(result.stdout, fmt) == want
    assert text_out["tcpdump-d"] == tcp_prog.read_text()
    binary = tmp_path / "p.bin"
    assert invoke("convert", str(tcp_prog), "--to", "binary", "-o", str(binary)).exit_code == 0
    assert binary.read_bytes() == encode(want)
    back = invoke("convert", str(binary), "--to", "tcpdump-d")
    assert back.stdout == tcp_prog.read_text()
    asm = tmp_path / "p.asm"
    asm.write_text(text_out["bpf_asm"])
    assert invoke("convert", str(asm), "--to", "tcpdump-d").stdout == tcp_prog.read_text()
    assert_one_line_error(invoke("convert", str(tcp_prog), "--to", "binary"), "-o FILE")
    assert_one_line_error(invoke("convert", str(tcp_prog), "--to", "yaml"), "unknown format")


def test_convert_bad_program_names_file_line_column(tmp_path: Path) -> None:
    bad = tmp_path / "bad.asm"
    bad.write_text("ldh [12]\njeq #0x800, yes, no\nyes: ret #1\nno: ret\n")
    assert_one_line_error(invoke("convert", str(bad), "--to", "tcpdump-d"),
                          f"{bad}: line 5, column 1: expected '#k', 'a' or 'x'")
    assert_one_line_error(invoke("convert", str(tmp_path / "nope.txt"), "--to", "bpf_asm"),
                          "nope.txt: no such file")
    odd = tmp_path / "odd.bin"
    odd.write_bytes(b"\0" * 12)
    assert_one_line_error(invoke("convert", str(odd), "--to", "tcpdump-d"),
                          "12 bytes is not a whole number")


# --- check ---------------------------------------------------------------------------------
def write_program(tmp_path: Path, insns: list[Insn], name: str = "p.bin") -> Path:
    path = tmp_path / name
    path.write_bytes(encode(insns))
    return path


def test_check_ok_and_refusals(tmp_path: Path, tcp_prog: Path) -> None:
    result = invoke("check", str(tcp_prog))
    assert (result.exit_code, result.stdout) == (0, "ok\n")
    # 2.6.33 sk_chk_filter: "div #0" is refused where it stands ...
    div0 = write_program(tmp_path, [Insn(0x28, 0, 0, 12), Insn(0x34, 0, 0, 0),
                                    Insn(0x16, 0, 0, 0)])
    result = invoke("check", str(div0))
    assert result.exit_code == 1
    assert result.stdout.startswith("EINVAL at instruction 1: ")
    # ... and so is a jump past the end
    jump = write_program(tmp_path, [Insn(0x15, 0, 3, 1), Insn(0x06, 0, 0, 0)], "j.bin")
    result = invoke("check", str(jump))
    assert result.exit_code == 1
    assert result.stdout.startswith("EINVAL at instruction 0: ")


def test_check_kernel_versions(tmp_path: Path) -> None:
    """BPF_MOD arrived in Linux 3.7: refused by 2.6.33, accepted by 3.7."""
    prog = write_program(tmp_path, [Insn(0x80, 0, 0, 0), Insn(0x94, 0, 0, 3),
                                    Insn(0x16, 0, 0, 0)])
    assert invoke("check", str(prog)).stdout.startswith("EINVAL at instruction 1")
    result = invoke("check", str(prog), "--kernel", "3.7")
    assert (result.exit_code, result.stdout) == (0, "ok\n")
    assert_one_line_error(invoke("check", str(prog), "--kernel", "banana"), "banana")


# --- run -----------------------------------------------------------------------------------
def test_run_table_and_summary(capture: Path, tcp_prog: Path, frames: list[bytes]) -> None:
    result = invoke("run", str(tcp_prog), str(capture))
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["packet", "wirelen", "ret", "caplen"]
    rows = [list(map(int, line.split())) for line in lines[1:-1]]
    # only frame 1 is TCP; the filter returns snaplen 96, caplen = min(96, 68 captured)
    # packets numbered from 0, as lifecycle and trace number frames
    assert rows == [[0, len(frames[0]), 96, len(frames[0])], [1, len(frames[1]) + 100, 0, 0],
                    [2, len(frames[2]), 0, 0], [3, len(frames[3]), 0, 0]]
    assert lines[-1] == "packets 4, accepted 1, dropped 3"


def test_run_json(capture: Path, tmp_path: Path) -> None:
    prog = write_program(tmp_path, [Insn(0x80, 0, 0, 0), Insn(0x16, 0, 0, 0)])  # ret len
    result = invoke("run", str(prog), str(capture), "--json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    wirelens = [r.wirelen for r in iter_pcap(capture)]
    caplens = [len(r.data) for r in iter_pcap(capture)]
    assert [p["ret"] for p in doc["packets"]] == wirelens  # ld #len sees the wire length
    assert [p["caplen"] for p in doc["packets"]] == [min(w, c) for w, c in
                                                      zip(wirelens, caplens, strict=True)]
    assert [p["index"] for p in doc["packets"]] == [0, 1, 2, 3]
    assert doc["summary"] == {"packets": 4, "accepted": 4, "dropped": 0}
    assert doc["kernel"] == "2.6.33"


@needs_tcpdump
@pytest.mark.parametrize("expr", ["tcp", "udp port 53", "arp", "ip6", "ether multicast"])
def test_run_accepts_what_tcpdump_keeps(tmp_path: Path, expr: str) -> None:
    traces = [p for p in sorted((TRACES / "tcpdump-tests").glob("*.pcap"))[:40]
              if first_linktype(p) == 1]
    assert len(traces) >= 15, f"few Ethernet captures in {TRACES}"
    prog = tmp_path / "p.txt"
    prog.write_text(invoke("compile", expr).stdout)
    for path in traces[:15]:
        result = invoke("run", str(prog), str(path), "--json")
        assert result.exit_code == 0, (path, result.stderr)
        doc = json.loads(result.stdout)
        kept = tmp_path / "kept.pcap"
        subprocess.run([TCPDUMP, "-r", str(path), "-w", str(kept), expr], check=True,
                       capture_output=True)
        assert doc["summary"]["accepted"] == sum(1 for _ in iter_pcap(kept)), path.name


def test_run_errors(tmp_path: Path, tcp_prog: Path, capture: Path) -> None:
    junk = tmp_path / "junk.pcap"
    junk.write_bytes(b"this is no capture file")
    assert_one_line_error(invoke("run", str(tcp_prog), str(junk)),
                          f"{junk}: not a pcap or pcapng file (magic 0x74686973)")
    assert_one_line_error(invoke("run", str(tcp_prog), str(tmp_path / "none.pcap")),
                          "none.pcap: no such file")
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(capture.read_bytes()[:-5])
    result = invoke("run", str(tcp_prog), str(cut))
    assert_one_line_error(result, "truncated record 4 at offset")
    assert "packets 3, accepted 1, dropped 2" in result.stdout  # what was read is reported
    refused = write_program(tmp_path, [Insn(0x34, 0, 0, 0), Insn(0x16, 0, 0, 0)])
    assert_one_line_error(invoke("run", str(refused), str(capture)),
                          "refuses the program", "EINVAL at instruction 0")


# --- debug ----------------------------------------------------------------------------------
def test_debug_one_packet(capture: Path, tcp_prog: Path) -> None:
    # the first record (the TCP frame) is packet 0
    result = invoke("debug", str(tcp_prog), str(capture), "--packet", "0")
    assert result.exit_code == 0, result.stderr
    assert "ldh" in result.stdout and "96" in result.stdout
    other = invoke("debug", str(tcp_prog), str(capture), "--packet", "2")
    assert other.exit_code == 0 and other.stdout != result.stdout
    assert_one_line_error(invoke("debug", str(tcp_prog), str(capture), "--packet", "4"),
                          "--packet 4 out of range (the file has 4 packets")
    assert_one_line_error(invoke("debug", str(tcp_prog), str(capture), "--packet", "-1"),
                          "numbered from 0")


# --- through the real entry point --------------------------------------------------------------
def test_main_app_routes_bpf(tcp_prog: Path) -> None:
    result = runner.invoke(main_app, ["bpf", "check", str(tcp_prog)])
    assert (result.exit_code, result.stdout) == (0, "ok\n")


def test_python_dash_m(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    ok = subprocess.run([sys.executable, "-m", "lsfsim", "bpf", "compile", "-s", "65535",
                         "host 208.68.139.89"], capture_output=True, text=True, cwd=tmp_path,
                        env=env)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.splitlines()[0] == "(000) ldh      [12]"
    assert len(ok.stdout.splitlines()) == 14
    bad = subprocess.run([sys.executable, "-m", "lsfsim", "bpf", "check", "missing.txt"],
                         capture_output=True, text=True, cwd=tmp_path, env=env)
    assert bad.returncode == 2
    assert bad.stderr == "lsfsim: error: missing.txt: no such file\n"
