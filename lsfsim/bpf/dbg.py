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
            if self.insn.code & 0x07 != 0x06:
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
    render = _renderer()
    raw: list[tuple[int, int, int, dict[int, int], int | None]] = []

    def on_step(pc: int, a: int, x: int, mem: list[int], ret: int | None) -> None:
        code, _, _, k = insns[pc]
        touched = {k: mem[k]} if code in (0x02, 0x03, 0x60, 0x61) else {}
        raw.append((pc, a, x, touched, ret))

    verdict, _ = vm.execute(insns, packet, meta, sem, wirelen, on_step)
    steps = []
    for i, (pc, a, x, touched, ret) in enumerate(raw):
        nxt = raw[i + 1][0] if i + 1 < len(raw) else None
        steps.append(Step(pc, insns[pc], render(insns[pc], pc).replace("\t", " "), a, x,
                          touched, nxt,
                          ret if ret is None else ret & 0xFFFFFFFF))
    return Trace(tuple(steps), verdict, len(packet), sem.name)


def _abort_reason(insn: Insn) -> str:
    if insn.code & 0x07 == 0x04:
        return "division by zero"
    if insn.code & 0xE0 == 0x20 and insn.k >= 0xFFFFF000:
        return "ancillary load failed"
    return "load outside the packet"


def _renderer():
    """formats.insn_text (libpcap's bpf_image) when available, else a minimal one."""
    try:
        from lsfsim.bpf.formats import insn_text
    except ImportError:  # pragma: no cover - formats is part of the package
        return _insn_text
    return insn_text


_ALU = {0x00: "add", 0x10: "sub", 0x20: "mul", 0x30: "div", 0x40: "or", 0x50: "and",
        0x60: "lsh", 0x70: "rsh", 0x80: "neg", 0x90: "mod", 0xA0: "xor"}
_JMP = {0x10: "jeq", 0x20: "jgt", 0x30: "jge", 0x40: "jset"}
_SFX = {0x00: "", 0x08: "h", 0x10: "b"}


def _insn_text(insn: Insn, pc: int) -> str:
    """A small tcpdump -d style rendering (fallback only)."""
    code, jt, jf, k = insn
    cls = code & 0x07
    mode = code & 0xE0
    if cls in (0x00, 0x01):
        op = ("ld" if cls == 0 else "ldx") + _SFX.get(code & 0x18, "?")
        arg = {0x00: f"#0x{k:x}", 0x20: f"[{k}]", 0x40: f"[x + {k}]", 0x60: f"M[{k}]",
               0x80: "#pktlen", 0xA0: f"4*([{k}]&0xf)"}.get(mode, "?")
        return f"{op:<8} {arg}"
    if cls == 0x02:
        return f"{'st':<8} M[{k}]"
    if cls == 0x03:
        return f"{'stx':<8} M[{k}]"
    if cls == 0x04:
        op = _ALU.get(code & 0xF0, "alu?")
        return f"{op:<8} {'' if op == 'neg' else ('x' if code & 0x08 else f'#0x{k:x}')}"
    if cls == 0x05:
        if code & 0xF0 == 0:
            return f"{'ja':<8} {pc + 1 + k}"
        arg = "x" if code & 0x08 else f"#0x{k:x}"
        return f"{_JMP.get(code & 0xF0, 'j?'):<8} {arg:<16} jt {pc + 1 + jt}\tjf {pc + 1 + jf}"
    if cls == 0x06:
        return f"{'ret':<8} {'a' if code & 0x18 == 0x10 else f'#{k}'}"
    return "tax" if code == 0x07 else "txa"
