"""A code generator for classic BPF: one straight-line Python function per program.

The idea is DPF's dynamic code generation: instead of interpreting, emit code
specialised to the program, with every constant inlined.  Classic BPF jumps
only forward, so a program is a DAG; it is emitted path by path as nested
``if`` statements, each path ending in a ``return``:

* a shared tail (an instruction with several predecessors) is inlined on each
  path while it is small; a large one becomes a separate function that the
  paths tail-call, so the code stays linear in the program size;
* A is tracked symbolically along each path: after ``ldh [12]`` A is "the two
  bytes at 12", so ``jeq #0x800`` compiles to ``p[12] == 8 and p[13] == 0`` and
  the integer is built only if something needs it; after a taken ``jeq #k`` A
  is the constant k; X after ``ldxb 4*([k]&0xf)`` is known to be <= 60, so
  ``ldh [x + 14]`` needs one length check and no wrap-around handling;
* the bounds checks of a straight-line run of loads are hoisted to its start
  (any failing load makes the program return 0, so which one fails does not
  matter) and a length once checked on a path is never checked again;
* the uninitialised scratch slots of a path read as the constant 0.

``.counted()`` is a second function generated the same way but without
hoisting, returning ``(verdict, instructions executed)``: since every path is
straight-line code, the count at each ``return`` is a constant.

Rare operations (negative offsets, ancillary data other than plain sk_buff
fields, LD IND falling outside the packet) call the reference interpreter's
helpers, so both engines share one definition of them.

The source is built only from validated integers (never from user text) and
compiled with a fixed file name.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol, runtime_checkable

from lsfsim.bpf import vm
from lsfsim.bpf.instructions import (
    CONDITIONAL_JUMPS,
    PACKET_LOADS,
    RETURNS,
    TAX,
    TXA,
    ALUOp,
    ALUOpConstant,
    ALUOpX,
    Instruction,
    Jump,
    JumpIf,
    JumpIfX,
    JumpTest,
    LoadAbsolute,
    LoadConstant,
    LoadIndirect,
    LoadLength,
    LoadMemShift,
    LoadScratch,
    NegateA,
    RetConstant,
    StoreScratch,
    decode_program,
    successors,
)
from lsfsim.bpf.isa import (
    SKF_AD_ALU_XOR_X,
    SKF_AD_NLATTR,
    SKF_AD_NLATTR_NEST,
    SKF_AD_OFF,
    SKF_AD_PAY_OFFSET,
    SKF_AD_RANDOM,
    Insn,
    check_fields,
)
from lsfsim.bpf.meta import DEFAULT_META, SkbMeta
from lsfsim.bpf.versions import KernelSemantics

U32 = 0xFFFFFFFF
_FILENAME = "<lsfsim-bpf-jit>"
INLINE_BUDGETS = (48, 12, 4, 0)
"""Largest shared tail (in instructions, after its own inlining) copied onto each path."""
MAX_DEPTH = 40
"""Deepest ``if`` nesting before a branch is split off into a function."""


@runtime_checkable
class CompiledFilter(Protocol):
    """What compile_program returns: a plain Python function with three attributes.

    (A function, not an object with ``__call__``: the call is half as expensive.)
    """

    source: str
    ninsns: int

    def __call__(self, packet: bytes, meta: SkbMeta | None = None,
                 wirelen: int | None = None) -> int: ...

    def counted(self, packet: bytes, meta: SkbMeta | None = None,
                wirelen: int | None = None) -> tuple[int, int]: ...


def compile_program(insns: Sequence[Insn], sem: KernelSemantics) -> CompiledFilter:
    """Generate and compile Python for a program ``sk_chk_filter`` has accepted."""
    insns = tuple(Insn(*i) for i in insns)
    for pc, insn in enumerate(insns):
        check_fields(insn, pc)  # only integers of the right width reach the source
    prog = decode_program(insns)
    if any(isinstance(ins, Jump) and ins.k >> 31 for ins in prog):
        return _interpreted(insns, sem)
    last = None
    for budget in INLINE_BUDGETS:
        plan = _Plan(prog, budget)
        if plan.total <= max(6 * len(insns), 3000) or budget == INLINE_BUDGETS[-1]:
            last = plan
            break
    assert last is not None
    plain = _Emitter(prog, sem, last, counted=False).module("_filter")
    counted = _Emitter(prog, sem, last, counted=True).module("_counted")
    source = plain + "\n\n" + counted
    namespace = _namespace(sem)
    exec(compile(source, _FILENAME, "exec"), namespace)  # noqa: S102 - integers only
    fn = namespace["_filter"]
    fn.counted = namespace["_counted"]
    fn.source = source
    fn.ninsns = len(insns)
    fn.semantics = sem
    return fn


def _interpreted(insns: tuple[Insn, ...], sem: KernelSemantics) -> CompiledFilter:
    """A program with backward jumps (libpcap's ``protochain`` loops) is no DAG: it
    is not compiled but handed to the reference interpreter."""

    def _filter(p: bytes, meta: SkbMeta | None = None, wirelen: int | None = None) -> int:
        return vm.execute(insns, p, meta, sem, wirelen)[0]

    def _counted(p: bytes, meta: SkbMeta | None = None,
                 wirelen: int | None = None) -> tuple[int, int]:
        return vm.execute(insns, p, meta, sem, wirelen)

    fn: Any = _filter    # a function with a CompiledFilter's attributes
    fn.counted = _counted
    fn.source = "# backward jumps: run by lsfsim.bpf.vm.execute, not compiled\n"
    fn.ninsns = len(insns)
    fn.semantics = sem
    return fn


def _namespace(sem: KernelSemantics) -> dict:
    """The globals of the generated code: loaders and the interpreter's helpers."""

    def lk(p: bytes, k: int, size: int, meta: SkbMeta) -> int | None:
        return vm.load_kernel(p, k, size, sem, meta)

    def ind(p: bytes, k: int, size: int, a: int, x: int, meta: SkbMeta | None) -> int | None:
        meta = DEFAULT_META if meta is None else meta
        val, _, fail = vm.load_abs_ind(True, k, size, a, x, p, meta, sem, 0)
        return None if fail else val

    def nla(p: bytes, a: int, x: int, nest: bool) -> int | None:
        return vm.nlattr(p, a, x, nest, sem)

    def vlan(off: int, meta: SkbMeta) -> int:
        return vm.vlan_value(off, meta, sem)

    return {
        "__builtins__": {"len": len},
        "W": struct.Struct(">I").unpack_from,
        "H": struct.Struct(">H").unpack_from,
        "_DM": DEFAULT_META,
        "_lk": lk,
        "_ind": ind,
        "_nla": nla,
        "_vlan": vlan,
        "_poff": vm.skb_get_poff,
        "_rand": vm.random_u32,
    }


# --- planning: which shared tails become functions -----------------------------------
class _Plan:
    """Predecessor counts, expanded sizes and the set of pcs emitted as functions."""

    def __init__(self, prog: tuple[Instruction, ...], budget: int) -> None:
        n = len(prog)
        preds = [0] * n
        preds[0] = 1
        reach = [False] * n
        reach[0] = True
        for pc, ins in enumerate(prog):
            if not reach[pc]:
                continue
            for t in successors(ins, pc):
                if t < n:
                    preds[t] += 1
                    reach[t] = True
        self.funcs: set[int] = set()
        size = [0] * (n + 1)
        for pc in range(n - 1, -1, -1):
            s = 1 + sum(1 if t in self.funcs else size[t]
                        for t in successors(prog[pc], pc) if t < n)
            if preds[pc] >= 2 and s > budget and pc != 0:
                self.funcs.add(pc)
            size[pc] = s
        self.size = size
        self.total = size[0] + sum(size[f] for f in self.funcs)


# --- emission -------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Val:
    """A register's value on the current path: a Python expression, maybe more."""

    expr: str
    const: int | None = None
    pkt: tuple[bool, int, int] | None = None
    """(relative to X, offset, size): packet bytes already bounds-checked on this path."""
    bound: int | None = None
    """An upper bound of the value, when one is known (MSH gives X <= 60)."""

    @staticmethod
    def of(v: int) -> _Val:
        return _Val(str(v), const=v, bound=v)

    @staticmethod
    def load(xdep: bool, off: int, size: int) -> _Val:
        at = f"X + {off}" if xdep else str(off)
        expr = {4: f"W(p, {at})[0]", 2: f"H(p, {at})[0]", 1: f"p[{at}]"}[size]
        return _Val(expr, pkt=(xdep, off, size), bound=(1 << (8 * size)) - 1)

    def byte(self, i: int) -> str:
        """The expression of byte i of a lazy packet load."""
        assert self.pkt is not None
        xdep, off, _ = self.pkt
        return f"p[X + {off + i}]" if xdep else f"p[{off + i}]"


_VAR_A, _VAR_X = _Val("A"), _Val("X")


@dataclass(frozen=True, slots=True)
class _Ctx:
    """The state of one path: registers, written slots, checked length, counters."""

    a: _Val
    x: _Val
    written: frozenset[int]
    checked: int  # n >= checked is known on this path
    count: int  # instructions executed so far on this path (after the base)
    rnd: int  # RANDOM loads so far on this path (after the base)
    depth: int


class _Emitter:
    def __init__(self, prog: tuple[Instruction, ...], sem: KernelSemantics, plan: _Plan,
                 counted: bool) -> None:
        self.prog = prog
        self.sem = sem
        self.plan = plan
        self.counted = counted
        self.funcs = set(plan.funcs)
        self.lines: list[str] = []
        self.uses_len = any(isinstance(ins, LoadLength) for ins in prog)
        self.uses_pkt = any(isinstance(ins, PACKET_LOADS) for ins in prog)
        self.uses_rnd = any(isinstance(ins, LoadAbsolute) and ins.ancillary == SKF_AD_RANDOM
                            for ins in prog)
        self.uses_meta = not sem.libpcap and any(
            isinstance(ins, (LoadAbsolute, LoadMemShift)) and ins.k >> 31 for ins in prog)
        self.uses_ind = not sem.libpcap and any(isinstance(ins, LoadIndirect) for ins in prog)
        self.slots = sorted({ins.n for ins in prog if isinstance(ins, LoadScratch)})

    # --- output helpers
    def out(self, ind: int, text: str) -> None:
        self.lines.append("    " * ind + text)

    def ret(self, ctx: _Ctx, value: str) -> str:
        if not self.counted:
            return f"return {value}"
        base = "c + " if ctx is not None and self._in_func else ""
        return f"return ({value}, {base}{ctx.count})"

    def fail(self, ctx: _Ctx) -> str:
        return self.ret(ctx, "0")

    def params(self) -> list[str]:
        ps = ["p"]
        if self.uses_pkt:
            ps.append("n")
        if self.uses_meta or self.uses_rnd or self.uses_ind:
            ps.append("meta")
        if self.uses_len:
            ps.append("L")
        ps += ["A", "X"]
        if self.uses_rnd:
            ps.append("ri")
        if self.counted:
            ps.append("c")
        ps += [f"m{s}" for s in self.slots]
        return ps

    # --- module
    def module(self, name: str) -> str:
        self._in_func = False
        self.out(0, f"def {name}(p, meta=None, wirelen=None):")
        if self.uses_pkt:
            self.out(1, "n = len(p)")
        if self.uses_meta or self.uses_rnd:
            self.out(1, "if meta is None:")
            self.out(2, "meta = _DM")
        if self.uses_len:
            self.out(1, "L = len(p) if wirelen is None else wirelen & 4294967295")
        ctx = _Ctx(_Val.of(0), _Val.of(0), frozenset(), 0, 0, 0, 0)
        self.path(0, ctx, 1, entry=True)
        done: set[int] = set()
        while self.funcs - done:
            pc = min(self.funcs - done)
            done.add(pc)
            self._in_func = True
            self.out(0, "")
            self.out(0, f"def {self.fname(pc)}({', '.join(self.params())}):")
            fctx = _Ctx(_VAR_A, _VAR_X, frozenset(self.slots), 0, 0, 0, 0)
            self.path(pc, fctx, 1, entry=True)
        return "\n".join(self.lines) + "\n"

    def fname(self, pc: int) -> str:
        return f"_b{pc}" + ("_c" if self.counted else "")

    def call(self, pc: int, ctx: _Ctx) -> str:
        args = []
        for p in self.params():
            if p == "A":
                args.append(ctx.a.expr)
            elif p == "X":
                args.append(ctx.x.expr)
            elif p == "ri":
                args.append(self.rnd_expr(ctx))
            elif p == "c":
                args.append(f"c + {ctx.count}" if self._in_func else str(ctx.count))
            elif p[0] == "m" and p[1:].isdigit():
                slot = int(p[1:])
                args.append(p if slot in ctx.written else "0")
            else:
                args.append(p)
        return f"{self.fname(pc)}({', '.join(args)})"

    def rnd_expr(self, ctx: _Ctx) -> str:
        return f"ri + {ctx.rnd}" if self._in_func else str(ctx.rnd)

    # --- one path
    def need(self, ins: Instruction) -> int:
        """Bytes of packet a positive ABS/MSH load needs (0: not such a load)."""
        if isinstance(ins, LoadMemShift):
            size = 1
        elif isinstance(ins, LoadAbsolute):
            size = ins.size
        else:
            return 0
        if not self.sem.libpcap and ins.k >> 31:
            return 0
        return ins.k + size

    def hoist(self, pc: int, ctx: _Ctx, ind: int) -> _Ctx:
        """Plain mode: one bounds check for the loads of the straight-line run at pc."""
        if self.counted:
            return ctx
        most = 0
        n = len(self.prog)
        q = pc
        while q < n:
            ins = self.prog[q]
            most = max(most, self.need(ins))
            if isinstance(ins, _ENDS_RUN) or (q + 1) in self.funcs:
                break
            q += 1
        if most > ctx.checked:
            self.out(ind, f"if n < {most}:")
            self.out(ind + 1, self.fail(ctx))
            ctx = replace(ctx, checked=most)
        return ctx

    def enter(self, pc: int, ctx: _Ctx, ind: int) -> _Ctx:
        """Arriving at ``pc`` by a jump: hoist its run's checks unless it is a call."""
        return ctx if pc in self.funcs else self.hoist(pc, ctx, ind)

    def path(self, pc: int, ctx: _Ctx, ind: int, entry: bool = False) -> None:
        """Emit everything from ``pc`` on this path, until every branch has returned."""
        prog = self.prog
        if entry or pc not in self.funcs:
            ctx = self.hoist(pc, ctx, ind)
        while True:
            if pc in self.funcs and not entry:
                self.out(ind, f"return {self.call(pc, ctx)}")
                return
            entry = False
            ins = prog[pc]
            ctx = replace(ctx, count=ctx.count + 1)
            if isinstance(ins, RETURNS):
                self.out(ind, self.ret(ctx, str(ins.k) if isinstance(ins, RetConstant)
                                       else ctx.a.expr))
                return
            if isinstance(ins, Jump):
                pc = pc + 1 + ins.k
                ctx = self.enter(pc, ctx, ind)
                continue
            if isinstance(ins, CONDITIONAL_JUMPS):
                jt, jf = ins.jt, ins.jf
                if jt == jf:
                    pc = pc + 1 + jt
                    ctx = self.enter(pc, ctx, ind)
                    continue
                cond, a_true = self.condition(ins, ctx)
                t, f = pc + 1 + jt, pc + 1 + jf
                ctx_t = replace(ctx, a=a_true) if a_true is not None else ctx
                if cond is True or cond is False:
                    pc, ctx = (t, ctx_t) if cond else (f, ctx)
                    ctx = self.enter(pc, ctx, ind)
                    continue
                size = self.plan.size
                st = 1 if t in self.funcs else size[t]
                sf = 1 if f in self.funcs else size[f]
                inner_true = st <= sf
                inner, inner_ctx = (t, ctx_t) if inner_true else (f, ctx)
                outer, outer_ctx = (f, ctx) if inner_true else (t, ctx_t)
                self.out(ind, f"if {cond}:" if inner_true else f"if not ({cond}):")
                if ctx.depth + 1 >= MAX_DEPTH and inner not in self.funcs:
                    self.funcs.add(inner)
                self.path(inner, replace(inner_ctx, depth=ctx.depth + 1), ind + 1)
                pc, ctx = outer, outer_ctx
                ctx = self.enter(pc, ctx, ind)
                continue
            after = self.straight(ins, ctx, ind)
            if after is None:
                return
            ctx = after
            pc += 1

    def condition(self, ins: JumpIf | JumpIfX, ctx: _Ctx) -> tuple[str | bool, _Val | None]:
        """The test of a conditional jump, and A's value when it is taken (if known)."""
        op = ins.test
        a = ctx.a
        if isinstance(ins, JumpIfX):  # against X
            x = ctx.x
            if a.const is not None and x.const is not None:
                return _compare(op, a.const, x.const), None
            sym = {JumpTest.JEQ: "==", JumpTest.JGT: ">", JumpTest.JGE: ">="}.get(op)
            if sym:
                return f"{a.expr} {sym} {x.expr}", None
            return f"{a.expr} & {x.expr}", None
        k = ins.k
        if a.const is not None:
            return _compare(op, a.const, k), None
        if a.bound is not None:  # decided by the bound alone?
            if op == JumpTest.JEQ and k > a.bound or op == JumpTest.JGT and k >= a.bound:
                return False, None
            if op == JumpTest.JGE and k > a.bound:
                return False, None
        if op == JumpTest.JEQ:
            if a.pkt is not None:
                # Byte by byte: cheaper than building the integer, and most
                # mismatches are decided by the first byte.
                size = a.pkt[2]
                want = k.to_bytes(size, "big")
                return " and ".join(f"{a.byte(i)} == {want[i]}" for i in range(size)), \
                    _Val.of(k)
            return f"{a.expr} == {k}", _Val.of(k)
        if op == JumpTest.JGT:
            return f"{a.expr} > {k}", None
        if op == JumpTest.JGE:
            return f"{a.expr} >= {k}", None
        if a.pkt is not None:
            size = a.pkt[2]
            mask = (k & ((1 << (8 * size)) - 1)).to_bytes(size, "big")
            terms = [a.byte(i) if mask[i] == 0xFF else f"{a.byte(i)} & {mask[i]}"
                     for i in range(size) if mask[i]]
            return (" or ".join(terms) if terms else False), None
        return f"{a.expr} & {k}", None

    def straight(self, ins: Instruction, ctx: _Ctx, ind: int) -> _Ctx | None:
        """Emit one non-jump, non-RET instruction; return the new path state."""
        out = self.out
        a, x = ctx.a, ctx.x
        if getattr(ins, "dst", None) == "X" or isinstance(ins, LoadMemShift):
            ctx = self.pin_a(ctx, ind)
        match ins:
            case LoadConstant(dst=dst, k=k):
                v = _Val.of(k)
            case LoadLength(dst=dst):
                v = _Val("L")
            case LoadScratch(dst=dst, n=n):
                if n not in ctx.written:
                    v = _Val.of(0)  # never written on this path: 0 (see vm.py)
                else:
                    out(ind, f"{dst} = m{n}")
                    v = _VAR_A if dst == "A" else _VAR_X
            case LoadMemShift(k=k):
                return self.msh(k, ctx, ind)
            case LoadAbsolute():
                return self.ld_abs(ins, ctx, ind)
            case LoadIndirect():
                return self.ld_ind(ins, ctx, ind)
            case StoreScratch(src=src, n=n):
                out(ind, f"m{n} = {(a if src == 'A' else x).expr}")
                return replace(ctx, written=ctx.written | {n})
            case TAX():
                ctx = self.pin_a(ctx, ind)
                a = ctx.a
                if a.const is not None or a.expr == "L":
                    return replace(ctx, x=_Val(a.expr, const=a.const, bound=a.bound))
                out(ind, f"X = {a.expr}")
                return replace(ctx, x=_Val("X", bound=a.bound))
            case TXA():
                if x.const is not None or x.expr == "L":
                    return replace(ctx, a=_Val(x.expr, const=x.const, bound=x.bound))
                out(ind, f"A = {x.expr}")
                return replace(ctx, a=_Val("A", bound=x.bound))
            case ALUOpConstant() | ALUOpX() | NegateA():
                return self.alu(ins, ctx, ind)
            case _:  # pragma: no cover - refused by the checker
                raise ValueError(f"cannot compile {ins!r}")
        return replace(ctx, a=v) if dst == "A" else replace(ctx, x=v)

    def pin_a(self, ctx: _Ctx, ind: int) -> _Ctx:
        """X is about to change: a lazy load at X + k must become a value first."""
        if ctx.a.pkt is not None and ctx.a.pkt[0]:
            self.out(ind, f"A = {ctx.a.expr}")
            return replace(ctx, a=_Val("A", bound=ctx.a.bound))
        return ctx

    def alu(self, ins: ALUOpConstant | ALUOpX | NegateA, ctx: _Ctx, ind: int) -> _Ctx | None:
        out = self.out
        a, x = ctx.a.expr, ctx.x.expr
        if isinstance(ins, NegateA):
            out(ind, f"A = -{a} & 4294967295" if a.isidentifier() else
                f"A = -({a}) & 4294967295")
            return replace(ctx, a=_Val("A"))
        op = ins.op
        use_x = isinstance(ins, ALUOpX)
        k = 0 if isinstance(ins, ALUOpX) else ins.k
        bound = None
        if op == ALUOp.AND and not use_x:
            bound = k if ctx.a.bound is None else min(k, ctx.a.bound)
        elif op == ALUOp.RSH and not use_x:
            bound = (U32 if ctx.a.bound is None else ctx.a.bound) >> (k & 31)
        src = x if use_x else str(k)
        if op == ALUOp.ADD:
            out(ind, f"A = ({a} + {src}) & 4294967295")
        elif op == ALUOp.SUB:
            out(ind, f"A = ({a} - {src}) & 4294967295")
        elif op == ALUOp.MUL:
            out(ind, f"A = ({a} * {src}) & 4294967295")
        elif op in (ALUOp.DIV, ALUOp.MOD):
            sym = "//" if op == ALUOp.DIV else "%"
            if use_x:
                if ctx.x.const == 0:
                    out(ind, self.fail(ctx))
                    return None  # the path ends here
                if ctx.x.const is None:
                    out(ind, f"if {x} == 0:")
                    out(ind + 1, self.fail(ctx))
                out(ind, f"A = {a} {sym} {x}")
            elif op == ALUOp.DIV and self.sem.div_reciprocal:
                out(ind, f"A = ({a} * {vm.reciprocal_value(k)}) >> 32")
            else:
                out(ind, f"A = {a} {sym} {k}")
        elif op in (ALUOp.OR, ALUOp.AND, ALUOp.XOR):
            sym = {ALUOp.OR: "|", ALUOp.AND: "&", ALUOp.XOR: "^"}[op]
            out(ind, f"A = {a} {sym} {src}")
        else:  # LSH, RSH
            if use_x and self.sem.shift_x_ge32_zero:
                shifted = f"({a} << {x}) & 4294967295" if op == ALUOp.LSH else f"{a} >> {x}"
                out(ind, f"A = {shifted} if {x} < 32 else 0")
            else:
                count = f"({x} & 31)" if use_x else str(k & 31)
                if op == ALUOp.LSH:
                    out(ind, f"A = ({a} << {count}) & 4294967295")
                else:
                    out(ind, f"A = {a} >> {count}")
        return replace(ctx, a=_Val("A", bound=bound))

    # --- loads
    def check(self, need: int, ctx: _Ctx, ind: int) -> _Ctx:
        if need > ctx.checked:
            self.out(ind, f"if n < {need}:")
            self.out(ind + 1, self.fail(ctx))
            ctx = replace(ctx, checked=need)
        return ctx

    def ld_abs(self, ins: LoadAbsolute, ctx: _Ctx, ind: int) -> _Ctx:
        size, k = ins.size, ins.k
        sem = self.sem
        if sem.libpcap or not k >> 31:
            ctx = self.check(k + size, ctx, ind)
            return replace(ctx, a=_Val.load(False, k, size))
        off = k - (1 << 32)
        anc = off - SKF_AD_OFF
        if off >= SKF_AD_OFF and anc in sem.ancillary:
            return self.ancillary(anc, ctx, ind)
        # NET/LL (or a range where nothing can be read): the interpreter's load_pointer.
        self.out(ind, f"A = _lk(p, {off}, {size}, meta)")
        self.out(ind, "if A is None:")
        self.out(ind + 1, self.fail(ctx))
        return replace(ctx, a=_VAR_A)

    def ancillary(self, anc: int, ctx: _Ctx, ind: int) -> _Ctx:
        out = self.out
        field = vm.ANC_FIELDS.get(anc)
        if field is not None:
            out(ind, f"A = meta.{field[0]} & {field[1]}")
        elif anc == SKF_AD_ALU_XOR_X:
            out(ind, f"A = {ctx.a.expr} ^ {ctx.x.expr}")
        elif anc == SKF_AD_RANDOM:
            out(ind, f"A = _rand(meta.random_seed, {self.rnd_expr(ctx)})")
            ctx = replace(ctx, rnd=ctx.rnd + 1)
        elif anc == SKF_AD_PAY_OFFSET:
            out(ind, "A = _poff(p, meta)")
        elif anc in (SKF_AD_NLATTR, SKF_AD_NLATTR_NEST):
            out(ind, f"A = _nla(p, {ctx.a.expr}, {ctx.x.expr}, {anc == SKF_AD_NLATTR_NEST})")
            out(ind, "if A is None:")
            out(ind + 1, self.fail(ctx))
        else:
            out(ind, f"A = _vlan({anc}, meta)")
        return replace(ctx, a=_VAR_A)

    def ld_ind(self, ins: LoadIndirect, ctx: _Ctx, ind: int) -> _Ctx:
        size, k = ins.size, ins.k
        out = self.out
        xv = ctx.x
        if xv.const is not None:  # a constant offset after all
            off = xv.const + k if self.sem.libpcap else (xv.const + k) & U32
            if self.sem.libpcap or not off >> 31:
                ctx = self.check(off + size, ctx, ind)
                return replace(ctx, a=_Val.load(False, off, size))
        elif xv.bound is not None and xv.expr == "X" and xv.bound + k + size < 1 << 31:
            # X + k can neither wrap nor be negative: only the packet end can fail.
            if xv.bound + k + size > ctx.checked:
                out(ind, f"if n < X + {k + size}:")
                out(ind + 1, self.fail(ctx))
            return replace(ctx, a=_Val.load(True, k, size))
        x = xv.expr
        load = {4: "W(p, o)[0]", 2: "H(p, o)[0]", 1: "p[o]"}[size]
        if self.sem.libpcap:
            out(ind, f"o = {x} + {k}")
            out(ind, f"if o + {size} > n:")
            out(ind + 1, self.fail(ctx))
            out(ind, f"A = {load}")
            return replace(ctx, a=_VAR_A)
        out(ind, f"o = ({x} + {k}) & 4294967295")
        out(ind, f"if o + {size} <= n:")
        out(ind + 1, f"A = {load}")
        out(ind, "else:")
        # Outside the packet: negative offsets (and <= 2.6.37 ancillary data) or a failure.
        out(ind + 1, f"A = _ind(p, {k}, {size}, {ctx.a.expr}, {x}, meta)")
        out(ind + 1, "if A is None:")
        out(ind + 2, self.fail(ctx))
        return replace(ctx, a=_VAR_A)

    def msh(self, k: int, ctx: _Ctx, ind: int) -> _Ctx:
        ctx = self.pin_a(ctx, ind)
        if self.sem.libpcap or not k >> 31:
            ctx = self.check(k + 1, ctx, ind)
            self.out(ind, f"X = (p[{k}] & 15) << 2")
        else:
            self.out(ind, f"X = _lk(p, {k - (1 << 32)}, 1, meta)")
            self.out(ind, "if X is None:")
            self.out(ind + 1, self.fail(ctx))
            self.out(ind, "X = (X & 15) << 2")
        return replace(ctx, x=_Val("X", bound=60))


def _compare(op: JumpTest, a: int, b: int) -> bool:
    if op == JumpTest.JEQ:
        return a == b
    if op == JumpTest.JGT:
        return a > b
    if op == JumpTest.JGE:
        return a >= b
    return bool(a & b)


_ENDS_RUN = (Jump, *CONDITIONAL_JUMPS, *RETURNS)
"""Instructions after which a straight-line run of loads ends."""

