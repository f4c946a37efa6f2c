"""lsfsim.bpf: a classic BPF machine that behaves like the Linux kernel's.

Public names: Insn, Program, SkbMeta, FilterError, ParseError, CompileError, uses_skb_meta.
"""

from lsfsim.bpf.errors import CompileError, FilterError, ParseError
from lsfsim.bpf.instructions import uses_skb_meta
from lsfsim.bpf.isa import Insn
from lsfsim.bpf.meta import SkbMeta
from lsfsim.bpf.program import Program

__all__ = ["CompileError", "FilterError", "Insn", "ParseError", "Program", "SkbMeta",
           "uses_skb_meta"]
