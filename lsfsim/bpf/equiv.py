"""Proving two classic BPF programs equal, or finding the packet that tells them apart.

Each program becomes one z3 bit-vector term: the u32 it returns, as a function
of a symbolic packet (a z3 Array from offsets to bytes), its length ``L``
(0..max_len) and the sk_buff fields ancillary loads read.  Classic BPF jumps
only forward, so a program is a DAG: it is executed symbolically in pc order,
the states arriving at an instruction by different edges being merged with
``If`` on the (mutually exclusive) conditions of those edges, so the term grows
with the program, not with its number of paths.  Then z3 is asked for inputs on
which the two terms differ: none (unsat) means the programs are equivalent for
every packet up to max_len bytes; a model is turned into a concrete witness
packet, which is run through lsfsim's own interpreter (and libpcap's
``bpf_filter`` when no sk_buff field is involved) to confirm the difference.

The semantics are those of ``lsfsim.bpf.vm`` for the kernel given
(versions.py): a load outside the packet ends the program with 0, as do
division and modulo by X == 0; the reciprocal DIV K of 2.6.38-3.12; shifts by
X & 31 (libpcap: by X, 0 from 32 on); SKF_NET_OFF/SKF_LL_OFF loads, with the
first-byte-only check up to 2.6.37; ancillary data decoded at run time (any
width, LD IND too) up to 2.6.37.  BPF_LEN is ``L`` (skb->len; for libpcap
semantics the wire length is taken equal to the captured length).

Simplifications, each one said where the witness is built:

* sk_buff fields (protocol, pkt_type, ifindex, mark, queue_mapping, hatype,
  rxhash, cpu, the VLAN tag) are free inputs of their kernel widths, independent
  of the packet bytes: a witness may pair a frame with a protocol value that
  eth_type_trans would not give it.  The network header is at offset 14
  (``SkbMeta.network_offset``), as for Ethernet.
* SKF_AD_PAY_OFFSET (the flow dissector) and SKF_AD_NLATTR(_NEST) (netlink
  attribute walks) are abstracted: uninterpreted functions of the registers
  they read, shared by both programs.  "Equivalent" stays sound; a difference
  that rests on them is reported as ``NotModelled`` unless the interpreter
  confirms it.  SKF_AD_RANDOM is not modelled: ``NotModelled``.
* Programs with backward jumps (libpcap's ``protochain`` loops) are no DAG:
  ``NotModelled``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import z3  # type: ignore[import-untyped]

from lsfsim.bpf import vm
from lsfsim.bpf.check import sk_chk_filter
from lsfsim.bpf.instructions import (
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
    RetA,
    RetConstant,
    StoreScratch,
    decode_program,
)
from lsfsim.bpf.isa import (
    ANCILLARY_NAMES,
    BPF_MEMWORDS,
    SKF_AD_ALU_XOR_X,
    SKF_AD_NLATTR,
    SKF_AD_NLATTR_NEST,
    SKF_AD_OFF,
    SKF_AD_PAY_OFFSET,
    SKF_AD_VLAN_TAG,
    SKF_AD_VLAN_TAG_PRESENT,
    SKF_AD_VLAN_TPID,
    SKF_LL_OFF,
    SKF_NET_OFF,
    Insn,
    s32,
)
from lsfsim.bpf.meta import SkbMeta
from lsfsim.bpf.versions import KernelSemantics, semantics

DEFAULT_MAX_LEN = 1514
DEFAULT_TIMEOUT = 30.0
NETWORK_OFFSET = SkbMeta().network_offset


# --- results -----------------------------------------------------------------------
@dataclass(frozen=True)
class Equivalent:
    """Both programs return the same value for every packet of 0..max_len bytes."""

    kernel: str
    max_len: int
    seconds: float


@dataclass(frozen=True)
class Witness:
    """A packet (and sk_buff fields) on which the programs return different values.

    ``value_a``/``value_b`` are what lsfsim's interpreter returned on it; ``libpcap``
    what libpcap's bpf_filter returned for each program (None when not run: a
    program reads sk_buff fields, or libpcap cannot run it).
    """

    packet: bytes
    meta: SkbMeta
    value_a: int
    value_b: int
    kernel: str
    max_len: int
    seconds: float
    meta_fields: dict[str, int] = field(default_factory=dict)
    """The sk_buff fields the programs read, with the values the witness needs."""
    libpcap: tuple[int, int] | None = None


class Undecided(Exception):
    """No answer: the solver ran out of time, or a program does what is not modelled."""


class SolverTimeout(Undecided):
    pass


class NotModelled(Undecided):
    pass


# --- the symbolic machine -------------------------------------------------------------
_BV32 = z3.BitVecSort(32)
_ZERO = z3.BitVecVal(0, 32)

# sk_buff fields by ancillary offset: (SkbMeta field, width in bits)
_META_WIDTH = {"protocol": 16, "pkt_type": 3, "ifindex": 32, "mark": 32, "queue_mapping": 16,
               "hatype": 16, "rxhash": 32, "cpu": 32, "vlan_tci": 16, "vlan_present": 1,
               "vlan_proto": 16}


class _Inputs:
    """What both programs read: the packet, its length, the sk_buff fields."""

    def __init__(self, max_len: int) -> None:
        self.pkt = z3.Array("pkt", _BV32, z3.BitVecSort(8))
        self.length = z3.BitVec("len", 32)
        self.len64 = z3.ZeroExt(32, self.length)
        self.max_len = max_len
        self.meta: dict[str, z3.BitVecRef] = {}
        self.abstracted: set[str] = set()
        self.direct: set[str] = set()
        """The fields an LD ABS reads (not only a case of an LD IND's offset)."""

    def field(self, name: str) -> z3.BitVecRef:
        """The sk_buff field ``name``, zero-extended to 32 bits (made on first use)."""
        var = self.meta.get(name)
        if var is None:
            var = self.meta[name] = z3.BitVec(f"skb.{name}", _META_WIDTH[name])
        width = _META_WIDTH[name]
        return var if width == 32 else z3.ZeroExt(32 - width, var)

    def abstract(self, name: str, args: tuple[z3.BitVecRef, ...]) -> z3.BitVecRef:
        """An ancillary value computed from the packet in ways not modelled (the flow
        dissector, netlink attribute walks): an uninterpreted function of the
        registers it takes, the same in both programs.  Sound for "equivalent"; a
        witness that depends on it may not verify (then the answer is NotModelled)."""
        self.abstracted.add(name)
        if not args:
            return z3.BitVec(f"skb.{name}", 32)
        fn = z3.Function(f"skb.{name}", *([_BV32] * len(args)), _BV32)
        return fn(*args)

    def abstract_fails(self, name: str, args: tuple[z3.BitVecRef, ...]) -> z3.BoolRef:
        """Whether such an abstracted load drops the packet (NLATTR up to 3.14)."""
        fn = z3.Function(f"skb.{name}_drops", *([_BV32] * len(args)), z3.BoolSort())
        return fn(*args)

    def byte(self, pos64: z3.BitVecRef) -> z3.BitVecRef:
        return z3.Select(self.pkt, z3.Extract(31, 0, pos64))


@dataclass
class _State:
    """A, X and M[] on the edges into one instruction, under ``guard``."""

    guard: z3.BoolRef
    a: z3.BitVecRef
    x: z3.BitVecRef
    mem: tuple[z3.BitVecRef, ...]


def _merge(states: list[_State]) -> _State:
    """One state from several mutually exclusive incoming edges."""
    if len(states) == 1:
        return states[0]
    guard = z3.Or(*[s.guard for s in states])

    def pick(values: list[z3.BitVecRef]) -> z3.BitVecRef:
        first = values[0]
        if all(v.eq(first) for v in values[1:]):
            return first
        term = values[-1]
        for s, v in zip(reversed(states[:-1]), reversed(values[:-1]), strict=True):
            term = z3.If(s.guard, v, term)
        return term

    mem = tuple(pick([s.mem[i] for s in states]) for i in range(BPF_MEMWORDS))
    return _State(guard, pick([s.a for s in states]), pick([s.x for s in states]), mem)


class _Program:
    """One program as a term: ``result`` is what it returns."""

    def __init__(self, insns: Sequence[Insn], sem: KernelSemantics, inputs: _Inputs,
                 name: str) -> None:
        self.sem = sem
        self.inp = inputs
        self.name = name
        prog = decode_program(tuple(insns))
        n = len(prog)
        incoming: list[list[_State]] = [[] for _ in range(n)]
        incoming[0].append(_State(z3.BoolVal(True), _ZERO, _ZERO, (_ZERO,) * BPF_MEMWORDS))
        self.exits: list[tuple[z3.BoolRef, z3.BitVecRef]] = []
        for pc, ins in enumerate(prog):
            if not incoming[pc]:
                continue
            state = _merge(incoming[pc])
            incoming[pc] = []  # free the edges
            for target, out in self.step(pc, ins, state):
                if target >= n or target <= pc:
                    raise NotModelled(f"{name}: instruction {pc} jumps backwards or out of the "
                                      "program (a loop is not a DAG)")
                incoming[target].append(out)
        term: z3.BitVecRef = _ZERO
        for guard, value in reversed(self.exits):
            term = z3.If(guard, value, term)
        self.result = z3.simplify(term) if len(self.exits) < 64 else term

    # --- one instruction ----------------------------------------------------------
    def step(self, pc: int, ins: Instruction, st: _State) -> list[tuple[int, _State]]:
        """The edges out of ``pc``; returns and failures are recorded in ``exits``."""
        nxt = pc + 1

        def go(**changes: z3.ExprRef | tuple[z3.BitVecRef, ...]) -> list[tuple[int, _State]]:
            return [(nxt, replace(st, **changes))]

        match ins:
            case RetConstant(k=k):
                self.exits.append((st.guard, z3.BitVecVal(k, 32)))
                return []
            case RetA():
                self.exits.append((st.guard, st.a))
                return []
            case LoadConstant(dst=dst, k=k):
                return go(**{dst.lower(): z3.BitVecVal(k, 32)})
            case LoadLength(dst=dst):
                return go(**{dst.lower(): self.inp.length})
            case LoadScratch(dst=dst, n=n):
                return go(**{dst.lower(): st.mem[n]})
            case StoreScratch(src=src, n=n):
                mem = list(st.mem)
                mem[n] = st.a if src == "A" else st.x
                return go(mem=tuple(mem))
            case TAX():
                return go(x=st.a)
            case TXA():
                return go(a=st.x)
            case NegateA():
                return go(a=-st.a)
            case ALUOpConstant(op=op, k=k):
                return self.alu(pc, op, z3.BitVecVal(k, 32), False, st, k)
            case ALUOpX(op=op):
                return self.alu(pc, op, st.x, True, st, None)
            case Jump(k=k):
                return [(pc + 1 + k, st)]
            case JumpIf(test=test, k=k, jt=jt, jf=jf):
                return self.branch(pc, test, z3.BitVecVal(k, 32), jt, jf, st)
            case JumpIfX(test=test, jt=jt, jf=jf):
                return self.branch(pc, test, st.x, jt, jf, st)
            case LoadAbsolute(size=size, k=k):
                ok, val = self.load_abs(pc, size, k, st)
                return self.loaded(ok, val, "a", st, nxt)
            case LoadIndirect(size=size, k=k):
                ok, val = self.load_ind(pc, size, k, st)
                return self.loaded(ok, val, "a", st, nxt)
            case LoadMemShift(k=k):
                if self.sem.libpcap:
                    ok, val = self.read(z3.BitVecVal(k, 64), 1, first_byte=False)
                else:
                    ok, val = self.load_static(s32(k), 1)
                return self.loaded(ok, (val & 0x0F) << 2, "x", st, nxt)
        raise NotModelled(f"{self.name}: instruction {pc} ({ins!r}) is not modelled")

    def loaded(self, ok: z3.BoolRef, val: z3.BitVecRef, reg: str, st: _State,
               nxt: int) -> list[tuple[int, _State]]:
        """After a load: the run ends with 0 where ``ok`` is false."""
        ok = z3.simplify(ok)
        if z3.is_false(ok):
            self.exits.append((st.guard, _ZERO))
            return []
        if not z3.is_true(ok):
            self.exits.append((z3.And(st.guard, z3.Not(ok)), _ZERO))
        guard = st.guard if z3.is_true(ok) else z3.And(st.guard, ok)
        a, x = (val, st.x) if reg == "a" else (st.a, val)
        return [(nxt, _State(guard, a, x, st.mem))]

    def branch(self, pc: int, test: JumpTest, src: z3.BitVecRef, jt: int, jf: int,
               st: _State) -> list[tuple[int, _State]]:
        if jt == jf:
            return [(pc + 1 + jt, st)]
        a = st.a
        if test == JumpTest.JEQ:
            cond = a == src
        elif test == JumpTest.JGT:
            cond = z3.UGT(a, src)
        elif test == JumpTest.JGE:
            cond = z3.UGE(a, src)
        else:
            cond = (a & src) != 0
        cond = z3.simplify(cond)
        out = []
        if not z3.is_false(cond):
            out.append((pc + 1 + jt, _State(z3.And(st.guard, cond), a, st.x, st.mem)))
        if not z3.is_true(cond):
            out.append((pc + 1 + jf, _State(z3.And(st.guard, z3.Not(cond)), a, st.x, st.mem)))
        return out

    def alu(self, pc: int, op: ALUOp, src: z3.BitVecRef, use_x: bool, st: _State,
            k: int | None) -> list[tuple[int, _State]]:
        a = st.a
        nxt = pc + 1
        if op in (ALUOp.DIV, ALUOp.MOD):
            if op == ALUOp.DIV and k is not None and self.sem.div_reciprocal:
                r = vm.reciprocal_value(k)
                val = z3.Extract(31, 0, z3.LShR(z3.ZeroExt(32, a) * r, 32))
                return [(nxt, _State(st.guard, val, st.x, st.mem))]
            val = z3.UDiv(a, src) if op == ALUOp.DIV else z3.URem(a, src)
            if not use_x:  # the checker refuses a constant 0
                return [(nxt, _State(st.guard, val, st.x, st.mem))]
            return self.loaded(src != 0, val, "a", st, nxt)
        if op == ALUOp.ADD:
            val = a + src
        elif op == ALUOp.SUB:
            val = a - src
        elif op == ALUOp.MUL:
            val = a * src
        elif op == ALUOp.OR:
            val = a | src
        elif op == ALUOp.AND:
            val = a & src
        elif op == ALUOp.XOR:
            val = a ^ src
        else:  # LSH, RSH: z3 shifts by >= 32 give 0, as libpcap's X shifts do
            count = src if use_x and self.sem.libpcap else src & 31
            val = a << count if op == ALUOp.LSH else z3.LShR(a, count)
        return [(nxt, _State(st.guard, val, st.x, st.mem))]

    # --- loads ----------------------------------------------------------------------
    def read(self, pos64: z3.BitVecRef, size: int,
             first_byte: bool) -> tuple[z3.BoolRef, z3.BitVecRef]:
        """``size`` big-endian bytes at ``pos64``: (in bounds, value).

        ``first_byte``: only the first byte must be inside the packet, later bytes
        read as 0 past its end (NET/LL loads up to 2.6.37).
        """
        inp = self.inp
        parts = []
        for i in range(size):
            b = inp.byte(pos64 + i)
            if first_byte and i:
                b = z3.If(z3.ULT(pos64 + i, inp.len64), b, z3.BitVecVal(0, 8))
            parts.append(b)
        val = parts[0] if size == 1 else z3.Concat(*parts)
        if size < 4:
            val = z3.ZeroExt(32 - 8 * size, val)
        ok = z3.ULT(pos64, inp.len64) if first_byte else z3.ULE(pos64 + size, inp.len64)
        return ok, val

    def load_static(self, k: int, size: int) -> tuple[z3.BoolRef, z3.BitVecRef]:
        """vm.load_kernel for a constant signed offset ``k``."""
        sem = self.sem
        if k >= 0:
            return self.read(z3.BitVecVal(k, 64), size, first_byte=False)
        if sem.anc_runtime and k >= SKF_AD_OFF:
            return z3.BoolVal(False), _ZERO
        if k >= SKF_NET_OFF:
            off = NETWORK_OFFSET + (k - SKF_NET_OFF)
        elif k >= SKF_LL_OFF:
            off = k - SKF_LL_OFF
        else:
            return z3.BoolVal(False), _ZERO
        if off < 0:
            return z3.BoolVal(False), _ZERO
        return self.read(z3.BitVecVal(off, 64), size, first_byte=sem.negoff_first_byte)

    def load_abs(self, pc: int, size: int, k: int, st: _State) -> tuple[z3.BoolRef, z3.BitVecRef]:
        sem = self.sem
        if sem.libpcap:
            return self.read(z3.BitVecVal(k, 64), size, first_byte=False)
        off = s32(k)
        anc = off - SKF_AD_OFF
        if off < 0 and anc in sem.ancillary and (not sem.anc_runtime or off >= SKF_AD_OFF):
            return self.ancillary(pc, anc, st)
        return self.load_static(off, size)

    def load_ind(self, pc: int, size: int, k: int, st: _State) -> tuple[z3.BoolRef, z3.BitVecRef]:
        """LD IND: the offset X + k is symbolic, so every range of load_kernel is a case."""
        sem = self.sem
        if sem.libpcap:  # u32 X + k, without wrap-around, against the buffer length
            return self.read(z3.ZeroExt(32, st.x) + k, size, first_byte=False)
        off = st.x + k  # as the kernel's int
        off64 = z3.SignExt(32, off)
        cases: list[tuple[z3.BoolRef, z3.BoolRef, z3.BitVecRef]] = []
        ok, val = self.read(off64, size, first_byte=False)
        cases.append((off >= 0, ok, val))
        if sem.anc_runtime:
            in_anc = z3.And(off >= SKF_AD_OFF, off < 0)
            for anc in sorted(sem.ancillary):
                ok, val = self.ancillary(pc, anc, st, direct=False)
                cases.append((z3.And(in_anc, off == SKF_AD_OFF + anc), ok, val))
            cases.append((in_anc, z3.BoolVal(False), _ZERO))
        first = sem.negoff_first_byte
        net = off64 - SKF_NET_OFF + NETWORK_OFFSET
        ok, val = self.read(net, size, first_byte=first)
        cases.append((off >= SKF_NET_OFF, ok, val))
        ll = off64 - SKF_LL_OFF
        ok, val = self.read(ll, size, first_byte=first)
        cases.append((off >= SKF_LL_OFF, ok, val))
        ok_term: z3.BoolRef = z3.BoolVal(False)
        val_term: z3.BitVecRef = _ZERO
        for cond, ok, val in reversed(cases):
            ok_term = z3.If(cond, ok, ok_term)
            val_term = z3.If(cond, val, val_term)
        return ok_term, val_term

    def ancillary(self, pc: int, anc: int, st: _State,
                  direct: bool = True) -> tuple[z3.BoolRef, z3.BitVecRef]:
        """SKF_AD_OFF + anc: (loaded, value): a free sk_buff field, A ^ X, the VLAN tag, or an
        abstraction (see _Inputs.abstract) of the flow dissector and netlink walks."""
        inp = self.inp
        ok = z3.BoolVal(True)
        anc_field = vm.ANC_FIELDS.get(anc)
        if anc_field is not None:
            if direct:
                inp.direct.add(anc_field[0])
            return ok, inp.field(anc_field[0])
        if anc == SKF_AD_ALU_XOR_X:
            return ok, st.a ^ st.x
        if anc in (SKF_AD_VLAN_TAG, SKF_AD_VLAN_TAG_PRESENT, SKF_AD_VLAN_TPID):
            if direct:
                inp.direct.update(("vlan_tci", "vlan_present", "vlan_proto"))
            return ok, self.vlan(anc)
        if anc == SKF_AD_PAY_OFFSET:
            return ok, inp.abstract("poff", ())
        if anc in (SKF_AD_NLATTR, SKF_AD_NLATTR_NEST):
            name = "nlan" if anc == SKF_AD_NLATTR_NEST else "nla"
            val = inp.abstract(name, (st.a, st.x))
            if self.sem.nla_helper:  # >= 3.15: a failed check gives 0, never a drop
                return ok, val
            return z3.Not(inp.abstract_fails(name, (st.a, st.x))), val
        name = ANCILLARY_NAMES.get(anc, str(anc))
        raise NotModelled(f"{self.name}: instruction {pc} loads '{name}' (SKF_AD_OFF + {anc}), "
                          "which the prover does not model")

    def vlan(self, anc: int) -> z3.BitVecRef:
        """vm.vlan_value over the free fields vlan_tci, vlan_present, vlan_proto."""
        inp = self.inp
        present = inp.field("vlan_present") != 0
        tci, proto = inp.field("vlan_tci"), inp.field("vlan_proto")
        one = z3.BitVecVal(1, 32)
        if anc == SKF_AD_VLAN_TPID:
            return z3.If(present, proto, _ZERO)
        if anc == SKF_AD_VLAN_TAG:
            if self.sem.vlan_mode == "cfi":
                return z3.If(present, tci & ~0x1000, _ZERO)
            return z3.If(present, tci, _ZERO)
        if self.sem.vlan_mode == "all":
            return z3.If(z3.And(present, (proto | tci) != 0), one, _ZERO)
        return z3.If(present, one, _ZERO)


# --- the proof ---------------------------------------------------------------------
def evaluator(insns: Sequence[Insn], kernel: str = "2.6.33"
              ) -> Callable[[bytes, SkbMeta | None], int]:
    """The formula of a program as a function of one concrete packet: the prover's
    semantics run like an interpreter, to check them against ``vm.run``.

    ``meta.network_offset`` must be 14 (the prover's); programs that read abstracted
    fields (PAY_OFFSET, NLATTR) raise NotModelled.
    """
    sem = semantics(kernel)
    inputs = _Inputs(0xFFFF)
    term = _Program(tuple(Insn(*i) for i in insns), sem, inputs, "the program").result
    if inputs.abstracted:
        raise NotModelled(f"the program reads {', '.join(sorted(inputs.abstracted))}")

    def value(packet: bytes, meta: SkbMeta | None = None) -> int:
        meta = SkbMeta() if meta is None else meta
        if meta.network_offset != NETWORK_OFFSET:
            raise ValueError(f"the prover models network_offset {NETWORK_OFFSET} only")
        array = z3.K(_BV32, z3.BitVecVal(0, 8))
        for i, byte in enumerate(packet):
            if byte:  # the default is 0
                array = z3.Store(array, i, byte)
        pairs = [(inputs.pkt, array), (inputs.length, z3.BitVecVal(len(packet), 32))]
        for name, var in inputs.meta.items():
            field_value = getattr(meta, name) & ((1 << _META_WIDTH[name]) - 1)
            if name == "vlan_present":
                field_value = int(bool(meta.vlan_present))
            pairs.append((var, z3.BitVecVal(field_value, var.size())))
        return z3.simplify(z3.substitute(term, *pairs)).as_long()

    return value


# --- the proof ---------------------------------------------------------------------
def evaluate(insns: Sequence[Insn], packet: bytes, meta: SkbMeta | None = None,
             kernel: str = "2.6.33") -> int:
    """What the formula of a program gives on one concrete packet: the prover's
    semantics run like an interpreter, to check them against ``vm.run``.

    ``meta.network_offset`` must be 14 (the prover's); programs that read abstracted
    fields (PAY_OFFSET, NLATTR) raise NotModelled.
    """
    meta = SkbMeta() if meta is None else meta
    if meta.network_offset != NETWORK_OFFSET:
        raise ValueError(f"the prover models network_offset {NETWORK_OFFSET} only")
    sem = semantics(kernel)
    inputs = _Inputs(max(len(packet), 1))
    term = _Program(tuple(Insn(*i) for i in insns), sem, inputs, "the program").result
    if inputs.abstracted:
        raise NotModelled(f"the program reads {', '.join(sorted(inputs.abstracted))}")
    array = z3.K(_BV32, z3.BitVecVal(0, 8))
    for i, byte in enumerate(packet):
        array = z3.Store(array, i, byte)
    pairs = [(inputs.pkt, array), (inputs.length, z3.BitVecVal(len(packet), 32))]
    for name, var in inputs.meta.items():
        value = getattr(meta, name) & ((1 << _META_WIDTH[name]) - 1)
        if name == "vlan_present":
            value = int(bool(meta.vlan_present))
        pairs.append((var, z3.BitVecVal(value, var.size())))
    return z3.simplify(z3.substitute(term, *pairs)).as_long()


def prove_equivalent(prog_a: Sequence[Insn], prog_b: Sequence[Insn], kernel: str = "2.6.33",
                     max_len: int = DEFAULT_MAX_LEN,
                     timeout: float = DEFAULT_TIMEOUT) -> Equivalent | Witness:
    """Equivalent, or a verified Witness; SolverTimeout / NotModelled when undecided.

    Both programs must pass the kernel's checker (FilterError otherwise).
    """
    if not 0 <= max_len <= 0xFFFF:
        raise ValueError(f"max_len {max_len} out of range (0..65535)")
    start = time.perf_counter()
    sem = semantics(kernel)
    insns_a = tuple(Insn(*i) for i in prog_a)
    insns_b = tuple(Insn(*i) for i in prog_b)
    sk_chk_filter(insns_a, sem)
    sk_chk_filter(insns_b, sem)
    inputs = _Inputs(max_len)
    term_a = _Program(insns_a, sem, inputs, "the first program").result
    term_b = _Program(insns_b, sem, inputs, "the second program").result
    solver = z3.Solver()
    solver.set("timeout", max(1, int(timeout * 1000)))
    solver.add(z3.ULE(inputs.length, max_len))
    solver.add(term_a != term_b)
    answer = solver.check()
    if answer == z3.unsat:
        return Equivalent(sem.version or kernel, max_len, time.perf_counter() - start)
    if answer != z3.sat:
        reason = solver.reason_unknown()
        raise SolverTimeout(f"z3 found no answer within {timeout:g} s ({reason})")
    model = _readable(solver, inputs, start + timeout)
    length = model.eval(inputs.length, model_completion=True).as_long()
    packet = bytes(model.eval(z3.Select(inputs.pkt, i), model_completion=True).as_long()
                   for i in range(length))
    fields = {name: model.eval(var, model_completion=True).as_long()
              for name, var in sorted(inputs.meta.items())}
    meta = SkbMeta(**fields)
    shown = {name: fields[name] for name in sorted(inputs.direct)}
    va = vm.run(insns_a, packet, meta, sem)
    vb = vm.run(insns_b, packet, meta, sem)
    want = (model.eval(term_a).as_long(), model.eval(term_b).as_long())
    if va == vb or (va, vb) != want:
        if inputs.abstracted:
            names = ", ".join(sorted(inputs.abstracted))
            raise NotModelled(f"the difference z3 found depends on {names}, which the prover "
                              "does not model exactly, and does not hold on a real packet")
        raise AssertionError(  # a fault of this module, not of the input
            f"the solver's witness does not verify: z3 says {want}, the interpreter "
            f"says {(va, vb)} (packet {packet.hex()}, {fields})")
    libpcap = _libpcap_values(insns_a, insns_b, packet)
    return Witness(packet, meta, va, vb, sem.version or kernel, max_len,
                   time.perf_counter() - start, shown, libpcap)


def _well_formed(inputs: _Inputs) -> list[z3.BoolRef]:
    """What makes a witness read as a real frame: an Ethernet II header, and for IPv4
    and IPv6 a version, header length and total length that agree with the packet's.
    Only a preference: a difference that needs a malformed frame is still found."""
    p, n = inputs.pkt, inputs.length

    def u8(i: int) -> z3.BitVecRef:
        return z3.ZeroExt(24, z3.Select(p, i))

    def u16(i: int) -> z3.BitVecRef:
        return z3.ZeroExt(16, z3.Concat(z3.Select(p, i), z3.Select(p, i + 1)))

    ethertype = u16(12)
    ihl = u8(14) & 0x0F
    ipv4 = z3.And(z3.LShR(u8(14), 4) == 4, z3.UGE(ihl, 5), z3.UGE(n, 14 + ihl * 4),
                  u16(16) == n - 14)
    ipv6 = z3.And(z3.LShR(u8(14), 4) == 6, z3.UGE(n, 54), u16(18) == n - 54)
    return [z3.UGE(n, 14), z3.UGE(ethertype, 0x0600),
            z3.Implies(ethertype == 0x0800, ipv4), z3.Implies(ethertype == 0x86DD, ipv6)]


def _readable(solver: z3.Solver, inputs: _Inputs, deadline: float) -> z3.ModelRef:
    """After a first model: a well-formed frame if there is one (_well_formed), then the
    shortest such packet (binary search on the length), within what is left of the
    time allowed.  Each step keeps the last model found, so it only improves it."""
    model = solver.model()

    def check(*constraints: z3.BoolRef) -> z3.ModelRef | None:
        left = deadline - time.perf_counter()
        if left <= 0:
            return None
        solver.set("timeout", max(1, int(left * 1000)))
        solver.add(*constraints)
        return solver.model() if solver.check() == z3.sat else None

    solver.push()
    better = check(*_well_formed(inputs))
    if better is None:
        solver.pop()
        solver.push()
    else:
        model = better
    length = inputs.length
    lo, hi = 0, model.eval(length, model_completion=True).as_long()
    while lo < hi and deadline > time.perf_counter():
        mid = (lo + hi) // 2
        solver.push()
        shorter = check(z3.ULE(length, mid))
        solver.pop()
        if shorter is not None:
            model = shorter
            hi = model.eval(length, model_completion=True).as_long()
        else:
            lo = mid + 1  # none shorter (or no time left: the loop ends)
    solver.pop()
    return model


def _libpcap_values(insns_a: tuple[Insn, ...], insns_b: tuple[Insn, ...],
                    packet: bytes) -> tuple[int, int] | None:
    """libpcap's bpf_filter on the witness, for programs that read no sk_buff field
    (no load at a negative constant offset: LD IND is run, as libpcap compiles it)."""
    for ins in decode_program(insns_a) + decode_program(insns_b):
        if isinstance(ins, (LoadAbsolute, LoadMemShift)) and ins.k >> 31:
            return None
    try:
        from lsfsim.bpf import pcapc

        return pcapc.bpf_filter(insns_a, packet), pcapc.bpf_filter(insns_b, packet)
    except (OSError, ValueError):  # no libpcap here, or a program it cannot run
        return None
