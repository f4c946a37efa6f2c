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
SHORT = ("--traffic", "cbr", "--count", "20")


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
