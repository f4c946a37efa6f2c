"""``lsfsim study``: each ready study's shape follows from the model's costs and rules."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from lsfsim.cli.main import app
from lsfsim.config.model import load_model
from lsfsim.study.studies import (
    LINK_MAX_PPS,
    Runner,
    _buffers_scenario,
    bisect_smallest,
    largest_filter,
    run_study,
)

runner = CliRunner()


def _cost(name: str) -> tuple[float, float]:
    c = load_model("testbed").kernel.costs[name]
    return c.fixed, c.per_insn


def test_attach_is_linear_in_length_up_to_optmem(tmp_path):
    df, table, sentence = run_study("attach", str(tmp_path), jobs=1, quick=True)
    assert (tmp_path / "attach.parquet").exists() and (tmp_path / "attach.png").exists()
    top = largest_filter("testbed")
    model = load_model("testbed")
    # sock_kmalloc: 8n + sizeof(struct sk_filter) must stay below optmem_max
    sizes = model.kernel.sizes
    assert 8 * top + sizes.sizeof_sk_filter < sizes.optmem_max \
        <= 8 * (top + 1) + sizes.sizeof_sk_filter
    refused = df[df["sockets.0.attach_errno"].notna()]
    assert list(refused["filter_insns"]) == [top + 1]
    assert refused["sockets.0.attach_errno"].iloc[0] == "ENOMEM"
    attach_fixed, attach_insn = _cost("sk_attach_filter")
    chk_fixed, chk_insn = _cost("sk_chk_filter")
    setsockopt = model.kernel.costs["sys_setsockopt"].fixed
    for _, row in df[df["sockets.0.attach_errno"].isna()].iterrows():
        n = row["filter_insns"]
        expected = setsockopt + attach_fixed + chk_fixed + n * (attach_insn + chk_insn)
        assert row["sys_setsockopt_us"] == pytest.approx(expected * 1e6)
        # the tracer's CPU-inside figure is the JSON's self times of the call tree
        json_sum = sum(row[f"functions.{f}.seconds"] for f in
                       ("sys_setsockopt", "sk_attach_filter", "sk_chk_filter"))
        assert row["sys_setsockopt_cpu_us"] == pytest.approx(json_sum * 1e6)
    assert "ENOMEM" in sentence and str(top) in sentence


def test_snaplen_costs_in_recvfrom_not_in_packet_rcv(tmp_path):
    df, _, _ = run_study("snaplen", str(tmp_path), jobs=2, quick=True)
    # an idle reader: every frame takes packet_rcv's accepted path, at any snaplen
    idle_rcv = df[df["reader"] == "idle"]["packet_rcv_us"]
    assert idle_rcv.max() - idle_rcv.min() < 1e-9
    # a slow one: the mean mixes the accepted and the dropped path, whose counts move by
    # a frame or two with the timing
    slow_rcv = df[df["reader"] == "slow"]["packet_rcv_us"]
    assert slow_rcv.max() - slow_rcv.min() < 0.01 * slow_rcv.max()
    idle = df[df["reader"] == "idle"].set_index("snaplen")
    assert idle.loc[96, "sys_recvfrom_cpu_us"] < idle.loc[1514, "sys_recvfrom_cpu_us"]
    slow = df[df["reader"] == "slow"]["sockets.0.tp_drops"]
    assert slow.min() > 0 and slow.max() - slow.min() <= 0.02 * slow.max()
    assert (df[df["reader"] == "idle"]["sockets.0.tp_drops"] == 0).all()


def test_recvfrom_does_not_run_the_filter(tmp_path):
    df, _, _ = run_study("recvfrom", str(tmp_path), jobs=2, quick=True)
    assert df["sys_recvfrom_cpu_us"].max() - df["sys_recvfrom_cpu_us"].min() < 1e-9
    assert df["sockets.0.delivered"].nunique() == 1          # same verdicts at every length
    _, per_insn = _cost("sk_run_filter")
    first, last = df.iloc[0], df.iloc[-1]
    grown = (last["packet_rcv_us"] - first["packet_rcv_us"]) * 1e-6
    assert grown == pytest.approx((last["filter_insns"] - first["filter_insns"]) * per_insn,
                                  rel=1e-6)


def test_livelock_without_napi_collapses_on_the_vm(tmp_path):
    df, table, _ = run_study("livelock", str(tmp_path), jobs=2, quick=True)
    napi = df[df["napi"]]
    # NAPI on both models: every frame offered in the window reaches the reader
    assert (napi["sockets.0.delivered"] >= 0.99 * napi["offered"]).all()
    vm = table[(table["model"] == "testbed-vm") & ~table["napi"]].iloc[0]
    assert vm["at_offered_pps"] < LINK_MAX_PPS and vm["of_peak"] < 0.9
    for _, part in df.groupby(["model", "napi"]):
        assert part["interrupts_per_frame"].iloc[-1] <= part["interrupts_per_frame"].iloc[0]


def test_bisection_finds_the_smallest_rcvbuf():
    runner_ = Runner(jobs=1, quick=True)
    df = bisect_smallest(runner_, "search-rcvbuf", [8000.0], 256, 2 ** 20,
                         lambda rate, v: _buffers_scenario(rate, 0.05, rcvbuf=v),
                         lambda row: row["sockets.0.tp_drops"] == 0, geometric=True,
                         precision=0.05)
    answer = df[df["smallest"]]
    assert len(answer) == 1 and answer["sockets.0.tp_drops"].iloc[0] == 0
    below = df[df["rcvbuf"] < answer["rcvbuf"].iloc[0]]
    best_bad = below["rcvbuf"].max()
    assert below.loc[below["rcvbuf"] == best_bad, "sockets.0.tp_drops"].iloc[0] > 0
    assert answer["rcvbuf"].iloc[0] - best_bad <= max(1, 0.05 * answer["rcvbuf"].iloc[0])


def test_study_command_writes_csv_and_prints_the_conclusion(tmp_path):
    res = runner.invoke(app, ["study", "attach", "--quick", "--out", str(tmp_path),
                              "--format", "csv", "-j", "1"])
    assert res.exit_code == 0, res.output
    assert "ENOMEM" in res.output
    df = pd.read_csv(tmp_path / "attach.csv", skiprows=1)
    assert "sys_setsockopt_us" in df.columns


@pytest.mark.parametrize("args, message", [
    (["nosuch"], "no such study"),
    (["attach", "--out", "/nonexistent/dir"], "no such directory"),
    (["attach", "--format", "xls"], "--format xls"),
    (["attach", "-j", "2", "--scheduler", "tcp://127.0.0.1:9"], "exclude each other"),
])
def test_study_bad_input(args, message):
    res = runner.invoke(app, ["study", *args])
    assert res.exit_code == 2
    assert res.output.count("\n") == 1 and message in res.output


@pytest.mark.slow
def test_buffers_quick(tmp_path):
    _, table, sentence = run_study("buffers", str(tmp_path), jobs=2, quick=True)
    assert table["smallest_rcvbuf"].is_monotonic_increasing
    assert "truesize" in sentence


@pytest.mark.slow
@pytest.mark.parametrize("name", ["attach", "livelock", "recvfrom", "snaplen", "buffers"])
def test_full_study(tmp_path, name):
    df, _, _ = run_study(name, str(tmp_path), quick=False)
    assert (df["status"] == "ok").all()


def test_every_study_is_documented_with_its_figure():
    from pathlib import Path

    from lsfsim.study.studies import STUDIES

    docs = Path(__file__).resolve().parents[2] / "docs"
    text = (docs / "studies.md").read_text()
    for name in STUDIES:
        assert f"<!-- study {name} -->" in text and f"](studies/{name}.png)" in text, name
        assert (docs / "studies" / f"{name}.png").read_bytes()[:4] == b"\x89PNG", name
