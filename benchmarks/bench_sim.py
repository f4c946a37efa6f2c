"""Simulator speed: simulated packets per wall-clock second, and its ratio to bare SimPy.

Runs ``lsfsim run --traffic cbr --rate 100000 --size 64 --count N --filter
'host 208.68.139.89' -p`` (the default lecture model, socket and filter) and a
bare SimPy two-stage producer/consumer pipeline (a timeout per item on each
side, a Store between) in the same process, alternating, and reports the best of ``--repeat`` runs of
each, so that both see the same machine.  Memory: the peak traced by
tracemalloc for two packet counts shows whether it grows with the run.

    python benchmarks/bench_sim.py [--packets 200000] [--repeat 3] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import time
import tracemalloc

import simpy

from lsfsim.cli.run_cmd import scenario_from_options
from lsfsim.config.model import load_model
from lsfsim.machine import Machine
from lsfsim.scenario import LECTURE_FILTER


def bare_simpy(n: int) -> float:
    """Items per second through a two-stage SimPy pipeline."""
    env = simpy.Environment()
    store = simpy.Store(env)

    def producer():
        for i in range(n):
            yield env.timeout(1e-5)
            yield store.put(i)

    def consumer():
        for _ in range(n):
            yield store.get()
            yield env.timeout(5e-6)

    env.process(producer())
    env.process(consumer())
    started = time.perf_counter()
    env.run()
    return n / (time.perf_counter() - started)


def lsfsim_cbr(n: int) -> tuple[float, dict]:
    scenario = scenario_from_options(
        model="testbed", traffic="cbr", rate=100000, size=64, packets=n, nbytes=None,
        duration=None, pcap=None, speed=None, filter_expr=LECTURE_FILTER, filter_file=None,
        snaplen=None, rcvbuf=None, rx_ring=None, sockets=1, readers=1, reader_work=None,
        no_napi=False, seed=1, no_drain=False, promisc=False)
    machine = Machine(load_model("testbed"), scenario)
    started = time.perf_counter()
    result = machine.run()
    return n / (time.perf_counter() - started), result.data


def peak_memory(n: int) -> int:
    tracemalloc.start()
    lsfsim_cbr(n)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packets", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    sim_rates, bare_rates = [], []
    data: dict = {}
    for _ in range(args.repeat):
        bare_rates.append(bare_simpy(args.packets))
        rate, data = lsfsim_cbr(args.packets)
        sim_rates.append(rate)
    sim, bare = max(sim_rates), max(bare_rates)
    small, large = args.packets // 10, args.packets // 2
    mem_small, mem_large = peak_memory(small), peak_memory(large)
    figures = {
        "packets": args.packets,
        "lsfsim_packets_per_second": sim,
        "bare_simpy_items_per_second": bare,
        "ratio": sim / bare,
        "events_per_packet": data["events"] / args.packets,
        "delivered": data["sockets"][0]["delivered"],
        "peak_memory_bytes": {str(small): mem_small, str(large): mem_large},
        "memory_growth_ratio": mem_large / mem_small,
    }
    print(f"lsfsim run --traffic cbr --rate 100000 --size 64 --count {args.packets} "
          f"--filter '{LECTURE_FILTER}' -p")
    print(f"  lsfsim      {sim:12,.0f} packets/s (best of {args.repeat})")
    print(f"  bare SimPy  {bare:12,.0f} items/s   (two-stage pipeline)")
    print(f"  ratio       {sim / bare:12.2f}   (target >= 0.5; >= 50,000 packets/s)")
    print(f"  events      {figures['events_per_packet']:12.2f} per packet")
    print(f"  peak memory {mem_small:,} B for {small:,} packets, {mem_large:,} B for "
          f"{large:,} ({figures['memory_growth_ratio']:.2f}x for 5x the packets)")
    if args.json:
        with open(args.json, "w") as out:
            json.dump(figures, out, indent=2)


if __name__ == "__main__":
    main()
