"""Runs under load: per-frame fates against the machine's counters, the checks, parallel runs."""

from __future__ import annotations

import dataclasses
from array import array
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lsfsim.pcapio import iter_pcap
from lsfsim.regress.fates import (
    FILTERED,
    QUEUED,
    RCVBUF,
    RX_MISSED,
    UNSEEN,
    accepted_losses,
)
from lsfsim.regress.runner import evaluate, prepare, run_item, run_prepared, select
from lsfsim.regress.suite import load_suite
from lsfsim.regress.traffic import as_received
from tests.regress.helpers import TRACES, write_suite

LOSSY = """\
[suite]
model = "testbed-vm"
traffic = ["mixed.pcap", "lecture-nc-head.pcap"]
loads = [0, 1]
rx_ring = 4
rcvbuf = 3000
reader_work = "40us"

[[filter]]
name = "udp"
expr = "udp"
snaplen = 64
max_drop_ratio = { 1 = 0.0, 0 = 0.9 }

[[filter]]
name = "all"
expr = ""
max_drop_ratio = 0.0
max_p99_latency = "100us"
"""


@pytest.fixture(scope="module")
def lossy(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lossy")
    path = write_suite(tmp, LOSSY, captures=("mixed.pcap", "lecture-nc-head.pcap"))
    prepared = prepare(load_suite(path))
    runs = [(item, run_item(item)) for item in prepared.items()]
    yield prepared, runs
    prepared.close()


def test_joined_captures_keep_each_frame_and_its_origin(lossy) -> None:
    prepared, _ = lossy
    traffic = prepared.traffic
    assert traffic.count == 700 and len(prepared.items()) == 4
    originals = [as_received(r.data, r.wirelen) for name in ("mixed.pcap", "lecture-nc-head.pcap")
                 for r in iter_pcap(TRACES / name)]
    assert list(traffic.frames()) == originals
    assert traffic.where(0) == ("mixed.pcap", 0) and traffic.where(499) == ("mixed.pcap", 499)
    assert traffic.where(500) == ("lecture-nc-head.pcap", 0)
    # the replay keeps each file's timing, the second one starting where the first ended
    times = [r.ts for r in iter_pcap(traffic.replay)]
    first = [r.ts for r in iter_pcap(TRACES / "mixed.pcap")]
    assert times[499] == pytest.approx(first[-1] - first[0], abs=1e-9)
    assert times[500] == pytest.approx(times[499], abs=1e-9)


def test_fates_agree_with_the_machines_counters(lossy) -> None:
    _, runs = lossy
    for _item, f in runs:
        fate = f.fate
        assert fate is not None and len(fate) == f.offered == 700
        assert fate.count(UNSEEN) == 0                        # every frame ended somewhere
        assert fate.count(RX_MISSED) == f.rx_missed_errors
        reached = fate.count(FILTERED) + fate.count(RCVBUF) + fate.count(QUEUED)
        assert reached == f.seen - f.seen_outgoing
        assert fate.count(FILTERED) <= f.filtered <= fate.count(FILTERED) + f.seen_outgoing
        assert fate.count(QUEUED) <= f.captured <= fate.count(QUEUED) + f.seen_outgoing
    assert any(f.rx_missed_errors for _, f in runs)           # the ring did overflow


def test_lost_accepted_frames_by_hand_and_the_counter_estimate(lossy) -> None:
    prepared, runs = lossy
    for item, f in runs:
        accepted = prepared.plan(item.filter).caplen
        exact = accepted_losses(f, accepted)
        assert exact.exact
        by_hand = sum(1 for i, kept in enumerate(accepted) if kept and f.fate[i] != QUEUED)
        assert exact.lost == by_hand == sum(exact.places.values())
        assert exact.places.get("RX ring", 0) <= f.rx_missed_errors
        assert exact.places.get("rcvbuf", 0) <= f.rcvbuf_drops
        # without fates: accepts - captured, a lower bound within seen_outgoing of the truth
        estimate = accepted_losses(dataclasses.replace(f, fate=None, caplen=None), accepted)
        assert estimate.lost <= exact.lost <= estimate.lost + f.seen_outgoing
    udp_asap = next(f for item, f in runs if item.name == "udp[asap]")
    places = accepted_losses(udp_asap, prepared.plan("udp").caplen).places
    assert places.get("RX ring", 0) > 0 and places.get("rcvbuf", 0) > 0


def test_checks_of_each_item(lossy) -> None:
    prepared, runs = lossy
    outcomes = {item.name: evaluate(prepared, item, f) for item, f in runs}
    udp0, udp1 = outcomes["udp[asap]"], outcomes["udp[1x]"]
    assert udp0.accepts == udp1.accepts == prepared.plan("udp").accepts > 0
    assert 0 < udp0.ratio <= 0.9 and udp0.passed, udp0.failures
    all0 = outcomes["all[asap]"]
    assert not all0.passed
    drops = [m for m in all0.failures if m.startswith("drops: ")]
    assert drops and f"of {all0.accepts} accepted frames lost" in drops[0]
    assert "RX ring" in drops[0] and "allowed 0.00% at load asap" in drops[0]
    assert any(m.startswith("latency: p99 ") and "> 100 µs" in m for m in all0.failures)
    assert all(not m.startswith("verdicts") for o in outcomes.values() for m in o.failures)


def test_parallel_runs_give_the_same_figures(tmp_path: Path) -> None:
    path = write_suite(tmp_path, LOSSY, captures=("mixed.pcap", "lecture-nc-head.pcap"))
    prepared = prepare(load_suite(path))
    try:
        one = run_prepared(prepared, jobs=1)
        two = run_prepared(prepared, jobs=2)
    finally:
        prepared.close()

    def fixed(o):
        return dataclasses.replace(o.figures, wall_seconds=0.0), o.failures

    assert [fixed(o) for o in one] == [fixed(o) for o in two]


def test_generated_traffic(tmp_path: Path) -> None:
    path = write_suite(tmp_path, '[suite]\nloads = [1]\n\n[suite.generate]\ntraffic = "cbr"\n'
                       'rate = 20000\npackets = 300\nsize = 128\n\n'
                       '[[filter]]\nname = "udp"\nexpr = "udp"\naccepts = 300\n'
                       'max_drop_ratio = 0.0\n\n'
                       '[[filter]]\nname = "tcp"\nexpr = "tcp"\naccepts = 0\n', captures=())
    prepared = prepare(load_suite(path))
    try:
        assert prepared.traffic.count == 300
        assert prepared.traffic.where(7) == ("generated", 7)
        times = [r.ts for r in iter_pcap(prepared.traffic.replay)]
        assert times[1] - times[0] == pytest.approx(1 / 20000, abs=1e-9)
        outcomes = run_prepared(prepared)
        assert [o.passed for o in outcomes] == [True, True], [o.failures for o in outcomes]
        assert outcomes[0].figures is not None and outcomes[0].figures.captured == 300
    finally:
        prepared.close()


def test_select_by_substring_or_glob(tmp_path: Path) -> None:
    body = "".join(f'[[filter]]\nname = "{n}"\nexpr = "udp"\n\n'
                   for n in ("web-old", "web-new", "dns"))
    suite = load_suite(write_suite(tmp_path, f'[suite]\ntraffic = ["mixed.pcap"]\n\n{body}'))
    assert select(suite, None) == [0, 1, 2]
    assert select(suite, "web") == [0, 1]
    assert select(suite, "*new") == [1]
    assert select(suite, "d?s") == [2]
    assert select(suite, "ftp") == []


def test_a_newer_kernel_runs_a_program_older_ones_refuse(tmp_path: Path) -> None:
    (tmp_path / "mod.bpf").write_text("ldh [12]\njeq #0x800, ip, no\nip: ldb [23]\nmod #7\n"
                                      "jeq #3, yes, no\nyes: ret #96\nno: ret #0\n")
    path = write_suite(tmp_path, '[suite]\ntraffic = ["mixed.pcap"]\nkernel = "3.7"\n\n'
                       '[[filter]]\nname = "mod"\nfile = "mod.bpf"\nreference = '
                       '"ip[9] % 7 = 3"\nsnaplen = 96\n')
    prepared = prepare(load_suite(path))
    try:
        assert prepared.kernel == "3.7" and prepared.model.kernel.version == "3.7"
        (outcome,) = run_prepared(prepared)
        assert outcome.passed, outcome.failures
        caplen = prepared.plans[0].caplen
        assert outcome.accepts == sum(1 for k in caplen if k) > 0
        frames = [len(f) for f in prepared.traffic.frames()]
        assert all(k in (0, min(96, n)) for n, k in zip(frames, caplen, strict=True))
    finally:
        prepared.close()


PROPERTY_SUITE = """\
[suite]
traffic = ["mixed.pcap", "vlan.pcap"]

[[filter]]
name = "all"
expr = ""

[[filter]]
name = "udp"
expr = "udp"
snaplen = 64

[[filter]]
name = "tcp-arp"
expr = "tcp or arp"
snaplen = 100
"""


@pytest.fixture(scope="module")
def property_suite(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("property")
    prepared = prepare(load_suite(write_suite(tmp, PROPERTY_SUITE,
                                              captures=("mixed.pcap", "vlan.pcap"))))
    yield prepared
    prepared.close()


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(which=st.integers(0, 2), model=st.sampled_from(["testbed", "testbed-vm"]),
       load=st.sampled_from([0.0, 1.0, 5.0]), rx_ring=st.sampled_from([4, 8, 32]),
       rcvbuf=st.integers(1000, 200_000), work=st.integers(0, 60))
def test_fates_and_losses_under_any_load(property_suite, which, model, load, rx_ring, rcvbuf,
                                         work) -> None:
    """Whatever the machine and load: the fates explain the counters, the machine's verdicts
    are the offline ones, and the counter estimate brackets the exact loss."""
    prepared = property_suite
    item = dataclasses.replace(prepared.items()[which], model=model, load=load,
                               rx_ring=rx_ring, rcvbuf=rcvbuf, reader_work=work * 1e-6)
    f = run_item(item)
    fate = f.fate
    assert fate is not None and fate.count(UNSEEN) == 0
    assert fate.count(RX_MISSED) == f.rx_missed_errors
    assert fate.count(FILTERED) + fate.count(RCVBUF) + fate.count(QUEUED) \
        == f.seen - f.seen_outgoing
    offline = prepared.plan(item.filter).caplen
    machine = array("I")
    machine.frombytes(f.caplen or b"")
    for i, code in enumerate(fate):
        if code == FILTERED:
            assert offline[i] == 0
        elif code == QUEUED:
            assert machine[i] == offline[i] > 0
        elif code == RCVBUF:
            assert offline[i] > 0
    exact = accepted_losses(f, offline)
    estimate = accepted_losses(dataclasses.replace(f, fate=None, caplen=None), offline)
    assert exact.lost == sum(1 for i, kept in enumerate(offline) if kept and fate[i] != QUEUED)
    assert estimate.lost <= exact.lost <= estimate.lost + f.seen_outgoing


def test_a_dask_cluster_gives_the_same_figures(tmp_path: Path) -> None:
    """--scheduler: the items run as tasks of a real dask.distributed cluster (the sweep
    engine's path) and give the figures a local run gives."""
    distributed = pytest.importorskip("distributed")
    path = write_suite(tmp_path, LOSSY, captures=("mixed.pcap", "lecture-nc-head.pcap"))
    prepared = prepare(load_suite(path))
    root = str(Path(__file__).resolve().parents[2])
    try:
        local = run_prepared(prepared, jobs=1)
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                      dashboard_address=None,
                                      env={"PYTHONPATH": root}) as cluster:
            remote = run_prepared(prepared, scheduler=cluster.scheduler_address)
    finally:
        prepared.close()

    def fixed(o):
        return dataclasses.replace(o.figures, wall_seconds=0.0), o.failures

    assert [fixed(o) for o in local] == [fixed(o) for o in remote]
