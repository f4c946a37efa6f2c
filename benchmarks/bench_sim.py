"""Simulator speed: simulated packets per CPU second, its ratio to bare SimPy, and
figures that do not depend on the machine (Python calls and bytecodes per packet).

Runs ``lsfsim run --traffic cbr --rate 100000 --size 64 --count N --filter
'host 208.68.139.89' -p`` (the default lecture model, socket and filter) and a
bare SimPy two-stage producer/consumer pipeline (a timeout per item on each
side, a Store between) in the same process, alternating, and reports the best
of ``--repeat`` runs of each, so that both see the same machine.  Rates are per
second of the process's CPU time (``time.process_time``): on a machine shared
with other work, waiting for the CPU is not counted (on an idle machine it
equals the wall-clock rate).

Machine-independent figures, measured on shorter runs: Python function calls
per packet (``sys.setprofile``: Python and C calls), bytecodes executed per
packet (``sys.settrace`` with opcode events), the same for one item of the
bare pipeline, and, where ``perf stat`` can count them, hardware
instructions per packet (the difference of two run lengths, so that start-up
cancels).  Memory: the peak traced by tracemalloc for two packet counts shows
whether it grows with the run.

    python benchmarks/bench_sim.py [--packets 200000] [--repeat 3] [--json FILE]
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import shutil
import subprocess
import sys
import sysconfig
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import simpy

from lsfsim.cli.run_cmd import scenario_from_options
from lsfsim.config.model import load_model
from lsfsim.machine import Machine
from lsfsim.scenario import LECTURE_FILTER


def _pipeline(n: int) -> simpy.Environment:
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
    return env


def bare_simpy(n: int) -> float:
    """Items per CPU second through a two-stage SimPy pipeline."""
    env = _pipeline(n)
    started = time.process_time()
    env.run()
    return n / (time.process_time() - started)


def _machine(n: int) -> Machine:
    scenario = scenario_from_options(
        model="testbed", traffic="cbr", rate=100000, size=64, packets=n, nbytes=None,
        duration=None, pcap=None, speed=None, filter_expr=LECTURE_FILTER, filter_file=None,
        snaplen=None, rcvbuf=None, rx_ring=None, sockets=1, readers=1, reader_work=None,
        no_napi=False, seed=1, no_drain=False, promisc=False)
    return Machine(load_model("testbed"), scenario)


def lsfsim_cbr(n: int) -> tuple[float, dict]:
    machine = _machine(n)
    started = time.process_time()
    result = machine.run()
    return n / (time.process_time() - started), result.data


def peak_memory(n: int) -> int:
    tracemalloc.start()
    lsfsim_cbr(n)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def _count_calls(run: Callable[[], object]) -> tuple[int, int]:
    """(Python calls, C calls) made while ``run`` runs."""
    counts = {"call": 0, "c_call": 0}

    def profile(_frame, event, _arg):
        if event in counts:
            counts[event] += 1

    sys.setprofile(profile)
    try:
        run()
    finally:
        sys.setprofile(None)
    return counts["call"], counts["c_call"]


def _count_bytecodes(run: Callable[[], object]) -> int:
    """Bytecode instructions executed while ``run`` runs (opcode trace events)."""
    count = 0

    def trace(frame, event, _arg):
        nonlocal count
        if event == "call":
            frame.f_trace_opcodes = True
            frame.f_trace_lines = False
            return trace
        if event == "opcode":
            count += 1
        return trace

    sys.settrace(trace)
    try:
        run()
    finally:
        sys.settrace(None)
    return count


def interpreter_figures(n: int) -> dict:
    """Calls and bytecodes per lsfsim packet and per bare-SimPy item."""
    machine = _machine(n)
    calls, c_calls = _count_calls(machine.run)
    machine = _machine(n)
    bytecodes = _count_bytecodes(machine.run)
    env = _pipeline(n)
    bare_calls, bare_c_calls = _count_calls(env.run)
    env = _pipeline(n)
    bare_bytecodes = _count_bytecodes(env.run)
    return {
        "python_calls_per_packet": calls / n, "c_calls_per_packet": c_calls / n,
        "bytecodes_per_packet": bytecodes / n,
        "bare_python_calls_per_item": bare_calls / n, "bare_c_calls_per_item": bare_c_calls / n,
        "bare_bytecodes_per_item": bare_bytecodes / n,
    }


_PERF_CHILD = """
import sys
sys.path.insert(0, {root!r})
from benchmarks.bench_sim import _machine
_machine({n}).run()
"""


def perf_instructions_per_packet(n: int) -> float | None:
    """Hardware instructions per packet from ``perf stat`` (None where it cannot count)."""
    perf = shutil.which("perf")
    if perf is None:
        return None
    root = str(Path(__file__).resolve().parents[1])

    def instructions(packets: int) -> float | None:
        out = subprocess.run([perf, "stat", "-x,", "-e", "instructions:u", sys.executable,
                              "-c", _PERF_CHILD.format(root=root, n=packets)],
                             capture_output=True, text=True)
        for line in out.stderr.splitlines():
            fields = line.split(",")
            if len(fields) > 2 and fields[2].startswith("instructions"):
                try:
                    return float(fields[0])
                except ValueError:
                    return None      # "<not supported>" (no PMU, e.g. in a VM)
        return None

    small, large = instructions(n // 5), instructions(n)
    if small is None or large is None:
        return None
    return (large - small) / (n - n // 5)


def environment() -> dict:
    """What may make the figures differ between machines."""
    config = sysconfig.get_config_var("CONFIG_ARGS") or ""
    return {
        "python": platform.python_version(), "implementation": platform.python_implementation(),
        "compiler": platform.python_compiler(), "simpy": simpy.__version__,
        "pgo": "--enable-optimizations" in config, "lto": "--with-lto" in config,
        "machine": platform.machine(), "gc_thresholds": list(gc.get_threshold()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packets", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile-packets", type=int, default=5_000,
                        help="packets of the runs that count calls and bytecodes")
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
    interp = interpreter_figures(args.profile_packets)
    instructions = perf_instructions_per_packet(args.profile_packets * 4)
    figures = {
        "packets": args.packets,
        "lsfsim_packets_per_second": sim,
        "bare_simpy_items_per_second": bare,
        "ratio": sim / bare,
        **interp,
        "bytecode_ratio": interp["bare_bytecodes_per_item"] / interp["bytecodes_per_packet"],
        "instructions_per_packet": instructions,
        "events_per_packet": data["events"] / args.packets,
        "delivered": data["sockets"][0]["delivered"],
        "peak_memory_bytes": {str(small): mem_small, str(large): mem_large},
        "memory_growth_ratio": mem_large / mem_small,
        "environment": environment(),
    }
    env = figures["environment"]
    print(f"lsfsim run --traffic cbr --rate 100000 --size 64 --count {args.packets} "
          f"--filter '{LECTURE_FILTER}' -p")
    print(f"  lsfsim      {sim:12,.0f} packets/s (CPU time, best of {args.repeat})")
    print(f"  bare SimPy  {bare:12,.0f} items/s   (two-stage pipeline)")
    print(f"  ratio       {sim / bare:12.2f}   (target >= 0.5; >= 50,000 packets/s)")
    print(f"  per packet  {interp['python_calls_per_packet']:12.1f} Python calls, "
          f"{interp['c_calls_per_packet']:.1f} C calls, "
          f"{interp['bytecodes_per_packet']:,.0f} bytecodes")
    print(f"  per item    {interp['bare_python_calls_per_item']:12.1f} Python calls, "
          f"{interp['bare_c_calls_per_item']:.1f} C calls, "
          f"{interp['bare_bytecodes_per_item']:,.0f} bytecodes (bare SimPy)")
    print(f"  bytecodes   {figures['bytecode_ratio']:12.2f}   (bare item / lsfsim packet: the "
          f"ratio if every bytecode cost the same)")
    print("  instructions " + (f"{instructions:11,.0f} per packet (perf stat)"
                               if instructions is not None else
                               "        n/a (perf stat cannot count instructions here)"))
    print(f"  events      {figures['events_per_packet']:12.2f} per packet")
    print(f"  peak memory {mem_small:,} B for {small:,} packets, {mem_large:,} B for "
          f"{large:,} ({figures['memory_growth_ratio']:.2f}x for 5x the packets)")
    print(f"  Python {env['python']} ({env['compiler']}, PGO {env['pgo']}, LTO {env['lto']}), "
          f"SimPy {env['simpy']}")
    if args.json:
        with open(args.json, "w") as out:
            json.dump(figures, out, indent=2)


if __name__ == "__main__":
    main()
