"""Sweep speed: 32 points on 1 and 2 local workers and on a 2-worker Dask LocalCluster,
and the overhead a point costs beyond its own simulation.

* speed-up: ``sweep()`` of 32 points (cbr, 64-byte frames, ``--packets`` per point,
  rate x rcvbuf grid) with ``jobs=1`` (in this process), ``jobs=2`` (two forked
  worker processes) and ``scheduler=`` a ``distributed.LocalCluster`` of two
  single-threaded worker processes started beforehand (its start-up is reported
  apart, as a user's cluster would already be running; its workers' statistical
  profiler is off).  Targets: jobs=2 at most
  0.6x the time of jobs=1, the cluster at most 0.65x.
* overhead: 32 points of one frame each; per point, ``(wall x workers - sum of the
  points' own run times) / points``: pool start, pickling, transfer and collection.
  Target: under 0.3 s.

The machine's load average is printed before and after: on a shared machine the
ratios move with it.

    PYTHONPATH=. python benchmarks/bench_sweep.py [--packets 60000] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

from lsfsim.study.engine import run_points
from lsfsim.study.params import Vary, run_defaults
from lsfsim.study.sweep import plan_from_options

ROOT = Path(__file__).resolve().parents[1]


def plan(packets: int) -> Any:
    options = {**run_defaults(), "traffic": "cbr", "size": 60, "count": packets,
               "filter_expr": "udp", "reader_work": "5us"}
    rates = Vary("rate", tuple(float(r) for r in range(20_000, 160_001, 20_000)))
    rcvbufs = Vary("rcvbuf", (2048, 16384, 131072, 1048576))
    return plan_from_options(options, {}, [rates, rcvbufs])


def timed(points: list[Any], **where: Any) -> tuple[float, float, int]:
    """(wall seconds, sum of the points' own seconds, failures)."""
    started = time.perf_counter()
    outcomes = run_points(points, **where)
    wall = time.perf_counter() - started
    return wall, sum(o.seconds for o in outcomes), sum(not o.ok for o in outcomes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--packets", type=int, default=60000, help="frames per point")
    parser.add_argument("--json", help="also write the figures to FILE")
    args = parser.parse_args()
    import dask
    import distributed

    load_before = os.getloadavg()
    heavy = plan(args.packets).points
    light = plan(1).points
    results: dict[str, Any] = {"points": len(heavy), "packets": args.packets,
                               "loadavg_before": load_before, "cores": os.cpu_count()}
    run_points(light[:2], jobs=1)                      # imports and first-run caches
    wall1, own1, f1 = timed(heavy, jobs=1)
    wall2, own2, f2 = timed(heavy, jobs=2)
    o_wall, o_own, _ = timed(light, jobs=2)
    # the workers' statistical profiler samples every thread's stack every 10 ms, a
    # cost pure-Python tasks feel; a cluster for sweeps can go without it
    dask.config.set({"distributed.worker.profile.enabled": False})
    started = time.perf_counter()
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None,
                                  env={"PYTHONPATH": str(ROOT)}) as cluster:
        cluster_start = time.perf_counter() - started
        address = cluster.scheduler_address
        run_points(light[:2], scheduler=address)       # workers import the simulator once
        wallc, ownc, fc = timed(heavy, scheduler=address)
        d_wall, d_own, _ = timed(light, scheduler=address)
    results.update({
        "jobs1_seconds": wall1, "jobs2_seconds": wall2, "cluster_seconds": wallc,
        "jobs2_ratio": wall2 / wall1, "cluster_ratio": wallc / wall1,
        "cluster_start_seconds": cluster_start,
        "overhead_jobs2_per_point": (o_wall * 2 - o_own) / len(light),
        "overhead_cluster_per_point": (d_wall * 2 - d_own) / len(light),
        "point_seconds_mean": own1 / len(heavy),
        "failures": f1 + f2 + fc,
        "loadavg_after": os.getloadavg(),
    })
    print(f"{len(heavy)} points of {args.packets} frames; load average before "
          f"{load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}, after "
          f"{results['loadavg_after'][0]:.2f}")
    print(f"  jobs=1 (in process)   {wall1:7.2f} s   (a point: {own1 / len(heavy):.3f} s)")
    print(f"  jobs=2                {wall2:7.2f} s   {wall2 / wall1:.2f}x   target <= 0.60x")
    print(f"  LocalCluster 2 x 1    {wallc:7.2f} s   {wallc / wall1:.2f}x   target <= 0.65x "
          f"(cluster start {cluster_start:.1f} s, not counted)")
    print(f"  overhead per point: jobs=2 {results['overhead_jobs2_per_point']:.3f} s, "
          f"cluster {results['overhead_cluster_per_point']:.3f} s   target < 0.3 s")
    if results["failures"]:
        print(f"  {results['failures']} point(s) failed")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
