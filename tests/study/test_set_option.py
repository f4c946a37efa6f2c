"""``--set FIELD=VALUE``: model fields from the command line, recorded in the JSON."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from lsfsim.cli.main import app
from lsfsim.config.model import load_model
from lsfsim.machine import run
from lsfsim.scenario import Scenario, TrafficSpec, apply_overrides

runner = CliRunner()
CBR = ["--traffic", "cbr", "--count", "100", "-q", "--json", "-"]


def _json(*args: str) -> dict:
    res = runner.invoke(app, ["run", *CBR, *args])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def test_rmem_max_raised_by_set_lets_so_rcvbuf_grow():
    # sock_setsockopt caps SO_RCVBUF at rmem_max, then doubles it
    plain = _json("--rcvbuf", "4000000")
    raised = _json("--rcvbuf", "4000000", "--set", "kernel.rmem_max=16MiB")
    model = load_model("testbed")
    assert plain["sockets"][0]["rcvbuf"] == 2 * model.kernel.sizes.rmem_max
    assert raised["sockets"][0]["rcvbuf"] == 2 * 4_000_000
    assert raised["scenario"]["overrides"] == {"kernel.rmem_max": "16MiB"}
    assert "overrides" not in plain["scenario"]      # runs without --set dump as before


def test_plain_count_fields_take_bare_values():
    m = apply_overrides(load_model("testbed"),
                        {"hardware.nic.rx_ring": "64", "hardware.cpu.count": "4"})
    assert m.hardware.nic.rx_ring == 64 and m.hardware.cpu.count == 4


def test_set_changes_the_run_like_the_option_it_mirrors():
    a = run(Scenario(traffic=TrafficSpec(kind="cbr", rate=120_000, packets=3000, size=60),
                     rx_ring=8))
    b = run(Scenario(traffic=TrafficSpec(kind="cbr", rate=120_000, packets=3000, size=60),
                     overrides={"hardware.nic.rx_ring": "8"}))
    da, db = a.deterministic(), b.deterministic()
    da.pop("scenario"), db.pop("scenario")
    assert da == db


@pytest.mark.parametrize("item, message", [
    ("kernel.rmem_mx=1", "kernel.rmem_mx: no such field to override"),
    ("kernel.rmem_max=abc", "kernel.rmem_max: expected a size"),
    ("hardware.nic.dma_latency=350", "hardware.nic.dma_latency: expected a duration"),
    ("hardware.nic.rx_ring=3", "hardware.nic.rx_ring: pcnet32 ring sizes are powers of two"),
    ("nonsense", "--set: 'nonsense': expected FIELD=VALUE"),
])
@pytest.mark.parametrize("command", ["run", "trace", "lifecycle"])
def test_bad_set_is_one_line_exit_2(command, item, message):
    args = [command, *(["0"] if command == "lifecycle" else []), "--set", item]
    res = runner.invoke(app, args)
    assert res.exit_code == 2
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lsfsim: error: ") and message in lines[0]
