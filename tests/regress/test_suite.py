"""The suite loader: valid suites, and one-line errors naming file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from lsfsim.regress.suite import SuiteError, load_suite
from tests.regress.helpers import write_suite

GOOD = """\
# a suite
[suite]
model = "testbed"
traffic = ["mixed.pcap"]
loads = [1, 10, 0]
kernel = "2.6.33"

[[filter]]
name = "udp"
expr = "udp"
snaplen = 96
accepts = 256
max_drop_ratio = { 1 = 0.0, 10 = 0.0, 0 = 0.05 }
max_p99_latency = "2ms"

[[filter]]
name = "web"
expr = "tcp port 80 or tcp port 443"
reference = "tcp port 80"
"""


def error_of(tmp_path: Path, body: str, **kwargs) -> str:
    path = write_suite(tmp_path, body, **kwargs)
    with pytest.raises(SuiteError) as info:
        load_suite(path)
    text = str(info.value)
    assert "\n" not in text
    return text


def test_a_good_suite_loads_with_paths_resolved(tmp_path: Path) -> None:
    suite = load_suite(write_suite(tmp_path, GOOD))
    assert suite.name == "s"
    assert suite.captures == ((tmp_path / "mixed.pcap").resolve(),)
    assert suite.section.loads == [1.0, 10.0, 0.0]
    udp, web = suite.filters
    assert (udp.snaplen, udp.accepts, web.snaplen) == (96, 256, 262144)
    assert udp.drop_bound(0) == 0.05 and udp.drop_bound(10) == 0.0
    assert web.drop_bound(1) is None
    assert udp.max_p99_latency == pytest.approx(2e-3)
    assert suite.filter_line(1) == 16 and suite.filter_line(1, "reference") == 19


def test_a_single_bound_applies_to_every_load(tmp_path: Path) -> None:
    suite = load_suite(write_suite(tmp_path, GOOD.replace(
        "max_drop_ratio = { 1 = 0.0, 10 = 0.0, 0 = 0.05 }", "max_drop_ratio = 0.01")))
    assert [suite.filters[0].drop_bound(x) for x in (1, 10, 0)] == [0.01] * 3


@pytest.mark.parametrize(("change", "expected"), [
    (("snaplen = 96", "snapln = 96"),
     "s.lsfsim.toml:11: filter[udp].snapln: unknown key (did you mean 'snaplen'?)"),
    (('loads = [1, 10, 0]', 'loads = [1, 10, 0]\nloadz = 3'),
     "s.lsfsim.toml:6: suite.loadz: unknown key (did you mean 'loads'?)"),
    (("snaplen = 96", "snaplen = 0"),
     "s.lsfsim.toml:11: filter[udp].snaplen: Input should be greater than or equal to 1, got 0"),
    (('max_p99_latency = "2ms"', 'max_p99_latency = 2'),
     "s.lsfsim.toml:14: filter[udp].max_p99_latency: expected a duration with a unit like"
     " '2ms', got 2"),
    (("0 = 0.05", "5 = 0.05"),
     "filter 'udp': max_drop_ratio: load 5 is not one of suite.loads [1.0, 10.0, 0.0]"),
    (('name = "web"', 'name = "udp"'), "two filters are named 'udp'"),
    (('expr = "udp"', 'expr = "udp"\nfile = "x.bpf"'),
     "s.lsfsim.toml:8: filter[udp]: give exactly one of expr"),
    (('kernel = "2.6.33"', 'kernel = "2.4"'),
     "s.lsfsim.toml:6: suite.kernel: kernel version '2.4' is older than 2.6.33"),
    (("loads = [1, 10, 0]", "loads = [1, -1]"),
     "s.lsfsim.toml:5: suite.loads.1: Input should be greater than or equal to 0, got -1"),
    (('traffic = ["mixed.pcap"]', 'traffic = ["gone.pcap"]'),
     "s.lsfsim.toml:4: suite.traffic: gone.pcap: no such capture file"),
    (('traffic = ["mixed.pcap"]', ''),
     "s.lsfsim.toml:2: suite: give either traffic = [capture files] or a [suite.generate]"),
    (('expr = "udp"', 'file = "udp.bpf"'),
     "s.lsfsim.toml:10: filter[udp].file: udp.bpf: no such program file"),
    (('name = "udp"', 'name = "udp"\nname = "again"'),
     "s.lsfsim.toml:10:15: invalid TOML: Cannot overwrite a value"),
])
def test_bad_suites_give_one_line_naming_file_line_and_field(tmp_path: Path, change,
                                                             expected: str) -> None:
    old, new = change
    assert old in GOOD
    text = error_of(tmp_path, GOOD.replace(old, new, 1))
    assert expected in text, text


def test_generate_refuses_a_closed_loop_source(tmp_path: Path) -> None:
    body = GOOD.replace('traffic = ["mixed.pcap"]',
                        '[suite.generate]\ntraffic = "nc"\nbytes = 100000\n[suite.more]')
    body = body.replace("[suite.more]\n", "")
    text = error_of(tmp_path, body.replace('loads = [1, 10, 0]\nkernel = "2.6.33"\n', "")
                    .replace("[suite]\n", '[suite]\nloads = [1, 10, 0]\n'))
    assert "suite.generate.traffic: nc is clocked by the host's ACKs" in text


def test_a_missing_suite_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(SuiteError, match="cannot read suite file"):
        load_suite(tmp_path / "none.lsfsim.toml")
