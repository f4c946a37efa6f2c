"""The bpf_asm parser: bpf_exp.y's grammar by recursive descent over ``asm_lexer`` tokens.

Labels, ``jeq #k, Lt, Lf`` (and the negated ``jneq``/``jlt``/``jle`` forms that
jump on false), ``ld [x + k]``, ``ld proto``; labels are resolved at the end and
every jump must land 0..255 instructions ahead.
"""

from __future__ import annotations

from lsfsim.bpf.errors import ParseError
from lsfsim.bpf.formats.asm_lexer import Token, lex
from lsfsim.bpf.formats.numbers import U32, show
from lsfsim.bpf.isa import SKF_AD_OFF, Insn


class AsmParser:
    """Recursive descent over bpf_exp.y's grammar."""

    def __init__(self, toks: list[Token]) -> None:
        self.toks = toks
        self.pos = 0
        self.insns: list[Insn] = []
        self.labels: dict[str, int] = {}
        self.label_tok: dict[str, Token] = {}
        # (pc, which, label token): which in "k", "jt", "jf"
        self.refs: list[tuple[int, str, Token]] = []

    # token helpers
    def peek(self, ahead: int = 0) -> Token:
        return self.toks[min(self.pos + ahead, len(self.toks) - 1)]

    def next(self) -> Token:
        tok = self.peek()
        self.pos += 1
        return tok

    def expect(self, kind: str, what: str | None = None) -> Token:
        tok = self.peek()
        if tok.kind != kind:
            raise ParseError(f"expected {what or repr(kind)}, got {tok.show()}", tok.line, tok.col)
        return self.next()

    def fail(self, what: str) -> ParseError:
        tok = self.peek()
        return ParseError(f"expected {what}, got {tok.show()}", tok.line, tok.col)

    def number(self) -> int:
        tok = self.expect("num", "a number")
        value = tok.value
        assert isinstance(value, int)
        if not -(1 << 31) <= value <= U32:
            raise ParseError(f"number {show(tok.text)} does not fit in 32 bits", tok.line,
                             tok.col)
        return value & U32

    # grammar
    def program(self) -> list[Insn]:
        while self.peek().kind != "eof":
            while self.peek().kind == "label" and self.peek(1).kind == ":":
                tok = self.next()
                self.next()
                if tok.text in self.labels:
                    first = self.label_tok[tok.text]
                    raise ParseError(
                        f"label {show(tok.text)} already defined at line {first.line}",
                        tok.line, tok.col)
                self.labels[tok.text] = len(self.insns)
                self.label_tok[tok.text] = tok
            tok = self.peek()
            if tok.kind != "op":
                raise self.fail("an instruction")
            self.instruction(self.next().value)  # type: ignore[arg-type]
        if not self.insns:
            tok = self.peek()
            raise ParseError("no instructions", tok.line, tok.col)
        self.resolve()
        return self.insns

    def emit(self, code: int, k: int = 0) -> None:
        self.insns.append(Insn(code, 0, 0, k))

    def ref(self, which: str) -> None:
        tok = self.expect("label", "a label")
        self.refs.append((len(self.insns), which, tok))

    def indexed(self, size: int) -> bool:
        """``[x + k]``, ``[%x + k]`` or ``[k]`` after ld/ldh/ldb; True if it was one."""
        if self.peek().kind != "[":
            return False
        self.next()
        if self.peek().kind in ("x", "%"):
            if self.peek().kind == "%":
                self.next()
            self.expect("x", "'x'")
            # "[x+4]": flex reads "+4" as a number; we take it as '+' 4.
            if self.peek().kind == "num" and self.peek().text.startswith("+"):
                k = self.number()
            else:
                self.expect("+", "'+'")
                k = self.number()
            self.expect("]", "']'")
            self.emit(0x40 | size, k)
        else:
            k = self.number()
            self.expect("]", "']'")
            self.emit(0x20 | size, k)
        return True

    def mem(self, code: int) -> None:
        self.expect("M", "'M'")
        self.expect("[", "'['")
        k = self.number()
        self.expect("]", "']'")
        self.emit(code, k)

    def msh(self) -> None:
        four_tok = self.peek()
        four = self.number()
        self.expect("*", "'*'")
        self.expect("(", "'('")
        self.expect("[", "'['")
        k = self.number()
        self.expect("]", "']'")
        self.expect("&", "'&'")
        mask_tok = self.peek()
        mask = self.number()
        self.expect(")", "')'")
        if four != 4 or mask != 0xF:
            bad = four_tok if four != 4 else mask_tok
            raise ParseError("only 4*([k]&0xf) is supported", bad.line, bad.col)
        self.emit(0xB1, k)

    def src(self) -> tuple[int, int]:
        """``#k`` -> (BPF_K, k); ``x`` / ``%x`` -> (BPF_X, 0)."""
        kind = self.peek().kind
        if kind == "#":
            self.next()
            return 0x00, self.number()
        if kind == "%":
            self.next()
            self.expect("x", "'x'")
            return 0x08, 0
        if kind == "x":
            self.next()
            return 0x08, 0
        raise self.fail("'#k' or 'x'")

    def instruction(self, op: str) -> None:
        size = {"ld": 0x00, "ldh": 0x08, "ldb": 0x10}
        if op in ("ldb", "ldh"):
            if self.peek().kind == "ext":
                self.emit(0x20 | size[op], (SKF_AD_OFF + self.next().value) & U32)  # type: ignore[operator]
            elif not self.indexed(size[op]):
                raise self.fail("'[k]', '[x + k]' or an extension")
        elif op == "ld":
            kind = self.peek().kind
            if kind == "#":
                self.next()
                self.emit(0x00, self.number())
            elif kind == "len":
                self.next()
                self.emit(0x80)
            elif kind == "ext":
                self.emit(0x20, (SKF_AD_OFF + self.next().value) & U32)  # type: ignore[operator]
            elif kind == "M":
                self.mem(0x60)
            elif not self.indexed(0x00):
                raise self.fail("'#k', 'len', 'M[k]', '[k]', '[x + k]' or an extension")
        elif op in ("ldi", "ldxi"):
            if self.peek().kind == "#":
                self.next()
            self.emit(0x00 if op == "ldi" else 0x01, self.number())
        elif op == "ldx":
            kind = self.peek().kind
            if kind == "#":
                self.next()
                self.emit(0x01, self.number())
            elif kind == "len":
                self.next()
                self.emit(0x81)
            elif kind == "M":
                self.mem(0x61)
            elif kind == "num":
                self.msh()
            else:
                raise self.fail("'#k', 'len', 'M[k]' or '4*([k]&0xf)'")
        elif op == "ldxb":
            self.msh()
        elif op in ("st", "stx"):
            self.mem(0x02 if op == "st" else 0x03)
        elif op in ("jmp", "ja"):
            self.ref("k")
            self.emit(0x05)
        elif op in ("jeq", "jgt", "jge", "jset"):
            base = {"jeq": 0x15, "jgt": 0x25, "jge": 0x35, "jset": 0x45}[op]
            src, k = self.src()
            self.expect(",", "','")
            self.ref("jt")
            if self.peek().kind == ",":
                self.next()
                self.ref("jf")
            self.emit(base | src, k)
        elif op in ("jneq", "jne", "jlt", "jle"):
            # The negated forms jump on false: jneq = jeq, jlt = jge, jle = jgt.
            base = {"jneq": 0x15, "jne": 0x15, "jlt": 0x35, "jle": 0x25}[op]
            src, k = self.src()
            self.expect(",", "','")
            self.ref("jf")
            self.emit(base | src, k)
        elif op in ("add", "sub", "mul", "div", "mod", "and", "or", "xor", "lsh", "rsh"):
            alu = {"add": 0x00, "sub": 0x10, "mul": 0x20, "div": 0x30, "or": 0x40,
                   "and": 0x50, "lsh": 0x60, "rsh": 0x70, "mod": 0x90, "xor": 0xA0}[op]
            src, k = self.src()
            self.emit(0x04 | alu | src, k)
        elif op == "neg":
            self.emit(0x84)
        elif op == "tax":
            self.emit(0x07)
        elif op == "txa":
            self.emit(0x87)
        else:  # ret
            kind = self.peek().kind
            if kind == "%":
                self.next()
                kind = self.peek().kind
                if kind not in ("a", "x"):
                    raise self.fail("'a' or 'x'")
            if kind == "a":
                self.next()
                self.emit(0x16)
            elif kind == "x":
                self.next()
                self.emit(0x0E)
            elif kind == "#":
                self.next()
                self.emit(0x06, self.number())
            else:
                raise self.fail("'#k', 'a' or 'x'")

    def resolve(self) -> None:
        for pc, which, tok in self.refs:
            target = self.labels.get(tok.text)
            if target is None:
                raise ParseError(f"no such label {show(tok.text)}", tok.line, tok.col)
            insn = self.insns[pc]
            if which == "k":
                self.insns[pc] = insn._replace(k=(target - pc - 1) & U32)
                continue
            delta = target - pc - 1
            if not 0 <= delta <= 255:
                raise ParseError(
                    f"instruction {pc} jumps to instruction {target} ({show(tok.text)}), "
                    "which is out of range (0..255 ahead)", tok.line, tok.col)
            self.insns[pc] = insn._replace(**{which: delta})


def read_asm(text: str) -> list[Insn]:
    return AsmParser(lex(text)).program()
