"""Single-step tracing of a classic BPF run, like the kernel's tools/bpf/bpf_dbg.

``trace()`` runs the reference interpreter (vm.execute) with a step hook and
records, for every instruction executed: its pc and text, A and X after it, the
scratch slot it touched, and where control went.  The verdict is what the
filter returned; ``Trace.format()`` renders one line per step.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from lsfsim.bpf import vm
from lsfsim.bpf.formats.image import insn_text
from lsfsim.bpf.instructions import (
    RETURNS,
    ALUOpConstant,
    ALUOpX,
    LoadAbsolute,
    LoadScratch,
    StoreScratch,
    decode,
    decode_program,
)
from lsfsim.bpf.isa import Insn
from lsfsim.bpf.meta import SkbMeta
from lsfsim.bpf.versions import KernelSemantics


@dataclass(frozen=True, slots=True)
class Step:
    """One executed instruction and the machine state right after it."""

    pc: int
    insn: Insn
    text: str
    a: int
    x: int
    mem: dict[int, int]
    """The scratch slot this instruction read or wrote, with its value (else empty)."""
    next_pc: int | None
    """Where execution continued; None if this instruction ended the run."""
    verdict: int | None
    """Set on the last step: what the filter returned."""

    def format(self) -> str:
        line = f"({self.pc:03d}) {self.text:<40} A=0x{self.a:08x} X=0x{self.x:08x}"
        if self.mem:
            line += " " + " ".join(f"M[{k}]=0x{v:08x}" for k, v in self.mem.items())
        if self.verdict is not None:
            line += f"  -> return {self.verdict}"
            if not isinstance(decode(self.insn), RETURNS):
                line += f" ({_abort_reason(self.insn)})"
        elif self.next_pc is not None and self.next_pc != self.pc + 1:
            line += f"  -> {self.next_pc}"
        return line


@dataclass(frozen=True, slots=True)
class Trace:
    """A whole run: its steps and the verdict (the u32 the filter returned)."""

    steps: tuple[Step, ...]
    verdict: int
    packet_len: int
    kernel: str

    def __len__(self) -> int:
        return len(self.steps)

    def __iter__(self) -> Iterator[Step]:
        return iter(self.steps)

    def format(self) -> str:
        """bpf_dbg-style lines, then the verdict as packet_rcv would apply it."""
        lines = [f"-- {self.kernel}, packet of {self.packet_len} bytes --"]
        lines += [s.format() for s in self.steps]
        if self.verdict == 0:
            what = "drop"
        else:
            what = f"accept, keep {min(self.verdict, self.packet_len)} bytes"
        lines.append(f"-- {len(self.steps)} instructions, verdict {self.verdict} ({what})")
        return "\n".join(lines) + "\n"


def trace(insns: Sequence[Insn], packet: bytes, meta: SkbMeta | None,
          sem: KernelSemantics, wirelen: int | None = None) -> Trace:
    """Run a checked program step by step (same semantics as vm.run)."""
    insns = tuple(Insn(*i) for i in insns)
    prog = decode_program(insns)
    raw: list[tuple[int, int, int, dict[int, int], int | None]] = []

    def on_step(pc: int, a: int, x: int, mem: list[int], ret: int | None) -> None:
        ins = prog[pc]
        touched = {ins.n: mem[ins.n]} if isinstance(ins, (LoadScratch, StoreScratch)) else {}
        raw.append((pc, a, x, touched, ret))

    verdict, _ = vm.execute(insns, packet, meta, sem, wirelen, on_step)
    steps = []
    for i, (pc, a, x, touched, ret) in enumerate(raw):
        nxt = raw[i + 1][0] if i + 1 < len(raw) else None
        steps.append(Step(pc, insns[pc], insn_text(insns[pc], pc).replace("\t", " "), a, x,
                          touched, nxt,
                          ret if ret is None else ret & 0xFFFFFFFF))
    return Trace(tuple(steps), verdict, len(packet), sem.name)


def _abort_reason(insn: Insn) -> str:
    """Why an instruction other than a RET ended the run with 0."""
    ins = decode(insn)
    if isinstance(ins, (ALUOpConstant, ALUOpX)):
        return "division by zero"
    if isinstance(ins, LoadAbsolute) and ins.ancillary is not None:
        return "ancillary load failed"
    return "load outside the packet"
