"""Two programs, one capture: do they give every frame the same verdict?

``assert_same_verdicts`` is the helper behind the pytest fixture of the same
name.  Both programs run in lsfsim's machine with one kernel's semantics, on
every frame of the capture as the simulated NIC receives it, with the sk_buff
fields eth_type_trans would set; a verdict is "dropped" or "accepted, keeping
N bytes".  The error names the first mismatching records with both
instruction paths.
"""

from __future__ import annotations

import os
from pathlib import Path

from lsfsim.bpf import Program
from lsfsim.pcapio import LINKTYPE_ETHERNET, iter_pcap
from lsfsim.regress.traffic import as_received
from lsfsim.regress.verdicts import MAX_SHOWN, skb_meta

__all__ = ["as_program", "assert_same_verdicts", "verdict_mismatches"]

DEFAULT_MAC = "00:0c:29:4a:7b:01"     # the testbed model's NIC


def as_program(source: Program | str | os.PathLike[str], snaplen: int = 262144,
               kernel: str | None = None) -> Program:
    """A Program from a Program, a program file (a path that exists) or an expression.

    With ``kernel``, the program must pass that kernel's checker (FilterError).
    """
    if isinstance(source, Program):
        program = source
    elif isinstance(source, os.PathLike) or Path(str(source)).is_file():
        program = Program.load(Path(source))
    else:
        program = Program.from_expression(str(source), snaplen=snaplen)
    if kernel is not None:
        program.check(kernel)
    return program


def _path(program: Program, frame: bytes, meta: object, kernel: str) -> str:
    trace = program.trace(frame, meta, kernel)  # type: ignore[arg-type]
    return " ".join(str(s.pc) for s in trace.steps) + f" ({' '.join(trace.steps[-1].text.split())})"


def _kept(n: int) -> str:
    return f"keeps {n} bytes" if n else "drops"


def verdict_mismatches(prog_a: Program | str | os.PathLike[str],
                       prog_b: Program | str | os.PathLike[str],
                       pcap: str | os.PathLike[str], kernel: str = "2.6.33",
                       mac: str = DEFAULT_MAC, cpu: int = 0) -> tuple[int, int, list[str]]:
    """(frames compared, frames that differ, descriptions of the first few)."""
    a, b = as_program(prog_a, kernel=kernel), as_program(prog_b, kernel=kernel)
    fa, fb = a.compile(kernel), b.compile(kernel)
    nic_mac = bytes(int(x, 16) for x in mac.split(":"))
    total = differ = 0
    shown: list[str] = []
    for number, rec in enumerate(iter_pcap(Path(pcap))):
        if rec.linktype != LINKTYPE_ETHERNET:
            raise ValueError(f"{pcap}: record {number}: linktype {rec.linktype} is not Ethernet")
        frame = as_received(rec.data, rec.wirelen)
        meta = skb_meta(frame, nic_mac, cpu)
        n = len(frame)
        va, vb = min(fa(frame, meta), n), min(fb(frame, meta), n)
        total += 1
        if va != vb:
            differ += 1
            if len(shown) < MAX_SHOWN:
                shown.append(f"{Path(pcap).name} record {number} ({n} bytes): "
                             f"{_kept(va)} vs {_kept(vb)}; paths "
                             f"{_path(a, frame, meta, kernel)} vs {_path(b, frame, meta, kernel)}")
    return total, differ, shown


def assert_same_verdicts(prog_a: Program | str | os.PathLike[str],
                         prog_b: Program | str | os.PathLike[str],
                         pcap: str | os.PathLike[str], kernel: str = "2.6.33",
                         mac: str = DEFAULT_MAC, cpu: int = 0) -> int:
    """Raise AssertionError unless both programs judge every frame alike; return the count."""
    total, differ, shown = verdict_mismatches(prog_a, prog_b, pcap, kernel, mac, cpu)
    if differ:
        raise AssertionError(f"{differ} of {total} frames of {pcap} get different verdicts:\n  "
                             + "\n  ".join(shown))
    return total
