"""``lsfsim regress``: exit status, the table, JUnit XML, --update, -k, bad suites."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from lsfsim.pcapio import PcapWriter
from tests.regress.helpers import invoke, write_suite

SUITE = """\
# filters of the capture box
[suite]
traffic = ["mixed.pcap"]   # 500 frames
loads = [1, 0]

[[filter]]
name = "udp"
expr = "udp"
snaplen = 96
accepts = 7          # stale: the program accepts more
max_drop_ratio = 0.0

[[filter]]
name = "icmp"
expr = "icmp"
max_p99_latency = "1s"

[[filter]]
name = "v4udp"
expr = "ip and udp"     # the new version, checked against the old one
reference = "udp"
"""


@pytest.fixture
def suite(tmp_path: Path) -> Path:
    return write_suite(tmp_path, SUITE)


def test_table_exit_status_and_failures(suite: Path) -> None:
    result = invoke(str(suite))
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["filter", "load", "accepted", "dropped", "p99", "verdict"]
    rows = [line.split() for line in lines[1:7]]
    assert [(r[0], r[1], r[-1]) for r in rows] == [
        ("udp", "1x", "FAIL"), ("udp", "asap", "FAIL"), ("icmp", "1x", "pass"),
        ("icmp", "asap", "pass"), ("v4udp", "1x", "FAIL"), ("v4udp", "asap", "FAIL")]
    udp_accepts = rows[0][2]
    assert f"udp [1x, asap]: accepts: expected 7, the program accepts {udp_accepts} of 500" \
        in result.output
    assert "v4udp [1x, asap]: verdicts: " in result.output
    assert "mixed.pcap record " in result.output and "reference path " in result.output


def test_k_selects_filters_and_all_passing_exits_0(suite: Path) -> None:
    result = invoke(str(suite), "-k", "icmp")
    assert result.exit_code == 0, result.output
    assert [line.split()[0] for line in result.output.splitlines()[1:]] == ["icmp", "icmp"]
    result = invoke(str(suite), "-k", "nothing*")
    assert result.exit_code == 2
    assert result.output.strip().startswith("lsfsim: error: -k nothing*: no filter of ")


def test_junit_xml_parses_with_one_testcase_per_filter_and_load(suite: Path) -> None:
    out = suite.parent / "report.xml"
    result = invoke(str(suite), "--junit", str(out), "-j", "2")
    assert result.exit_code == 1
    root = ET.parse(out).getroot()
    assert root.tag == "testsuites"
    (ts,) = root.findall("testsuite")
    cases = ts.findall("testcase")
    assert (ts.get("name"), ts.get("tests"), ts.get("failures")) == ("s", "6", "4")
    assert [c.get("name") for c in cases] == [
        "udp[load=1x]", "udp[load=asap]", "icmp[load=1x]", "icmp[load=asap]",
        "v4udp[load=1x]", "v4udp[load=asap]"]
    failed = [c for c in cases if c.find("failure") is not None]
    assert [c.get("classname") for c in failed] == ["s.udp", "s.udp", "s.v4udp", "s.v4udp"]
    message = failed[0].find("failure").get("message")
    assert message.startswith("accepts: expected 7, the program accepts ")


def test_update_writes_accepts_and_keeps_comments(suite: Path) -> None:
    result = invoke(str(suite), "--update", "-k", "udp")
    text = suite.read_text()
    assert "# filters of the capture box" in text and "# 500 frames" in text
    assert "# stale: the program accepts more" in text
    assert "accepts = 7 " not in text
    # the icmp filter was not selected; v4udp ("udp" in its name) got an accepts line
    icmp = text.split('name = "icmp"')[1].split("[[filter]]")[0]
    assert "accepts" not in icmp
    v4 = text.split('name = "v4udp"')[1]
    assert v4.splitlines()[1].startswith("expr = ") and v4.splitlines()[2].startswith("accepts = ")
    assert text.replace("accepts = ", "", 1) != SUITE
    assert result.exit_code == 1             # v4udp's verdicts still differ
    again = invoke(str(suite), "-k", "udp")
    assert "accepts:" not in again.output
    # nothing changed: the file is not rewritten
    before = (suite.read_text(), suite.stat().st_mtime_ns)
    invoke(str(suite), "--update", "-k", "udp")
    assert (suite.read_text(), suite.stat().st_mtime_ns) == before


@pytest.mark.parametrize(("change", "expected"), [
    (('expr = "icmp"', 'expr = "icmp and"'),
     ":15: filter[icmp].expr: does not compile: filter expression 'icmp and': "),
    (('expr = "icmp"', 'file = "div0.bpf"'),
     ":15: filter[icmp].file: Linux 2.6.33 refuses the program: EINVAL at instruction 1: "
     "division by constant zero"),
    # 4097 instructions: sk_attach_filter's sock_kmalloc fails (ENOMEM) before
    # sk_chk_filter could refuse the length (EINVAL), as on the suite's i386 testbed
    (('expr = "icmp"', 'file = "long.bpf"'),
     ":15: filter[icmp].file: Linux 2.6.33 refuses the program: ENOMEM"),
    (('traffic = ["mixed.pcap"]', 'traffic = ["mixed.pcap", "raw.pcap"]'),
     ":3: suite.traffic: raw.pcap: record 0: linktype 101 is not Ethernet"),
    (('loads = [1, 0]', 'loads = [1, 0]\nspeed = 2'),
     ":5: suite.speed: unknown key"),
    (('traffic = ["mixed.pcap"]', 'traffic = ["office.pcap"]'),
     ":3: suite.traffic: office.pcap: no such capture file"),
])
def test_bad_suites_exit_2_with_one_line_and_run_nothing(suite: Path, change,
                                                         expected: str) -> None:
    (suite.parent / "div0.bpf").write_text("ld #len\ndiv #0\nret a\n")
    (suite.parent / "long.bpf").write_text("ld #0\n" * 4096 + "ret a\n")
    with PcapWriter(suite.parent / "raw.pcap", linktype=101) as out:
        out.write(bytes(40))
    old, new = change
    suite.write_text(SUITE.replace(old, new))
    junit = suite.parent / "out.xml"
    result = invoke(str(suite), "--junit", str(junit), "--update")
    assert result.exit_code == 2
    (line,) = result.output.splitlines()
    assert line.startswith("lsfsim: error: ") and expected in line, line
    assert not junit.exists()
    assert suite.read_text() == SUITE.replace(old, new)      # --update wrote nothing
