"""The scenario options are defined once and every simulating command takes all of them."""

from __future__ import annotations

from dataclasses import fields

import pytest
import typer.main

from lsfsim.cli.main import app
from lsfsim.cli.scenario_options import ScenarioOptions, scenario_options
from lsfsim.scenario import LECTURE_FILTER

COMMANDS = ("run", "trace", "lifecycle")


def _options(command: str) -> dict[str, str]:
    click_app = typer.main.get_command(app)
    cmd = click_app.commands[command]  # type: ignore[attr-defined]
    return {p.name: p.opts[0] for p in cmd.params}


def test_every_simulating_command_takes_every_scenario_option() -> None:
    shared = {f.name for f in fields(ScenarioOptions)}
    flags = [{name: flag for name, flag in _options(c).items() if name in shared}
             for c in COMMANDS]
    assert set(flags[0]) == shared
    assert flags[0] == flags[1] == flags[2]          # same names, same flags


def test_defaults_build_the_lecture_scenario_and_the_short_trace_default() -> None:
    lecture = ScenarioOptions().build()
    assert lecture.traffic.kind == "nc" and lecture.sockets[0].filter == LECTURE_FILTER
    assert lecture.traffic.bytes is None                 # the whole 100 MB transfer
    short = ScenarioOptions().build(default_nc_bytes=30_000)
    assert short.traffic.bytes == 30_000
    counted = ScenarioOptions(count=7).build(default_nc_bytes=30_000)
    assert counted.traffic.bytes is None and counted.traffic.packets == 7
    replay = ScenarioOptions(traffic="cbr", rate=1000).build()
    assert replay.sockets[0].filter is None              # no lecture filter off its scenario


def test_a_command_may_not_redefine_a_scenario_option() -> None:
    def command(scenario: ScenarioOptions, seed: int = 3) -> None: ...

    with pytest.raises(TypeError, match="seed"):
        scenario_options(command)


def test_the_command_receives_the_options_gathered() -> None:
    seen = {}

    @scenario_options
    def command(scenario: ScenarioOptions, extra: int = 0) -> None:
        seen["scenario"], seen["extra"] = scenario, extra

    command(**{f.name: f.default for f in fields(ScenarioOptions)} | {"rate": 5.0}, extra=2)
    assert seen["scenario"] == ScenarioOptions(rate=5.0) and seen["extra"] == 2
