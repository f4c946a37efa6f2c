"""Program: a classic BPF program and everything one does with it.

One object ties the toolchain together: text formats (tcpdump -d/-dd/-ddd,
bpf_asm, binary), libpcap's compiler, the kernel's checker for a given
version, the reference interpreter, the Python code generator and the step
tracer.  Each of those lives in its own module; this class only routes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from lsfsim.bpf import check as _check
from lsfsim.bpf import dbg as _dbg
from lsfsim.bpf import formats as _formats
from lsfsim.bpf import jit as _jit
from lsfsim.bpf import pcapc as _pcapc
from lsfsim.bpf import vm as _vm
from lsfsim.bpf.isa import Insn, check_fields
from lsfsim.bpf.meta import SkbMeta
from lsfsim.bpf.versions import KernelSemantics, semantics


class Program:
    """An immutable sequence of ``Insn``."""

    __slots__ = ("insns", "_compiled")

    def __init__(self, insns: Iterable[Insn]) -> None:
        self.insns: tuple[Insn, ...] = tuple(Insn(*i) for i in insns)
        for pc, insn in enumerate(self.insns):
            check_fields(insn, pc)
        self._compiled: dict[str, _jit.CompiledFilter] = {}

    # --- construction -------------------------------------------------------
    @classmethod
    def from_insns(cls, insns: Iterable[Sequence[int]]) -> Program:
        return cls(Insn(*i) for i in insns)

    @classmethod
    def parse(cls, text: str | bytes, fmt: str | None = None) -> Program:
        """Parse any supported format; ``fmt=None`` detects it."""
        return cls(_formats.parse(text, fmt))

    @classmethod
    def load(cls, path: str | Path, fmt: str | None = None) -> Program:
        """Read a program file (text or binary sock_filter array)."""
        return cls(_formats.load(path, fmt))

    @classmethod
    def from_expression(
        cls,
        expr: str,
        snaplen: int = 262144,
        linktype: int | str = 1,
        netmask: int | str | None = None,
        optimize: bool = True,
    ) -> Program:
        """Compile a pcap filter expression with libpcap's pcap_compile."""
        return cls(_pcapc.compile_expression(expr, snaplen, linktype, netmask, optimize))

    # --- output -------------------------------------------------------------
    def format(self, fmt: str = "tcpdump-d") -> str | bytes:
        return _formats.format(self.insns, fmt)

    # --- kernel -------------------------------------------------------------
    def check(self, kernel: str | KernelSemantics = "2.6.33") -> None:
        """Validate like that kernel's sk_chk_filter; raise FilterError if refused.

        ``kernel`` is a release, or semantics adjusted to a machine (its optmem_max and
        struct sk_filter size: lsfsim.kernel.af_packet.attach_semantics)."""
        sem = kernel if isinstance(kernel, KernelSemantics) else semantics(kernel)
        _check.sk_chk_filter(self.insns, sem)

    def run(
        self,
        packet: bytes,
        meta: SkbMeta | None = None,
        kernel: str = "2.6.33",
        wirelen: int | None = None,
    ) -> int:
        """Run the reference interpreter; return what the filter returns."""
        sem = semantics(kernel)
        _check.sk_chk_filter(self.insns, sem)
        return _vm.run(self.insns, packet, meta, sem, wirelen)

    def compile(self, kernel: str | KernelSemantics = "2.6.33") -> _jit.CompiledFilter:
        """Generate straight-line Python for this program (cached per kernel era)."""
        sem = kernel if isinstance(kernel, KernelSemantics) else semantics(kernel)
        compiled = self._compiled.get(sem.key)
        if compiled is None or isinstance(kernel, KernelSemantics):
            _check.sk_chk_filter(self.insns, sem)   # a machine's limits: checked each time
        if compiled is None:
            compiled = self._compiled[sem.key] = _jit.compile_program(self.insns, sem)
        return compiled

    def trace(
        self,
        packet: bytes,
        meta: SkbMeta | None = None,
        kernel: str = "2.6.33",
        wirelen: int | None = None,
    ) -> _dbg.Trace:
        """Step-by-step execution, like the kernel's tools/bpf/bpf_dbg."""
        sem = semantics(kernel)
        _check.sk_chk_filter(self.insns, sem)
        return _dbg.trace(self.insns, packet, meta, sem, wirelen)

    # --- container protocol -------------------------------------------------
    def __len__(self) -> int:
        return len(self.insns)

    def __iter__(self):
        return iter(self.insns)

    def __getitem__(self, pc: int) -> Insn:
        return self.insns[pc]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Program) and self.insns == other.insns

    def __hash__(self) -> int:
        return hash(self.insns)

    def __repr__(self) -> str:
        return f"Program({len(self.insns)} instructions)"
