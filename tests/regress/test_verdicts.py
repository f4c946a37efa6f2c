"""Offline verdicts: libpcap and tcpdump as oracles, the machine's own verdicts as a check."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from lsfsim.bpf import Program
from lsfsim.pcapio import PcapWriter, iter_pcap
from lsfsim.regress.fates import FILTERED, QUEUED, RCVBUF
from lsfsim.regress.runner import prepare, run_item
from lsfsim.regress.suite import load_suite
from lsfsim.regress.verdicts import describe_mismatch
from tests.regress.helpers import shared_captures, write_suite

TCPDUMP = shutil.which("tcpdump")
EXPRESSIONS = ["tcp", "udp port 53", "arp", "ip6", "vlan", "icmp or icmp6", "ip[8] < 64",
               "tcp[tcpflags] & tcp-syn != 0", "greater 200", "ether broadcast"]


def _whole_frames(dest: Path) -> int:
    """Every record of the real captures kept whole (caplen = wire length >= 60), joined."""
    n = 0
    with PcapWriter(dest) as out:
        for path in shared_captures():
            try:
                records = list(iter_pcap(path))
            except ValueError:
                continue
            for rec in records:
                if rec.linktype == 1 and len(rec.data) == rec.wirelen >= 60:
                    out.write(rec.data, n * 1e-4)
                    n += 1
    return n


@pytest.mark.skipif(TCPDUMP is None, reason="tcpdump is not installed")
def test_accepts_equal_tcpdumps_count_on_real_captures(tmp_path: Path) -> None:
    total = _whole_frames(tmp_path / "real.pcap")
    assert total > 1000
    filters = "".join(f'[[filter]]\nname = "f{i}"\nexpr = "{e}"\nsnaplen = 96\n\n'
                      for i, e in enumerate(EXPRESSIONS))
    path = tmp_path / "real.lsfsim.toml"
    path.write_text(f'[suite]\ntraffic = ["real.pcap"]\n\n{filters}')
    prepared = prepare(load_suite(path))
    try:
        assert prepared.traffic.count == total
        for plan, expr in zip(prepared.plans, EXPRESSIONS, strict=True):
            out = tmp_path / "out.pcap"
            subprocess.run([TCPDUMP, "-r", str(tmp_path / "real.pcap"), "-w", str(out), expr],
                           capture_output=True, check=True)
            assert plan.accepts == sum(1 for _ in iter_pcap(out)), expr
            assert plan.mismatch_count == 0        # lsfsim's machine agrees with bpf_filter
            assert all(kept in (0, min(96, n)) for kept, n in zip(
                plan.caplen, (len(f) for f in prepared.traffic.frames()), strict=True))
    finally:
        prepared.close()


ANCILLARY = """\
ld #type
jeq #3, other, notother
notother: ld #proto
jeq #0x86dd, v6, drop
other: ret #100
v6: ret #200
drop: ret #0
"""


def test_skb_fields_offline_are_those_the_machine_gives(tmp_path: Path) -> None:
    """A program reading pkt_type and protocol judges every frame the same in the run."""
    (tmp_path / "anc.bpf").write_text(ANCILLARY)
    path = write_suite(tmp_path, '[suite]\ntraffic = ["mixed.pcap"]\nloads = [0]\n\n'
                       '[[filter]]\nname = "anc"\nfile = "anc.bpf"\n')
    prepared = prepare(load_suite(path))
    try:
        plan = prepared.plans[0]
        kept = set(plan.caplen)
        assert {0, 100, 200} <= kept           # other hosts' frames and IPv6 both occur
        figures = run_item(prepared.items()[0])
        from array import array

        machine = array("I")
        machine.frombytes(figures.caplen or b"")
        reached = [i for i, f in enumerate(figures.fate or b"") if f in (FILTERED, RCVBUF, QUEUED)]
        assert len(reached) == prepared.traffic.count
        assert [machine[i] for i in reached] == [plan.caplen[i] for i in reached]
    finally:
        prepared.close()


def test_a_reference_program_file_and_a_reported_mismatch(tmp_path: Path) -> None:
    (tmp_path / "udp.bpf").write_text(str(Program.from_expression("udp", 96).format()))
    path = write_suite(tmp_path, '[suite]\ntraffic = ["mixed.pcap"]\n\n'
                       '[[filter]]\nname = "same"\nexpr = "udp"\nsnaplen = 96\n'
                       'reference = "udp.bpf"\n\n'
                       '[[filter]]\nname = "v4"\nexpr = "ip and udp"\nsnaplen = 96\n'
                       'reference = "expr:udp"\n')
    prepared = prepare(load_suite(path))
    try:
        same, v4 = prepared.plans
        assert same.reference is not None and same.reference.kind == "program"
        assert same.mismatch_count == 0 and same.accepts == v4.accepts + v4.mismatch_count
        assert v4.reference is not None and v4.reference.kind == "libpcap"
        assert v4.mismatch_count > 0
        index = v4.mismatches[0]
        name, number = prepared.traffic.where(index)
        text = describe_mismatch(v4, prepared.traffic, prepared.model, index, 0)
        assert text.startswith(f"mixed.pcap record {number} (")
        assert "program drops, reference (libpcap 'udp') keeps" in text
        # the paths are the debugger's: the program's ends in "ret #0"
        assert "program path 0 1 " in text and "(ret #0)" in text
    finally:
        prepared.close()
