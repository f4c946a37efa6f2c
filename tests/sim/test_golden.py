"""Golden outputs: every view of a few representative runs, byte for byte.

The files under tests/golden/ were written from the code before a refactoring
that must not change any output: the deterministic JSON of a Result, the
summary tables and /proc views, the ftrace text (and JSON) of ``lsfsim trace``,
the lifecycle tables and a sampler's series.  A change of any number, any
float's last bit, any line's layout fails here.

A deliberate change of behaviour regenerates them:
``LSFSIM_REGEN_GOLDEN=1 python3 -m pytest tests/sim/test_golden.py`` (and the
diff of tests/golden/ is then part of the change, to be read).

The scenario echo (``scenario``) and the version string are left out of the
JSON compared: they restate the input, and new scenario fields would otherwise
fail every golden.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from lsfsim.config.model import load_model
from lsfsim.machine import Machine
from lsfsim.report.procfs import render_all
from lsfsim.report.sampler import Sampler
from lsfsim.report.summary import summary_tables
from lsfsim.scenario import Scenario, SenderSpec, SocketSpec, TrafficSpec
from lsfsim.trace import FtraceTracer, LifecycleRecorder, run_traced
from lsfsim.trace.lifecycle import render_table

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden"
REGEN = os.environ.get("LSFSIM_REGEN_GOLDEN") == "1"


def _sock(**kw: Any) -> SocketSpec:
    return SocketSpec(**{"filter": None, **kw})


def _cbr(rate: float, packets: int, size: int = 60, **kw: Any) -> TrafficSpec:
    return TrafficSpec(kind="cbr", rate=rate, packets=packets, size=size, **kw)


GIGABIT = {"hardware.nic.link_rate": 1e9}
# NET_RX raised again and again: __do_softirq hands over to ksoftirqd
RESTART_ONCE = {**GIGABIT, "kernel.max_softirq_restart": 1, "kernel.netdev_budget": 8}

# name -> (model, model overrides, scenario); each runs well under a second
RUNS: dict[str, tuple[str, dict[str, Any], Scenario]] = {
    # the lecture's nc transfer, cut short: filter "host ...", ACKs, one reader
    "lecture": ("testbed", {}, Scenario(traffic=TrafficSpec(kind="nc", bytes=150_000))),
    # more than the ring takes: rx_missed_errors, time_squeeze, full receive buffers
    "cbr_overload": ("testbed", GIGABIT, Scenario(
        traffic=_cbr(1_400_000, 3000), sockets=[_sock(rcvbuf=3000, reader_work=3e-6)])),
    "cbr_overload_reader_on_irq_cpu": ("testbed", GIGABIT, Scenario(
        traffic=_cbr(1_400_000, 2000, size=100), sockets=[_sock(cpu=0, reader_work=1e-6)])),
    "poisson_work_small_rcvbuf": ("testbed", {}, Scenario(
        traffic=TrafficSpec(kind="poisson", rate=30_000, packets=1500, size=400),
        sockets=[_sock(rcvbuf=6000, reader_work=40e-6, filter="udp")], seed=7)),
    "no_napi": ("testbed", {}, Scenario(traffic=_cbr(60_000, 1500, size=200), napi=False)),
    "no_napi_overload": ("testbed", GIGABIT, Scenario(traffic=_cbr(1_400_000, 2000), napi=False,
                                                       sockets=[_sock(rcvbuf=8192)])),
    "two_sockets_two_readers": ("testbed", {}, Scenario(
        traffic=_cbr(40_000, 1200, size=300),
        sockets=[_sock(readers=2, filter="udp"), _sock(readers=2, snaplen=96)])),
    "senders": ("testbed", {}, Scenario(
        traffic=_cbr(20_000, 600, size=100),
        senders=[SenderSpec(rate=20_000, count=300, size=80)])),
    "pcap_promisc": ("testbed", {}, Scenario(
        traffic=TrafficSpec(kind="pcap", pcap="traces/mixed.pcap", speed=0),
        sockets=[_sock(promisc=True, filter="tcp or arp")])),
    "testbed_vm": ("testbed-vm", {}, Scenario(
        model="testbed-vm", traffic=TrafficSpec(kind="nc", bytes=100_000))),
    "modern_onoff": ("modern", {}, Scenario(
        model="modern", traffic=TrafficSpec(kind="onoff", rate=120_000, packets=1500, size=700,
                                            on=2e-3, off=1e-3),
        sockets=[_sock(rcvbuf=20_000, filter="udp and len > 100")])),
    "ksoftirqd": ("testbed", RESTART_ONCE, Scenario(
        traffic=_cbr(1_400_000, 1500), sockets=[_sock(reader_work=2e-6)])),
    "alloc_failures_no_drain": ("testbed", {"hardware.nic.alloc_fail_rate": 0.05}, Scenario(
        traffic=_cbr(30_000, 2000, size=1000), drain=False, max_sim_seconds=0.02,
        sockets=[_sock(reader_work=20e-6)])),
}

# name -> (run, tracer options): ``lsfsim trace`` on a small run
TRACES: dict[str, tuple[str, dict[str, Any]]] = {
    "lecture": ("lecture_small", {}),
    "no_napi": ("no_napi_small", {}),
    "packets_functions": ("two_sockets_small", {"packets": [3, 4, 5],
                                                "functions": ["packet_rcv", "sys_recv*"]}),
    "window_overhead": ("lecture_small", {"window": (0.0005, 0.0012), "overhead": True}),
    "senders": ("senders_small", {}),
    "ksoftirqd": ("ksoftirqd_small", {}),
}
JSON_TRACES = ("packets_functions", "window_overhead")
SMALL: dict[str, tuple[str, dict[str, Any], Scenario]] = {
    "lecture_small": ("testbed", {}, Scenario(traffic=TrafficSpec(kind="nc", bytes=8000))),
    "no_napi_small": ("testbed", {}, Scenario(traffic=_cbr(80_000, 12, size=120), napi=False)),
    "two_sockets_small": ("testbed", {}, Scenario(
        traffic=_cbr(50_000, 10, size=150),
        sockets=[_sock(readers=2, filter="udp"), _sock(rcvbuf=1)])),
    "ksoftirqd_small": ("testbed", RESTART_ONCE, Scenario(
        traffic=_cbr(1_400_000, 40), sockets=[_sock(reader_work=2e-6)])),
    "senders_small": ("testbed", {}, Scenario(
        traffic=_cbr(20_000, 6, size=100), senders=[SenderSpec(rate=50_000, count=4)])),
}
LIFECYCLES: dict[str, tuple[str, dict[str, Any], Scenario, list[int]]] = {
    "lecture": ("testbed", {}, Scenario(traffic=TrafficSpec(kind="nc", bytes=20_000)),
                [0, 3, 9]),
    "overload": ("testbed", GIGABIT, Scenario(traffic=_cbr(1_400_000, 400),
                                              sockets=[_sock(rcvbuf=3000, reader_work=3e-6)]),
                 [0, 150, 300, 399]),
    "no_napi": ("testbed", GIGABIT, Scenario(traffic=_cbr(1_400_000, 600), napi=False,
                                             sockets=[_sock(filter="udp")]), [1, 200, 500]),
}


@pytest.fixture(autouse=True)
def _at_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)          # the pcap path is relative to the project


def _check(name: str, text: str) -> None:
    path = GOLDEN / name
    if REGEN:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return
    assert path.exists(), f"no golden file {name}: run with LSFSIM_REGEN_GOLDEN=1 once"
    expected = path.read_text()
    if text != expected:
        got = text.splitlines()
        want = expected.splitlines()
        for i, (a, b) in enumerate(zip(got, want, strict=False)):
            if a != b:
                pytest.fail(f"{name}: line {i + 1} differs:\n  golden: {b}\n  now:    {a}")
        pytest.fail(f"{name}: {len(got)} lines, golden has {len(want)}")


def _console_text(renderables: list[Any]) -> str:
    buf = io.StringIO()
    console = Console(file=buf, width=110, color_system=None, force_terminal=False,
                      legacy_windows=False)
    for r in renderables:
        console.print(r)
    return buf.getvalue()


def _model(name: str, overrides: dict[str, Any]) -> Any:
    model = load_model(name)
    return model.with_overrides(overrides) if overrides else model


def _machine(name: str, probes: list[Any] | None = None) -> Machine:
    model_name, overrides, scenario = RUNS[name]
    return Machine(_model(model_name, overrides), scenario, probes=probes)


@pytest.mark.parametrize("name", sorted(RUNS))
def test_result_summary_and_proc_views(name: str) -> None:
    sampler = Sampler(interval=200e-6, max_samples=64) if name in (
        "poisson_work_small_rcvbuf", "cbr_overload", "no_napi") else None
    machine = _machine(name, probes=[sampler] if sampler else None)
    result = machine.run()
    data = result.deterministic()
    data.pop("scenario")
    data.pop("lsfsim_version")
    _check(f"{name}.result.json", json.dumps(data, indent=1, sort_keys=True) + "\n")
    _check(f"{name}.summary.txt", _console_text(summary_tables(result)))
    _check(f"{name}.proc.txt", render_all(result) + "\n")
    if sampler is not None:
        sampler.finish()
        _check(f"{name}.sampler.json", json.dumps(sampler.to_dict(), sort_keys=True) + "\n")


@pytest.mark.parametrize("name", sorted(TRACES))
def test_ftrace_text_and_json(name: str) -> None:
    run, options = TRACES[name]
    model_name, overrides, scenario = SMALL[run]
    tracer = FtraceTracer(**options)
    run_traced(_model(model_name, overrides), scenario, tracer=tracer)
    text, js = io.StringIO(), io.StringIO()
    tracer.write_text(text)
    tracer.write_json(js)
    _check(f"trace_{name}.txt", text.getvalue())
    if name in JSON_TRACES:
        _check(f"trace_{name}.jsonl", js.getvalue())


@pytest.mark.parametrize("name", sorted(LIFECYCLES))
def test_lifecycle_tables(name: str) -> None:
    model_name, overrides, scenario, frames = LIFECYCLES[name]
    model = _model(model_name, overrides)
    recorder = LifecycleRecorder(frames)
    tracer = FtraceTracer(activity=True, calls=False)
    run_traced(model, scenario, tracer=tracer, recorder=recorder)
    tables = [render_table(recorder[i]) for i in frames if i in recorder]
    busy = tracer.busy_intervals()
    activity = "".join(f"{cpu} {ctx}: {len(iv)} intervals, {sum(b - a for a, b in iv)!r}\n"
                       for (cpu, ctx), iv in sorted(busy.items()))
    _check(f"lifecycle_{name}.txt", _console_text(tables) + activity)
