"""``lsfsim sweep`` and ``sweep()``: rows equal lone runs, local and cluster tables agree,
results survive interruptions, bad input is one line and never damages --out."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from lsfsim.cli.main import app
from lsfsim.machine import run
from lsfsim.scenario import Scenario, SocketSpec, TrafficSpec
from lsfsim.study.engine import Outcome, run_points
from lsfsim.study.point import WALL_CLOCK, flatten
from lsfsim.study.sweep import sweep

runner = CliRunner()
BASE = ["--traffic", "cbr", "--count", "300", "--size", "60", "--reader-work", "30us"]
# wall-clock figures differ between two runs of one point: compared apart
VARIABLE = list(WALL_CLOCK)


def _sweep(*args: str):
    return runner.invoke(app, ["sweep", *BASE, "-q", *args])


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if a is None or (isinstance(a, float) and math.isnan(a)):
        return b is None or (isinstance(b, float) and math.isnan(b))
    return a == b


def test_a_row_is_the_flattened_json_of_lsfsim_run(tmp_path):
    out = tmp_path / "s.parquet"
    res = _sweep("--vary", "rate=40000,120000", "--vary", "rcvbuf=600,60000", "--seed", "7",
                 "--repeat", "2", "--jobs", "2", "--out", str(out))
    assert res.exit_code == 0, res.output
    df = pd.read_parquet(out)
    assert len(df) == 8 and list(df.columns[:5]) == ["rate", "rcvbuf", "seed", "status", "error"]
    assert set(df["seed"]) == {7, 8} and (df["status"] == "ok").all()
    row = df[(df["rate"] == 120000) & (df["rcvbuf"] == 600) & (df["seed"] == 8)].iloc[0]
    alone = runner.invoke(app, ["run", *BASE, "--rate", "120000", "--rcvbuf", "600",
                                "--seed", "8", "-q", "--json", "-"])
    flat = flatten(json.loads(alone.output))
    assert flat["sockets.0.rcvbuf_drops"] > 0            # the point is not a trivial one
    for key, value in flat.items():
        if key not in VARIABLE:
            assert _same(row[key], value), key
    assert set(flat) <= set(df.columns)


def test_python_api_with_a_scenario(tmp_path):
    base = Scenario(traffic=TrafficSpec(kind="cbr", rate=100_000, packets=300, size=60),
                    sockets=[SocketSpec(filter=None, reader_work=30e-6)])
    df = sweep(base, {"rcvbuf": [600, 60000], "reader-work": ["0", "30us"]}, jobs=1)
    assert list(df["rcvbuf"]) == [600, 600, 60000, 60000]
    alone = run(Scenario(traffic=base.traffic, sockets=[SocketSpec(filter=None, rcvbuf=600)]))
    row = df.iloc[0]
    for key, value in flatten(alone.deterministic()).items():
        assert _same(row[key], value), key


def test_local_cluster_table_equals_the_local_one():
    distributed = pytest.importorskip("distributed")
    params = {"rate": [30000, 90000, 150000], "rcvbuf": [600, 60000]}
    base = {"traffic": "cbr", "count": 200, "size": 60, "reader-work": "30us"}
    local = sweep(base, params, jobs=1)
    # the workers are new interpreters: they import this checkout's lsfsim
    root = str(Path(__file__).resolve().parents[2])
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None, env={"PYTHONPATH": root}) as cluster:
        remote = sweep(base, params, scheduler=cluster.scheduler_address)
    assert (remote["status"] == "ok").all(), list(remote["error"])
    pd.testing.assert_frame_equal(local.drop(columns=VARIABLE), remote.drop(columns=VARIABLE))


def test_unreachable_scheduler_is_one_line(tmp_path):
    out = tmp_path / "s.csv"
    res = _sweep("--vary", "rate=1000,2000", "--scheduler", "tcp://127.0.0.1:9", "--out",
                 str(out))
    assert res.exit_code == 2
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and "tcp://127.0.0.1:9: cannot reach the Dask scheduler" in lines[0]
    assert not out.exists() and not (tmp_path / "s.csv.journal").exists()


def test_resume_runs_only_the_missing_points(tmp_path):
    out = tmp_path / "s.csv"
    assert _sweep("--vary", "rate=20000,60000", "--out", str(out), "-j", "1").exit_code == 0
    first = pd.read_csv(out, skiprows=1)
    res = _sweep("--vary", "rate=20000,60000,100000", "--out", str(out), "--resume", "-j", "1")
    assert res.exit_code == 0, res.output
    second = pd.read_csv(out, skiprows=1)
    assert list(second["rate"]) == [20000, 60000, 100000]
    # the kept rows were not run again: even their wall-clock figures are the same
    pd.testing.assert_frame_equal(first, second.iloc[:2], check_dtype=False)
    assert not (tmp_path / "s.csv.journal").exists()


@pytest.mark.parametrize("change", [["--rcvbuf", "9000"], ["--set", "kernel.rmem_max=1MiB"],
                                    ["--vary", "rcvbuf=600"]])
def test_resume_of_another_sweep_is_refused_and_the_file_kept(tmp_path, change):
    out = tmp_path / "s.parquet"
    assert _sweep("--vary", "rate=20000,60000", "--out", str(out), "-j", "1").exit_code == 0
    before = out.read_bytes()
    res = _sweep("--vary", "rate=20000,60000", *change, "--out", str(out), "--resume")
    assert res.exit_code == 2, res.output
    line = res.output.strip()
    assert "\n" not in line and "made by a different sweep" in line and str(out) in line
    assert out.read_bytes() == before


def test_a_failing_point_is_recorded_not_fatal(tmp_path):
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"this is not a capture file at all")
    good = tmp_path / "good.pcap"
    from scapy.all import Ether, wrpcap

    wrpcap(str(good), [Ether(dst="ff:ff:ff:ff:ff:ff") / (b"x" * 60)] * 3)
    out = tmp_path / "s.csv"
    res = runner.invoke(app, ["sweep", "-q", "--vary", f"pcap={bad},{good}", "--out", str(out)])
    assert res.exit_code == 0, res.output
    df = pd.read_csv(out, skiprows=1)
    assert list(df["status"]) == ["error", "ok"]
    assert isinstance(df["error"][0], str) and "\n" not in df["error"][0]
    assert df["offered"][1] == 3


def test_an_interrupted_sweep_keeps_what_finished_and_resumes(tmp_path):
    from lsfsim.study.params import Vary
    from lsfsim.study.sweep import plan_from_options, run_plan

    options = {**_defaults(), "traffic": "cbr", "count": 200}
    plan = plan_from_options(options, {}, [Vary("rate", (1000.0, 2000.0, 3000.0, 4000.0))])
    out = tmp_path / "s.parquet"

    def stop_after_two(row, done, total):
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_plan(plan, jobs=1, out=str(out), on_row=stop_after_two)
    assert list(pd.read_parquet(out)["rate"]) == [1000.0, 2000.0]
    seen = []
    df = run_plan(plan, jobs=1, out=str(out), resume=True,
                  on_row=lambda row, done, total: seen.append(row["rate"]))
    assert seen == [3000.0, 4000.0] and list(df["rate"]) == [1000.0, 2000.0, 3000.0, 4000.0]


def test_resume_reads_the_journal_of_a_killed_sweep(tmp_path):
    """A journal left by a killed process holds rows the table does not: they are kept."""
    from lsfsim.study.params import Vary
    from lsfsim.study.sweep import plan_from_options, run_plan
    from lsfsim.study.table import SweepFile

    options = {**_defaults(), "traffic": "cbr", "count": 200}
    plan = plan_from_options(options, {}, [Vary("rate", (1000.0, 2000.0))])
    out = tmp_path / "s.csv"
    done = run_plan(plan, jobs=1)
    journal = SweepFile(out, plan.definition)
    journal.start()
    journal.append(done.iloc[0].to_dict())
    journal.close()
    with open(journal.journal, "a") as fp:
        fp.write('{"rate": 2000.0, "se')                  # the write the kill cut short
    seen = []
    df = run_plan(plan, jobs=1, out=str(out), resume=True,
                  on_row=lambda row, n, total: seen.append(row["rate"]))
    assert seen == [2000.0] and len(df) == 2


def _defaults():
    from lsfsim.study.params import run_defaults

    return run_defaults()


@pytest.mark.parametrize("args, message", [
    (["--vary", "bogus=1,2"], "--vary bogus: no such run option"),
    (["--vary", "rcvbuf=1,abc"], "--vary rcvbuf: 'abc' is not an integer"),
    (["--vary", "rate=9..1+1"], "an empty range"),
    (["--vary", "kernel.rmem_max=1MiB,lots"], "kernel.rmem_max: expected a size"),
    (["--vary", "model=testbed,nosuchmodel"], "nosuchmodel"),
    (["--vary", "filter=udp,not a filter ((("], "not a filter"),
    (["--vary", "rate=1,2", "--out", "OUT.xlsx"], "unknown extension '.xlsx'"),
    (["--vary", "rate=1,2", "--plot", "p.png", "--x", "rcvbuf", "--y", "offered"],
     "--x/--hue rcvbuf: not a varied parameter"),
    (["--vary", "rate=1,2", "--plot", "p.bmpx", "--x", "rate", "--y", "offered"],
     "unknown image extension"),
    (["--vary", "rate=1,2", "--jobs", "2", "--scheduler", "tcp://127.0.0.1:9"],
     "--jobs and --scheduler exclude each other"),
    (["--vary", "rate=1,2", "--resume"], "--resume needs --out"),
])
def test_bad_input_is_one_line_and_out_is_untouched(tmp_path, args, message):
    out = tmp_path / "keep.csv"
    out.write_text("precious\n")
    args = [a.replace("OUT", str(tmp_path / "t")) for a in args]
    if "--out" not in args and "--resume" not in args:
        args += ["--out", str(out)]
    elif "--resume" in args:
        pass
    res = _sweep(*args)
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lsfsim: error: "), res.output
    assert message in lines[0]
    assert out.read_text() == "precious\n"
    assert sorted(os.listdir(tmp_path)) == ["keep.csv"]


def test_plot_lines_and_heatmap(tmp_path):
    from lsfsim.study.plot import plot_sweep

    df = sweep({"traffic": "cbr", "count": 200, "size": 60, "reader-work": "30us"},
               {"rate": [20000, 140000], "rcvbuf": [600, 60000]}, repeat=2, jobs=1)
    _, lines = plot_sweep(df, ["rate"], "sockets.0.tp_drops", varied=["rate", "rcvbuf"])
    assert set(lines["series"]) == {"rcvbuf=600", "rcvbuf=60000"}
    xs, means, _ = lines["series"]["rcvbuf=600"]
    expected = df[df["rcvbuf"] == 600].groupby("rate")["sockets.0.tp_drops"].mean()
    assert list(xs) == [20000, 140000] and means == list(expected)
    _, heat = plot_sweep(df, ["rate", "rcvbuf"], "sockets.0.tp_drops")
    assert heat["heatmap"].shape == (2, 2)
    png = tmp_path / "p.png"
    res = _sweep("--vary", "rate=20000,140000", "--vary", "rcvbuf=600,60000", "--plot", str(png),
                 "--x", "rate", "--x", "rcvbuf", "--y", "sockets.0.tp_drops", "-j", "1")
    assert res.exit_code == 0, res.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_engine_records_errors_and_a_dead_worker():
    outcomes: list[Outcome] = []
    points = [_Ok(1), _Fails(), _Ok(3)]
    result = run_points(points, jobs=1, on_result=outcomes.append)
    assert [o.value for o in result] == [1, None, 3]
    assert result[1].error == "RuntimeError: no luck"
    died = run_points([_Dies()], jobs=2)
    assert died[0].error is not None and "worker process died" in died[0].error
    mixed = run_points([_Ok(5), _Ok(6)], jobs=2)
    assert [o.value for o in mixed] == [5, 6]


class _Ok:
    def __init__(self, v: int) -> None:
        self.v = v

    def __call__(self) -> int:
        return self.v


class _Fails:
    def __call__(self) -> None:
        raise RuntimeError("no luck")


class _Dies:
    def __call__(self) -> None:
        os._exit(3)


@pytest.mark.slow
def test_ctrl_c_keeps_the_finished_rows(tmp_path):
    """The real thing: SIGINT to `lsfsim sweep --jobs 2` once a row is in the journal."""
    import signal
    import subprocess
    import sys
    import time

    root = Path(__file__).resolve().parents[2]
    out = tmp_path / "s.parquet"
    args = [sys.executable, "-m", "lsfsim", "sweep", "--traffic", "cbr", "--size", "60",
            "--count", "15000", "--vary", "rate=10000..80000+10000", "--out", str(out),
            "-j", "2", "-q"]
    env = {**os.environ, "PYTHONPATH": str(root)}
    proc = subprocess.Popen(args, cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
    journal = tmp_path / "s.parquet.journal"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if journal.exists() and len(journal.read_text().splitlines()) >= 2:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the sweep ended before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and err.strip() == "lsfsim: error: interrupted"
    kept = pd.read_parquet(out)
    assert 1 <= len(kept) < 8 and (kept["status"] == "ok").all()
    assert not journal.exists()
    done = subprocess.run([*args, "--resume"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    full = pd.read_parquet(out)
    assert list(full["rate"]) == [float(r) for r in range(10000, 80001, 10000)]
    pd.testing.assert_frame_equal(full[full["rate"].isin(kept["rate"])].reset_index(drop=True),
                                  kept.reset_index(drop=True), check_dtype=False)
