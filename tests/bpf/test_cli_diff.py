"""``lsfsim bpf diff``: captures, --prove, -w, and its exit statuses.

Oracles: the reference interpreter and libpcap's bpf_filter on every packet the
command reports or writes, ``bpf debug --packet N`` for its record numbers, and
frames built with scapy whose verdicts follow from the expressions.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether

from lsfsim.bpf import Program, pcapc
from lsfsim.pcapio import PcapReader, PcapWriter
from tests.bpf.test_cli_bpf import assert_one_line_error, invoke


@pytest.fixture()
def web_capture(tmp_path: Path) -> Path:
    """Record 1: TCP 80 -> 1234 (only 'tcp port 80' takes it); 2: TCP 1234 -> 80 (both);
    3: UDP to 80 (neither); 4: TCP 443 -> 80 (both); 5: TCP 80 -> 55 (only the first)."""
    frames = [
        Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=80, dport=1234),
        Ether() / IP(src="10.0.0.2", dst="10.0.0.1") / TCP(sport=1234, dport=80),
        Ether() / IP() / UDP(sport=5, dport=80),
        Ether() / IP() / TCP(sport=443, dport=80),
        Ether() / IP() / TCP(sport=80, dport=55),
    ]
    path = tmp_path / "web.pcap"
    with PcapWriter(path) as writer:
        for i, frame in enumerate(frames):
            writer.write(bytes(frame), float(i))
    return path


def _records(path: Path) -> list[bytes]:
    with PcapReader(path) as reader:
        assert reader.linktype == 1
        return [rec.data for rec in reader]


def test_diff_on_a_capture(web_capture: Path, tmp_path: Path) -> None:
    witness = tmp_path / "w.pcap"
    result = invoke("diff", "expr:tcp port 80", "expr:tcp dst port 80", "--pcap",
                    str(web_capture), "-w", str(witness))
    assert result.exit_code == 1, result.stderr
    rows = [line.split() for line in result.stdout.splitlines()[1:-2]]
    assert [(r[0], r[1], r[2], r[3]) for r in rows] == [
        ("web.pcap", "0", "262144", "0"), ("web.pcap", "4", "262144", "0")]
    assert "TCP" in result.stdout and "http" in result.stdout  # scapy's summary
    assert "5 packets in 1 file, 2 with different return values" in result.stdout
    # the record numbers are those of `bpf debug --packet N`
    prog = tmp_path / "old.txt"
    prog.write_text(Program.from_expression("tcp port 80").format())
    for number, want in ((0, "verdict 262144"), (1, "verdict 262144"), (2, "verdict 0")):
        debug = invoke("debug", str(prog), str(web_capture), "--packet", str(number))
        assert want in debug.stdout
    written = _records(witness)
    assert written == [_records(web_capture)[0], _records(web_capture)[4]]


def test_diff_no_difference(web_capture: Path, tmp_path: Path) -> None:
    witness = tmp_path / "w.pcap"
    result = invoke("diff", "expr:tcp port 80", "expr:tcp port 80 or tcp port 80", "--pcap",
                    str(web_capture), "--pcap", str(web_capture), "-w", str(witness))
    assert result.exit_code == 0, result.stderr
    assert "10 packets in 2 files, 0 with different return values" in result.stdout
    assert not witness.exists()


def test_prove_finds_a_verified_witness(tmp_path: Path) -> None:
    witness = tmp_path / "w.pcap"
    result = invoke("diff", "expr:tcp port 80", "expr:tcp dst port 80", "--prove",
                    "-w", str(witness))
    assert result.exit_code == 1, result.stderr
    assert "different: a packet of" in result.stdout
    assert "libpcap's bpf_filter: OLD 262144, NEW 0 (agrees)" in result.stdout
    (pkt,) = _records(witness)
    old, new = Program.from_expression("tcp port 80"), Program.from_expression("tcp dst port 80")
    assert old.run(pkt) == 262144 and new.run(pkt) == 0
    assert pcapc.bpf_filter(old.insns, pkt) == 262144 and pcapc.bpf_filter(new.insns, pkt) == 0
    assert pkt.hex() in result.stdout


def test_prove_equivalent_files(tmp_path: Path) -> None:
    expr = "udp and not port 53"
    opt, unopt = tmp_path / "opt.bpf", tmp_path / "unopt.txt"
    opt.write_bytes(Program.from_expression(expr).format("binary"))
    unopt.write_text(Program.from_expression(expr, optimize=False).format("bpf_asm"))
    result = invoke("diff", str(opt), str(unopt), "--prove", "--max-len", "9000",
                    "-w", str(tmp_path / "w.pcap"))
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("equivalent: the same return value for every packet of "
                                    "0..9000 bytes (Linux 2.6.33 semantics)\n")
    assert not (tmp_path / "w.pcap").exists()


def test_undecided_exits_3(tmp_path: Path) -> None:
    rand = tmp_path / "rand.asm"
    rand.write_text("ld rand\nret a\n")
    result = invoke("diff", str(rand), "expr:tcp", "--prove", "--kernel", "3.16")
    assert result.exit_code == 3
    err = result.stderr.strip()
    assert err.startswith("lsfsim: error: --prove cannot decide:") and "rand" in err
    assert "\n" not in err
    factor = tmp_path / "factor.asm"
    factor.write_text("ld [14]\ntax\nld [18]\nmul x\njeq #3999999979, l1, no\nl1: ld [14]\n"
                      "jgt #1, l2, no\nl2: ld [18]\njgt #1, l3, no\nl3: ret #1\nno: ret #0\n")
    never = tmp_path / "never.asm"
    never.write_text("ret #0\n")
    result = invoke("diff", str(factor), str(never), "--prove", "--timeout", "0.001")
    assert result.exit_code == 3
    assert "z3 found no answer within 0.001 s" in result.stderr


def test_bad_input(tmp_path: Path, web_capture: Path) -> None:
    assert_one_line_error(invoke("diff", "expr:tcp", "expr:udp"),
                          "nothing to compare on: give --pcap FILE or --prove")
    assert_one_line_error(invoke("diff", str(tmp_path / "nope"), "expr:udp", "--prove"),
                          "nope: no such file")
    assert_one_line_error(invoke("diff", "expr:tcp port", "expr:udp", "--prove"),
                          "filter expression 'tcp port'")
    assert_one_line_error(invoke("diff", "expr:tcp", "expr:udp", "--prove", "--max-len",
                                 "70000"), "--max-len: 70000 out of range")
    assert_one_line_error(invoke("diff", "expr:tcp", "expr:udp", "--pcap",
                                 str(tmp_path / "none.pcap")), "none.pcap: no such file")
    mod = tmp_path / "mod.asm"
    mod.write_text("ld #1\nmod #3\nret a\n")
    assert_one_line_error(invoke("diff", "expr:tcp", str(mod), "--prove"),
                          "NEW", "mod.asm", "Linux 2.6.33 refuses the program", "EINVAL")
    assert_one_line_error(invoke("diff", "expr:tcp", "expr:udp", "--prove", "--kernel", "2.4"),
                          "older than 2.6.33")
    broken = tmp_path / "broken.pcap"
    broken.write_bytes(web_capture.read_bytes()[:-7])
    result = invoke("diff", "expr:tcp", "expr:udp", "--pcap", str(broken))
    assert result.exit_code == 2 and "broken.pcap" in result.stderr
