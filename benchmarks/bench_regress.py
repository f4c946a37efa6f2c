#!/usr/bin/env python3
"""Speed of ``lsfsim regress``: a suite of 10 filters x 3 loads over 10,000 packets.

The target: under 60 s on 2 cores.  The traffic is built here: Ethernet
records of the real captures in ../shared/traces/tcpdump-tests (else the shipped
traces/), frames of at most 1514 bytes, taken in turn until there are
``--packets`` of them (shuffled with a fixed seed), re-timed at a constant
``--rate`` frames per second (the captures' own clocks span years).  Loads 1, 10
and 0 (as fast as the link allows).  Timed: everything ``lsfsim regress`` does
(load, compile and check, offline verdicts, the 30 runs through ``--jobs`` worker
processes, the checks).

    python benchmarks/bench_regress.py                 # 10,000 packets, --jobs 2
    python benchmarks/bench_regress.py --packets 2000 --jobs 1

Also printed: the load average before and after (os.getloadavg), since on a
shared machine the wall-clock figure depends on what else runs.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lsfsim.pcapio import PcapWriter, iter_pcap  # noqa: E402

FILTERS = [
    ("host", "expr", "host 208.68.139.89 or host 192.168.1.10", None),
    ("web", "expr", "tcp port 80 or tcp port 443", "tcp port 80 or tcp port 443"),
    ("dns", "expr", "udp port 53 or tcp port 53", None),
    ("syn", "expr", "tcp[tcpflags] & (tcp-syn|tcp-fin) != 0", None),
    ("icmp", "expr", "icmp or icmp6", None),
    ("v6", "expr", "ip6 and not icmp6", None),
    ("vlan", "expr", "vlan and udp", None),
    ("big", "expr", "greater 1000", None),
    ("arp", "file", "arp.bpf", "arp"),
    ("payload", "expr",
     "tcp and (((ip[2:2] - ((ip[0]&0xf)<<2)) - ((tcp[12]&0xf0)>>2)) != 0)", None),
]


def captures() -> list[Path]:
    shared = ROOT / ".." / "shared" / "traces" / "tcpdump-tests"
    if shared.is_dir():
        return sorted(shared.glob("*.pcap"))
    return sorted((ROOT / "traces").glob("*.pcap*"))


def build_traffic(path: Path, packets: int, rate: float) -> str:
    frames: list[tuple[bytes, int]] = []
    sources = captures()
    for capture in sources:
        try:
            for rec in iter_pcap(capture):
                if rec.linktype == 1 and rec.wirelen <= 1514 and len(rec.data) >= 14:
                    frames.append((rec.data, rec.wirelen))
        except ValueError:
            continue
    random.Random(1).shuffle(frames)     # the captures' protocols mixed, not file by file
    with PcapWriter(path, nanosecond=True) as out:
        for i in range(packets):
            data, wirelen = frames[i % len(frames)]
            out.write(data, i / rate, wirelen)
    return f"{len(frames)} distinct frames of {len(sources)} captures"


def write_suite(tmp: Path, traffic: str, jobs: int) -> Path:
    from lsfsim.bpf import Program

    (tmp / "arp.bpf").write_text(str(Program.from_expression("arp", 96).format()))
    lines = ['[suite]', f'traffic = ["{traffic}"]', "loads = [1, 10, 0]", 'reader_work = "5us"', ""]
    for name, kind, text, reference in FILTERS:
        lines += ["[[filter]]", f'name = "{name}"', f'{kind} = "{text}"', "snaplen = 96"]
        if reference:
            lines.append(f'reference = "{reference}"')
        lines += ["max_drop_ratio = { 1 = 0.0, 10 = 0.5, 0 = 1.0 }", ""]
    path = tmp / "bench.lsfsim.toml"
    path.write_text("\n".join(lines))
    return path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packets", type=int, default=10_000)
    ap.add_argument("--rate", type=float, default=20_000.0, help="frames per second at load 1")
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()

    from typer.testing import CliRunner

    from lsfsim.cli.main import app

    with tempfile.TemporaryDirectory(prefix="bench-regress-") as tmp:
        tmpdir = Path(tmp)
        origin = build_traffic(tmpdir / "traffic.pcap", args.packets, args.rate)
        suite = write_suite(tmpdir, "traffic.pcap", args.jobs)
        junit = tmpdir / "junit.xml"
        load_before = os.getloadavg()
        started = time.perf_counter()
        result = CliRunner().invoke(app, ["regress", str(suite), "--jobs", str(args.jobs),
                                          "--junit", str(junit)])
        seconds = time.perf_counter() - started
        load_after = os.getloadavg()
        print(result.output, end="")
        if result.exit_code not in (0, 1):
            print(f"lsfsim regress failed with status {result.exit_code}", file=sys.stderr)
            return 2
        import xml.etree.ElementTree as ET

        cases = ET.parse(junit).getroot().iter("testcase")
        run_seconds = sum(float(c.get("time", 0)) for c in cases)
    items = len(FILTERS) * 3
    print(f"\ntraffic: {args.packets:,} packets ({origin}), {args.rate:,.0f} frames/s at load 1")
    print(f"suite: {len(FILTERS)} filters x 3 loads = {items} runs, --jobs {args.jobs}, "
          f"{os.cpu_count()} CPUs")
    print(f"wall clock: {seconds:.1f} s (target < 60 s); simulated runs: {run_seconds:.1f} s "
          f"of worker time, {items * args.packets / run_seconds:,.0f} packets/s per worker")
    print("load average (1, 5, 15 min): before {:.2f} {:.2f} {:.2f}, after {:.2f} {:.2f} "
          "{:.2f}".format(*load_before, *load_after))
    return 0 if seconds < 60 else 1


if __name__ == "__main__":
    sys.exit(main())
