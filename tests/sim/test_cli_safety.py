"""The commands' safety rules: outputs checked before a run and never clobbering what
is not a regular file, refused filters, honest defaults, warnings, limits."""

from __future__ import annotations

import json
import os
import stat

import pytest
from typer.testing import CliRunner

from lsfsim.cli.main import app

runner = CliRunner()
SHORT = ("--traffic", "cbr", "--count", "20", "--size", "100")


def _never_built(monkeypatch):
    import lsfsim.machine

    def refuse(*args, **kwargs):
        raise AssertionError("the machine was built before the outputs were checked")

    monkeypatch.setattr(lsfsim.machine.Machine, "__init__", refuse)


@pytest.mark.parametrize("args, message", [
    (("run", "--report", "/proc/nope"), "--report: /proc/nope: cannot create files in /proc"),
    (("run", "--json", "/proc/nope/x.json"), "--json: /proc/nope/x.json: "),
    (("run", "--json", "/nonexistent-dir/r.json"), "no such directory /nonexistent-dir"),
    (("trace", "-o", "/nonexistent-dir/t.txt"), "--output: /nonexistent-dir/t.txt: no such"),
    (("lifecycle", "1", "--plot", "/nonexistent-dir/t.png"), "--plot: /nonexistent-dir/t.png"),
])
def test_output_paths_are_checked_before_the_run(monkeypatch, args, message):
    _never_built(monkeypatch)
    res = runner.invoke(app, list(args))
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lsfsim: error: ") and message in lines[0]


def test_json_to_dev_full_fails_in_one_line_and_keeps_the_device():
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    res = runner.invoke(app, ["run", *SHORT, "-q", "--json", "/dev/full"])
    assert res.exit_code == 2
    assert "No space left on device" in res.output
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


def test_trace_output_through_a_symlink(tmp_path):
    real = tmp_path / "real.txt"
    real.write_text("old")
    link = tmp_path / "link.txt"
    link.symlink_to(real)
    res = runner.invoke(app, ["trace", *SHORT, "--functions", "packet_rcv", "-o", str(link)])
    assert res.exit_code == 0, res.output
    assert link.is_symlink() and "packet_rcv" in real.read_text()


def test_json_dash_still_goes_to_stdout():
    res = runner.invoke(app, ["run", *SHORT, "-q", "--json", "-"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["offered"] == 20


def _one_error_line(res, *parts: str) -> None:
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("lsfsim: error: "), res.output
    for part in parts:
        assert part in lines[0], (part, lines[0])


# --- 3: refused filters ---------------------------------------------------------------

def test_a_refused_filter_is_an_error_unless_allowed(tmp_path, monkeypatch):
    prog = tmp_path / "bad.txt"
    prog.write_text("(000) ldh [12]\n(001) jeq #0x800 jt 2 jf 3\n(002) ret #65535\n")
    res = runner.invoke(app, ["run", *SHORT, "--filter-file", str(prog)])
    _one_error_line(res, "EINVAL", "instruction 1", "jump target out of range",
                    "--allow-refused-filter")
    res = runner.invoke(app, ["lifecycle", "0", *SHORT, "--filter-file", str(prog)])
    _one_error_line(res, "EINVAL")
    res = runner.invoke(app, ["run", *SHORT, "--filter-file", str(prog),
                              "--allow-refused-filter", "--json", "-"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["sockets"][0]["filter_refused"].startswith("EINVAL at instruction 1")
    assert data["scenario"]["allow_refused_filter"] is True
    assert "lsfsim: warning: socket 0: the kernel refused the filter" in res.stderr
    assert "REFUSED by the kernel" in res.stderr                 # the summary's filter column


# --- 4: which filter, shown always -----------------------------------------------------

@pytest.mark.parametrize("given, expected", [
    ({}, "host 208.68.139.89"),
    ({"traffic": "nc"}, None),
    ({"traffic": "cbr"}, None),
    ({"model": "testbed"}, None),
    ({"pcap": "PCAP"}, None),
    ({"traffic": "cbr", "filter_expr": "udp"}, "udp"),
])
def test_the_lecture_filter_only_in_the_lecture_scenario(tmp_path, given, expected):
    from lsfsim.cli.run_cmd import scenario_from_options
    from lsfsim.pcapio import PcapWriter

    if "pcap" in given:
        given["pcap"] = str(tmp_path / "c.pcap")
        with PcapWriter(given["pcap"]):
            pass
    args = dict(model=None, traffic=None, rate=None, size=None, packets=None, nbytes=None,
                duration=None, pcap=None, speed=None, filter_expr=None, filter_file=None,
                snaplen=None, rcvbuf=None, rx_ring=None, sockets=1, readers=1,
                reader_work=None, no_napi=False, seed=1, no_drain=False)
    scenario = scenario_from_options(**(args | given))
    assert scenario.sockets[0].filter == expected


def test_the_summary_shows_the_filter_in_use():
    res = runner.invoke(app, ["run", *SHORT])
    assert res.exit_code == 0, res.output
    row = next(ln for ln in res.stdout.splitlines() if ln.startswith("│      0 │"))
    assert " none " in row and "promiscuous" in row
    res = runner.invoke(app, ["run", *SHORT, "--filter", "udp", "-p"])
    row = next(ln for ln in res.stdout.splitlines() if ln.startswith("│      0 │"))
    assert "udp (" in row and "instructions" in row and "not promiscuous" in row


# --- 5: promiscuous as tcpdump ---------------------------------------------------------

@pytest.mark.parametrize("flags, promisc", [((), True), (("-p",), False),
                                            (("--no-promisc",), False), (("--promisc",), True)])
def test_promiscuous_by_default_and_dash_p(flags, promisc):
    res = runner.invoke(app, ["run", *SHORT, "-q", "--json", "-", *flags])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["scenario"]["sockets"][0]["promisc"] is promisc


# --- 7: warnings -------------------------------------------------------------------------

def test_rate_above_the_link_warns_on_stderr_and_in_the_json():
    res = runner.invoke(app, ["run", "--traffic", "cbr", "--rate", "1e12", "--count", "50",
                              "-q", "--json", "-"])
    assert res.exit_code == 0, res.output
    (warning,) = json.loads(res.stdout)["warnings"]
    assert "at most 8,127 frames/s" in warning
    assert res.stderr.splitlines() == [f"lsfsim: warning: {warning}"]


# --- 8: bounds and progress ---------------------------------------------------------------

def test_too_many_sockets_is_refused_before_the_run(monkeypatch):
    _never_built(monkeypatch)
    _one_error_line(runner.invoke(app, ["run", "--sockets", "100000"]),
                    "--sockets: 100000 is more than 1024")


def test_progress_bar_in_every_command_but_not_with_q(monkeypatch):
    from lsfsim.cli import run_cmd

    seen: list[bool] = []
    original = run_cmd.LateProgress.__call__

    def spy(self, fraction):
        seen.append(self.enabled)
        original(self, fraction)

    monkeypatch.setattr(run_cmd.LateProgress, "__call__", spy)
    for args in (["run", *SHORT, "-q"], ["run", *SHORT], ["trace", *SHORT],
                 ["lifecycle", "0", *SHORT]):
        seen.clear()
        assert runner.invoke(app, args).exit_code == 0
        assert seen and set(seen) == {"-q" not in args}, args


def test_late_progress_shows_only_on_a_terminal_after_a_while(monkeypatch):
    from lsfsim.cli.run_cmd import LateProgress

    monkeypatch.setattr("sys.stderr.isatty", lambda: True, raising=False)
    quiet = LateProgress(after=0.0, enabled=False)
    quiet(0.5)
    assert quiet.bar is None
    early = LateProgress(after=3600.0)
    early(0.5)
    assert early.bar is None
    late = LateProgress(after=0.0)
    late(0.5)
    assert late.bar is not None
    late.close()


# --- 10: input paths ------------------------------------------------------------------------

@pytest.mark.parametrize("option, path, why", [
    ("--pcap", "/tmp", "is a directory"),
    ("--pcap", "/dev/null", "not a regular file"),
    ("--pcap", "/nonexistent.pcap", "no such file"),
    ("--filter-file", "/tmp", "is a directory"),
    ("--model", "/tmp", "is a directory"),
])
def test_input_paths_say_what_they_are(monkeypatch, option, path, why):
    _never_built(monkeypatch)
    _one_error_line(runner.invoke(app, ["run", option, path]), f"{option}: {path}: {why}")


# --- 15: one meaning per option name -------------------------------------------------------

def test_count_everywhere_and_packets_as_the_old_name():
    res = runner.invoke(app, ["run", "--traffic", "cbr", "--count", "7", "-q", "--json", "-"])
    assert json.loads(res.stdout)["offered"] == 7
    res = runner.invoke(app, ["run", "--traffic", "cbr", "--packets", "7", "-q", "--json", "-"])
    assert res.exit_code == 0 and json.loads(res.stdout)["offered"] == 7
    assert "--packets is deprecated: use --count" in res.stderr
    _one_error_line(runner.invoke(app, ["run", "--count", "3", "--packets", "3"]),
                    "give one")
    res = runner.invoke(app, ["lifecycle", "6", "--traffic", "cbr", "--count", "7"])
    assert res.exit_code == 0 and "frame 6:" in res.stdout
    assert "the default rate (10,000 frames/s) exceeds" in res.stderr
    res = runner.invoke(app, ["lifecycle", "7", "--traffic", "cbr", "--count", "7",
                              "--rate", "1000"])
    _one_error_line(res, "frame 7", "indexes 0..6")
    _one_error_line(runner.invoke(app, ["trace", "--packets", "1"]), "now --frames")
