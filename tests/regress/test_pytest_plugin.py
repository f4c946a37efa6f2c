"""The pytest plugin, run by pytest's own pytester: suite items, failure reports, fixtures."""

from __future__ import annotations

import shutil
import tomllib

import pytest

# Imported here, before pytester's in-process runs: each run forgets the modules it
# imported, and numpy (which the machine uses) refuses to be imported twice.
import lsfsim.machine  # noqa: F401
import lsfsim.regress.pytest_plugin  # noqa: F401
from tests.regress.helpers import REPO, TRACES

pytest_plugins = ["pytester"]

PLUGIN = "lsfsim.regress.pytest_plugin"

SUITE = """\
[suite]
traffic = ["mixed.pcap"]
loads = [1, 0]

[[filter]]
name = "udp"
expr = "udp"
max_drop_ratio = 0.0

[[filter]]
name = "v4udp"
expr = "ip and udp"
reference = "udp"
"""


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    shutil.copy(TRACES / "mixed.pcap", pytester.path / "mixed.pcap")
    return pytester.runpytest("-p", PLUGIN, "-p", "no:cacheprovider", *args)


def test_the_entry_point_names_the_plugin_module() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["entry-points"]["pytest11"] == {PLUGIN: PLUGIN}


def test_suite_files_become_one_item_per_filter_and_load(pytester: pytest.Pytester) -> None:
    (pytester.path / "test_box.lsfsim.toml").write_text(SUITE)
    result = run(pytester, "-v")
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines([
        "*test_box.lsfsim.toml::udp[[]1x[]] PASSED*",
        "*test_box.lsfsim.toml::udp[[]asap[]] PASSED*",
        "*test_box.lsfsim.toml::v4udp[[]1x[]] FAILED*",
        "*test_box.lsfsim.toml:10: filter v4udp at load 1x: accepted * lost 0 (0.00%)",
        "verdicts: * frame(s) that reached the filter differ from the reference "
        "(libpcap 'udp')*",
        "  mixed.pcap record * program drops, reference (libpcap 'udp') keeps*",
    ])
    # pytest's -k selects items by name, as lsfsim regress -k selects filters
    run(pytester, "-k", "udp and not v4").assert_outcomes(passed=2)


def test_suites_under_testpaths_are_collected_without_the_prefix(
        pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ntestpaths = checks\n")
    (pytester.path / "checks").mkdir()
    (pytester.path / "checks" / "box.lsfsim.toml").write_text(SUITE.replace(
        '"mixed.pcap"', '"../mixed.pcap"'))
    (pytester.path / "elsewhere.lsfsim.toml").write_text(SUITE)
    result = run(pytester)
    result.assert_outcomes(passed=2, failed=2)
    # from the root: elsewhere.lsfsim.toml is neither test_* nor under testpaths
    result = run(pytester, ".", "--co", "-q")
    assert "elsewhere" not in result.stdout.str()
    result.stdout.fnmatch_lines(["checks/box.lsfsim.toml::udp[[]1x[]]", "4 tests collected*"])


def test_a_bad_suite_is_a_one_line_collection_error(pytester: pytest.Pytester) -> None:
    (pytester.path / "test_bad.lsfsim.toml").write_text(SUITE.replace('expr = "udp"\n',
                                                                      'expr = "udp"\nsnapln = 9\n'))
    result = run(pytester)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*lsfsim: error: *test_bad.lsfsim.toml:8: filter[[]udp[]].snapln:"
                                 " unknown key (did you mean 'snaplen'?)"])


def test_fixtures(pytester: pytest.Pytester) -> None:
    shutil.copy(TRACES / "mixed.pcap", pytester.path / "mixed.pcap")
    pytester.makepyfile(test_fixtures="""
        import pytest
        from lsfsim.scenario import Scenario, SocketSpec, TrafficSpec

        def test_run_options(lsfsim_run):
            result = lsfsim_run({"pcap": "mixed.pcap", "speed": 0, "filter": "udp",
                                 "promisc": True})
            assert result["offered"] == 500
            sock = result.sockets[0]
            assert sock["seen"] - sock["seen_outgoing"] == 500 and sock["filtered"] > 0

        def test_run_scenario(lsfsim_run):
            scenario = Scenario(traffic=TrafficSpec(kind="cbr", rate=10000, packets=50, size=60),
                                sockets=[SocketSpec(filter="udp")])
            assert lsfsim_run(scenario).sockets[0]["delivered"] == 50

        def test_unknown_option(lsfsim_run):
            with pytest.raises(TypeError, match="unknown run option 'speeed'"):
                lsfsim_run({"speeed": 2})

        def test_program_and_verdicts(bpf_program, assert_same_verdicts, tmp_path):
            udp = bpf_program("udp", snaplen=96)
            assert len(udp) > 3
            (tmp_path / "udp.bpf").write_text(udp.format())
            assert bpf_program(tmp_path / "udp.bpf", kernel="2.6.33") == udp
            assert assert_same_verdicts(udp, str(tmp_path / "udp.bpf"), "mixed.pcap") == 500

        def test_different_verdicts(bpf_program, assert_same_verdicts):
            assert_same_verdicts(bpf_program("udp"), bpf_program("ip and udp"), "mixed.pcap")
    """)
    result = pytester.runpytest("-p", PLUGIN, "-p", "no:cacheprovider")
    result.assert_outcomes(passed=4, failed=1)
    result.stdout.fnmatch_lines([
        "E * AssertionError: * of 500 frames of mixed.pcap get different verdicts:",
        "E *  mixed.pcap record * bytes): keeps * bytes vs drops; paths * (ret #262144) vs *"
        " (ret #0)",
    ])
