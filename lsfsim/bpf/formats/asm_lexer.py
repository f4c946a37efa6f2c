"""The bpf_asm lexer: tokens as flex cuts them from the kernel's tools/bpf/bpf_exp.l.

Token kinds: "op" (mnemonic, lower case), "num", "label", "ext" (ancillary
offset), "len", or the punctuation character itself; "eof" at the end.
"""

from __future__ import annotations

import re

from lsfsim.bpf.errors import ParseError
from lsfsim.bpf.formats.numbers import MAX_DIGITS, show

# bpf_asm's lexer (bpf_exp.l): extension names, with their aliases.  It has no
# "xor_x" (an ALU extension, not a load).
ASM_EXTENSIONS: dict[str, int] = {
    "proto": 0, "type": 4, "poff": 52, "ifidx": 8, "nla": 12, "nlan": 16, "mark": 20,
    "queue": 24, "hatype": 28, "rxhash": 32, "cpu": 36, "vlan_tci": 44, "vlan_pr": 48,
    "vlan_avail": 48, "vlan_tpid": 60, "rand": 56,
}

_KEYWORDS = {
    "ldb", "ldh", "ld", "ldi", "ldx", "ldxi", "ldxb", "st", "stx", "jmp", "ja", "jeq", "jneq",
    "jne", "jlt", "jle", "jgt", "jge", "jset", "add", "sub", "mul", "div", "mod", "neg", "and",
    "xor", "or", "lsh", "rsh", "ret", "tax", "txa",
}
_PUNCT = set(":,#%[]()+*&")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# flex's number rules, tried for the longest match (ties: the first rule wins).
_NUMBER_RULES = (
    (re.compile(r"0[xX][0-9a-fA-F]+"), 16, 0),
    (re.compile(r"0[bB][01]+"), 2, 2),
    (re.compile(r"0|[-+]?[1-9][0-9]*"), 10, 0),
    (re.compile(r"0[0-7]+"), 8, 1),
)
_HASH_WORDS = sorted(["len", *ASM_EXTENSIONS], key=len, reverse=True)
_COMMENT = re.compile(r"/\*(?:[^*]|\*[^/])*\*/", re.DOTALL)


class Token:
    __slots__ = ("kind", "value", "text", "line", "col")

    def __init__(self, kind: str, value: object, text: str, line: int, col: int) -> None:
        self.kind, self.value, self.text, self.line, self.col = kind, value, text, line, col

    def show(self) -> str:
        return "end of input" if self.kind == "eof" else show(self.text)


def lex(text: str) -> list[Token]:
    """Tokens as flex would cut them from bpf_exp.l's rules (longest match first)."""
    toks: list[Token] = []
    i, n, line, line_start = 0, len(text), 1, 0

    def col() -> int:
        return i - line_start + 1

    while i < n:
        c = text[i]
        if c == "\n":
            i += 1
            line, line_start = line + 1, i
            continue
        if c in " \t\r":  # bpf_asm itself refuses \r; we let CRLF files through
            i += 1
            continue
        if c == ";":
            end = text.find("\n", i)
            i = n if end < 0 else end
            continue
        if text.startswith("/*", i):
            m = _COMMENT.match(text, i)
            if m is None:
                raise ParseError("unterminated /* comment", line, col())
            for _ in range(text.count("\n", i, m.end())):
                line += 1
            last_nl = text.rfind("\n", i, m.end())
            if last_nl >= 0:
                line_start = last_nl + 1
            i = m.end()
            continue
        if c == "#":
            # "#len" / "#proto" ... beat '#'; at the start of a line "^#.*" (a
            # comment) beats them unless it is no longer than they are.
            best = 0
            for word in _HASH_WORDS:
                if text[i + 1 : i + 1 + len(word)].lower() == word:
                    best = len(word) + 1
                    break
            at_bol = i == line_start
            if at_bol:
                end = text.find("\n", i)
                end = n if end < 0 else end
                if end - i > max(best, 1):
                    i = end
                    continue
            if best:
                word = text[i + 1 : i + best].lower()
                kind, value = ("len", None) if word == "len" else ("ext", ASM_EXTENSIONS[word])
                toks.append(Token(kind, value, text[i : i + best], line, col()))
                i += best
            else:
                toks.append(Token("#", None, "#", line, col()))
                i += 1
            continue
        if c.isascii() and (c.isdigit() or c in "+-"):
            best_len, number = 0, None
            for rx, base, skip in _NUMBER_RULES:
                m = rx.match(text, i)
                if m is not None and m.end() - i > best_len:
                    best_len, number = m.end() - i, (m.group(), base, skip)
            if number is not None:
                word, base, skip = number
                # an absurdly long literal is out of range whatever its value
                value = int(word[skip:], base) if len(word) <= MAX_DIGITS else 1 << 64
                toks.append(Token("num", value, word, line, col()))
                i += best_len
                continue
            if c == "+":
                toks.append(Token("+", None, "+", line, col()))
                i += 1
                continue
            raise ParseError(f"unknown character {c!r}", line, col())
        m = _WORD.match(text, i)
        if m is not None:
            word = m.group()
            low = word.lower()
            if low in _KEYWORDS:
                toks.append(Token("op", low, word, line, col()))
            elif low == "len":
                toks.append(Token("len", None, word, line, col()))
            elif low in ASM_EXTENSIONS:
                toks.append(Token("ext", ASM_EXTENSIONS[low], word, line, col()))
            elif len(word) >= 2:
                toks.append(Token("label", word, word, line, col()))
            elif low in ("x", "a", "m"):
                toks.append(Token(low if low != "m" else "M", None, word, line, col()))
            else:
                raise ParseError(f"unknown character {c!r}", line, col())
            i = m.end()
            continue
        if c in _PUNCT:
            toks.append(Token(c, None, c, line, col()))
            i += 1
            continue
        raise ParseError(f"unknown character {c!r}", line, col())
    toks.append(Token("eof", None, "", line, i - line_start + 1))
    return toks
