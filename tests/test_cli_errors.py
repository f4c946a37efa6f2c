"""Bad input is one line and exit 2; anything else is reported as a bug, exit 70."""

from __future__ import annotations

import pytest
import typer
from pydantic import BaseModel
from typer.testing import CliRunner

from lsfsim.bpf.errors import CompileError
from lsfsim.cli.common import EX_SOFTWARE, InputError, one_line_errors
from lsfsim.cli.main import app
from lsfsim.config.model import ModelError
from lsfsim.errors import ScenarioError
from lsfsim.machine import InvariantError, Machine
from lsfsim.pcapio import PcapError

BUG = "lsfsim: internal error (this is a bug in lsfsim, please report it): "


class _Spec(BaseModel):
    n: int


def _exit_code(exc: BaseException) -> int:
    def command() -> None:
        raise exc

    try:
        one_line_errors(command)()
    except typer.Exit as done:
        return done.exit_code
    return 0


@pytest.mark.parametrize("exc", [
    InputError("--x: bad"), CompileError("syntax error"), ModelError("models/x.toml: bad"),
    PcapError("f.pcap: not a pcap file"), ScenarioError("sockets[0].cpu: no such CPU"),
    FileNotFoundError(2, "No such file or directory"),
])
def test_domain_errors_are_one_line_and_exit_2(exc, capsys):
    assert _exit_code(exc) == 2
    err = capsys.readouterr().err
    assert err.startswith("lsfsim: error: ") and err.count("\n") == 1
    assert "Traceback" not in err


def test_a_scenario_validation_error_is_bad_input(capsys):
    try:
        _Spec(n="x")
    except Exception as exc:        # pydantic's ValidationError
        assert _exit_code(exc) == 2
    assert capsys.readouterr().err.startswith("lsfsim: error: ")


@pytest.mark.parametrize("exc", [KeyError("cur_rx"), ValueError("deep in the model"),
                                 InvariantError("conservation: offered 3 != 2"),
                                 ZeroDivisionError("division by zero")])
def test_an_unexpected_exception_is_reported_as_a_bug(exc, capsys):
    assert _exit_code(exc) == EX_SOFTWARE == 70
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err
    assert err.rstrip("\n").splitlines()[-1] == f"{BUG}{type(exc).__name__}: {exc}"


def test_lsfsim_run_reports_a_simulator_bug_as_a_bug(monkeypatch):
    def broken(self, *args, **kwargs):
        raise KeyError("softnet")

    monkeypatch.setattr(Machine, "run", broken)
    res = CliRunner().invoke(app, ["run", "-q", "--traffic", "cbr", "--count", "10"])
    assert res.exit_code == 70
    assert f"{BUG}KeyError: 'softnet'" in res.stderr
    assert "Traceback" in res.stderr


def test_lsfsim_run_reports_a_missing_cpu_as_bad_input():
    res = CliRunner().invoke(app, ["run", "-q", "--count", "10", "--reader-cpu", "7"])
    assert res.exit_code == 2
    assert res.stderr.strip() == ("lsfsim: error: sockets[0].cpu: CPU 7 does not exist "
                                  "(the model has 2)")
