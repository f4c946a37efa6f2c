#!/usr/bin/env python3
"""How fast lsfsim runs classic BPF, next to libpcap's C interpreter.

Engines, each timed over the same packets held in memory:

* ``run``        -- ``Program.run`` (the reference interpreter, checker included);
* ``compile``    -- the callable of ``Program.compile()`` (generated Python);
* ``pcapc``      -- ``lsfsim.bpf.pcapc.bpf_filter`` (libpcap's C ``bpf_filter``
  through ctypes, with its argument handling);
* ``ctypes``     -- the bare ctypes call of libpcap's ``bpf_filter`` with the
  program buffer and argument types prepared once: the fairest C figure a
  Python caller can get.

Programs: the lecture's "host optimus" listing (tcpdump -d text, read from the
lecture) and ``tcp port 80 and (((ip[2:2] - ((ip[0]&0xf)<<2)) -
((tcp[12]&0xf0)>>2)) != 0)`` compiled by pcap_compile.  Traffic: every Ethernet
record of the shared real captures (``<repo>/../shared/traces``), else the
project's ``traces/``, else generated frames.

    python benchmarks/bench_bpf.py [--quick] [--json [PATH]] [--kernel 2.6.33]
    python benchmarks/bench_bpf.py --prove

All engines must agree on every verdict; the script exits 1 if they do not.

``--prove`` times ``lsfsim bpf diff --prove`` instead (lsfsim.bpf.equiv): pairs of
programs of about 30 instructions compiled from the expression above and variants of
it, each proved equivalent or told apart by a witness; the target is an answer in
under 10 s.  Every answer must be the expected one, else the script exits 1.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import platform
import random
import re
import struct
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from lsfsim.bpf import Program, pcapc  # noqa: E402
from lsfsim.bpf.isa import encode  # noqa: E402

SHARED = REPO / ".." / "shared"
LECTURE = SHARED / "seed" / "lsf-lecture.txt"
TRACE_DIRS = [SHARED / "traces" / "tcpdump-tests", SHARED / "traces" / "libpcap-filter-tests",
              REPO / "traces"]
HTTP_EXPR = "tcp port 80 and (((ip[2:2] - ((ip[0]&0xf)<<2)) - ((tcp[12]&0xf0)>>2)) != 0)"
OPTIMUS_ADDR = "208.68.139.89"  # 0xd0448b59, the address in the lecture's listing
_MNEMONIC = re.compile(r"^\s*(?:\(\d+\)\s*)?(ld|ldh|ldb|ldx|ldxb|jeq|jgt|jge|jset|ja|jmp|ret|"
                       r"st|stx|add|sub|mul|div|mod|and|or|xor|lsh|rsh|neg|tax|txa)\b")


# --- inputs ----------------------------------------------------------------------
def lecture_program() -> tuple[Program, str]:
    """The "host optimus" listing of the lecture, parsed as tcpdump -d text.

    The listing is the block of instruction lines just above its caption.  If the
    lecture is not at hand, fall back to pcap_compile of the same host (today's
    libpcap emits a slightly different program).
    """
    if LECTURE.is_file():
        lines = LECTURE.read_text(encoding="utf-8").splitlines()
        caption = next((i for i, line in enumerate(lines)
                        if "host optimus" in line and "Figure" in line), None)
        if caption is not None:
            block: list[str] = []
            i = caption - 1
            while i >= 0 and (not lines[i].strip() and not block or _MNEMONIC.match(lines[i])):
                if lines[i].strip():
                    block.insert(0, lines[i])
                i -= 1
            if block:
                return Program.parse("\n".join(block), "tcpdump-d"), "lecture listing"
    return Program.from_expression(f"host {OPTIMUS_ADDR}"), f"pcap_compile('host {OPTIMUS_ADDR}')"


def _ethernet_records(folder: Path) -> list[tuple[bytes, int]]:
    from lsfsim.pcapio import iter_pcap

    out = []
    for path in sorted(folder.glob("*.pcap*")):
        try:
            out += [(r.data, r.wirelen) for r in iter_pcap(path) if r.linktype == 1]
        except ValueError as exc:  # a damaged file: skip it, say so
            print(f"skipping {path.name}: {exc}", file=sys.stderr)
    return out


def _generated(n: int = 5000, seed: int = 1) -> list[tuple[bytes, int]]:
    """Ethernet/IPv4/TCP frames, a quarter to port 80, some ARP: a stand-in for traffic."""
    rnd = random.Random(seed)
    out = []
    for _ in range(n):
        if rnd.random() < 0.1:
            frame = b"\xff" * 6 + rnd.randbytes(6) + b"\x08\x06" + rnd.randbytes(28)
        else:
            payload = rnd.randbytes(rnd.choice([0, 0, 6, 100, 512, 1400]))
            tcp = struct.pack("!HHIIBBHHH", rnd.randrange(1024, 65535),
                              80 if rnd.random() < 0.25 else rnd.randrange(1, 65535),
                              rnd.getrandbits(32), rnd.getrandbits(32), 0x50, 0x18, 512, 0, 0)
            ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp) + len(payload), 0, 0x4000,
                             64, 6, 0, rnd.randbytes(4), bytes([208, 68, 139, 89])
                             if rnd.random() < 0.2 else rnd.randbytes(4))
            frame = rnd.randbytes(12) + b"\x08\x00" + ip + tcp + payload
        out.append((frame, len(frame)))
    return out


def traffic() -> tuple[list[tuple[bytes, int]], str]:
    records: list[tuple[bytes, int]] = []
    used = []
    for folder in TRACE_DIRS[:2]:
        if folder.is_dir():
            records += _ethernet_records(folder)
            used.append(folder.name)
    if records:
        return records, "real captures: " + ", ".join(used)
    if TRACE_DIRS[2].is_dir():
        records = _ethernet_records(TRACE_DIRS[2])
        if records:
            return records, "traces/"
    return _generated(), "generated frames"


# --- timing ----------------------------------------------------------------------
def rate(loop: Callable[[], int], npackets: int, seconds: float) -> tuple[float, int]:
    """Best packets/s over a few rounds of whole passes; and the accepted count of a pass."""
    accepted = loop()  # warm-up, and the verdict count for the cross-check
    best = 0.0
    rounds = 3
    for _ in range(rounds):
        passes, start = 0, time.perf_counter()
        while True:
            loop()
            passes += 1
            elapsed = time.perf_counter() - start
            if elapsed >= seconds / rounds:
                break
        best = max(best, passes * npackets / elapsed)
    return best, accepted


def engines(prog: Program, packets: list[tuple[bytes, int]], kernel: str
            ) -> dict[str, Callable[[], int]]:
    """One closure per engine, each running the program over all packets once."""
    insns = list(prog.insns)
    compiled = prog.compile(kernel)
    frames = [p for p, _ in packets]

    def run_loop() -> int:
        run = prog.run
        return sum(1 for p in frames if run(p, None, kernel))

    def compile_loop() -> int:
        f = compiled
        return sum(1 for p in frames if f(p))

    def pcapc_loop() -> int:
        filt = pcapc.bpf_filter
        return sum(1 for p in frames if filt(insns, p))

    lib = ctypes.CDLL(pcapc.libpcap_path())
    bpf_filter = lib.bpf_filter
    bpf_filter.restype = ctypes.c_uint
    bpf_filter.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_uint, ctypes.c_uint]
    blob = encode(insns)
    code = ctypes.create_string_buffer(blob, len(blob))
    args = [(p, len(p)) for p in frames]

    def ctypes_loop() -> int:
        f, c = bpf_filter, code
        return sum(1 for p, n in args if f(c, p, n, n))

    return {"run": run_loop, "compile": compile_loop, "pcapc": pcapc_loop,
            "ctypes": ctypes_loop}


# --- the prover ---------------------------------------------------------------------------
PROVE_PAIRS = [
    # (what, old expression, old optimized, new expression, new optimized, equivalent)
    ("!= 0 vs > 0", HTTP_EXPR, True, HTTP_EXPR.replace("!= 0", "> 0"), True, True),
    ("optimized vs not", HTTP_EXPR, True, HTTP_EXPR, False, True),
    ("port 80 vs 8080", HTTP_EXPR, True, HTTP_EXPR.replace("port 80", "port 8080"), True, False),
    ("payload != 0 vs > 10", HTTP_EXPR, True, HTTP_EXPR.replace("!= 0", "> 10"), True, False),
]


def prove_main(as_json: str | None, kernel: str) -> int:
    from lsfsim.bpf.equiv import Equivalent, prove_equivalent

    rows = []
    ok = True
    for what, old_expr, old_opt, new_expr, new_opt, equivalent in PROVE_PAIRS:
        old = Program.from_expression(old_expr, optimize=old_opt)
        new = Program.from_expression(new_expr, optimize=new_opt)
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            result = prove_equivalent(old.insns, new.insns, kernel=kernel)
            best = min(best, time.perf_counter() - start)
        answer = "equivalent" if isinstance(result, Equivalent) else "witness"
        ok = ok and (answer == "equivalent") == equivalent
        rows.append({"pair": what, "old_insns": len(old), "new_insns": len(new),
                     "answer": answer, "seconds": best})
    if as_json:
        text = json.dumps({"kernel_semantics": kernel, "prove": rows}, indent=2)
        if as_json == "-":
            print(text)
        else:
            Path(as_json).write_text(text + "\n")
    if as_json != "-":
        print(f"prove_equivalent, semantics {kernel}, max_len 1514 (best of 3)")
        print(f"{'pair':24} {'insns':>9} {'answer':>11} {'seconds':>8}")
        for r in rows:
            print(f"{r['pair']:24} {r['old_insns']:>4}/{r['new_insns']:<4} {r['answer']:>11} "
                  f"{r['seconds']:>8.3f}")
        print("(target: under 10 s each)")
    if not ok:
        print("an answer is not the expected one", file=sys.stderr)
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="short timing rounds (about 10 s)")
    ap.add_argument("--json", nargs="?", const="-", metavar="PATH",
                    help="write the figures as JSON to PATH (or stdout)")
    ap.add_argument("--kernel", default="2.6.33", help="kernel semantics for run/compile")
    ap.add_argument("--prove", action="store_true", help="time the equivalence prover instead")
    args = ap.parse_args(argv)
    if args.prove:
        return prove_main(args.json, args.kernel)
    seconds = 0.4 if args.quick else 2.0

    packets, source = traffic()
    lecture, lecture_src = lecture_program()
    programs = {"host optimus": (lecture, lecture_src),
                "tcp port 80 payload": (Program.from_expression(HTTP_EXPR), "pcap_compile")}

    results = []
    ok = True
    for name, (prog, origin) in programs.items():
        row: dict[str, object] = {"program": name, "origin": origin, "insns": len(prog)}
        counts = {}
        for engine, loop in engines(prog, packets, args.kernel).items():
            pps, accepted = rate(loop, len(packets), seconds)
            row[engine] = pps
            counts[engine] = accepted
        row["accepted"] = counts["compile"]
        if len(set(counts.values())) != 1:
            ok = False
            row["disagreement"] = counts
        row["compile/run"] = row["compile"] / row["run"]
        row["compile/ctypes"] = row["compile"] / row["ctypes"]
        row["compile/pcapc"] = row["compile"] / row["pcapc"]
        results.append(row)

    info = {"python": platform.python_version(), "machine": platform.machine(),
            "libpcap": pcapc.libpcap_version(), "kernel_semantics": args.kernel,
            "traffic": source, "packets": len(packets), "seconds_per_engine": seconds}
    if args.json:
        text = json.dumps({"info": info, "results": results}, indent=2)
        if args.json == "-":
            print(text)
        else:
            Path(args.json).write_text(text + "\n")
    if args.json != "-":
        print(f"{len(packets)} packets ({source}); semantics {args.kernel}; "
              f"{info['libpcap']}; Python {info['python']}")
        head = (f"{'program':22} {'insns':>5} {'accepted':>8} {'run':>10} {'compile':>10} "
                f"{'pcapc':>10} {'ctypes':>10} {'comp/run':>9} {'comp/ctypes':>11}")
        print(head)
        print("-" * len(head))
        for r in results:
            print(f"{r['program']:22} {r['insns']:>5} {r['accepted']:>8} {r['run']:>10,.0f} "
                  f"{r['compile']:>10,.0f} {r['pcapc']:>10,.0f} {r['ctypes']:>10,.0f} "
                  f"{r['compile/run']:>8.1f}x {r['compile/ctypes']:>10.2f}x")
        print("(rates in packets/s; target: compile >= 2x ctypes)")
    for r in results:
        if "disagreement" in r:
            print(f"engines disagree on {r['program']}: {r['disagreement']}", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
