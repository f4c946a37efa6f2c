"""Every field of the model schema acts: changing it changes a small run's result.

The fields are found by walking the pydantic schema (every cost key and each of its
terms included), so a field added later is tested too.  Most act on one small run
that uses most of the machine (the lecture's transfer with ACKs, two taps, a filter,
promiscuous mode, SO_RCVBUF, a sender); the others need the run in which they can
act, named in ``SCENARIOS`` with the reason.  A field that no run can show must not
exist in the schema.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel
from typer.testing import CliRunner

from lsfsim.config import load_model
from lsfsim.config.costs import COST_KEYS, PER_BYTE, PER_INSN
from lsfsim.config.model import ModelError
from lsfsim.config.schema import Cost, Model
from lsfsim.errors import ScenarioError
from lsfsim.machine import Machine
from lsfsim.scenario import Scenario, SenderSpec, SocketSpec, TrafficSpec
from lsfsim.trace.ftrace import FtraceTracer

# Set by the loader (the file a model came from), not a figure of the machine.
NOT_MODEL_FIELDS = {"source"}


def schema_fields(cls: type[BaseModel] = Model, prefix: str = "") -> list[str]:
    """Dotted paths of every field, with one path per cost key and term."""
    out: list[str] = []
    for name, field in cls.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            out.extend(schema_fields(ann, f"{prefix}{name}."))
        elif name == "costs":
            for key in COST_KEYS:
                out.append(f"{prefix}costs.{key}.fixed")
                if key in PER_BYTE:
                    out.append(f"{prefix}costs.{key}.per_byte")
                if key in PER_INSN:
                    out.append(f"{prefix}costs.{key}.per_insn")
        elif prefix + name not in NOT_MODEL_FIELDS:
            out.append(prefix + name)
    return out


GIGABIT = {"hardware.nic.link_rate": 1e9}


def _sock(**kw: Any) -> SocketSpec:
    return SocketSpec(**{"filter": None, "promisc": False, **kw})


def _cbr(rate: float, packets: int, size: int = 60) -> TrafficSpec:
    return TrafficSpec(kind="cbr", rate=rate, packets=packets, size=size)


# name -> (overrides of the testbed model, scenario)
RUNS: dict[str, tuple[dict[str, Any], Scenario]] = {
    "base": ({}, Scenario(traffic=TrafficSpec(kind="nc", bytes=12_000),
                          sockets=[_sock(filter="tcp", promisc=True, rcvbuf=100_000),
                                   _sock()],
                          senders=[SenderSpec(rate=50_000, count=10, size=80)])),
    # more frames than the ring holds while the softirq is busy
    "overload": (GIGABIT, Scenario(traffic=_cbr(1_400_000, 600),
                                   sockets=[_sock(rcvbuf=3000, reader_work=3e-6)])),
    # the same, net_rx_action leaving work every run: __do_softirq restarts, then ksoftirqd
    "overload_small_budget": ({**GIGABIT, "kernel.netdev_budget": 8},
                              Scenario(traffic=_cbr(1_400_000, 600),
                                       sockets=[_sock(rcvbuf=3000, reader_work=3e-6)])),
    # the pre-NAPI driver: netif_rx's backlog and process_backlog
    "no_napi": (GIGABIT, Scenario(traffic=_cbr(1_400_000, 1500), napi=False,
                                  sockets=[_sock(rcvbuf=8192)])),
    # short frames: the copybreak copy into an skb sized by NET_IP_ALIGN
    "short_frames": ({}, Scenario(traffic=_cbr(10_000, 20, size=60),
                                  sockets=[_sock(rcvbuf=600)])),
    # a sender faster than the wire: the TX ring, the qdisc and the send buffer fill
    "fast_sender": ({}, Scenario(traffic=_cbr(1000, 2), sockets=[_sock()],
                                 senders=[SenderSpec(rate=1e6, count=300, size=1514)])),
    # SO_RCVBUF below the minimum
    "tiny_rcvbuf": ({}, Scenario(traffic=_cbr(10_000, 20), sockets=[_sock(rcvbuf=10)])),
    # frames to other stations, on an interface that is not promiscuous
    "not_for_us": ({}, Scenario(traffic=TrafficSpec(kind="pcap", pcap="traces/mixed.pcap",
                                                    speed=0), sockets=[_sock()])),
    # 12 ms of traffic: three periodic ticks at HZ 250 (the tick's costs)
    "ticks": ({}, Scenario(traffic=_cbr(10_000, 120), sockets=[_sock()])),
    # a 3.2 kernel counts skb_shared_info in truesize
    "linux_3_2": ({"kernel.version": "3.2"}, Scenario(traffic=_cbr(10_000, 20),
                                                      sockets=[_sock()])),
}

# field -> (the changed value, the run that shows it, why that run); the rest use
# ("base") and a generic change (see _changed)
SCENARIOS: dict[str, tuple[Any, str]] = {
    "name": ("another", "base"),
    "hardware.nic.mac": ("00:0c:29:4a:7b:01", "not_for_us"),   # most of mixed.pcap's frames
    "hardware.nic.rx_ring": (64, "overload"),
    "hardware.nic.tx_ring": (4, "fast_sender"),
    "hardware.nic.rx_copybreak": (1514, "base"),
    "hardware.cpu.irq_affinity": (1, "base"),
    "kernel.version": ("3.2", "base"),
    "kernel.arch": ("x86_64", "base"),
    "kernel.hz": (1000, "no_napi"),
    **{f"kernel.costs.{fn}.fixed": (5e-6, "ticks") for fn in (
        "smp_apic_timer_interrupt", "do_timer", "update_process_times", "scheduler_tick",
        "run_timer_softirq")},
    "kernel.netdev_budget": (8, "overload"),
    "kernel.napi_weight": (2, "overload"),
    "kernel.netdev_max_backlog": (100, "no_napi"),
    "kernel.dev_weight": (8, "no_napi"),
    "kernel.max_softirq_restart": (1, "overload_small_budget"),
    "kernel.wmem_default": (4000, "fast_sender"),
    "kernel.sock_min_rcvbuf": (4000, "tiny_rcvbuf"),
    "kernel.optmem_max": (100, "base"),
    "kernel.tx_queue_len": (10, "fast_sender"),
    "kernel.skb.sizeof_skb_shared_info": (512, "linux_3_2"),
    "kernel.skb.net_ip_align": (40, "short_frames"),
    "kernel.costs.netif_rx.fixed": (1e-6, "no_napi"),
    "kernel.costs.process_backlog.fixed": (1e-5, "no_napi"),
}
# Fields whose effect is outside a run's result, checked by their own test below.
OWN_TESTS = {"description", "hardware.nic.type", "kernel.costs.tracer_overhead.fixed"}


def _changed(path: str, value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, float):
        return value * 3 + (1e-9 if ".per_" in path else 1e-7)
    if isinstance(value, int):
        return value * 2
    if value is None:                      # a sysctl left to its derived default
        return 50_000
    raise AssertionError(f"{path}: no generic change for {value!r}; add it to SCENARIOS")


def _get(data: dict[str, Any], path: str) -> Any:
    for key in path.split("."):
        data = data[key]
    return data


def _outcome(model: Model, run: str) -> Any:
    overrides, scenario = RUNS[run]
    m = model.with_overrides(overrides) if overrides else model
    try:
        return Machine(m, scenario.model_copy(deep=True)).run().deterministic()
    except ScenarioError as exc:           # a refusal is an effect too (optmem_max)
        return str(exc)


_REFERENCE: dict[str, Any] = {}


def _reference(run: str) -> Any:
    if run not in _REFERENCE:
        _REFERENCE[run] = _outcome(load_model("testbed"), run)
    return _REFERENCE[run]


def test_the_walk_finds_every_documented_field():
    fields = schema_fields()
    assert "kernel.skb.pkt_buf_skb" in fields and "kernel.costs.memcpy.per_byte" in fields
    assert "kernel.costs.packet_rcv.per_byte" not in fields      # refused by the schema
    assert set(SCENARIOS) | OWN_TESTS <= set(fields)


@pytest.mark.parametrize("path", [p for p in schema_fields() if p not in OWN_TESTS])
def test_changing_the_field_changes_the_result(path):
    testbed = load_model("testbed")
    value, run = SCENARIOS.get(path, (None, "base"))
    if path not in SCENARIOS:
        value = _changed(path, _get(testbed.to_dict(), path))
    changed = testbed.with_overrides({path: value})
    assert _outcome(changed, run) != _reference(run), f"{path} = {value!r} changed nothing"


def test_the_description_is_what_lsfsim_models_lists(tmp_path, monkeypatch):
    from pathlib import Path

    text = Path(load_model("testbed").source).read_text()
    (tmp_path / "mine.toml").write_text(text.replace('name = "testbed"', 'name = "mine"')
                                        .replace('description = "', 'description = "MINE '))
    monkeypatch.setenv("LSFSIM_MODELS", str(tmp_path))
    from lsfsim.cli.main import app

    out = CliRunner().invoke(app, ["models"]).stdout
    assert any(line.startswith("mine") and "MINE Core 2 Duo" in line
               for line in out.splitlines())


def test_the_nic_type_has_one_value_and_refuses_others():
    with pytest.raises(ModelError, match="only the 'pcnet32' NIC is modelled"):
        load_model("testbed").with_overrides({"hardware.nic.type": "e1000"})


def test_tracer_overhead_acts_on_the_emitted_durations_only():
    def durations(overhead: float) -> str:
        m = load_model("testbed").with_overrides({"kernel.costs.tracer_overhead": overhead})
        tracer = FtraceTracer(overhead=True)
        result = Machine(m, Scenario(traffic=_cbr(10_000, 3), sockets=[_sock()]),
                         tracer=tracer, probes=[tracer]).run()
        assert result["sim_seconds"] == base_seconds     # never in the simulated time
        return "".join(tracer.iter_text())

    base_seconds = Machine(load_model("testbed"),
                           Scenario(traffic=_cbr(10_000, 3),
                                    sockets=[_sock()])).run()["sim_seconds"]
    assert durations(0.0) != durations(1e-6)


def test_a_cost_term_that_could_not_act_is_refused():
    with pytest.raises(ModelError, match="packet_rcv has no per_byte term"):
        load_model("testbed").with_overrides(
            {"kernel.costs.packet_rcv": Cost(fixed=1e-7, per_byte=1e-9)})
